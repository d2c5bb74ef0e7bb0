package cluster

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// replacement is one worker node the plan replaces by a new one, and why.
type replacement struct {
	old    clouds.Instance
	node   Node // what takes its place: a new name, or the old one once it is deleted
	reason string
	// repair: the old node serves nothing (its instance is stopped, or it
	// has been NotReady too long), so it is deleted without a drain and
	// without waiting for its replacement.
	repair bool
	// surge: the new node is made and Ready before the old one is drained;
	// otherwise the old one goes first (max_unavailable).
	surge bool
	// after is the index of the replacement before it in its lane, or -1:
	// a pool has max_surge + max_unavailable lanes, each one node at a time.
	after int
}

// desiredNodes are the nodes the plan converges to: the control plane from
// the spec, and each pool's nodes from what runs. A pool keeps its current
// nodes, scaled to count; new nodes take the lowest free ordinals; an
// outdated node's replacement takes a surge ordinal or, in a lane that
// already deleted a node, that node's name.
func (p *planner) desiredNodes() []Node {
	var out []Node
	for _, n := range p.spec.Nodes() {
		if n.Role == clouds.RoleControlPlane {
			out = append(out, n)
		}
	}
	p.replacing = map[string]*replacement{}
	for _, pool := range slices.Sorted(maps.Keys(p.spec.NodePools)) {
		out = append(out, p.poolNodes(pool, p.spec.NodePools[pool])...)
	}
	return out
}

// poolNode is the node a pool's spec asks for at an ordinal.
func (p *planner) poolNode(pool string, ps PoolSpec, ordinal int) Node {
	return workerNode(p.spec.Name, pool, ps, ordinal)
}

func (p *planner) poolNodes(pool string, ps PoolSpec) []Node {
	var members []clouds.Instance
	for _, in := range p.observed.Instances {
		if in.Pool == pool && in.Role != clouds.RoleControlPlane && in.State != clouds.StateDeleting && ordinalOf(in.Name) >= 0 {
			members = append(members, in)
		}
	}
	slices.SortFunc(members, func(a, b clouds.Instance) int {
		return cmp.Or(cmp.Compare(ordinalOf(a.Name), ordinalOf(b.Name)), cmp.Compare(a.Name, b.Name))
	})
	used := map[int]bool{}
	reasons := map[string]string{}
	repairs := map[string]bool{}
	for _, in := range members {
		used[ordinalOf(in.Name)] = true
		reasons[in.Name], repairs[in.Name] = p.outdated(ps, in)
		if p.repairOnly && !repairs[in.Name] {
			reasons[in.Name] = ""
		}
	}
	// Scaling down takes outdated nodes first, then the highest ordinals.
	kept := members
	if excess := len(members) - ps.Count; excess > 0 && !p.repairOnly {
		order := slices.Clone(members)
		slices.SortStableFunc(order, func(a, b clouds.Instance) int {
			if ao, bo := reasons[a.Name] != "", reasons[b.Name] != ""; ao != bo {
				if ao {
					return -1
				}
				return 1
			}
			return cmp.Compare(ordinalOf(b.Name), ordinalOf(a.Name))
		})
		dropped := map[string]bool{}
		for _, in := range order[:excess] {
			dropped[in.Name] = true
		}
		kept = slices.DeleteFunc(slices.Clone(members), func(in clouds.Instance) bool { return dropped[in.Name] })
	}
	free := func() int {
		for i := 0; ; i++ {
			if !used[i] {
				used[i] = true
				return i
			}
		}
	}
	var out []Node
	var rolls []*replacement
	for _, in := range kept {
		ord := ordinalOf(in.Name)
		switch {
		case reasons[in.Name] == "":
			out = append(out, p.poolNode(pool, ps, ord))
		case repairs[in.Name]:
			// Deleted first, so the new node takes its name.
			rep := &replacement{old: in, node: p.poolNode(pool, ps, ord), reason: reasons[in.Name], repair: true, after: -1}
			p.reps = append(p.reps, rep)
			p.replacing[rep.node.Name] = rep
			out = append(out, rep.node)
		default:
			rolls = append(rolls, &replacement{old: in, reason: reasons[in.Name], after: -1})
		}
	}
	missing := ps.Count - len(kept)
	if p.repairOnly {
		missing = min(missing, p.goneIn(pool, used))
	}
	for range max(missing, 0) {
		out = append(out, p.poolNode(pool, ps, free()))
	}
	surge, unavailable := ps.Surge()
	lanes := max(surge+unavailable, 1)
	for i, rep := range rolls {
		lane := i % lanes
		rep.surge = lane < surge
		ord := ordinalOf(rep.old.Name)
		if i >= lanes {
			rep.after = i - lanes
		}
		if rep.surge {
			if rep.after < 0 {
				ord = free()
			} else {
				// The lane's previous old node is deleted before this node is made.
				ord = ordinalOf(rolls[rep.after].old.Name)
			}
		}
		rep.node = p.poolNode(pool, ps, ord)
		p.replacing[rep.node.Name] = rep
		out = append(out, rep.node)
	}
	base := len(p.reps)
	for _, rep := range rolls {
		if rep.after >= 0 {
			rep.after += base
		}
		p.reps = append(p.reps, rep)
	}
	slices.SortFunc(out, func(a, b Node) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
	return out
}

// goneIn counts the pool's Node objects whose instance is gone and whose
// ordinal is free: Repair makes as many nodes again.
func (p *planner) goneIn(pool string, used map[int]bool) int {
	n := 0
	for name, st := range p.observed.Nodes {
		ord := ordinalOf(name)
		if st.Joined && ord >= 0 && !used[ord] && name == NodeName(p.spec.Name, pool, ord) {
			n++
		}
	}
	return n
}

// outdated says why a running worker must be replaced, and whether that is
// a repair (nothing to drain); "" when it matches its pool. A value the
// cloud does not report is not compared, and an image left to the cloud's
// default is not compared either: the default moves with the cloud's
// releases, and a node is not replaced for that.
func (p *planner) outdated(ps PoolSpec, in clouds.Instance) (string, bool) {
	switch in.State {
	case clouds.StateStopped, clouds.StateStopping:
		return "its instance is " + in.State, true
	}
	st := p.observed.Nodes[in.Name]
	if d, err := time.ParseDuration(ps.ReplaceNotReadyAfter); err == nil && d > 0 && st.Joined && !st.Ready && !st.Since.IsZero() && !p.observed.At.IsZero() {
		if late := p.observed.At.Sub(st.Since); late > d {
			return fmt.Sprintf("NotReady for %s, longer than replace_not_ready_after = %q", late.Round(time.Second), ps.ReplaceNotReadyAfter), true
		}
	}
	var why []string
	if in.OS != "" && in.OS != string(ps.OS) {
		why = append(why, fmt.Sprintf("os %s -> %s", in.OS, ps.OS))
	}
	if in.InstanceType != "" && !strings.EqualFold(in.InstanceType, ps.InstanceType) {
		why = append(why, fmt.Sprintf("instance_type %s -> %s", in.InstanceType, ps.InstanceType))
	}
	if ps.OS == Windows && in.WindowsVersion != "" && in.WindowsVersion != ps.WindowsVersion {
		why = append(why, fmt.Sprintf("windows_version %s -> %s", in.WindowsVersion, ps.WindowsVersion))
	}
	if in.DiskGB != 0 && in.DiskGB != ps.DiskGB {
		why = append(why, fmt.Sprintf("disk_gb %d -> %d", in.DiskGB, ps.DiskGB))
	}
	if ps.Image != "" && in.Image != "" && in.Image != ps.Image {
		why = append(why, fmt.Sprintf("image %s -> %s", in.Image, ps.Image))
	}
	// A worker moves to a new release by replacement, after the control plane.
	if kv := st.KubeletVersion; st.Joined && kv != "" && !sameRelease(kv, p.spec.KubernetesVersion) {
		why = append(why, fmt.Sprintf("kubernetes_version %s -> %s", strings.TrimPrefix(kv, "v"), p.spec.KubernetesVersion))
	}
	return strings.Join(why, ", "), false
}

// replacements plans each replacement's steps. A surge lane makes the new
// node, waits for it to be Ready, then drains, deletes and removes the old
// one; an unavailable lane and a repair take the old one away first. The
// next replacement of a lane starts when the one before it is done.
func (p *planner) replacements() {
	done := make([]string, len(p.reps))
	byPool := map[string][]string{}
	for i, rep := range p.reps {
		n, old := rep.node, rep.old
		joined := p.observed.Nodes[old.Name].Joined
		var prev string
		if rep.after >= 0 {
			prev = done[rep.after]
		}
		inst, join, ready := stepID(StepInstance, n.Name), stepID(StepJoin, n.Name), stepID(StepReady, n.Name)
		drain, del, remove := stepID(StepDrain, old.Name), stepID(StepDelete, old.Name), stepID(StepRemove, old.Name)
		takeAway := func(after ...string) string {
			deps := nonEmpty(after...)
			if joined && !rep.repair {
				p.add(Step{ID: drain, Kind: StepDrain, Node: old.Name, Pool: old.Pool, After: deps})
				deps = []string{drain}
			}
			p.add(Step{ID: del, Kind: StepDelete, Node: old.Name, Pool: old.Pool, After: deps})
			if !joined {
				return del
			}
			p.add(Step{ID: remove, Kind: StepRemove, Node: old.Name, Pool: old.Pool, After: []string{del}})
			return remove
		}
		bringUp := func(after ...string) {
			p.add(Step{ID: inst, Kind: StepInstance, Node: n.Name, Pool: n.Pool, After: append(p.after(stepID(StepNetwork, "")), nonEmpty(after...)...)})
			p.add(Step{ID: join, Kind: StepJoin, Node: n.Name, Pool: n.Pool, After: append(p.after(p.bootstrapID, p.upgradeID), inst)})
			p.add(Step{ID: ready, Kind: StepReady, Node: n.Name, Pool: n.Pool, After: []string{join}})
			p.readyIDs = append(p.readyIDs, ready)
		}
		if rep.surge {
			bringUp(prev)
			done[i] = takeAway(ready)
		} else {
			gone := takeAway(prev)
			bringUp(gone)
			done[i] = ready
		}
		line := "~ replace " + old.Name
		if n.Name != old.Name {
			line += " with " + n.Name
		}
		byPool[n.Pool] = append(byPool[n.Pool], fmt.Sprintf("%s (%s): %s", line, n.describe(), rep.reason))
		p.out.replaced = append(p.out.replaced, Replacement{Node: old.Name, New: n.Name, Pool: n.Pool, Reason: rep.reason})
	}
	for _, pool := range slices.Sorted(maps.Keys(byPool)) {
		ps := p.spec.NodePools[pool]
		surge, unavailable := ps.Surge()
		lines := byPool[pool]
		what := "nodes"
		if len(lines) == 1 {
			what = "node"
		}
		p.say("~ pool %q: replace %d %s (max_surge %d, max_unavailable %d; a repair does not wait)", pool, len(lines), what, surge, unavailable)
		for _, l := range lines {
			p.say("  %s", l)
		}
	}
}

func nonEmpty(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// Replacement is one node a plan replaces, and why.
type Replacement struct {
	// Node is replaced by New (the same name when the old one goes first).
	Node, New string
	Pool      string
	Reason    string
}

// Replacements lists the nodes the plan replaces, and why.
func (p Changes) Replacements() []Replacement { return slices.Clone(p.replaced) }
