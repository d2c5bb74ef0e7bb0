package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster/internal/engine"
	"github.com/mixedk8s/mixedk8s/transport"
)

// Options carry what Apply, Destroy and Observe act through.
type Options struct {
	Cloud       clouds.Cloud
	Provisioner Provisioner
	// Concurrency bounds how many steps run at once; 0 means DefaultConcurrency.
	Concurrency int
	// Attempts bounds tries per step for retryable errors; 0 means 8.
	Attempts int
	// BaseBackoff and MaxBackoff shape the retry backoff; 0 means 1s and 30s.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Progress receives events as the work goes on. It must return quickly.
	Progress func(Event)
}

// DefaultConcurrency lets every node of a large cluster provision at once: a
// node step mostly waits on the cloud or the node, not on this process.
const DefaultConcurrency = 128

func (o Options) check() error {
	var missing []string
	if o.Cloud == nil {
		missing = append(missing, "Cloud")
	}
	if o.Provisioner == nil {
		missing = append(missing, "Provisioner")
	}
	if len(missing) > 0 {
		return fmt.Errorf("cluster options: %v not set; fix: pass a cloud (clouds/aws, clouds/azure, clouds/gcp) and a provisioner", missing)
	}
	return nil
}

// EventKind says what an Event reports.
type EventKind string

const (
	StepStarted  EventKind = "step-started"
	StepRetrying EventKind = "step-retrying"
	StepFinished EventKind = "step-finished"
	StepFailed   EventKind = "step-failed"
	// StepBlocked: the step did not run because a step it depends on failed.
	StepBlocked EventKind = "step-blocked"
	// NodePhase: a node's own progress, e.g. an agent step or a reboot.
	NodePhase EventKind = "node-phase"
)

// Event is one line of progress. It never carries secrets.
type Event struct {
	Time    time.Time
	Kind    EventKind
	Step    string
	Node    string
	Attempt int
	Message string
	// Err is the error text for StepRetrying, StepFailed and StepBlocked.
	Err     string
	Elapsed time.Duration
}

// String is the event as a progress line.
func (e Event) String() string {
	s := string(e.Kind) + " " + e.Step
	if e.Kind == NodePhase {
		s = e.Node + ": " + e.Message
	}
	if e.Attempt > 1 {
		s += fmt.Sprintf(" (attempt %d)", e.Attempt)
	}
	if e.Elapsed > 0 {
		s += " in " + e.Elapsed.Round(time.Millisecond).String()
	}
	if e.Err != "" {
		s += ": " + e.Err
	}
	return s
}

// Result is what Apply did and what the cluster looks like after it.
type Result struct {
	// Changes is the plan Apply ran.
	Changes Changes
	// Nodes are the cluster's desired nodes with their instances.
	Nodes []NodeInfo
	// Endpoint is how clients reach the API server; empty if the control plane never came up.
	Endpoint Endpoint
}

// NodeInfo is one node of the cluster as Apply left it.
type NodeInfo struct {
	Name       string
	Pool       string
	OS         OS
	InstanceID string
	PrivateIP  string
	Ready      bool
}

// Apply makes the cluster match the spec: it validates, observes what exists,
// plans, and runs the plan as a graph. Worker instances are created while the
// control plane bootstraps. After any failure, calling Apply again adopts
// what exists and finishes; it never duplicates.
func Apply(ctx context.Context, spec Spec, opts Options) (*Result, error) {
	return apply(ctx, spec, opts, false)
}

// Repair replaces the cluster's broken workers: a worker whose instance is
// stopped, is gone (its Node object stays), or has been NotReady for longer
// than its pool's replace_not_ready_after. It also finishes nodes that
// have not joined, as Apply does, but it does not roll outdated nodes or
// change a pool's size: call it in a loop, and Apply for changes.
// Result.Changes.Replacements says which nodes it replaced and why.
func Repair(ctx context.Context, spec Spec, opts Options) (*Result, error) {
	return apply(ctx, spec, opts, true)
}

func apply(ctx context.Context, spec Spec, opts Options, repairOnly bool) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if err := Validate(spec); err != nil {
		return nil, err
	}
	spec = spec.WithDefaults()
	observed, err := Observe(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	changes, err := plan(spec, observed, repairOnly)
	if err != nil {
		return nil, err
	}
	r := newRun(spec, observed, changes.nodes, opts)
	if err := r.preflight(ctx, changes); err != nil {
		return &Result{Changes: changes}, err
	}
	err = engine.Run(ctx, r.steps(changes), r.engineOptions())
	return &Result{Changes: changes, Nodes: r.nodeInfos(), Endpoint: r.endpoint()}, wrapRunError(spec.Name, "apply", err)
}

// Destroy deletes every instance, network object and secret of the
// cluster, without draining: the whole cluster goes. It converges like
// Apply: call it again after a failure.
func Destroy(ctx context.Context, spec Spec, opts Options) error {
	if err := opts.check(); err != nil {
		return err
	}
	name := spec.Name
	instances, err := opts.Cloud.Instances(ctx, name)
	if err != nil {
		return fmt.Errorf("failed to list the instances of cluster %q: %w", name, err)
	}
	r := newRun(spec.WithDefaults(), Observed{}, nil, opts)
	var steps []engine.Step
	var deletes []string
	for _, in := range instances {
		id := stepID(StepDelete, in.Name)
		deletes = append(deletes, id)
		steps = append(steps, engine.Step{ID: id, Run: func(ctx context.Context) error {
			return opts.Cloud.DeleteInstance(ctx, in)
		}})
	}
	if lbs, ok := opts.Cloud.(clouds.LoadBalancers); ok {
		// The load balancer goes with the instances: the network cannot go while it uses it.
		id := stepID(StepDelete, string(StepLoadBalancer))
		deletes = append(deletes, id)
		steps = append(steps, engine.Step{ID: id, Run: func(ctx context.Context) error {
			if err := lbs.DeleteLoadBalancer(ctx, name); err != nil {
				return fmt.Errorf("failed to delete the API load balancer of cluster %q: %w", name, err)
			}
			return nil
		}})
	}
	steps = append(steps, engine.Step{ID: "delete/network", After: deletes, Run: func(ctx context.Context) error {
		return opts.Cloud.DeleteNetwork(ctx, name)
	}})
	// Secrets go last: a Destroy that stops early can still reach the nodes it left.
	steps = append(steps, engine.Step{ID: "delete/secrets", After: []string{"delete/network"}, Run: func(ctx context.Context) error {
		return opts.Cloud.DeleteSecrets(ctx, name)
	}})
	return wrapRunError(name, "destroy", engine.Run(ctx, steps, r.engineOptions()))
}

func wrapRunError(cluster, verb string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("failed to %s cluster %q: %w (running the same command again resumes where this one stopped)", verb, cluster, err)
}

// classify decides which errors are worth another attempt.
func classify(err error) engine.Class {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return engine.Fatal
	case clouds.KindOf(err).Retryable():
		return engine.Retry
	case errors.Is(err, transport.ErrNotReady), errors.Is(err, transport.ErrRebooting):
		return engine.Retry
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) && r.Retryable() {
		return engine.Retry
	}
	return engine.Fatal
}

// run is one Apply's shared state: what exists, as the steps learn it.
type run struct {
	spec  Spec
	opts  Options
	nodes map[string]Node
	order []Node

	mu        sync.Mutex
	network   *clouds.Network
	instances map[string]clouds.Instance
	ready     map[string]bool
	join      *JoinInfo
	observed  *Endpoint
	lb        *clouds.LoadBalancer

	// targetsMu makes each change of the load balancer's targets read what the last one set.
	targetsMu sync.Mutex
}

// newRun starts a run towards nodes, the plan's nodes; nil means the spec's.
func newRun(spec Spec, observed Observed, nodes []Node, opts Options) *run {
	if nodes == nil {
		nodes = spec.Nodes()
	}
	r := &run{spec: spec, opts: opts, nodes: map[string]Node{}, order: nodes, network: observed.Network, instances: map[string]clouds.Instance{}, ready: map[string]bool{}, lb: observed.LoadBalancer}
	for _, n := range nodes {
		r.nodes[n.Name] = n
	}
	for _, in := range observed.Instances {
		r.instances[in.Name] = in
	}
	for name, st := range observed.Nodes {
		r.ready[name] = st.Ready
	}
	r.observed = observed.Endpoint
	return r
}

// endpoint is what this run's bootstrap returned, or what was observed before it.
func (r *run) endpoint() Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.join != nil {
		return Endpoint{APIEndpoint: r.join.APIEndpoint, CACertPEM: r.join.CACertPEM}
	}
	if r.observed != nil {
		return *r.observed
	}
	return Endpoint{}
}

func (r *run) emit(e Event) {
	if r.opts.Progress != nil {
		e.Time = time.Now()
		r.opts.Progress(e)
	}
}

func (r *run) engineOptions() engine.Options {
	return engine.Options{
		Limit:       cmpOr(r.opts.Concurrency, DefaultConcurrency),
		Classify:    classify,
		Attempts:    r.opts.Attempts,
		BaseBackoff: r.opts.BaseBackoff,
		MaxBackoff:  r.opts.MaxBackoff,
		Report: func(e engine.Event) {
			ev := Event{Step: e.Step, Attempt: e.Attempt, Elapsed: e.Elapsed}
			switch e.Kind {
			case engine.Started:
				ev.Kind = StepStarted
			case engine.Retrying:
				ev.Kind, ev.Message = StepRetrying, fmt.Sprintf("retrying in %s", e.Wait.Round(time.Millisecond))
			case engine.Finished:
				ev.Kind = StepFinished
			case engine.Failed:
				ev.Kind = StepFailed
			case engine.Blocked:
				ev.Kind = StepBlocked
			}
			if e.Err != nil {
				ev.Err = e.Err.Error()
			}
			r.emit(ev)
		},
	}
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (r *run) target(name string) (Target, error) {
	n, ok := r.nodes[name]
	if !ok {
		return Target{}, fmt.Errorf("node %s is not in the spec", name)
	}
	r.mu.Lock()
	in, ok := r.instances[name]
	r.mu.Unlock()
	if !ok {
		return Target{}, fmt.Errorf("node %s has no instance yet", name)
	}
	return Target{Spec: r.spec, Node: n, Instance: in, APIEndpoint: r.lbEndpoint(), Report: func(msg string) {
		r.emit(Event{Kind: NodePhase, Node: name, Message: msg})
	}}, nil
}

func (r *run) joinInfo() (JoinInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.join == nil {
		return JoinInfo{}, errors.New("the control plane has not been bootstrapped in this run")
	}
	return *r.join, nil
}

// steps binds each planned step to the work it stands for.
func (r *run) steps(c Changes) []engine.Step {
	out := make([]engine.Step, 0, len(c.Steps))
	for _, s := range c.Steps {
		out = append(out, engine.Step{ID: s.ID, After: s.After, Run: r.action(s)})
	}
	return out
}

// stepActions is the work of each step kind: one named method a kind.
var stepActions = map[StepKind]func(*run, context.Context, Step) error{
	StepNetwork:   (*run).networkStep,
	StepInstance:  (*run).instance,
	StepBootstrap: (*run).bootstrap,
	StepJoin:      (*run).joinNode,
	StepAddons:    (*run).addons,
	StepReady:     (*run).waitReady,
	StepDrain:     (*run).drain,
	StepDelete:    (*run).deleteInstance,
	StepRemove:    (*run).removeNode,

	StepLoadBalancer: (*run).loadBalancer,
	StepTarget:       (*run).registerTarget,
	StepRotate:       (*run).rotate,
	StepUpgrade:      (*run).upgradeNode,
}

func (r *run) action(s Step) func(context.Context) error {
	act, ok := stepActions[s.Kind]
	if !ok {
		return func(context.Context) error { return fmt.Errorf("step %s: unknown kind %q", s.ID, s.Kind) }
	}
	return func(ctx context.Context) error { return act(r, ctx, s) }
}

func (r *run) networkStep(ctx context.Context, _ Step) error { return r.ensureNetwork(ctx) }

func (r *run) instance(ctx context.Context, s Step) error { return r.ensureInstance(ctx, s.Node) }

// lbEndpoint is the API load balancer's host:port; "" when the cluster has none.
func (r *run) lbEndpoint() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lb == nil {
		return ""
	}
	return net.JoinHostPort(r.lb.Address, strconv.Itoa(r.lb.Port))
}

func (r *run) loadBalancers() (clouds.LoadBalancers, error) {
	lbs, ok := r.opts.Cloud.(clouds.LoadBalancers)
	if !ok {
		return nil, fmt.Errorf("the %s cloud client has no load balancer support", r.opts.Cloud.Name())
	}
	return lbs, nil
}

// loadBalancer creates the API load balancer: internal when nodes are
// reached only through the bastion, internet-facing (limited to
// access.admin_cidrs) otherwise.
func (r *run) loadBalancer(ctx context.Context, _ Step) error {
	lbs, err := r.loadBalancers()
	if err != nil {
		return err
	}
	r.mu.Lock()
	network := r.network
	r.mu.Unlock()
	if network == nil {
		return fmt.Errorf("failed to create the API load balancer of cluster %q: the cluster has no network yet", r.spec.Name)
	}
	lb, err := lbs.EnsureLoadBalancer(ctx, clouds.LoadBalancerRequest{
		Cluster:    r.spec.Name,
		Internal:   r.spec.Access.Bastion != nil,
		Port:       APIPort,
		Network:    *network,
		AdminCIDRs: r.spec.Access.AdminCIDRs,
	})
	if err != nil {
		return fmt.Errorf("failed to create the API load balancer of cluster %q: %w", r.spec.Name, err)
	}
	r.mu.Lock()
	r.lb = &lb
	r.mu.Unlock()
	return nil
}

// registerTarget makes the load balancer's targets the running control-plane
// instances it already has, plus the step's node: an instance that is gone
// (replaced, terminated) drops out. Nothing changes when nothing would.
func (r *run) registerTarget(ctx context.Context, s Step) error {
	lbs, err := r.loadBalancers()
	if err != nil {
		return err
	}
	r.targetsMu.Lock()
	defer r.targetsMu.Unlock()
	r.mu.Lock()
	lb := r.lb
	live := map[string]clouds.Instance{}
	for name, in := range r.instances {
		if n, ok := r.nodes[name]; ok && n.Role == clouds.RoleControlPlane && in.State == clouds.StateRunning {
			live[in.ID] = in
		}
	}
	add, hasAdd := r.instances[s.Node]
	r.mu.Unlock()
	if lb == nil {
		return fmt.Errorf("failed to register %s behind the API load balancer: cluster %q has none yet", s.Node, r.spec.Name)
	}
	if s.Node != "" && !hasAdd {
		return fmt.Errorf("failed to register %s behind the API load balancer: node %s has no instance yet", s.Node, s.Node)
	}
	var targets []clouds.Instance
	var ids []string
	for _, id := range lb.Targets {
		if in, ok := live[id]; ok && id != add.ID {
			targets = append(targets, in)
			ids = append(ids, id)
		}
	}
	if s.Node != "" {
		targets = append(targets, add)
		ids = append(ids, add.ID)
	}
	slices.Sort(ids)
	if slices.Equal(ids, lb.Targets) {
		return nil
	}
	if err := lbs.SetLoadBalancerTargets(ctx, *lb, targets); err != nil {
		if s.Node == "" {
			return fmt.Errorf("failed to remove gone instances from the API load balancer of cluster %q: %w", r.spec.Name, err)
		}
		return fmt.Errorf("failed to register %s (%s) behind the API load balancer of cluster %q: %w", s.Node, add.ID, r.spec.Name, err)
	}
	updated := *lb
	updated.Targets = ids
	r.mu.Lock()
	r.lb = &updated
	r.mu.Unlock()
	return nil
}

func (r *run) bootstrap(ctx context.Context, s Step) error {
	t, err := r.target(s.Node)
	if err != nil {
		return err
	}
	j, err := r.opts.Provisioner.Bootstrap(ctx, t)
	if err != nil {
		return fmt.Errorf("failed to bootstrap the control plane on %s: %w", s.Node, err)
	}
	r.mu.Lock()
	r.join = &j
	r.mu.Unlock()
	return nil
}

// joinTarget is the step's node and the credentials it joins with.
func (r *run) joinTarget(s Step) (Target, JoinInfo, error) {
	t, err := r.target(s.Node)
	if err != nil {
		return Target{}, JoinInfo{}, err
	}
	j, err := r.joinInfo()
	return t, j, err
}

func (r *run) joinNode(ctx context.Context, s Step) error {
	t, j, err := r.joinTarget(s)
	if err != nil {
		return err
	}
	if err := r.opts.Provisioner.Join(ctx, t, j); err != nil {
		return fmt.Errorf("failed to join %s (pool %q) to the cluster: %w", s.Node, s.Pool, err)
	}
	return nil
}

// upgradeNode runs the agent on a joined control-plane node with the
// spec's release, which upgrades it in place (kubeadm upgrade node, then
// the kubelet), and waits for the node to be Ready again before the next.
func (r *run) upgradeNode(ctx context.Context, s Step) error {
	t, j, err := r.joinTarget(s)
	if err != nil {
		return err
	}
	if err := r.opts.Provisioner.Join(ctx, t, j); err != nil {
		return fmt.Errorf("failed to upgrade control-plane node %s to Kubernetes %s: %w; fix: apply again, the upgrade resumes on this node", s.Node, r.spec.KubernetesVersion, err)
	}
	if err := r.opts.Provisioner.WaitReady(ctx, r.spec, []string{s.Node}); err != nil {
		return fmt.Errorf("control-plane node %s upgraded to Kubernetes %s is not Ready: %w", s.Node, r.spec.KubernetesVersion, err)
	}
	return nil
}

func (r *run) addons(ctx context.Context, _ Step) error {
	j, err := r.joinInfo()
	if err != nil {
		return err
	}
	if err := r.opts.Provisioner.Addons(ctx, r.spec, j); err != nil {
		return fmt.Errorf("failed to install the cluster add-ons: %w", err)
	}
	return nil
}

// waitReady waits for the step's node, or for every node when it names none.
func (r *run) waitReady(ctx context.Context, s Step) error {
	names := slices.Sorted(maps.Keys(r.nodes))
	if s.Node != "" {
		names = []string{s.Node}
	}
	if err := r.opts.Provisioner.WaitReady(ctx, r.spec, names); err != nil {
		if s.Node != "" {
			return fmt.Errorf("failed waiting for %s to become Ready before the node it replaces is drained: %w", s.Node, err)
		}
		return fmt.Errorf("failed waiting for the nodes to become Ready: %w", err)
	}
	r.mu.Lock()
	for _, n := range names {
		r.ready[n] = true
	}
	r.mu.Unlock()
	return nil
}

func (r *run) drain(ctx context.Context, s Step) error {
	if err := r.opts.Provisioner.Drain(ctx, r.spec, s.Node); err != nil {
		return fmt.Errorf("failed to drain %s: %w", s.Node, err)
	}
	return nil
}

// deleteInstance deletes the node's instance; one already gone is done.
func (r *run) deleteInstance(ctx context.Context, s Step) error {
	r.mu.Lock()
	in, ok := r.instances[s.Node]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	if err := r.opts.Cloud.DeleteInstance(ctx, in); err != nil {
		return fmt.Errorf("failed to delete instance %s (%s): %w", s.Node, in.ID, err)
	}
	r.mu.Lock()
	delete(r.instances, s.Node)
	r.mu.Unlock()
	return nil
}

func (r *run) removeNode(ctx context.Context, s Step) error {
	if err := r.opts.Provisioner.Remove(ctx, r.spec, s.Node); err != nil {
		return fmt.Errorf("failed to remove node %s from Kubernetes: %w", s.Node, err)
	}
	return nil
}

func (r *run) ensureNetwork(ctx context.Context) error {
	net, err := r.opts.Cloud.EnsureNetwork(ctx, clouds.NetworkRequest{
		Cluster:      r.spec.Name,
		NodeCIDR:     r.spec.Network.NodeCIDR,
		PodCIDR:      r.spec.Network.PodCIDR,
		AdminCIDRs:   r.spec.Access.AdminCIDRs,
		NodeTCPPorts: nodeTCPPorts(r.spec.Network.CNI),
	})
	if err != nil {
		return fmt.Errorf("failed to create the network of cluster %q: %w", r.spec.Name, err)
	}
	r.mu.Lock()
	r.network = &net
	r.mu.Unlock()
	return nil
}

// nodeTCPPorts are the TCP ports a pod network's agents serve to other
// nodes: Calico's Felix reaches Typha on 5473
// (https://docs.tigera.io/calico/latest/getting-started/kubernetes/requirements#network-requirements).
// Flannel needs only VXLAN, which every cloud opens.
func nodeTCPPorts(cni CNI) []int {
	if cni == CNICalico {
		return []int{5473}
	}
	return nil
}

func (r *run) ensureInstance(ctx context.Context, name string) error {
	n := r.nodes[name]
	r.mu.Lock()
	network := r.network
	r.mu.Unlock()
	if network == nil {
		return fmt.Errorf("failed to create instance %s: the cluster has no network yet", name)
	}
	identity, err := r.opts.Provisioner.Identity(ctx, Target{Spec: r.spec, Node: n})
	if err != nil {
		return fmt.Errorf("failed to prepare the identity of %s: %w", name, err)
	}
	in, err := r.opts.Cloud.EnsureInstance(ctx, clouds.InstanceRequest{
		Cluster:              r.spec.Name,
		Name:                 name,
		Pool:                 n.Pool,
		Role:                 n.Role,
		OS:                   string(n.OS),
		WindowsVersion:       n.WindowsVersion,
		ComputerName:         n.ComputerName,
		InstanceType:         n.InstanceType,
		DiskGB:               n.DiskGB,
		Image:                n.Image,
		NestedVirtualization: n.Isolation == IsolationHyperV,
		Identity:             identity,
		Network:              *network,
	})
	if err != nil {
		field := fmt.Sprintf("node_pools[%q].instance_type", n.Pool)
		if n.Pool == clouds.ControlPlanePool {
			field = "control_plane.instance_type"
		}
		return fmt.Errorf("failed to create instance %s (%s = %q): %w", name, field, n.InstanceType, err)
	}
	r.mu.Lock()
	r.instances[name] = in
	r.mu.Unlock()
	return nil
}

func (r *run) nodeInfos() []NodeInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []NodeInfo
	for _, n := range r.order {
		in := r.instances[n.Name]
		out = append(out, NodeInfo{Name: n.Name, Pool: n.Pool, OS: n.OS, InstanceID: in.ID, PrivateIP: in.PrivateIP, Ready: r.ready[n.Name]})
	}
	return out
}
