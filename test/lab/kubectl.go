package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// kubectl runs the real kubectl for a command the agent runs on a control-
// plane node: the node's admin.conf becomes the control plane's, and file
// arguments are read from the node's sandbox.
func (k *kube) kubectl(ctx context.Context, n *Node, args []string) ([]byte, error) {
	k.mu.Lock()
	pl := k.planes[n.Cluster]
	held := pl != nil && pl.holds(n)
	k.mu.Unlock()
	if !held {
		return nil, fmt.Errorf("kubectl on %s: no control plane runs on this node (the lab runs kubectl on control-plane nodes, with their admin.conf)", n.Name)
	}
	bin, err := proc.BinDir("kubectl")
	if err != nil {
		return nil, err
	}
	out := slices.Clone(args)
	for i := range out {
		prev := ""
		if i > 0 {
			prev = out[i-1]
		}
		switch prev {
		case "--kubeconfig":
			out[i] = pl.cp.AdminKubeconfigPath()
		case "-f", "--filename":
			if out[i], err = n.Sandbox.HostPath(out[i]); err != nil {
				return nil, err
			}
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), out...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return b, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args[:min(len(args), 3)], " "), err, bytes.TrimSpace(b))
	}
	return b, nil
}
