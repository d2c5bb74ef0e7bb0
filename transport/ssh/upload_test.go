package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/bastion"
	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/transport"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// onNode reads a file of the virtual host from its sandbox.
func (l *lab) onNode(t *testing.T, p string) ([]byte, fs.FileInfo) {
	t.Helper()
	real, err := l.h.Path(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(real)
	if err != nil {
		t.Fatalf("read %s on the node: %v", p, err)
	}
	st, _ := os.Stat(real)
	return b, st
}

func (l *lab) exists(t *testing.T, p string) bool {
	real, _ := l.h.Path(p)
	_, err := os.Stat(real)
	return err == nil
}

func TestUpload50MBIntact(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	c := l.dial(t, l.config())
	data := randomBytes(t, 50<<20)
	start := time.Now()
	err := c.Upload(t.Context(), "/opt/mixedk8s/bin/nodeagent", bytes.NewReader(data), int64(len(data)), 0o755)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	t.Logf("50 MB upload (with remote sha256sum) took %s", took.Round(time.Millisecond))
	got, st := l.onNode(t, "/opt/mixedk8s/bin/nodeagent")
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("content differs: %d bytes on the node, %d sent", len(got), len(data))
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", st.Mode().Perm())
	}
	if l.exists(t, "/opt/mixedk8s/bin/nodeagent"+tmpSuffix) {
		t.Error("tmp file left behind")
	}
}

func TestUploadReplacesAndKeepsSecretsPrivate(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	c := l.dial(t, l.config())
	for _, content := range []string{"first version, longer than the second\n", "second\n"} {
		if err := c.Upload(t.Context(), "/etc/mixedk8s/token", strings.NewReader(content), int64(len(content)), 0o600); err != nil {
			t.Fatalf("Upload: %v", err)
		}
		got, st := l.onNode(t, "/etc/mixedk8s/token")
		if string(got) != content || st.Mode().Perm() != 0o600 {
			t.Errorf("node has %q mode %v; want %q mode 0600", got, st.Mode().Perm(), content)
		}
	}
}

func TestUploadRefusesShortSource(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	c := l.dial(t, l.config())
	err := c.Upload(t.Context(), "/etc/x", strings.NewReader("short"), 100, 0o644)
	if err == nil || !strings.Contains(err.Error(), "the source gave 5 bytes, 100 were announced") {
		t.Fatalf("want a size error, got %v", err)
	}
	if l.exists(t, "/etc/x") || l.exists(t, "/etc/x"+tmpSuffix) {
		t.Error("a failed upload left files behind")
	}
}

// rebootAfter is a source that reboots the node once n bytes were read.
type rebootAfter struct {
	r    io.Reader
	n    int64
	h    *host.Host
	once sync.Once
}

func (ra *rebootAfter) Read(p []byte) (int, error) {
	n, err := ra.r.Read(p)
	ra.n -= int64(n)
	if ra.n <= 0 {
		ra.once.Do(ra.h.Reboot)
	}
	return n, err
}

func TestUploadDroppedMidwayNeverHalfWritesTheTarget(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	const target = "/opt/mixedk8s/bin/nodeagent"
	old, next := randomBytes(t, 8<<20), randomBytes(t, 8<<20)
	c := l.dial(t, l.config())
	if err := c.Upload(t.Context(), target, bytes.NewReader(old), int64(len(old)), 0o755); err != nil {
		t.Fatalf("first Upload: %v", err)
	}

	src := &rebootAfter{r: bytes.NewReader(next), n: 3 << 20, h: l.h}
	err := c.Upload(t.Context(), target, src, int64(len(next)), 0o755)
	if !errors.Is(err, transport.ErrRebooting) {
		t.Fatalf("Upload across a reboot: want ErrRebooting, got %v", err)
	}
	if got, _ := l.onNode(t, target); sha256.Sum256(got) != sha256.Sum256(old) {
		t.Fatal("the target changed although the upload did not finish")
	}

	c2 := l.dial(t, l.config())
	if err := c2.Upload(t.Context(), target, bytes.NewReader(next), int64(len(next)), 0o755); err != nil {
		t.Fatalf("Upload after reconnect: %v", err)
	}
	if got, _ := l.onNode(t, target); sha256.Sum256(got) != sha256.Sum256(next) {
		t.Fatal("the target does not hold the new content")
	}
	if l.exists(t, target+tmpSuffix) {
		t.Error("tmp file left behind")
	}
}

// stallingReader gives some bytes, then blocks until released.
type stallingReader struct {
	left    int
	release chan struct{}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		<-s.release
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), s.left)
	s.left -= n
	return n, nil
}

func TestUploadCancelReturnsWithinTwoSeconds(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	c := l.dial(t, l.config())
	src := &stallingReader{left: 1 << 20, release: make(chan struct{})}
	t.Cleanup(func() { close(src.release) })
	ctx, cancel := context.WithCancel(t.Context())
	canceledAt := make(chan time.Time, 1)
	time.AfterFunc(300*time.Millisecond, func() { canceledAt <- time.Now(); cancel() })
	err := c.Upload(ctx, "/opt/big", src, 50<<20, 0o644)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if d := time.Since(<-canceledAt); d > 2*time.Second {
		t.Errorf("Upload returned %s after cancel", d)
	}
	if l.exists(t, "/opt/big") {
		t.Error("a cancelled upload created the target")
	}
}

// uploadConfigWithSudo uploads an owner-only config as a sudo user.
func uploadConfigWithSudo(t *testing.T) *lab {
	t.Helper()
	l := newLab(t, true)
	cfg := l.config()
	cfg.User, cfg.Sudo = "ubuntu", true
	c := l.dial(t, cfg)
	if err := c.Upload(t.Context(), "/etc/mixedk8s/config.json", strings.NewReader("{}"), 2, 0o600); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	return l
}

func TestUploadWithSudoRunsSFTPServerThroughSudo(t *testing.T) {
	t.Parallel()
	l := uploadConfigWithSudo(t)
	if got, _ := l.onNode(t, "/etc/mixedk8s/config.json"); string(got) != "{}" {
		t.Errorf("node has %q", got)
	}
	var lines []string
	for _, e := range l.srv.Execs() {
		lines = append(lines, e.Line)
	}
	want := []string{"sudo -n /usr/lib/openssh/sftp-server -u 077", "sudo -n sh -c 'sha256sum /etc/mixedk8s/config.json.mixedk8s-tmp'"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("node ran %q, want %q", lines, want)
	}
}

// A file holding secrets is never readable by others, not even between its
// creation and the chmod: sftp-server runs with umask 077.
func TestUploadCreatesFilesOwnerOnly(t *testing.T) {
	t.Parallel()
	l := uploadConfigWithSudo(t)
	created := l.srv.Created()
	if len(created) == 0 {
		t.Fatal("the server saw no file created")
	}
	for _, f := range created {
		if f.Mode&0o077 != 0 {
			t.Errorf("%s was created %v: group and others could open it before the chmod", f.Path, f.Mode)
		}
	}
}

func TestThroughBastion(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	bastionKey := newKey(t)
	b, err := bastion.Start(t.Context(), bastion.Config{
		User:          "lab",
		AuthorizedKey: bastionKey.PublicKey(),
		Resolve: func(a netip.Addr) *host.Host {
			if a == l.h.Addr {
				return l.h
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	jump, dial, err := Bastion(t.Context(), Config{Addr: b.Addr(), User: "lab", Signer: bastionKey, HostKey: b.HostKey()})
	if err != nil {
		t.Fatalf("Bastion: %v", err)
	}
	t.Cleanup(func() { jump.Close() })

	cfg := l.config()
	cfg.Dial = dial
	c := l.dial(t, cfg)
	var out bytes.Buffer
	if code, err := c.Run(t.Context(), "uname -n", &out, nil); err != nil || code != 0 || out.String() != "node\n" {
		t.Fatalf("Run through the bastion: %d %q %v", code, out.String(), err)
	}
	data := randomBytes(t, 4<<20)
	if err := c.Upload(t.Context(), "/opt/agent", bytes.NewReader(data), int64(len(data)), 0o755); err != nil {
		t.Fatalf("Upload through the bastion: %v", err)
	}
	if got, _ := l.onNode(t, "/opt/agent"); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}

	// A node the lab does not have (yet) is not ready, not a hard failure.
	unknown := cfg
	unknown.Addr = "127.10.200.1:22"
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, unknown)
	if !errors.Is(err, transport.ErrNotReady) || !strings.Contains(err.Error(), "no lab host at 127.10.200.1") {
		t.Fatalf("want ErrNotReady naming the address, got %v", err)
	}

	// The bastion's own key is pinned as well.
	_, _, err = Bastion(t.Context(), Config{Addr: b.Addr(), User: "lab", Signer: bastionKey, HostKey: newKey(t).PublicKey()})
	if !errors.Is(err, transport.ErrIdentityMismatch) {
		t.Fatalf("bastion with a wrong pinned key: want ErrIdentityMismatch, got %v", err)
	}

	// A dropped bastion fails further dials for good: the caller redials it.
	b.DropConnections()
	if !jump.diedWithin(2 * time.Second) {
		t.Fatal("bastion connection still alive after the bastion dropped it")
	}
	if _, err := dial(t.Context(), "tcp", cfg.Addr); err == nil || errors.Is(err, transport.ErrNotReady) {
		t.Fatalf("dial through a closed bastion: want a final error, got %v", err)
	}
}
