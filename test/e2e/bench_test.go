package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// BenchmarkLabApply builds the mixed cluster once per iteration (one
// lab, a cluster name per iteration) and reports the wall time of Apply
// (ns/op) and its API calls; the Destroy between iterations is not timed.
//
//	go test ./test/e2e -run '^$' -bench BenchmarkLabApply -benchtime 5x
func BenchmarkLabApply(b *testing.B) {
	w := newWorld(b, awsRow)
	var calls, mutatingCalls int
	b.ResetTimer()
	for i := range b.N {
		spec := w.spec(fmt.Sprintf("bench-%d", i), "10.6.0.0/16")
		before := w.calls()
		w.apply(spec, 2*time.Minute)
		b.StopTimer()
		c := w.callsSince(before)
		calls, mutatingCalls = calls+total(c), mutatingCalls+w.mutating(c)
		w.destroy(spec)
		b.StartTimer()
	}
	b.ReportMetric(float64(calls)/float64(b.N), "api-calls/op")
	b.ReportMetric(float64(mutatingCalls)/float64(b.N), "mutating-calls/op")
}

// BenchmarkControlPlaneGrowth grows a running cluster's control plane from
// one node to three on each cloud (each iteration a new cluster of one
// control-plane node and one Linux worker; its first Apply is not timed)
// while a client polls the cluster's nodes through its load balancer every
// 100 ms. It reports the longest time between two answered polls
// (longest-gap-s; the poll interval itself is the floor) and the polls
// that failed.
//
//	go test ./test/e2e -run '^$' -bench BenchmarkControlPlaneGrowth -benchtime 1x
func BenchmarkControlPlaneGrowth(b *testing.B) {
	for _, r := range rows {
		b.Run(r.name, func(b *testing.B) { benchmarkControlPlaneGrowth(b, r) })
	}
}

func benchmarkControlPlaneGrowth(b *testing.B, r *row) {
	w := newWorld(b, r)
	var longest time.Duration
	failed := 0
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		spec := w.spec(fmt.Sprintf("grow-%d", i), "10.9.0.0/16")
		spec.NodePools = map[string]cluster.PoolSpec{"lin": {OS: cluster.Linux, Count: 1}}
		w.apply(spec, 3*time.Minute)
		kube := w.kubeThroughLoadBalancer(spec)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			last := time.Now()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					longest = max(longest, time.Since(last))
					return
				case <-tick.C:
				}
				if err := pollNodes(context.Background(), kube); err != nil {
					failed++
					continue
				}
				longest = max(longest, time.Since(last))
				last = time.Now()
			}
		}()
		spec.ControlPlane.Count = 3
		b.StartTimer()
		w.apply(spec, 4*time.Minute)
		b.StopTimer()
		close(stop)
		<-done
		w.wantEtcd(spec, 3)
		w.destroy(spec)
		b.StartTimer()
	}
	b.ReportMetric(longest.Seconds(), "longest-gap-s")
	b.ReportMetric(float64(failed)/float64(b.N), "failed-polls/op")
}
