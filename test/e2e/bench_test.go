package e2e_test

import (
	"fmt"
	"testing"
	"time"
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
