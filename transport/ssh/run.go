package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/transport"
)

// cancelGrace is how long a cancelled call waits for its channel to wind
// down before returning anyway; it keeps every call within 2s of cancel
// even when the peer stopped answering.
const cancelGrace = time.Second

// Run runs cmd with the login shell (through `sudo -n sh -c` when sudo
// applies), streams stdout and stderr as they arrive, and returns the exit
// code. A connection that dies before the exit status arrives yields an
// error wrapping transport.ErrRebooting; the caller reconnects. Cancelling
// ctx signals and closes the session; Run returns within about a second.
func (c *Conn) Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	s, err := c.newSession(ctx)
	if err != nil {
		return -1, fmt.Errorf("run %q on %s: open session: %w", cmd, c.cfg.Addr, err)
	}
	defer s.Close()
	// The gates stop x/crypto's copy goroutines from writing to the
	// caller's writers once Run has returned.
	out, errOut := newGate(stdout), newGate(stderr)
	defer out.shut()
	defer errOut.shut()
	s.Stdout, s.Stderr = out, errOut

	line := cmd
	if c.useSudo() {
		line = "sudo -n sh -c " + shellQuote(cmd)
	}
	if err := s.Start(line); err != nil {
		return -1, c.sessionError("run", cmd, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		select {
		case <-done: //nolint:errcheck // the session is gone; its error says nothing new
		case <-time.After(cancelGrace):
		}
		return -1, fmt.Errorf("run %q on %s: %w", cmd, c.cfg.Addr, ctx.Err())
	}
	if err == nil {
		return 0, nil
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return exit.ExitStatus(), nil
	}
	return -1, c.sessionError("run", cmd, err)
}

// sessionError classifies a failed session: a dead connection means the node
// went away (rebooting), anything else is reported as is.
func (c *Conn) sessionError(verb, what string, err error) error {
	var missing *ssh.ExitMissingError
	if (errors.As(err, &missing) || isDropped(err)) && c.diedWithin(time.Second) {
		return fmt.Errorf("%s %q on %s: %w: the connection closed before the command finished: %w; fix: reconnect and read the node's status", verb, what, c.cfg.Addr, transport.ErrRebooting, err)
	}
	if !c.Alive() {
		return fmt.Errorf("%s %q on %s: %w: connection is closed: %w", verb, what, c.cfg.Addr, transport.ErrRebooting, err)
	}
	return fmt.Errorf("%s %q on %s: %w", verb, what, c.cfg.Addr, err)
}

// gate forwards writes to w until shut.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func newGate(w io.Writer) *gate {
	if w == nil {
		w = io.Discard
	}
	return &gate{w: w}
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
