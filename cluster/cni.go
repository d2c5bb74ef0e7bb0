package cluster

import (
	"context"
	"fmt"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// cniReader is a Provisioner that reads which CNI a running cluster has;
// Observe records it when the provisioner has one.
type cniReader interface {
	// CNI returns the pod network the cluster runs, and "" when it has
	// none yet or its API server cannot be reached.
	CNI(ctx context.Context, spec Spec, instances []clouds.Instance) (CNI, error)
}

// checkCNI refuses, at plan time, a network.cni other than the one the
// cluster runs: the CNI is installed once, when the cluster is created,
// and moving to another would rebuild every node's pod addresses, routes
// and HNS networks under running pods, which nothing here does.
func (p *planner) checkCNI() error {
	running := p.observed.CNI
	if running == "" || running == p.spec.Network.CNI {
		return nil
	}
	return fmt.Errorf("network.cni: cluster %q runs %s, and switching a running cluster to %s would need an in-place CNI migration, which is not supported; fix: keep network.cni = %q, or make a new cluster with %s and move the workloads to it",
		p.spec.Name, running, p.spec.Network.CNI, running, p.spec.Network.CNI)
}
