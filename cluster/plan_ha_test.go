package cluster_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

// A control-plane node whose instance was terminated out of band, its Node
// still there: its etcd member and Node go first, through the running
// control plane, then a new instance joins and goes behind the load
// balancer, and the gone instance leaves it.
func TestPlanReplacesAGoneControlPlaneNode(t *testing.T) {
	t.Parallel()
	three := demoSpec()
	three.ControlPlane.Count = 3
	o := behindLB(converged(three))
	o.Instances = slices.DeleteFunc(o.Instances, func(in clouds.Instance) bool { return in.Name == "demo-cp-2" })
	o.Nodes["demo-cp-2"] = cluster.NodeStatus{Joined: true}
	got, err := cluster.Plan(three, o)
	if err != nil {
		t.Fatal(err)
	}
	after := stepAfter(got)
	for id, want := range map[string][]string{
		"instance/demo-cp-2":  nil,
		"bootstrap/demo-cp-0": nil,
		"remove/demo-cp-2":    {"bootstrap/demo-cp-0"},
		"join/demo-cp-2":      {"bootstrap/demo-cp-0", "instance/demo-cp-2", "remove/demo-cp-2"},
		"target/demo-cp-2":    {"instance/demo-cp-2", "join/demo-cp-2"},
	} {
		a, ok := after[id]
		if !ok || (want != nil && !slices.Equal(a, want)) {
			t.Errorf("%s after %q (planned: %v), want after %q", id, a, ok, want)
		}
	}
	if !slices.ContainsFunc(got.Summary(), func(l string) bool { return strings.HasPrefix(l, "~ replace demo-cp-2: ") }) {
		t.Errorf("summary %q does not say demo-cp-2 is replaced", got.Summary())
	}
	// A growing control plane has no member to remove.
	one := demoSpec()
	grow, err := cluster.Plan(three, behindLB(converged(one)))
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(stepIDs(grow), func(id string) bool { return strings.HasPrefix(id, "remove/") }) {
		t.Errorf("growing 1 -> 3 plans a removal: %q", stepIDs(grow))
	}
}

// A cluster made before its cloud had a load balancer (bootstrapped, none
// found) gets none: its certificate names the first node. It stays
// converged at one control-plane node, and a larger count is refused with
// the fix.
func TestPlanKeepsAClusterMadeWithoutALoadBalancer(t *testing.T) {
	t.Parallel()
	one := demoSpec()
	o := converged(one)
	o.LoadBalancing = true
	got, err := cluster.Plan(one, o)
	if err != nil || !got.Empty() {
		t.Errorf("a converged cluster without a load balancer: plan %q (%v), want nothing", got.Summary(), err)
	}
	three := demoSpec()
	three.ControlPlane.Count = 3
	_, err = cluster.Plan(three, o)
	if err == nil || !strings.HasPrefix(err.Error(), "control_plane.count: 3") || !strings.Contains(err.Error(), "without an API load balancer") || !strings.Contains(err.Error(), "fix:") {
		t.Errorf("growing a cluster made without a load balancer: %v, want a refusal at control_plane.count with the fix", err)
	}
}
