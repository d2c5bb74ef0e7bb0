package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/clustertest"
	"github.com/mixedk8s/mixedk8s/cluster/internal/engine"
)

// Simulated latencies, scaled down from a real cloud (seconds become
// milliseconds) but kept in proportion: the control plane's bootstrap is the
// long pole, Windows instances boot and join more slowly than Linux ones.
var benchLatency = struct {
	network, linuxInstance, windowsInstance, bootstrap, linuxJoin, windowsJoin, addons, ready time.Duration
}{
	network: 20 * time.Millisecond, linuxInstance: 30 * time.Millisecond, windowsInstance: 45 * time.Millisecond,
	bootstrap: 120 * time.Millisecond, linuxJoin: 40 * time.Millisecond, windowsJoin: 70 * time.Millisecond,
	addons: 15 * time.Millisecond, ready: 10 * time.Millisecond,
}

func benchSpec() cluster.Spec {
	return cluster.Spec{
		Name:              "bench",
		KubernetesVersion: "1.36.3",
		AWS:               &cluster.AWSSpec{Region: "eu-west-1"},
		ControlPlane:      cluster.ControlPlaneSpec{Count: 1, InstanceType: "m6i.large"},
		NodePools: map[string]cluster.PoolSpec{
			"lin": {OS: cluster.Linux, Count: 50, InstanceType: "m6i.large"},
			"win": {OS: cluster.Windows, WindowsVersion: "2022", Count: 50, InstanceType: "m6i.xlarge"},
		},
	}
}

func isWindows(node string) bool { return strings.HasPrefix(node, "bench-win-") }

// stepCost is the simulated latency of one planned step.
func stepCost(id string) time.Duration {
	kind, node, _ := strings.Cut(id, "/")
	l := benchLatency
	switch cluster.StepKind(kind) {
	case cluster.StepNetwork:
		return l.network
	case cluster.StepInstance:
		if isWindows(node) {
			return l.windowsInstance
		}
		return l.linuxInstance
	case cluster.StepBootstrap:
		return l.bootstrap
	case cluster.StepJoin:
		if isWindows(node) {
			return l.windowsJoin
		}
		return l.linuxJoin
	case cluster.StepAddons:
		return l.addons
	case cluster.StepReady:
		return l.ready
	}
	return 0
}

// BenchmarkApplyCriticalPath applies 1 control-plane node and 100 workers (50
// Linux, 50 Windows) with simulated latencies, and reports wall time over the
// critical path: the longest chain of dependent latencies, the best any
// scheduler could do. Reads (Observe) are free here, so the ratio is the
// engine's own overhead and the cost of any missed parallelism.
func BenchmarkApplyCriticalPath(b *testing.B) {
	spec := benchSpec()
	changes, err := cluster.Plan(spec, cluster.Observed{})
	if err != nil {
		b.Fatal(err)
	}
	var graph []engine.Step
	for _, s := range changes.Steps {
		graph = append(graph, engine.Step{ID: s.ID, After: s.After})
	}
	critical, err := engine.CriticalPath(graph, stepCost)
	if err != nil {
		b.Fatal(err)
	}
	var ratios float64
	for b.Loop() {
		cloud := memory.New()
		cloud.Latency = func(op, object string) time.Duration {
			switch op {
			case memory.OpEnsureNetwork:
				return stepCost("network")
			case memory.OpEnsureInstance:
				return stepCost("instance/" + object)
			}
			return 0
		}
		prov := clustertest.NewProvisioner()
		prov.Latency = func(op, node string) time.Duration {
			switch op {
			case clustertest.OpBootstrap:
				return stepCost("bootstrap/" + node)
			case clustertest.OpJoin:
				return stepCost("join/" + node)
			case clustertest.OpAddons:
				return stepCost("addons")
			case clustertest.OpWaitReady:
				return stepCost("ready")
			}
			return 0
		}
		start := time.Now()
		res, err := cluster.Apply(context.Background(), spec, cluster.Options{Cloud: cloud, Provisioner: prov})
		wall := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Nodes) != 101 {
			b.Fatalf("applied %d nodes, want 101", len(res.Nodes))
		}
		ratios += float64(wall) / float64(critical)
	}
	b.ReportMetric(ratios/float64(b.N), "wall/critical")
	b.ReportMetric(float64(critical.Milliseconds()), "critical-ms")
}

// FuzzPlan checks that Plan never panics and is deterministic for any valid
// spec against an empty and a converged cluster, and that applying its steps'
// dependencies forms a graph the engine accepts.
func FuzzPlan(f *testing.F) {
	f.Add("demo", 1, 2, 2, "2022", "calico", 0)
	f.Add("big", 3, 40, 25, "2025", "flannel", 5)
	f.Add("cp", 5, 0, 1, "2022", "calico", 1)
	f.Add("x", 1, 1, 0, "2019", "flannel", 3)
	f.Fuzz(func(t *testing.T, name string, cp, lin, win int, winVersion, cni string, shrink int) {
		spec := cluster.Spec{
			Name:              name,
			KubernetesVersion: "1.36.3",
			AWS:               &cluster.AWSSpec{Region: "eu-west-1"},
			Network:           cluster.NetworkSpec{CNI: cluster.CNI(cni)},
			ControlPlane:      cluster.ControlPlaneSpec{Count: cp, InstanceType: "m6i.large"},
			NodePools: map[string]cluster.PoolSpec{
				"lin": {OS: cluster.Linux, Count: lin, InstanceType: "m6i.large"},
				"win": {OS: cluster.Windows, WindowsVersion: winVersion, Count: win, InstanceType: "m6i.xlarge"},
			},
		}
		if cluster.Validate(spec) != nil {
			return
		}
		for _, observed := range []cluster.Observed{{}, converged(spec)} {
			a, errA := cluster.Plan(spec, observed)
			b, errB := cluster.Plan(spec, observed)
			if fmt.Sprint(errA) != fmt.Sprint(errB) || a.String() != b.String() || fmt.Sprint(a.Steps) != fmt.Sprint(b.Steps) {
				t.Fatalf("Plan is not deterministic for %+v", spec)
			}
			var g []engine.Step
			for _, s := range a.Steps {
				g = append(g, engine.Step{ID: s.ID, After: s.After})
			}
			if err := engine.Check(g); err != nil {
				t.Fatalf("Plan made a bad graph: %v", err)
			}
		}
		// Against a larger cluster the plan only removes workers, never control-plane nodes.
		bigger := spec
		bigger.NodePools = map[string]cluster.PoolSpec{"lin": {OS: cluster.Linux, Count: lin + max(shrink, 0)%7, InstanceType: "m6i.large"}, "win": spec.NodePools["win"]}
		c, err := cluster.Plan(spec, converged(bigger))
		if err != nil {
			t.Fatalf("Plan of a scale-down: %v", err)
		}
		if !c.Empty() && c.Steps[0].Kind != cluster.StepDrain {
			t.Fatalf("scale-down starts with %s, want a drain", c.Steps[0].ID)
		}
	})
}
