package agent

import (
	"context"
	"fmt"
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
	if cfg.Node.Role == contract.RoleInit {
		steps = append(steps, step{"kubeadm-init", planKubeadmInit}, step{"cluster-addons", planAddons})
	} else {
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
		ok, err := r.os.KernelModuleLoaded(ctx, m)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, change{what: "load kernel module " + m, do: func(ctx context.Context) error { return r.os.LoadKernelModule(ctx, m) }})
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
		v, _ := r.os.Sysctl(ctx, k)
		if v == sysctls[k] {
			continue
		}
		out = append(out, change{what: "set " + k + " = " + sysctls[k], do: func(ctx context.Context) error { return r.os.SetSysctl(ctx, k, sysctls[k]) }})
	}
	return out, nil
}

func planSwap(ctx context.Context, r *run) ([]change, error) {
	on, err := r.os.SwapActive(ctx)
	if err != nil || !on {
		return nil, err
	}
	return []change{{what: "turn swap off now and in /etc/fstab (the kubelet needs it off)", do: r.os.DisableSwap}}, nil
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
  bin_dir = "/opt/cni/bin"
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
	_, err := r.os.Stat(p)
	return err == nil
}

func planKubeadmInit(ctx context.Context, r *run) ([]change, error) {
	if r.exists(linuxAdminConf) {
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
	return []change{
		{what: "write the provisioner's cluster CA to /etc/kubernetes/pki/ca.crt and ca.key (owner-only) so kubeadm uses it", do: func(ctx context.Context) error {
			if err := r.os.WriteFile("/etc/kubernetes/pki/ca.crt", []byte(r.cfg.Init.CACertPEM), oslayer.Public); err != nil {
				return err
			}
			return r.os.WriteFile("/etc/kubernetes/pki/ca.key", []byte(r.cfg.Init.CAKeyPEM), oslayer.Secret)
		}},
		{what: "write the kubeadm init configuration " + file + " (owner-only)", do: func(ctx context.Context) error {
			return r.os.WriteFile(file, conf, oslayer.Secret)
		}},
		{what: "run kubeadm " + strings.Join(args, " "), do: func(ctx context.Context) error {
			return r.command(ctx, "/usr/bin/kubeadm", args...)
		}},
		{what: "remove " + file + " (it holds the bootstrap token)", do: func(ctx context.Context) error {
			return r.os.Remove(file)
		}},
	}, nil
}

func planKubeadmJoin(ctx context.Context, r *run) ([]change, error) {
	if r.exists(linuxKubeletCfg) {
		return nil, nil
	}
	conf, err := kubeadm.JoinConfig(r.cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to render the kubeadm join configuration: %w", err)
	}
	file := linuxKubeadmDir + "/kubeadm-join.yaml"
	return []change{
		{what: "write the kubeadm join configuration " + file + " (owner-only)", do: func(ctx context.Context) error {
			return r.os.WriteFile(file, conf, oslayer.Secret)
		}},
		{what: "run kubeadm join --config " + file, do: func(ctx context.Context) error {
			return r.command(ctx, "/usr/bin/kubeadm", "join", "--config", file)
		}},
		{what: "remove " + file + " (it holds the bootstrap token)", do: func(ctx context.Context) error {
			return r.os.Remove(file)
		}},
	}, nil
}
