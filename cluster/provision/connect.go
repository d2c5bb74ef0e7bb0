package provision

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/transport"
	mkssh "github.com/mixedk8s/mixedk8s/transport/ssh"
	"github.com/mixedk8s/mixedk8s/transport/winrm"
)

// bastion is one shared SSH connection to a jump host.
type bastion struct {
	mu   sync.Mutex
	conn *mkssh.Conn
}

func (b *bastion) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}

// dialer returns how to reach node addresses for a spec: the configured
// Dial, the spec's bastion, or a direct connection. A bastion connection that
// drops is made again on the next dial, so one lost jump-host session costs a
// retry, not the step.
func (p *Provisioner) dialer(ctx context.Context, spec cluster.Spec) (transport.DialFunc, error) {
	if p.cfg.Dial != nil {
		return p.cfg.Dial, nil
	}
	if spec.Access.Bastion == nil {
		return nil, nil
	}
	key, err := p.bastionKey(ctx, spec)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	b, ok := p.bastions[key]
	if !ok {
		b = &bastion{}
		p.bastions[key] = b
	}
	p.mu.Unlock()
	// Connect now, so a wrong bastion address or key fails here, once.
	if _, err := p.liveBastion(ctx, spec, b); err != nil {
		return nil, err
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := p.liveBastion(ctx, spec, b)
		if err != nil {
			return nil, err
		}
		nc, err := conn.DialContext(ctx, network, addr)
		if errors.Is(err, mkssh.ErrBastionClosed) {
			// The next dial connects to the bastion again.
			return nil, fmt.Errorf("dial %s: the bastion connection dropped: %w", addr, transport.ErrNotReady)
		}
		return nc, err
	}, nil
}

// bastionKey tells bastion connections apart by everything that makes one:
// the address, the pinned host key, the user and the client key, so two
// clusters that reach the same address as different users, or pin a
// different key there, never share a connection.
func (p *Provisioner) bastionKey(ctx context.Context, spec cluster.Spec) (string, error) {
	bs := spec.Access.Bastion
	signer, err := p.bastionSigner(ctx, spec)
	if err != nil {
		return "", err
	}
	return strings.Join([]string{bs.Address, strings.TrimSpace(bs.HostKey), bs.User, ssh.FingerprintSHA256(signer.PublicKey())}, "\x00"), nil
}

// liveBastion returns the bastion connection, making it again when it dropped.
func (p *Provisioner) liveBastion(ctx context.Context, spec cluster.Spec, b *bastion) (*mkssh.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil && b.conn.Alive() {
		return b.conn, nil
	}
	bs := spec.Access.Bastion
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(bs.HostKey))
	if err != nil {
		return nil, fmt.Errorf("access.bastion.host_key does not parse: %w; fix: paste the bastion's public host key in authorized_keys form", err)
	}
	signer, err := p.bastionSigner(ctx, spec)
	if err != nil {
		return nil, err
	}
	conn, _, err := mkssh.Bastion(ctx, mkssh.Config{Addr: bs.Address, User: bs.User, Signer: signer, HostKey: hostKey})
	if err != nil {
		return nil, fmt.Errorf("failed to connect to the bastion %s: %w", bs.Address, err)
	}
	if b.conn != nil {
		b.conn.Close()
	}
	b.conn = conn
	return conn, nil
}

// bastionSigner is the key for the bastion: the spec's key file, or the
// provisioner's own cluster key when the bastion trusts that.
func (p *Provisioner) bastionSigner(ctx context.Context, spec cluster.Spec) (ssh.Signer, error) {
	if p.cfg.BastionSigner != nil {
		return p.cfg.BastionSigner, nil
	}
	path := spec.Access.Bastion.PrivateKeyFile
	if path == "" {
		return p.ClientSigner(ctx, spec.Name)
	}
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read access.bastion.private_key_file: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("access.bastion.private_key_file %s is not an unencrypted SSH private key: %w; fix: point it at a key without a passphrase, or load it into the file decrypted", path, err)
	}
	return signer, nil
}

// nodeAddress is where a node is reached: its private address through a
// bastion or the configured dialer, otherwise its public address when it has one.
func nodeAddress(in clouds.Instance, viaJump bool) string {
	if !viaJump && in.PublicIP != "" {
		return in.PublicIP
	}
	return in.PrivateIP
}

// login is one way into a node: the identity it must show and the
// credentials it takes.
type login struct {
	// hostKey pins a Linux node's sshd.
	hostKey ssh.PublicKey
	// cert, or else thumbprint, pins a Windows node's WinRM listener.
	cert       *x509.Certificate
	thumbprint string
	user       string
	// passwords are tried in order (Windows).
	passwords []string
}

// endpoint is where and how a node is reached, and the cluster's seed.
type endpoint struct {
	addr string
	dial transport.DialFunc
	seed []byte
}

func (p *Provisioner) endpoint(ctx context.Context, spec cluster.Spec, n cluster.Node, in clouds.Instance) (endpoint, error) {
	dial, err := p.dialer(ctx, spec)
	if err != nil {
		return endpoint{}, err
	}
	addr := nodeAddress(in, dial != nil)
	if addr == "" {
		return endpoint{}, fmt.Errorf("instance %s (%s) of %s has no address yet: %w", in.ID, in.State, n.Name, transport.ErrNotReady)
	}
	seed, err := p.seed(ctx, spec.Name)
	if err != nil {
		return endpoint{}, err
	}
	return endpoint{addr: addr, dial: dial, seed: seed}, nil
}

// dialLogin opens a pinned connection with one login: SSH to Linux, WinRM to Windows.
func (p *Provisioner) dialLogin(ctx context.Context, n cluster.Node, ep endpoint, l login) (transport.Conn, error) {
	if n.OS == cluster.Windows {
		var err error
		for _, pw := range l.passwords {
			var conn *winrm.Conn
			conn, err = winrm.Dial(ctx, winrm.Config{
				Addr:        net.JoinHostPort(ep.addr, "5986"),
				User:        l.user,
				Password:    pw,
				Auth:        winrm.NTLM,
				Certificate: l.cert,
				Thumbprint:  l.thumbprint,
				Dial:        ep.dial,
			})
			switch {
			case err == nil:
				return conn, nil
			case !errors.Is(err, transport.ErrAuth):
				return nil, err
			}
		}
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(clientKey(ep.seed))
	if err != nil {
		return nil, err
	}
	return mkssh.Dial(ctx, mkssh.Config{
		Addr:    net.JoinHostPort(ep.addr, "22"),
		User:    AdminUser,
		Signer:  signer,
		HostKey: l.hostKey,
		Dial:    ep.dial,
		Sudo:    true,
		// First-boot scripts (or GCE's guest agent) install the authorised key after sshd starts.
		RetryAuthFor: p.cfg.ConnectTimeout / 5,
	})
}

// bootLogin is the identity a node's first boot installed in a secrets
// epoch: the one the provisioner derived and the cloud rendered into
// first-boot data, or, on a cloud whose nodes make their own (GCE), what
// the cloud observed the node publish, read once per instance ID. ok is
// false for a Windows node whose epoch's first-boot certificate was never
// made: no instance booted with it.
func (p *Provisioner) bootLogin(ctx context.Context, spec cluster.Spec, n cluster.Node, in clouds.Instance, seed []byte, epoch int) (l login, ok bool, err error) {
	if obs, ok := p.cfg.Cloud.(clouds.IdentityObserver); ok {
		id, err := p.observedIdentity(ctx, obs, n, in)
		if err != nil {
			return login{}, false, err
		}
		if n.OS == cluster.Windows {
			return login{thumbprint: id.WinRMThumbprint, user: id.AdminUser, passwords: []string{id.AdminPassword, lastingPassword(seed, n.Name, epoch)}}, true, nil
		}
		pin, err := preferredHostKey(id.SSHHostKeys)
		if err != nil {
			return login{}, false, fmt.Errorf("the host keys %s published: %w", n.Name, err)
		}
		return login{hostKey: pin}, true, nil
	}
	if n.OS == cluster.Windows {
		name := secretWinRM(n.Name, epoch)
		if epoch != spec.SecretsEpoch {
			// An older epoch's certificate is only read: making one now would pin what no node has.
			if _, ok, err := p.cfg.Secrets.Secret(ctx, spec.Name, name); err != nil || !ok {
				return login{}, false, err
			}
		}
		cert, err := p.winrmCertificate(ctx, spec.Name, n.Name, name)
		if err != nil {
			return login{}, false, err
		}
		// A run of the agent's access command cut after the password and
		// before the certificate leaves the boot certificate with the lasting password.
		return login{cert: cert, user: AdminUser, passwords: []string{adminPassword(seed, n.Name, epoch), lastingPassword(seed, n.Name, spec.SecretsEpoch)}}, true, nil
	}
	pin, err := ssh.NewPublicKey(hostKey(seed, n.Name, epoch).Public())
	if err != nil {
		return login{}, false, err
	}
	return login{hostKey: pin}, true, nil
}

// dialBoot reaches a node with the identity its first boot installed: the
// spec's secrets epoch's, or, for an instance made before the epoch was
// raised that never got its lasting identity, an older epoch's.
func (p *Provisioner) dialBoot(ctx context.Context, spec cluster.Spec, n cluster.Node, in clouds.Instance, ep endpoint, epoch int) (transport.Conn, error) {
	var first error
	for e := epoch; e >= 0; e-- {
		l, ok, err := p.bootLogin(ctx, spec, n, in, ep.seed, e)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		conn, err := p.dialLogin(ctx, n, ep, l)
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if _, observed := p.cfg.Cloud.(clouds.IdentityObserver); observed || !errors.Is(err, transport.ErrIdentityMismatch) {
			break
		}
	}
	return nil, first
}

// lastingLogin is the identity the provisioner installs over its first
// pinned connection in a secrets epoch, made from the seed with labels of
// their own (and, for the WinRM certificate, kept in the secret store), so
// nothing first-boot data carried opens the node afterwards.
func (p *Provisioner) lastingLogin(ctx context.Context, spec cluster.Spec, n cluster.Node, seed []byte, epoch int) (login, error) {
	if n.OS == cluster.Windows {
		cert, err := p.winrmCertificate(ctx, spec.Name, n.Name, secretLastingWinRM(n.Name, epoch))
		if err != nil {
			return login{}, err
		}
		return login{cert: cert, user: AdminUser, passwords: []string{lastingPassword(seed, n.Name, epoch)}}, nil
	}
	pin, err := ssh.NewPublicKey(lastingHostKey(seed, n.Name, epoch).Public())
	if err != nil {
		return login{}, err
	}
	return login{hostKey: pin}, nil
}

// winrmCertificate is a stored WinRM certificate, parsed.
func (p *Provisioner) winrmCertificate(ctx context.Context, cluster, node string, name clouds.SecretName) (*x509.Certificate, error) {
	certPEM, _, err := p.winrmCert(ctx, cluster, node, name)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, fmt.Errorf("the WinRM certificate of %s is not PEM", node)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the WinRM certificate of %s does not parse: %w", node, err)
	}
	return cert, nil
}

// connectBoot opens a connection with the identity first boot installed.
func (p *Provisioner) connectBoot(ctx context.Context, spec cluster.Spec, n cluster.Node, in clouds.Instance) (transport.Conn, error) {
	ep, err := p.endpoint(ctx, spec, n, in)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	return p.dialBoot(ctx, spec, n, in, ep, spec.SecretsEpoch)
}

// errNoControlPlane: Kubernetes-level work needs the first control-plane node.
var errNoControlPlane = errors.New("the cluster has no running first control-plane node")

// observedIdentity is what the cloud observed an instance publish, read once per instance ID.
func (p *Provisioner) observedIdentity(ctx context.Context, obs clouds.IdentityObserver, n cluster.Node, in clouds.Instance) (clouds.ObservedIdentity, error) {
	p.mu.Lock()
	id, ok := p.observed[in.ID]
	p.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := obs.ObservedIdentity(ctx, in)
	if err != nil {
		if clouds.KindOf(err).Retryable() {
			return clouds.ObservedIdentity{}, fmt.Errorf("read the identity %s published: %w: %w", n.Name, err, transport.ErrNotReady)
		}
		return clouds.ObservedIdentity{}, fmt.Errorf("read the identity %s published: %w", n.Name, err)
	}
	p.mu.Lock()
	p.observed[in.ID] = id
	p.mu.Unlock()
	return id, nil
}

// preferredHostKey picks ed25519, else the first key that parses.
func preferredHostKey(keys []string) (ssh.PublicKey, error) {
	var first ssh.PublicKey
	for _, k := range keys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			continue
		}
		if pk.Type() == ssh.KeyAlgoED25519 {
			return pk, nil
		}
		if first == nil {
			first = pk
		}
	}
	if first == nil {
		return nil, errors.New("none parses as an SSH public key")
	}
	return first, nil
}
