package agent_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// TestWatchdogPutsBackWhatAnHNSResetTook: a configured Windows node runs
// the watchdog service on its own copy of the agent; a pass over a healthy
// node changes nothing; after the Host Network Service loses its networks,
// one pass makes External again, restarts flanneld (which makes its
// network only when it starts) and then kube-proxy (which finds its
// network only at start), and `nodeagent status` lists what it did; a pass
// during an apply does nothing.
func TestWatchdogPutsBackWhatAnHNSResetTook(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, windowsConfig(t, "2022", "flannel", "process"), nil)
	l.converge(ctx)

	m := l.sb.Machine()
	svc := m.Services["mixedk8s-watchdog"]
	const kept = `C:\ProgramData\mixedk8s\nodeagent\config.json`
	copyPath := `C:\ProgramData\mixedk8s\nodeagent\watchdog\nodeagent.exe`
	if svc == nil || !svc.Running || !strings.Contains(svc.Spec.CommandLine(), copyPath+" watch --config "+kept) {
		t.Fatalf("watchdog service: %+v", svc)
	}
	self, _ := l.sb.ReadFile(agentStandIn)
	if got, err := l.sb.ReadFile(copyPath); err != nil || string(got) != string(self) {
		t.Fatalf("the watchdog's copy of the agent: %q, %v", got, err)
	}

	watch := func() result {
		t.Helper()
		res := l.run(ctx, nil, "watch", "--config", kept, "--once")
		if res.code != contract.ExitOK {
			t.Fatalf("watch --once: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		return res
	}
	status := func() contract.Status {
		t.Helper()
		res := l.run(ctx, nil, "status")
		var st contract.Status
		if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
			t.Fatalf("status: %v\n%s", err, res.stdout)
		}
		return st
	}

	before := len(nodeEffects(l.effects()))
	watch()
	if after := len(nodeEffects(l.effects())); after != before {
		t.Errorf("a pass over a healthy node changed it: %v", nodeEffects(l.effects())[before:])
	}
	if st := status(); st.Watchdog == nil || st.Watchdog.LastCheck.IsZero() || len(st.Watchdog.Repairs) != 0 {
		t.Errorf("status after a quiet pass: %+v", st.Watchdog)
	}

	if err := l.sb.ResetHNS(); err != nil {
		t.Fatal(err)
	}
	mark := len(l.effects())
	watch()
	m = l.sb.Machine()
	for _, n := range []string{"External", "flannel.4096"} {
		if _, ok := m.HNSNetworks[n]; !ok {
			t.Errorf("HNS network %s is not back: %v", n, m.HNSNetworks)
		}
	}
	// In order: External, flanneld started again (it makes flannel.4096), then kube-proxy.
	var order []string
	for _, e := range l.effects()[mark:] {
		switch e.Kind {
		case sandbox.KindHNSNetwork:
			order = append(order, "network "+e.Target)
		case sandbox.KindServiceStart:
			order = append(order, "start "+e.Target)
		}
	}
	want := []string{"network External", "start flanneld", "network flannel.4096", "start kube-proxy"}
	if !slices.Equal(order, want) {
		t.Errorf("the repair ran %q, want %q", order, want)
	}
	for _, s := range []string{"flanneld", "kube-proxy", "kubelet", "containerd"} {
		if sv := m.Services[s]; sv == nil || !sv.Running {
			t.Errorf("service %s is not running after the repair", s)
		}
	}
	st := status()
	if st.Watchdog == nil || len(st.Watchdog.Repairs) != 1 {
		t.Fatalf("status after the repair: %+v", st.Watchdog)
	}
	did := strings.Join(st.Watchdog.Repairs[0].Changes, "\n")
	for _, w := range []string{"create HNS network External", "restart service flanneld", "restart service kube-proxy"} {
		if !strings.Contains(did, w) {
			t.Errorf("the repair's record lacks %q:\n%s", w, did)
		}
	}

	// A pass while an apply runs leaves the node to it.
	if err := l.sb.ResetHNS(); err != nil {
		t.Fatal(err)
	}
	unlock, err := l.sb.Lock(`C:\ProgramData\mixedk8s\nodeagent\apply.lock`)
	if err != nil {
		t.Fatal(err)
	}
	watch()
	if n := len(l.sb.Machine().HNSNetworks); n != 0 {
		t.Errorf("a pass beside an apply made %d networks", n)
	}
	unlock()
	watch()
	if n := len(l.sb.Machine().HNSNetworks); n != 2 {
		t.Errorf("%d networks after the pass that followed the apply, want 2", n)
	}
	assertAllSkipped(t, l.apply(ctx, nil))
}
