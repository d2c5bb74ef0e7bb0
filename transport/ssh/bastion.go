package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/transport"
)

// ErrBastionClosed is final for one bastion connection's DialFunc: the
// caller must connect to the bastion again; waiting on this one changes nothing.
var ErrBastionClosed = errors.New("bastion connection is closed")

// Bastion connects to a jump host and returns it with the DialFunc that
// opens TCP connections from it (direct-tcpip), for Config.Dial here and for
// transport/winrm. Close the Conn when every node behind it is done.
func Bastion(ctx context.Context, cfg Config) (*Conn, transport.DialFunc, error) {
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("bastion: %w", err)
	}
	return c, c.DialContext, nil
}

// DialContext opens a TCP connection from the remote host to addr (the
// node's address as the bastion sees it); it fits transport.DialFunc. A
// bastion that cannot connect yet (the node is booting) yields an error
// wrapping transport.ErrNotReady.
func (c *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if !c.Alive() {
		return nil, fmt.Errorf("dial %s via bastion %s: %w; fix: connect to the bastion again", addr, c.cfg.Addr, ErrBastionClosed)
	}
	nc, err := c.client.DialContext(ctx, network, addr)
	if err == nil {
		return nc, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("dial %s via bastion %s: %w: %w", addr, c.cfg.Addr, transport.ErrNotReady, ctx.Err())
	}
	var oce *ssh.OpenChannelError
	switch {
	case errors.As(err, &oce) && oce.Reason == ssh.ConnectionFailed:
		return nil, fmt.Errorf("dial %s via bastion %s: %w: %w", addr, c.cfg.Addr, transport.ErrNotReady, err)
	case errors.As(err, &oce) && oce.Reason == ssh.Prohibited:
		return nil, fmt.Errorf("dial %s via bastion %s: the bastion forbids forwarding there: %w; fix: allow TCP forwarding to the node subnet on the bastion (AllowTcpForwarding, PermitOpen)", addr, c.cfg.Addr, err)
	// A forward that fails as the bastion connection goes down races its teardown.
	case !c.Alive() || c.diedWithin(time.Second):
		return nil, fmt.Errorf("dial %s via bastion %s: %w (%w); fix: connect to the bastion again", addr, c.cfg.Addr, ErrBastionClosed, err)
	default:
		return nil, fmt.Errorf("dial %s via bastion %s: %w", addr, c.cfg.Addr, err)
	}
}
