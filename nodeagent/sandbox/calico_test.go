package sandbox_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

const containerdConfig = `[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["C:\\opt\\cni\\bin"]
  conf_dir = "C:\\etc\\cni\\net.d"
`

func calicoNodeEnv() sandbox.CalicoNodeWindows {
	return sandbox.CalicoNodeWindows{Node: "win-1", APIHost: "10.0.0.4", APIPort: "6443", Backend: "vxlan", VNI: 4096,
		Block: "10.244.7.0/24", CNIBinDir: `C:\opt\cni\bin`, CNIConfDir: `C:\etc\cni\net.d`}
}

// calicoMachine is a Windows machine with containerd's config, the External
// network the agent made and a flannel network left over.
func calicoMachine(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sb := networkMachine(t)
	if err := sb.WriteFile(`C:\Program Files\containerd\config.toml`, []byte(containerdConfig), oslayer.Public); err != nil {
		t.Fatal(err)
	}
	createExternal(t, sb)
	if err := sb.CreateHNSNetwork(context.Background(), oslayer.HNSNetwork{Name: "flannel.4096", Type: "Overlay", AddressPrefix: "10.244.1.0/24", VNI: 4096, UDPPort: 4789}); err != nil {
		t.Fatal(err)
	}
	return sb
}

// calico-node-windows's first run since boot clears the HNS networks,
// makes External again (a new vSwitch: the metadata routes go), then
// Calico's network on the node's block with its host endpoint at .2; a
// second run in the same boot keeps them.
func TestCalicoNodeWindowsRebuildsTheNetworksInItsOrder(t *testing.T) {
	ctx := context.Background()
	sb := calicoMachine(t)
	if err := sb.RunCalicoNodeWindows(ctx, calicoNodeEnv()); err != nil {
		t.Fatal(err)
	}
	m := sb.Machine()
	if _, ok := m.HNSNetworks["flannel.4096"]; ok {
		t.Error("the first run since boot kept another CNI's network")
	}
	n := m.HNSNetworks["Calico"]
	if n.AddressPrefix != "10.244.7.0/24" || n.Gateway != "10.244.7.1" || n.VNI != 4096 || n.ManagementIP != nodeIP || m.HNSEndpoints["Calico_ep"] != "10.244.7.2" {
		t.Errorf("Calico network %+v, Calico_ep %q", n, m.HNSEndpoints["Calico_ep"])
	}
	if _, ok := m.HNSNetworks["External"]; !ok {
		t.Error("no External network")
	}
	var deletes, creates []string
	effects, _ := sb.Effects()
	for _, e := range effects {
		switch e.Kind {
		case sandbox.KindHNSNetworkDelete:
			deletes = append(deletes, e.Target)
		case sandbox.KindHNSNetwork:
			creates = append(creates, e.Target)
		}
	}
	if strings.Join(deletes, ",") != "External,flannel.4096" || strings.Join(creates, ",") != "External,flannel.4096,External,Calico" {
		t.Errorf("deleted %q, created %q", deletes, creates)
	}
	for _, f := range []string{`C:\opt\cni\bin\calico.exe`, `C:\etc\cni\net.d\10-calico.conflist`} {
		if _, err := sb.Stat(f); err != nil {
			t.Errorf("install-cni wrote no %s", f)
		}
	}
	before := len(effects)
	if err := sb.RunCalicoNodeWindows(ctx, calicoNodeEnv()); err != nil {
		t.Fatal(err)
	}
	if after, _ := sb.Effects(); len(after) != before {
		t.Errorf("a second run in the same boot changed HNS: %v", after[before:])
	}
}

func TestCalicoNodeWindowsRefusesWhatWouldNotWork(t *testing.T) {
	cases := []struct {
		name, why string
		mutate    func(c *sandbox.CalicoNodeWindows)
	}{
		{"no services endpoint", "KUBERNETES_SERVICE_HOST", func(c *sandbox.CalicoNodeWindows) { c.APIHost = "" }},
		{"CNI folders not containerd's", "containerd's cni bin_dirs", func(c *sandbox.CalicoNodeWindows) { c.CNIConfDir = `C:\ProgramData\calico` }},
		{"BGP", "windows-bgp", func(c *sandbox.CalicoNodeWindows) { c.Backend = "windows-bgp" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := calicoMachine(t)
			c := calicoNodeEnv()
			tc.mutate(&c)
			err := sb.RunCalicoNodeWindows(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("RunCalicoNodeWindows = %v, want %q", err, tc.why)
			}
			if _, ok := sb.Machine().HNSNetworks["Calico"]; ok {
				t.Error("Calico's network exists anyway")
			}
		})
	}
}

// kube-proxy on Calico's network must use Calico_ep's address, which
// Calico IPAM keeps from pods; another address of the block is a pod's.
func TestKubeProxyOnCalicoNeedsCalicoEndpointAsSourceVIP(t *testing.T) {
	ctx := context.Background()
	sb := calicoMachine(t)
	if err := sb.RunCalicoNodeWindows(ctx, calicoNodeEnv()); err != nil {
		t.Fatal(err)
	}
	spec := oslayer.ServiceSpec{Name: "kube-proxy", Path: `C:\k\kube-proxy.exe`, Args: []string{`--config=C:\k\kube-proxy-config.yaml`}}
	if err := sb.InstallService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ vip, why string }{{"10.244.7.9", "not Calico's host endpoint"}, {"10.244.7.2", ""}} {
		conf := "kind: KubeProxyConfiguration\nmode: kernelspace\nwinkernel:\n  networkName: Calico\n  sourceVip: " + tc.vip + "\n"
		if err := sb.WriteFile(`C:\k\kube-proxy-config.yaml`, []byte(conf), oslayer.Public); err != nil {
			t.Fatal(err)
		}
		if tc.why != "" {
			wantExit(t, sb, "kube-proxy", tc.why)
			continue
		}
		if err := sb.StartService(ctx, "kube-proxy", false); err != nil {
			t.Errorf("kube-proxy with Calico_ep's address: %v", err)
		}
	}
}
