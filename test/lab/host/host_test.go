package host

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func newLinux(t *testing.T) *Host {
	t.Helper()
	h, err := New("node", Linux, netip.MustParseAddr("127.10.0.5"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewRefusesAddressesOutsideLoopback(t *testing.T) {
	t.Parallel()
	for _, a := range []string{"10.0.0.5", "::1", "128.0.0.1"} {
		if _, err := New("n", Linux, netip.MustParseAddr(a), t.TempDir()); err == nil || !strings.Contains(err.Error(), "outside 127.0.0.0/8") {
			t.Errorf("%s: want a refusal, got %v", a, err)
		}
	}
	if _, err := New("n", "plan9", netip.MustParseAddr("127.0.0.2"), t.TempDir()); err == nil {
		t.Error("an unknown OS must be refused")
	}
}

func TestPathStaysInTheSandbox(t *testing.T) {
	t.Parallel()
	lin := newLinux(t)
	win, err := New("win", Windows, netip.MustParseAddr("127.10.0.6"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h       *Host
		in      string
		want    string // relative to Root; "" means refused
		refused bool
	}{
		{h: lin, in: "/etc/kubernetes/kubelet.conf", want: "etc/kubernetes/kubelet.conf"},
		{h: lin, in: "/../../etc/passwd", want: "etc/passwd"},
		{h: lin, in: "/a/../../b", want: "b"},
		{h: lin, in: "relative/path", refused: true},
		{h: win, in: `C:\k\kubelet.exe`, want: "C/k/kubelet.exe"},
		{h: win, in: `/ProgramData/x`, want: "C/ProgramData/x"},
		{h: win, in: `C:\k\..\..\x`, want: "C/x"},
		{h: win, in: `d:\data\..\..\y`, want: "D/y"},
		{h: win, in: `k\kubelet.exe`, refused: true},
	} {
		got, err := tc.h.Path(tc.in)
		if tc.refused {
			if err == nil {
				t.Errorf("%s: %q should be refused, got %q", tc.h.OS, tc.in, got)
			}
			continue
		}
		if want := filepath.Join(tc.h.Root, filepath.FromSlash(tc.want)); err != nil || got != want {
			t.Errorf("%s: Path(%q) = %q, %v; want %q", tc.h.OS, tc.in, got, err, want)
		}
	}
}

func TestExecPicksTheProgram(t *testing.T) {
	t.Parallel()
	h := newLinux(t)
	var seen []string
	h.Handle("Probe", func(_ context.Context, _ *Host, p *Process) int {
		seen = p.Args
		return 7
	})
	for _, tc := range []struct {
		line     string
		code     int
		wantArgs []string
		stderr   string
	}{
		{line: "probe a 'b c'", code: 7, wantArgs: []string{"probe", "a", "b c"}},
		{line: "/usr/bin/probe x", code: 7, wantArgs: []string{"/usr/bin/probe", "x"}},
		{line: "sudo -n -E probe y", code: 7, wantArgs: []string{"probe", "y"}},
		{line: "missing arg", code: 127, stderr: "sh: 1: missing: not found\n"},
		{line: "echo 'unterminated", code: 2, stderr: "sh: unterminated single quote\n"},
		{line: "   ", code: 0},
	} {
		seen = nil
		var stderr bytes.Buffer
		code := h.Exec(t.Context(), tc.line, nil, io.Discard, &stderr)
		if code != tc.code || stderr.String() != tc.stderr || !reflect.DeepEqual(seen, tc.wantArgs) {
			t.Errorf("%q: code %d args %q stderr %q; want %d %q %q", tc.line, code, seen, stderr.String(), tc.code, tc.wantArgs, tc.stderr)
		}
	}
}

func TestSplitWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		os, line string
		want     []string
	}{
		{Linux, `a "b c" 'd e' f\ g "h\"i" '' x`, []string{"a", "b c", "d e", "f g", `h"i`, "", "x"}},
		{Linux, `sh -c 'echo "it'\''s"'`, []string{"sh", "-c", `echo "it's"`}},
		{Windows, `C:\k\a.exe "C:\Program Files\x" a\\"b c"`, []string{`C:\k\a.exe`, `C:\Program Files\x`, `a\b c`}},
	} {
		got, err := SplitWords(tc.line, tc.os)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %q: got %q, %v; want %q", tc.os, tc.line, got, err, tc.want)
		}
	}
}

func TestDialReachesServicesAndRebootDropsThem(t *testing.T) {
	t.Parallel()
	h := newLinux(t)
	if _, err := h.Dial(t.Context(), 22); !errors.Is(err, ErrConnRefused) {
		t.Fatalf("dial with no service: want ErrConnRefused, got %v", err)
	}
	h.Listen(22, func(c net.Conn) { _, _ = io.Copy(c, c) })
	c, err := h.Dial(t.Context(), 22)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	h.Reboot()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after reboot: want EOF, got %v", err)
	}
	if h.Reboots() != 1 {
		t.Errorf("Reboots() = %d", h.Reboots())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Dial(ctx, 22); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a cancelled context: %v", err)
	}
}
