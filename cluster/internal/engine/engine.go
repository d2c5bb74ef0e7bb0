// Package engine runs a graph of steps: each step starts as soon as the steps
// it depends on have finished, at most Limit at a time, with retries for
// errors the caller classifies as retryable. A failed step stops only the
// steps that depend on it; independent branches run to the end, so one Apply
// makes as much progress as it can and the next one resumes from there.
package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Step is one unit of work in the graph.
type Step struct {
	ID string
	// After lists the IDs of steps that must finish first.
	After []string
	Run   func(ctx context.Context) error
}

// Class says whether a failed attempt may be retried.
type Class int

const (
	// Fatal: stop the step; retrying cannot help.
	Fatal Class = iota
	// Retry: try again after a backoff.
	Retry
)

// Event kinds reported to Options.Report.
const (
	Started  = "started"
	Retrying = "retrying"
	Finished = "finished"
	Failed   = "failed"
	// Blocked: the step did not run because a step it depends on failed.
	Blocked = "blocked"
)

// Event is one change in a step's life.
type Event struct {
	Step    string
	Kind    string
	Attempt int
	Err     error
	// Wait is the backoff before the next attempt, for Retrying.
	Wait    time.Duration
	Elapsed time.Duration
}

// Options tune a run.
type Options struct {
	// Limit bounds how many steps run at once; 0 means 64.
	Limit int
	// Classify decides whether an error is worth another attempt; nil: none is.
	Classify func(error) Class
	// Attempts bounds tries per step; 0 means 8.
	Attempts int
	// BaseBackoff and MaxBackoff shape exponential backoff with full jitter; 0 means 1s and 30s.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Report receives events; it must not block for long. May be nil.
	Report func(Event)
}

// StepError is one step's final failure.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Errors is every step that failed, in step order; blocked steps are not listed.
type Errors []*StepError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	if len(msgs) == 1 {
		return msgs[0]
	}
	return fmt.Sprintf("%d steps failed:\n  %s", len(msgs), strings.Join(msgs, "\n  "))
}

// Unwrap lets errors.Is and errors.As see every step's error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Check reports a graph's structural mistakes: duplicate IDs, unknown
// dependencies and cycles. Run calls it first.
func Check(steps []Step) error {
	index := make(map[string]int, len(steps))
	for i, s := range steps {
		if _, dup := index[s.ID]; dup {
			return fmt.Errorf("step graph: step %q is defined twice", s.ID)
		}
		index[s.ID] = i
	}
	for _, s := range steps {
		for _, d := range s.After {
			if _, ok := index[d]; !ok {
				return fmt.Errorf("step graph: step %q depends on unknown step %q", s.ID, d)
			}
		}
	}
	// Kahn's algorithm: whatever is left unvisited sits on a cycle.
	indeg := make([]int, len(steps))
	next := make([][]int, len(steps))
	for i, s := range steps {
		for _, d := range s.After {
			indeg[i]++
			next[index[d]] = append(next[index[d]], i)
		}
	}
	var queue []int
	for i := range steps {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	seen := 0
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		seen++
		for _, j := range next[i] {
			if indeg[j]--; indeg[j] == 0 {
				queue = append(queue, j)
			}
		}
	}
	if seen != len(steps) {
		var cyc []string
		for i, d := range indeg {
			if d > 0 {
				cyc = append(cyc, steps[i].ID)
			}
		}
		sort.Strings(cyc)
		return fmt.Errorf("step graph: steps %s depend on each other in a cycle", strings.Join(cyc, ", "))
	}
	return nil
}

// Run executes the graph and returns nil or Errors. A cancelled context stops
// new attempts; running steps see the cancellation through their context.
func Run(ctx context.Context, steps []Step, opts Options) error {
	if err := Check(steps); err != nil {
		return err
	}
	if opts.Limit <= 0 {
		opts.Limit = 64
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 8
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	report := opts.Report
	if report == nil {
		report = func(Event) {}
	}

	index := make(map[string]int, len(steps))
	for i, s := range steps {
		index[s.ID] = i
	}
	waiting := make([]int, len(steps))
	dependents := make([][]int, len(steps))
	for i, s := range steps {
		waiting[i] = len(s.After)
		for _, d := range s.After {
			dependents[index[d]] = append(dependents[index[d]], i)
		}
	}

	type result struct {
		i   int
		err error
	}
	// Buffered for every step so a finishing step never waits on the scheduler.
	done := make(chan result, len(steps))
	var g errgroup.Group
	g.SetLimit(opts.Limit)
	start := func(i int) {
		g.Go(func() error {
			done <- result{i, attempt(ctx, steps[i], opts, report)}
			return nil
		})
	}

	var ready []int
	for i := range steps {
		if waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	failed := make([]error, len(steps))
	pending := len(steps)
	for pending > 0 {
		for _, i := range ready {
			start(i)
		}
		ready = ready[:0]
		r := <-done
		pending--
		failed[r.i] = r.err
		if r.err != nil {
			pending -= block(r.i, dependents, failed, report, steps)
			continue
		}
		for _, j := range dependents[r.i] {
			if failed[j] != nil {
				continue
			}
			if waiting[j]--; waiting[j] == 0 {
				ready = append(ready, j)
			}
		}
	}
	_ = g.Wait()

	var errs Errors
	for i, err := range failed {
		if err != nil && !errors.Is(err, errBlocked) {
			errs = append(errs, &StepError{Step: steps[i].ID, Err: err})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

var errBlocked = errors.New("blocked by a failed step")

// block marks every transitive dependent of a failed step as blocked and
// returns how many it marked.
func block(i int, dependents [][]int, failed []error, report func(Event), steps []Step) int {
	n := 0
	for _, j := range dependents[i] {
		if failed[j] != nil {
			continue
		}
		failed[j] = errBlocked
		report(Event{Step: steps[j].ID, Kind: Blocked, Err: fmt.Errorf("%s failed", steps[i].ID)})
		n += 1 + block(j, dependents, failed, report, steps)
	}
	return n
}

func attempt(ctx context.Context, s Step, opts Options, report func(Event)) error {
	begin := time.Now()
	for try := 1; ; try++ {
		if err := ctx.Err(); err != nil {
			report(Event{Step: s.ID, Kind: Failed, Attempt: try, Err: err, Elapsed: time.Since(begin)})
			return err
		}
		report(Event{Step: s.ID, Kind: Started, Attempt: try})
		err := s.Run(ctx)
		if err == nil {
			report(Event{Step: s.ID, Kind: Finished, Attempt: try, Elapsed: time.Since(begin)})
			return nil
		}
		retry := opts.Classify != nil && opts.Classify(err) == Retry && ctx.Err() == nil
		if !retry || try >= opts.Attempts {
			if retry {
				err = fmt.Errorf("gave up after %d attempts: %w", try, err)
			}
			report(Event{Step: s.ID, Kind: Failed, Attempt: try, Err: err, Elapsed: time.Since(begin)})
			return err
		}
		wait := backoff(try, opts.BaseBackoff, opts.MaxBackoff)
		report(Event{Step: s.ID, Kind: Retrying, Attempt: try, Err: err, Wait: wait})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// backoff is exponential with full jitter, so many steps throttled at once
// do not come back in lockstep.
func backoff(try int, base, max time.Duration) time.Duration {
	d := base << min(try-1, 20)
	if d <= 0 || d > max {
		d = max
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// CriticalPath is the longest chain of dependent step costs: the shortest
// possible wall time of the graph with unlimited concurrency.
func CriticalPath(steps []Step, cost func(id string) time.Duration) (time.Duration, error) {
	if err := Check(steps); err != nil {
		return 0, err
	}
	index := make(map[string]int, len(steps))
	for i, s := range steps {
		index[s.ID] = i
	}
	memo := make([]time.Duration, len(steps))
	seen := make([]bool, len(steps))
	var finish func(i int) time.Duration
	finish = func(i int) time.Duration {
		if seen[i] {
			return memo[i]
		}
		var startAt time.Duration
		for _, d := range steps[i].After {
			startAt = max(startAt, finish(index[d]))
		}
		memo[i], seen[i] = startAt+cost(steps[i].ID), true
		return memo[i]
	}
	var longest time.Duration
	for i := range steps {
		longest = max(longest, finish(i))
	}
	return longest, nil
}
