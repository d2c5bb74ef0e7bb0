package memory_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/memory"
)

func TestLoadBalancerLifecycle(t *testing.T) {
	ctx := context.Background()
	c := memory.New()
	net, err := c.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	var cps []clouds.Instance
	for _, name := range []string{"demo-cp-0", "demo-cp-1", "demo-cp-2"} {
		in, err := c.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: "demo", Name: name, Pool: clouds.ControlPlanePool, Role: clouds.RoleControlPlane, OS: "linux", Network: net})
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, in)
	}
	req := clouds.LoadBalancerRequest{Cluster: "demo", Internal: true, Port: 6443, Network: net}
	lb, err := c.EnsureLoadBalancer(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.EnsureLoadBalancer(ctx, req)
	if err != nil || again.ID != lb.ID || again.Address != lb.Address || lb.Port != 6443 {
		t.Fatalf("second Ensure = %+v, %v; want the adopted %+v", again, err, lb)
	}
	if err := c.SetLoadBalancerTargets(ctx, lb, cps); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLoadBalancerTargets(ctx, lb, cps[1:]); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.LoadBalancerTargets("demo"); !slices.Equal(got, []string{"demo-cp-1", "demo-cp-2"}) {
		t.Fatalf("targets = %v, want exactly the last two control planes", got)
	}
	found, ok, err := c.FindLoadBalancer(ctx, "demo")
	if err != nil || !ok || !slices.Equal(found.Targets, []string{cps[1].ID, cps[2].ID}) {
		t.Fatalf("Find = %+v, %v, %v", found, ok, err)
	}
	if err := c.SetLoadBalancerTargets(ctx, lb, []clouds.Instance{{ID: "i-gone", Name: "gone"}}); clouds.KindOf(err) != clouds.KindInvalid {
		t.Fatalf("a target that does not exist: %v, want KindInvalid", err)
	}
	if err := c.DeleteNetwork(ctx, "demo"); clouds.KindOf(err) != clouds.KindTransient {
		t.Fatalf("DeleteNetwork under a load balancer: %v, want a transient dependency error", err)
	}
	for _, in := range cps {
		if err := c.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := c.DeleteLoadBalancer(ctx, "demo"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if objs := c.Objects("demo"); len(objs) != 0 {
		t.Fatalf("left behind: %v", objs)
	}
	if _, ok, _ := c.FindLoadBalancer(ctx, "demo"); ok {
		t.Fatal("a deleted load balancer is still found")
	}
}

func TestLoadBalancerLostReplyConverges(t *testing.T) {
	ctx := context.Background()
	c := memory.New()
	net, _ := c.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: "demo"})
	lost := errors.New("reply lost")
	c.FaultAfter = func(op, _ string) error {
		if op == memory.OpEnsureLoadBalancer {
			return lost
		}
		return nil
	}
	req := clouds.LoadBalancerRequest{Cluster: "demo", Port: 6443, Network: net}
	if _, err := c.EnsureLoadBalancer(ctx, req); !errors.Is(err, lost) {
		t.Fatalf("err = %v, want the lost reply", err)
	}
	c.FaultAfter = nil
	if _, err := c.EnsureLoadBalancer(ctx, req); err != nil {
		t.Fatal(err)
	}
	if objs := c.Objects("demo"); !slices.Equal(objs, []string{"loadbalancer/lb-demo", "network/net-demo"}) {
		t.Fatalf("objects = %v, want one load balancer", objs)
	}
}
