// Package memory is an in-process clouds.Cloud for tests and benchmarks: it
// keeps networks and instances in maps, can sleep per operation to simulate
// latency, can fail operations on demand, and counts every call so tests can
// assert that a converged Apply makes no mutating call.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/internal/double"
)

// Operations, as counted and as named to Latency and Fault.
const (
	OpEnsureNetwork  = "EnsureNetwork"
	OpFindNetwork    = "FindNetwork"
	OpEnsureInstance = "EnsureInstance"
	OpInstances      = "Instances"
	OpDeleteInstance = "DeleteInstance"
	OpDeleteNetwork  = "DeleteNetwork"
	OpEnsureSecret   = "EnsureSecret"
	OpSecret         = "Secret"
	OpDeleteSecrets  = "DeleteSecrets"

	OpEnsureLoadBalancer     = "EnsureLoadBalancer"
	OpFindLoadBalancer       = "FindLoadBalancer"
	OpSetLoadBalancerTargets = "SetLoadBalancerTargets"
	OpDeleteLoadBalancer     = "DeleteLoadBalancer"
)

// Mutating reports whether an operation changes the cloud when it acts.
func Mutating(op string) bool {
	switch op {
	case OpEnsureNetwork, OpEnsureInstance, OpDeleteInstance, OpDeleteNetwork, OpDeleteSecrets,
		OpEnsureLoadBalancer, OpSetLoadBalancerTargets, OpDeleteLoadBalancer:
		return true
	}
	return false
}

// Tags are the memory cloud's tag keys: plain words, as no real cloud would accept them all.
var Tags = clouds.TagKeys{Cluster: "cluster", Pool: "pool", Role: "role", Node: "node"}

// Cloud is the in-memory cloud. The zero value is not usable; call New.
type Cloud struct {
	// Simulation gives the cloud Latency and Fault hooks per operation and
	// object (the node name, the cluster), and counts calls.
	double.Simulation
	// FaultAfter, when set, is asked after a mutating call took effect; a
	// non-nil error is returned as if the reply was lost.
	FaultAfter func(op, object string) error
	// OnCreate, when set, is called once for every instance created, with its
	// request: the lab turns it into a virtual host from req.Identity.
	OnCreate func(req clouds.InstanceRequest, in clouds.Instance) error

	mu        sync.Mutex
	networks  map[string]clouds.Network
	instances map[string]*clouds.Instance // by ID
	nextID    int
	secrets   map[string]map[clouds.SecretName][]byte // by cluster, then name
	lbs       map[string]*clouds.LoadBalancer         // by cluster
}

// New makes an empty cloud.
func New() *Cloud {
	return &Cloud{networks: map[string]clouds.Network{}, instances: map[string]*clouds.Instance{}, secrets: map[string]map[clouds.SecretName][]byte{}, lbs: map[string]*clouds.LoadBalancer{}}
}

var _ clouds.Cloud = (*Cloud)(nil)

// Name implements clouds.Cloud.
func (c *Cloud) Name() string { return "memory" }

func (c *Cloud) leave(op, object string) error {
	if c.FaultAfter != nil {
		return c.FaultAfter(op, object)
	}
	return nil
}

// EnsureNetwork implements clouds.Cloud.
func (c *Cloud) EnsureNetwork(ctx context.Context, req clouds.NetworkRequest) (clouds.Network, error) {
	if err := c.Enter(ctx, OpEnsureNetwork, req.Cluster); err != nil {
		return clouds.Network{}, err
	}
	c.mu.Lock()
	n, ok := c.networks[req.Cluster]
	if !ok {
		n = clouds.Network{
			ID:        "net-" + req.Cluster,
			SubnetID:  "subnet-" + req.Cluster,
			Firewalls: clouds.RoleFirewalls{ControlPlane: "fw-" + req.Cluster + "-cp", Worker: "fw-" + req.Cluster + "-worker"},
		}
		c.networks[req.Cluster] = n
	}
	c.mu.Unlock()
	return n, c.leave(OpEnsureNetwork, req.Cluster)
}

// FindNetwork implements clouds.Cloud.
func (c *Cloud) FindNetwork(ctx context.Context, cluster string) (clouds.Network, bool, error) {
	if err := c.Enter(ctx, OpFindNetwork, cluster); err != nil {
		return clouds.Network{}, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.networks[cluster]
	return n, ok, nil
}

// EnsureInstance implements clouds.Cloud; the node name is the idempotency
// key, as a client token is on a real cloud.
func (c *Cloud) EnsureInstance(ctx context.Context, req clouds.InstanceRequest) (clouds.Instance, error) {
	if err := c.Enter(ctx, OpEnsureInstance, req.Name); err != nil {
		return clouds.Instance{}, err
	}
	c.mu.Lock()
	if _, ok := c.networks[req.Cluster]; !ok {
		c.mu.Unlock()
		return clouds.Instance{}, &clouds.Error{Kind: clouds.KindInvalid, Op: OpEnsureInstance, Object: fmt.Sprintf("instance %q", req.Name), Code: "NetworkNotFound", Err: fmt.Errorf("cluster %q has no network", req.Cluster)}
	}
	for _, in := range c.instances {
		if in.Cluster == req.Cluster && in.Name == req.Name {
			out := clone(in)
			c.mu.Unlock()
			return out, c.leave(OpEnsureInstance, req.Name)
		}
	}
	c.nextID++
	in := &clouds.Instance{
		ID:           fmt.Sprintf("i-%08d", c.nextID),
		Cluster:      req.Cluster,
		Name:         req.Name,
		Pool:         req.Pool,
		Role:         req.Role,
		OS:           req.OS,
		InstanceType: req.InstanceType,
		Image:        req.Image,
		DiskGB:       req.DiskGB,
		State:        clouds.StateRunning,
		PrivateIP:    fmt.Sprintf("10.0.%d.%d", c.nextID/250, c.nextID%250+4),
		Tags:         Tags.For(req.Cluster, req.Pool, req.Role, req.Name),
	}
	if req.OS == "windows" {
		in.WindowsVersion = req.WindowsVersion
	}
	c.instances[in.ID] = in
	out := clone(in)
	c.mu.Unlock()
	if c.OnCreate != nil {
		if err := c.OnCreate(req, out); err != nil {
			return clouds.Instance{}, err
		}
	}
	return out, c.leave(OpEnsureInstance, req.Name)
}

// Instances implements clouds.Cloud.
func (c *Cloud) Instances(ctx context.Context, cluster string) ([]clouds.Instance, error) {
	if err := c.Enter(ctx, OpInstances, cluster); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []clouds.Instance
	for _, in := range c.instances {
		if in.Cluster == cluster {
			out = append(out, clone(in))
		}
	}
	slices.SortFunc(out, func(a, b clouds.Instance) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteInstance implements clouds.Cloud.
func (c *Cloud) DeleteInstance(ctx context.Context, inst clouds.Instance) error {
	if err := c.Enter(ctx, OpDeleteInstance, inst.Name); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.instances, inst.ID)
	c.mu.Unlock()
	return c.leave(OpDeleteInstance, inst.Name)
}

// DeleteNetwork implements clouds.Cloud.
func (c *Cloud) DeleteNetwork(ctx context.Context, cluster string) error {
	if err := c.Enter(ctx, OpDeleteNetwork, cluster); err != nil {
		return err
	}
	c.mu.Lock()
	if lb, ok := c.lbs[cluster]; ok {
		c.mu.Unlock()
		return &clouds.Error{Kind: clouds.KindTransient, Op: OpDeleteNetwork, Object: fmt.Sprintf("network of cluster %q", cluster), Code: "DependencyViolation", Err: fmt.Errorf("load balancer %s still uses it", lb.ID)}
	}
	for _, in := range c.instances {
		if in.Cluster == cluster {
			c.mu.Unlock()
			return &clouds.Error{Kind: clouds.KindTransient, Op: OpDeleteNetwork, Object: fmt.Sprintf("network of cluster %q", cluster), Code: "DependencyViolation", Err: fmt.Errorf("instance %s still uses it", in.Name)}
		}
	}
	delete(c.networks, cluster)
	c.mu.Unlock()
	return c.leave(OpDeleteNetwork, cluster)
}

// EnsureSecret stores value under the cluster's name unless one is there,
// and returns the stored value.
func (c *Cloud) EnsureSecret(ctx context.Context, cluster string, name clouds.SecretName, value []byte) ([]byte, error) {
	if err := c.Enter(ctx, OpEnsureSecret, cluster+"/"+string(name)); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secrets[cluster] == nil {
		c.secrets[cluster] = map[clouds.SecretName][]byte{}
	}
	if v, ok := c.secrets[cluster][name]; ok {
		return slices.Clone(v), nil
	}
	c.secrets[cluster][name] = slices.Clone(value)
	return slices.Clone(value), nil
}

// Secret returns a stored secret.
func (c *Cloud) Secret(ctx context.Context, cluster string, name clouds.SecretName) ([]byte, bool, error) {
	if err := c.Enter(ctx, OpSecret, cluster+"/"+string(name)); err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.secrets[cluster][name]
	return slices.Clone(v), ok, nil
}

// DeleteSecrets deletes every secret of the cluster.
func (c *Cloud) DeleteSecrets(ctx context.Context, cluster string) error {
	if err := c.Enter(ctx, OpDeleteSecrets, cluster); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.secrets, cluster)
	return nil
}

// Terminate removes an instance behind the library's back, as a user in the
// cloud console would: drift for the next Plan to see.
func (c *Cloud) Terminate(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, in := range c.instances {
		if in.Name == name {
			delete(c.instances, id)
			return true
		}
	}
	return false
}

// Stop stops the named instance out of band, as a person in the cloud
// console or a host failure would; false when there is none.
func (c *Cloud) Stop(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range c.instances {
		if in.Name == name {
			in.State = clouds.StateStopped
			return true
		}
	}
	return false
}

// MutatingCalls counts calls of operations that change the cloud.
func (c *Cloud) MutatingCalls() int {
	n := 0
	for op, k := range c.Calls() {
		if Mutating(op) {
			n += k
		}
	}
	return n
}

// Objects lists every object that exists for a cluster, as "network/<id>",
// "instance/<name>" and "secret/<name>", sorted: what a leak check compares with nothing.
func (c *Cloud) Objects(cluster string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	if n, ok := c.networks[cluster]; ok {
		out = append(out, "network/"+n.ID)
	}
	for _, in := range c.instances {
		if in.Cluster == cluster {
			out = append(out, "instance/"+in.Name)
		}
	}
	for name := range c.secrets[cluster] {
		out = append(out, "secret/"+string(name))
	}
	if lb, ok := c.lbs[cluster]; ok {
		out = append(out, "loadbalancer/"+lb.ID)
	}
	slices.Sort(out)
	return out
}

func clone(in *clouds.Instance) clouds.Instance {
	out := *in
	out.Tags = maps.Clone(in.Tags)
	return out
}
