package gcp

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/proto"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// ErrNotPublished: the guest has not published its identity yet (first
// boot still runs); retry later.
var errNotPublished = errors.New("the instance has not published its identity yet")

// ObservedIdentity implements clouds.IdentityObserver. It reads what the
// instance published about itself: on
// Linux the host keys the guest agent generated on first boot and wrote to
// guest attributes hostkeys/<type>
// (gh:GoogleCloudPlatform/guest-agent google_guest_agent/instance_setup.go
// generateSSHKeys); on Windows the WinRM certificate thumbprint that
// specialize wrote to hostkeys/winrm
// (gh:GoogleCloudPlatform/compute-image-windows sysprep/instance_setup.ps1)
// and the admin password the guest agent encrypted to the cluster's
// windows-keys key and wrote to serial port 4
// (gh:GoogleCloudPlatform/guest-agent google_guest_agent/accounts.go). Until
// the guest has published, it returns a transient error wrapping
// ErrNotPublished. Guest attributes allow about 10 queries a minute per
// instance: call it once per instance, not per Observe.
func (c *Cloud) ObservedIdentity(ctx context.Context, inst clouds.Instance) (clouds.ObservedIdentity, error) {
	zone := c.zoneFor(inst.Name)
	object := fmt.Sprintf("instance %q in %s", inst.Name, zone)
	k := call{op: "instances.getGuestAttributes", object: object}
	ga, err := c.instances.GetGuestAttributes(ctx, &computepb.GetGuestAttributesInstanceRequest{
		Project: c.cfg.Project, Zone: zone, Instance: inst.Name, QueryPath: proto.String("hostkeys/"),
	}, c.retry())
	if isCode(err, codeNotFound) {
		return clouds.ObservedIdentity{}, notPublished(k, "no guest attributes under hostkeys/")
	}
	if err != nil {
		return clouds.ObservedIdentity{}, k.classify(err)
	}
	var out clouds.ObservedIdentity
	for _, e := range ga.GetQueryValue().GetItems() {
		if e.GetNamespace() != "hostkeys" {
			continue
		}
		switch key := e.GetKey(); {
		case key == "winrm":
			out.WinRMThumbprint = strings.ToUpper(strings.TrimSpace(e.GetValue()))
		case key == "rdp":
		case strings.HasPrefix(key, "ssh-") || strings.HasPrefix(key, "ecdsa-"):
			// The agent writes the type as the key and the base64 blob as the value.
			out.SSHHostKeys = append(out.SSHHostKeys, key+" "+strings.TrimSpace(e.GetValue()))
		}
	}
	if inst.OS != "windows" {
		if len(out.SSHHostKeys) == 0 {
			return clouds.ObservedIdentity{}, notPublished(k, "no SSH host key under hostkeys/")
		}
		return out, nil
	}
	if out.WinRMThumbprint == "" {
		return clouds.ObservedIdentity{}, notPublished(k, "no WinRM thumbprint at hostkeys/winrm")
	}
	cluster := cmp.Or(inst.Cluster, inst.Tags[LabelCluster])
	out.AdminUser, out.AdminPassword, err = c.windowsPassword(ctx, cluster, inst.Name, zone)
	if err != nil {
		return clouds.ObservedIdentity{}, err
	}
	return out, nil
}

func notPublished(k call, what string) error {
	return &clouds.Error{Kind: clouds.KindTransient, Op: k.op, Object: k.object, Err: fmt.Errorf("%s: %w", what, errNotPublished)}
}

// secretWindowsKey names the cluster's windows-keys RSA key in Secret
// Manager: any machine with the credentials can decrypt a password later.
const secretWindowsKey clouds.SecretName = "gcp/windows-keys-rsa"

// windowsKeyEntry is one windows-keys metadata entry; field names from
// gh:GoogleCloudPlatform/guest-agent (windowsKey in google_guest_agent) and
// https://cloud.google.com/compute/docs/instances/windows/automate-pw-generation.
type windowsKeyEntry struct {
	UserName            string `json:"userName"`
	Modulus             string `json:"modulus"`
	Exponent            string `json:"exponent"`
	Email               string `json:"email"`
	ExpireOn            string `json:"expireOn"`
	HashFunction        string `json:"hashFunction,omitempty"`
	AddToAdministrators *bool  `json:"addToAdministrators,omitempty"`
}

// credentials is what the guest agent writes to COM4 for a key.
type credentials struct {
	ErrorMessage      string `json:"errorMessage,omitempty"`
	EncryptedPassword string `json:"encryptedPassword,omitempty"`
	UserName          string `json:"userName,omitempty"`
	PasswordFound     bool   `json:"passwordFound,omitempty"`
	Exponent          string `json:"exponent,omitempty"`
	Modulus           string `json:"modulus,omitempty"`
	HashFunction      string `json:"hashFunction,omitempty"`
}

// windowsKeyLife: the agent ignores an entry past expireOn; a day covers
// the slowest first boot.
const windowsKeyLife = 24 * time.Hour

var rsaKeys sync.Map // project/cluster -> *rsa.PrivateKey

// clusterRSAKey is the cluster's windows-keys key, made once and kept in Secret Manager.
func (c *Cloud) clusterRSAKey(ctx context.Context, cluster string) (*rsa.PrivateKey, error) {
	id := c.cfg.Project + "/" + cluster
	if k, ok := rsaKeys.Load(id); ok {
		return k.(*rsa.PrivateKey), nil
	}
	fresh, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("failed to generate the windows-keys RSA key of cluster %q: %w", cluster, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(fresh)
	if err != nil {
		return nil, err
	}
	stored, err := c.EnsureSecret(ctx, cluster, secretWindowsKey, der)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(stored)
	key, ok := parsed.(*rsa.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("secret %q of cluster %q is not an RSA key; fix: delete it if the cluster has no Windows nodes", secretWindowsKey, cluster)
	}
	rsaKeys.Store(id, key)
	return key, nil
}

// windowsKey is the windows-keys metadata value for a new instance: the
// public half of the cluster's key, so only holders of the cluster's
// secrets can read the password the guest makes.
func (c *Cloud) windowsKey(ctx context.Context, cluster, user string) (string, error) {
	key, err := c.clusterRSAKey(ctx, cluster)
	if err != nil {
		return "", err
	}
	t := true
	b, err := json.Marshal(windowsKeyEntry{
		UserName: user,
		Modulus:  base64.StdEncoding.EncodeToString(key.N.Bytes()),
		Exponent: base64.StdEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		Email:    user + "@" + cluster + ".mixedk8s",
		ExpireOn: time.Now().Add(windowsKeyLife).UTC().Format(time.RFC3339),
		// sha256 rather than the agent's sha1 default.
		HashFunction: "sha256", AddToAdministrators: &t,
	})
	return string(b), err
}

// windowsPassword reads serial port 4 for the entry answering the
// cluster's key and decrypts it.
func (c *Cloud) windowsPassword(ctx context.Context, cluster, name, zone string) (string, string, error) {
	object := fmt.Sprintf("instance %q in %s", name, zone)
	k := call{op: "instances.getSerialPortOutput", object: object}
	key, err := c.clusterRSAKey(ctx, cluster)
	if err != nil {
		return "", "", err
	}
	out, err := c.instances.GetSerialPortOutput(ctx, &computepb.GetSerialPortOutputInstanceRequest{
		Project: c.cfg.Project, Zone: zone, Instance: name, Port: proto.Int32(4),
	}, c.retry())
	if err != nil {
		return "", "", k.classify(err)
	}
	modulus := base64.StdEncoding.EncodeToString(key.N.Bytes())
	var found *credentials
	sc := bufio.NewScanner(strings.NewReader(out.GetContents()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var cr credentials
		if json.Unmarshal([]byte(strings.TrimSpace(sc.Text())), &cr) != nil || cr.Modulus != modulus {
			continue
		}
		found = &cr // the last answer for our key wins
	}
	if found == nil {
		return "", "", notPublished(k, "no windows-keys answer on serial port 4")
	}
	if !found.PasswordFound {
		return "", "", &clouds.Error{Kind: clouds.KindFatal, Op: k.op, Object: object,
			Err: fmt.Errorf("the guest agent could not set the password of %q: %s", found.UserName, found.ErrorMessage),
			Fix: "check the image's guest agent (GCESysprep) and that the admin user name is valid on Windows"}
	}
	if found.HashFunction != "" && found.HashFunction != "sha256" {
		return "", "", &clouds.Error{Kind: clouds.KindFatal, Op: k.op, Object: object, Err: fmt.Errorf("the guest agent used hash %q, not sha256", found.HashFunction)}
	}
	ct, err := base64.StdEncoding.DecodeString(found.EncryptedPassword)
	if err != nil {
		return "", "", &clouds.Error{Kind: clouds.KindFatal, Op: k.op, Object: object, Err: errors.New("the encrypted password is not base64")}
	}
	pw, err := rsa.DecryptOAEP(sha256.New(), nil, key, ct, nil)
	if err != nil {
		return "", "", &clouds.Error{Kind: clouds.KindFatal, Op: k.op, Object: object, Err: errors.New("the encrypted password does not decrypt with the cluster's windows-keys key")}
	}
	return found.UserName, string(pw), nil
}
