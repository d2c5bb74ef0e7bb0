package provider_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/provider"
)

// These tests speak the plugin protocol directly, without a Terraform CLI:
// the CLIs built here (terraform 1.8.5, tofu 1.6.3) predate ephemeral
// resources, and validation must be covered without TF_ACC too.

func TestKubeconfigEphemeralResourceOpensAKubeconfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newMemBackend()
	b.applyDemo(t, "eph")
	srv, schemas := b.server(t)
	s := schemas.EphemeralResourceSchemas["mixedk8s_kubeconfig"]
	if s == nil {
		t.Fatal("no mixedk8s_kubeconfig ephemeral resource")
	}
	for _, a := range s.Block.Attributes {
		if (a.Name == "kubeconfig" || a.Name == "client_key") && !a.Sensitive {
			t.Errorf("%s is not sensitive", a.Name)
		}
	}
	cfg := dynamicValue(t, s, map[string]tftypes.Value{"name": str("eph"), "aws": awsValue(s, "eu-west-1")})
	v, err := srv.ValidateEphemeralResourceConfig(ctx, &tfprotov6.ValidateEphemeralResourceConfigRequest{TypeName: "mixedk8s_kubeconfig", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "ValidateEphemeralResourceConfig", v.Diagnostics)

	resp, err := srv.OpenEphemeralResource(ctx, &tfprotov6.OpenEphemeralResourceRequest{TypeName: "mixedk8s_kubeconfig", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "OpenEphemeralResource", resp.Diagnostics)
	got := attrs(t, s, resp.Result)
	kc := asString(t, got["kubeconfig"])
	ep := asString(t, got["api_endpoint"])
	if ep == "" || !strings.Contains(kc, "server: https://"+ep) || !strings.Contains(kc, "kind: Config") {
		t.Errorf("endpoint %q, kubeconfig:\n%s", ep, kc)
	}
	if !strings.Contains(asString(t, got["ca_certificate"]), "BEGIN CERTIFICATE") {
		t.Errorf("no CA certificate: %v", got["ca_certificate"])
	}
	// Each open issues a certificate for one run: an hour by default, not a year.
	end, err := time.Parse(time.RFC3339, asString(t, got["expires_at"]))
	if left := time.Until(end); err != nil || left > time.Hour || left < 50*time.Minute {
		t.Errorf("expires_at %v (%v), want about an hour from now", got["expires_at"], err)
	}
	creds, err := cluster.ReadKubeconfig([]byte(kc))
	if err != nil || !creds.NotAfter.Equal(end) {
		t.Errorf("the kubeconfig's certificate ends at %v (%v), expires_at says %v", creds.NotAfter, err, end)
	}
	// What the kubernetes and helm providers take, without a kubeconfig file.
	checkClientAttributes(t, got, creds)
	short := dynamicValue(t, s, map[string]tftypes.Value{"name": str("eph"), "aws": awsValue(s, "eu-west-1"), "validity": str("10m")})
	resp, err = srv.OpenEphemeralResource(ctx, &tfprotov6.OpenEphemeralResourceRequest{TypeName: "mixedk8s_kubeconfig", Config: short})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "OpenEphemeralResource validity 10m", resp.Diagnostics)
	if end, err := time.Parse(time.RFC3339, asString(t, attrs(t, s, resp.Result)["expires_at"])); err != nil || time.Until(end) > 10*time.Minute {
		t.Errorf("validity 10m: expires at %v (%v)", end, err)
	}
}

func TestKubeconfigEphemeralResourceIsUnknownUntilTheClusterExists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newMemBackend()
	srv, schemas := b.server(t)
	s := schemas.EphemeralResourceSchemas["mixedk8s_kubeconfig"]
	// Terraform opens ephemeral resources during the plan that creates the
	// cluster: the result is unknown, with a warning at the name, not an error
	// that would stop the first plan.
	missing := dynamicValue(t, s, map[string]tftypes.Value{"name": str("first"), "aws": awsValue(s, "eu-west-1")})
	resp, err := srv.OpenEphemeralResource(ctx, &tfprotov6.OpenEphemeralResourceRequest{TypeName: "mixedk8s_kubeconfig", Config: missing})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Severity != tfprotov6.DiagnosticSeverityWarning ||
		!strings.Contains(resp.Diagnostics[0].Summary, `"first"`) || resp.Diagnostics[0].Attribute == nil {
		t.Errorf("cluster not created yet: diagnostics %+v", resp.Diagnostics)
	}
	got := attrs(t, s, resp.Result)
	for _, name := range []string{"kubeconfig", "api_endpoint", "ca_certificate", "expires_at"} {
		if got[name].IsKnown() {
			t.Errorf("%s is known (%v) before the cluster exists", name, got[name])
		}
	}
	if !got["name"].Equal(str("first")) {
		t.Errorf("name %v, want the configured one", got["name"])
	}

	// Once it exists, the same configuration opens a kubeconfig.
	b.applyDemo(t, "first")
	resp, err = srv.OpenEphemeralResource(ctx, &tfprotov6.OpenEphemeralResourceRequest{TypeName: "mixedk8s_kubeconfig", Config: missing})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "OpenEphemeralResource after apply", resp.Diagnostics)
	if !attrs(t, s, resp.Result)["kubeconfig"].IsKnown() {
		t.Error("kubeconfig unknown after the cluster was created")
	}
}

func TestKubeconfigEphemeralValidityIsCheckedAtValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, schemas := newMemBackend().server(t)
	s := schemas.EphemeralResourceSchemas["mixedk8s_kubeconfig"]
	for _, v := range []string{"2d", "48h", "30s", "soon"} {
		cfg := dynamicValue(t, s, map[string]tftypes.Value{"name": str("x"), "aws": awsValue(s, "eu-west-1"), "validity": str(v)})
		resp, err := srv.ValidateEphemeralResourceConfig(ctx, &tfprotov6.ValidateEphemeralResourceConfigRequest{TypeName: "mixedk8s_kubeconfig", Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Attribute == nil || !strings.Contains(resp.Diagnostics[0].Detail, "Fix:") {
			t.Errorf("validity %q: diagnostics %+v, want one error at validity with the fix", v, resp.Diagnostics)
		}
	}
}

func TestTheKubeconfigInStateIsRenewedAtHalfItsLife(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newMemBackend()
	b.applyDemo(t, "renew")
	opts := b.direct()
	spec := cluster.Spec{Name: "renew", AWS: &cluster.AWSSpec{Region: "eu-west-1"}}
	now := time.Now()
	for _, c := range []struct {
		issued, validity, later time.Duration
		due                     bool
	}{
		{issued: time.Hour, validity: time.Hour, later: 0, due: false},
		{issued: time.Hour, validity: time.Hour, later: 29 * time.Minute, due: false},
		{issued: time.Hour, validity: time.Hour, later: 31 * time.Minute, due: true},
		{issued: time.Hour, validity: time.Hour, later: 2 * time.Hour, due: true}, // ended
		// Issued under a longer validity, or a year-long one of an earlier release: outlives the policy.
		{issued: 365 * 24 * time.Hour, validity: time.Hour, due: true},
		{issued: 4 * time.Hour, validity: time.Hour, due: true},
		// Issued under a shorter validity than today's: less than half of the new one left.
		{issued: time.Hour, validity: 24 * time.Hour, later: 0, due: true},
		{issued: 24 * time.Hour, validity: 24 * time.Hour, later: 11 * time.Hour, due: false},
	} {
		kc, err := cluster.Kubeconfig(ctx, spec, opts, c.issued)
		if err != nil {
			t.Fatal(err)
		}
		if got := provider.KubeconfigDue(string(kc), c.validity, now.Add(c.later)); got != c.due {
			t.Errorf("a kubeconfig issued for %s, %s later, under kubeconfig_validity %s: due %v, want %v", c.issued, c.later, c.validity, got, c.due)
		}
	}
	if provider.KubeconfigDue("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: t\n", time.Hour, now) {
		t.Error("a kubeconfig without a certificate (not issued here) was planned for renewal")
	}
}

func TestClusterDataSourceReadsAnExistingCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newMemBackend()
	b.applyDemo(t, "ds")
	srv, schemas := b.server(t)
	s := schemas.DataSourceSchemas["mixedk8s_cluster"]
	cfg := dynamicValue(t, s, map[string]tftypes.Value{"name": str("ds"), "aws": awsValue(s, "eu-west-1")})
	resp, err := srv.ReadDataSource(ctx, &tfprotov6.ReadDataSourceRequest{TypeName: "mixedk8s_cluster", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "ReadDataSource", resp.Diagnostics)
	got := attrs(t, s, resp.State)
	if asString(t, got["api_endpoint"]) == "" {
		t.Error("no api_endpoint")
	}
	var nodes []tftypes.Value
	if err := got["nodes"].As(&nodes); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		var m map[string]tftypes.Value
		if err := n.As(&m); err != nil {
			t.Fatal(err)
		}
		var ready bool
		_ = m["ready"].As(&ready)
		names = append(names, asString(t, m["name"])+"/"+asString(t, m["os"]))
		if !ready || asString(t, m["instance_id"]) == "" || asString(t, m["private_ip"]) == "" {
			t.Errorf("node %v is incomplete", m)
		}
	}
	if want := "ds-cp-0/linux ds-linux-0/linux ds-win-0/windows"; strings.Join(names, " ") != want {
		t.Errorf("nodes %v, want %s", names, want)
	}
}

// The resource's ValidateResourceConfig reports each cluster.Validate
// problem at its attribute path, with the fix, and unknown values silence
// only what they could explain.
func TestValidateResourceConfigPutsProblemsAtTheirAttributes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newMemBackend()
	srv, schemas := b.server(t)
	s := schemas.ResourceSchemas["mixedk8s_cluster"]
	typ := s.ValueType().(tftypes.Object)
	poolsType := typ.AttributeTypes["node_pools"].(tftypes.Map)
	poolType := poolsType.ElementType.(tftypes.Object)
	pool := func(set map[string]tftypes.Value) tftypes.Value { return objectValue(poolType, set) }
	accessType := typ.AttributeTypes["access"].(tftypes.Object)
	cidrs := tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, []tftypes.Value{str("203.0.113.0/24"), str("10.0.0.1/8")})
	access := tftypes.NewValue(accessType, map[string]tftypes.Value{
		"admin_cidrs": cidrs, "ssh_public_keys": tftypes.NewValue(accessType.AttributeTypes["ssh_public_keys"], nil),
		"bastion": tftypes.NewValue(accessType.AttributeTypes["bastion"], nil),
	})
	num := func(n int) tftypes.Value { return tftypes.NewValue(tftypes.Number, n) }
	cfg := dynamicValue(t, s, map[string]tftypes.Value{
		"name": str("demo"), "aws": awsValue(s, "eu-west-1"), "access": access,
		"node_pools": tftypes.NewValue(poolsType, map[string]tftypes.Value{
			"linux": pool(map[string]tftypes.Value{"count": num(1)}),
			"win":   pool(map[string]tftypes.Value{"os": str("windows"), "isolation": str("vm"), "count": num(1)}),
		}),
	})
	resp, err := srv.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: "mixedk8s_cluster", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		`AttributeName("node_pools").ElementKeyString("win").AttributeName("isolation")`: `Invalid node_pools["win"].isolation`,
		`AttributeName("access").AttributeName("admin_cidrs").ElementKeyInt(1)`:          `Invalid access.admin_cidrs[1]`,
	}
	if len(resp.Diagnostics) != len(want) {
		t.Errorf("got %d diagnostics, want %d", len(resp.Diagnostics), len(want))
	}
	for _, d := range resp.Diagnostics {
		if d.Attribute == nil {
			t.Errorf("diagnostic without attribute: %s", d.Summary)
			continue
		}
		if want[d.Attribute.String()] != d.Summary || !strings.Contains(d.Detail, "Fix: ") {
			t.Errorf("diagnostic at %s: %q / %q", d.Attribute, d.Summary, d.Detail)
		}
	}

	// The same mistakes with the win pool's count unknown (from another
	// resource): the isolation problem is still certain, the pool count is not judged.
	cfg = dynamicValue(t, s, map[string]tftypes.Value{
		"name": str("demo"), "aws": awsValue(s, "eu-west-1"),
		"node_pools": tftypes.NewValue(poolsType, map[string]tftypes.Value{
			"win": pool(map[string]tftypes.Value{"os": str("windows"), "count": tftypes.NewValue(tftypes.Number, tftypes.UnknownValue)}),
		}),
	})
	resp, err = srv.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: "mixedk8s_cluster", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "ValidateResourceConfig with an unknown count", resp.Diagnostics)
}

func TestLookupsTakeAtMostOneCloud(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, schemas := newMemBackend().server(t)
	s := schemas.DataSourceSchemas["mixedk8s_cluster"]
	gcpType := s.ValueType().(tftypes.Object).AttributeTypes["gcp"].(tftypes.Object)
	gcp := tftypes.NewValue(gcpType, map[string]tftypes.Value{"project": str("p"), "region": str("europe-west4"), "zone": str("europe-west4-a"), "kms_key_name": tftypes.NewValue(tftypes.String, nil), "network": tftypes.NewValue(tftypes.String, nil), "subnetwork": tftypes.NewValue(tftypes.String, nil), "network_project": tftypes.NewValue(tftypes.String, nil)})
	cfg := dynamicValue(t, s, map[string]tftypes.Value{"name": str("x"), "aws": awsValue(s, "eu-west-1"), "gcp": gcp})
	resp, err := srv.ValidateDataResourceConfig(ctx, &tfprotov6.ValidateDataResourceConfigRequest{TypeName: "mixedk8s_cluster", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Diagnostics) == 0 || resp.Diagnostics[0].Severity != tfprotov6.DiagnosticSeverityError {
		t.Errorf("aws and gcp together were accepted: %+v", resp.Diagnostics)
	}
}

// The provider as released reaches GCP through its gcp block: a project
// that is not a project ID, or an endpoint with a path, is refused when the
// configuration is validated, at the attribute, with what to write instead.
func TestProviderGCPBlockIsValidatedAtPlanTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := providerserver.NewProtocol6WithError(provider.New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	gtyp := schemas.Provider.ValueType().(tftypes.Object).AttributeTypes["gcp"].(tftypes.Object)
	gcp := func(project, endpoint string) *tfprotov6.DynamicValue {
		vals := map[string]tftypes.Value{}
		for n, at := range gtyp.AttributeTypes {
			vals[n] = tftypes.NewValue(at, nil)
		}
		vals["project"], vals["endpoint"] = str(project), str(endpoint)
		return dynamicValue(t, schemas.Provider, map[string]tftypes.Value{"gcp": tftypes.NewValue(gtyp, vals)})
	}
	for _, tc := range []struct{ project, endpoint, want string }{
		{"My Project", "https://compute.googleapis.com", "project"},
		{"123456789012", "https://compute.googleapis.com", "project"},
		{"my-project", "https://compute.googleapis.com/compute/v1/", "endpoint"},
		{"my-project", "http://127.0.0.1:8443", "endpoint"},
	} {
		resp, err := srv.ValidateProviderConfig(ctx, &tfprotov6.ValidateProviderConfigRequest{Config: gcp(tc.project, tc.endpoint)})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Attribute.String() != tftypes.NewAttributePath().WithAttributeName("gcp").WithAttributeName(tc.want).String() {
			t.Errorf("project %q endpoint %q: diagnostics %+v; want one at gcp.%s", tc.project, tc.endpoint, resp.Diagnostics, tc.want)
		}
	}
	resp, err := srv.ValidateProviderConfig(ctx, &tfprotov6.ValidateProviderConfigRequest{Config: gcp("my-project", "https://127.0.0.1:8443")})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "a valid gcp block", resp.Diagnostics)
}

// A bad default bastion on the provider is reported at plan time as the
// provider's, since the resource has no attribute to point at.
func TestPlanReportsAProviderBastionProblem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := providerserver.NewProtocol6WithError(provider.NewWithBackend("test", newMemBackend())())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	btyp := schemas.Provider.ValueType().(tftypes.Object).AttributeTypes["bastion"].(tftypes.Object)
	bastion := tftypes.NewValue(btyp, map[string]tftypes.Value{
		"address": str("bastion.example.com"), "user": tftypes.NewValue(tftypes.String, nil),
		"host_key": str("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"), "private_key": tftypes.NewValue(tftypes.String, nil),
	})
	conf, err := srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: dynamicValue(t, schemas.Provider, map[string]tftypes.Value{"bastion": bastion})})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "ConfigureProvider", conf.Diagnostics)
	s := schemas.ResourceSchemas["mixedk8s_cluster"]
	typ := s.ValueType().(tftypes.Object)
	cfg := dynamicValue(t, s, map[string]tftypes.Value{"name": str("pb"), "aws": awsValue(s, "eu-west-1")})
	null, _ := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, nil))
	resp, err := srv.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: "mixedk8s_cluster", PriorState: &null, ProposedNewState: cfg, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Summary != "Invalid provider bastion.address" || !strings.Contains(resp.Diagnostics[0].Detail, "Fix: ") {
		t.Errorf("diagnostics %+v", resp.Diagnostics)
	}
}

// A cluster on GCP is judged at validation, before any API call: a project
// given by number, a zone outside the region and a Hyper-V pool each get
// one error at their attribute, with the fix.
func TestValidateResourceConfigJudgesAGCPCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, schemas := newMemBackend().server(t)
	s := schemas.ResourceSchemas["mixedk8s_cluster"]
	typ := s.ValueType().(tftypes.Object)
	gtyp := typ.AttributeTypes["gcp"].(tftypes.Object)
	poolsType := typ.AttributeTypes["node_pools"].(tftypes.Map)
	poolType := poolsType.ElementType.(tftypes.Object)
	pool := func(set map[string]tftypes.Value) tftypes.Value { return objectValue(poolType, set) }
	one := tftypes.NewValue(tftypes.Number, 1)
	cfg := dynamicValue(t, s, map[string]tftypes.Value{
		"name": str("demo"),
		"gcp":  tftypes.NewValue(gtyp, map[string]tftypes.Value{"project": str("123456789012"), "region": str("europe-west4"), "zone": str("us-central1-a"), "kms_key_name": tftypes.NewValue(tftypes.String, nil), "network": tftypes.NewValue(tftypes.String, nil), "subnetwork": tftypes.NewValue(tftypes.String, nil), "network_project": tftypes.NewValue(tftypes.String, nil)}),
		"node_pools": tftypes.NewValue(poolsType, map[string]tftypes.Value{
			"linux": pool(map[string]tftypes.Value{"count": one}),
			"win":   pool(map[string]tftypes.Value{"os": str("windows"), "isolation": str("hyperv"), "count": one}),
		}),
	})
	resp, err := srv.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: "mixedk8s_cluster", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		`AttributeName("gcp").AttributeName("project")`:                                  true,
		`AttributeName("gcp").AttributeName("zone")`:                                     true,
		`AttributeName("node_pools").ElementKeyString("win").AttributeName("isolation")`: true,
	}
	got := map[string]bool{}
	for _, d := range resp.Diagnostics {
		if d.Attribute == nil || !want[d.Attribute.String()] || !strings.Contains(d.Detail, "Fix: ") {
			t.Errorf("unexpected diagnostic at %v: %q / %q", d.Attribute, d.Summary, d.Detail)
			continue
		}
		got[d.Attribute.String()] = true
	}
	if len(got) != len(want) {
		t.Errorf("diagnostics at %v, want one at each of %v", got, want)
	}
}

// objectValue is an object of typ: the given attributes, every other one null.
func objectValue(typ tftypes.Object, set map[string]tftypes.Value) tftypes.Value {
	vals := map[string]tftypes.Value{}
	for n, at := range typ.AttributeTypes {
		vals[n] = tftypes.NewValue(at, nil)
	}
	for n, v := range set {
		vals[n] = v
	}
	return tftypes.NewValue(typ, vals)
}

// checkClientAttributes checks the attributes the kubernetes and helm
// providers take: host, the CA in both forms, and the kubeconfig's own
// client certificate and key, which must form a key pair.
func checkClientAttributes(t *testing.T, got map[string]tftypes.Value, creds cluster.KubeconfigCredentials) {
	t.Helper()
	if host := asString(t, got["host"]); host != "https://"+asString(t, got["api_endpoint"]) {
		t.Errorf("host %q, want https:// and api_endpoint %q", host, asString(t, got["api_endpoint"]))
	}
	if ca, err := base64.StdEncoding.DecodeString(asString(t, got["ca_certificate_base64"])); err != nil || string(ca) != asString(t, got["ca_certificate"]) {
		t.Errorf("ca_certificate_base64 is not ca_certificate encoded (%v)", err)
	}
	cert, key := asString(t, got["client_certificate"]), asString(t, got["client_key"])
	if cert != creds.CertPEM || key != creds.KeyPEM {
		t.Error("client_certificate and client_key are not the kubeconfig's")
	}
	if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
		t.Errorf("client_certificate and client_key do not form a key pair: %v", err)
	}
}

// A state an earlier release wrote holds a year-long kubeconfig and no
// kubeconfig_validity: the next refresh replaces it with one of the default
// life, under a user of its own, and a refresh right after keeps that one.
func TestARefreshReplacesAKubeconfigThatOutlivesItsValidity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newMemBackend()
	b.applyDemo(t, "yearlong")
	opts := b.direct()
	old, err := cluster.Kubeconfig(ctx, cluster.Spec{Name: "yearlong", AWS: &cluster.AWSSpec{Region: "eu-west-1"}}, opts, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oldCreds, _ := cluster.ReadKubeconfig(old)
	srv, schemas := b.server(t)
	s := schemas.ResourceSchemas["mixedk8s_cluster"]
	read := func(state *tfprotov6.DynamicValue) (*tfprotov6.DynamicValue, map[string]tftypes.Value) {
		t.Helper()
		resp, err := srv.ReadResource(ctx, &tfprotov6.ReadResourceRequest{TypeName: "mixedk8s_cluster", CurrentState: state})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range resp.Diagnostics {
			if d.Severity == tfprotov6.DiagnosticSeverityError {
				t.Fatalf("read: %s: %s", d.Summary, d.Detail)
			}
		}
		return resp.NewState, attrs(t, s, resp.NewState)
	}
	state, got := read(dynamicValue(t, s, map[string]tftypes.Value{"name": str("yearlong"), "aws": awsValue(s, "eu-west-1"), "kubeconfig": str(string(old))}))
	var kc, validity string
	_ = got["kubeconfig"].As(&kc)
	_ = got["kubeconfig_validity"].As(&validity)
	creds, err := cluster.ReadKubeconfig([]byte(kc))
	if err != nil {
		t.Fatal(err)
	}
	if life := creds.NotAfter.Sub(creds.NotBefore); kc == string(old) || life > time.Hour+10*time.Minute {
		t.Errorf("after a refresh the kubeconfig in state lives %s (renewed: %v), want the default hour", life, kc != string(old))
	}
	if validity != "1h" {
		t.Errorf("kubeconfig_validity %q after a refresh of an earlier release's state, want the default 1h", validity)
	}
	if creds.User == oldCreds.User || !strings.HasPrefix(creds.User, "yearlong-admin-") {
		t.Errorf("renewed kubeconfig's user %q (the old one %q), want a new yearlong-admin-... user", creds.User, oldCreds.User)
	}
	var cert string
	_ = got["client_certificate"].As(&cert)
	if cert != creds.CertPEM {
		t.Error("client_certificate is not the renewed kubeconfig's certificate")
	}
	_, again := read(state)
	var kc2 string
	_ = again["kubeconfig"].As(&kc2)
	if kc2 != kc {
		t.Error("a second refresh right after issued another kubeconfig")
	}
	// Each read released the provisioner it built.
	if built, released := b.built.Load(), b.released.Load(); built != 2 || released != 2 {
		t.Errorf("%d Options built and %d released, want the two reads' 2 and 2", built, released)
	}
}

func TestKubeconfigValidityIsCheckedAtValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, schemas := newMemBackend().server(t)
	s := schemas.ResourceSchemas["mixedk8s_cluster"]
	for v, wantErr := range map[string]bool{"2d": true, "5m": true, "8761h": true, "soon": true, "10m": false, "1h": false, "8760h": false} {
		cfg := dynamicValue(t, s, map[string]tftypes.Value{"name": str("x"), "aws": awsValue(s, "eu-west-1"), "kubeconfig_validity": str(v)})
		resp, err := srv.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: "mixedk8s_cluster", Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		var at []string
		for _, d := range resp.Diagnostics {
			if d.Attribute != nil && d.Attribute.String() == tftypes.NewAttributePath().WithAttributeName("kubeconfig_validity").String() {
				at = append(at, d.Detail)
			}
		}
		if got := len(at) == 1 && strings.Contains(at[0], "Fix:") && strings.Contains(at[0], "10m0s and 8760h0m0s"); got != wantErr || (!wantErr && len(at) > 0) {
			t.Errorf("kubeconfig_validity %q: errors at the attribute %q, want an error with the range and the fix: %v", v, at, wantErr)
		}
	}
}
