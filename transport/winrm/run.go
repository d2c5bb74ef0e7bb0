package winrm

import (
	"context"
	"fmt"
	"io"

	"github.com/mixedk8s/mixedk8s/transport"
)

// Run runs cmd through cmd.exe in a fresh shell, streams its output as the
// node produces it, and returns its exit code. A connection that drops or a
// shell that vanishes under the command (the node rebooted) returns an error
// wrapping transport.ErrRebooting. When ctx ends, the command is signalled to
// terminate and the shell deleted, best effort, and Run returns within 2 s.
func (c *Conn) Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	shellID, err := c.openShell(ctx)
	if err != nil {
		return -1, fmt.Errorf("run %q: %w", short(cmd), err)
	}
	defer c.closeShell(ctx, shellID)
	commandID, err := c.startCommand(ctx, shellID, cmd, false, false)
	if err != nil {
		return -1, c.runError(cmd, err)
	}
	code, err := c.receive(ctx, shellID, commandID, stdout, stderr)
	if err != nil {
		if ctx.Err() != nil || !lost(err) {
			c.terminate(ctx, shellID, commandID)
		}
		return -1, c.runError(cmd, err)
	}
	return code, nil
}

func (c *Conn) runError(cmd string, err error) error {
	if lost(err) {
		return fmt.Errorf("run %q on %s: the shell died (%v): %w; if the node was rebooting, reconnect and read the agent's status",
			short(cmd), c.cfg.Addr, err, transport.ErrRebooting)
	}
	return fmt.Errorf("run %q on %s: %w", short(cmd), c.cfg.Addr, err)
}

// short keeps errors readable when the command line is a long encoded script.
func short(cmd string) string {
	if len(cmd) > 120 {
		return cmd[:117] + "..."
	}
	return cmd
}
