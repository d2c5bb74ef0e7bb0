package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// The azure backend reaches the cloud the provider block names (here the
// lab's ARM) with the credentials of azidentity's environment chain.
func TestAzureBackendUsesTheProviderEndpoints(t *testing.T) {
	if err := bundle.Check(); err != nil {
		t.Skipf("the backend needs the node agents: %v (run make agent-bundle)", err)
	}
	srv, err := arm.New(arm.Options{Clients: map[string]string{"lab-client": "lab-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("AZURE_TENANT_ID", srv.TenantID())
	t.Setenv("AZURE_CLIENT_ID", "lab-client")
	t.Setenv("AZURE_CLIENT_SECRET", "lab-secret")
	t.Setenv("AZURE_KEY_VAULT_URL", "")
	spec := cluster.Spec{Name: "demo", Azure: &cluster.AzureSpec{SubscriptionID: srv.SubscriptionID(), Location: srv.Location(), ResourceGroup: "demo-rg"}}
	pc := &azureProviderConfig{
		SubscriptionID: types.StringNull(), TenantID: types.StringNull(),
		ResourceManagerEndpoint: types.StringValue(srv.URL()), AuthorityHost: types.StringValue(srv.URL() + "/"),
		CABundle: types.StringValue(string(srv.CACertPEM())), KeyVaultURL: types.StringNull(),
	}
	b := cloudBackend{config: providerConfig{Azure: pc}}
	if _, err := b.Options(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "azure.key_vault_url") {
		t.Errorf("without a vault: %v; want an error naming azure.key_vault_url", err)
	}
	pc.KeyVaultURL = types.StringValue(srv.VaultURL())
	opts, err := b.Options(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Cloud.Name() != "azure" {
		t.Fatalf("cloud %q", opts.Cloud.Name())
	}
	// One ARM read through the configured endpoint, CA and credential.
	if _, ok, err := opts.Cloud.FindNetwork(context.Background(), "demo"); ok || err != nil {
		t.Errorf("FindNetwork = %v, %v; want false, nil from the lab's ARM", ok, err)
	}
	if c := srv.Calls(); c["virtualNetworks.Get"] != 1 || c["login.Token"] == 0 {
		t.Errorf("calls %v; want a token and one VNet read", c)
	}
}
