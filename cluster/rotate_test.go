package cluster_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

// A raised secrets_epoch plans one rotation per node holding an older
// epoch's identity, chained one node at a time, each with its reason; nodes
// at the epoch, nodes this plan makes anyway, and clusters at epoch 0
// plan nothing.
func TestPlanRotatesNodeIdentitiesWhenTheSecretsEpochRises(t *testing.T) {
	t.Parallel()
	spec := demoSpec()
	names := map[string]string{}
	for _, n := range spec.WithDefaults().Nodes() {
		names[n.Pool+"/"+n.Name[len(n.Name)-1:]] = n.Name
	}
	cp, lin0, lin1, win0, win1 := names[clouds.ControlPlanePool+"/0"], names["linux/0"], names["linux/1"], names["win/0"], names["win/1"]

	t.Run("epoch 0 plans nothing", func(t *testing.T) {
		t.Parallel()
		c, err := cluster.Plan(spec, converged(spec))
		if err != nil || !c.Empty() {
			t.Fatalf("Plan: %v, %v; want no changes", c, err)
		}
	})

	t.Run("a raised epoch rotates the nodes behind it, one at a time", func(t *testing.T) {
		t.Parallel()
		spec := spec
		spec.SecretsEpoch = 2
		o := converged(spec)
		// win1 already holds epoch 2 (a rotation cut short); lin1's instance is gone and is made anew.
		o.SecretsEpochs = map[string]int{cp: 0, lin0: 1, win0: 1}
		o.Instances = slices.DeleteFunc(o.Instances, func(in clouds.Instance) bool { return in.Name == lin1 })
		o.Nodes[lin1] = cluster.NodeStatus{}
		c, err := cluster.Plan(spec, o)
		if err != nil {
			t.Fatal(err)
		}
		var rotated []string
		after := stepAfter(c)
		prev := "ready"
		for _, s := range c.Steps {
			if s.Kind != cluster.StepRotate {
				continue
			}
			rotated = append(rotated, s.Node)
			if !slices.Equal(after[s.ID], []string{prev}) {
				t.Errorf("%s runs after %v, want after %s", s.ID, after[s.ID], prev)
			}
			prev = s.ID
		}
		if want := []string{cp, lin0, win0}; !slices.Equal(rotated, want) {
			t.Errorf("rotated %v, want %v (not %s, at epoch 2, nor %s, made at epoch 2)", rotated, want, win1, lin1)
		}
		for _, want := range []string{
			"~ rotate " + cp + "'s SSH host key in place: secrets_epoch 0 -> 2",
			"~ rotate " + lin0 + "'s SSH host key in place: secrets_epoch 1 -> 2",
			"~ rotate " + win0 + "'s WinRM certificate and admin password in place: secrets_epoch 1 -> 2",
		} {
			if !slices.Contains(c.Summary(), want) {
				t.Errorf("the summary lacks %q:\n%s", want, c)
			}
		}
		if add, remove := c.Counts(); add != 1 || remove != 0 {
			t.Errorf("Counts: +%d -%d, want +1 (%s) -0: a rotation neither adds nor removes", add, remove, lin1)
		}
	})

	t.Run("a rotation alone is a change with its reason", func(t *testing.T) {
		t.Parallel()
		spec := spec
		spec.SecretsEpoch = 1
		o := converged(spec)
		o.SecretsEpochs = map[string]int{cp: 0}
		c, err := cluster.Plan(spec, o)
		if err != nil || len(c.Steps) != 1 || c.Steps[0].Kind != cluster.StepRotate {
			t.Fatalf("Plan: %v, %v; want only %s's rotation", stepIDs(c), err, cp)
		}
		if !strings.Contains(c.String(), "secrets_epoch 0 -> 1") {
			t.Errorf("the summary gives no reason: %s", c)
		}
	})
}

// secrets_epoch is a count of rotations: below 0 or above the bound is
// refused with the field and the fix.
func TestValidateSecretsEpoch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		epoch int
		want  string
	}{
		{0, ""}, {1, ""}, {cluster.MaxSecretsEpoch, ""},
		{-1, "secrets_epoch: secrets_epoch is -1, below 0"},
		{cluster.MaxSecretsEpoch + 1, "raise secrets_epoch by 1 for each rotation"},
	} {
		spec := demoSpec()
		spec.SecretsEpoch = tc.epoch
		err := cluster.Validate(spec)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("epoch %d: %v", tc.epoch, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("epoch %d: %v, want %q", tc.epoch, err, tc.want)
		}
	}
}
