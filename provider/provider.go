// Package provider is the mixedk8s Terraform provider on
// terraform-plugin-framework. It maps HCL to cluster.Spec and back and holds
// no provisioning logic of its own: everything that acts on a cloud or a node
// lives in the cluster library.
package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

// Provider is the mixedk8s provider.
type Provider struct {
	version string
}

var _ provider.Provider = (*Provider)(nil)

// New returns a constructor for the provider, as providerserver wants it.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &Provider{version: version} }
}

// Metadata implements provider.Provider.
func (p *Provider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "mixedk8s"
	resp.Version = p.version
}

// Schema implements provider.Provider.
func (p *Provider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Builds self-managed Kubernetes clusters with a Linux control plane and Linux and Windows worker pools on Azure, AWS and GCP.",
	}
}

// Configure implements provider.Provider.
func (p *Provider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

// Resources implements provider.Provider; mixedk8s_cluster arrives with the provider work.
func (p *Provider) Resources(context.Context) []func() resource.Resource { return nil }

// DataSources implements provider.Provider.
func (p *Provider) DataSources(context.Context) []func() datasource.DataSource { return nil }
