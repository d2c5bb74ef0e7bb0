package agent_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/agent"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// calicoNode stands for the operator's calico-node-windows DaemonSet: it
// starts once the node's kubelet has joined, as the lab runs it.
func calicoNode(sb *sandbox.Sandbox, c sandbox.CalicoNodeWindows) sandbox.Hooks {
	return sandbox.Hooks{OnServiceStart: func(ctx context.Context, spec oslayer.ServiceSpec) error {
		if spec.Name != "kubelet" {
			return nil
		}
		return sb.RunCalicoNodeWindows(ctx, c)
	}}
}

// On a Calico cluster the agent installs no CNI of its own on Windows: it
// waits for calico-node-windows's network, gives kube-proxy Calico_ep's
// address as source VIP, and restores the metadata routes Calico's new
// External network dropped.
func TestWindowsCalicoWaitsForCalicoNodeAndRunsKubeProxyOnIt(t *testing.T) {
	cfg := windowsConfig(t, "2022", "calico", "process")
	l := newLab(t, cfg, nil)
	l.sb.SetHooks(calicoNode(l.sb, sandbox.CalicoNodeWindows{
		Node: strings.ToLower(cfg.Node.Name), APIHost: "10.0.0.4", APIPort: "6443", Backend: "vxlan", VNI: 4096,
		Block: "10.244.3.0/24", CNIBinDir: `C:\opt\cni\bin`, CNIConfDir: `C:\etc\cni\net.d`,
	}))
	l.converge(context.Background())
	m := l.sb.Machine()

	n, ok := m.HNSNetworks["Calico"]
	if !ok || n.AddressPrefix != "10.244.3.0/24" || n.VNI != 4096 {
		t.Fatalf("Calico network %+v (present %v)", n, ok)
	}
	if _, ok := m.HNSNetworks["External"]; !ok {
		t.Errorf("no External network: %v", m.HNSNetworks)
	}
	for _, s := range []string{"flanneld"} {
		if m.Services[s] != nil {
			t.Errorf("service %s installed on a Calico node", s)
		}
	}
	if _, err := l.sb.ReadFile(`C:\etc\cni\net.d\10-flannel.conflist`); err == nil {
		t.Errorf("the agent wrote flannel's CNI config on a Calico node")
	}
	kp := m.Services["kube-proxy"]
	if kp == nil || !kp.Running {
		t.Fatalf("kube-proxy is not running")
	}
	data, err := l.sb.ReadFile(`C:\k\kube-proxy-config.yaml`)
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		Winkernel struct{ NetworkName, SourceVip string } `json:"winkernel"`
	}
	if err := yaml.Unmarshal(data, &pc); err != nil {
		t.Fatal(err)
	}
	if pc.Winkernel.NetworkName != "Calico" || pc.Winkernel.SourceVip != "10.244.3.2" || m.HNSEndpoints["Calico_ep"] != "10.244.3.2" {
		t.Errorf("kube-proxy winkernel %+v; Calico_ep %s", pc.Winkernel, m.HNSEndpoints["Calico_ep"])
	}
	var vswitch *oslayer.NetAdapter
	for _, a := range m.Adapters {
		if strings.HasPrefix(a.Name, "vEthernet (") {
			vswitch = a
		}
	}
	if vswitch == nil || !slices.Contains(vswitch.Routes, "169.254.169.254/32") {
		t.Errorf("the metadata route is not back on the vSwitch after Calico's External network: %+v", vswitch)
	}
	assertAllSkipped(t, l.apply(context.Background(), nil))
}

// Without calico-node-windows (an Installation without the Windows
// dataplane, say) the agent does not start kube-proxy on nothing: it names
// what to look at.
func TestWindowsCalicoWithoutCalicoNodeSaysWhatToCheck(t *testing.T) {
	l := newLab(t, windowsConfig(t, "2022", "calico", "process"), nil)
	// A clock that runs three minutes per reading: the wait's deadline passes in seconds.
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(3 * time.Minute)
		return now
	}
	var res result
	for _, args := range [][]string{{"apply", "--config", l.path, "--output", "json"}, nil} {
		if args == nil {
			args = l.sb.ResumeCommand()[1:]
		}
		var out, errb bytes.Buffer
		code := agent.Main(context.Background(), args, agent.Env{OS: l.sb, Stdout: &out, Stderr: &errb, Now: clock})
		res = result{code: code, stdout: out.String(), stderr: errb.String()}
		if code != contract.ExitRebooting {
			break
		}
	}
	if res.code != contract.ExitFailed {
		t.Fatalf("exit %d, want %d (failed)\n%s%s", res.code, contract.ExitFailed, res.stdout, res.stderr)
	}
	for _, want := range []string{`"step":"calico-network"`, "calico-node-windows", "windowsDataplane HNS"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
	if kp := l.sb.Machine().Services["kube-proxy"]; kp != nil {
		t.Errorf("kube-proxy installed without Calico's network")
	}
}
