// Package provider is the mixedk8s Terraform provider on
// terraform-plugin-framework. It maps HCL to cluster.Spec and back and holds
// no provisioning logic of its own: everything that acts on a cloud or a node
// lives in the cluster library, reached through a Backend.
//
// One file per resource, data source and ephemeral resource; the schema
// descriptions are the documentation (tfplugindocs renders docs/ from them).
package provider

import (
	"context"

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
	backend Backend
}

var (
	_ provider.Provider                       = (*Provider)(nil)
	_ provider.ProviderWithEphemeralResources = (*Provider)(nil)
)

// New returns a constructor for the provider, as providerserver wants it.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &Provider{version: version} }
}

// NewWithBackend returns a constructor for a provider that acts through b
// whatever its configuration says. Every provider instance the constructor
// makes shares b, so state kept in b (an in-memory cloud) persists across
// the Terraform commands of one test.
func NewWithBackend(version string, b Backend) func() provider.Provider {
	return func() provider.Provider { return &Provider{version: version, backend: b} }
}

// providerData is what Configure hands to resources, data sources and
// ephemeral resources.
type providerData struct {
	backend Backend
	config  providerConfig
}

// providerConfig is the provider block.
type providerConfig struct {
	AWS     *awsProviderConfig     `tfsdk:"aws"`
	Azure   *azureProviderConfig   `tfsdk:"azure"`
	GCP     *gcpProviderConfig     `tfsdk:"gcp"`
	Bastion *bastionProviderConfig `tfsdk:"bastion"`
}

type awsProviderConfig struct {
	Region   types.String `tfsdk:"region"`
	Profile  types.String `tfsdk:"profile"`
	Endpoint types.String `tfsdk:"endpoint"`
	CABundle types.String `tfsdk:"ca_bundle"`
}

type azureProviderConfig struct {
	SubscriptionID          types.String `tfsdk:"subscription_id"`
	TenantID                types.String `tfsdk:"tenant_id"`
	ResourceManagerEndpoint types.String `tfsdk:"resource_manager_endpoint"`
	AuthorityHost           types.String `tfsdk:"authority_host"`
	CABundle                types.String `tfsdk:"ca_bundle"`
	KeyVaultURL             types.String `tfsdk:"key_vault_url"`
}

type gcpProviderConfig struct {
	Project  types.String `tfsdk:"project"`
	Endpoint types.String `tfsdk:"endpoint"`
	CABundle types.String `tfsdk:"ca_bundle"`
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
	resp.Schema = schema.Schema{
		Description: "Builds self-managed Kubernetes clusters with a Linux control plane and Linux and Windows worker pools on Azure, AWS and GCP.",
		MarkdownDescription: "Builds self-managed Kubernetes clusters with a Linux control plane and Linux and Windows worker pools on Azure, AWS and GCP.\n\n" +
			"Each cloud attribute configures how the provider reaches that cloud's API. Credentials are never set here: " +
			"each cloud's standard credential chain is used (AWS: environment, shared config and credentials files, SSO, instance or container role; " +
			"Azure: environment, workload identity, managed identity, Azure CLI; GCP: Application Default Credentials). " +
			"A cluster's own location (region, subscription, project) is set on the `mixedk8s_cluster` resource.",
		Attributes: map[string]schema.Attribute{
			"aws": schema.SingleNestedAttribute{
				Optional:    true,
				Description: "How to reach the AWS APIs. Credentials come from the AWS SDK's default chain (AWS_* environment variables, the shared config and credentials files, SSO, an instance or container role).",
				Attributes: map[string]schema.Attribute{
					"region": schema.StringAttribute{
						Optional:    true,
						Description: "Region used when a cluster's own region is unknown: importing a cluster, or reading a data source without an aws attribute. Defaults to the SDK's (AWS_REGION, the profile's region).",
					},
					"profile": schema.StringAttribute{
						Optional:    true,
						Description: "Named profile from the shared config and credentials files. Defaults to AWS_PROFILE, then `default`.",
					},
					"endpoint": schema.StringAttribute{
						Optional:    true,
						Description: "Base URL that replaces the EC2 endpoint (a VPC endpoint, or the lab's EC2 emulator such as `https://127.0.0.1:8443`).",
					},
					"ca_bundle": schema.StringAttribute{Optional: true, Description: caBundleDescription},
				},
			},
			"azure": schema.SingleNestedAttribute{
				Optional:    true,
				Description: "How to reach Azure Resource Manager. Credentials come from the Azure SDK's default chain (AZURE_* environment variables, workload identity, managed identity, Azure CLI).",
				Attributes: map[string]schema.Attribute{
					"subscription_id": schema.StringAttribute{
						Optional:    true,
						Description: "Subscription used when a cluster's own subscription is unknown (import, data sources). Defaults to AZURE_SUBSCRIPTION_ID.",
					},
					"tenant_id": schema.StringAttribute{
						Optional:    true,
						Description: "Microsoft Entra tenant to authenticate in. Defaults to AZURE_TENANT_ID, then the credential's home tenant.",
					},
					"resource_manager_endpoint": schema.StringAttribute{
						Optional:    true,
						Description: "Base URL that replaces `https://management.azure.com` (a sovereign cloud, or the lab's ARM emulator).",
					},
					"authority_host": schema.StringAttribute{
						Optional:    true,
						Description: "Base URL that replaces the Microsoft Entra authority `https://login.microsoftonline.com`.",
					},
					"ca_bundle": schema.StringAttribute{Optional: true, Description: caBundleDescription},
					"key_vault_url": schema.StringAttribute{
						Optional:    true,
						Description: "URI of the Key Vault that keeps the clusters' secrets, e.g. `https://my-vault.vault.azure.net`. Defaults to AZURE_KEY_VAULT_URL. The credentials need Key Vault Secrets Officer on it.",
					},
				},
			},
			"gcp": schema.SingleNestedAttribute{
				Optional:    true,
				Description: "How to reach Compute Engine. Credentials come from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login, the metadata server).",
				Attributes: map[string]schema.Attribute{
					"project": schema.StringAttribute{
						Optional:    true,
						Description: "Project used when a cluster's own project is unknown (import, data sources). Defaults to the credentials' project.",
					},
					"endpoint": schema.StringAttribute{
						Optional:    true,
						Description: "Base URL that replaces `https://compute.googleapis.com` (Private Service Connect, or the lab's Compute Engine emulator).",
					},
					"ca_bundle": schema.StringAttribute{Optional: true, Description: caBundleDescription},
				},
			},
			"bastion": schema.SingleNestedAttribute{
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
						Description: "PEM or OpenSSH private key that authenticates to the bastion. Defaults to the keys of a running ssh-agent (SSH_AUTH_SOCK).",
					},
				},
			},
		},
	}
}

// Configure implements provider.Provider: it chooses the Backend.
func (p *Provider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerConfig
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data := &providerData{backend: p.backend, config: cfg}
	if data.backend == nil {
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
