package gce

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Windows certificate thumbprints are SHA-1 by definition
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"maps"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/proto"
)

// firstBoot is what the guest does the first time an instance runs, with
// s.mu held:
//   - Linux: the guest agent generates new SSH host keys for the new
//     instance ID and writes each to guest attribute hostkeys/<type> with
//     the base64 blob as the value (gh:GoogleCloudPlatform/guest-agent
//     google_guest_agent/instance_setup.go, generateSSHKeys); the lab
//     makes the ed25519 key only. Users come from the ssh-keys metadata.
//   - Windows: specialize renames the computer to the first label of the
//     instance's hostname (the custom hostname, else the instance name), of
//     which NetBIOS keeps 15 characters, upper-cased
//     (gh:GoogleCloudPlatform/compute-image-windows gce/sysprep/instance_setup.ps1,
//     Change-InstanceName; https://learn.microsoft.com/windows/win32/sysinfo/computer-names);
//     it makes a self-signed WinRM HTTPS certificate and
//     writes its thumbprint to hostkeys/winrm (same script);
//     the guest agent answers each unexpired windows-keys entry by setting
//     a random password, encrypting it with RSA-OAEP (sha1 unless the
//     entry asks for sha256 or sha512) to the entry's key and writing the
//     JSON to COM4 (guest-agent google_guest_agent/accounts.go,
//     createcredsJSON, printCreds).
//
// Guest attributes are written only when the metadata sets
// enable-guest-attributes=TRUE
// (https://cloud.google.com/compute/docs/metadata/manage-guest-attributes).
func (s *Server) firstBoot(in *instance) {
	md := map[string]string{}
	for _, it := range in.pb.GetMetadata().GetItems() {
		md[it.GetKey()] = it.GetValue()
	}
	g := &GuestState{Passwords: map[string]string{}, AuthorizedKeys: map[string][]string{}}
	in.guest = g
	attrs := strings.EqualFold(md["enable-guest-attributes"], "true")
	if in.image.os != "windows" {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return
		}
		g.HostKey = key
		pub, _ := ssh.NewPublicKey(key.Public())
		if attrs {
			f := strings.Fields(string(ssh.MarshalAuthorizedKey(pub)))
			in.attrs["hostkeys/"+f[0]] = f[1]
		}
		for _, line := range strings.Split(md["ssh-keys"], "\n") {
			user, key, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok {
				g.AuthorizedKeys[user] = append(g.AuthorizedKeys[user], key)
			}
		}
		return
	}
	host, _, _ := strings.Cut(cmp.Or(in.pb.GetHostname(), in.pb.GetName()), ".")
	g.ComputerName = strings.ToUpper(host[:min(len(host), 15)])
	cert, err := selfSigned(host)
	if err != nil {
		return
	}
	g.WinRMCert = cert
	if attrs {
		sum := sha1.Sum(cert.Certificate[0]) //nolint:gosec // the thumbprint Windows shows
		in.attrs["hostkeys/winrm"] = strings.ToUpper(hex.EncodeToString(sum[:]))
	}
	for _, line := range strings.Split(md["windows-keys"], "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var k struct {
			UserName, Modulus, Exponent, ExpireOn, HashFunction string
		}
		if json.Unmarshal([]byte(line), &k) != nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339, k.ExpireOn); err != nil || t.Before(time.Now()) {
			continue // the agent skips expired entries and unparsable dates
		}
		out := map[string]any{"userName": k.UserName, "modulus": k.Modulus, "exponent": k.Exponent}
		pw, enc, hashName, err := encryptPassword(k.Modulus, k.Exponent, k.HashFunction)
		if err != nil {
			out["passwordFound"], out["errorMessage"] = false, err.Error()
		} else {
			g.Passwords[k.UserName] = pw
			out["passwordFound"], out["encryptedPassword"], out["hashFunction"] = true, enc, hashName
		}
		b, _ := json.Marshal(out)
		in.serial[4].Write(append(b, '\n'))
	}
}

func encryptPassword(modulus, exponent, hashName string) (pw, enc, name string, _ error) {
	mod, err := base64.StdEncoding.DecodeString(modulus)
	if err != nil {
		return "", "", "", fmt.Errorf("error decoding modulus: %v", err)
	}
	exp, err := base64.StdEncoding.DecodeString(exponent)
	if err != nil {
		return "", "", "", fmt.Errorf("error decoding exponent: %v", err)
	}
	var h hash.Hash
	switch hashName {
	case "", "sha1":
		hashName, h = "sha1", sha1.New() //nolint:gosec // the agent's default
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return "", "", "", fmt.Errorf("unknown hash function requested: %q", hashName)
	}
	pw = randomPassword()
	key := &rsa.PublicKey{N: new(big.Int).SetBytes(mod), E: int(new(big.Int).SetBytes(exp).Int64())}
	ct, err := rsa.EncryptOAEP(h, rand.Reader, key, []byte(pw), nil)
	if err != nil {
		return "", "", "", fmt.Errorf("error encrypting password: %v", err)
	}
	return pw, base64.StdEncoding.EncodeToString(ct), hashName, nil
}

// randomPassword meets Windows' complexity rules like the agent's newPwd:
// 15 characters from upper, lower, digits and symbols.
func randomPassword() string {
	const sets = "ABCDEFGHJKLMNPQRSTUVWXYZ" + "abcdefghijkmnopqrstuvwxyz" + "23456789" + "!#$%&()*+,-./:;<=>?@[]^_{}~"
	b := make([]byte, 15)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(sets))))
		b[i] = sets[n.Int64()]
	}
	b[0], b[1], b[2], b[3] = 'K', 'q', '7', '#'
	return string(b)
}

func selfSigned(host string) (*tls.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{host},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// guestAttributesPerMinute: "you can query guest attributes up to 10 times
// per minute" per instance (https://cloud.google.com/compute/docs/metadata/manage-guest-attributes);
// the lab answers more with 429 rateLimitExceeded.
const guestAttributesPerMinute = 10

// guestAttributes is instances.getGuestAttributes: one variableKey, or
// every entry under a queryPath ("namespace/" or "namespace/key").
func (s *Server) guestAttributes(r *http.Request, c *call) (proto.Message, *Error, func()) {
	in, e := s.findInstance(c)
	if e != nil {
		return nil, e, nil
	}
	now := time.Now().UnixNano()
	recent := in.gaWindow[:0]
	for _, t := range in.gaWindow {
		if now-t < int64(time.Minute) {
			recent = append(recent, t)
		}
	}
	in.gaWindow = append(recent, now)
	if len(in.gaWindow) > guestAttributesPerMinute {
		return nil, &Error{Status: http.StatusTooManyRequests, Reason: "rateLimitExceeded", Message: "Guest attributes of an instance can be queried at most 10 times per minute."}, nil
	}
	q := r.URL.Query()
	self := strings.TrimSuffix(in.pb.GetSelfLink(), "") + "/guestAttributes/"
	if key := q.Get("variableKey"); key != "" {
		v, ok := in.attrs[key]
		if !ok {
			return nil, notFound(strings.TrimPrefix(self, selfLinkBase) + key), nil
		}
		return &computepb.GuestAttributes{Kind: proto.String("compute#guestAttributes"), VariableKey: proto.String(key), VariableValue: proto.String(v), SelfLink: proto.String(self + key)}, nil, nil
	}
	path := q.Get("queryPath")
	val := &computepb.GuestAttributesValue{}
	keys := make([]string, 0, len(in.attrs))
	for k := range maps.Keys(in.attrs) {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, path) {
			continue
		}
		ns, key, _ := strings.Cut(k, "/")
		val.Items = append(val.Items, &computepb.GuestAttributesEntry{Namespace: proto.String(ns), Key: proto.String(key), Value: proto.String(in.attrs[k])})
	}
	if len(val.Items) == 0 {
		return nil, notFound(strings.TrimPrefix(self, selfLinkBase) + path), nil
	}
	return &computepb.GuestAttributes{Kind: proto.String("compute#guestAttributes"), QueryPath: proto.String(path), QueryValue: val, SelfLink: proto.String(self + path)}, nil, nil
}

// serialPort is instances.getSerialPortOutput: ports 1 to 4, from start.
func (s *Server) serialPort(r *http.Request, c *call) (proto.Message, *Error, func()) {
	in, e := s.findInstance(c)
	if e != nil {
		return nil, e, nil
	}
	q := r.URL.Query()
	port := 1
	if v := q.Get("port"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4 {
			return nil, invalidField("port", v), nil
		}
		port = n
	}
	contents := in.serial[port].String()
	start := 0
	if v := q.Get("start"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, invalidField("start", v), nil
		}
		start = min(n, len(contents))
	}
	return &computepb.SerialPortOutput{
		Kind: proto.String("compute#serialPortOutput"), Contents: proto.String(contents[start:]),
		Start: proto.Int64(int64(start)), Next: proto.Int64(int64(len(contents))),
		SelfLink: proto.String(in.pb.GetSelfLink() + "/serialPort?port=" + strconv.Itoa(port)),
	}, nil, nil
}

// SetGuestAttribute writes a guest attribute as a process on the VM could
// (any process can: the threat the docs warn about), for tests.
func (s *Server) SetGuestAttribute(zone, name, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.st.instances[zone+"/"+name]
	if in == nil {
		return fmt.Errorf("no instance %s in %s", name, zone)
	}
	in.attrs[key] = value
	return nil
}

func sortStrings(s []string) { sort.Strings(s) }
