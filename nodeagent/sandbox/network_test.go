package sandbox_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

const nodeIP = "10.0.0.21"

// networkMachine is a Windows machine after the Containers feature's
// reboot, with flanneld's files in place and its service installed.
func networkMachine(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	ctx := context.Background()
	sb := windowsMachine(t)
	if err := sb.EnableFeature(ctx, "Containers"); err != nil {
		t.Fatal(err)
	}
	if err := sb.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if a, err := sb.NetAdapter(ctx, nodeIP); err != nil || a == nil {
		t.Fatalf("adapter: %v %v", a, err)
	}
	files := map[string]string{
		`C:\k\flanneld.conf`: "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: https://10.0.0.4:6443}\n" +
			"users:\n- name: n\n  user: {client-certificate: 'C:\\var\\lib\\kubelet\\pki\\kubelet-client-current.pem', client-key: 'C:\\var\\lib\\kubelet\\pki\\kubelet-client-current.pem'}\n",
		`C:\var\lib\kubelet\pki\kubelet-client-current.pem`: "cert and key\n",
		`C:\k\net-conf.json`: `{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "VNI": 4096, "Port": 4789}}`,
	}
	for p, body := range files {
		if err := sb.WriteFile(p, []byte(body), oslayer.Secret); err != nil {
			t.Fatal(err)
		}
	}
	if err := sb.InstallService(ctx, flanneldSpec()); err != nil {
		t.Fatal(err)
	}
	return sb
}

func flanneldSpec() oslayer.ServiceSpec {
	return oslayer.ServiceSpec{Name: "flanneld", Path: `C:\k\flanneld.exe`, Args: []string{
		"--kube-subnet-mgr", `--kubeconfig-file=C:\k\flanneld.conf`, `--net-config-path=C:\k\net-conf.json`, "--iface=" + nodeIP,
	}, Env: []string{"NODE_NAME=win-1"}}
}

// createExternal creates the External network and waits out the vSwitch's address gap.
func createExternal(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx := context.Background()
	if err := sb.CreateHNSNetwork(ctx, oslayer.HNSNetwork{Name: "External", Type: "Overlay", AddressPrefix: "192.168.255.0/30", Gateway: "192.168.255.1", VNI: 9999, UDPPort: 4789}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if a, _ := sb.NetAdapter(ctx, nodeIP); a != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the node's address never came back on the vSwitch")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func wantExit(t *testing.T, sb *sandbox.Sandbox, service, why string) {
	t.Helper()
	err := sb.StartService(context.Background(), service, false)
	if err == nil || !strings.Contains(err.Error(), why) {
		t.Errorf("starting %s: %v, want it to stop: %s", service, err, why)
	}
	if st, _ := sb.Service(context.Background(), service); st.Running {
		t.Errorf("%s runs after it gave up", service)
	}
}

// flanneld needs the External network (its own must not be the first on the
// adapter), its kubeconfig and its node name; then it creates flannel.4096
// with the node's lease.
func TestFlanneldNeedsItsKubeconfigAndTheExternalNetwork(t *testing.T) {
	ctx := context.Background()
	sb := networkMachine(t)
	wantExit(t, sb, "flanneld", "External")
	createExternal(t, sb)

	if err := sb.Remove(`C:\k\flanneld.conf`); err != nil {
		t.Fatal(err)
	}
	wantExit(t, sb, "flanneld", `C:\k\flanneld.conf`)
	if err := sb.WriteFile(`C:\k\flanneld.conf`, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: https://10.0.0.4:6443}\n"), oslayer.Secret); err != nil {
		t.Fatal(err)
	}
	noEnv := flanneldSpec()
	noEnv.Env = nil
	if err := sb.InstallService(ctx, noEnv); err != nil {
		t.Fatal(err)
	}
	wantExit(t, sb, "flanneld", "NODE_NAME")
	if err := sb.InstallService(ctx, flanneldSpec()); err != nil {
		t.Fatal(err)
	}
	if n := sb.Machine().HNSNetworks["flannel.4096"]; n.Name != "" {
		t.Fatalf("flannel.4096 exists before flanneld ran: %+v", n)
	}
	if err := sb.StartService(ctx, "flanneld", false); err != nil {
		t.Fatal(err)
	}
	n := sb.Machine().HNSNetworks["flannel.4096"]
	if n.Type != "Overlay" || n.VNI != 4096 || n.AddressPrefix != "10.244.0.0/24" || n.Gateway != "10.244.0.1" || n.ManagementIP != nodeIP {
		t.Errorf("flanneld's network: %+v", n)
	}
	env, err := sb.ReadFile(`C:\run\flannel\subnet.env`)
	if err != nil || !strings.Contains(string(env), "FLANNEL_SUBNET=10.244.0.1/24") {
		t.Errorf("subnet.env: %q %v", env, err)
	}
}

// flannel's ensureNetwork keeps a same-named network only with the lease's
// prefix: a placeholder is deleted and created again, so nothing reserved
// on it survives.
func TestFlanneldReplacesASameNamedNetworkWithAnotherPrefix(t *testing.T) {
	ctx := context.Background()
	sb := networkMachine(t)
	createExternal(t, sb)
	if err := sb.CreateHNSNetwork(ctx, oslayer.HNSNetwork{Name: "flannel.4096", Type: "Overlay", AddressPrefix: "192.168.255.0/30", Gateway: "192.168.255.1", VNI: 4096, UDPPort: 4789}); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartService(ctx, "flanneld", false); err != nil {
		t.Fatal(err)
	}
	if n := sb.Machine().HNSNetworks["flannel.4096"]; n.AddressPrefix != "10.244.0.0/24" {
		t.Errorf("flannel.4096 kept prefix %s, want flanneld's lease 10.244.0.0/24", n.AddressPrefix)
	}
	creates := func() int {
		effects, err := sb.Effects()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range effects {
			if e.Kind == sandbox.KindHNSNetwork && e.Target == "flannel.4096" {
				n++
			}
		}
		return n
	}
	if got := creates(); got != 2 {
		t.Errorf("flannel.4096 created %d times, want the placeholder and flanneld's", got)
	}
	// A restart with the same lease keeps the network.
	if err := sb.StartService(ctx, "flanneld", true); err != nil {
		t.Fatal(err)
	}
	if got := creates(); got != 2 {
		t.Errorf("a restart with the same lease recreated flannel.4096 (%d creates)", got)
	}
}

func hostLocal(sb *sandbox.Sandbox, command, id string) (string, error) {
	out, err := sb.Run(context.Background(), oslayer.Command{
		Path:  `C:\opt\cni\bin\host-local.exe`,
		Stdin: []byte(`{"cniVersion": "1.0.0", "name": "flannel.4096", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "dataDir": "C:\\var\\lib\\cni\\networks"}}`),
		Env:   []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_IFNAME=source-vip", "CNI_NETNS=x"},
	})
	if err != nil || command != "ADD" {
		return "", err
	}
	var res struct{ IPs []struct{ Address string } }
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 1 {
		return "", err
	}
	return res.IPs[0].Address, nil
}

// host-local gives the first address after the gateway, refuses a second
// allocation to the same owner and releases by owner.
func TestHostLocalReservesOncePerOwner(t *testing.T) {
	sb := windowsMachine(t)
	if ip, err := hostLocal(sb, "ADD", "kube-proxy"); err != nil || ip != "10.244.0.2/24" {
		t.Fatalf("first ADD: %q %v, want 10.244.0.2/24", ip, err)
	}
	if _, err := hostLocal(sb, "ADD", "kube-proxy"); err == nil || !strings.Contains(err.Error(), "duplicate allocation is not allowed") {
		t.Errorf("second ADD for the same owner: %v", err)
	}
	if ip, err := hostLocal(sb, "ADD", "pod-1"); err != nil || ip != "10.244.0.3/24" {
		t.Errorf("a pod's ADD: %q %v, want 10.244.0.3/24", ip, err)
	}
	if _, err := hostLocal(sb, "DEL", "kube-proxy"); err != nil {
		t.Fatal(err)
	}
	if ip, err := hostLocal(sb, "ADD", "kube-proxy"); err != nil || ip != "10.244.0.2/24" {
		t.Errorf("ADD after DEL: %q %v", ip, err)
	}
}

// kube-proxy proxies nothing until the network its config names exists; on
// an overlay it needs a source VIP in that network's subnet, reserved
// where the pods' IPAM sees it.
func TestKubeProxyNeedsItsNetworkAndAReservedSourceVIP(t *testing.T) {
	ctx := context.Background()
	sb := networkMachine(t)
	createExternal(t, sb)
	if err := sb.MkdirAll(`C:\var\log\kube-proxy`); err != nil {
		t.Fatal(err)
	}
	if err := sb.InstallService(ctx, oslayer.ServiceSpec{Name: "kube-proxy", Path: `C:\k\kube-log-runner.exe`, Args: []string{
		`-log-file=C:\var\log\kube-proxy\kube-proxy.log`, `C:\k\kube-proxy.exe`, "--windows-service", `--config=C:\k\kube-proxy-config.yaml`,
	}}); err != nil {
		t.Fatal(err)
	}
	config := func(vip string) {
		t.Helper()
		body := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: kernelspace\nwinkernel:\n  networkName: flannel.4096\n"
		if vip != "" {
			body += "  sourceVip: " + vip + "\n"
		}
		if err := sb.WriteFile(`C:\k\kube-proxy-config.yaml`, []byte(body), oslayer.Public); err != nil {
			t.Fatal(err)
		}
	}
	config("10.244.0.2")
	wantExit(t, sb, "kube-proxy", "Unable to find HNS Network")
	if err := sb.StartService(ctx, "flanneld", false); err != nil {
		t.Fatal(err)
	}
	config("")
	wantExit(t, sb, "kube-proxy", "source-vip flag not set")
	config("192.168.255.2")
	wantExit(t, sb, "kube-proxy", "outside network")
	config("10.244.0.2")
	wantExit(t, sb, "kube-proxy", "not reserved")
	if _, err := hostLocal(sb, "ADD", "kube-proxy"); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartService(ctx, "kube-proxy", false); err != nil {
		t.Errorf("kube-proxy with its network and a reserved source VIP: %v", err)
	}
}
