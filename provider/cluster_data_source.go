package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// lookupModel names an existing cluster: by name, on the cloud given here
// or, when none is, on the one the provider configures.
type lookupModel struct {
	Name types.String `tfsdk:"name"`
	cloudAttrs
}

// spec is the cluster.Spec of the looked-up cluster: name and cloud only.
func (l lookupModel) spec(ctx context.Context) (cluster.Spec, diag.Diagnostics) {
	m := clusterModel{Name: l.Name, cloudAttrs: l.cloudAttrs}
	s, _, diags := m.toSpec(ctx)
	return s, diags
}

// oneCloud keeps a lookup to at most one cloud attribute. The resource has
// no such validator: cluster.Validate reports the same there, with its fix;
// lookups do not run Validate.
func oneCloud(self string) []validator.Object {
	var others []path.Expression
	for _, c := range cloudBlocks {
		if c.name != self {
			others = append(others, path.MatchRoot(c.name))
		}
	}
	return []validator.Object{objectvalidator.ConflictsWith(others...)}
}

// lookupDescriptions are shared by the data source and the ephemeral resource.
const (
	lookupNameDescription  = "Name of the cluster (the value of its cluster tag, which each cloud spells as its tag rules allow)."
	lookupCloudDescription = "Where the cluster is, as on the `mixedk8s_cluster` resource. Optional when the provider configures exactly one cloud with its default location."
)

type clusterDataSource struct {
	data *providerData
}

var _ datasource.DataSourceWithConfigure = (*clusterDataSource)(nil)

func newClusterDataSource() datasource.DataSource { return &clusterDataSource{} }

func (d *clusterDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
}

func (d *clusterDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	if req.ProviderData == nil {
		return
	}
	data, ok := req.ProviderData.(*providerData)
	if !ok {
		resp.Diagnostics.AddError("Unexpected provider data", fmt.Sprintf("expected *providerData, got %T; this is a bug in the provider", req.ProviderData))
		return
	}
	d.data = data
}

type clusterDataModel struct {
	Name types.String `tfsdk:"name"`
	cloudAttrs
	endpointAttrs
	networkAttrs
	Nodes types.List `tfsdk:"nodes"`
}

func (d *clusterDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := map[string]schema.Attribute{}
	for _, c := range cloudBlocks {
		attrs[c.name] = c.dataSourceAttribute()
	}
	attrs["name"] = schema.StringAttribute{Required: true, Description: lookupNameDescription}
	attrs["api_endpoint"] = schema.StringAttribute{Computed: true, Description: descAPIEndpoint}
	attrs["host"] = schema.StringAttribute{Computed: true, Description: descHost}
	attrs["ca_certificate"] = schema.StringAttribute{Computed: true, Description: descCACertificate}
	attrs["ca_certificate_base64"] = schema.StringAttribute{Computed: true, Description: descCACertificateBase64}
	attrs["network_id"] = schema.StringAttribute{Computed: true, Description: descNetworkID}
	attrs["subnet_ids"] = schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: descSubnetIDs}
	attrs["security_group_ids"] = schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: descFirewalls}
	attrs["nodes"] = schema.ListNestedAttribute{
		Computed:    true,
		Description: "The cluster's instances, by name.",
		NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
			"name":            schema.StringAttribute{Computed: true, Description: "Node name."},
			"pool":            schema.StringAttribute{Computed: true, Description: "Pool name; `control-plane` for control-plane nodes."},
			"os":              schema.StringAttribute{Computed: true, Description: "`linux` or `windows`."},
			"private_ip":      schema.StringAttribute{Computed: true, Description: "Private IP address."},
			"instance_id":     schema.StringAttribute{Computed: true, Description: "The cloud's instance ID."},
			"ready":           schema.BoolAttribute{Computed: true, Description: "Whether the Kubernetes node is Ready."},
			"instance_type":   schema.StringAttribute{Computed: true, Description: descNodeInstanceType},
			"kubelet_version": schema.StringAttribute{Computed: true, Description: descNodeKubeletVersion},
			"windows_build":   schema.StringAttribute{Computed: true, Description: descNodeWindowsBuild},
		}},
	}
	resp.Schema = schema.Schema{
		Description: "Reads an existing mixedk8s cluster by name: its API endpoint, CA certificate and nodes. It does not issue credentials; use the `mixedk8s_kubeconfig` ephemeral resource for that.",
		Attributes:  attrs,
	}
}

func (d *clusterDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	ctx = withLogMasking(ctx)
	var m clusterDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, diags := lookupModel{Name: m.Name, cloudAttrs: m.cloudAttrs}.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() || d.data == nil {
		return
	}
	opts, err := d.data.backend.Options(ctx, spec)
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
	if observed.Network == nil && len(observed.Instances) == 0 {
		resp.Diagnostics.AddAttributeError(pathName, fmt.Sprintf("Cluster %q not found", spec.Name),
			fmt.Sprintf("No network and no instance tagged %s = %q exists there.\n\nFix: check the name and the cloud location.", clusterTag(spec), spec.Name))
		return
	}
	m.Nodes = nodesValue(observed)
	m.endpointAttrs = endpointOf(observed.Endpoint)
	m.networkAttrs = networkOf(observed.Network)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
