package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/transport"
)

func TestRunExitCodesAndOutput(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	c := l.dial(t, l.config())
	for _, tc := range []struct {
		cmd            string
		code           int
		stdout, stderr string
	}{
		{cmd: "echo hello world", code: 0, stdout: "hello world\n"},
		{cmd: "true", code: 0},
		{cmd: "false", code: 1},
		{cmd: "exit 3", code: 3},
		{cmd: "nosuchprogram --flag", code: 127, stderr: "sh: 1: nosuchprogram: not found\n"},
		{cmd: "cat /missing", code: 1, stderr: "cat: /missing: No such file or directory\n"},
		{cmd: "uname -s", code: 0, stdout: "Linux\n"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code, err := c.Run(t.Context(), tc.cmd, &stdout, &stderr)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if code != tc.code || stdout.String() != tc.stdout || stderr.String() != tc.stderr {
				t.Errorf("got code %d stdout %q stderr %q; want %d %q %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestRunStreamsOutputAsProduced(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	release := make(chan struct{})
	l.h.Handle("progress", func(ctx context.Context, _ *host.Host, p *host.Process) int {
		fmt.Fprintln(p.Stdout, "step 1")
		fmt.Fprintln(p.Stderr, "warning 1")
		select {
		case <-release:
		case <-ctx.Done():
			return 1
		}
		fmt.Fprintln(p.Stdout, "step 2")
		return 0
	})
	c := l.dial(t, l.config())
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := c.Run(t.Context(), "progress", stdout, stderr)
		done <- result{code, err}
	}()
	deadline := time.After(5 * time.Second)
	for stdout.String() != "step 1\n" || stderr.String() != "warning 1\n" {
		select {
		case <-stdout.wrote:
		case <-stderr.wrote:
		case <-deadline:
			t.Fatalf("output did not stream before the command ended: stdout %q stderr %q", stdout.String(), stderr.String())
		}
	}
	close(release)
	r := <-done
	if r.err != nil || r.code != 0 {
		t.Fatalf("Run: code %d, %v", r.code, r.err)
	}
	if stdout.String() != "step 1\nstep 2\n" {
		t.Errorf("stdout %q", stdout.String())
	}
}

func TestHostKeyMismatchIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	cfg := l.config()
	other := newKey(t)
	cfg.HostKey = other.PublicKey()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, cfg)
	if !errors.Is(err, transport.ErrIdentityMismatch) {
		t.Fatalf("want ErrIdentityMismatch, got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a mismatch must not be retried; Dial took %s", d)
	}
	msg := err.Error()
	for _, want := range []string{
		"ssh to " + cfg.Addr,
		"host key mismatch",
		"got ssh-ed25519 " + ssh.FingerprintSHA256(l.hostKey.PublicKey()),
		"pinned ssh-ed25519 " + ssh.FingerprintSHA256(other.PublicKey()),
		"fix: ",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

func TestAuthRefusal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		retryAuthFor time.Duration
		authorizeIn  time.Duration // 0: never
		wantErr      bool
		minTime      time.Duration
	}{
		{name: "final at once without a retry window", wantErr: true},
		{name: "final after the retry window", retryAuthFor: 400 * time.Millisecond, wantErr: true, minTime: 400 * time.Millisecond},
		{name: "succeeds once first boot installs the key", retryAuthFor: 5 * time.Second, authorizeIn: 300 * time.Millisecond, minTime: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t, true)
			l.srv.Authorize("root")
			if tc.authorizeIn > 0 {
				time.AfterFunc(tc.authorizeIn, func() { l.srv.Authorize("root", l.client.PublicKey()) })
			}
			cfg := l.config()
			cfg.RetryAuthFor = tc.retryAuthFor
			start := time.Now()
			c, err := Dial(t.Context(), cfg)
			took := time.Since(start)
			if tc.wantErr {
				if !errors.Is(err, transport.ErrAuth) {
					t.Fatalf("want ErrAuth, got %v", err)
				}
				if !strings.Contains(err.Error(), ssh.FingerprintSHA256(l.client.PublicKey())) || !strings.Contains(err.Error(), "fix: ") {
					t.Errorf("error should name the key's fingerprint and the fix: %v", err)
				}
				if took > tc.retryAuthFor+2*time.Second {
					t.Errorf("gave up after %s, window was %s", took, tc.retryAuthFor)
				}
			} else {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				c.Close()
			}
			if took < tc.minTime {
				t.Errorf("Dial returned after %s, before %s", took, tc.minTime)
			}
		})
	}
}

func TestNotReadyHostIsRetriedUntilItComesUp(t *testing.T) {
	t.Parallel()
	l := newLab(t, false)
	time.AfterFunc(400*time.Millisecond, l.serve)
	c := l.dial(t, l.config())
	if code, err := c.Run(t.Context(), "true", nil, nil); err != nil || code != 0 {
		t.Fatalf("Run after boot: %d, %v", code, err)
	}
}

func TestNotReadyHostGivesUpWithTheContext(t *testing.T) {
	t.Parallel()
	l := newLab(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, l.config())
	if !errors.Is(err, transport.ErrNotReady) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want ErrNotReady and DeadlineExceeded, got %v", err)
	}
}

func TestNotReadyOnRealRefusedPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, Config{Addr: addr, User: "root", Signer: newKey(t), HostKey: newKey(t).PublicKey()})
	if !errors.Is(err, transport.ErrNotReady) {
		t.Fatalf("want ErrNotReady, got %v", err)
	}
}

// A dial still in flight when ctx ends is the host not answering yet, the
// same verdict as the refusals before it (CI saw attempt 3 end this way).
func TestNotReadyWhenTheContextEndsDuringADial(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	hang := func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	_, err := Dial(ctx, Config{Addr: "127.0.0.1:22", User: "root", Signer: newKey(t), HostKey: newKey(t).PublicKey(), Dial: hang})
	if !errors.Is(err, transport.ErrNotReady) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want ErrNotReady and DeadlineExceeded, got %v", err)
	}
}

func TestConfigIsChecked(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	cfg := l.config()
	cfg.HostKey = nil
	_, err := Dial(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "HostKey") {
		t.Fatalf("a missing host key must be refused, got %v", err)
	}
}

func TestSudoPrefix(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	for _, tc := range []struct {
		user     string
		sudo     bool
		wantLine string
	}{
		{"ubuntu", true, `sudo -n sh -c 'echo "it'\''s me"'`},
		{"ubuntu", false, "echo \"it's me\""},
		{"root", true, "echo \"it's me\""},
	} {
		cfg := l.config()
		cfg.User, cfg.Sudo = tc.user, tc.sudo
		c := l.dial(t, cfg)
		var out bytes.Buffer
		if code, err := c.Run(t.Context(), `echo "it's me"`, &out, nil); err != nil || code != 0 || out.String() != "it's me\n" {
			t.Fatalf("%s sudo=%v: Run: %d %q %v", tc.user, tc.sudo, code, out.String(), err)
		}
		execs := l.srv.Execs()
		if got := execs[len(execs)-1]; got.User != tc.user || got.Line != tc.wantLine {
			t.Errorf("%s sudo=%v: node got %+v, want line %q", tc.user, tc.sudo, got, tc.wantLine)
		}
	}
}

func TestRunCancelReturnsWithinTwoSeconds(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	c := l.dial(t, l.config())
	ctx, cancel := context.WithCancel(t.Context())
	canceledAt := make(chan time.Time, 1)
	time.AfterFunc(200*time.Millisecond, func() { canceledAt <- time.Now(); cancel() })
	code, err := c.Run(ctx, "sleep 30", nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got code %d, %v", code, err)
	}
	if d := time.Since(<-canceledAt); d > 2*time.Second {
		t.Errorf("Run returned %s after cancel", d)
	}
	// The connection stays usable after a cancelled command.
	if code, err := c.Run(t.Context(), "true", nil, nil); err != nil || code != 0 {
		t.Fatalf("Run after cancel: %d, %v", code, err)
	}
}

func TestRebootDuringRunIsReported(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	c := l.dial(t, l.config())
	time.AfterFunc(200*time.Millisecond, l.h.Reboot)
	_, err := c.Run(t.Context(), "sleep 30", nil, nil)
	if !errors.Is(err, transport.ErrRebooting) {
		t.Fatalf("want ErrRebooting, got %v", err)
	}
	if _, err := c.Run(t.Context(), "true", nil, nil); !errors.Is(err, transport.ErrRebooting) {
		t.Fatalf("Run on the dead connection: want ErrRebooting, got %v", err)
	}
}

// blackhole stops delivering data in both directions once dropped, like a
// peer that vanished without closing.
type blackhole struct {
	net.Conn
	dropped chan struct{}
	once    sync.Once
}

func (b *blackhole) drop() { b.once.Do(func() { close(b.dropped) }) }

func (b *blackhole) Write(p []byte) (int, error) {
	select {
	case <-b.dropped:
		return len(p), nil
	default:
		return b.Conn.Write(p)
	}
}

func (b *blackhole) Read(p []byte) (int, error) {
	for {
		n, err := b.Conn.Read(p)
		select {
		case <-b.dropped:
			if err != nil {
				return 0, err
			}
			// Swallow what the peer sends; its writes must not block.
		default:
			return n, err
		}
	}
}

func TestKeepAliveDetectsDeadPeer(t *testing.T) {
	t.Parallel()
	l := newLab(t, true)
	var bh *blackhole
	cfg := l.config()
	cfg.KeepAlive = 200 * time.Millisecond
	cfg.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
		nc, err := l.h.Dial(ctx, 22)
		if err != nil {
			return nil, err
		}
		bh = &blackhole{Conn: nc, dropped: make(chan struct{})}
		return bh, nil
	}
	c := l.dial(t, cfg)
	time.AfterFunc(300*time.Millisecond, bh.drop)
	start := time.Now()
	_, err := c.Run(t.Context(), "sleep 30", nil, nil)
	if !errors.Is(err, transport.ErrRebooting) {
		t.Fatalf("want ErrRebooting once keepalives go unanswered, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("dead peer detected after %s", d)
	}
	if c.Alive() {
		t.Error("connection still alive after an unanswered keepalive")
	}
}
