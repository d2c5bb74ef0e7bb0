package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/transport"
	mkssh "github.com/mixedk8s/mixedk8s/transport/ssh"
	"github.com/mixedk8s/mixedk8s/transport/winrm"
)

// StillOpens tries an identity, as a reader of the instance's first-boot
// data holds it, against the node's own sshd or WinRM listener, and lists
// what of it still works: a host key or certificate the node still
// presents (so a client pinning it would trust the node, or a holder of
// its private key could pass for the node), a password the node still
// accepts. Empty means nothing of it is valid any more.
func (n *Node) StillOpens(ctx context.Context, id clouds.NodeIdentity) ([]string, error) {
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		p := 22
		if port == "5986" {
			p = 5986
		}
		return n.Host.Dial(ctx, p)
	}
	var open []string
	if n.win == nil {
		signer, err := ssh.ParsePrivateKey([]byte(id.SSHHostKeyPEM))
		if err != nil {
			return nil, fmt.Errorf("the first-boot host key: %w", err)
		}
		// Any client key: the host key is checked before the client authenticates.
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		client, _ := ssh.NewSignerFromKey(priv)
		_, err = mkssh.Dial(ctx, mkssh.Config{Addr: "node:22", User: id.AdminUser, Signer: client, HostKey: signer.PublicKey(), Dial: dial, KeepAlive: -1})
		if !errors.Is(err, transport.ErrIdentityMismatch) {
			open = append(open, fmt.Sprintf("sshd presents the first-boot host key %s (%v)", ssh.FingerprintSHA256(signer.PublicKey()), err))
		}
		return open, nil
	}
	block, _ := pem.Decode([]byte(id.WinRMCertPEM))
	if block == nil {
		return nil, errors.New("the first-boot WinRM certificate is not PEM")
	}
	bootCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	conn, err := winrm.Dial(ctx, winrm.Config{Addr: "node:5986", User: id.AdminUser, Password: id.AdminPassword, Certificate: bootCert, Dial: dial})
	if err == nil {
		conn.Close()
	}
	if !errors.Is(err, transport.ErrIdentityMismatch) {
		open = append(open, fmt.Sprintf("the WinRM listener presents the first-boot certificate (%v)", err))
	}
	// Pinning what the listener presents now, the first-boot password must be refused.
	block, _ = pem.Decode([]byte(n.Sandbox.Access().WinRMCertPEM))
	if block == nil {
		return nil, errors.New("the WinRM listener presents no certificate")
	}
	sum := sha1.Sum(block.Bytes)
	conn, err = winrm.Dial(ctx, winrm.Config{Addr: "node:5986", User: id.AdminUser, Password: id.AdminPassword, Thumbprint: hex.EncodeToString(sum[:]), Dial: dial})
	if err == nil {
		conn.Close()
	}
	if !errors.Is(err, transport.ErrAuth) {
		open = append(open, fmt.Sprintf("%s's first-boot password is accepted (%v)", id.AdminUser, err))
	}
	return open, nil
}
