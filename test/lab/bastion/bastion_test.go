package bastion

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
)

func key(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBastion(t *testing.T) {
	t.Parallel()
	h, err := host.New("node", host.Linux, netip.MustParseAddr("127.10.2.1"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.Listen(7, func(c net.Conn) { _, _ = io.Copy(c, c) })
	t.Cleanup(h.Reboot)
	userKey := key(t)
	b, err := Start(t.Context(), Config{
		User:          "lab",
		AuthorizedKey: userKey.PublicKey(),
		Resolve: func(a netip.Addr) *host.Host {
			if a == h.Addr {
				return h
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if ap := netip.MustParseAddrPort(b.Addr()); ap.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("bastion listens on %s; it must use 127.0.0.1 only", b.Addr())
	}

	login := func(user string, k ssh.Signer) (*ssh.Client, error) {
		return ssh.Dial("tcp", b.Addr(), &ssh.ClientConfig{
			User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(k)}, HostKeyCallback: ssh.FixedHostKey(b.HostKey()),
		})
	}
	if _, err := login("root", userKey); err == nil {
		t.Error("another user name was let in")
	}
	if _, err := login("lab", key(t)); err == nil {
		t.Error("an unknown key was let in")
	}
	c, err := login("lab", userKey)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("forwards to a virtual host's port", func(t *testing.T) {
		conn, err := c.Dial("tcp", "127.10.2.1:7")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = conn.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo through the bastion: %q %v", buf, err)
		}
	})

	for _, tc := range []struct{ addr, want string }{
		{"127.10.9.9:22", "no lab host at 127.10.9.9"},
		{"127.10.2.1:22", "connection refused"},
		{"node.invalid:22", "node.invalid is not a lab address"},
	} {
		t.Run("refuses "+tc.addr, func(t *testing.T) {
			_, err := c.Dial("tcp", tc.addr)
			var oce *ssh.OpenChannelError
			if !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed || !strings.Contains(oce.Message, tc.want) {
				t.Fatalf("want ConnectionFailed %q, got %v", tc.want, err)
			}
		})
	}

	t.Run("refuses sessions", func(t *testing.T) {
		if _, err := c.NewSession(); err == nil {
			t.Fatal("the bastion opened a session; it only forwards")
		}
	})
}
