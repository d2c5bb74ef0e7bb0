package clouds

import (
	"context"
	"errors"
	"net/netip"
)

// Preflighter is a Cloud that can check, with read-only calls, that the
// account, the credentials' permissions and the cloud's registrations
// allow a change before anything is created. cluster.Apply calls it
// before its first mutating call, and the provider's plan may call it
// with Quick set.
type Preflighter interface {
	// Preflight returns a *PreflightError when the change cannot succeed
	// as configured, and another error when it could not tell (the caller
	// goes on then: the first mutating call gives the cloud's own answer).
	Preflight(ctx context.Context, req PreflightRequest) error
}

// PreflightRequest says what a change will need of the cloud.
type PreflightRequest struct {
	Cluster string
	// Network: the cluster's network, subnet and firewalls will be created.
	Network bool
	// Instances: instances will be created.
	Instances bool
	// Deletes: instances will be deleted.
	Deletes bool
	// Secrets: the cluster's secrets will be read and written.
	Secrets bool
	// LoadBalancer: a cloud load balancer will be created in front of the control plane.
	LoadBalancer bool
	// Quick keeps to the checks that take one or two calls, for a plan.
	Quick bool
	// PodCIDR and ServiceCIDR are the cluster's pod and Service ranges,
	// which must not overlap a network the cluster does not make.
	PodCIDR, ServiceCIDR string
}

// PreflightError is a refusal found before anything was created: the
// configuration field to change and the classified cloud error, whose Fix
// says how.
type PreflightError struct {
	// Field is the configuration attribute at fault, e.g. "azure.subscription_id".
	Field string
	Err   *Error
}

func (e *PreflightError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *PreflightError) Unwrap() error { return e.Err }

// Preflight runs cloud's preflight when it has one; a cloud without one passes.
func Preflight(ctx context.Context, cloud Cloud, req PreflightRequest) error {
	p, ok := cloud.(Preflighter)
	if !ok {
		return nil
	}
	return p.Preflight(ctx, req)
}

// OverlapOf returns the first of the request's pod and Service ranges that
// overlaps one of network (a network the cluster does not make), with its
// configuration field and the range it overlaps: the overlay's routes and
// kube-proxy's rules would take those addresses from the network (kubeadm:
// "your Pod network must not overlap with any of the host networks",
// https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/create-cluster-kubeadm/#pod-network).
// A malformed range is validation's to report.
func (req PreflightRequest) OverlapOf(network []string) (field, cidr, overlapped string, ok bool) {
	for _, r := range []struct{ field, cidr string }{{"network.pod_cidr", req.PodCIDR}, {"network.service_cidr", req.ServiceCIDR}} {
		p, err := netip.ParsePrefix(r.cidr)
		if err != nil {
			continue
		}
		for _, n := range network {
			if np, err := netip.ParsePrefix(n); err == nil && np.Overlaps(p) {
				return r.field, r.cidr, n, true
			}
		}
	}
	return "", "", "", false
}

// AsPreflightError returns the refusal in err's chain, if any.
func AsPreflightError(err error) (*PreflightError, bool) {
	var pe *PreflightError
	ok := errors.As(err, &pe)
	return pe, ok
}
