package ssh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/transport"
)

const sshdPath = "/usr/sbin/sshd"

// lockedBuffer collects sshd's log for the test's failure output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startOpenSSH runs Debian's sshd in the foreground on a free 127.0.0.1
// port with a throwaway host key and authorized_keys, as the current user.
func startOpenSSH(t *testing.T, clientKey ssh.PublicKey) (addr string, hostKey ssh.PublicKey, login string) {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		if os.Getenv("MIXEDK8S_REQUIRE_SSHD") == "1" {
			t.Fatalf("MIXEDK8S_REQUIRE_SSHD=1 but %s is missing: %v; install it with `apt-get install -y openssh-server`", sshdPath, err)
		}
		t.Skipf("%s is missing, so the test against real OpenSSH cannot run; install it with `apt-get update && apt-get install -y openssh-server` (CI sets MIXEDK8S_REQUIRE_SSHD=1 to make this a failure)", sshdPath)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if me.Uid == "0" {
		// sshd refuses to start as root without its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("create /run/sshd for sshd: %v", err)
		}
	}
	dir := t.TempDir()
	signer, _, hostPEM, err := generateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := write("ssh_host_ed25519_key", hostPEM, 0o600)
	authFile := write("authorized_keys", ssh.MarshalAuthorizedKey(clientKey), 0o600)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()

	cfg := write("sshd_config", []byte(strings.Join([]string{
		"Port " + port,
		"ListenAddress 127.0.0.1",
		"HostKey " + keyFile,
		"AuthorizedKeysFile " + authFile,
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"StrictModes no",
		"UsePAM no",
		"PidFile none",
		"LogLevel VERBOSE",
		"Subsystem sftp internal-sftp",
		"",
	}, "\n")), 0o600)

	cmd := exec.Command(sshdPath, "-D", "-e", "-f", cfg)
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	return addr, signer.PublicKey(), me.Username
}

func TestAgainstOpenSSH(t *testing.T) {
	t.Parallel()
	clientKey := newKey(t)
	addr, hostKey, login := startOpenSSH(t, clientKey.PublicKey())
	cfg := Config{Addr: addr, User: login, Signer: clientKey, HostKey: hostKey, Sudo: true}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// sshd may still be starting: Dial waits through the refused connections.
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial real sshd: %v", err)
	}
	t.Cleanup(func() { c.Close() })

	t.Run("run streams both outputs and the exit code", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code, err := c.Run(ctx, "echo out; echo err >&2; exit 3", &stdout, &stderr)
		if err != nil || code != 3 || stdout.String() != "out\n" || stderr.String() != "err\n" {
			t.Fatalf("got %d %q %q %v", code, stdout.String(), stderr.String(), err)
		}
	})

	t.Run("upload is intact, atomic and keeps its mode", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "sub", "agent")
		data := randomBytes(t, 8<<20)
		start := time.Now()
		if err := c.Upload(ctx, dst, bytes.NewReader(data), int64(len(data)), 0o750); err != nil {
			t.Fatalf("Upload: %v", err)
		}
		t.Logf("8 MB upload to OpenSSH took %s", time.Since(start).Round(time.Millisecond))
		got, err := os.ReadFile(dst)
		if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("content differs (%v)", err)
		}
		if st, _ := os.Stat(dst); st.Mode().Perm() != 0o750 {
			t.Errorf("mode %v, want 0750", st.Mode().Perm())
		}
		if _, err := os.Stat(dst + tmpSuffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("tmp file left behind: %v", err)
		}
	})

	t.Run("cancel returns within two seconds", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		canceledAt := make(chan time.Time, 1)
		time.AfterFunc(200*time.Millisecond, func() { canceledAt <- time.Now(); ccancel() })
		_, err := c.Run(cctx, "sleep 30", nil, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		if d := time.Since(<-canceledAt); d > 2*time.Second {
			t.Errorf("Run returned %s after cancel", d)
		}
	})

	t.Run("a wrong pinned host key is refused", func(t *testing.T) {
		wrong := cfg
		wrong.HostKey = newKey(t).PublicKey()
		start := time.Now()
		_, err := Dial(ctx, wrong)
		if !errors.Is(err, transport.ErrIdentityMismatch) {
			t.Fatalf("want ErrIdentityMismatch, got %v", err)
		}
		if !strings.Contains(err.Error(), ssh.FingerprintSHA256(hostKey)) || time.Since(start) > time.Second {
			t.Errorf("error should name the real key and come at once: %v (%s)", err, time.Since(start))
		}
	})

	t.Run("an unknown client key is an auth failure", func(t *testing.T) {
		stranger := cfg
		stranger.Signer = newKey(t)
		_, err := Dial(ctx, stranger)
		if !errors.Is(err, transport.ErrAuth) {
			t.Fatalf("want ErrAuth, got %v", err)
		}
	})

	t.Run("a host key of another type is an identity mismatch", func(t *testing.T) {
		rsaLike := cfg
		rsaLike.HostKey = otherTypeKey{hostKey}
		_, err := Dial(ctx, rsaLike)
		if !errors.Is(err, transport.ErrIdentityMismatch) {
			t.Fatalf("want ErrIdentityMismatch, got %v", err)
		}
	})
}

// otherTypeKey claims to be an ecdsa key, which the sshd under test does not have.
type otherTypeKey struct{ ssh.PublicKey }

func (otherTypeKey) Type() string { return ssh.KeyAlgoECDSA256 }
