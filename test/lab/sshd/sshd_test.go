package sshd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/pkg/sftp"
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

// connect serves a fresh host and logs in as root, with the raw x/crypto
// client so the tests see the server's answers unfiltered.
func connect(t *testing.T) (*host.Host, *ssh.Client) {
	t.Helper()
	h, err := host.New("node", host.Linux, netip.MustParseAddr("127.10.1.1"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	host.InstallLinuxCommands(h)
	hostKey, client := key(t), key(t)
	Serve(h, Config{HostKey: hostKey, AuthorizedKeys: map[string][]ssh.PublicKey{"root": {client.PublicKey()}}})
	nc, err := h.Dial(t.Context(), 22)
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, "node:22", &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(client)},
		HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := ssh.NewClient(conn, chans, reqs)
	t.Cleanup(func() { c.Close(); h.Reboot() })
	return h, c
}

func TestExecForwardsStdinAndExitStatus(t *testing.T) {
	t.Parallel()
	_, c := connect(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdin, s.Stdout = strings.NewReader("from stdin"), &out
	if err := s.Run("cat"); err != nil || out.String() != "from stdin" {
		t.Fatalf("cat: %q %v", out.String(), err)
	}
	s, _ = c.NewSession()
	var exit *ssh.ExitError
	if err := s.Run("exit 5"); !errors.As(err, &exit) || exit.ExitStatus() != 5 {
		t.Fatalf("exit 5: %v", err)
	}
}

func TestShellAndPtyAreRefused(t *testing.T) {
	t.Parallel()
	_, c := connect(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, nil); err == nil {
		t.Error("pty accepted")
	}
	if err := s.Shell(); err == nil {
		t.Error("shell accepted")
	}
}

func TestKeepAliveIsAnswered(t *testing.T) {
	t.Parallel()
	_, c := connect(t)
	ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || !ok {
		t.Fatalf("keepalive: %v %v", ok, err)
	}
}

func TestWrongUserOrKeyIsRefused(t *testing.T) {
	t.Parallel()
	h, err := host.New("node", host.Linux, netip.MustParseAddr("127.10.1.2"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hostKey, client := key(t), key(t)
	Serve(h, Config{HostKey: hostKey, AuthorizedKeys: map[string][]ssh.PublicKey{"root": {client.PublicKey()}}})
	t.Cleanup(h.Reboot)
	for _, tc := range []struct {
		user string
		key  ssh.Signer
	}{{"ubuntu", client}, {"root", key(t)}} {
		nc, err := h.Dial(t.Context(), 22)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = ssh.NewClientConn(nc, "node:22", &ssh.ClientConfig{
			User: tc.user, Auth: []ssh.AuthMethod{ssh.PublicKeys(tc.key)}, HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()),
		})
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("%s: want an auth refusal, got %v", tc.user, err)
		}
	}
}

func TestSFTPServesTheSandboxAndRefusesLinks(t *testing.T) {
	t.Parallel()
	h, c := connect(t)
	fc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	if err := fc.MkdirAll("/var/lib/x"); err != nil {
		t.Fatal(err)
	}
	f, err := fc.Create("/var/lib/x/f")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("data"))
	f.Close()
	real, _ := h.Path("/var/lib/x/f")
	if b, err := os.ReadFile(real); err != nil || string(b) != "data" {
		t.Fatalf("sandbox file: %q %v", b, err)
	}
	entries, err := fc.ReadDir("/var/lib/x")
	if err != nil || len(entries) != 1 || entries[0].Name() != "f" || entries[0].Size() != 4 {
		t.Fatalf("ReadDir: %v %v", entries, err)
	}
	// ".." cannot climb out: it stops at the sandbox's root.
	if _, err := fc.Stat("/../../../var/lib/x/f"); err != nil {
		t.Errorf("stat through ..: %v", err)
	}
	if err := fc.Symlink("/etc/shadow", "/var/lib/x/l"); err == nil {
		t.Error("symlink accepted; a link could point out of the sandbox")
	}
	if err := fc.PosixRename("/var/lib/x/f", "/var/lib/x/g"); err != nil {
		t.Errorf("posix-rename: %v", err)
	}
	if err := fc.Remove("/var/lib/x/g"); err != nil {
		t.Errorf("remove: %v", err)
	}
}
