package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/mixedk8s/mixedk8s/clouds"
)

var _ clouds.LoadBalancers = (*Cloud)(nil)

// EnsureLoadBalancer implements clouds.LoadBalancers: one load balancer per
// cluster, adopted when it exists. Its address is a name under .invalid
// (RFC 2606), so nothing can dial it by accident.
func (c *Cloud) EnsureLoadBalancer(ctx context.Context, req clouds.LoadBalancerRequest) (clouds.LoadBalancer, error) {
	if err := c.Enter(ctx, OpEnsureLoadBalancer, req.Cluster); err != nil {
		return clouds.LoadBalancer{}, err
	}
	object := fmt.Sprintf("load balancer of cluster %q", req.Cluster)
	if req.Port <= 0 || req.Port > 65535 {
		return clouds.LoadBalancer{}, &clouds.Error{Kind: clouds.KindInvalid, Op: OpEnsureLoadBalancer, Object: object, Code: "ValidationError", Err: fmt.Errorf("port %d is not a TCP port", req.Port), Fix: "set a port between 1 and 65535"}
	}
	c.mu.Lock()
	if _, ok := c.networks[req.Cluster]; !ok {
		c.mu.Unlock()
		return clouds.LoadBalancer{}, &clouds.Error{Kind: clouds.KindInvalid, Op: OpEnsureLoadBalancer, Object: object, Code: "NetworkNotFound", Err: fmt.Errorf("cluster %q has no network", req.Cluster)}
	}
	lb, ok := c.lbs[req.Cluster]
	if !ok {
		scheme := "public"
		if req.Internal {
			scheme = "internal"
		}
		lb = &clouds.LoadBalancer{ID: "lb-" + req.Cluster, Address: fmt.Sprintf("%s.%s.lb.invalid", req.Cluster, scheme), Port: req.Port}
		c.lbs[req.Cluster] = lb
	}
	out := cloneLB(lb)
	c.mu.Unlock()
	return out, c.leave(OpEnsureLoadBalancer, req.Cluster)
}

// FindLoadBalancer implements clouds.LoadBalancers.
func (c *Cloud) FindLoadBalancer(ctx context.Context, cluster string) (clouds.LoadBalancer, bool, error) {
	if err := c.Enter(ctx, OpFindLoadBalancer, cluster); err != nil {
		return clouds.LoadBalancer{}, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, ok := c.lbs[cluster]
	if !ok {
		return clouds.LoadBalancer{}, false, nil
	}
	return cloneLB(lb), true, nil
}

// SetLoadBalancerTargets implements clouds.LoadBalancers. Like a real cloud
// it refuses an instance that does not exist, and a load balancer that is gone.
func (c *Cloud) SetLoadBalancerTargets(ctx context.Context, lb clouds.LoadBalancer, targets []clouds.Instance) error {
	if err := c.Enter(ctx, OpSetLoadBalancerTargets, lb.ID); err != nil {
		return err
	}
	c.mu.Lock()
	var have *clouds.LoadBalancer
	for _, l := range c.lbs {
		if l.ID == lb.ID {
			have = l
		}
	}
	if have == nil {
		c.mu.Unlock()
		return &clouds.Error{Kind: clouds.KindNotFound, Op: OpSetLoadBalancerTargets, Object: fmt.Sprintf("load balancer %q", lb.ID), Code: "LoadBalancerNotFound", Err: fmt.Errorf("no such load balancer"), Fix: "run Apply again to recreate it"}
	}
	var ids []string
	for _, t := range targets {
		if _, ok := c.instances[t.ID]; !ok {
			c.mu.Unlock()
			return &clouds.Error{Kind: clouds.KindInvalid, Op: OpSetLoadBalancerTargets, Object: fmt.Sprintf("load balancer %q", lb.ID), Code: "InvalidTarget", Err: fmt.Errorf("instance %s (%s) does not exist", t.ID, t.Name)}
		}
		ids = append(ids, t.ID)
	}
	slices.Sort(ids)
	have.Targets = slices.Compact(ids)
	c.mu.Unlock()
	return c.leave(OpSetLoadBalancerTargets, lb.ID)
}

// DeleteLoadBalancer implements clouds.LoadBalancers.
func (c *Cloud) DeleteLoadBalancer(ctx context.Context, cluster string) error {
	if err := c.Enter(ctx, OpDeleteLoadBalancer, cluster); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.lbs, cluster)
	c.mu.Unlock()
	return c.leave(OpDeleteLoadBalancer, cluster)
}

// LoadBalancerTargets returns the instance names behind the cluster's load
// balancer, sorted, and false when it has none: what a test checks after Apply.
func (c *Cloud) LoadBalancerTargets(cluster string) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, ok := c.lbs[cluster]
	if !ok {
		return nil, false
	}
	var names []string
	for _, id := range lb.Targets {
		if in, ok := c.instances[id]; ok {
			names = append(names, in.Name)
		} else {
			names = append(names, id) // terminated behind its back: the ID is all that is left
		}
	}
	slices.Sort(names)
	return names, true
}

func cloneLB(lb *clouds.LoadBalancer) clouds.LoadBalancer {
	out := *lb
	out.Targets = slices.Clone(lb.Targets)
	return out
}
