package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/test/lab/gce"
)

// The gcp backend reaches the Compute endpoint the provider block names
// (here the lab's emulator) with its CA and the access token it is given.
func TestGCPBackendUsesTheProviderEndpoints(t *testing.T) {
	if err := bundle.Check(); err != nil {
		t.Skipf("the backend needs the node agents: %v (run make agent-bundle)", err)
	}
	srv, err := gce.New(gce.Options{Token: "lab-token"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "")
	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	pc := &gcpProviderConfig{
		Project: types.StringNull(), Region: types.StringNull(),
		Endpoint: types.StringValue(srv.URL()), CABundle: types.StringValue(string(srv.CACertPEM())), AccessToken: types.StringValue("lab-token"),
	}
	b := cloudBackend{config: providerConfig{GCP: pc}}
	if _, err := b.Options(context.Background(), cluster.Spec{Name: "demo"}); err == nil || !strings.Contains(err.Error(), "gcp.project") {
		t.Errorf("without a project: %v; want an error naming gcp.project", err)
	}
	spec := cluster.Spec{Name: "demo", GCP: &cluster.GCPSpec{Project: srv.Project(), Region: srv.Region(), Zone: srv.Zones()[0]}}
	opts, err := b.Options(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Cloud.Name() != "gcp" {
		t.Fatalf("cloud %q", opts.Cloud.Name())
	}
	if _, ok, err := opts.Cloud.FindNetwork(context.Background(), "demo"); ok || err != nil {
		t.Errorf("FindNetwork = %v, %v; want false, nil from the lab's Compute Engine", ok, err)
	}
	if c := srv.Calls(); c["networks.get"] != 1 {
		t.Errorf("calls %v; want one network read", c)
	}
	// The token is the provider's: another one is refused by the emulator.
	pc.AccessToken = types.StringValue("someone-elses")
	opts, err = b.Options(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := opts.Cloud.FindNetwork(context.Background(), "demo"); err == nil {
		t.Error("a wrong token was accepted")
	}
}

// With gcp.impersonate_service_account the provider checks, at
// Configure, that the credentials may mint the account's tokens, reports
// a failure at the gcp block with the step, the chain and the docs, and
// makes the cloud's calls as the account.
func TestGCPImpersonation(t *testing.T) {
	if err := bundle.Check(); err != nil {
		t.Skipf("the backend needs the node agents: %v (run make agent-bundle)", err)
	}
	srv, err := gce.New(gce.Options{Token: "lab-token"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "")
	t.Setenv("GOOGLE_IMPERSONATE_SERVICE_ACCOUNT", "")
	deployer, err := srv.OwnerServiceAccount("deployer")
	if err != nil {
		t.Fatal(err)
	}
	pc := &gcpProviderConfig{
		Project: types.StringNull(), Region: types.StringNull(),
		Endpoint: types.StringValue(srv.URL()), CABundle: types.StringValue(string(srv.CACertPEM())), AccessToken: types.StringValue("lab-token"),
		ImpersonateServiceAccount: types.StringValue(deployer), ImpersonateDelegates: types.ListNull(types.StringType), IAMCredentialsEndpoint: types.StringNull(),
	}
	diags := checkGCPCredentials(context.Background(), pc)
	if !diags.HasError() {
		t.Fatal("an account the credentials may not impersonate passed the check")
	}
	d := diags.Errors()[0]
	detail := d.Detail()
	for _, want := range []string{"impersonate " + deployer, "PERMISSION_DENIED", "roles/iam.serviceAccountTokenCreator", credentialsDocsURL, "Tried the access token gcp.access_token sets"} {
		if !strings.Contains(detail, want) {
			t.Errorf("diagnostic %q\n%s\nwant it to say %q", d.Summary(), detail, want)
		}
	}
	if strings.Contains(detail, "lab-token") {
		t.Errorf("the diagnostic shows the access token: %s", detail)
	}
	if ad, ok := d.(interface{ Path() path.Path }); !ok || !ad.Path().Equal(path.Root("gcp")) {
		t.Errorf("diagnostic %T is not at the gcp attribute", d)
	}
	if err := srv.GrantTokenCreator(srv.Principal(), deployer); err != nil {
		t.Fatal(err)
	}
	if diags := checkGCPCredentials(context.Background(), pc); diags.HasError() {
		t.Fatalf("granted: %v", diags)
	}
	b := cloudBackend{config: providerConfig{GCP: pc}}
	spec := cluster.Spec{Name: "demo", GCP: &cluster.GCPSpec{Project: srv.Project(), Region: srv.Region(), Zone: srv.Zones()[0]}}
	opts, err := b.Options(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	if _, _, err := opts.Cloud.FindNetwork(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	if by := srv.CallsBy(); by["serviceAccount:"+deployer]["networks.get"] != 1 || by[srv.Principal()]["networks.get"] != 0 {
		t.Errorf("calls by principal %v; want the network read by %s", by, deployer)
	}
}
