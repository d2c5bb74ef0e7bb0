package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/clustertest"
	"github.com/mixedk8s/mixedk8s/cluster/internal/engine"
)

// Simulated latencies of the steps that take a node away, in the same
// scale as benchLatency: a drain waits for pods to go, a delete for the
// cloud to accept it, a remove is one API call.
var rollLatency = struct{ drain, delete, remove time.Duration }{drain: 20 * time.Millisecond, delete: 15 * time.Millisecond, remove: 5 * time.Millisecond}

func rollCost(id string) time.Duration {
	kind, _, _ := strings.Cut(id, "/")
	switch cluster.StepKind(kind) {
	case cluster.StepDrain:
		return rollLatency.drain
	case cluster.StepDelete:
		return rollLatency.delete
	case cluster.StepRemove:
		return rollLatency.remove
	}
	return stepCost(id)
}

// BenchmarkRollingReplacementCriticalPath replaces every worker of a
// 1 + 10 + 10 cluster (a new Linux instance type, Windows Server 2022 ->
// 2025) by surge with the default max_surge 1, on simulated latencies, and
// reports the wall time of the Apply over the plan's critical path: each
// pool's replacements run one after another, the pools side by side.
func BenchmarkRollingReplacementCriticalPath(b *testing.B) {
	spec := benchSpec()
	lin, win := spec.NodePools["lin"], spec.NodePools["win"]
	lin.Count, win.Count = 10, 10
	spec.NodePools = map[string]cluster.PoolSpec{"lin": lin, "win": win}
	lin.InstanceType, win.WindowsVersion = "m6i.2xlarge", "2025"
	rolled := spec
	rolled.NodePools = map[string]cluster.PoolSpec{"lin": lin, "win": win}
	benchmarkRoll(b, spec, rolled)
}

// BenchmarkUpgradeCriticalPath upgrades a 1 + 10 + 10 cluster one minor
// (1.35.4 -> 1.36.3) on the same simulated latencies: the control-plane
// node in place by its bootstrap step, then every worker replaced by surge
// after it. It reports the Apply's wall time over the plan's critical path.
func BenchmarkUpgradeCriticalPath(b *testing.B) {
	spec := benchSpec()
	spec.KubernetesVersion = "1.35.4"
	lin, win := spec.NodePools["lin"], spec.NodePools["win"]
	lin.Count, win.Count = 10, 10
	spec.NodePools = map[string]cluster.PoolSpec{"lin": lin, "win": win}
	upgraded := spec
	upgraded.KubernetesVersion = "1.36.3"
	benchmarkRoll(b, spec, upgraded)
}

// benchmarkRoll applies spec, then measures the Apply of rolled, which
// replaces all 20 workers, against the critical path of its plan.
func benchmarkRoll(b *testing.B, spec, rolled cluster.Spec) {
	var ratios, critMS float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cloud, prov := memory.New(), clustertest.NewProvisioner()
		opts := cluster.Options{Cloud: cloud, Provisioner: prov}
		if _, err := cluster.Apply(context.Background(), spec, opts); err != nil {
			b.Fatal(err)
		}
		observed, err := cluster.Observe(context.Background(), rolled, opts)
		if err != nil {
			b.Fatal(err)
		}
		changes, err := cluster.Plan(rolled, observed)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(changes.Replacements()); n != 20 {
			b.Fatalf("the plan replaces %d nodes, want 20", n)
		}
		var graph []engine.Step
		for _, s := range changes.Steps {
			graph = append(graph, engine.Step{ID: s.ID, After: s.After})
		}
		critical, err := engine.CriticalPath(graph, rollCost)
		if err != nil {
			b.Fatal(err)
		}
		cloud.Latency = func(op, object string) time.Duration {
			switch op {
			case memory.OpEnsureInstance:
				return rollCost("instance/" + object)
			case memory.OpDeleteInstance:
				return rollCost("delete/" + object)
			}
			return 0
		}
		prov.Latency = func(op, node string) time.Duration {
			switch op {
			case clustertest.OpBootstrap:
				return rollCost("bootstrap/" + node)
			case clustertest.OpJoin:
				return rollCost("join/" + node)
			case clustertest.OpAddons:
				return rollCost("addons")
			case clustertest.OpWaitReady:
				return rollCost("ready")
			case clustertest.OpDrain:
				return rollCost("drain/" + node)
			case clustertest.OpRemove:
				return rollCost("remove/" + node)
			}
			return 0
		}
		b.StartTimer()
		start := time.Now()
		res, err := cluster.Apply(context.Background(), rolled, opts)
		wall := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(res.Changes.Replacements()); n != 20 {
			b.Fatalf("the apply replaced %d nodes, want 20", n)
		}
		ratios += float64(wall) / float64(critical)
		critMS = float64(critical.Milliseconds())
	}
	b.ReportMetric(ratios/float64(b.N), "wall/critical")
	b.ReportMetric(critMS, "critical-ms")
}
