package winrm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/netip"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/test/lab/bastion"
	"github.com/mixedk8s/mixedk8s/test/lab/host"
	mkssh "github.com/mixedk8s/mixedk8s/transport/ssh"
)

// The path the provisioner takes to a Windows node: our SSH transport to the
// lab's bastion, then WinRM over HTTPS through its direct-tcpip forwarding.
func TestThroughTheLabBastionWithTheSSHTransport(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	_, userKey, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := gossh.NewSignerFromKey(userKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := bastion.Start(ctx, bastion.Config{
		User:          "jump",
		AuthorizedKey: signer.PublicKey(),
		Resolve: func(addr netip.Addr) *host.Host {
			if addr == l.h.Addr {
				return l.h
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	jump, dial, err := mkssh.Bastion(ctx, mkssh.Config{Addr: b.Addr(), User: "jump", Signer: signer, HostKey: b.HostKey()})
	if err != nil {
		t.Fatalf("connect to the bastion: %v", err)
	}
	t.Cleanup(func() { jump.Close() })

	cfg := l.config(NTLM)
	cfg.Dial = dial
	c := l.connect(t, cfg)
	var stdout bytes.Buffer
	if code, err := c.Run(ctx, "hostname", &stdout, nil); err != nil || code != 0 || stdout.String() != labHostName+"\r\n" {
		t.Fatalf("Run through the lab bastion = %d, %q, %v", code, stdout.String(), err)
	}
	data := randomBytes(1<<20, 9)
	if err := c.Upload(ctx, `C:\k\via-lab-bastion.bin`, bytes.NewReader(data), int64(len(data)), 0o644); err != nil {
		t.Fatalf("Upload through the lab bastion: %v", err)
	}
	assertFile(t, l, `C:\k\via-lab-bastion.bin`, data)
}
