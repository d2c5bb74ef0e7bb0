package provider_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// planCreate asks the provider to plan creating a cluster with a Linux pool
// of one node and a Windows pool of win nodes, as Terraform does, and
// returns the planned attributes and the diagnostics.
func planCreate(t *testing.T, b *memBackend, name string, win int) (map[string]tftypes.Value, []*tfprotov6.Diagnostic) {
	t.Helper()
	ctx := context.Background()
	srv, schemas := b.server(t)
	s := schemas.ResourceSchemas["mixedk8s_cluster"]
	typ := s.ValueType().(tftypes.Object)
	poolsType := typ.AttributeTypes["node_pools"].(tftypes.Map)
	poolType := poolsType.ElementType.(tftypes.Object)
	pool := func(os string, count int) tftypes.Value {
		vals := map[string]tftypes.Value{}
		for n, at := range poolType.AttributeTypes {
			vals[n] = tftypes.NewValue(at, nil)
		}
		vals["os"], vals["count"] = str(os), tftypes.NewValue(tftypes.Number, count)
		return tftypes.NewValue(poolType, vals)
	}
	cfg := dynamicValue(t, s, map[string]tftypes.Value{
		"name": str(name), "aws": awsValue(s, "eu-west-1"),
		"node_pools": tftypes.NewValue(poolsType, map[string]tftypes.Value{"linux": pool("linux", 1), "win": pool("windows", win)}),
	})
	priorNull, err := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{
		TypeName: "mixedk8s_cluster", PriorState: &priorNull, ProposedNewState: cfg, Config: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.PlannedState == nil {
		t.Fatalf("no planned state; diagnostics %+v", resp.Diagnostics)
	}
	return attrs(t, s, resp.PlannedState), resp.Diagnostics
}

func objectAttrs(t *testing.T, v tftypes.Value) map[string]tftypes.Value {
	t.Helper()
	out := map[string]tftypes.Value{}
	if err := v.As(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The plan shows the library's defaults as values and what the apply will
// do to the nodes as one warning.
func TestPlanShowsDefaultsAndTheNodePlan(t *testing.T) {
	t.Parallel()
	got, diags := planCreate(t, newMemBackend(), "pp", 2)
	network := objectAttrs(t, got["network"])
	if asString(t, network["cni"]) != "flannel" || asString(t, network["service_cidr"]) != "10.96.0.0/12" {
		t.Errorf("network defaults not planned: %v", network)
	}
	win := objectAttrs(t, objectAttrs(t, got["node_pools"])["win"])
	if asString(t, win["windows_version"]) != "2022" || asString(t, win["isolation"]) != "process" || asString(t, win["instance_type"]) != "m6i.xlarge" {
		t.Errorf("Windows pool defaults not planned: %v", win)
	}
	linux := objectAttrs(t, objectAttrs(t, got["node_pools"])["linux"])
	if !linux["windows_version"].IsNull() || !linux["isolation"].IsNull() {
		t.Errorf("a Linux pool has Windows settings: %v", linux)
	}
	if asString(t, got["id"]) != "pp" || got["nodes"].IsKnown() || got["api_endpoint"].IsKnown() {
		t.Errorf("id %v, nodes %v, api_endpoint %v", got["id"], got["nodes"], got["api_endpoint"])
	}
	if len(diags) != 1 || diags[0].Severity != tfprotov6.DiagnosticSeverityWarning {
		t.Fatalf("want one warning, got %+v", diags)
	}
	t.Logf("warning:\n%s\n%s", diags[0].Summary, diags[0].Detail)
	for _, want := range []string{
		`Cluster "pp": 4 nodes to add`,
		`+ network, subnet and firewall rules for cluster "pp"`,
		`+ 1 linux node in the control plane (pp-cp-0)`,
		`+ 2 windows-2022 nodes in pool "win" (pp-win-0, pp-win-1)`,
	} {
		if !strings.Contains(diags[0].Summary+"\n"+diags[0].Detail, want) {
			t.Errorf("warning lacks %q", want)
		}
	}
}

// Planning a create where the cluster partly exists (an earlier create
// failed, or another workspace made it) shows that the apply adopts it.
func TestPlanOfAPartlyBuiltClusterAddsOnlyWhatIsMissing(t *testing.T) {
	t.Parallel()
	b := newMemBackend()
	b.applyDemo(t, "pq") // control plane, linux-0 and win-0
	_, diags := planCreate(t, b, "pq", 2)
	if len(diags) != 1 {
		t.Fatalf("want one warning, got %+v", diags)
	}
	text := diags[0].Summary + "\n" + diags[0].Detail
	for _, want := range []string{`Cluster "pq": 1 node to add`, `+ 1 windows-2022 node in pool "win" (pq-win-1)`} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "network") || strings.Contains(text, "pq-cp-0") {
		t.Errorf("the plan recreates what exists:\n%s", text)
	}
	b.cloud.ResetCalls()
	if _, _ = planCreate(t, b, "pq", 2); b.cloud.MutatingCalls() != 0 {
		t.Errorf("planning changed the cloud: %v", b.cloud.Calls())
	}
}
