package provision

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
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
	p.mu.Lock()
	b, ok := p.bastions[spec.Access.Bastion.Address]
	if !ok {
		b = &bastion{}
		p.bastions[spec.Access.Bastion.Address] = b
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

// connect opens a pinned connection to a node: SSH to Linux, WinRM to Windows.
func (p *Provisioner) connect(ctx context.Context, spec cluster.Spec, n cluster.Node, in clouds.Instance) (transport.Conn, error) {
	dial, err := p.dialer(ctx, spec)
	if err != nil {
		return nil, err
	}
	addr := nodeAddress(in, dial != nil)
	if addr == "" {
		return nil, fmt.Errorf("instance %s (%s) of %s has no address yet: %w", in.ID, in.State, n.Name, transport.ErrNotReady)
	}
	seed, err := p.seed(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	if obs, ok := p.cfg.Cloud.(clouds.IdentityObserver); ok {
		return p.connectObserved(ctx, obs, n, in, addr, seed, dial)
	}
	if n.OS == cluster.Windows {
		certPEM, _, err := p.winrmCert(ctx, spec.Name, n.Name)
		if err != nil {
			return nil, err
		}
		block, _ := pem.Decode(certPEM)
		if block == nil {
			return nil, fmt.Errorf("the WinRM certificate of %s is not PEM", n.Name)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the WinRM certificate of %s does not parse: %w", n.Name, err)
		}
		return winrm.Dial(ctx, winrm.Config{
			Addr:        net.JoinHostPort(addr, "5986"),
			User:        AdminUser,
			Password:    adminPassword(seed, n.Name),
			Auth:        winrm.NTLM,
			Certificate: cert,
			Dial:        dial,
		})
	}
	signer, err := ssh.NewSignerFromKey(clientKey(seed))
	if err != nil {
		return nil, err
	}
	pin, err := ssh.NewPublicKey(hostKey(seed, n.Name).Public())
	if err != nil {
		return nil, err
	}
	return mkssh.Dial(ctx, mkssh.Config{
		Addr:    net.JoinHostPort(addr, "22"),
		User:    AdminUser,
		Signer:  signer,
		HostKey: pin,
		Dial:    dial,
		Sudo:    true,
		// First-boot scripts install the authorised key after sshd starts.
		RetryAuthFor: p.cfg.ConnectTimeout / 5,
	})
}

// errNoControlPlane: Kubernetes-level work needs the first control-plane node.
var errNoControlPlane = errors.New("the cluster has no running first control-plane node")

// connectObserved reaches a node whose cloud let it make its own identity
// (GCE): the pins and the Windows login are what the cloud observed the
// instance publish, read once per instance ID; the SSH client key is still
// the provisioner's.
func (p *Provisioner) connectObserved(ctx context.Context, obs clouds.IdentityObserver, n cluster.Node, in clouds.Instance, addr string, seed []byte, dial transport.DialFunc) (transport.Conn, error) {
	p.mu.Lock()
	id, ok := p.observed[in.ID]
	p.mu.Unlock()
	if !ok {
		var err error
		id, err = obs.ObservedIdentity(ctx, in)
		if err != nil {
			if clouds.KindOf(err).Retryable() {
				return nil, fmt.Errorf("read the identity %s published: %w: %w", n.Name, err, transport.ErrNotReady)
			}
			return nil, fmt.Errorf("read the identity %s published: %w", n.Name, err)
		}
		p.mu.Lock()
		p.observed[in.ID] = id
		p.mu.Unlock()
	}
	if n.OS == cluster.Windows {
		return winrm.Dial(ctx, winrm.Config{
			Addr:       net.JoinHostPort(addr, "5986"),
			User:       id.AdminUser,
			Password:   id.AdminPassword,
			Auth:       winrm.NTLM,
			Thumbprint: id.WinRMThumbprint,
			Dial:       dial,
		})
	}
	pin, err := preferredHostKey(id.SSHHostKeys)
	if err != nil {
		return nil, fmt.Errorf("the host keys %s published: %w", n.Name, err)
	}
	signer, err := ssh.NewSignerFromKey(clientKey(seed))
	if err != nil {
		return nil, err
	}
	return mkssh.Dial(ctx, mkssh.Config{
		Addr: net.JoinHostPort(addr, "22"), User: AdminUser, Signer: signer, HostKey: pin, Dial: dial, Sudo: true,
		// The guest agent adds the authorised key after sshd starts.
		RetryAuthFor: p.cfg.ConnectTimeout / 5,
	})
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
