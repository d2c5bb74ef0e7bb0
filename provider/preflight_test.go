package provider_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/mixedk8s/mixedk8s/clouds/azure"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/clustertest"
	"github.com/mixedk8s/mixedk8s/provider"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// armBackend reaches the lab's ARM with the spec's subscription, location
// and group, as the provider's own Azure backend does with its endpoints.
type armBackend struct {
	t   *testing.T
	srv *arm.Server
}

const armClient, armSecret = "11111111-2222-4333-8444-555555555555", "lab-secret"

func (b armBackend) Options(_ context.Context, spec cluster.Spec) (cluster.Options, error) {
	cloud, err := azure.New(azure.Config{
		SubscriptionID: spec.Azure.SubscriptionID, Location: spec.Azure.Location, ResourceGroup: spec.Azure.ResourceGroup, VaultURL: b.srv.VaultURL(),
		Cloud:    azure.CloudEndpoints{AuthorityHost: b.srv.URL() + "/", ResourceManagerEndpoint: b.srv.URL()},
		CABundle: b.srv.CACertPEM(), DialContext: b.srv.DialContext,
		ClientSecret: &azure.ClientSecret{TenantID: b.srv.TenantID(), ClientID: armClient, Secret: armSecret},
		RetryDelay:   5 * time.Millisecond, PollFrequency: 5 * time.Millisecond,
	})
	if err != nil {
		return cluster.Options{}, err
	}
	return cluster.Options{Cloud: cloud, Provisioner: clustertest.NewProvisioner()}, nil
}

// planAzure plans creating a cluster on the lab's ARM with the given
// subscription and returns the diagnostics.
func planAzure(t *testing.T, srv *arm.Server, subscription string) []*tfprotov6.Diagnostic {
	t.Helper()
	ctx := context.Background()
	ps, err := providerserver.NewProtocol6WithError(provider.NewWithBackend("test", armBackend{t, srv})())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := ps.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := ps.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{TerraformVersion: "1.10.0", Config: dynamicValue(t, schemas.Provider, nil)})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "ConfigureProvider", conf.Diagnostics)
	s := schemas.ResourceSchemas["mixedk8s_cluster"]
	typ := s.ValueType().(tftypes.Object)
	atyp := typ.AttributeTypes["azure"].(tftypes.Object)
	poolsType := typ.AttributeTypes["node_pools"].(tftypes.Map)
	poolType := poolsType.ElementType.(tftypes.Object)
	one := tftypes.NewValue(tftypes.Number, 1)
	cfg := dynamicValue(t, s, map[string]tftypes.Value{
		"name":  str("pf"),
		"azure": tftypes.NewValue(atyp, map[string]tftypes.Value{"subscription_id": str(subscription), "location": str(srv.Location()), "resource_group": str("pf-rg"), "disk_encryption_set_id": tftypes.NewValue(tftypes.String, nil), "subnet_id": tftypes.NewValue(tftypes.String, nil)}),
		"node_pools": tftypes.NewValue(poolsType, map[string]tftypes.Value{
			"linux": objectValue(poolType, map[string]tftypes.Value{"count": one}),
			"win":   objectValue(poolType, map[string]tftypes.Value{"os": str("windows"), "count": one}),
		}),
	})
	null, err := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ps.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: "mixedk8s_cluster", PriorState: &null, ProposedNewState: cfg, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Diagnostics
}

// A plan on a subscription the credentials cannot see is one error at
// azure.subscription_id, with the fix, before anything is read or created.
func TestPlanReportsAWrongSubscriptionAtItsAttribute(t *testing.T) {
	t.Parallel()
	srv, err := arm.New(arm.Options{Clients: map[string]string{armClient: armSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	diags := planAzure(t, srv, "99999999-0000-4000-8000-000000000000")
	if len(diags) != 1 {
		t.Fatalf("diagnostics %+v; want one error", diags)
	}
	d := diags[0]
	want := tftypes.NewAttributePath().WithAttributeName("azure").WithAttributeName("subscription_id")
	if d.Severity != tfprotov6.DiagnosticSeverityError || d.Attribute == nil || !d.Attribute.Equal(want) ||
		!strings.Contains(d.Detail, "SubscriptionNotFound") || !strings.Contains(d.Detail, "Fix: set azure.subscription_id") {
		t.Errorf("diagnostic %s at %v: %s: %s; want an error at azure.subscription_id naming the fix", d.Severity, d.Attribute, d.Summary, d.Detail)
	}
	if n := srv.MutatingCalls(); n != 0 {
		t.Errorf("planning made %d mutating calls", n)
	}
	// The right subscription plans: the warning that lists the changes, no error.
	for _, d := range planAzure(t, srv, srv.SubscriptionID()) {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			t.Errorf("with the lab's subscription: %s: %s", d.Summary, d.Detail)
		}
	}
	if n := srv.Calls()["subscriptions.Get"]; n != 2 {
		t.Errorf("subscriptions.Get calls = %d; want one per plan", n)
	}
}
