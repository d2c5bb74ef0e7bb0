package agent_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// flanneld runs as a Windows service the agent installs, with its own
// kubeconfig on the real API endpoint, the inputs flannel needs outside a
// pod, and the flannel CNI plugin from flannel-io/cni-plugin; the add-on
// has no Windows DaemonSet and names no unpublished image.
func TestWindowsFlannelRunsAsANativeService(t *testing.T) {
	cfg := windowsConfig(t, "2022", "flannel", "process")
	l := newLab(t, cfg, nil)
	l.converge(context.Background())
	m := l.sb.Machine()

	sv := m.Services["flanneld"]
	if sv == nil || !sv.Running {
		t.Fatalf("no flanneld service runs; services: %v", slices.Collect(func(yield func(string) bool) {
			for k := range m.Services {
				if !yield(k) {
					return
				}
			}
		}))
	}
	cmd := sv.Spec.CommandLine()
	for _, want := range []string{`C:\k\flanneld.exe`, "--kube-subnet-mgr", "--iface=" + cfg.Node.PrivateIP, "--public-ip=" + cfg.Node.PrivateIP, "--net-config-path="} {
		if !strings.Contains(cmd, want) {
			t.Errorf("flanneld's command line lacks %q: %s", want, cmd)
		}
	}
	if !slices.Contains(sv.Spec.Env, "NODE_NAME="+strings.ToLower(cfg.Node.Name)) {
		t.Errorf("flanneld's environment %q lacks NODE_NAME", sv.Spec.Env)
	}
	kcPath := regexp.MustCompile(`--kubeconfig-file=(\S+)`).FindStringSubmatch(cmd)
	if kcPath == nil {
		t.Fatalf("flanneld has no --kubeconfig-file: %s", cmd)
	}
	data, err := l.sb.ReadFile(kcPath[1])
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		t.Fatalf("flanneld's kubeconfig does not load with client-go: %v\n%s", err, data)
	}
	ctx := kc.Contexts[kc.CurrentContext]
	if ctx == nil || kc.Clusters[ctx.Cluster] == nil || kc.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("flanneld's kubeconfig has no complete current context:\n%s", data)
	}
	if got, want := kc.Clusters[ctx.Cluster].Server, "https://"+cfg.Cluster.APIEndpoint; got != want {
		t.Errorf("flanneld's API server is %s, want the real endpoint %s", got, want)
	}
	if u := kc.AuthInfos[ctx.AuthInfo]; u.ClientCertificate == "" || u.Token != "" {
		t.Errorf("flanneld's credential: want the kubelet's client certificate, got %+v", u)
	}
	hp, _ := l.sb.HostPath(kcPath[1])
	if st, err := os.Stat(hp); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("flanneld's kubeconfig is not owner-only: %v %v", st, err)
	}

	// The plugin comes from flannel-io/cni-plugin (flannel-amd64.exe), not containernetworking/plugins.
	plugin, err := l.sb.ReadFile(`C:\opt\cni\bin\flannel.exe`)
	if err != nil || !strings.Contains(string(plugin), "stand-in flannel-cni-plugin ") {
		t.Errorf("C:\\opt\\cni\\bin\\flannel.exe is %q (%v), want flannel-amd64.exe of flannel-io/cni-plugin", plugin, err)
	}
	mf, err := manifest.Builtin(cfg.Cluster.KubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := manifest.Find(mf, "flannel-cni-plugin", "windows", "amd64"); err != nil ||
		!strings.HasPrefix(a.URL, "https://github.com/flannel-io/cni-plugin/releases/download/") || !strings.HasSuffix(a.URL, "/flannel-amd64.exe") || len(a.SHA256) != 64 {
		t.Errorf("flannel CNI plugin in the manifest: %+v %v, want flannel-amd64.exe with a pinned SHA-256", a, err)
	}
	if a, err := manifest.Find(mf, "flanneld", "windows", "amd64"); err != nil || len(a.SHA256) != 64 ||
		!strings.HasPrefix(a.URL, "https://github.com/flannel-io/flannel/releases/download/") {
		t.Errorf("flanneld in the manifest: %+v %v, want a pinned SHA-256", a, err)
	}

	// The add-on the control plane applies: Linux flannel only.
	cp := newLab(t, linuxConfig(t, contract.RoleInit, "flannel"), nil)
	cp.converge(context.Background())
	addon, err := cp.sb.ReadFile("/etc/kubernetes/mixedk8s/addons/flannel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"sigwindowstools", "kubernetes.io/os: windows", "hostProcess"} {
		if strings.Contains(string(addon), bad) {
			t.Errorf("the flannel add-on still holds %q", bad)
		}
	}
	if !strings.Contains(string(addon), "nodeSelector: {kubernetes.io/os: linux}") {
		t.Error("the flannel add-on lost its Linux DaemonSet")
	}
}

// effectIndex is the position of the first effect of kind whose target has the given suffix, or -1.
func effectIndex(effects []sandbox.Effect, kind, target string) int {
	return slices.IndexFunc(effects, func(e sandbox.Effect) bool {
		return e.Kind == kind && strings.HasSuffix(e.Target, target)
	})
}

// kube-proxy's source VIP comes after flanneld made its network, from that
// network's subnet, reserved with host-local where the pods' IPAM sees it;
// when flannel's subnet changes, the next apply moves the VIP with it.
func TestKubeProxySourceVIPIsReservedOnFlannelsSubnet(t *testing.T) {
	cfg := windowsConfig(t, "2022", "flannel", "process")
	l := newLab(t, cfg, nil)
	l.converge(context.Background())
	effects := l.effects()

	order := []struct{ kind, target string }{
		{sandbox.KindHNSNetwork, "External"},
		{sandbox.KindServiceStart, "flanneld"},
		{sandbox.KindHNSNetwork, "flannel.4096"},
		{sandbox.KindCommand, `\host-local.exe`},
		{sandbox.KindFileWrite, `C:\k\kube-proxy-config.yaml`},
		{sandbox.KindServiceStart, "kube-proxy"},
	}
	last := -1
	for _, o := range order {
		i := effectIndex(effects, o.kind, o.target)
		if i < 0 {
			t.Fatalf("no %s %s among the effects", o.kind, o.target)
		}
		if i < last {
			t.Errorf("%s %s happened before the step it needs", o.kind, o.target)
		}
		last = i
	}

	vipOf := func() (netip.Addr, netip.Prefix) {
		t.Helper()
		data, err := l.sb.ReadFile(`C:\k\kube-proxy-config.yaml`)
		if err != nil {
			t.Fatal(err)
		}
		var pc struct {
			Winkernel struct{ NetworkName, SourceVip string }
		}
		if err := yaml.Unmarshal(data, &pc); err != nil {
			t.Fatal(err)
		}
		n := l.sb.Machine().HNSNetworks[pc.Winkernel.NetworkName]
		vip, err := netip.ParseAddr(pc.Winkernel.SourceVip)
		prefix, perr := netip.ParsePrefix(n.AddressPrefix)
		if err != nil || perr != nil || !prefix.Contains(vip) {
			t.Fatalf("kube-proxy's sourceVip %q is not in network %q's subnet %q", pc.Winkernel.SourceVip, pc.Winkernel.NetworkName, n.AddressPrefix)
		}
		owner, err := l.sb.ReadFile(`C:\var\lib\cni\networks\` + pc.Winkernel.NetworkName + `\` + vip.String())
		if err != nil || string(owner) != "kube-proxy\r\nsource-vip" {
			t.Errorf("the source VIP %s is not reserved in host-local's store: %q %v", vip, owner, err)
		}
		return vip, prefix
	}
	vip, prefix := vipOf()
	if prefix.String() != "10.244.0.0/24" {
		t.Errorf("flannel's network has prefix %s, want the node's lease 10.244.0.0/24", prefix)
	}

	// The control plane gives the node another podCIDR (a re-created node):
	// flanneld recreates its network and the next apply follows.
	l.sb.SetHooks(sandbox.Hooks{PodSubnet: func(context.Context, string) (string, error) { return "10.244.9.0/24", nil }})
	if err := l.sb.StopService(context.Background(), "kube-proxy"); err != nil {
		t.Fatal(err)
	}
	if err := l.sb.StartService(context.Background(), "flanneld", true); err != nil {
		t.Fatal(err)
	}
	if err := l.sb.StartService(context.Background(), "kube-proxy", false); err == nil {
		t.Error("kube-proxy started with a source VIP outside flannel's new subnet")
	}
	l.converge(context.Background())
	vip2, prefix2 := vipOf()
	if prefix2.String() != "10.244.9.0/24" || vip2 == vip {
		t.Errorf("after flannel's new subnet the source VIP is %s on %s", vip2, prefix2)
	}
	if !l.sb.Machine().Services["kube-proxy"].Running {
		t.Error("kube-proxy is not running after the re-apply")
	}
	if _, err := os.Stat(filepath.Join(l.sb.Root(), "C", "var", "lib", "cni", "networks", "flannel.4096", vip.String())); err == nil {
		t.Errorf("the old source VIP %s is still reserved", vip)
	}
}
