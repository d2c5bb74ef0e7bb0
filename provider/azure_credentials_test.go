package provider_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// azureBlock is the provider block with the given azure attributes
// (strings, and bools for use_*).
func azureBlock(t *testing.T, s *tfprotov6.Schema, set map[string]any) *tfprotov6.DynamicValue {
	t.Helper()
	atyp := s.ValueType().(tftypes.Object).AttributeTypes["azure"].(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for k, v := range set {
		switch v := v.(type) {
		case string:
			vals[k] = str(v)
		case bool:
			vals[k] = tftypes.NewValue(tftypes.Bool, v)
		}
	}
	return dynamicValue(t, s, map[string]tftypes.Value{"azure": objectOf(atyp, vals)})
}

// Credential choices that contradict each other or lack what they need
// are refused when the configuration is validated, at the attribute.
func TestProviderAzureCredentialsAreValidatedAtPlanTime(t *testing.T) {
	t.Setenv("AZURE_CLIENT_ID", "")
	t.Setenv("AZURE_TENANT_ID", "")
	ctx := context.Background()
	srv, s := providerServer(t)
	sp := map[string]any{"tenant_id": "00000000-0000-4000-8000-0000000000aa", "client_id": "11111111-2222-4333-8444-555555555555"}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range sp {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name string
		set  map[string]any
		want string // the attribute refused, "" for none
	}{
		{"client secret", with(map[string]any{"client_secret": "s"}), ""},
		{"certificate with its password", with(map[string]any{"client_certificate_path": "/etc/sp.pfx", "client_certificate_password": "p"}), ""},
		{"oidc with its token file", map[string]any{"use_oidc": true, "oidc_token_file_path": "/var/run/token"}, ""},
		{"managed identity and use_cli false", map[string]any{"use_msi": true, "use_cli": false}, ""},
		{"nothing: the default chain", map[string]any{}, ""},
		{"secret and certificate", with(map[string]any{"client_secret": "s", "client_certificate_path": "/etc/sp.pem"}), "client_certificate_path"},
		{"secret and oidc", with(map[string]any{"client_secret": "s", "use_oidc": true}), "use_oidc"},
		{"msi and cli", map[string]any{"use_msi": true, "use_cli": true}, "use_cli"},
		{"certificate password alone", with(map[string]any{"client_certificate_password": "p"}), "client_certificate_password"},
		{"token file without use_oidc", map[string]any{"oidc_token_file_path": "/var/run/token"}, "oidc_token_file_path"},
		{"secret without a client ID", map[string]any{"tenant_id": "t", "client_secret": "s"}, "client_id"},
		{"certificate without a tenant", map[string]any{"client_id": "c", "client_certificate_path": "/etc/sp.pem"}, "tenant_id"},
	} {
		resp, err := srv.ValidateProviderConfig(ctx, &tfprotov6.ValidateProviderConfigRequest{Config: azureBlock(t, s, tc.set)})
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == "" {
			noDiags(t, tc.name, resp.Diagnostics)
			continue
		}
		want := tftypes.NewAttributePath().WithAttributeName("azure").WithAttributeName(tc.want)
		if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Attribute.String() != want.String() || !strings.Contains(resp.Diagnostics[0].Detail, "Fix:") {
			t.Errorf("%s: diagnostics %+v; want one at %s with a fix", tc.name, resp.Diagnostics, want)
		}
	}
}

// The provider checks its Azure credential once, in Configure, by getting
// a token for ARM from the lab's Entra ID: a right client secret passes, a
// wrong one fails at the azure block naming the credential, the step,
// Entra's code and the docs, and never the secret. Not parallel: it sets
// the environment azidentity reads.
func TestProviderChecksAzureCredentialsAtConfigure(t *testing.T) {
	const client, secret = "11111111-2222-4333-8444-555555555555", "Qk8-the-right-secret"
	emu, err := arm.New(arm.Options{Clients: map[string]string{client: secret}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	configure := func(set map[string]any) []*tfprotov6.Diagnostic {
		t.Helper()
		srv, s := providerServer(t)
		set["resource_manager_endpoint"] = emu.URL()
		set["authority_host"] = emu.URL() + "/"
		set["ca_bundle"] = string(emu.CACertPEM())
		set["tenant_id"] = emu.TenantID()
		set["client_id"] = client
		resp, err := srv.ConfigureProvider(context.Background(), &tfprotov6.ConfigureProviderRequest{TerraformVersion: "1.8.5", Config: azureBlock(t, s, set)})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Diagnostics
	}
	noDiags(t, "the right client secret", configure(map[string]any{"client_secret": secret}))
	if n := emu.Calls()["login.Token"]; n != 1 {
		t.Errorf("token requests = %d; want 1", n)
	}
	const wrong = "Wr0ng-secret-value"
	diags := configure(map[string]any{"client_secret": wrong})
	if len(diags) != 1 || diags[0].Severity != tfprotov6.DiagnosticSeverityError ||
		diags[0].Attribute.String() != tftypes.NewAttributePath().WithAttributeName("azure").String() || diags[0].Summary != "Azure credentials do not work" {
		t.Fatalf("diagnostics %+v; want one error at azure", diags)
	}
	for _, w := range []string{"get a token for Azure Resource Manager", "AADSTS7000215", "ClientSecretCredential (service principal " + client,
		"azure.client_secret", "https://registry.terraform.io/providers/mixedk8s/mixedk8s/latest/docs#credentials"} {
		if !strings.Contains(diags[0].Detail, w) {
			t.Errorf("detail does not say %q:\n%s", w, diags[0].Detail)
		}
	}
	if strings.Contains(diags[0].Detail, wrong) || strings.Contains(diags[0].Detail, secret) {
		t.Errorf("detail shows a secret:\n%s", diags[0].Detail)
	}
	if n := emu.Calls(); n["virtualNetworks.Get"]+n["subscriptions.Get"] != 0 {
		t.Errorf("Configure called ARM: %v", n)
	}
}
