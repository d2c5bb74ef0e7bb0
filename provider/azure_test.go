package provider

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

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

// The lab's loopback domain reaches 127.0.0.1 and nothing else moves; a
// domain outside .test is refused, so no real name can be redirected.
func TestLoopbackDialerOnlyMovesTestNames(t *testing.T) {
	if _, err := loopbackDialer("vault.azure.net"); err == nil || !strings.Contains(err.Error(), labLoopbackDomainEnv) {
		t.Errorf("a real domain was accepted: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	dial, err := loopbackDialer("emu.test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, "tcp", net.JoinHostPort("my-vault.vault.EMU.test.", port))
	if err != nil {
		t.Fatalf("a lab name did not reach 127.0.0.1: %v", err)
	}
	c.Close()
	// Any other address is dialled as it is: 127.0.0.2 is not where the listener is.
	if c, err := dial(ctx, "tcp", net.JoinHostPort("127.0.0.2", port)); err == nil {
		c.Close()
		t.Error("an address outside the lab's domain was moved to 127.0.0.1")
	}
}
