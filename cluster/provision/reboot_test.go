package provision_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
	"github.com/mixedk8s/mixedk8s/transport"
)

// A node that answers with another identity after its reboot is not "not
// back yet": the wait stops at once and says what it saw.
func TestAnotherIdentityAfterARebootStopsTheWait(t *testing.T) {
	spec := mixedSpec()
	spec.NodePools = map[string]cluster.PoolSpec{"lin": {OS: cluster.Linux, Count: 1}}
	w := newWorld(t, &spec)
	var events []cluster.Event
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cluster.Apply(ctx, spec, w.opts(&events, &mu)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	ins, err := w.cloud.Instances(ctx, spec.Name)
	if err != nil || len(ins) != 2 {
		t.Fatalf("instances %v, %v", ins, err)
	}
	// After "the reboot", the worker's address leads to the control plane's machine.
	w.mu.Lock()
	w.redirect = map[string]string{ins[1].PrivateIP: ins[0].PrivateIP}
	w.mu.Unlock()
	var node cluster.Node
	for _, n := range spec.WithDefaults().Nodes() {
		if n.Name == ins[1].Name {
			node = n
		}
	}
	wait, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	_, err = provision.AwaitAfterReboot(wait, w.prov, cluster.Target{Spec: spec.WithDefaults(), Node: node, Instance: ins[1], Report: func(string) {}})
	if !errors.Is(err, transport.ErrIdentityMismatch) {
		t.Fatalf("want the identity mismatch reported, got %v", err)
	}
	if wait.Err() != nil {
		t.Errorf("the wait ran to its deadline before reporting: %v", err)
	}
}
