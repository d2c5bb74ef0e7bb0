package cluster

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

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
// first. A change that passes is planned by upgrades.
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
	// An upgrade left part-way finishes at its own minor before the next one
	// starts: kubeadm upgrades only a control plane whose members agree.
	if want.Minor() > api.Minor() {
		for _, n := range p.desired {
			kv, err := version.ParseGeneric(p.observed.Nodes[n.Name].KubeletVersion)
			if n.Role == clouds.RoleControlPlane && err == nil && kv.Minor() < api.Minor() {
				return fmt.Errorf("kubernetes_version: control-plane node %s still runs Kubernetes %s while the API server reports %s: an earlier upgrade has not finished; fix: apply kubernetes_version = %q first, then %s", n.Name, kv, api, versionString(api), p.spec.KubernetesVersion)
			}
		}
	}
	return nil
}

// upgrades lists the control-plane nodes whose kubelet reports another
// release than the spec's: the agent upgrades them in place (kubeadm
// upgrade), the first one with its bootstrap step, the others one at a
// time after it. Workers are replaced instead (outdated). A node about to
// be made or joined is at the spec's release already.
func (p *planner) upgrades() {
	for _, n := range p.desired {
		st := p.observed.Nodes[n.Name]
		if n.Role != clouds.RoleControlPlane || !st.Joined || p.instancePlanned(n.Name) || slices.Contains(p.joining, n.Name) {
			continue
		}
		if st.KubeletVersion != "" && !sameRelease(st.KubeletVersion, p.spec.KubernetesVersion) {
			p.upgrading = append(p.upgrading, n.Name)
			p.upgradeFrom = cmp.Or(p.upgradeFrom, strings.TrimPrefix(st.KubeletVersion, "v"))
		}
	}
}

// upgradeSteps upgrades each control-plane node but the first (its
// bootstrap step did), one at a time: each `kubeadm upgrade node` replaces
// that node's static Pods, so two at once would take two API servers and
// etcd members' neighbours down together.
func (p *planner) upgradeSteps() {
	if len(p.upgrading) == 0 {
		return
	}
	prev := p.bootstrapID
	first := p.desired[0].Name
	var how []string
	for _, name := range p.upgrading {
		if name == first {
			how = append(how, name+" (kubeadm upgrade apply)")
			continue
		}
		n := nodeByName(p.desired, name)
		id := stepID(StepUpgrade, name)
		p.add(Step{ID: id, Kind: StepUpgrade, Node: name, Pool: n.Pool, After: p.after(prev)})
		prev = id
		how = append(how, name+" (kubeadm upgrade node)")
	}
	p.upgradeID = prev
	p.say("~ upgrade the control plane from Kubernetes %s to %s, one node at a time: %s; workers are replaced after it", p.upgradeFrom, p.spec.KubernetesVersion, strings.Join(how, ", "))
}

// sameRelease reports whether a reported version ("v1.36.3") is the spec's release ("1.36.3").
func sameRelease(reported, spec string) bool {
	a, err1 := version.ParseGeneric(reported)
	b, err2 := version.ParseGeneric(spec)
	if err1 != nil || err2 != nil {
		return strings.TrimPrefix(reported, "v") == strings.TrimPrefix(spec, "v")
	}
	return versionString(a) == versionString(b)
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
