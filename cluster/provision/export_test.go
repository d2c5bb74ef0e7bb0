package provision

import (
	"context"

	"k8s.io/client-go/kubernetes"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// SecretCA is the secret-store name of the cluster CA: its certificate, then its key, in PEM.
const SecretCA = secretCA

// JoinToken creates a join token through the API server of the cluster
// whose first control-plane node t is, as Bootstrap does after init.
func JoinToken(ctx context.Context, p *Provisioner, t cluster.Target) (string, error) {
	return p.joinToken(ctx, t)
}

// AwaitAfterReboot waits for t's agent after a reboot, as Join does.
func AwaitAfterReboot(ctx context.Context, p *Provisioner, t cluster.Target) (contract.Status, error) {
	return p.awaitAfterReboot(ctx, t)
}

// UseKubernetes makes p use cs for every cluster's API instead of reaching
// an API server, for tests whose nodes have no control plane.
func UseKubernetes(p *Provisioner, cs func(cluster string) kubernetes.Interface) {
	p.testKube = cs
}
