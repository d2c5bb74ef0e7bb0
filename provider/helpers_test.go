package provider_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/clustertest"
	"github.com/mixedk8s/mixedk8s/provider"
)

// memBackend is one in-memory cloud and provisioner, shared by every
// provider instance a test starts, so clusters persist across its steps.
type memBackend struct {
	cloud *memory.Cloud
	prov  *clustertest.Provisioner
	// built and released count the Options built and the provisioners
	// closed, for tests of who releases what.
	built, released atomic.Int64
}

// closingProvisioner is the shared provisioner with a Close, as the agent
// provisioner has, counted by its backend.
type closingProvisioner struct {
	*clustertest.Provisioner
	b *memBackend
}

func (p closingProvisioner) Close() error { p.b.released.Add(1); return nil }

func newMemBackend() *memBackend {
	return &memBackend{cloud: memory.New(), prov: clustertest.NewProvisioner()}
}

// Options is the provider's seam: each call is counted in built.
func (b *memBackend) Options(context.Context, cluster.Spec) (cluster.Options, error) {
	b.built.Add(1)
	opts := b.direct()
	opts.Provisioner = closingProvisioner{b.prov, b}
	return opts, nil
}

// direct is the cloud and provisioner for a test's own calls, not counted.
func (b *memBackend) direct() cluster.Options {
	return cluster.Options{Cloud: b.cloud, Provisioner: b.prov, BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
}

func (b *memBackend) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"mixedk8s": providerserver.NewProtocol6WithError(provider.NewWithBackend("test", b)()),
	}
}

// server starts the provider over protocol 6 without Terraform, configured
// with an empty provider block.
func (b *memBackend) server(t *testing.T) (tfprotov6.ProviderServer, *tfprotov6.GetProviderSchemaResponse) {
	t.Helper()
	ctx := context.Background()
	srv, err := providerserver.NewProtocol6WithError(provider.NewWithBackend("test", b)())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "GetProviderSchema", schemas.Diagnostics)
	cfg := dynamicValue(t, schemas.Provider, nil)
	resp, err := srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{TerraformVersion: "1.10.0", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	noDiags(t, "ConfigureProvider", resp.Diagnostics)
	return srv, schemas
}

func noDiags(t *testing.T, what string, diags []*tfprotov6.Diagnostic) {
	t.Helper()
	for _, d := range diags {
		t.Errorf("%s: %s: %s: %s", what, d.Severity, d.Summary, d.Detail)
	}
}

// dynamicValue builds a value of the schema's type: the given attributes,
// every other one null.
func dynamicValue(t *testing.T, s *tfprotov6.Schema, set map[string]tftypes.Value) *tfprotov6.DynamicValue {
	t.Helper()
	typ := s.ValueType().(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		if v, ok := set[name]; ok {
			vals[name] = v
		} else {
			vals[name] = tftypes.NewValue(at, nil)
		}
	}
	dv, err := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, vals))
	if err != nil {
		t.Fatal(err)
	}
	return &dv
}

func str(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }

// awsValue is the aws attribute's value for a region.
func awsValue(s *tfprotov6.Schema, region string) tftypes.Value {
	typ := s.ValueType().(tftypes.Object).AttributeTypes["aws"].(tftypes.Object)
	return tftypes.NewValue(typ, map[string]tftypes.Value{"region": str(region), "zones": tftypes.NewValue(typ.AttributeTypes["zones"], nil), "kms_key_id": tftypes.NewValue(tftypes.String, nil),
		"vpc_id": tftypes.NewValue(tftypes.String, nil), "subnet_ids": tftypes.NewValue(typ.AttributeTypes["subnet_ids"], nil)})
}

// attrs decodes an object value into its attributes.
func attrs(t *testing.T, s *tfprotov6.Schema, dv *tfprotov6.DynamicValue) map[string]tftypes.Value {
	t.Helper()
	v, err := dv.Unmarshal(s.ValueType())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]tftypes.Value{}
	if err := v.As(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func asString(t *testing.T, v tftypes.Value) string {
	t.Helper()
	var s string
	if err := v.As(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// applyDemo creates a cluster with the library directly, as another
// workspace or tool would have.
func (b *memBackend) applyDemo(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	opts := b.direct()
	spec := cluster.Spec{
		Name: name, AWS: &cluster.AWSSpec{Region: "eu-west-1"},
		NodePools: map[string]cluster.PoolSpec{
			"linux": {OS: cluster.Linux, Count: 1},
			"win":   {OS: cluster.Windows, Count: 1},
		},
	}
	if _, err := cluster.Apply(ctx, spec, opts); err != nil {
		t.Fatal(err)
	}
}
