package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// UpgradeConfig is the in-place upgrade of one control-plane node.
type UpgradeConfig struct {
	// Node names the member to upgrade.
	Node string
	// BinDir holds the new version's kubeadm, kube-apiserver and
	// kube-controller-manager (VersionBinaries), e.g. bin/k8s-v1.36.3.
	BinDir string
	// Version is what BinDir's binaries report, e.g. "v1.36.3" (the
	// leading "v" may be left out).
	Version string
	// Cluster makes the upgrade `kubeadm upgrade apply`: once the member
	// runs Version, that is the cluster's version (Version) and BinDir the
	// cluster's folder (BinDir). Without it, `kubeadm upgrade node`.
	Cluster bool
}

// upgraded are the static Pods Upgrade replaces, in kubeadm's order
// (kubernetes/cmd/kubeadm/app/phases/upgrade/staticpods.go). etcd is not
// among them: the lab keeps one etcd release (ControlPlane.etcdBin).
var upgraded = []string{"kube-apiserver", "kube-controller-manager"}

// Upgrade upgrades the named member in place, as kubeadm upgrades a
// control-plane node: BinDir's kubeadm renders the member's kube-apiserver
// and kube-controller-manager manifests from its configuration with
// kubernetesVersion set to Version, then each process is replaced in turn
// and waited for (the API server's /readyz on the same port; the
// controller manager's first try for its leader lease, which another
// member may hold). A component whose command line and binary do not
// change keeps running, as kubeadm skips an unchanged manifest. etcd and
// the member's PKI stay as they are.
//
// When a new process does not come up, the components already replaced
// run their old binaries again, as kubeadm rolls back to its backup
// manifests, and the error names the member, the component and its log.
//
// Upgrade checks what BinDir's kube-apiserver reports against Version;
// the version skew policy of `kubeadm upgrade plan` is the caller's.
func (c *ControlPlane) Upgrade(ctx context.Context, cfg UpgradeConfig) error {
	version := normalVersion(cfg.Version)
	if cfg.Node == "" || cfg.BinDir == "" || version == "" {
		return errors.New("control plane: upgrade: Node, BinDir and Version are required; fix: name the member, the folder of the new version's binaries and that version")
	}
	m := c.Member(cfg.Node)
	if m == nil {
		return fmt.Errorf("control plane: upgrade %s: no control-plane member of that name runs; fix: upgrade one of Members", cfg.Node)
	}
	if err := proc.CheckBins(cfg.BinDir, VersionBinaries...); err != nil {
		return fmt.Errorf("control plane: upgrade %s to %s: %w", cfg.Node, version, err)
	}
	got, err := c.binVersion(ctx, cfg.BinDir)
	if err != nil {
		return err
	}
	if got != version {
		return fmt.Errorf("control plane: upgrade %s to %s: the binaries in %s are %s; fix: pass the folder of %s (hack/k8s-bins.sh links it as bin/k8s-%s)", cfg.Node, version, cfg.BinDir, got, version, version)
	}

	m.upgrading.Lock()
	defer m.upgrading.Unlock()
	conf, dir, cmds, err := m.render(ctx, cfg.BinDir, version)
	if err != nil {
		return fmt.Errorf("control plane: upgrade %s to %s: %w", cfg.Node, version, err)
	}
	// Each version's processes log to a file of their own, so an error's
	// log tail is the new process's alone.
	logs := func(name string) string { return filepath.Join(m.dirs["logs"], name+"-"+version+".log") }
	want := map[string]launch{
		"kube-apiserver": {bin: cfg.BinDir, args: apiserverArgs(cmds["kube-apiserver"], m.ports), log: logs("kube-apiserver")},
		"kube-controller-manager": {
			bin: cfg.BinDir, args: controllerManagerArgs(cmds["kube-controller-manager"], filepath.Join(m.dirs["kubeconfig"], "controller-manager.conf")),
			log: logs("kube-controller-manager"),
		},
	}
	if err := m.replace(ctx, version, want); err != nil {
		return err
	}
	// The manifests folder holds what runs, as /etc/kubernetes/manifests does.
	for _, name := range upgraded {
		if err := os.Rename(filepath.Join(dir, name+".yaml"), filepath.Join(m.dirs["manifests"], name+".yaml")); err != nil {
			return fmt.Errorf("control plane: upgrade %s to %s: keep the new manifest of %s: %w", cfg.Node, version, name, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m.bin, m.version, m.conf = cfg.BinDir, version, conf
	if cfg.Cluster {
		c.bin, c.version = cfg.BinDir, version
		c.docs.kind("ClusterConfiguration")["kubernetesVersion"] = version
	}
	return nil
}

// render writes the member's kubeadm configuration at version and renders
// its kube-apiserver and kube-controller-manager manifests with bin's
// kubeadm into a folder of their own, as kubeadm upgrade renders into a
// temporary folder before it swaps the manifests. It returns the
// configuration file, that folder and the manifests' command lines.
func (m *Member) render(ctx context.Context, bin, version string) (conf, dir string, cmds map[string][]string, err error) {
	data, err := os.ReadFile(m.config())
	if err != nil {
		return "", "", nil, fmt.Errorf("read the member's kubeadm configuration: %w", err)
	}
	docs, err := parseKubeadmConfig(data)
	if err != nil {
		return "", "", nil, err
	}
	docs.kind("ClusterConfiguration")["kubernetesVersion"] = version
	out, err := docs.marshal()
	if err != nil {
		return "", "", nil, err
	}
	conf = filepath.Join(m.dirs["kubeadm"], "upgrade-"+version+".yaml")
	if err := os.WriteFile(conf, out, 0o600); err != nil {
		return "", "", nil, fmt.Errorf("write %s: %w", conf, err)
	}
	dir = filepath.Join(m.dirs["kubeadm"], "upgrade-"+version+"-manifests")
	if err := os.RemoveAll(dir); err != nil {
		return "", "", nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", nil, err
	}
	cmds = map[string][]string{}
	for _, name := range upgraded {
		phase := strings.TrimPrefix(name, "kube-")
		if err := m.kubeadmFrom(ctx, bin, dir, "init", "phase", "control-plane", phase, "--config", conf, "--dry-run"); err != nil {
			return "", "", nil, err
		}
		if cmds[name], err = manifestCommand(filepath.Join(dir, name+".yaml")); err != nil {
			return "", "", nil, err
		}
	}
	return conf, dir, cmds, nil
}

// replace runs each upgraded component as want says, one at a time; on a
// failure it runs the replaced ones as before again, the failed one first.
func (m *Member) replace(ctx context.Context, version string, want map[string]launch) error {
	m.cp.mu.Lock()
	old := map[string]launch{}
	for _, name := range upgraded {
		old[name] = m.launched[name]
	}
	m.cp.mu.Unlock()
	var done []string
	for _, name := range upgraded {
		if o := old[name]; o.bin == want[name].bin && slices.Equal(o.args, want[name].args) {
			continue
		}
		done = append(done, name)
		err := m.swap(ctx, name, want[name])
		if err == nil {
			continue
		}
		err = fmt.Errorf("control plane: upgrade %s to %s: %s did not come up: %w", m.Name, version, name, err)
		return m.rollback(ctx, err, done, old)
	}
	return nil
}

// rollback runs the components in done as old says again, the last
// replaced first, and returns err with what became of them.
func (m *Member) rollback(ctx context.Context, err error, done []string, old map[string]launch) error {
	// The caller's context may be what ended the wait: the rollback gets its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*m.cp.timeout)
	defer cancel()
	for _, name := range slices.Backward(done) {
		if rerr := m.swap(ctx, name, old[name]); rerr != nil {
			return fmt.Errorf("%w; running its old %s again failed too: %w", err, name, rerr)
		}
	}
	return fmt.Errorf("%w; the member runs its old %s again", err, strings.Join(done, " and "))
}

// swap stops the member's process name and starts l in its place, then
// waits for it: the API server's /readyz, the controller manager's first
// try for its leader lease (the lease may be another member's).
func (m *Member) swap(ctx context.Context, name string, l launch) error {
	m.cp.mu.Lock()
	var running *proc.Process
	for _, p := range m.procs {
		if p.Name == name {
			running = p
		}
	}
	m.cp.mu.Unlock()
	if running != nil {
		running.Stop(5 * time.Second)
		m.forget(running)
	}
	if name == "kube-apiserver" {
		_, err := m.runAPIServer(ctx, l)
		return err
	}
	var from int64
	if st, err := os.Stat(l.log); err == nil {
		from = st.Size()
	}
	p, err := m.start(name, l)
	if err != nil {
		return err
	}
	return waitFor(ctx, p, m.cp.timeout, "its first try for the leader lease", func(context.Context) error {
		if !logHas(p.Log, from, "Attempting to acquire leader lease") {
			return errors.New("no \"Attempting to acquire leader lease\" in its log yet")
		}
		return nil
	})
}

// logHas says whether file holds s after its first from bytes: a process
// started again appends to its predecessor's log.
func logHas(file string, from int64, s string) bool {
	data, err := os.ReadFile(file)
	return err == nil && int64(len(data)) >= from && strings.Contains(string(data[from:]), s)
}
