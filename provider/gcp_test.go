package provider

import (
	"context"
	"strings"
	"testing"

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
