package clouds

import "context"

// LoadBalancers is implemented by a cloud that can front the API servers with its own load balancer.
//
// A highly available control plane needs one address that survives the loss
// of any control-plane node; the cloud's own layer-4 load balancer provides
// it. A cloud whose package implements this interface sets
// Profile.LoadBalancer, so that the validator can refuse more than one
// control-plane node on a cloud whose build lacks it. Every object the
// methods create carries the cluster's tag and a deterministic name, as all
// other objects do.
type LoadBalancers interface {
	// EnsureLoadBalancer creates or adopts the cluster's API load balancer (TCP req.Port, a TCP health check on the same port, internal or internet-facing per req.Internal) and returns once its address is known.
	EnsureLoadBalancer(ctx context.Context, req LoadBalancerRequest) (LoadBalancer, error)
	// FindLoadBalancer returns the cluster's load balancer found by tag, and false when there is none.
	FindLoadBalancer(ctx context.Context, cluster string) (LoadBalancer, bool, error)
	// SetLoadBalancerTargets makes the backends exactly these instances (idempotent).
	SetLoadBalancerTargets(ctx context.Context, lb LoadBalancer, targets []Instance) error
	// DeleteLoadBalancer deletes every load-balancing object tagged with the cluster; none is not an error.
	DeleteLoadBalancer(ctx context.Context, cluster string) error
}

// LoadBalancerRequest is the cluster's API load balancer as the cloud must build it.
type LoadBalancerRequest struct {
	Cluster string
	// Internal puts the address in the cluster's network only; otherwise it
	// is reachable from the internet (limited to AdminCIDRs where the cloud's
	// firewall allows it).
	Internal bool
	// Port is the TCP port clients dial and the backends listen on (6443).
	Port int
	// Network is what EnsureNetwork returned for the cluster.
	Network Network
	// AdminCIDRs may reach the API server through the load balancer.
	AdminCIDRs []string
}

// LoadBalancer is what EnsureLoadBalancer made or FindLoadBalancer found.
type LoadBalancer struct {
	// ID is the cloud's identifier of the load balancer itself.
	ID string
	// Address is the DNS name or IP address clients dial.
	Address string
	// Port is the TCP port clients dial.
	Port int
	// Targets are the IDs of the instances registered behind it, sorted.
	Targets []string
}
