package agent_test

import (
	"context"
	"slices"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// The first HNS network moves the node's address onto a vSwitch and drops
// the routes to the instance metadata service; the agent makes that
// happen once, with the External network on the adapter holding the node's
// address, waits for the address and puts the routes back.
func TestExternalNetworkFirstKeepsMetadataRoutes(t *testing.T) {
	ctx := context.Background()
	cfg := windowsConfig(t, "2022", "flannel", "process")
	l := newLab(t, cfg, nil)
	l.converge(ctx)
	var nets []string
	for _, e := range l.effects() {
		if e.Kind == sandbox.KindHNSNetwork {
			nets = append(nets, e.Target+" "+e.Detail)
		}
	}
	m := l.sb.Machine()
	ext, ok := m.HNSNetworks["External"]
	if !ok || len(nets) == 0 || nets[0][:len("External ")] != "External " {
		t.Fatalf("the External network is not the first HNS network: %v", nets)
	}
	if ext.AdapterName != "Ethernet" {
		t.Errorf("External is bound to adapter %q, want the one holding %s (Ethernet)", ext.AdapterName, cfg.Node.PrivateIP)
	}
	a := m.Adapters["vEthernet (Ethernet)"]
	if a == nil || a.IP != cfg.Node.PrivateIP {
		t.Fatalf("the node's address is not on the vSwitch: %+v", m.Adapters)
	}
	for _, r := range []string{"169.254.169.254/32", "169.254.169.250/32", "169.254.169.251/32", "169.254.169.123/32"} {
		if !slices.Contains(a.Routes, r) {
			t.Errorf("route %s lost with the vSwitch: %v", r, a.Routes)
		}
	}
}
