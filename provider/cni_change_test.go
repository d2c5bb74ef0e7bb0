package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// Switching the CNI of a running cluster is refused at plan time, at
// network.cni, with the reason; keeping it is not.
func TestPlanRefusesSwitchingTheCNI(t *testing.T) {
	spec := func(cni cluster.CNI) clusterModel {
		var m clusterModel
		s := cluster.Spec{Name: "demo", Network: cluster.NetworkSpec{CNI: cni}, NodePools: map[string]cluster.PoolSpec{"win": {OS: cluster.Windows, Count: 1}}}
		m.fromSpec(s.WithDefaults())
		return m
	}
	var diags diag.Diagnostics
	checkUnsupportedChanges(context.Background(), spec(cluster.CNIFlannel), spec(cluster.CNICalico), cluster.Spec{Name: "demo"}, &diags)
	if !diags.HasError() || len(diags.Errors()) != 1 {
		t.Fatalf("diagnostics %v, want one error", diags)
	}
	d, ok := diags.Errors()[0].(diag.DiagnosticWithPath)
	if !ok || !d.Path().Equal(path.Root("network").AtName("cni")) || !strings.Contains(d.Detail(), "in-place CNI migration") || !strings.Contains(d.Detail(), `network.cni = "flannel"`) {
		t.Errorf("diagnostic %v", diags.Errors()[0])
	}
	diags = nil
	checkUnsupportedChanges(context.Background(), spec(cluster.CNICalico), spec(cluster.CNICalico), cluster.Spec{Name: "demo"}, &diags)
	if diags.HasError() {
		t.Errorf("keeping the CNI: %v", diags)
	}
}
