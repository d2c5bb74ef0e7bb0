// Package double is what the in-memory test doubles (clouds/memory,
// cluster/clustertest) share: every call is counted, may be slowed down by a
// simulated latency, and may be failed on demand before it has any effect.
package double

import (
	"context"
	"maps"
	"sync"
	"time"
)

// Simulation simulates the calls of a double. Embed it: its fields and methods
// become the double's own.
type Simulation struct {
	// Latency, when set, is slept at the start of every call (honouring ctx).
	Latency func(op, object string) time.Duration
	// Fault, when set, is asked before every call; a non-nil error fails the
	// call before it has any effect.
	Fault func(op, object string) error

	mu    sync.Mutex
	calls map[string]int
}

// Enter counts a call, waits its latency and returns its fault, if any.
func (c *Simulation) Enter(ctx context.Context, op, object string) error {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
	c.mu.Unlock()
	if c.Latency != nil {
		if d := c.Latency(op, object); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.Fault != nil {
		return c.Fault(op, object)
	}
	return nil
}

// Calls returns how many times each operation was called.
func (c *Simulation) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// ResetCalls zeroes the counters.
func (c *Simulation) ResetCalls() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
}
