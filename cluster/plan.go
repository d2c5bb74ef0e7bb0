package cluster

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// StepKind is what a planned step does.
type StepKind string

const (
	StepNetwork   StepKind = "network"
	StepInstance  StepKind = "instance"
	StepBootstrap StepKind = "bootstrap"
	StepJoin      StepKind = "join"
	StepAddons    StepKind = "addons"
	StepReady     StepKind = "ready"
	StepDrain     StepKind = "drain"
	StepDelete    StepKind = "delete"
	StepRemove    StepKind = "remove"
	// StepLoadBalancer creates the cluster's API load balancer.
	StepLoadBalancer StepKind = "loadbalancer"
	// StepTarget registers a control-plane node behind the API load
	// balancer; with no node, it only drops instances that are gone.
	StepTarget StepKind = "target"
	// StepRotate installs a node's identity of the spec's secrets epoch in
	// place of an older one's.
	StepRotate StepKind = "rotate"
	// StepUpgrade moves a control-plane node other than the first to the
	// spec's Kubernetes release in place (kubeadm upgrade node); the first
	// one's bootstrap step upgrades it (kubeadm upgrade apply).
	StepUpgrade StepKind = "upgrade"
)

// Step is one planned action. Steps run as a graph: each starts once every
// step in After has finished.
type Step struct {
	// ID is unique in the plan: "<kind>" or "<kind>/<node>".
	ID    string
	Kind  StepKind
	Node  string
	Pool  string
	After []string
}

// Changes is the ordered list of steps that takes a cluster from what was
// observed to what the spec asks for. Empty means converged.
type Changes struct {
	Cluster string
	Steps   []Step
	summary []string
	// nodes are the nodes the plan converges to, control plane first.
	nodes    []Node
	replaced []Replacement
}

// change is what happens to one pool's nodes, for the summary.
type change struct {
	created []string
	joined  []string
	gone    []string // created again: the instance is gone, its Node object stays
}

// Empty reports whether the cluster is converged.
func (p Changes) Empty() bool { return len(p.Steps) == 0 }

// Summary is the plan for a person, one change a line:
// `+ 3 windows-2022 nodes in pool "win" (demo-win-0 .. demo-win-2)`,
// `- drain and delete demo-win-2`.
func (p Changes) Summary() []string { return slices.Clone(p.summary) }

// String is the summary as one block of text.
func (p Changes) String() string {
	if p.Empty() {
		return fmt.Sprintf("cluster %q: no changes", p.Cluster)
	}
	return strings.Join(p.summary, "\n")
}

// Counts returns how many nodes the plan adds and removes.
func (p Changes) Counts() (add, remove int) {
	for _, s := range p.Steps {
		switch s.Kind {
		case StepInstance:
			add++
		case StepDelete:
			remove++
		}
	}
	return add, remove
}

func stepID(kind StepKind, node string) string {
	if node == "" {
		return string(kind)
	}
	return string(kind) + "/" + node
}

// Plan compares a spec (defaults are applied here) with what was observed and
// returns the steps, in a deterministic order, that converge them. It refuses
// changes it cannot make safely, such as shrinking the control plane. The spec
// must be valid (see Validate).
//
// It runs in phases over one planner, each adding its steps and summary
// lines: the network, the instances of wanted nodes, the control plane's
// bootstrap, the joins, add-ons and readiness, then the removals.
func Plan(spec Spec, observed Observed) (Changes, error) {
	spec = spec.WithDefaults()
	if spec.ControlPlane.Count < 1 {
		return Changes{}, fmt.Errorf("control_plane.count: %d; fix: run Validate first, the control plane needs 1, 3 or 5 nodes", spec.ControlPlane.Count)
	}
	return plan(spec, observed, false)
}

func plan(spec Spec, observed Observed, repairOnly bool) (Changes, error) {
	p := &planner{spec: spec, observed: observed, changes: map[string]*change{}, repairOnly: repairOnly}
	p.desired = p.desiredNodes()
	p.out.nodes = p.desired
	if err := p.checkVersion(); err != nil {
		return Changes{}, err
	}
	if err := p.checkCNI(); err != nil {
		return Changes{}, err
	}
	if err := p.firstStillLeads(); err != nil {
		return Changes{}, err
	}
	if err := p.endpointStable(); err != nil {
		return Changes{}, err
	}
	p.out.Cluster = spec.Name
	p.network()
	p.loadBalancer()
	p.instances()
	p.upgrades()
	p.initTarget()
	p.controlPlane()
	p.upgradeSteps()
	p.joins()
	p.replacements()
	p.joinTargets()
	p.addonsAndReady()
	p.rotations()
	p.summarizeAdditions()
	p.out.summary = append(p.out.summary, p.targetLines...)
	p.out.summary = append(p.out.summary, p.rotateLines...)
	if err := p.removals(); err != nil {
		return Changes{}, err
	}
	if len(p.out.summary) == 0 && p.readyID != "" {
		p.say("~ wait for %s to become Ready", nameList(p.notReady))
	}
	return p.out, nil
}

// firstStillLeads refuses a plan that would bootstrap the first
// control-plane node again while other control-plane nodes run the
// cluster: kubeadm init on its new instance would start a second etcd
// cluster behind the same endpoint.
func (p *planner) firstStillLeads() error {
	first := p.desired[0]
	if in, ok := p.observed.Instance(first.Name); ok && in.State == clouds.StateRunning {
		return nil
	}
	var others []string
	for _, n := range p.desired[1:] {
		if n.Role == clouds.RoleControlPlane && p.observed.Nodes[n.Name].Joined {
			others = append(others, n.Name)
		}
	}
	if len(others) == 0 {
		return nil
	}
	return fmt.Errorf("control_plane: %s, the first control-plane node, has no running instance while %s still run the cluster; making it again would run kubeadm init and start a second cluster, which the plan does not do; fix: start its instance again if it is stopped, otherwise the cluster's first node cannot be replaced in place yet: replace the cluster", first.Name, strings.Join(others, ", "))
}

// endpointStable keeps a cluster made before its cloud had an API load
// balancer as it is: its API endpoint is the first node's address and the
// API server's certificate names no load balancer, so one made now would
// serve a name the certificate lacks. Such a cluster stays at one
// control-plane node: kubeadm joins further ones only behind a stable
// controlPlaneEndpoint (kubernetes/cmd/kubeadm/app/cmd/phases/join/preflight.go).
func (p *planner) endpointStable() error {
	first := p.desired[0]
	if !p.observed.LoadBalancing || p.observed.LoadBalancer != nil || !p.observed.Nodes[first.Name].Joined {
		return nil
	}
	p.observed.LoadBalancing = false // no load balancer is planned for it
	if p.spec.ControlPlane.Count == 1 {
		return nil
	}
	return fmt.Errorf("control_plane.count: %d, but cluster %q was made without an API load balancer: its API endpoint is %s's address, which kubeadm's certificates and every node's kubeconfig name, so no further control-plane node can join it; fix: keep control_plane.count = 1, or make a new cluster (it gets a load balancer) and move the workloads to it", p.spec.ControlPlane.Count, p.spec.Name, first.Name)
}

// planner is the scope the phases of Plan share.
type planner struct {
	spec     Spec
	observed Observed
	desired  []Node
	out      Changes

	wanted    map[string]bool
	changes   map[string]*change // per pool, for the summary
	poolOrder []string
	joining   []string // nodes other than the first that must join
	notReady  []string

	bootstrapID, readyID string
	joinIDs              []string
	initTargetID         string
	targeted             map[string]bool // control-plane nodes with a planned target step
	targetLines          []string        // the load balancer's summary, after the nodes'
	rotateLines          []string        // identity rotations, after the load balancer's

	// reps are the workers replaced, by the new node's name in replacing.
	reps       []*replacement
	replacing  map[string]*replacement
	readyIDs   []string // each replacement's own Ready step
	repairOnly bool     // Repair: replace what is broken, leave the rest

	// upgrading are the control-plane nodes upgraded in place, first node
	// first; upgradeID is the step after which the control plane runs the
	// spec's release, which every join waits for: a kubelet is never newer
	// than an API server.
	upgrading   []string
	upgradeFrom string
	upgradeID   string
}

func (p *planner) add(s Step) { p.out.Steps = append(p.out.Steps, s) }

func (p *planner) say(format string, args ...any) {
	p.out.summary = append(p.out.summary, fmt.Sprintf(format, args...))
}

// after keeps the ids of steps already planned: a dependency on a step the
// plan does not need is no dependency.
func (p *planner) after(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if id != "" && slices.ContainsFunc(p.out.Steps, func(s Step) bool { return s.ID == id }) {
			out = append(out, id)
		}
	}
	return out
}

func (p *planner) poolChange(n Node) *change {
	c, ok := p.changes[n.Pool]
	if !ok {
		c = &change{}
		p.changes[n.Pool] = c
		p.poolOrder = append(p.poolOrder, n.Pool)
	}
	return c
}

func (p *planner) network() {
	if p.observed.Network == nil {
		p.add(Step{ID: stepID(StepNetwork, ""), Kind: StepNetwork})
		p.say("+ network, subnet and firewall rules for cluster %q", p.spec.Name)
	}
}

// loadBalancer plans the API load balancer on a cloud that has one, for
// every control-plane size: kubeadm refuses a control-plane join without a
// stable controlPlaneEndpoint, so a cluster of one can grow in place only
// if it was made behind one.
func (p *planner) loadBalancer() {
	if p.observed.LoadBalancing && p.observed.LoadBalancer == nil {
		p.add(Step{ID: stepID(StepLoadBalancer, ""), Kind: StepLoadBalancer, After: p.after(stepID(StepNetwork, ""))})
		p.say("+ API load balancer for cluster %q (TCP %d)", p.spec.Name, APIPort)
	}
}

// registered reports whether the node's running instance is already behind the load balancer.
func (p *planner) registered(name string) bool {
	lb := p.observed.LoadBalancer
	in, ok := p.observed.Instance(name)
	return lb != nil && ok && in.State == clouds.StateRunning && slices.Contains(lb.Targets, in.ID)
}

// initTarget registers the first control-plane node before it bootstraps:
// kubeadm init already reaches its own API server through the
// controlPlaneEndpoint (the load balancer) to upload its configuration.
func (p *planner) initTarget() {
	if !p.observed.LoadBalancing {
		return
	}
	p.targeted = map[string]bool{}
	first := p.desired[0]
	if p.registered(first.Name) && !p.instancePlanned(first.Name) {
		return
	}
	p.initTargetID = stepID(StepTarget, first.Name)
	p.targeted[first.Name] = true
	p.add(Step{ID: p.initTargetID, Kind: StepTarget, Node: first.Name, Pool: first.Pool,
		After: p.after(stepID(StepLoadBalancer, ""), stepID(StepInstance, first.Name))})
}

// joinTargets registers every other control-plane node once it has joined
// (its API server serves), and drops instances that are gone from the
// targets; a converged cluster gets no step.
func (p *planner) joinTargets() {
	if !p.observed.LoadBalancing {
		return
	}
	added := []string{}
	for _, n := range p.desired[1:] {
		if n.Role != clouds.RoleControlPlane || (p.registered(n.Name) && !p.instancePlanned(n.Name)) {
			continue
		}
		p.targeted[n.Name] = true
		added = append(added, n.Name)
		p.add(Step{ID: stepID(StepTarget, n.Name), Kind: StepTarget, Node: n.Name, Pool: n.Pool,
			After: p.after(stepID(StepLoadBalancer, ""), stepID(StepInstance, n.Name), stepID(StepJoin, n.Name), p.initTargetID)})
	}
	if p.initTargetID != "" {
		added = append([]string{p.desired[0].Name}, added...)
	}
	if len(added) > 0 {
		p.targetLines = append(p.targetLines, "~ register "+nameList(added)+" behind the API load balancer")
	}
	if stale := p.staleTargets(); len(stale) > 0 {
		if len(added) == 0 {
			p.add(Step{ID: stepID(StepTarget, ""), Kind: StepTarget, After: p.after(stepID(StepLoadBalancer, ""))})
		}
		p.targetLines = append(p.targetLines, "~ remove "+strings.Join(stale, ", ")+" from the API load balancer (gone)")
	}
}

// staleTargets are the load balancer's targets that are not a running
// control-plane instance of the spec. Any target step drops them.
func (p *planner) staleTargets() []string {
	if p.observed.LoadBalancer == nil {
		return nil
	}
	live := map[string]bool{}
	for _, n := range p.desired {
		if in, ok := p.observed.Instance(n.Name); ok && n.Role == clouds.RoleControlPlane && in.State == clouds.StateRunning {
			live[in.ID] = true
		}
	}
	var out []string
	for _, id := range p.observed.LoadBalancer.Targets {
		if !live[id] {
			out = append(out, id)
		}
	}
	return out
}

func (p *planner) instancePlanned(name string) bool {
	return len(p.after(stepID(StepInstance, name))) > 0
}

// instances plans an instance for each wanted node without a running one,
// and notes which nodes must (re)join and which are not Ready.
func (p *planner) instances() {
	p.wanted = make(map[string]bool, len(p.desired))
	first := p.desired[0] // Validate guarantees at least one control-plane node.
	for _, n := range p.desired {
		p.wanted[n.Name] = true
		if p.replacing[n.Name] != nil {
			continue // replacements() plans it
		}
		in, exists := p.observed.Instance(n.Name)
		st := p.observed.Nodes[n.Name]
		needInstance := !exists || in.State != clouds.StateRunning
		if needInstance {
			p.add(Step{ID: stepID(StepInstance, n.Name), Kind: StepInstance, Node: n.Name, Pool: n.Pool, After: p.after(stepID(StepNetwork, ""))})
		}
		if !st.Joined || needInstance {
			if exists {
				p.poolChange(n).joined = append(p.poolChange(n).joined, n.Name)
			} else if st.Joined && n.Role == clouds.RoleWorker {
				// kubeadm join refuses a name whose Node is still Ready
				// (kubernetes cmd/kubeadm/app/cmd/phases/join/kubelet.go:
				// "a Node with name ... and status "Ready" already exists"),
				// and a kubelet stopped moments ago still reads Ready: the
				// old Node goes first. (A control-plane node's goes with its
				// etcd member: replacedControlPlane.)
				p.add(Step{ID: stepID(StepRemove, n.Name), Kind: StepRemove, Node: n.Name, Pool: n.Pool})
				p.poolChange(n).gone = append(p.poolChange(n).gone, n.Name)
				p.out.replaced = append(p.out.replaced, Replacement{Node: n.Name, New: n.Name, Pool: n.Pool, Reason: "its instance is gone"})
			} else {
				p.poolChange(n).created = append(p.poolChange(n).created, n.Name)
			}
			if n.Name != first.Name {
				p.joining = append(p.joining, n.Name)
			}
		}
		if !st.Ready {
			p.notReady = append(p.notReady, n.Name)
		}
	}
}

// controlPlane bootstraps the first control-plane node, or reads it back for
// its join credentials when any other node must join.
func (p *planner) controlPlane() {
	first := p.desired[0]
	firstNew := slices.Contains(p.changes[first.Pool].namesOrNil(), first.Name)
	if firstNew || len(p.joining) > 0 || len(p.reps) > 0 || len(p.upgrading) > 0 {
		p.bootstrapID = stepID(StepBootstrap, first.Name)
		p.add(Step{ID: p.bootstrapID, Kind: StepBootstrap, Node: first.Name, Pool: first.Pool, After: p.after(stepID(StepInstance, first.Name), p.initTargetID)})
	}
}

func (p *planner) joins() {
	prevCP := p.replacedControlPlane()
	for _, name := range p.joining {
		n := nodeByName(p.desired, name)
		deps := p.after(p.bootstrapID, p.upgradeID, stepID(StepInstance, name), stepID(StepRemove, name))
		if n.Role == clouds.RoleControlPlane {
			// Control-plane nodes join one at a time: each adds an etcd member.
			for _, d := range p.after(prevCP) {
				if !slices.Contains(deps, d) { // a replaced member's own removal is already there
					deps = append(deps, d)
				}
			}
			prevCP = stepID(StepJoin, name)
		}
		id := stepID(StepJoin, name)
		p.add(Step{ID: id, Kind: StepJoin, Node: name, Pool: n.Pool, After: deps})
		p.joinIDs = append(p.joinIDs, id)
	}
}

// replacedControlPlane plans, for each control-plane node other than the
// first whose instance is gone while its Node remains (terminated out of
// band), the removal of its etcd member and Node through the running
// control plane, one at a time, before any control-plane node joins: a
// dead member would otherwise count against etcd's quorum. It returns the
// last removal step, "" when none.
func (p *planner) replacedControlPlane() string {
	prev := ""
	for _, n := range p.desired[1:] {
		if n.Role != clouds.RoleControlPlane || !p.observed.Nodes[n.Name].Joined || !p.instancePlanned(n.Name) {
			continue
		}
		if in, ok := p.observed.Instance(n.Name); ok && in.State == clouds.StateRunning {
			continue
		}
		id := stepID(StepRemove, n.Name)
		p.add(Step{ID: id, Kind: StepRemove, Node: n.Name, Pool: n.Pool, After: p.after(p.bootstrapID, prev)})
		p.say("~ replace %s: its instance is gone; remove its etcd member and Node, then join a new instance", n.Name)
		prev = id
	}
	return prev
}

func (p *planner) addonsAndReady() {
	addonsID := ""
	if p.bootstrapID != "" {
		addonsID = stepID(StepAddons, "")
		p.add(Step{ID: addonsID, Kind: StepAddons, After: []string{p.bootstrapID}})
	}
	if len(p.notReady) > 0 || p.bootstrapID != "" {
		p.readyID = stepID(StepReady, "")
		deps := append(slices.Clone(p.joinIDs), p.readyIDs...)
		deps = append(deps, p.after(p.upgradeID)...)
		p.add(Step{ID: p.readyID, Kind: StepReady, After: append(deps, p.after(addonsID, p.bootstrapID)...)})
	}
}

func (p *planner) summarizeAdditions() {
	for _, pool := range p.poolOrder {
		c := p.changes[pool]
		n := nodeByName(p.desired, firstOf(c.created, append(slices.Clone(c.joined), c.gone...)))
		if len(c.created) > 0 {
			what := "nodes"
			if len(c.created) == 1 {
				what = "node"
			}
			where := fmt.Sprintf("in pool %q", pool)
			if pool == clouds.ControlPlanePool {
				where = "in the control plane"
			}
			p.say("+ %d %s %s %s (%s)", len(c.created), n.describe(), what, where, nameRange(c.created))
		}
		for _, name := range c.joined {
			p.say("~ finish %s: the instance exists, the node has not joined", name)
		}
		for _, name := range c.gone {
			p.say("~ replace %s (%s): its instance is gone", name, nodeByName(p.desired, name).describe())
		}
	}
}

// removals drains and deletes nodes no longer wanted, one at a time per
// pool, highest ordinal first, after every new node is Ready.
func (p *planner) removals() error {
	byPool := map[string][]clouds.Instance{}
	replaced := map[string]bool{}
	for _, rep := range p.reps {
		replaced[rep.old.Name] = true
	}
	for _, in := range p.observed.Instances {
		if p.wanted[in.Name] || replaced[in.Name] || in.State == clouds.StateDeleting {
			continue
		}
		if p.repairOnly && in.Role != clouds.RoleControlPlane {
			continue
		}
		if in.Role == clouds.RoleControlPlane || in.Pool == clouds.ControlPlanePool {
			return fmt.Errorf("control_plane.count: shrinking the control plane would remove %s, which the plan does not do (etcd membership); fix: keep control_plane.count at its current value, or replace the cluster", in.Name)
		}
		byPool[in.Pool] = append(byPool[in.Pool], in)
	}
	for _, pool := range slices.Sorted(maps.Keys(byPool)) {
		ins := byPool[pool]
		slices.SortFunc(ins, func(a, b clouds.Instance) int {
			return cmp.Or(cmp.Compare(ordinalOf(b.Name), ordinalOf(a.Name)), cmp.Compare(a.Name, b.Name))
		})
		_, poolKept := p.spec.NodePools[pool]
		prev := p.readyID
		for _, in := range ins {
			prev = p.removal(pool, in, prev, poolKept)
		}
	}
	return nil
}

// removal plans one node's drain (when it joined), delete and removal from
// Kubernetes after step prev, and returns its delete step.
func (p *planner) removal(pool string, in clouds.Instance, prev string, poolKept bool) string {
	joined := p.observed.Nodes[in.Name].Joined
	deleteAfter := p.after(prev)
	line := "- delete " + in.Name
	// A stopped instance serves nothing: its pods could not leave, so no drain.
	if joined && in.State == clouds.StateRunning {
		id := stepID(StepDrain, in.Name)
		p.add(Step{ID: id, Kind: StepDrain, Node: in.Name, Pool: pool, After: p.after(prev)})
		deleteAfter = []string{id}
		line = "- drain and delete " + in.Name
	}
	del := stepID(StepDelete, in.Name)
	p.add(Step{ID: del, Kind: StepDelete, Node: in.Name, Pool: pool, After: deleteAfter})
	if joined {
		p.add(Step{ID: stepID(StepRemove, in.Name), Kind: StepRemove, Node: in.Name, Pool: pool, After: []string{del}})
	}
	if !poolKept {
		line += fmt.Sprintf(" (pool %q removed)", pool)
	}
	p.say("%s", line)
	return del
}

func (c *change) namesOrNil() []string {
	if c == nil {
		return nil
	}
	return slices.Concat(c.created, c.joined, c.gone)
}

func nodeByName(nodes []Node, name string) Node {
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	return Node{}
}

func firstOf(a, b []string) string {
	if len(a) > 0 {
		return a[0]
	}
	return b[0]
}

// nameRange shortens a run of consecutive ordinals: "demo-win-0 .. demo-win-2".
func nameRange(names []string) string {
	consecutive := len(names) > 2
	for i := 1; i < len(names) && consecutive; i++ {
		consecutive = ordinalOf(names[i]) == ordinalOf(names[i-1])+1
	}
	if !consecutive {
		return strings.Join(names, ", ")
	}
	return names[0] + " .. " + names[len(names)-1]
}

func nameList(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more nodes", strings.Join(names[:3], ", "), len(names)-3)
}
