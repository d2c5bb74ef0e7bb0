package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/util/version"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// serverVersioner is a Provisioner that reads the running API server's
// version; Observe records it when the provisioner has one.
type serverVersioner interface {
	// ServerVersion returns the API server's version ("v1.36.3"), and ""
	// when the cluster has none or it cannot be reached.
	ServerVersion(ctx context.Context, spec Spec, instances []clouds.Instance) (string, error)
}

// checkVersion refuses, at plan time, a kubernetes_version the running
// cluster cannot move to, with the upstream version skew policy's rules
// (https://kubernetes.io/releases/version-skew-policy/): the control plane
// goes first and one minor at a time ("kube-apiserver ... must be running
// at 1.(n-1) before upgrading to 1.n"), kubelets are never newer than the
// API server, and there is no downgrade (the policy has no such path, and
// kubeadm upgrade refuses one). Each refusal names the version to go to
// first. A change that passes is still refused: this build does not yet
// upgrade a running cluster.
func (p *planner) checkVersion() error {
	running := p.observed.ServerVersion
	if running == "" {
		return nil
	}
	want, err := version.ParseGeneric(p.spec.KubernetesVersion)
	if err != nil {
		return nil // Validate reports it
	}
	api, err := version.ParseGeneric(running)
	if err != nil {
		return fmt.Errorf("kubernetes_version: the API server of cluster %q reports version %q, which is not a Kubernetes version; fix: check that the cluster's endpoint is its own API server", p.spec.Name, running)
	}
	if api.Major() == 0 {
		return nil // a build without version stamps ("v0.0.0-master"): nothing to compare
	}
	switch {
	case want.LessThan(api):
		return fmt.Errorf("kubernetes_version: cluster %q runs Kubernetes %s and %s would be a downgrade, which neither the version skew policy nor kubeadm supports; fix: set kubernetes_version = %q", p.spec.Name, api, p.spec.KubernetesVersion, versionString(api))
	case want.Major() != api.Major() || want.Minor() > api.Minor()+1:
		return fmt.Errorf("kubernetes_version: cluster %q runs Kubernetes %s, and the control plane moves one minor at a time (https://kubernetes.io/releases/version-skew-policy/#kube-apiserver); fix: upgrade to the newest 1.%d.x release first, then to %s", p.spec.Name, api, api.Minor()+1, p.spec.KubernetesVersion)
	}
	// The control plane goes first, so a kubelet newer than the version asked for would end newer than the API server.
	for _, name := range slices.Sorted(maps.Keys(p.observed.Nodes)) {
		kv, err := version.ParseGeneric(p.observed.Nodes[name].KubeletVersion)
		if err == nil && kv.GreaterThan(want) {
			return fmt.Errorf("kubernetes_version: %s would leave the kubelet of node %s (%s) newer than the API server, which the version skew policy forbids (https://kubernetes.io/releases/version-skew-policy/#kubelet); fix: set kubernetes_version to %s or later", p.spec.KubernetesVersion, name, kv, versionString(kv))
		}
	}
	if versionString(want) == versionString(api) {
		return nil
	}
	return fmt.Errorf("kubernetes_version: cluster %q runs Kubernetes %s; moving it to %s passes the version skew rules, but upgrading a running cluster is not done yet; fix: keep kubernetes_version = %q for now", p.spec.Name, api, p.spec.KubernetesVersion, versionString(api))
}

// CheckVersionChange applies the same rules to moving a cluster that runs
// Kubernetes running (a version the caller recorded, such as Terraform's
// state) to spec's kubernetes_version, for when its API server cannot be asked.
func CheckVersionChange(spec Spec, running string) error {
	p := &planner{spec: spec.WithDefaults(), observed: Observed{ServerVersion: running}}
	return p.checkVersion()
}

// versionString is a version as the spec writes it: "1.36.3", no "v".
func versionString(v *version.Version) string {
	return fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch())
}
