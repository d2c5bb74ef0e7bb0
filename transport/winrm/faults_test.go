package winrm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	mwinrm "github.com/masterzen/winrm"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/test/lab/winrmd"
)

// Each of Windows' WinRM limits, met through our transport against the lab.

func TestFaultEnvelopeTooLarge(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	cfg := l.config(NTLM)
	cfg.EnvelopeSize = 1 << 20 // the client believes in 1 MB; the node allows 500 KB.
	c := l.connect(t, cfg)
	data := randomBytes(2<<20, 9)
	err := c.Upload(context.Background(), `C:\k\x.bin`, bytes.NewReader(data), int64(len(data)), 0o644)
	if !isFault(err, winrmd.CodeEnvelopeSize) || !strings.Contains(err.Error(), "MaxEnvelopeSize") {
		t.Fatalf("Upload in 1 MB envelopes to a 500 KB node: err = %v, want fault %d", err, winrmd.CodeEnvelopeSize)
	}
}

func TestCmdLineLimit(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	c := l.connect(t, l.config(NTLM))
	for _, tc := range []struct {
		length   int
		exitCode int
		stderr   string
	}{
		{length: host.CmdLineMax, exitCode: 0},
		{length: host.CmdLineMax + 1, exitCode: 1, stderr: "The command line is too long.\r\n"},
	} {
		line := "echo " + strings.Repeat("x", tc.length-len("echo "))
		var stdout, stderr bytes.Buffer
		code, err := c.Run(context.Background(), line, &stdout, &stderr)
		if err != nil {
			t.Fatalf("Run of %d characters: %v", tc.length, err)
		}
		if code != tc.exitCode || stderr.String() != tc.stderr {
			t.Errorf("Run of %d characters = %d, stderr %q; want %d, %q", tc.length, code, stderr.String(), tc.exitCode, tc.stderr)
		}
	}
	// Without cmd.exe the limit is CreateProcess's.
	sh, err := c.openShell(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeShell(context.Background(), sh)
	if _, err := c.startCommand(context.Background(), sh, "hostname "+strings.Repeat("y", host.CreateProcessMax), true, true); !isFault(err, winrmd.CodeFilenameTooLng) {
		t.Errorf("command of more than %d characters without cmd: err = %v, want fault %d", host.CreateProcessMax, err, winrmd.CodeFilenameTooLng)
	}
}

func TestFaultMaxShellsPerUser(t *testing.T) {
	t.Parallel()
	l := newLab(t, func(c *winrmd.Config) { c.MaxShellsPerUser = 2 })
	c := l.connect(t, l.config(NTLM))
	ctx := context.Background()
	a, err := c.openShell(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.openShell(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(ctx, "hostname", nil, nil)
	if !isFault(err, FaultMaxShells) || !strings.Contains(err.Error(), "maximum number of 2 concurrent shells") {
		t.Fatalf("third shell: err = %v, want fault %d", err, FaultMaxShells)
	}
	c.closeShell(ctx, a)
	c.closeShell(ctx, b)
	if _, err := c.Run(ctx, "hostname", nil, nil); err != nil {
		t.Fatalf("after closing shells: %v", err)
	}
}

func TestFaultMaxConcurrentOperations(t *testing.T) {
	t.Parallel()
	l := newLab(t, func(c *winrmd.Config) { c.MaxConcurrentOperationsPerUser = 2 })
	release := make(chan struct{})
	l.h.Handle("busy", func(ctx context.Context, h *host.Host, p *host.Process) int {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return 0
	})
	c := l.connect(t, l.config(Basic))
	ctx := context.Background()
	sh, err := c.openShell(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeShell(ctx, sh)
	if _, err := c.startCommand(ctx, sh, "busy", false, false); err != nil {
		t.Fatal(err)
	}
	// One running command plus this request is two; a second command makes three.
	_, err = c.startCommand(ctx, sh, "busy", false, false)
	if !isFault(err, FaultMaxOperations) {
		t.Fatalf("second running command with a quota of 2: err = %v, want fault %d", err, FaultMaxOperations)
	}
	close(release)
}

func TestFaultShellIdleTimeout(t *testing.T) {
	t.Parallel()
	l := newLab(t, func(c *winrmd.Config) { c.IdleTimeout = 300 * time.Millisecond })
	c := l.connect(t, l.config(NTLM))
	ctx := context.Background()
	sh, err := c.openShell(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	_, err = c.startCommand(ctx, sh, "hostname", false, false)
	if !isFault(err, FaultShellNotFound) || !strings.Contains(err.Error(), sh) {
		t.Fatalf("command in an idled-out shell: err = %v, want fault %d naming the shell", err, FaultShellNotFound)
	}
}

func TestFaultOperationTimeout(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	l.h.Handle("quiet", func(ctx context.Context, h *host.Host, p *host.Process) int {
		<-ctx.Done()
		return 0
	})
	c := l.connect(t, l.config(NTLM))
	ctx := context.Background()
	sh, err := c.openShell(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeShell(ctx, sh)
	id, err := c.startCommand(ctx, sh, "quiet", false, false)
	if err != nil {
		t.Fatal(err)
	}
	params := c.params
	params.Timeout = "PT0.300S"
	start := time.Now()
	_, err = c.send(ctx, mwinrm.NewGetOutputRequest(c.url, sh, id, "stdout stderr", &params))
	if !isFault(err, FaultTimedOut) || !strings.Contains(err.Error(), "OperationTimeout") {
		t.Fatalf("Receive with no output: err = %v, want fault %d", err, FaultTimedOut)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("the timed-out Receive took %v; want about the 300 ms OperationTimeout", d)
	}
}

func TestFaultShellGoneAfterReboot(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	c := l.connect(t, l.config(NTLM))
	ctx := context.Background()
	sh, err := c.openShell(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.h.Reboot()
	_, err = c.startCommand(ctx, sh, "hostname", false, false)
	if !isFault(err, FaultShellNotFound) {
		t.Fatalf("command in a shell from before the reboot: err = %v, want fault %d", err, FaultShellNotFound)
	}
	if !lost(err) {
		t.Errorf("lost(%v) = false; Run would not report ErrRebooting", err)
	}
	var f *Fault
	if errors.As(err, &f) && f.Machine != labHostName {
		t.Errorf("fault names machine %q, want %q", f.Machine, labHostName)
	}
}
