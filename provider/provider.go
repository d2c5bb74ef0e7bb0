// Package provider is the mixedk8s Terraform provider on
// terraform-plugin-framework. It maps HCL to cluster.Spec and back and holds
// no provisioning logic of its own: everything that acts on a cloud or a node
// lives in the cluster library, reached through a Backend.
//
// One file per resource, data source and ephemeral resource, and one per
// cloud (aws.go, azure.go, gcp.go: its location attributes, provider
// attribute, spec mapping and backend; cloud.go is what they share). The
// mixedk8s_cluster resource is cluster_schema.go, cluster_plan.go (plan
// modification) and cluster_resource.go (CRUD). The schema descriptions are
// the documentation (tfplugindocs renders docs/ from them).
package provider

import (
	"context"
	"maps"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// Provider is the mixedk8s provider.
type Provider struct {
	version string
	// backend, when set, replaces the one Configure builds from the provider
	// block: tests pass an in-memory one.
	backend backend
}

var (
	_ provider.Provider                       = (*Provider)(nil)
	_ provider.ProviderWithEphemeralResources = (*Provider)(nil)
)

// New returns a constructor for the provider, as providerserver wants it.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &Provider{version: version} }
}

// providerData is what Configure hands to resources, data sources and
// ephemeral resources.
type providerData struct {
	backend backend
	config  providerConfig
}

// providerConfig is the provider block.
type providerConfig struct {
	AWS     *awsProviderConfig     `tfsdk:"aws"`
	Azure   *azureProviderConfig   `tfsdk:"azure"`
	GCP     *gcpProviderConfig     `tfsdk:"gcp"`
	Bastion *bastionProviderConfig `tfsdk:"bastion"`
	// DefaultTags are merged under every cluster's tags, as terraform-provider-aws's default_tags are.
	DefaultTags *defaultTagsConfig `tfsdk:"default_tags"`
}

type defaultTagsConfig struct {
	Tags types.Map `tfsdk:"tags"`
}

// tags merges the provider's default tags with a cluster's, which win
// (terraform-provider-aws internal/tags: DefaultConfig.MergeTags).
func (c providerConfig) tags(own map[string]string) map[string]string {
	if c.DefaultTags == nil || c.DefaultTags.Tags.IsNull() || c.DefaultTags.Tags.IsUnknown() || len(c.DefaultTags.Tags.Elements()) == 0 {
		return own
	}
	out := map[string]string{}
	for k, v := range c.DefaultTags.Tags.Elements() {
		if s, ok := v.(types.String); ok && !s.IsNull() && !s.IsUnknown() {
			out[k] = s.ValueString()
		}
	}
	maps.Copy(out, own)
	return out
}

type bastionProviderConfig struct {
	Address    types.String `tfsdk:"address"`
	User       types.String `tfsdk:"user"`
	HostKey    types.String `tfsdk:"host_key"`
	PrivateKey types.String `tfsdk:"private_key"`
}

// defaultCloud is the one cloud configured on the provider, or "".
func (c providerConfig) defaultCloud() string {
	var names []string
	if c.AWS != nil {
		names = append(names, "aws")
	}
	if c.Azure != nil {
		names = append(names, "azure")
	}
	if c.GCP != nil {
		names = append(names, "gcp")
	}
	if len(names) != 1 {
		return ""
	}
	return names[0]
}

// bastion is the provider's default bastion as the library's spec has it;
// the private key stays with the backend.
func (c providerConfig) bastion() *cluster.BastionSpec {
	if c.Bastion == nil {
		return nil
	}
	return &cluster.BastionSpec{
		Address: c.Bastion.Address.ValueString(),
		User:    c.Bastion.User.ValueString(),
		HostKey: c.Bastion.HostKey.ValueString(),
	}
}

// Metadata implements provider.Provider.
func (p *Provider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "mixedk8s"
	resp.Version = p.version
}

const caBundleDescription = "PEM-encoded CA certificates to trust, in addition to the system's, for the cloud API endpoints " +
	"(a private endpoint, a TLS-inspecting proxy, or the lab's emulators). Pass a file's contents with `file(...)`."

// Schema implements provider.Provider.
func (p *Provider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	attrs := map[string]schema.Attribute{
		"bastion": bastionProviderAttribute(),
		"default_tags": schema.SingleNestedAttribute{
			Optional: true,
			Description: "Tags every `mixedk8s_cluster` of this provider puts on its cloud objects, under the resource's own `tags`, " +
				"which win for the same key (as the AWS provider's `default_tags`). The same rules apply as to `tags`.",
			Attributes: map[string]schema.Attribute{
				"tags": schema.MapAttribute{Optional: true, ElementType: types.StringType, Description: "The tags, by key."},
			},
		},
	}
	for _, c := range cloudBlocks {
		attrs[c.name] = c.provider
	}
	resp.Schema = schema.Schema{
		Description: "Builds self-managed Kubernetes clusters with a Linux control plane and Linux and Windows worker pools on Azure, AWS and GCP.",
		MarkdownDescription: "Builds self-managed Kubernetes clusters with a Linux control plane and Linux and Windows worker pools on Azure, AWS and GCP.\n\n" +
			"Each cloud attribute configures how the provider reaches that cloud's API. Unless the `azure` attribute chooses a credential " +
			"(`client_secret`, `client_certificate_path`, `use_oidc`, `use_msi` or `use_cli`, as azurerm names them), " +
			"each cloud's standard credential chain is used (AWS: environment, shared config and credentials files, SSO, instance or container role, " +
			"then the role `aws.assume_role` names; Azure: environment, workload identity, managed identity, Azure CLI; GCP: Application Default Credentials). " +
			"With an `aws` or `azure` attribute the provider checks that cloud's credentials once, when it is configured (STS GetCallerIdentity; a token for Azure Resource Manager), " +
			"and reports a failure at that attribute. " +
			"A cluster's own location (region, subscription, project) is set on the `mixedk8s_cluster` resource.",
		Attributes: attrs,
	}
}

// bastionProviderAttribute is the provider's default bastion.
func bastionProviderAttribute() schema.Attribute {
	return schema.SingleNestedAttribute{
		Optional: true,
		Description: "Default SSH jump host every node is reached through, for clusters whose `access.bastion` is not set. " +
			"The host key is pinned: the provider never trusts a key on first use.",
		Attributes: map[string]schema.Attribute{
			"address": schema.StringAttribute{
				Required:    true,
				Description: "The bastion as `host:port`.",
			},
			"user": schema.StringAttribute{
				Optional:    true,
				Description: "User to log in as. Defaults to `" + cluster.DefaultBastionUser + "`.",
			},
			"host_key": schema.StringAttribute{
				Required:    true,
				Description: "The bastion's SSH host key in authorized_keys format (`ssh-ed25519 AAAA...`); check it out of band.",
			},
			"private_key": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "PEM or OpenSSH private key that authenticates to the bastion. Without it, and without `access.bastion.private_key_file`, the cluster's own SSH key (the one its nodes trust, derived from the cluster's seed) authenticates; ssh-agent is not consulted.",
			},
		},
	}
}

// Configure implements provider.Provider: it chooses the backend and, with
// an aws block, checks the AWS credentials (STS GetCallerIdentity, after
// assume_role), and each other cloud block's credentials its checkCredentials.
func (p *Provider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerConfig
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data := &providerData{backend: p.backend, config: cfg}
	if data.backend == nil {
		// Credentials are checked once here, at the provider block, not by
		// the first cluster that needs them.
		resp.Diagnostics.Append(checkAWSCredentials(ctx, cfg.AWS)...)
		for _, c := range cloudBlocks {
			if c.checkCredentials != nil {
				resp.Diagnostics.Append(c.checkCredentials(ctx, cfg)...)
			}
		}
		if resp.Diagnostics.HasError() {
			return
		}
		data.backend = cloudBackend{config: cfg}
	}
	resp.ResourceData = data
	resp.DataSourceData = data
	resp.EphemeralResourceData = data
}

// Resources implements provider.Provider.
func (p *Provider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newClusterResource}
}

// DataSources implements provider.Provider.
func (p *Provider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{newClusterDataSource}
}

// EphemeralResources implements provider.ProviderWithEphemeralResources.
func (p *Provider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{newKubeconfigEphemeral}
}
