package provider

import (
	"context"
	"fmt"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// Backend is the seam between the provider and whatever provisions: it
// builds the cluster.Options (a cloud and a provisioner) that one cluster's
// Apply, Observe, Kubeconfig and Destroy act through. The provider never
// provisions by itself; it chooses a Backend in Configure and sets
// Options.Progress on what the Backend returns.
//
// The spec passed in has its defaults applied and names exactly one cloud,
// except when Terraform imports a cluster or reads a data source without a
// cloud block: then the Backend uses its own default location.
type Backend interface {
	// Options returns the cloud and provisioner for the cluster in spec.
	Options(ctx context.Context, spec cluster.Spec) (cluster.Options, error)
}

// BackendFunc adapts a function to Backend.
type BackendFunc func(ctx context.Context, spec cluster.Spec) (cluster.Options, error)

// Options implements Backend.
func (f BackendFunc) Options(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	return f(ctx, spec)
}

// cloudBackend is what Configure builds from the provider block. The clouds'
// SDK clients and the agent provisioner are wired in here as they land; until
// then it says so instead of pretending to work.
type cloudBackend struct {
	config providerConfig
}

func (b cloudBackend) Options(_ context.Context, spec cluster.Spec) (cluster.Options, error) {
	name := spec.CloudName()
	if name == "" {
		name = b.config.defaultCloud()
	}
	if name == "" {
		return cluster.Options{}, fmt.Errorf("cluster %q names no cloud; fix: set one of the aws, azure or gcp attributes on the resource, or configure exactly one of them on the provider", spec.Name)
	}
	return cluster.Options{}, fmt.Errorf("the %s backend is not available in this build yet: this provider build validates cluster configurations but cannot plan, create or read clusters on %s; fix: use a provider build with %s support, or the lab (examples/lab) once it ships", name, name, name)
}
