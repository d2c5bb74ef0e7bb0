package provider_test

import (
	"slices"
	"testing"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/provider"
)

// An admin CIDR that is the whole address space is allowed but warned
// about at its own index; narrower ranges are not.
func TestAdminCIDRsOpenToTheInternetAreWarnedAbout(t *testing.T) {
	spec := cluster.Spec{Access: cluster.AccessSpec{AdminCIDRs: []string{"203.0.113.0/24", "0.0.0.0/0", "::/0", "10.0.0.0/8"}}}
	got := provider.WarnOpenAdminCIDRs(spec)
	want := []string{
		"access.admin_cidrs[1] is 0.0.0.0/0: every address on the internet",
		"access.admin_cidrs[2] is ::/0: every address on the internet",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("warnings %q, want %q", got, want)
	}
}
