package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/test/lab/hollow"
)

// registration is what a node's kubelet registers with.
type registration struct {
	name   string
	labels map[string]string
	taints []string
}

// parseLabels reads a --node-labels value: k=v,k2=v2.
func parseLabels(v string) (map[string]string, error) {
	out := map[string]string{}
	for kv := range strings.SplitSeq(v, ",") {
		if kv == "" {
			continue
		}
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("node label %q has no '='", kv)
		}
		out[key] = val
	}
	return out, nil
}

// parseTaints turns kubeadm's or the kubelet configuration's taint list
// into key=value:Effect strings.
func parseTaints(v any) ([]string, error) {
	list, _ := v.([]any)
	var out []string
	for _, t := range list {
		m, _ := t.(map[string]any)
		key, _ := m["key"].(string)
		value, _ := m["value"].(string)
		effect, _ := m["effect"].(string)
		if key == "" || effect == "" {
			return nil, fmt.Errorf("taint %v needs a key and an effect", m)
		}
		if value != "" {
			key += "=" + value
		}
		out = append(out, key+":"+effect)
	}
	return out, nil
}

// windowsKubelet starts the hollow kubelet of a Windows node from its
// kubelet service's command line and the files it names.
func (k *kube) windowsKubelet(ctx context.Context, n *Node, spec oslayer.ServiceSpec) error {
	flags := map[string]string{}
	for _, a := range spec.Args {
		if key, val, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			flags[key] = val
		}
	}
	boot, err := readNodeFile(n, flags["bootstrap-kubeconfig"])
	if err != nil {
		return fmt.Errorf("kubelet: the bootstrap kubeconfig --bootstrap-kubeconfig=%q: %w", flags["bootstrap-kubeconfig"], err)
	}
	// Without --hostname-override the kubelet registers under the machine's
	// host name, lower-cased (k8s.io/component-helpers node/util GetHostname),
	// not under the node name the cluster expects.
	active, _, err := n.Sandbox.ComputerName(ctx)
	if err != nil {
		return fmt.Errorf("kubelet: read the computer name: %w", err)
	}
	reg := registration{name: cmp.Or(flags["hostname-override"], strings.ToLower(active))}
	if reg.labels, err = parseLabels(flags["node-labels"]); err != nil {
		return fmt.Errorf("kubelet: --node-labels: %w", err)
	}
	if file := flags["config"]; file != "" {
		data, err := readNodeFile(n, file)
		if err != nil {
			return fmt.Errorf("kubelet: --config=%q: %w", file, err)
		}
		var kc map[string]any
		if err := yaml.Unmarshal(data, &kc); err != nil {
			return fmt.Errorf("kubelet: %s does not parse: %w", file, err)
		}
		if reg.taints, err = parseTaints(kc["registerWithTaints"]); err != nil {
			return fmt.Errorf("kubelet: %s: %w", file, err)
		}
	}
	server, _, err := kubeconfigCluster(boot)
	if err != nil || server == "" {
		return fmt.Errorf("kubelet: the bootstrap kubeconfig %s names no server", flags["bootstrap-kubeconfig"])
	}
	pl, err := k.planeAt(strings.TrimPrefix(server, "https://"))
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	kl, err := k.startKubelet(ctx, pl, n, reg, boot)
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	if file := flags["kubeconfig"]; file != "" {
		return writeNodeFile(n, file, kl)
	}
	return nil
}

// startKubelet runs the node's hollow kubelet against the cluster's control
// plane (a running one for the node is kept) and returns the kubeconfig
// the kubelet wrote after its TLS bootstrap.
func (k *kube) startKubelet(ctx context.Context, pl *plane, n *Node, reg registration, bootstrap []byte) ([]byte, error) {
	work := filepath.Join(k.dir, "clusters", pl.cluster, "kubelets", reg.name)
	k.mu.Lock()
	running, owner := k.kubelets[reg.name], k.owners[reg.name]
	k.mu.Unlock()
	if running != nil {
		// The node's own, still running: a retired instance's under the same name is not.
		if ex, _ := running.Process().Exited(); !ex && owner == n && k.clusterOf(reg.name) == pl.cluster {
			return os.ReadFile(filepath.Join(work, "kubelet.conf"))
		}
		k.stopKubelet(reg.name)
	}
	// The kubelet the agent installed: its release's hollow kubelet.
	release, err := installedRelease(n, "kubelet")
	if err != nil {
		return nil, err
	}
	bin, err := releaseBinDir(release, hollow.Binary)
	if err != nil {
		return nil, err
	}
	// A fresh machine has no kubelet state.
	if err := os.RemoveAll(work); err != nil {
		return nil, err
	}
	kl, err := hollow.StartKubelet(ctx, hollow.Config{
		BinDir:              bin,
		Name:                reg.name,
		BootstrapKubeconfig: bootstrap,
		Server:              pl.cp.URL(),
		Labels:              reg.labels,
		Taints:              reg.taints,
		WorkDir:             work,
		CheckToken:          tokenCheck(pl.cp, bootstrap),
	})
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		_ = kl.Close()
		return nil, errors.New("the lab is stopping")
	}
	k.kubelets[reg.name] = kl
	k.clusters[reg.name] = pl.cluster
	k.owners[reg.name] = n
	k.mu.Unlock()
	return os.ReadFile(filepath.Join(work, "kubelet.conf"))
}

// restartKubelet is `systemctl restart kubelet` on a Linux node whose
// kubelet joined: the hollow kubelet runs again, on its credentials, from
// the release of the kubelet binary the agent installed since (an upgrade).
// Before kubeadm joins the node there is nothing to restart.
func (k *kube) restartKubelet(ctx context.Context, n *Node) error {
	k.mu.Lock()
	kl, owner := k.kubelets[n.Name], k.owners[n.Name]
	k.mu.Unlock()
	if kl == nil || owner != n {
		return nil
	}
	release, err := installedRelease(n, "kubelet")
	if err != nil {
		return err
	}
	bin, err := releaseBinDir(release, hollow.Binary)
	if err != nil {
		return err
	}
	if kl.BinDir() == bin {
		return nil // the same binary: the lab's kubelet needs no new process
	}
	nk, err := kl.Restart(ctx, hollow.RestartConfig{BinDir: bin, Version: release})
	if err != nil {
		return fmt.Errorf("kubelet %s: restart on %s: %w", n.Name, release, err)
	}
	k.mu.Lock()
	if k.kubelets[n.Name] == kl {
		k.kubelets[n.Name] = nk
	}
	k.mu.Unlock()
	return nil
}

func (k *kube) clusterOf(node string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.clusters[node]
}

func (k *kube) stopKubelet(node string) {
	k.mu.Lock()
	kl := k.kubelets[node]
	delete(k.kubelets, node)
	delete(k.clusters, node)
	delete(k.owners, node)
	k.mu.Unlock()
	if kl != nil {
		_ = kl.Close()
	}
}
