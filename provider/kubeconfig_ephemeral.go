package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

var pathName = path.Root("name")

// kubeconfigEphemeral issues an admin kubeconfig that Terraform never
// stores: in plan or state. It needs Terraform 1.10 or OpenTofu 1.11.
// Terraform opens it on every plan and apply, so each open issues a
// certificate that lives one run (validity), not a year.
type kubeconfigEphemeral struct {
	data *providerData
}

var (
	_ ephemeral.EphemeralResourceWithConfigure      = (*kubeconfigEphemeral)(nil)
	_ ephemeral.EphemeralResourceWithValidateConfig = (*kubeconfigEphemeral)(nil)
)

// ValidateConfig refuses a validity out of range before anything is opened.
func (e *kubeconfigEphemeral) ValidateConfig(ctx context.Context, req ephemeral.ValidateConfigRequest, resp *ephemeral.ValidateConfigResponse) {
	var v types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, pathValidity, &v)...)
	if !resp.Diagnostics.HasError() {
		ephemeralValidity(v, &resp.Diagnostics)
	}
}

func newKubeconfigEphemeral() ephemeral.EphemeralResource { return &kubeconfigEphemeral{} }

type kubeconfigModel struct {
	Name types.String `tfsdk:"name"`
	cloudAttrs
	Validity types.String `tfsdk:"validity"`
	endpointAttrs
	Kubeconfig types.String `tfsdk:"kubeconfig"`
	credentialAttrs
	ExpiresAt types.String `tfsdk:"expires_at"`
}

// The life of an ephemeral kubeconfig's certificate: long enough for one
// run's kubernetes and helm resources, short because it cannot be revoked.
const (
	defaultEphemeralValidity = time.Hour
	maxEphemeralValidity     = 24 * time.Hour
)

var pathValidity = path.Root("validity")

// ephemeralValidity reads the validity attribute; ok is false when diags say why.
func ephemeralValidity(v types.String, diags *diag.Diagnostics) (time.Duration, bool) {
	if v.IsNull() || v.IsUnknown() {
		return defaultEphemeralValidity, true
	}
	return checkValidity(v.ValueString(), pathValidity, time.Minute, maxEphemeralValidity, defaultEphemeralValidity.String(), diags)
}

// shortDuration is d as a user writes it: "1h", "10m", "8760h", not "1h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// checkValidity parses a certificate validity attribute at p, refusing one
// outside [lo, hi] with the range and the default; ok is false when diags say why.
func checkValidity(v string, p path.Path, lo, hi time.Duration, def string, diags *diag.Diagnostics) (time.Duration, bool) {
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		name := p.String()
		diags.AddAttributeError(p, "Invalid "+name,
			fmt.Sprintf("%s %q is not a duration between %s and %s.\n\nFix: use a Go duration such as \"30m\" or \"4h\"; the default is %s.", name, v, lo, hi, def))
		return 0, false
	}
	return d, true
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
		"name": schema.StringAttribute{Required: true, Description: lookupNameDescription},
		"validity": schema.StringAttribute{
			Optional: true,
			Description: fmt.Sprintf("How long the kubeconfig's client certificate works, as a Go duration between `1m` and `%s`. Default `%s`: "+
				"a new one is issued on every plan and apply, and a certificate cannot be revoked before it ends.", shortDuration(maxEphemeralValidity), shortDuration(defaultEphemeralValidity)),
		},
		"api_endpoint":          schema.StringAttribute{Computed: true, Description: descAPIEndpoint},
		"host":                  schema.StringAttribute{Computed: true, Description: descHost},
		"ca_certificate":        schema.StringAttribute{Computed: true, Description: descCACertificate},
		"ca_certificate_base64": schema.StringAttribute{Computed: true, Description: descCACertificateBase64},
		"client_certificate":    schema.StringAttribute{Computed: true, Description: descClientCertificate},
		"client_key":            schema.StringAttribute{Computed: true, Sensitive: true, Description: descClientKey},
		"kubeconfig": schema.StringAttribute{
			Computed: true, Sensitive: true,
			Description: "A cluster-admin kubeconfig (group `kubeadm:cluster-admins`). Unknown while the cluster does not exist yet (the first plan).",
		},
		"expires_at": schema.StringAttribute{Computed: true, Description: "When the kubeconfig's client certificate stops working (RFC 3339)."},
	}
	for _, c := range cloudBlocks {
		attrs[c.name] = c.ephemeralAttribute()
	}
	resp.Schema = schema.Schema{
		Description: "Issues a short-lived cluster-admin kubeconfig without storing it in the plan or the state. " +
			"Use it to configure the kubernetes and helm providers. While the cluster does not exist yet (the plan that creates it), " +
			"its attributes are unknown and Terraform plans the resources that use them as known after apply. " +
			"Requires Terraform 1.10 or later, or OpenTofu 1.11 or later.",
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
	validity, ok := ephemeralValidity(m.Validity, &resp.Diagnostics)
	if !ok {
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
	defer release(opts)
	observed, err := cluster.Observe(ctx, spec, opts)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read cluster %q", spec.Name), err.Error())
		return
	}
	if observed.Endpoint == nil {
		// Terraform opens ephemeral resources while planning, before the
		// cluster this one names is created: unknown values let that plan
		// go on, and the apply opens it again once the cluster exists.
		resp.Diagnostics.AddAttributeWarning(pathName, fmt.Sprintf("Cluster %q has no control plane yet", spec.Name),
			"The kubeconfig is unknown until the cluster's control plane exists; this is expected in the plan that creates the cluster.\n\n"+
				"If the cluster should exist already, check the name and the cloud location.")
		m.endpointAttrs = unknownEndpoint()
		m.Kubeconfig, m.ExpiresAt = types.StringUnknown(), types.StringUnknown()
		m.credentialAttrs, _, _ = credentialsOf(m.Kubeconfig)
		resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
		return
	}
	kc, err := cluster.Kubeconfig(ctx, spec, opts, validity)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot issue a kubeconfig for cluster %q", spec.Name), err.Error())
		return
	}
	m.endpointAttrs = endpointOf(observed.Endpoint)
	m.Kubeconfig = types.StringValue(string(kc))
	creds, end, err := credentialsOf(m.Kubeconfig)
	m.credentialAttrs = creds
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read the kubeconfig issued for cluster %q", spec.Name), err.Error())
		return
	}
	m.ExpiresAt = types.StringValue(end.UTC().Format(time.RFC3339))
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}
