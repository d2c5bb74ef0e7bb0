package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder keeps the order steps finished in.
type recorder struct {
	mu    sync.Mutex
	order []string
}

func (r *recorder) step(id string, after ...string) Step {
	return Step{ID: id, After: after, Run: func(context.Context) error {
		r.mu.Lock()
		r.order = append(r.order, id)
		r.mu.Unlock()
		return nil
	}}
}

func (r *recorder) pos(id string) int {
	for i, s := range r.order {
		if s == id {
			return i
		}
	}
	return -1
}

func TestRunHonoursDependencies(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	steps := []Step{
		r.step("join", "bootstrap", "instance-w"),
		r.step("bootstrap", "instance-cp"),
		r.step("instance-cp", "network"),
		r.step("instance-w", "network"),
		r.step("network"),
	}
	if err := Run(context.Background(), steps, Options{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, c := range [][2]string{{"network", "instance-cp"}, {"network", "instance-w"}, {"instance-cp", "bootstrap"}, {"bootstrap", "join"}, {"instance-w", "join"}} {
		if r.pos(c[0]) > r.pos(c[1]) {
			t.Errorf("%s finished after %s; order %v", c[0], c[1], r.order)
		}
	}
	if len(r.order) != 5 {
		t.Errorf("ran %d steps, want 5: %v", len(r.order), r.order)
	}
}

func TestRunBoundsConcurrency(t *testing.T) {
	t.Parallel()
	var running, peak atomic.Int32
	var steps []Step
	for i := range 40 {
		steps = append(steps, Step{ID: fmt.Sprint(i), Run: func(context.Context) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			return nil
		}})
	}
	if err := Run(context.Background(), steps, Options{Limit: 5}); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 5 || p < 2 {
		t.Errorf("peak concurrency %d, want between 2 and 5", p)
	}
}

func TestRunRetriesRetryableErrors(t *testing.T) {
	t.Parallel()
	throttled := errors.New("throttled")
	var tries atomic.Int32
	var events []Event
	var mu sync.Mutex
	steps := []Step{{ID: "flaky", Run: func(context.Context) error {
		if tries.Add(1) < 3 {
			return throttled
		}
		return nil
	}}}
	err := Run(context.Background(), steps, Options{
		Classify:    func(err error) Class { return map[bool]Class{true: Retry}[errors.Is(err, throttled)] },
		BaseBackoff: time.Millisecond,
		Report:      func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if tries.Load() != 3 {
		t.Errorf("tries = %d, want 3", tries.Load())
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	want := "started retrying started retrying started finished"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestRunGivesUpOnFatalAndBlocksDependents(t *testing.T) {
	t.Parallel()
	fatal := errors.New("capacity")
	r := &recorder{}
	var tries atomic.Int32
	steps := []Step{
		{ID: "instance-a", Run: func(context.Context) error { tries.Add(1); return fatal }},
		r.step("join-a", "instance-a"),
		r.step("ready", "join-a", "join-b"),
		r.step("instance-b"),
		r.step("join-b", "instance-b"),
	}
	err := Run(context.Background(), steps, Options{Classify: func(error) Class { return Fatal }})
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Step != "instance-a" {
		t.Fatalf("Run error %v, want exactly instance-a failed", err)
	}
	if !errors.Is(err, fatal) {
		t.Errorf("errors.Is(err, fatal) = false for %v", err)
	}
	if tries.Load() != 1 {
		t.Errorf("fatal error tried %d times, want 1", tries.Load())
	}
	if r.pos("join-a") >= 0 || r.pos("ready") >= 0 {
		t.Errorf("dependents of the failed step ran: %v", r.order)
	}
	if r.pos("join-b") < 0 {
		t.Errorf("independent branch did not run: %v", r.order)
	}
}

func TestRunGivesUpAfterAttempts(t *testing.T) {
	t.Parallel()
	var tries atomic.Int32
	steps := []Step{{ID: "s", Run: func(context.Context) error { tries.Add(1); return errors.New("5xx") }}}
	err := Run(context.Background(), steps, Options{Attempts: 4, BaseBackoff: time.Microsecond, Classify: func(error) Class { return Retry }})
	if err == nil || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("err = %v, want gave up after 4 attempts", err)
	}
	if tries.Load() != 4 {
		t.Errorf("tries = %d, want 4", tries.Load())
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	r := &recorder{}
	steps := []Step{
		{ID: "slow", Run: func(ctx context.Context) error { close(started); <-ctx.Done(); return ctx.Err() }},
		r.step("after", "slow"),
	}
	go func() { <-started; cancel() }()
	done := make(chan error)
	go func() { done <- Run(ctx, steps, Options{Classify: func(error) Class { return Retry }}) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if len(r.order) != 0 {
		t.Errorf("steps ran after cancel: %v", r.order)
	}
}

func TestCheckRejectsBadGraphs(t *testing.T) {
	t.Parallel()
	noop := func(context.Context) error { return nil }
	cases := []struct {
		name  string
		steps []Step
		want  string
	}{
		{"duplicate", []Step{{ID: "a", Run: noop}, {ID: "a", Run: noop}}, `step "a" is defined twice`},
		{"unknown dependency", []Step{{ID: "a", After: []string{"x"}, Run: noop}}, `depends on unknown step "x"`},
		{"cycle", []Step{{ID: "a", After: []string{"b"}, Run: noop}, {ID: "b", After: []string{"a"}, Run: noop}, {ID: "c", Run: noop}}, "steps a, b depend on each other in a cycle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := Check(c.steps)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Check = %v, want %q", err, c.want)
			}
		})
	}
}

func TestCriticalPath(t *testing.T) {
	t.Parallel()
	noop := func(context.Context) error { return nil }
	steps := []Step{
		{ID: "net", Run: noop},
		{ID: "cp", After: []string{"net"}, Run: noop},
		{ID: "boot", After: []string{"cp"}, Run: noop},
		{ID: "w", After: []string{"net"}, Run: noop},
		{ID: "join", After: []string{"boot", "w"}, Run: noop},
	}
	cost := map[string]time.Duration{"net": 1, "cp": 2, "boot": 5, "w": 10, "join": 3}
	got, err := CriticalPath(steps, func(id string) time.Duration { return cost[id] })
	if err != nil {
		t.Fatal(err)
	}
	// net(1) + w(10) + join(3) beats net + cp + boot + join = 11.
	if got != 14 {
		t.Errorf("CriticalPath = %d, want 14", got)
	}
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	t.Parallel()
	for try := 1; try < 40; try++ {
		d := backoff(try, time.Millisecond, 50*time.Millisecond)
		if d <= 0 || d > 50*time.Millisecond {
			t.Fatalf("backoff(%d) = %v, want in (0, 50ms]", try, d)
		}
	}
}
