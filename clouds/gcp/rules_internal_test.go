package gcp

import (
	"slices"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// etcd's ports are reached from control-plane instances only: the rule
// between nodes leaves them out, and the etcd rule admits the control
// plane's tag, not a range.
func TestEtcdIsOpenBetweenControlPlaneNodesOnly(t *testing.T) {
	cp := roleTag("demo", clouds.RoleControlPlane)
	byName := map[string]firewallRule{}
	for _, r := range rules(clouds.NetworkRequest{Cluster: "demo", NodeCIDR: "10.20.0.0/16", PodCIDR: "10.244.0.0/16"}) {
		byName[r.name] = r
	}
	internal, etcd := byName["demo-internal"], byName["demo-etcd"]
	for _, a := range internal.allowed {
		if a.GetIPProtocol() != "tcp" {
			continue
		}
		if !slices.Equal(a.GetPorts(), []string{"0-2378", "2381-65535"}) {
			t.Errorf("the rule between nodes opens TCP %v, want every port but 2379-2380", a.GetPorts())
		}
	}
	if len(etcd.sources) != 0 || !slices.Equal(etcd.sourceTags, []string{cp}) || !slices.Equal(etcd.targets, []string{cp}) {
		t.Errorf("etcd rule: sources %v, source tags %v, targets %v; want tag %s to tag %s only", etcd.sources, etcd.sourceTags, etcd.targets, cp, cp)
	}
	if len(etcd.allowed) != 1 || etcd.allowed[0].GetIPProtocol() != "tcp" || !slices.Equal(etcd.allowed[0].GetPorts(), []string{"2379-2380"}) {
		t.Errorf("etcd rule allows %v, want tcp 2379-2380", etcd.allowed)
	}
}
