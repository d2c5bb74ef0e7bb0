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
}

// change is what happens to one pool's nodes, for the summary.
type change struct {
	created []string
	joined  []string
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
func Plan(spec Spec, observed Observed) (Changes, error) {
	spec = spec.WithDefaults()
	p := Changes{Cluster: spec.Name}
	if spec.ControlPlane.Count < 1 {
		return Changes{}, fmt.Errorf("control_plane.count: %d; fix: run Validate first, the control plane needs 1, 3 or 5 nodes", spec.ControlPlane.Count)
	}
	add := func(s Step) { p.Steps = append(p.Steps, s) }
	after := func(ids ...string) []string {
		var out []string
		for _, id := range ids {
			if id != "" && slices.ContainsFunc(p.Steps, func(s Step) bool { return s.ID == id }) {
				out = append(out, id)
			}
		}
		return out
	}

	if observed.Network == nil {
		add(Step{ID: stepID(StepNetwork, ""), Kind: StepNetwork})
		p.summary = append(p.summary, fmt.Sprintf("+ network, subnet and firewall rules for cluster %q", spec.Name))
	}

	desired := spec.Nodes()
	wanted := make(map[string]bool, len(desired))
	changes := map[string]*change{}
	poolOrder := []string{}
	note := func(n Node) *change {
		c, ok := changes[n.Pool]
		if !ok {
			c = &change{}
			changes[n.Pool] = c
			poolOrder = append(poolOrder, n.Pool)
		}
		return c
	}

	var joins []string
	var notReady []string
	bootstrapID := ""
	first := desired[0] // Validate guarantees at least one control-plane node.
	for _, n := range desired {
		wanted[n.Name] = true
		in, exists := observed.Instance(n.Name)
		st := observed.Nodes[n.Name]
		needInstance := !exists || in.State != clouds.StateRunning
		if needInstance {
			add(Step{ID: stepID(StepInstance, n.Name), Kind: StepInstance, Node: n.Name, Pool: n.Pool, After: after(stepID(StepNetwork, ""))})
		}
		if !st.Joined || needInstance {
			if exists {
				note(n).joined = append(note(n).joined, n.Name)
			} else {
				note(n).created = append(note(n).created, n.Name)
			}
			if n.Name != first.Name {
				joins = append(joins, n.Name)
			}
		}
		if !st.Ready {
			notReady = append(notReady, n.Name)
		}
	}

	// The first control-plane node is bootstrapped, or read back for its join
	// credentials when any other node must join.
	firstNew := slices.Contains(changes[first.Pool].namesOrNil(), first.Name)
	if firstNew || len(joins) > 0 {
		bootstrapID = stepID(StepBootstrap, first.Name)
		add(Step{ID: bootstrapID, Kind: StepBootstrap, Node: first.Name, Pool: first.Pool, After: after(stepID(StepInstance, first.Name))})
	}
	var joinIDs []string
	prevCP := ""
	for _, name := range joins {
		n := nodeByName(desired, name)
		deps := after(bootstrapID, stepID(StepInstance, name))
		if n.Role == clouds.RoleControlPlane {
			// Control-plane nodes join one at a time: each adds an etcd member.
			deps = append(deps, after(prevCP)...)
			prevCP = stepID(StepJoin, name)
		}
		id := stepID(StepJoin, name)
		add(Step{ID: id, Kind: StepJoin, Node: name, Pool: n.Pool, After: deps})
		joinIDs = append(joinIDs, id)
	}
	addonsID := ""
	if bootstrapID != "" {
		addonsID = stepID(StepAddons, "")
		add(Step{ID: addonsID, Kind: StepAddons, After: []string{bootstrapID}})
	}
	readyID := ""
	if len(notReady) > 0 || bootstrapID != "" {
		readyID = stepID(StepReady, "")
		add(Step{ID: readyID, Kind: StepReady, After: append(slices.Clone(joinIDs), after(addonsID, bootstrapID)...)})
	}

	for _, pool := range poolOrder {
		c := changes[pool]
		n := nodeByName(desired, firstOf(c.created, c.joined))
		if len(c.created) > 0 {
			what := "nodes"
			if len(c.created) == 1 {
				what = "node"
			}
			where := fmt.Sprintf("in pool %q", pool)
			if pool == clouds.ControlPlanePool {
				where = "in the control plane"
			}
			p.summary = append(p.summary, fmt.Sprintf("+ %d %s %s %s (%s)", len(c.created), n.describe(), what, where, nameRange(c.created)))
		}
		for _, name := range c.joined {
			p.summary = append(p.summary, fmt.Sprintf("~ finish %s: the instance exists, the node has not joined", name))
		}
	}

	// Nodes no longer wanted: drained and deleted one at a time per pool,
	// highest ordinal first, after every new node is Ready.
	byPool := map[string][]clouds.Instance{}
	for _, in := range observed.Instances {
		if wanted[in.Name] || in.State == clouds.StateDeleting {
			continue
		}
		if in.Role == clouds.RoleControlPlane || in.Pool == clouds.ControlPlanePool {
			return Changes{}, fmt.Errorf("control_plane.count: shrinking the control plane would remove %s, which the plan does not do (etcd membership); fix: keep control_plane.count at its current value, or replace the cluster", in.Name)
		}
		byPool[in.Pool] = append(byPool[in.Pool], in)
	}
	for _, pool := range slices.Sorted(maps.Keys(byPool)) {
		ins := byPool[pool]
		slices.SortFunc(ins, func(a, b clouds.Instance) int {
			return cmp.Or(cmp.Compare(ordinalOf(b.Name), ordinalOf(a.Name)), cmp.Compare(a.Name, b.Name))
		})
		_, poolKept := spec.NodePools[pool]
		prev := readyID
		for _, in := range ins {
			st := observed.Nodes[in.Name]
			deleteAfter := after(prev)
			line := "- delete " + in.Name
			if st.Joined {
				id := stepID(StepDrain, in.Name)
				add(Step{ID: id, Kind: StepDrain, Node: in.Name, Pool: pool, After: after(prev)})
				deleteAfter = []string{id}
				line = "- drain and delete " + in.Name
			}
			del := stepID(StepDelete, in.Name)
			add(Step{ID: del, Kind: StepDelete, Node: in.Name, Pool: pool, After: deleteAfter})
			prev = del
			if st.Joined {
				add(Step{ID: stepID(StepRemove, in.Name), Kind: StepRemove, Node: in.Name, Pool: pool, After: []string{del}})
			}
			if !poolKept {
				line += fmt.Sprintf(" (pool %q removed)", pool)
			}
			p.summary = append(p.summary, line)
		}
	}
	if len(p.summary) == 0 && readyID != "" {
		p.summary = append(p.summary, fmt.Sprintf("~ wait for %s to become Ready", nameList(notReady)))
	}
	return p, nil
}

func (c *change) namesOrNil() []string {
	if c == nil {
		return nil
	}
	return append(slices.Clone(c.created), c.joined...)
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
