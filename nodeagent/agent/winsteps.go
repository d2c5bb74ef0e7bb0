package agent

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// Windows paths. kubeadm.WindowsCAFile and kubeadm.WindowsKubeletKubeconfig live in C:\k too.
const (
	winK              = `C:\k`
	winContainerd     = `C:\Program Files\containerd`
	winContainerdData = `C:\ProgramData\containerd`
	winCNIBin         = `C:\opt\cni\bin`
	winCNIConf        = `C:\etc\cni\net.d`
	winKubeletDir     = `C:\var\lib\kubelet`
	winLogs           = `C:\var\log`
	winPipe           = `npipe:////./pipe/containerd-containerd`

	// VXLAN settings Flannel and Calico both require on Windows.
	vxlanVNI  = 4096
	vxlanPort = 4789
	// winHostLocalDir is host-local's data folder on Windows, where the
	// flannel CNI plugin's IPAM and the source VIP reservation meet.
	winHostLocalDir = `C:\var\lib\cni\networks`
	// winKubeletClientCert is where the kubelet's TLS bootstrap keeps its
	// rotated client certificate and key (under --cert-dir).
	winKubeletClientCert = winKubeletDir + `\pki\kubelet-client-current.pem`
)

// Windows features a node needs.
const (
	featureContainers = "Containers"
	featureHyperV     = "Hyper-V"
)

// hnsNetworkName is the HNS network the CNI's Windows side uses.
func hnsNetworkName(cni string) string {
	if cni == "calico" {
		return "Calico"
	}
	return fmt.Sprintf("flannel.%d", vxlanVNI)
}

func (r *run) windowsFeatures() []string {
	if r.cfg.Node.Isolation == "hyperv" {
		return []string{featureContainers, featureHyperV}
	}
	return []string{featureContainers}
}

func windowsSteps() []step {
	return []step{
		{"agent-config", planAgentConfig},
		{"preflight", planWindowsPreflight},
		{"folders", planSecureFolders},
		{"computer-name", planComputerName},
		{"windows-features", planFeatures},
		{"reboot", planReboot},
		{"defender-exclusions", planDefender},
		{"firewall", planFirewall},
		{"containerd", planWindowsContainerd},
		{"cni-plugins", func(ctx context.Context, r *run) ([]change, error) {
			return r.ensureArtifact(manifest.CNIPlugins, "windows", r.artifactArch(), r.extractTarGz(winCNIBin, ""))
		}},
		{"flannel-cni-plugin", planFlannelCNIPlugin},
		{"cni-config", planWindowsCNIConfig},
		{"crictl", func(ctx context.Context, r *run) ([]change, error) {
			return r.ensureArtifact(manifest.Crictl, "windows", r.artifactArch(), r.extractTarGz(winK, ""))
		}},
		{"pause-image", planPauseImage},
		{"external-network", planExternalNetwork},
		{"kubernetes-binaries", planWindowsBinaries},
		{"kubelet", planWindowsKubelet},
		{"kubelet-bootstrap", planKubeletBootstrap},
		{"flanneld", planFlanneld},
		{"flannel-network", planFlannelNetwork},
		{"source-vip", planSourceVIP},
		{"calico-network", planCalicoNetwork},
		{"kube-proxy", planWindowsKubeProxy},
		{"watchdog", planWatchdog},
	}
}

// planAgentConfig keeps an owner-only copy of the config where the boot-time resume finds it.
func planAgentConfig(ctx context.Context, r *run) ([]change, error) {
	data, err := jsonConfig(r.keep)
	if err != nil {
		return nil, err
	}
	return r.ensureFile(r.paths.config, data, oslayer.Secret, "the agent config for resume at boot"), nil
}

func planWindowsPreflight(ctx context.Context, r *run) ([]change, error) {
	n := r.cfg.Node
	if r.id.GOOS != "windows" {
		return nil, fmt.Errorf("node.os is windows but this machine runs %s; fix: run the Windows agent on a Windows Server VM", r.id.GOOS)
	}
	want := contract.WindowsBuilds[n.WindowsVersion]
	if r.id.Build != want && !strings.HasPrefix(r.id.Build, want+".") {
		return nil, fmt.Errorf("node.windowsVersion is %s (build %s) but this machine runs build %s; fix: use the image of Windows Server %s or set windowsVersion to this machine's version", n.WindowsVersion, want, r.id.Build, n.WindowsVersion)
	}
	if n.Isolation == "hyperv" && !r.id.NestedVirtualization {
		return nil, fmt.Errorf("node.isolation is hyperv but this VM has no nested virtualisation; fix: use an instance type with nested virtualisation (Azure Dv3/Ev3 and later without Trusted Launch, AWS C8i/M8i/R8i or bare metal; none on GCE), or isolation process")
	}
	if r.id.Arch != "amd64" {
		return nil, fmt.Errorf("this Windows machine is %s; fix: Windows nodes are amd64", r.id.Arch)
	}
	if cn := r.computerName(); len(cn) > 15 {
		return nil, fmt.Errorf("node.computerName %q is longer than 15 characters, the Windows computer name limit; fix: set node.computerName to the node's short name", cn)
	}
	return nil, nil
}

// securedFolders hold what runs as SYSTEM (binaries, configs, the agent and
// its state); each gets a protected ACL before anything is written there.
var securedFolders = []string{winK, `C:\opt`, `C:\etc`, `C:\var`, `C:\run`, winContainerdData, `C:\ProgramData\mixedk8s`}

// secretFolders hold keys: the kubelet's client certificate and key, which
// flanneld uses too, are readable by SYSTEM and Administrators only.
var secretFolders = []string{winKubeletDir + `\pki`}

func planSecureFolders(ctx context.Context, r *run) ([]change, error) {
	var out []change
	plan := func(f string, mode oslayer.FileMode, acl string) error {
		ok, err := r.files.FolderSecured(f, mode)
		if err != nil || ok {
			return err
		}
		out = append(out, change{what: "create " + f + " with a protected ACL (" + acl + ")", do: func(ctx context.Context) error {
			return r.files.SecureFolder(f, mode)
		}})
		return nil
	}
	for _, f := range securedFolders {
		if err := plan(f, oslayer.Public, "SYSTEM and Administrators full control, Users read and execute"); err != nil {
			return nil, err
		}
	}
	for _, f := range secretFolders {
		if err := plan(f, oslayer.Secret, "SYSTEM and Administrators full control, nobody else"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// computerName is the Windows computer name the node must have; the
// Kubernetes node name stays r.cfg.Node.Name (the kubelet's --hostname-override).
func (r *run) computerName() string {
	return cmp.Or(r.cfg.Node.ComputerName, r.cfg.Node.Name)
}

// planComputerName renames the computer when its first boot did not (the
// clouds' boot data normally names it).
func planComputerName(ctx context.Context, r *run) ([]change, error) {
	_, pending, err := r.windows.ComputerName(ctx)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(pending, r.computerName()) {
		return nil, nil
	}
	name := strings.ToUpper(r.computerName())
	return []change{{what: "rename the computer from " + pending + " to " + name + " (active after the reboot)", do: func(ctx context.Context) error {
		return r.windows.SetComputerName(ctx, name)
	}}}, nil
}

func planFeatures(ctx context.Context, r *run) ([]change, error) {
	var out []change
	for _, f := range r.windowsFeatures() {
		st, err := r.windows.Feature(ctx, f)
		if err != nil {
			return nil, err
		}
		if st.Installed {
			continue
		}
		out = append(out, change{what: "install Windows feature " + f + " (active after the reboot)", do: func(ctx context.Context) error {
			return r.windows.EnableFeature(ctx, f)
		}})
	}
	return out, nil
}

// planReboot reboots once when a rename or a feature waits for it, and cleans up the boot registration after.
func planReboot(ctx context.Context, r *run) ([]change, error) {
	active, _, err := r.windows.ComputerName(ctx)
	if err != nil {
		return nil, err
	}
	var why []string
	if !strings.EqualFold(active, r.computerName()) {
		why = append(why, "computer name")
	}
	for _, f := range r.windowsFeatures() {
		st, err := r.windows.Feature(ctx, f)
		if err != nil {
			return nil, err
		}
		if st.PendingReboot || (!st.Installed && r.dryRun) {
			why = append(why, "feature "+f)
		}
	}
	if r.dryRun && !strings.EqualFold(active, r.computerName()) && len(why) == 0 {
		why = append(why, "computer name")
	}
	registered, err := r.boot.ResumeRegistered(ctx)
	if err != nil {
		return nil, err
	}
	if len(why) == 0 {
		if !registered {
			return nil, nil
		}
		return []change{{what: "remove the resume-at-boot registration", do: r.boot.UnregisterResume}}, nil
	}
	if r.state.Reboots >= 1 {
		return nil, fmt.Errorf("still pending after the agent's reboot: %s; fix: read `diagnose` output (event logs) for why the change did not complete", strings.Join(why, ", "))
	}
	return []change{
		{what: "register the agent to resume at boot: " + oslayer.JoinCommandLine(r.self, r.resumeArgv()[1:]), do: func(ctx context.Context) error {
			return r.boot.RegisterResume(ctx, r.resumeArgv())
		}},
		{what: "reboot to activate: " + strings.Join(why, ", "), reboot: true, do: r.boot.Reboot},
	}, nil
}

// defenderPaths are scanned on every container start unless excluded.
var defenderPaths = []string{winK, winContainerd, winContainerdData, `C:\opt\cni`, `C:\etc\cni`, winKubeletDir}

func planDefender(ctx context.Context, r *run) ([]change, error) {
	have, err := r.windows.DefenderExclusions(ctx)
	if errors.Is(err, oslayer.ErrNotSupported) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []change
	for _, p := range defenderPaths {
		if containsFold(have, p) {
			continue
		}
		out = append(out, change{what: "exclude " + p + " from Microsoft Defender scans", do: func(ctx context.Context) error {
			return r.windows.AddDefenderExclusion(ctx, p)
		}})
	}
	return out, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimRight(v, `\`), strings.TrimRight(s, `\`)) {
			return true
		}
	}
	return false
}

// firewallRules open what the control plane and other nodes reach on a Windows node.
var firewallRules = []oslayer.FirewallRule{
	{Name: "mixedk8s-kubelet", Protocol: "TCP", Port: 10250},
	{Name: "mixedk8s-kube-proxy-health", Protocol: "TCP", Port: 10256},
	{Name: "mixedk8s-vxlan", Protocol: "UDP", Port: vxlanPort},
}

func planFirewall(ctx context.Context, r *run) ([]change, error) {
	var out []change
	for _, rule := range firewallRules {
		ok, err := r.windows.FirewallRule(ctx, rule.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		out = append(out, change{what: fmt.Sprintf("allow inbound %s/%d (firewall rule %s)", rule.Protocol, rule.Port, rule.Name), do: func(ctx context.Context) error {
			return r.windows.AddFirewallRule(ctx, rule)
		}})
	}
	return out, nil
}

// windowsContainerdConfig is containerd 2.x config v3 with both runhcs handlers.
func windowsContainerdConfig(pause string) []byte {
	esc := func(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }
	return []byte(`# Written by the mixedk8s node agent.
version = 3
root = "` + esc(winContainerdData+`\root`) + `"
state = "` + esc(winContainerdData+`\state`) + `"

[grpc]
  address = "\\\\.\\pipe\\containerd-containerd"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "` + pause + `"

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runhcs-wcow-process"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-process]
  runtime_type = "io.containerd.runhcs.v1"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-hypervisor]
  runtime_type = "io.containerd.runhcs.v1"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-hypervisor.options]
    SandboxIsolation = 1

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["` + esc(winCNIBin) + `"]
  conf_dir = "` + esc(winCNIConf) + `"
`)
}

func planWindowsContainerd(ctx context.Context, r *run) ([]change, error) {
	out, err := r.ensureArtifact(manifest.Containerd, "windows", r.artifactArch(), r.extractTarGz(winContainerd, "bin/"))
	if err != nil {
		return nil, err
	}
	confPath := winContainerd + `\config.toml`
	conf := r.ensureFile(confPath, windowsContainerdConfig(r.pauseImage()), oslayer.Public, "containerd config (v3, runhcs-wcow-process and runhcs-wcow-hypervisor)")
	out = append(out, conf...)
	svc, err := r.ensureService(ctx, oslayer.ServiceSpec{
		Name:        "containerd",
		DisplayName: "containerd container runtime",
		Description: "containerd for the Kubernetes node (mixedk8s)",
		Path:        winContainerd + `\containerd.exe`,
		Args:        []string{"--run-service", "--config", confPath, "--log-file", winLogs + `\containerd\containerd.log`},
		LogFolder:   winLogs + `\containerd`,
	}, true, len(conf) > 0)
	return append(out, svc...), err
}

// windowsFlannelCNIConfig is containerd's CNI config on a flannel node:
// flannel's plugin delegating to win-overlay with HNS v2 ("apiVersion": 2)
// policies, which containerd's HCN path reads: no NAT to pods and services,
// services routed through the overlay, and the node's address as provider
// address (as rancher/rke2 pkg/windows/flannel.go writes it).
func windowsFlannelCNIConfig(cfg contract.Config) ([]byte, error) {
	policy := func(typ string, settings any) map[string]any {
		return map[string]any{"name": "EndpointPolicy", "value": map[string]any{"Type": typ, "Settings": settings}}
	}
	conf := map[string]any{
		"name": hnsNetworkName("flannel"), "cniVersion": "0.3.1",
		"plugins": []any{map[string]any{
			"type":         "flannel",
			"capabilities": map[string]bool{"portMappings": true, "dns": true},
			"delegate": map[string]any{
				"type": "win-overlay", "apiVersion": 2,
				"policies": []any{
					policy("OutBoundNAT", map[string]any{"Exceptions": []string{cfg.Cluster.PodCIDR, cfg.Cluster.ServiceCIDR}}),
					policy("SDNRoute", map[string]any{"DestinationPrefix": cfg.Cluster.ServiceCIDR, "NeedEncap": true}),
					policy("ProviderAddress", map[string]any{"ProviderAddress": cfg.Node.PrivateIP}),
				},
			},
		}},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func planWindowsCNIConfig(ctx context.Context, r *run) ([]change, error) {
	if r.cfg.Cluster.CNI != "flannel" {
		return nil, nil
	}
	data, err := windowsFlannelCNIConfig(r.cfg)
	if err != nil {
		return nil, err
	}
	return r.ensureFile(winCNIConf+`\10-flannel.conflist`, data, oslayer.Public, "CNI config (flannel delegating to win-overlay, HNS v2 policies)"), nil
}

func planPauseImage(ctx context.Context, r *run) ([]change, error) {
	img := r.pauseImage()
	if r.id.GOOS == "windows" {
		return r.marker("pause-image", img, "pull the sandbox image "+img+" ahead with crictl", func(ctx context.Context) error {
			return r.command(ctx, winK+`\crictl.exe`, "--runtime-endpoint", winPipe, "pull", img)
		}), nil
	}
	return r.marker("pause-image", img, "pull the sandbox image "+img+" ahead with crictl", func(ctx context.Context) error {
		return r.command(ctx, "/usr/local/bin/crictl", "--runtime-endpoint", "unix:///run/containerd/containerd.sock", "pull", img)
	}), nil
}

// The External network holds the vSwitch so the CNI's own network never is
// the first on the adapter: creating the first one moves the management
// address onto the vSwitch and drops connections and routes for seconds.
// Name, prefix and VSID as microsoft/SDN Kubernetes/windows/start.ps1 and
// rancher/rke2 pkg/windows create it for overlay networking.
const (
	externalNetwork = "External"
	externalPrefix  = "192.168.255.0/30"
	externalGateway = "192.168.255.1"
	externalVSID    = 9999
	// managementIPWait bounds the wait for the address to come back on the vSwitch.
	managementIPWait = 2 * time.Minute
)

// metadataRoutes are the routes to the cloud's link-local services (instance
// metadata, time, KMS) and Azure's wire server that the vSwitch drops.
func metadataRoutes(routes []string) []string {
	var out []string
	for _, p := range routes {
		if strings.HasPrefix(p, "169.254.") || p == "168.63.129.16/32" {
			out = append(out, p)
		}
	}
	return out
}

func planExternalNetwork(ctx context.Context, r *run) ([]change, error) {
	ip := r.cfg.Node.PrivateIP
	if ip == "" {
		return nil, fmt.Errorf("node.privateIP is empty: the agent binds the vSwitch to the adapter holding it; fix: set node.privateIP to the node's VPC address")
	}
	n, err := r.windows.HNSNetwork(ctx, externalNetwork)
	if err != nil {
		return nil, err
	}
	a, err := r.windows.NetAdapter(ctx, ip)
	if err != nil {
		return nil, err
	}
	var out []change
	if n == nil {
		if a == nil {
			return nil, fmt.Errorf("no network adapter holds node.privateIP %s; fix: set node.privateIP to an address of this VM", ip)
		}
		routes := metadataRoutes(a.Routes)
		spec := oslayer.HNSNetwork{Name: externalNetwork, Type: "Overlay", AddressPrefix: externalPrefix, Gateway: externalGateway, VNI: externalVSID, UDPPort: vxlanPort, AdapterName: a.Name}
		out = append(out, change{what: fmt.Sprintf("create HNS network %s on adapter %s (holds the vSwitch; the node's address moves onto it)", externalNetwork, a.Name), do: func(ctx context.Context) error {
			r.state.Markers["metadata-routes"] = strings.Join(routes, ",")
			if err := r.saveState(); err != nil {
				return err
			}
			return r.windows.CreateHNSNetwork(ctx, spec)
		}})
	}
	out = append(out, change{what: "wait for " + ip + " on the vSwitch and restore the routes to the metadata services", do: r.restoreMetadataRoutes})
	if n != nil && a != nil {
		missing := false
		for _, p := range strings.Split(r.state.Markers["metadata-routes"], ",") {
			if p != "" && !containsFold(a.Routes, p) {
				missing = true
			}
		}
		if !missing {
			return nil, nil
		}
	}
	return out, nil
}

// restoreMetadataRoutes waits for the node's address on the vSwitch and adds
// back the metadata routes recorded before the vSwitch took the adapter.
func (r *run) restoreMetadataRoutes(ctx context.Context) error {
	ip := r.cfg.Node.PrivateIP
	// Wall time, not the event clock: the gap is the switch's, not the agent's.
	deadline := time.After(managementIPWait)
	for {
		a, err := r.windows.NetAdapter(ctx, ip)
		if err != nil {
			return err
		}
		if a != nil {
			for _, p := range strings.Split(r.state.Markers["metadata-routes"], ",") {
				if p != "" && !containsFold(a.Routes, p) {
					if err := r.windows.AddRoute(ctx, a.Name, p); err != nil {
						return err
					}
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("%s did not come back on the vSwitch within %s; fix: read `ipconfig /all` and the Hyper-V-VmSwitch event log", ip, managementIPWait)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// metadataRoutesMissing reports whether a recorded metadata route is not on the adapter holding the node's address.
func (r *run) metadataRoutesMissing(ctx context.Context) (bool, error) {
	a, err := r.windows.NetAdapter(ctx, r.cfg.Node.PrivateIP)
	if err != nil || a == nil {
		return a == nil && err == nil, err
	}
	for _, p := range strings.Split(r.state.Markers["metadata-routes"], ",") {
		if p != "" && !containsFold(a.Routes, p) {
			return true, nil
		}
	}
	return false, nil
}

func planWindowsBinaries(ctx context.Context, r *run) ([]change, error) {
	var out []change
	for _, n := range []string{manifest.Kubelet, manifest.KubeProxy, manifest.Kubectl, manifest.KubeLogRunner} {
		c, err := r.ensureArtifact(n, "windows", r.artifactArch(), r.installFile(winK+`\`+n+".exe"))
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

// windowsNodeConfig adds the Windows labels and the os taint to the node's
// own (kubeadm.NodeLabels adds the pool's label, as for every node).
// The os=windows:NoSchedule taint is added unless node.taints already has an
// "os" key: the provisioner's explicit choice wins (including none-by-design
// pools that set e.g. os=windows:PreferNoSchedule).
func windowsNodeConfig(cfg contract.Config) contract.Config {
	labels := map[string]string{}
	for k, v := range cfg.Node.Labels {
		labels[k] = v
	}
	labels["node.kubernetes.io/windows-build"] = contract.WindowsBuilds[cfg.Node.WindowsVersion]
	labels[contract.LabelIsolation] = cfg.Node.Isolation
	cfg.Node.Labels = labels
	hasOS := false
	for _, t := range cfg.Node.Taints {
		if k, _, err := parseTaint(t); err == nil && k == "os" {
			hasOS = true
		}
	}
	if !hasOS {
		cfg.Node.Taints = append(append([]string(nil), cfg.Node.Taints...), "os=windows:NoSchedule")
	}
	return cfg
}

// logFolder is where a Windows service's log file lives.
func logFolder(component string) string { return winLogs + `\` + component }

// logRunner wraps a Windows service binary in kube-log-runner, which writes its
// output to a file and rotates it by size and age.
func logRunner(component string, argv ...string) (string, []string) {
	return winK + `\kube-log-runner.exe`, append([]string{
		"-log-file=" + logFolder(component) + `\` + component + ".log",
		"-log-file-size=100M",
		"-log-file-age=168h",
	}, argv...)
}

func planWindowsKubelet(ctx context.Context, r *run) ([]change, error) {
	cfg := windowsNodeConfig(r.cfg)
	kcfg, err := kubeadm.WindowsKubeletConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to render the kubelet configuration: %w", err)
	}
	boot, err := kubeadm.BootstrapKubeconfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to render the bootstrap kubeconfig: %w", err)
	}
	labels, err := kubeadm.NodeLabels(cfg)
	if err != nil {
		return nil, err
	}
	cfgPath, bootPath := winK+`\kubelet-config.yaml`, winK+`\bootstrap-kubelet.conf`
	var files []change
	files = append(files, r.ensureFile(kubeadm.WindowsCAFile, []byte(r.cfg.Join.CACertPEM), oslayer.Public, "cluster CA")...)
	files = append(files, r.ensureFile(bootPath, boot, oslayer.Secret, "bootstrap kubeconfig (TLS bootstrap token)")...)
	files = append(files, r.ensureFile(cfgPath, kcfg, oslayer.Public, "kubelet configuration")...)
	args := []string{
		winK + `\kubelet.exe`, "--windows-service",
		"--config=" + cfgPath,
		"--bootstrap-kubeconfig=" + bootPath,
		"--kubeconfig=" + kubeadm.WindowsKubeletKubeconfig,
		"--cert-dir=" + winKubeletDir + `\pki`,
		"--hostname-override=" + r.cfg.Node.Name,
		"--node-labels=" + labels,
	}
	if r.cfg.Node.PrivateIP != "" {
		args = append(args, "--node-ip="+r.cfg.Node.PrivateIP)
	}
	p, a := logRunner("kubelet", args...)
	svc, err := r.ensureService(ctx, oslayer.ServiceSpec{
		Name: "kubelet", DisplayName: "Kubernetes kubelet", Description: "Kubernetes node agent (mixedk8s)",
		Path: p, Args: a, DependsOn: []string{"containerd"}, LogFolder: logFolder("kubelet"),
	}, true, len(files) > 0)
	return append(files, svc...), err
}

// kubeletBootstrapWait bounds the wait for the kubelet's TLS bootstrap, as
// kubeadm join's default timeouts.tlsBootstrap does on Linux.
const kubeletBootstrapWait = 5 * time.Minute

// planKubeletBootstrap waits until the kubelet has joined: it writes its
// kubeconfig once the API server has signed its certificate, and kube-proxy
// reads that kubeconfig. A token the API server rejects shows here, with
// the node, instead of as a node that never turns Ready.
func planKubeletBootstrap(ctx context.Context, r *run) ([]change, error) {
	kubeconfig := kubeadm.WindowsKubeletKubeconfig
	if r.exists(kubeconfig) {
		return nil, nil
	}
	return []change{{what: "wait for the kubelet's TLS bootstrap (it writes " + kubeconfig + ")", do: func(ctx context.Context) error {
		deadline := r.now().Add(kubeletBootstrapWait)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for !r.exists(kubeconfig) {
			if r.now().After(deadline) {
				return r.bootstrapFailed(kubeconfig)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		return nil
	}}}, nil
}

// bootstrapFailed says why the kubelet has no kubeconfig, from its log.
func (r *run) bootstrapFailed(kubeconfig string) error {
	logFile := winLogs + `\kubelet\kubelet.log`
	if log, err := r.files.ReadFile(logFile); err == nil && bytes.Contains(log, []byte("Unauthorized")) {
		return fmt.Errorf("the API server at %s rejects the kubelet's bootstrap token (401 Unauthorized in %s); fix: apply again, which issues a fresh token; if that fails too, check the clocks of the node and the control plane", r.cfg.Cluster.APIEndpoint, logFile)
	}
	return fmt.Errorf("the kubelet has no %s after %s: its TLS bootstrap did not finish; fix: check that this node reaches the API server at %s (TCP 6443, through the cloud's firewall) and read %s", kubeconfig, kubeletBootstrapWait, r.cfg.Cluster.APIEndpoint, logFile)
}

func planWindowsKubeProxy(ctx context.Context, r *run) ([]change, error) {
	network := hnsNetworkName(r.cfg.Cluster.CNI)
	vip, _, _ := strings.Cut(r.state.Markers[markerSourceVIP], " ")
	if vip == "" && !r.dryRun {
		return nil, fmt.Errorf("kube-proxy has no source VIP on HNS network %s (cluster.cni %s): the agent records it once the CNI's network exists (steps source-vip for flannel, calico-network for Calico); fix: run apply again", network, r.cfg.Cluster.CNI)
	}
	pcfg, err := kubeadm.WindowsKubeProxyConfig(r.cfg, network, vip)
	if err != nil {
		return nil, fmt.Errorf("failed to render the kube-proxy configuration: %w", err)
	}
	cfgPath := winK + `\kube-proxy-config.yaml`
	files := r.ensureFile(cfgPath, pcfg, oslayer.Public, fmt.Sprintf("kube-proxy configuration (kernelspace, network %s, source VIP %s)", network, cmp.Or(vip, "from the source-vip step")))
	p, a := logRunner("kube-proxy", winK+`\kube-proxy.exe`, "--windows-service", "--config="+cfgPath)
	svc, err := r.ensureService(ctx, oslayer.ServiceSpec{
		Name: "kube-proxy", DisplayName: "Kubernetes kube-proxy", Description: "Kubernetes network proxy (mixedk8s)",
		Path: p, Args: a, DependsOn: []string{"kubelet"}, Env: []string{"KUBE_NETWORK=" + network}, LogFolder: logFolder("kube-proxy"),
	}, true, len(files) > 0)
	return append(files, svc...), err
}
