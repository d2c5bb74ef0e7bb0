package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// failingProvisioner fails every step call with errStep; the rest of the
// interface is not used by the step actions.
type failingProvisioner struct{ Provisioner }

var errStep = errors.New("boom")

func (failingProvisioner) Bootstrap(context.Context, Target) (JoinInfo, error) {
	return JoinInfo{}, errStep
}
func (failingProvisioner) Join(context.Context, Target, JoinInfo) error    { return errStep }
func (failingProvisioner) Addons(context.Context, Spec, JoinInfo) error    { return errStep }
func (failingProvisioner) WaitReady(context.Context, Spec, []string) error { return errStep }
func (failingProvisioner) Drain(context.Context, Spec, string) error       { return errStep }
func (failingProvisioner) Remove(context.Context, Spec, string) error      { return errStep }

// Each step kind's action, alone: what it needs from the run and how its
// failure reads (object, action), with the cause kept for errors.Is.
func TestStepActions(t *testing.T) {
	spec := Spec{Name: "demo", ControlPlane: ControlPlaneSpec{Count: 1},
		NodePools: map[string]PoolSpec{"win": {OS: Windows, WindowsVersion: "2022", Count: 1}}}
	cp, win := NodeName("demo", clouds.ControlPlanePool, 0), NodeName("demo", "win", 0)
	withInstances := func(r *run) {
		r.instances[cp] = clouds.Instance{ID: "i-cp", Name: cp}
		r.instances[win] = clouds.Instance{ID: "i-win", Name: win}
	}
	withJoin := func(r *run) { withInstances(r); r.join = &JoinInfo{} }
	for _, tc := range []struct {
		step    Step
		setup   func(*run)
		wantErr string // "" means success
		wantIs  error
	}{
		{Step{Kind: StepBootstrap, Node: cp}, withInstances, "failed to bootstrap the control plane on " + cp, errStep},
		{Step{Kind: StepBootstrap, Node: cp}, nil, "node " + cp + " has no instance yet", nil},
		{Step{Kind: StepJoin, Node: win, Pool: "win"}, withJoin, `failed to join ` + win + ` (pool "win") to the cluster`, errStep},
		{Step{Kind: StepJoin, Node: win, Pool: "win"}, withInstances, "has not been bootstrapped in this run", nil},
		{Step{Kind: StepJoin, Node: "demo-gone-0"}, withJoin, "node demo-gone-0 is not in the spec", nil},
		{Step{Kind: StepAddons}, withJoin, "failed to install the cluster add-ons", errStep},
		{Step{Kind: StepAddons}, nil, "has not been bootstrapped in this run", nil},
		{Step{Kind: StepReady}, nil, "failed waiting for the nodes to become Ready", errStep},
		{Step{Kind: StepDrain, Node: win}, nil, "failed to drain " + win, errStep},
		{Step{Kind: StepRemove, Node: win}, nil, "failed to remove node " + win + " from Kubernetes", errStep},
		// An instance already gone is deleted: no cloud call (the run has no cloud).
		{Step{Kind: StepDelete, Node: win}, nil, "", nil},
		{Step{ID: "warp/x", Kind: "warp"}, nil, `step warp/x: unknown kind "warp"`, nil},
		{Step{Kind: StepRotate, Node: win}, withInstances, "the provisioner cannot rotate node identities; fix: keep secrets_epoch", nil},
	} {
		t.Run(string(tc.step.Kind)+"/"+tc.wantErr, func(t *testing.T) {
			r := newRun(spec.WithDefaults(), Observed{}, nil, Options{Provisioner: failingProvisioner{}})
			if tc.setup != nil {
				tc.setup(r)
			}
			err := r.action(tc.step)(t.Context())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("want an error with %q, got %v", tc.wantErr, err)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Fatalf("the cause is lost: %v", err)
			}
		})
	}
}

// Every step kind Plan can produce has its action.
func TestEveryStepKindHasAnAction(t *testing.T) {
	for _, k := range []StepKind{StepNetwork, StepInstance, StepBootstrap, StepJoin, StepAddons, StepReady, StepDrain, StepDelete, StepRemove, StepRotate} {
		if stepActions[k] == nil {
			t.Errorf("step kind %q has no action", k)
		}
	}
}
