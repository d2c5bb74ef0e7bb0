package cluster

import (
	"context"
	"fmt"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// identityRotator is a Provisioner whose node identities rotate when
// Spec.SecretsEpoch grows; Observe reads the epochs and Plan rotates them
// when the provisioner is one.
type identityRotator interface {
	// SecretsEpochs returns, by node name, the secrets epoch of the
	// identity each running instance holds when it is below
	// spec.SecretsEpoch; nodes at the spec's epoch, and nodes that hold no
	// lasting identity yet (their join installs the spec's), are absent.
	SecretsEpochs(ctx context.Context, spec Spec, instances []clouds.Instance) (map[string]int, error)
	// Rotate installs the identity of the spec's secrets epoch on a node
	// over a connection that pinned the identity it holds, and pins the
	// new one only once the node shows it.
	Rotate(ctx context.Context, t Target) error
}

// rotations plans, for each wanted node whose running instance holds an
// identity of an older secrets epoch and that this plan does not already
// make, join or replace, the rotation of its identity in place: one node
// at a time, after the plan's new nodes are Ready.
func (p *planner) rotations() {
	if p.repairOnly || len(p.observed.SecretsEpochs) == 0 {
		return
	}
	replaced := map[string]bool{}
	for _, rep := range p.reps {
		replaced[rep.old.Name] = true
	}
	prev := p.readyID
	for _, n := range p.desired {
		held, ok := p.observed.SecretsEpochs[n.Name]
		if !ok || held >= p.spec.SecretsEpoch || replaced[n.Name] || p.replacing[n.Name] != nil || p.instancePlanned(n.Name) || len(p.after(stepID(StepJoin, n.Name))) > 0 {
			continue
		}
		if in, ok := p.observed.Instance(n.Name); !ok || in.State != clouds.StateRunning {
			continue
		}
		id := stepID(StepRotate, n.Name)
		p.add(Step{ID: id, Kind: StepRotate, Node: n.Name, Pool: n.Pool, After: p.after(prev)})
		prev = id
		what := "SSH host key"
		if n.OS == Windows {
			what = "WinRM certificate and admin password"
		}
		p.rotateLines = append(p.rotateLines, fmt.Sprintf("~ rotate %s's %s in place: secrets_epoch %d -> %d", n.Name, what, held, p.spec.SecretsEpoch))
	}
}

// rotate installs the spec's secrets epoch's identity on the step's node.
func (r *run) rotate(ctx context.Context, s Step) error {
	rot, ok := r.opts.Provisioner.(identityRotator)
	if !ok {
		return fmt.Errorf("rotate the identity of %s: the provisioner cannot rotate node identities; fix: keep secrets_epoch at the epoch the nodes hold", s.Node)
	}
	t, err := r.target(s.Node)
	if err != nil {
		return err
	}
	if err := rot.Rotate(ctx, t); err != nil {
		return fmt.Errorf("failed to rotate the identity of %s to secrets_epoch %d: %w", s.Node, r.spec.SecretsEpoch, err)
	}
	return nil
}
