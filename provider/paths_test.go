package provider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/mixedk8s/mixedk8s/cluster"
)

func TestProblemPathMapsEveryShapeValidateUses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want path.Path
		ok   bool
	}{
		{"name", path.Root("name"), true},
		{"aws.region", path.Root("aws").AtName("region"), true},
		{"aws.zones[1]", path.Root("aws").AtName("zones").AtListIndex(1), true},
		{`node_pools["win"].isolation`, path.Root("node_pools").AtMapKey("win").AtName("isolation"), true},
		{`node_pools["win"]`, path.Root("node_pools").AtMapKey("win"), true},
		{`node_pools["a.b[c]"].count`, path.Root("node_pools").AtMapKey("a.b[c]").AtName("count"), true},
		{`node_pools["linux"].labels["example.com/role"]`, path.Root("node_pools").AtMapKey("linux").AtName("labels").AtMapKey("example.com/role"), true},
		{`node_pools["win"].taints[0]`, path.Root("node_pools").AtMapKey("win").AtName("taints").AtListIndex(0), true},
		{"access.admin_cidrs[2]", path.Root("access").AtName("admin_cidrs").AtListIndex(2), true},
		{"access.bastion.host_key", path.Root("access").AtName("bastion").AtName("host_key"), true},
		{"node_pools", path.Root("node_pools"), true},
		// Not attributes of the resource: reported without a path.
		{"cloud", path.Empty(), false},
		{"", path.Empty(), false},
		{"aws.zones[x]", path.Empty(), false},
		{`node_pools["unterminated`, path.Empty(), false},
		{"aws..region", path.Empty(), false},
	}
	for _, c := range cases {
		got, ok := problemPath(c.in)
		if ok != c.ok || (ok && !got.Equal(c.want)) {
			t.Errorf("problemPath(%q) = %s, %v; want %s, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// Every path Validate reports for a spec full of mistakes must land on an
// attribute (except "cloud", which has none), with the fix in the detail.
func TestAddProblemsPutsEveryValidateProblemAtItsAttribute(t *testing.T) {
	t.Parallel()
	spec := cluster.Spec{
		Name:              "Demo_Cluster",
		KubernetesVersion: "1.36.3",
		AWS:               &cluster.AWSSpec{Region: "eu-west-1", Zones: []string{"us-east-1a"}},
		Network:           cluster.NetworkSpec{PodCIDR: "10.0.0.0/16"},
		NodePools: map[string]cluster.PoolSpec{
			"win": {OS: cluster.Windows, WindowsVersion: "2016", Isolation: "vm", Count: 1, Taints: []string{"bad"}},
		},
		Access: cluster.AccessSpec{AdminCIDRs: []string{"203.0.113.0/24", "10.0.0.1/8"}},
	}
	err := cluster.Validate(spec)
	if err == nil {
		t.Fatal("Validate accepted a broken spec")
	}
	var diags diag.Diagnostics
	if !addProblems(&diags, err, nil) {
		t.Fatalf("addProblems did not recognise %T", err)
	}
	ps := err.(cluster.Problems)
	if len(diags) != len(ps) {
		t.Fatalf("got %d diagnostics for %d problems", len(diags), len(ps))
	}
	for i, d := range diags {
		p := ps[i]
		wp, ok := d.(diag.DiagnosticWithPath)
		if !ok {
			t.Errorf("%s: diagnostic has no attribute path", p.Path)
			continue
		}
		want, _ := problemPath(p.Path)
		if !wp.Path().Equal(want) {
			t.Errorf("%s: path %s, want %s", p.Path, wp.Path(), want)
		}
		if !strings.Contains(d.Summary(), p.Path) || !strings.Contains(d.Detail(), "Fix: "+p.Fix) {
			t.Errorf("%s: summary %q / detail %q lack the path or the fix", p.Path, d.Summary(), d.Detail())
		}
	}
}

func TestUnknownValuesSilenceOnlyTheProblemsTheyCouldExplain(t *testing.T) {
	t.Parallel()
	skip := unknownFilter([]string{`node_pools["win"].count`, "network.pod_cidr"})
	for p, want := range map[string]bool{
		`node_pools["win"].count`:          true,
		"node_pools":                       true, // "no Linux worker" depends on counts
		"network.pod_cidr":                 true,
		"network.service_cidr":             true, // overlap checks compare the CIDRs
		"access.admin_cidrs[0]":            false,
		"name":                             true, // Windows name length depends on the pools
		"artifacts.mirror_base_url":        false,
		"artifacts.trust_mirror_checksums": false,
	} {
		if got := skip(cluster.Problem{Path: p}); got != want {
			t.Errorf("skip(%s) = %v, want %v", p, got, want)
		}
	}
	// A mirror from a variable is unknown at validation: trusting it cannot be judged yet.
	if !unknownFilter([]string{"artifacts.mirror_base_url"})(cluster.Problem{Path: "artifacts.trust_mirror_checksums"}) {
		t.Error("trust_mirror_checksums was judged while mirror_base_url is unknown")
	}
	if unknownFilter(nil) != nil {
		t.Error("with nothing unknown, nothing is skipped")
	}
}
