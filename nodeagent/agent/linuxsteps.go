package agent

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// Linux paths, as kubeadm's defaults expect them.
const (
	linuxKubeadmDir = "/etc/kubernetes/mixedk8s"
	linuxAdminConf  = "/etc/kubernetes/admin.conf"
	linuxKubeletCfg = "/etc/kubernetes/kubelet.conf"
	linuxCRISocket  = "unix:///run/containerd/containerd.sock"
)

var (
	kernelModules = []string{"overlay", "br_netfilter"}
	sysctls       = map[string]string{
		"net.bridge.bridge-nf-call-iptables":  "1",
		"net.bridge.bridge-nf-call-ip6tables": "1",
		"net.ipv4.ip_forward":                 "1",
	}
)

func linuxSteps(cfg contract.Config) []step {
	steps := []step{
		{"agent-config", planAgentConfig},
		{"preflight", planLinuxPreflight},
		{"kernel-modules", planKernelModules},
		{"sysctls", planSysctls},
		{"swap", planSwap},
		{"containerd", planLinuxContainerd},
		{"cni-plugins", func(ctx context.Context, r *run) ([]change, error) {
			return r.ensureArtifact(manifest.CNIPlugins, "linux", r.artifactArch(), r.extractTarGz("/opt/cni/bin", ""))
		}},
		{"crictl", planLinuxCrictl},
		{"pause-image", planPauseImage},
		{"kubernetes-binaries", planLinuxBinaries},
		{"kubelet-service", planLinuxKubelet},
	}
	switch cfg.Node.Role {
	case contract.RoleInit:
		steps = append(steps, step{"kubeadm-init", planKubeadmInit}, step{"kubeadm-upgrade", planKubeadmUpgrade}, step{"cluster-addons", planAddons})
	case contract.RoleControlPlane:
		steps = append(steps, step{"kubeadm-join", planKubeadmJoin}, step{"kubeadm-upgrade", planKubeadmUpgrade})
	default:
		steps = append(steps, step{"kubeadm-join", planKubeadmJoin})
	}
	return steps
}

func planLinuxPreflight(ctx context.Context, r *run) ([]change, error) {
	if r.id.GOOS != "linux" {
		return nil, fmt.Errorf("node.os is linux but this machine runs %s; fix: run the Linux agent on a Linux VM", r.id.GOOS)
	}
	if r.id.Arch != "amd64" && r.id.Arch != "arm64" {
		return nil, fmt.Errorf("this machine is %s; fix: Linux nodes are amd64 or arm64", r.id.Arch)
	}
	return nil, nil
}

func planKernelModules(ctx context.Context, r *run) ([]change, error) {
	out := r.ensureFile("/etc/modules-load.d/mixedk8s.conf", []byte(strings.Join(kernelModules, "\n")+"\n"), oslayer.Public, "kernel modules to load at boot")
	for _, m := range kernelModules {
		ok, err := r.linux.KernelModuleLoaded(ctx, m)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, change{what: "load kernel module " + m, do: func(ctx context.Context) error { return r.linux.LoadKernelModule(ctx, m) }})
		}
	}
	return out, nil
}

func planSysctls(ctx context.Context, r *run) ([]change, error) {
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, sysctls[k])
	}
	out := r.ensureFile("/etc/sysctl.d/99-mixedk8s.conf", []byte(b.String()), oslayer.Public, "kernel parameters for boot")
	for _, k := range keys {
		// bridge keys appear only once br_netfilter is loaded, so a read error means "not set".
		v, _ := r.linux.Sysctl(ctx, k)
		if v == sysctls[k] {
			continue
		}
		out = append(out, change{what: "set " + k + " = " + sysctls[k], do: func(ctx context.Context) error { return r.linux.SetSysctl(ctx, k, sysctls[k]) }})
	}
	return out, nil
}

func planSwap(ctx context.Context, r *run) ([]change, error) {
	on, err := r.linux.SwapActive(ctx)
	if err != nil || !on {
		return nil, err
	}
	return []change{{what: "turn swap off now and in /etc/fstab (the kubelet needs it off)", do: r.linux.DisableSwap}}, nil
}

// linuxContainerdConfig is containerd 2.x config v3: runc with the systemd cgroup driver, the sandbox image pinned.
func linuxContainerdConfig(pause string) []byte {
	return []byte(`# Written by the mixedk8s node agent.
version = 3

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "` + pause + `"

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/opt/cni/bin"]
  conf_dir = "/etc/cni/net.d"
`)
}

func planLinuxContainerd(ctx context.Context, r *run) ([]change, error) {
	out, err := r.ensureArtifact(manifest.Runc, "linux", r.artifactArch(), r.installFile("/usr/local/sbin/runc"))
	if err != nil {
		return nil, err
	}
	c, err := r.ensureArtifact(manifest.Containerd, "linux", r.artifactArch(), r.extractTarGz("/usr/local", ""))
	if err != nil {
		return nil, err
	}
	out = append(out, c...)
	conf := r.ensureFile("/etc/containerd/config.toml", linuxContainerdConfig(r.pauseImage()), oslayer.Public, "containerd config (v3, runc, systemd cgroups)")
	out = append(out, conf...)
	svc, err := r.ensureService(ctx, oslayer.ServiceSpec{
		Name: "containerd", Description: "containerd container runtime",
		Path: "/usr/local/bin/containerd", Args: []string{"--config", "/etc/containerd/config.toml"},
		// As upstream's unit: containerd/containerd containerd.service (Type=notify, TasksMax=infinity, OOMScoreAdjust=-999).
		Notify: true, OOMScoreAdjust: -999,
	}, true, len(conf) > 0)
	return append(out, svc...), err
}

func planLinuxCrictl(ctx context.Context, r *run) ([]change, error) {
	out, err := r.ensureArtifact(manifest.Crictl, "linux", r.artifactArch(), r.extractTarGz("/usr/local/bin", ""))
	if err != nil {
		return nil, err
	}
	return append(out, r.ensureFile("/etc/crictl.yaml", []byte("runtime-endpoint: "+linuxCRISocket+"\nimage-endpoint: "+linuxCRISocket+"\n"), oslayer.Public, "crictl config")...), nil
}

func planLinuxBinaries(ctx context.Context, r *run) ([]change, error) {
	var out []change
	for _, n := range []string{manifest.Kubeadm, manifest.Kubelet, manifest.Kubectl} {
		c, err := r.ensureArtifact(n, "linux", r.artifactArch(), r.installFile("/usr/bin/"+n))
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

// planLinuxKubelet installs the kubelet unit kubeadm expects; kubeadm starts it.
func planLinuxKubelet(ctx context.Context, r *run) ([]change, error) {
	return r.ensureService(ctx, oslayer.ServiceSpec{
		Name: "kubelet", Description: "Kubernetes kubelet (mixedk8s)",
		Path: "/usr/bin/kubelet",
		Args: []string{"$KUBELET_KUBECONFIG_ARGS", "$KUBELET_CONFIG_ARGS", "$KUBELET_KUBEADM_ARGS", "$KUBELET_EXTRA_ARGS"},
		Env: []string{
			"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf",
			"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml",
		},
		EnvironmentFiles: []string{"-/var/lib/kubelet/kubeadm-flags.env", "-/etc/default/kubelet"},
		DependsOn:        []string{"containerd"},
	}, false, false)
}

// exists reports whether a file is on the node.
func (r *run) exists(p string) bool {
	_, err := r.files.Stat(p)
	return err == nil
}

// kubeadmInitMarker is the state marker set once kubeadm init has
// succeeded: admin.conf alone cannot say so, kubeadm writes it early.
const kubeadmInitMarker = "kubeadm-init"

// kubeadmLeftovers are files a kubeadm init or join writes on its way:
// found before a run, they are what a cut run left, and kubeadm's preflight
// refuses to start over them (or, for a key without its certificate, its
// certificates phase does).
var kubeadmLeftovers = []string{
	"/etc/kubernetes/admin.conf",
	"/etc/kubernetes/super-admin.conf",
	"/etc/kubernetes/bootstrap-kubelet.conf",
	linuxKubeletCfg,
	"/etc/kubernetes/manifests/kube-apiserver.yaml",
	"/etc/kubernetes/manifests/etcd.yaml",
	"/etc/kubernetes/pki/apiserver.key",
	"/etc/kubernetes/pki/sa.key",
	"/var/lib/etcd/member",
	"/var/lib/kubelet/config.yaml",
}

// kubeadmJoinLeftovers adds the CA certificate kubeadm join writes; before
// kubeadm init, the agent writes it itself.
var kubeadmJoinLeftovers = append(slices.Clone(kubeadmLeftovers), "/etc/kubernetes/pki/ca.crt")

// planKubeadm plans running kubeadm (init or join) with its configuration
// file, first resetting what a cut run left; done, if set, runs after
// kubeadm succeeds. The file holds the bootstrap
// token: it is removed however kubeadm ends.
func (r *run) planKubeadm(file string, conf []byte, leftovers []string, before []change, args []string, done func() error) []change {
	var out []change
	var left []string
	for _, p := range leftovers {
		if r.exists(p) {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		out = append(out, change{what: "run kubeadm reset --force: an earlier kubeadm stopped part-way and left " + strings.Join(left, ", "), do: func(ctx context.Context) error {
			return r.command(ctx, "/usr/bin/kubeadm", "reset", "--force", "--cri-socket", linuxCRISocket)
		}})
	}
	out = append(out, before...)
	out = append(out,
		change{what: "write the kubeadm configuration " + file + " (owner-only)", do: func(ctx context.Context) error {
			return r.files.WriteFile(file, conf, oslayer.Secret)
		}},
		change{what: "run kubeadm " + strings.Join(args, " ") + ", then remove " + file + " (it holds the bootstrap token)", do: func(ctx context.Context) (err error) {
			defer func() {
				if rerr := r.files.Remove(file); rerr != nil && err == nil {
					err = rerr
				}
			}()
			if err := r.command(ctx, "/usr/bin/kubeadm", args...); err != nil || done == nil {
				return err
			}
			return done()
		}},
	)
	return out
}

func planKubeadmInit(ctx context.Context, r *run) ([]change, error) {
	if r.state.Markers[kubeadmInitMarker] != "" {
		return nil, nil
	}
	conf, err := kubeadm.InitConfig(r.cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to render the kubeadm init configuration: %w", err)
	}
	file := linuxKubeadmDir + "/kubeadm-init.yaml"
	args := []string{"init", "--config", file}
	if r.cfg.Init.CertificateKey != "" {
		args = append(args, "--upload-certs")
	}
	writeCA := change{what: "write the provisioner's cluster CA to /etc/kubernetes/pki/ca.crt and ca.key (owner-only) so kubeadm uses it", do: func(ctx context.Context) error {
		if err := r.files.WriteFile("/etc/kubernetes/pki/ca.crt", []byte(r.cfg.Init.CACertPEM), oslayer.Public); err != nil {
			return err
		}
		return r.files.WriteFile("/etc/kubernetes/pki/ca.key", []byte(r.cfg.Init.CAKeyPEM), oslayer.Secret)
	}}
	return r.planKubeadm(file, conf, kubeadmLeftovers, []change{writeCA}, args, func() error {
		r.state.Markers[kubeadmInitMarker] = r.cfg.Cluster.Name
		r.state.Markers[markerVersion] = r.cfg.Cluster.KubernetesVersion
		return r.saveState()
	}), nil
}

// planKubeadmJoin joins unless the kubelet holds its credentials: kubeadm
// join writes kubelet.conf once the TLS bootstrap is done.
func planKubeadmJoin(ctx context.Context, r *run) ([]change, error) {
	if r.exists(linuxKubeletCfg) {
		return nil, nil
	}
	conf, err := kubeadm.JoinConfig(r.cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to render the kubeadm join configuration: %w", err)
	}
	file := linuxKubeadmDir + "/kubeadm-join.yaml"
	return r.planKubeadm(file, conf, kubeadmJoinLeftovers, nil, []string{"join", "--config", file}, func() error {
		r.state.Markers[markerVersion] = r.cfg.Cluster.KubernetesVersion
		return r.saveState()
	}), nil
}

// markerVersion records the Kubernetes release a node was set up with or
// last upgraded to: the kubelet binary alone cannot say what the node's
// static Pods run.
const markerVersion = "kubernetes-version"

// setUpAt is the release the node ran before this apply: "" when kubeadm
// has not set it up yet. A node set up before the agent kept the marker
// runs the kubelet it installed then.
func (r *run) setUpAt() string {
	if !r.exists(linuxKubeletCfg) && r.state.Markers[kubeadmInitMarker] == "" {
		return ""
	}
	if v := r.state.Markers[markerVersion]; v != "" {
		return v
	}
	return r.state.Installed[manifest.Kubelet].Version
}

// planKubeadmUpgrade moves a control-plane node that runs an older release
// to the config's, as kubeadm's upgrade guide does
// (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/):
// the new kubeadm (installed by kubernetes-binaries) replaces the static
// Pods one by one, `kubeadm upgrade apply vX` on the first control-plane
// node, which also moves the cluster's configuration and add-ons, and
// `kubeadm upgrade node` on the others, which follow that configuration;
// then the kubelet restarts on its new binary. The control-plane taint keeps
// workloads off these nodes, so there is nothing to drain. Workers are not
// upgraded in place: the cluster replaces them (cluster.Plan).
func planKubeadmUpgrade(ctx context.Context, r *run) ([]change, error) {
	have, want := r.before, r.cfg.Cluster.KubernetesVersion
	if have == "" || have == want {
		return nil, nil
	}
	args := []string{"upgrade", "node"}
	if r.cfg.Node.Role == contract.RoleInit {
		args = []string{"upgrade", "apply", "v" + want, "--yes"}
	}
	return []change{
		{what: "run kubeadm " + strings.Join(args, " ") + " (Kubernetes " + have + " -> " + want + ")", do: func(ctx context.Context) error {
			// Kept first: a cut upgrade is run again, whatever the kubelet binary says by then.
			r.state.Markers[markerVersion] = have
			if err := r.saveState(); err != nil {
				return err
			}
			return r.command(ctx, "/usr/bin/kubeadm", args...)
		}},
		{what: "restart the kubelet on its " + want + " binary", do: func(ctx context.Context) error {
			if err := r.restartService(ctx, "kubelet"); err != nil {
				return err
			}
			r.state.Markers[markerVersion] = want
			return r.saveState()
		}},
	}, nil
}
