package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster/internal/pki"
)

// Observed is what exists of a cluster: read from the cloud by tag and from
// Kubernetes. Plan compares it with a Spec; Terraform's Read starts from it.
type Observed struct {
	// Network is nil when the cluster has none yet.
	Network *clouds.Network
	// Instances are the cluster's instances that are neither terminated nor shutting down.
	Instances []clouds.Instance
	// Nodes is the Kubernetes state by node name; nodes that never joined are absent.
	Nodes map[string]NodeStatus
	// Endpoint is nil until the control plane is bootstrapped.
	Endpoint *Endpoint
	// LoadBalancing: the cloud fronts the API servers with its own load
	// balancer (it implements clouds.LoadBalancers), so the plan makes one.
	LoadBalancing bool
	// LoadBalancer is the cluster's API load balancer; nil when it has none (yet).
	LoadBalancer *clouds.LoadBalancer
	// At is when the nodes were read: how long a node has been NotReady is
	// measured to it.
	At time.Time
	// ServerVersion is the API server's version ("v1.36.3"); empty when
	// the cluster has none, it cannot be reached, or the provisioner cannot tell.
	ServerVersion string
	// CNI is the pod network the cluster runs; empty when it has none yet,
	// it cannot be reached, or the provisioner cannot tell.
	CNI CNI
	// SecretsEpochs are, by node name, the secrets epochs of nodes whose
	// identity is older than the spec's (see Spec.SecretsEpoch); Plan rotates them.
	SecretsEpochs map[string]int
}

// Instance returns the observed instance of a node.
func (o Observed) Instance(name string) (clouds.Instance, bool) {
	for _, in := range o.Instances {
		if in.Name == name {
			return in, true
		}
	}
	return clouds.Instance{}, false
}

// Observe reads a cluster's state. Its cost does not grow with the number of
// nodes: one network lookup, one load balancer lookup (on a cloud that has
// them), one paged instance listing by tag and one node listing from
// Kubernetes; with a secrets_epoch above 0, also one secret-store read per
// node (more for a node still holding an older epoch's identity).
func Observe(ctx context.Context, spec Spec, opts Options) (Observed, error) {
	if err := opts.check(); err != nil {
		return Observed{}, err
	}
	spec = spec.WithDefaults()
	var o Observed
	n, ok, err := opts.Cloud.FindNetwork(ctx, spec.Name)
	if err != nil {
		return Observed{}, fmt.Errorf("failed to observe the network of cluster %q: %w", spec.Name, err)
	}
	if ok {
		o.Network = &n
	}
	if lbs, ok := opts.Cloud.(clouds.LoadBalancers); ok {
		o.LoadBalancing = true
		lb, found, err := lbs.FindLoadBalancer(ctx, spec.Name)
		if err != nil {
			return Observed{}, fmt.Errorf("failed to observe the API load balancer of cluster %q: %w", spec.Name, err)
		}
		if found {
			o.LoadBalancer = &lb
		}
	}
	all, err := opts.Cloud.Instances(ctx, spec.Name)
	if err != nil {
		return Observed{}, fmt.Errorf("failed to list the instances of cluster %q: %w", spec.Name, err)
	}
	// An instance already shutting down is gone as far as the cluster goes.
	for _, in := range all {
		if in.State != clouds.StateDeleting {
			o.Instances = append(o.Instances, in)
		}
	}
	if len(o.Instances) == 0 {
		return o, nil
	}
	o.At = time.Now()
	if o.Nodes, err = opts.Provisioner.Status(ctx, spec, o.Instances); err != nil {
		return Observed{}, fmt.Errorf("failed to read the node status of cluster %q: %w", spec.Name, err)
	}
	if sv, ok := opts.Provisioner.(serverVersioner); ok {
		if o.ServerVersion, err = sv.ServerVersion(ctx, spec, o.Instances); err != nil {
			return Observed{}, fmt.Errorf("failed to read the Kubernetes version of cluster %q: %w", spec.Name, err)
		}
	}
	if cr, ok := opts.Provisioner.(cniReader); ok {
		if o.CNI, err = cr.CNI(ctx, spec, o.Instances); err != nil {
			return Observed{}, fmt.Errorf("failed to read the pod network of cluster %q: %w", spec.Name, err)
		}
	}
	if rot, ok := opts.Provisioner.(identityRotator); ok && spec.SecretsEpoch > 0 {
		if o.SecretsEpochs, err = rot.SecretsEpochs(ctx, spec, o.Instances); err != nil {
			return Observed{}, fmt.Errorf("failed to read which secrets epoch the nodes of cluster %q hold: %w", spec.Name, err)
		}
	}
	ep, ok, err := opts.Provisioner.Endpoint(ctx, spec, o.Instances)
	if err != nil {
		return Observed{}, fmt.Errorf("failed to read the API endpoint of cluster %q: %w", spec.Name, err)
	}
	if ok {
		o.Endpoint = &ep
	}
	return o, nil
}

// Kubeconfig issues a cluster-admin kubeconfig for an existing cluster whose
// client certificate works for validity: short for a kubeconfig handed to
// one run, since a certificate cannot be revoked before it ends. It is a
// secret: write it owner-only and never log it.
func Kubeconfig(ctx context.Context, spec Spec, opts Options, validity time.Duration) ([]byte, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	spec = spec.WithDefaults()
	instances, err := opts.Cloud.Instances(ctx, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("failed to list the instances of cluster %q: %w", spec.Name, err)
	}
	kc, err := opts.Provisioner.AdminKubeconfig(ctx, spec, instances, validity)
	if err != nil {
		return nil, fmt.Errorf("failed to issue a kubeconfig for cluster %q: %w", spec.Name, err)
	}
	return kc, nil
}

// KubeconfigCredentials are the client certificate and key (PEM) of a
// kubeconfig that Kubeconfig issued, and when the certificate ends: what
// clients that take no kubeconfig file need, and when to renew.
type KubeconfigCredentials = pki.Credentials

// ReadKubeconfig returns the credentials of a kubeconfig that Kubeconfig issued.
func ReadKubeconfig(kubeconfig []byte) (KubeconfigCredentials, error) {
	return pki.KubeconfigCredentials(kubeconfig)
}
