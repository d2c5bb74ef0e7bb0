package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// preflightRequest says what the planned changes need of the cloud.
func preflightRequest(spec Spec, changes Changes) clouds.PreflightRequest {
	req := clouds.PreflightRequest{Cluster: spec.Name, PodCIDR: spec.Network.PodCIDR, ServiceCIDR: spec.Network.ServiceCIDR}
	for _, s := range changes.Steps {
		switch s.Kind {
		case StepNetwork:
			req.Network = true
		case StepInstance:
			req.Instances = true
		case StepDelete:
			req.Deletes = true
		case StepLoadBalancer:
			req.LoadBalancer = true
		}
		switch s.Kind {
		case StepNetwork, StepInstance, StepBootstrap, StepJoin, StepAddons:
			// Node identities, the CA and the join tokens live in the cloud's secret store.
			req.Secrets = true
		}
	}
	return req
}

// preflight asks the cloud, with read-only calls, whether the changes can
// succeed as configured, before the first mutating call. A refusal stops
// the apply; a check that could not tell is reported and the apply goes
// on, so the cloud's own answer to the first call decides.
func (r *run) preflight(ctx context.Context, changes Changes) error {
	if _, ok := r.opts.Cloud.(clouds.Preflighter); !ok || changes.Empty() {
		return nil
	}
	const step = "preflight"
	start := time.Now()
	r.emit(Event{Kind: StepStarted, Step: step})
	err := clouds.Preflight(ctx, r.opts.Cloud, preflightRequest(r.spec, changes))
	if pe, ok := clouds.AsPreflightError(err); ok {
		r.emit(Event{Kind: StepFailed, Step: step, Err: pe.Error(), Elapsed: time.Since(start)})
		return fmt.Errorf("cluster %q cannot be applied as configured; nothing was created or changed: %w", r.spec.Name, pe)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	ev := Event{Kind: StepFinished, Step: step, Elapsed: time.Since(start)}
	if err != nil {
		ev.Err = "not every check could be made, the cloud will answer the changes themselves: " + err.Error()
	}
	r.emit(ev)
	return nil
}
