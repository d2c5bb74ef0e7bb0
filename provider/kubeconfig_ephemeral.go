package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

var pathName = path.Root("name")

// kubeconfigEphemeral issues an admin kubeconfig that Terraform never
// stores: in plan or state. It needs Terraform 1.10 or OpenTofu 1.11.
type kubeconfigEphemeral struct {
	data *providerData
}

var _ ephemeral.EphemeralResourceWithConfigure = (*kubeconfigEphemeral)(nil)

func newKubeconfigEphemeral() ephemeral.EphemeralResource { return &kubeconfigEphemeral{} }

type kubeconfigModel struct {
	Name types.String `tfsdk:"name"`
	cloudAttrs
	APIEndpoint   types.String `tfsdk:"api_endpoint"`
	CACertificate types.String `tfsdk:"ca_certificate"`
	Kubeconfig    types.String `tfsdk:"kubeconfig"`
}

func (e *kubeconfigEphemeral) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_kubeconfig"
}

func (e *kubeconfigEphemeral) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	if req.ProviderData == nil {
		return
	}
	data, ok := req.ProviderData.(*providerData)
	if !ok {
		resp.Diagnostics.AddError("Unexpected provider data", fmt.Sprintf("expected *providerData, got %T; this is a bug in the provider", req.ProviderData))
		return
	}
	e.data = data
}

func (e *kubeconfigEphemeral) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	attrs := map[string]schema.Attribute{
		"name":           schema.StringAttribute{Required: true, Description: lookupNameDescription},
		"api_endpoint":   schema.StringAttribute{Computed: true, Description: "The API server as `host:port`."},
		"ca_certificate": schema.StringAttribute{Computed: true, Description: "PEM certificate of the cluster CA."},
		"kubeconfig": schema.StringAttribute{
			Computed: true, Sensitive: true,
			Description: "A cluster-admin kubeconfig (group `kubeadm:cluster-admins`).",
		},
	}
	for _, c := range cloudBlocks {
		attrs[c.name] = c.ephemeralAttribute()
	}
	resp.Schema = schema.Schema{
		Description: "Issues a cluster-admin kubeconfig for an existing cluster without storing it in the plan or the state. " +
			"Use it to configure the kubernetes and helm providers. Requires Terraform 1.10 or later, or OpenTofu 1.11 or later.",
		Attributes: attrs,
	}
}

func (e *kubeconfigEphemeral) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	ctx = withLogMasking(ctx)
	var m kubeconfigModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, diags := lookupModel{Name: m.Name, cloudAttrs: m.cloudAttrs}.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	if e.data == nil {
		resp.Diagnostics.AddError("Provider not configured", "The mixedk8s provider was not configured before the kubeconfig was opened; this is a bug in the provider or Terraform.")
		return
	}
	opts, err := e.data.backend.Options(ctx, spec)
	if err != nil {
		resp.Diagnostics.AddError("Cannot reach the cluster's cloud", err.Error())
		return
	}
	observed, err := cluster.Observe(ctx, spec, opts)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read cluster %q", spec.Name), err.Error())
		return
	}
	if observed.Endpoint == nil {
		resp.Diagnostics.AddAttributeError(pathName, fmt.Sprintf("Cluster %q has no control plane", spec.Name),
			"No bootstrapped control plane was found for this cluster.\n\nFix: check the name and the cloud location, and apply the mixedk8s_cluster resource first.")
		return
	}
	kc, err := cluster.Kubeconfig(ctx, spec, opts)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot issue a kubeconfig for cluster %q", spec.Name), err.Error())
		return
	}
	m.APIEndpoint = types.StringValue(observed.Endpoint.APIEndpoint)
	m.CACertificate = types.StringValue(observed.Endpoint.CACertPEM)
	m.Kubeconfig = types.StringValue(string(kc))
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}
