package provider_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/mixedk8s/mixedk8s/provider"
	ec2lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

// objectOf is a value of an object type: the given attributes, the others null.
func objectOf(typ tftypes.Type, set map[string]tftypes.Value) tftypes.Value {
	ot := typ.(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for n, at := range ot.AttributeTypes {
		vals[n] = tftypes.NewValue(at, nil)
		if v, ok := set[n]; ok {
			vals[n] = v
		}
	}
	return tftypes.NewValue(ot, vals)
}

// awsBlock is the provider block with the given aws attributes;
// "assume_role" and "endpoints" take maps of their own attributes.
func awsBlock(t *testing.T, s *tfprotov6.Schema, set map[string]any) *tfprotov6.DynamicValue {
	t.Helper()
	atyp := s.ValueType().(tftypes.Object).AttributeTypes["aws"].(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for k, v := range set {
		switch v := v.(type) {
		case string:
			vals[k] = str(v)
		case map[string]string:
			inner := map[string]tftypes.Value{}
			for ik, iv := range v {
				inner[ik] = str(iv)
			}
			vals[k] = objectOf(atyp.AttributeTypes[k], inner)
		}
	}
	return dynamicValue(t, s, map[string]tftypes.Value{"aws": objectOf(atyp, vals)})
}

func providerServer(t *testing.T) (tfprotov6.ProviderServer, *tfprotov6.Schema) {
	t.Helper()
	srv, err := providerserver.NewProtocol6WithError(provider.New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := srv.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, schemas.Provider
}

// assume_role and endpoints are refused when the configuration is
// validated, at the attribute, before any call to STS.
func TestProviderAWSBlockIsValidatedAtPlanTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, s := providerServer(t)
	const role = "arn:aws:iam::123456789012:role/deployer"
	for _, tc := range []struct {
		name string
		set  map[string]any
		want []string // attribute path, "" for none
	}{
		{"valid", map[string]any{"assume_role": map[string]string{"role_arn": "arn:aws:iam::123456789012:role/ops/deployer", "session_name": "ci@platform", "external_id": "platform-7", "duration": "1h"},
			"endpoints": map[string]string{"ec2": "https://vpce-0abc.ec2.eu-west-1.vpce.amazonaws.com", "sts": "https://127.0.0.1:8443/sts"}}, nil},
		{"not a role ARN", map[string]any{"assume_role": map[string]string{"role_arn": "arn:aws:iam:123456789012:role/deployer"}}, []string{"assume_role", "role_arn"}},
		{"a user ARN", map[string]any{"assume_role": map[string]string{"role_arn": "arn:aws:iam::123456789012:user/deployer"}}, []string{"assume_role", "role_arn"}},
		{"duration under 15m", map[string]any{"assume_role": map[string]string{"role_arn": role, "duration": "10m"}}, []string{"assume_role", "duration"}},
		{"duration over 12h", map[string]any{"assume_role": map[string]string{"role_arn": role, "duration": "13h"}}, []string{"assume_role", "duration"}},
		{"duration in seconds", map[string]any{"assume_role": map[string]string{"role_arn": role, "duration": "3600"}}, []string{"assume_role", "duration"}},
		{"session name with a space", map[string]any{"assume_role": map[string]string{"role_arn": role, "session_name": "ci run"}}, []string{"assume_role", "session_name"}},
		{"external ID of one character", map[string]any{"assume_role": map[string]string{"role_arn": role, "external_id": "x"}}, []string{"assume_role", "external_id"}},
		{"endpoint without a scheme", map[string]any{"endpoints": map[string]string{"ssm": "ssm.eu-west-1.amazonaws.com"}}, []string{"endpoints", "ssm"}},
	} {
		resp, err := srv.ValidateProviderConfig(ctx, &tfprotov6.ValidateProviderConfigRequest{Config: awsBlock(t, s, tc.set)})
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == nil {
			noDiags(t, tc.name, resp.Diagnostics)
			continue
		}
		want := tftypes.NewAttributePath().WithAttributeName("aws")
		for _, a := range tc.want {
			want = want.WithAttributeName(a)
		}
		if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Attribute.String() != want.String() {
			t.Errorf("%s: diagnostics %+v; want one at %s", tc.name, resp.Diagnostics, want)
		}
	}
}

// The provider checks its AWS credentials once, in Configure, against STS:
// with the region from AWS_REGION, through assume_role, and with an error at
// the aws block naming the chain and the docs when they do not work. Not
// parallel: it sets the environment the SDK reads.
func TestProviderChecksAWSCredentialsAtConfigure(t *testing.T) {
	emu, err := ec2lab.New(ec2lab.Options{Region: "eu-west-3", Credentials: map[string]string{"AKIDPROVIDER": "provider-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	roleARN, err := emu.CreateRole(ec2lab.Role{Name: "mixedk8s-deployer", ExternalID: "platform-7"})
	if err != nil {
		t.Fatal(err)
	}
	ca := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(ca, emu.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDPROVIDER", "AWS_SECRET_ACCESS_KEY": "provider-secret", "AWS_REGION": "eu-west-3",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	caPEM := string(emu.CACertPEM())
	configure := func(set map[string]any) []*tfprotov6.Diagnostic {
		t.Helper()
		srv, s := providerServer(t)
		set["ca_bundle"] = caPEM
		resp, err := srv.ConfigureProvider(context.Background(), &tfprotov6.ConfigureProviderRequest{TerraformVersion: "1.8.5", Config: awsBlock(t, s, set)})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Diagnostics
	}
	const assumed = "arn:aws:sts::123456789012:assumed-role/mixedk8s-deployer/acc"

	// Given no region in the block, AWS_REGION's, and the role with its external ID: no diagnostics, and STS saw the session.
	noDiags(t, "assume_role with the right external ID", configure(map[string]any{
		"endpoint":    emu.URL(),
		"endpoints":   map[string]string{"sts": emu.ServiceURL("sts")},
		"assume_role": map[string]string{"role_arn": roleARN, "session_name": "acc", "external_id": "platform-7"},
	}))
	if n := emu.CallsBy()[assumed]["GetCallerIdentity"]; n != 1 {
		t.Errorf("GetCallerIdentity by %s: %d calls, want 1 (%v)", assumed, n, emu.CallsBy())
	}

	for _, tc := range []struct {
		name  string
		keyID string
		set   map[string]any
		wants []string
	}{
		{"wrong external ID", "AKIDPROVIDER", map[string]any{"endpoint": emu.URL(), "assume_role": map[string]string{"role_arn": roleARN, "external_id": "platform-8"}},
			[]string{"AccessDenied", "assume role " + roleARN, "AWS_ACCESS_KEY_ID", "with the configured external ID", "trust policy", "EnvConfigCredentials"}},
		{"keys STS does not know", "AKIDNOBODY", map[string]any{"endpoint": emu.URL()},
			[]string{"InvalidClientTokenId", "GetCallerIdentity", "refused"}},
	} {
		t.Setenv("AWS_ACCESS_KEY_ID", tc.keyID)
		diags := configure(tc.set)
		if len(diags) != 1 || diags[0].Severity != tfprotov6.DiagnosticSeverityError ||
			diags[0].Attribute.String() != tftypes.NewAttributePath().WithAttributeName("aws").String() || diags[0].Summary != "AWS credentials do not work" {
			t.Fatalf("%s: diagnostics %+v; want one error at aws", tc.name, diags)
		}
		for _, w := range append(tc.wants, "https://registry.terraform.io/providers/mixedk8s/mixedk8s/latest/docs#credentials") {
			if !strings.Contains(diags[0].Detail, w) {
				t.Errorf("%s: detail does not say %q:\n%s", tc.name, w, diags[0].Detail)
			}
		}
		for _, secret := range []string{"provider-secret", "platform-8", "platform-7"} {
			if strings.Contains(diags[0].Detail, secret) {
				t.Errorf("%s: detail shows %q:\n%s", tc.name, secret, diags[0].Detail)
			}
		}
	}
}
