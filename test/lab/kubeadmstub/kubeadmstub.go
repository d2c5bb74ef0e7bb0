// Package kubeadmstub stands for kubeadm on a lab sandbox that runs no
// control plane: `kubeadm init` and `kubeadm join` leave the files the
// agent's later steps and re-runs look for, and `kubeadm reset` deletes what
// the real one deletes. The lab's Kubernetes (package lab) handles init and
// join itself on its nodes and leaves reset to this stub; the agent's own
// tests use it alone.
package kubeadmstub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// Install makes the sandbox run the stub for every kubeadm command no hook handles.
func Install(sb *sandbox.Sandbox) {
	sb.SetProgram("kubeadm", func(_ context.Context, c oslayer.Command) ([]byte, error) {
		return run(sb, c)
	})
}

func run(sb *sandbox.Sandbox, c oslayer.Command) ([]byte, error) {
	if len(c.Args) == 0 {
		return nil, nil
	}
	write := func(p string) error {
		hp, err := sb.HostPath(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			return err
		}
		return os.WriteFile(hp, []byte("# written by the emulated kubeadm "+c.Args[0]+"\n"), 0o600)
	}
	switch c.Args[0] {
	case "init":
		for _, p := range []string{"/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/manifests/kube-apiserver.yaml"} {
			if err := write(p); err != nil {
				return nil, err
			}
		}
		return []byte("Your Kubernetes control-plane has initialized successfully!\n"), nil
	case "join":
		if err := write("/etc/kubernetes/kubelet.conf"); err != nil {
			return nil, err
		}
		return []byte("This node has joined the cluster\n"), nil
	case "upgrade":
		// kubeadm upgrade reads the cluster through admin.conf on the node
		// that runs apply, and through kubelet.conf on the others
		// (kubernetes cmd/kubeadm/app/cmd/upgrade/apply.go and node.go).
		conf, verb := "/etc/kubernetes/kubelet.conf", ""
		if len(c.Args) > 1 {
			verb = c.Args[1]
		}
		switch verb {
		case "apply":
			if len(c.Args) < 3 || !strings.HasPrefix(c.Args[2], "v") {
				return nil, errors.New("kubeadm upgrade apply: missing one required argument [version]")
			}
			conf = "/etc/kubernetes/admin.conf"
		case "node":
		default:
			return nil, fmt.Errorf("kubeadm upgrade: unknown command %q", verb)
		}
		if _, err := sb.ReadFile(conf); err != nil {
			return nil, fmt.Errorf("kubeadm upgrade %s: couldn't read %s: %w", verb, conf, err)
		}
		return []byte("[upgrade] SUCCESS! The control plane of this node was upgraded.\n"), nil
	case "reset":
		for _, p := range resetPaths {
			hp, err := sb.HostPath(p)
			if err != nil {
				return nil, err
			}
			if err := os.RemoveAll(hp); err != nil {
				return nil, err
			}
		}
		return []byte("[reset] Deleted contents of the config directories and the kubeconfig files\n"), nil
	}
	return nil, nil
}

// resetPaths are what `kubeadm reset` deletes on a node with local etcd
// (kubernetes/kubernetes cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go).
var resetPaths = []string{
	"/etc/kubernetes/manifests", "/etc/kubernetes/pki", "/var/lib/kubelet", "/var/lib/etcd",
	"/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf", "/etc/kubernetes/kubelet.conf",
	"/etc/kubernetes/bootstrap-kubelet.conf", "/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/scheduler.conf",
}
