package provision

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"strconv"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Logical names in the cluster's secret store; each cloud spells them as its store allows.
const (
	secretSeed           clouds.SecretName = "seed"
	secretCA             clouds.SecretName = "ca"
	secretInitToken      clouds.SecretName = "init-token"
	secretCertificateKey clouds.SecretName = "certificate-key"
)

// secretWinRM is a Windows node's first-boot WinRM certificate of a secrets epoch.
func secretWinRM(node string, epoch int) clouds.SecretName {
	return epochName(clouds.NewSecretName("node", node, "winrm"), epoch)
}

// secretLastingWinRM is the WinRM certificate that replaces first boot's.
func secretLastingWinRM(node string, epoch int) clouds.SecretName {
	return epochName(clouds.NewSecretName("node", node, "winrm-lasting"), epoch)
}

// epochName is a stored secret's name in a secrets epoch: epoch 0 keeps the
// names clusters made before epochs existed already use.
func epochName(name clouds.SecretName, epoch int) clouds.SecretName {
	if epoch == 0 {
		return name
	}
	return clouds.NewSecretName(string(name), "e"+strconv.Itoa(epoch))
}

// AdminUser is the account the provisioner logs in as on every node.
const AdminUser = "mixedk8s"

// Secrets keeps the cluster's own secrets where any machine with the cloud
// credentials finds them again: usually the cloud's secret store.
type Secrets interface {
	// EnsureSecret stores value under name unless a value is already there,
	// and returns the stored value, so concurrent and repeated calls agree.
	EnsureSecret(ctx context.Context, cluster string, name clouds.SecretName, value []byte) ([]byte, error)
	// Secret returns a stored secret, and false when there is none.
	Secret(ctx context.Context, cluster string, name clouds.SecretName) ([]byte, bool, error)
}

// seed is the root of every derived node identity: SSH host keys, the
// provisioner's client key and Windows admin passwords. Deriving them means a
// crash between creating an instance and recording its identity loses
// nothing: the pins can always be computed again. Node identities are
// derived per secrets epoch (Spec.SecretsEpoch), so raising the epoch
// gives every node new ones; the seed itself stays.
func (p *Provisioner) seed(ctx context.Context, cluster string) ([]byte, error) {
	// One store round trip per cluster, however many nodes ask at once.
	p.seedMu.Lock()
	defer p.seedMu.Unlock()
	p.mu.Lock()
	if s, ok := p.seeds[cluster]; ok {
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("failed to generate the seed of cluster %q: %w", cluster, err)
	}
	s, err := p.cfg.Secrets.EnsureSecret(ctx, cluster, secretSeed, fresh)
	if err != nil {
		return nil, fmt.Errorf("failed to store the seed of cluster %q in the cloud's secret store: %w", cluster, err)
	}
	if len(s) != 32 {
		return nil, fmt.Errorf("the seed of cluster %q in the secret store is %d bytes, not 32; fix: delete the secret %q of the cluster only if no node exists yet", cluster, len(s), secretSeed)
	}
	p.mu.Lock()
	p.seeds[cluster] = s
	p.mu.Unlock()
	return s, nil
}

// derive expands the seed into n bytes for one purpose, node and secrets
// epoch with HKDF-SHA256 (RFC 5869): the label is HKDF's info, so each
// purpose, node and epoch gets an independent value. Epoch 0 keeps the
// labels clusters were made with, so their nodes keep their identities.
func derive(seed []byte, purpose, node string, epoch, n int) []byte {
	out, err := hkdf.Key(sha256.New, seed, nil, label(purpose, node, epoch), n)
	if err != nil {
		// hkdf.Key fails only for lengths over 255*32 bytes, which we never ask.
		panic(err)
	}
	return out
}

// label is HKDF's info for one derived value: "mixedk8s.io/<purpose>/<node>",
// and "/epoch-<n>" after it from epoch 1 on.
func label(purpose, node string, epoch int) string {
	l := "mixedk8s.io/" + purpose + "/" + node
	if epoch > 0 {
		l += "/epoch-" + strconv.Itoa(epoch)
	}
	return l
}

// hostKey is a Linux node's first-boot SSH host key in a secrets epoch.
func hostKey(seed []byte, node string, epoch int) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(derive(seed, "ssh-host-key", node, epoch, ed25519.SeedSize))
}

// lastingHostKey replaces hostKey after the first pinned connection.
func lastingHostKey(seed []byte, node string, epoch int) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(derive(seed, "ssh-host-key-lasting", node, epoch, ed25519.SeedSize))
}

// clientKey is the provisioner's own SSH key for the cluster's nodes. It
// is the same in every epoch: first-boot data authorises it on every Linux
// node and `nodeagent access` does not replace authorised keys, so a new
// one would lock the provisioner out of the nodes it has.
func clientKey(seed []byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(derive(seed, "ssh-client-key", "", 0, ed25519.SeedSize))
}

// adminPassword meets Windows' complexity rules: upper, lower, digit and
// symbol, 24 characters.
func adminPassword(seed []byte, node string, epoch int) string {
	return password(seed, "admin-password", node, epoch)
}

// lastingPassword replaces adminPassword after the first pinned connection.
func lastingPassword(seed []byte, node string, epoch int) string {
	return password(seed, "admin-password-lasting", node, epoch)
}

func password(seed []byte, purpose, node string, epoch int) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := derive(seed, purpose, node, epoch, 20)
	var buf bytes.Buffer
	buf.WriteString("Mk8-")
	for _, c := range b {
		buf.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return buf.String()
}

func hostKeyPEM(key ed25519.PrivateKey) (string, error) {
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(block)), nil
}

// ClientSigner returns the provisioner's SSH key for a cluster, for tools
// that reach the nodes the same way (the lab's bastion, diagnostics).
func (p *Provisioner) ClientSigner(ctx context.Context, cluster string) (ssh.Signer, error) {
	seed, err := p.seed(ctx, cluster)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(clientKey(seed))
}

// identity is what a node's first boot installs, in a secrets epoch.
func (p *Provisioner) identity(ctx context.Context, cluster, node string, epoch int, windows bool, extraKeys []string) (clouds.NodeIdentity, error) {
	seed, err := p.seed(ctx, cluster)
	if err != nil {
		return clouds.NodeIdentity{}, err
	}
	client, err := ssh.NewSignerFromKey(clientKey(seed))
	if err != nil {
		return clouds.NodeIdentity{}, err
	}
	id := clouds.NodeIdentity{AdminUser: AdminUser}
	if windows {
		certPEM, keyPEM, err := p.winrmCert(ctx, cluster, node, secretWinRM(node, epoch))
		if err != nil {
			return clouds.NodeIdentity{}, err
		}
		id.WinRMCertPEM, id.WinRMKeyPEM = string(certPEM), string(keyPEM)
		id.AdminPassword = adminPassword(seed, node, epoch)
		return id, nil
	}
	if id.SSHHostKeyPEM, err = hostKeyPEM(hostKey(seed, node, epoch)); err != nil {
		return clouds.NodeIdentity{}, fmt.Errorf("failed to encode the host key of %s: %w", node, err)
	}
	id.SSHAuthorizedKeys = append([]string{string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(client.PublicKey())))}, extraKeys...)
	return id, nil
}
