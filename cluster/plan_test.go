package cluster_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

// demoSpec is a valid mixed cluster: 1 control-plane node, 2 Linux and 2
// Windows Server 2022 workers on AWS.
func demoSpec() cluster.Spec {
	return cluster.Spec{
		Name:              "demo",
		KubernetesVersion: "1.36.3",
		AWS:               &cluster.AWSSpec{Region: "eu-west-1"},
		ControlPlane:      cluster.ControlPlaneSpec{Count: 1, InstanceType: "m6i.large"},
		NodePools: map[string]cluster.PoolSpec{
			"linux": {OS: cluster.Linux, Count: 2, InstanceType: "m6i.large"},
			"win":   {OS: cluster.Windows, WindowsVersion: "2022", Isolation: cluster.IsolationProcess, Count: 2, InstanceType: "m6i.xlarge"},
		},
		Access: cluster.AccessSpec{AdminCIDRs: []string{"203.0.113.0/24"}},
	}
}

// converged is what exists once spec has been applied.
func converged(spec cluster.Spec) cluster.Observed {
	o := cluster.Observed{Network: &clouds.Network{ID: "net"}, Nodes: map[string]cluster.NodeStatus{}}
	for i, n := range spec.WithDefaults().Nodes() {
		o.Instances = append(o.Instances, clouds.Instance{ID: fmt.Sprintf("i-%d", i), Name: n.Name, Pool: n.Pool, Role: n.Role, State: clouds.StateRunning})
		o.Nodes[n.Name] = cluster.NodeStatus{Joined: true, Ready: true}
	}
	return o
}

func withPool(s cluster.Spec, name string, p *cluster.PoolSpec) cluster.Spec {
	pools := map[string]cluster.PoolSpec{}
	for k, v := range s.NodePools {
		pools[k] = v
	}
	if p == nil {
		delete(pools, name)
	} else {
		pools[name] = *p
	}
	s.NodePools = pools
	return s
}

func stepIDs(c cluster.Changes) []string {
	var ids []string
	for _, s := range c.Steps {
		ids = append(ids, s.ID)
	}
	return ids
}

func TestPlanTransitions(t *testing.T) {
	t.Parallel()
	base := demoSpec()
	win3 := base.NodePools["win"]
	win3.Count = 3
	win1 := base.NodePools["win"]
	win1.Count = 1
	gpu := cluster.PoolSpec{OS: cluster.Linux, Count: 1, InstanceType: "g5.xlarge"}

	drifted := converged(base)
	drifted.Instances = slices.DeleteFunc(slices.Clone(drifted.Instances), func(in clouds.Instance) bool { return in.Name == "demo-linux-1" })
	drifted.Nodes["demo-linux-1"] = cluster.NodeStatus{Joined: true, Ready: false}

	crashed := converged(base)
	delete(crashed.Nodes, "demo-win-1")

	cases := []struct {
		name      string
		spec      cluster.Spec
		observed  cluster.Observed
		wantSteps []string
		wantLines []string
	}{
		{
			name:     "given nothing exists, when planned, then everything is created and joined",
			spec:     base,
			observed: cluster.Observed{},
			wantSteps: []string{"network", "instance/demo-cp-0", "instance/demo-linux-0", "instance/demo-linux-1", "instance/demo-win-0", "instance/demo-win-1",
				"bootstrap/demo-cp-0", "join/demo-linux-0", "join/demo-linux-1", "join/demo-win-0", "join/demo-win-1", "addons", "ready"},
			wantLines: []string{
				`+ network, subnet and firewall rules for cluster "demo"`,
				`+ 1 linux node in the control plane (demo-cp-0)`,
				`+ 2 linux nodes in pool "linux" (demo-linux-0, demo-linux-1)`,
				`+ 2 windows-2022 nodes in pool "win" (demo-win-0, demo-win-1)`,
			},
		},
		{
			name:     "given a converged cluster, when planned, then the plan is empty",
			spec:     base,
			observed: converged(base),
		},
		{
			name:      "given 2 windows nodes, when the pool grows to 3, then one node is created and joined",
			spec:      withPool(base, "win", &win3),
			observed:  converged(base),
			wantSteps: []string{"instance/demo-win-2", "bootstrap/demo-cp-0", "join/demo-win-2", "addons", "ready"},
			wantLines: []string{`+ 1 windows-2022 node in pool "win" (demo-win-2)`},
		},
		{
			name:      "given 3 windows nodes, when the pool shrinks to 1, then the highest ordinals are drained and deleted first",
			spec:      withPool(base, "win", &win1),
			observed:  converged(withPool(base, "win", &win3)),
			wantSteps: []string{"drain/demo-win-2", "delete/demo-win-2", "remove/demo-win-2", "drain/demo-win-1", "delete/demo-win-1", "remove/demo-win-1"},
			wantLines: []string{"- drain and delete demo-win-2", "- drain and delete demo-win-1"},
		},
		{
			name:      "given a cluster, when a pool is added, then its nodes are created and joined",
			spec:      withPool(base, "gpu", &gpu),
			observed:  converged(base),
			wantSteps: []string{"instance/demo-gpu-0", "bootstrap/demo-cp-0", "join/demo-gpu-0", "addons", "ready"},
			wantLines: []string{`+ 1 linux node in pool "gpu" (demo-gpu-0)`},
		},
		{
			name:      "given a cluster, when a pool is removed, then its nodes are drained and deleted",
			spec:      withPool(base, "linux", nil),
			observed:  converged(base),
			wantSteps: []string{"drain/demo-linux-1", "delete/demo-linux-1", "remove/demo-linux-1", "drain/demo-linux-0", "delete/demo-linux-0", "remove/demo-linux-0"},
			wantLines: []string{`- drain and delete demo-linux-1 (pool "linux" removed)`, `- drain and delete demo-linux-0 (pool "linux" removed)`},
		},
		{
			name:      "given an instance terminated outside, when planned, then its Node goes and it is created again and rejoins",
			spec:      base,
			observed:  drifted,
			wantSteps: []string{"instance/demo-linux-1", "remove/demo-linux-1", "bootstrap/demo-cp-0", "join/demo-linux-1", "addons", "ready"},
			wantLines: []string{`~ replace demo-linux-1 (linux): its instance is gone`},
		},
		{
			name:      "given an instance whose node never joined, when planned, then only the join is redone",
			spec:      base,
			observed:  crashed,
			wantSteps: []string{"bootstrap/demo-cp-0", "join/demo-win-1", "addons", "ready"},
			wantLines: []string{"~ finish demo-win-1: the instance exists, the node has not joined"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := cluster.Plan(c.spec, c.observed)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if ids := stepIDs(got); !slices.Equal(ids, c.wantSteps) {
				t.Errorf("steps\n got %q\nwant %q", ids, c.wantSteps)
			}
			if !slices.Equal(got.Summary(), c.wantLines) {
				t.Errorf("summary\n got %q\nwant %q", got.Summary(), c.wantLines)
			}
			if got.Empty() != (len(c.wantSteps) == 0) {
				t.Errorf("Empty() = %v with %d steps", got.Empty(), len(got.Steps))
			}
		})
	}
}

func TestPlanDependencies(t *testing.T) {
	t.Parallel()
	got, err := cluster.Plan(demoSpec(), cluster.Observed{})
	if err != nil {
		t.Fatal(err)
	}
	after := map[string][]string{}
	for _, s := range got.Steps {
		after[s.ID] = s.After
	}
	// Worker instances wait only for the network, so they are created while the control plane bootstraps.
	if !slices.Equal(after["instance/demo-win-0"], []string{"network"}) {
		t.Errorf("instance/demo-win-0 after %q, want [network]", after["instance/demo-win-0"])
	}
	if !slices.Equal(after["join/demo-win-0"], []string{"bootstrap/demo-cp-0", "instance/demo-win-0"}) {
		t.Errorf("join/demo-win-0 after %q", after["join/demo-win-0"])
	}
	if !slices.Contains(after["ready"], "addons") || !slices.Contains(after["ready"], "join/demo-linux-1") {
		t.Errorf("ready after %q, want every join and addons", after["ready"])
	}
}

func TestPlanJoinsControlPlaneNodesOneAtATime(t *testing.T) {
	t.Parallel()
	s := demoSpec()
	s.ControlPlane.Count = 3
	got, err := cluster.Plan(s, cluster.Observed{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range got.Steps {
		if st.ID == "join/demo-cp-2" && !slices.Contains(st.After, "join/demo-cp-1") {
			t.Errorf("join/demo-cp-2 after %q, want join/demo-cp-1 among them", st.After)
		}
	}
}

func TestPlanRefusesShrinkingTheControlPlane(t *testing.T) {
	t.Parallel()
	three := demoSpec()
	three.ControlPlane.Count = 3
	_, err := cluster.Plan(demoSpec(), converged(three))
	if err == nil || !strings.Contains(err.Error(), "control_plane.count") || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("Plan error = %v, want one naming control_plane.count with a fix", err)
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	t.Parallel()
	s := demoSpec()
	for i := range 20 {
		s.NodePools[fmt.Sprintf("p%02d", i)] = cluster.PoolSpec{OS: cluster.Linux, Count: 2, InstanceType: "m6i.large"}
	}
	first, err := cluster.Plan(s, cluster.Observed{})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		again, _ := cluster.Plan(s, cluster.Observed{})
		if !slices.Equal(stepIDs(first), stepIDs(again)) || first.String() != again.String() {
			t.Fatal("two plans of the same input differ")
		}
	}
}

func TestPlanIgnoresInstancesAlreadyShuttingDown(t *testing.T) {
	t.Parallel()
	base := demoSpec()
	win3 := base.NodePools["win"]
	win3.Count = 3
	o := converged(withPool(base, "win", &win3))
	for i := range o.Instances {
		if o.Instances[i].Name == "demo-win-2" {
			o.Instances[i].State = clouds.StateDeleting
		}
	}
	delete(o.Nodes, "demo-win-2")
	got, err := cluster.Plan(base, o)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Empty() {
		t.Errorf("plan %q, want nothing: demo-win-2 is already on its way out", got.Summary())
	}
}

// behindLB is o on a cloud with load balancers, with every running
// control-plane instance registered behind the cluster's.
func behindLB(o cluster.Observed) cluster.Observed {
	o.LoadBalancing = true
	lb := clouds.LoadBalancer{ID: "lb-demo", Address: "demo.lb.invalid", Port: 6443}
	for _, in := range o.Instances {
		if in.Role == clouds.RoleControlPlane && in.State == clouds.StateRunning {
			lb.Targets = append(lb.Targets, in.ID)
		}
	}
	slices.Sort(lb.Targets)
	o.LoadBalancer = &lb
	return o
}

func stepAfter(c cluster.Changes) map[string][]string {
	out := map[string][]string{}
	for _, s := range c.Steps {
		out[s.ID] = s.After
	}
	return out
}

// On a cloud with load balancers, a new cluster gets one after its network
// and before its first control-plane node bootstraps (kubeadm init already
// talks to it), and each other control-plane node goes behind it once it
// has joined.
func TestPlanPutsTheControlPlaneBehindTheLoadBalancer(t *testing.T) {
	t.Parallel()
	s := demoSpec()
	s.ControlPlane.Count = 3
	got, err := cluster.Plan(s, cluster.Observed{LoadBalancing: true})
	if err != nil {
		t.Fatal(err)
	}
	after := stepAfter(got)
	for id, want := range map[string][]string{
		"loadbalancer":        {"network"},
		"target/demo-cp-0":    {"loadbalancer", "instance/demo-cp-0"},
		"bootstrap/demo-cp-0": {"instance/demo-cp-0", "target/demo-cp-0"},
		"target/demo-cp-1":    {"loadbalancer", "instance/demo-cp-1", "join/demo-cp-1", "target/demo-cp-0"},
		"target/demo-cp-2":    {"loadbalancer", "instance/demo-cp-2", "join/demo-cp-2", "target/demo-cp-0"},
	} {
		if a, ok := after[id]; !ok || !slices.Equal(a, want) {
			t.Errorf("%s after %q (planned: %v), want after %q", id, a, ok, want)
		}
	}
	if _, ok := after["target/demo-linux-0"]; ok {
		t.Error("a worker is planned behind the API load balancer")
	}
	if !slices.Contains(got.Summary(), "~ register demo-cp-0, demo-cp-1, demo-cp-2 behind the API load balancer") {
		t.Errorf("summary %q does not say which nodes go behind the load balancer", got.Summary())
	}
}

// A cluster of one is made behind the load balancer too, so that it can grow
// in place: growing it to three plans joins and targets only.
func TestPlanGrowsTheControlPlaneInPlace(t *testing.T) {
	t.Parallel()
	one := demoSpec()
	three := demoSpec()
	three.ControlPlane.Count = 3
	got, err := cluster.Plan(three, behindLB(converged(one)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"instance/demo-cp-1", "instance/demo-cp-2", "bootstrap/demo-cp-0", "join/demo-cp-1", "join/demo-cp-2", "target/demo-cp-1", "target/demo-cp-2", "addons", "ready"}
	if ids := stepIDs(got); !slices.Equal(ids, want) {
		t.Errorf("steps %q, want %q", ids, want)
	}
}

func TestPlanLoadBalancerConvergedAndWithout(t *testing.T) {
	t.Parallel()
	three := demoSpec()
	three.ControlPlane.Count = 3
	if got, err := cluster.Plan(three, behindLB(converged(three))); err != nil || !got.Empty() {
		t.Errorf("converged cluster behind its load balancer: plan %q (%v), want nothing", got.Summary(), err)
	}
	// Without load balancers (a cloud that has none), today's plan: no such steps.
	got, err := cluster.Plan(demoSpec(), cluster.Observed{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got.Steps {
		if s.Kind == cluster.StepLoadBalancer || s.Kind == cluster.StepTarget {
			t.Errorf("step %s planned on a cloud without load balancers", s.ID)
		}
	}
	// A target that is not a running control-plane instance any more goes.
	o := behindLB(converged(three))
	o.LoadBalancer.Targets = append(o.LoadBalancer.Targets, "i-gone")
	got, err = cluster.Plan(three, o)
	if err != nil {
		t.Fatal(err)
	}
	if ids := stepIDs(got); !slices.Equal(ids, []string{"target"}) || !slices.Equal(got.Summary(), []string{"~ remove i-gone from the API load balancer (gone)"}) {
		t.Errorf("plan %q %q, want one step that drops i-gone", ids, got.Summary())
	}
}

// The first control-plane node of a running HA control plane is never
// bootstrapped again: kubeadm init on a new instance would start a second
// cluster behind the same endpoint.
func TestPlanRefusesToBootstrapAgainUnderARunningControlPlane(t *testing.T) {
	t.Parallel()
	three := demoSpec()
	three.ControlPlane.Count = 3
	o := behindLB(converged(three))
	o.Instances = slices.DeleteFunc(o.Instances, func(in clouds.Instance) bool { return in.Name == "demo-cp-0" })
	delete(o.Nodes, "demo-cp-0")
	_, err := cluster.Plan(three, o)
	if err == nil || !strings.Contains(err.Error(), "demo-cp-0") || !strings.Contains(err.Error(), "demo-cp-1, demo-cp-2") || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("Plan = %v, want a refusal naming demo-cp-0, the nodes that run the cluster, and a fix", err)
	}
	// A cluster of one that lost its only node is made again, as before.
	one := demoSpec()
	o = behindLB(converged(one))
	o.Instances = slices.DeleteFunc(o.Instances, func(in clouds.Instance) bool { return in.Name == "demo-cp-0" })
	delete(o.Nodes, "demo-cp-0")
	if c, err := cluster.Plan(one, o); err != nil || !slices.Contains(stepIDs(c), "bootstrap/demo-cp-0") {
		t.Errorf("Plan = %q, %v; want demo-cp-0 made and bootstrapped again", stepIDs(c), err)
	}
}
