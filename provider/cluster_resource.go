package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// Default timeouts; `timeouts = { create = "90m" }` overrides them.
const (
	defaultCreateTimeout = 60 * time.Minute
	defaultUpdateTimeout = 60 * time.Minute
	defaultDeleteTimeout = 30 * time.Minute
	defaultReadTimeout   = 5 * time.Minute
)

type clusterResource struct {
	data *providerData
}

var (
	_ resource.ResourceWithConfigure      = (*clusterResource)(nil)
	_ resource.ResourceWithValidateConfig = (*clusterResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*clusterResource)(nil)
	_ resource.ResourceWithImportState    = (*clusterResource)(nil)
)

func newClusterResource() resource.Resource { return &clusterResource{} }

func (r *clusterResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
}

func (r *clusterResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if req.ProviderData == nil {
		return // not configured yet: validation still runs
	}
	data, ok := req.ProviderData.(*providerData)
	if !ok {
		resp.Diagnostics.AddError("Unexpected provider data", fmt.Sprintf("expected *providerData, got %T; this is a bug in the provider", req.ProviderData))
		return
	}
	r.data = data
}

// replaceObjectWhenSet and replaceStringWhenSet replace the cluster when a
// value that was set changes. A null prior value is one an import could not
// recover from the cloud's tags: the configuration supplies it and nothing
// is replaced.
func replaceObjectWhenSet(description string) planmodifier.Object {
	return objectplanmodifier.RequiresReplaceIf(func(_ context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
		resp.RequiresReplace = !req.StateValue.IsNull()
	}, description, description)
}

func replaceStringWhenSet(description string) planmodifier.String {
	return stringplanmodifier.RequiresReplaceIf(func(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
		resp.RequiresReplace = !req.StateValue.IsNull()
	}, description, description)
}

// replaceAWSOnRegion replaces the cluster when the aws attribute is removed or
// its region changes; zones only place new nodes and change in place.
func replaceAWSOnRegion() planmodifier.Object {
	const why = "Moving a cluster to another region or cloud replaces it."
	return objectplanmodifier.RequiresReplaceIf(func(ctx context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
		if req.StateValue.IsNull() {
			return
		}
		if req.PlanValue.IsNull() {
			resp.RequiresReplace = true
			return
		}
		before, after := req.StateValue.Attributes()["region"], req.PlanValue.Attributes()["region"]
		resp.RequiresReplace = before != nil && after != nil && !after.IsUnknown() && !before.Equal(after)
	}, why, why)
}

func (r *clusterResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	const replaces = "Changing it replaces the cluster."
	optComputedString := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, Computed: true, Description: desc}
	}
	resp.Schema = schema.Schema{
		Description: "A self-managed Kubernetes cluster: a Linux control plane and any number of Linux and Windows worker pools on one cloud.",
		MarkdownDescription: "A self-managed Kubernetes cluster: a Linux control plane and any number of Linux and Windows worker pools on one cloud.\n\n" +
			"`terraform plan` validates the whole cluster at once and reports every mistake at its attribute with the fix, before anything is created. " +
			"It also shows, as a warning, what the apply will do node by node: which nodes are created, which are finished after an interrupted apply, which are drained and deleted. " +
			"Changing a pool's `count`, or adding and removing pools, updates the cluster in place: new nodes join first, then removed nodes are drained and deleted one at a time. " +
			"An apply that fails or times out can be run again: it adopts what exists (every cloud object carries the cluster's tag) and finishes the same cluster.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				Description:   "The cluster name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				Description: "Cluster name: a DNS-1123 label of at most 20 characters starting with a letter. Node names are `<name>-cp-<i>` and `<name>-<pool>-<i>`; " +
					"Windows computer names must fit in 15 characters. Every cloud object is tagged with the name (the tag key is spelled as each cloud allows). " + replaces,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"kubernetes_version": optComputedString(fmt.Sprintf("Kubernetes release, such as `%s`; 1.%d to 1.%d are supported. Defaults to `%s`. "+
				"Changing it on an existing cluster is refused at plan time: in-place upgrades are not supported yet.",
				cluster.DefaultKubernetesVersion, cluster.MinKubernetesMinor, cluster.MaxKubernetesMinor, cluster.DefaultKubernetesVersion)),
			"aws": schema.SingleNestedAttribute{
				Optional:      true,
				Description:   "Places the cluster on AWS. Exactly one of `aws`, `azure` and `gcp` is set. Removing it, or changing `region`, replaces the cluster.",
				PlanModifiers: []planmodifier.Object{replaceAWSOnRegion()},
				Attributes: map[string]schema.Attribute{
					"region": schema.StringAttribute{Required: true, Description: "Region code, such as `eu-west-1`."},
					"zones": schema.ListAttribute{
						Optional: true, ElementType: types.StringType,
						Description: "Zone names to spread nodes over, such as `eu-west-1a`. Empty means the region's first zone. Changes apply to nodes created afterwards.",
					},
				},
			},
			"azure": schema.SingleNestedAttribute{
				Optional:      true,
				Description:   "Places the cluster on Azure. Exactly one of `aws`, `azure` and `gcp` is set. " + replaces,
				PlanModifiers: []planmodifier.Object{replaceObjectWhenSet("Moving a cluster to another subscription, location, resource group or cloud replaces it.")},
				Attributes: map[string]schema.Attribute{
					"subscription_id": schema.StringAttribute{Required: true, Description: "Subscription ID (a UUID, `az account show --query id`)."},
					"location":        schema.StringAttribute{Required: true, Description: "Region name, such as `westeurope`."},
					"resource_group":  schema.StringAttribute{Required: true, Description: "Resource group the cluster's resources go in."},
				},
			},
			"gcp": schema.SingleNestedAttribute{
				Optional:      true,
				Description:   "Places the cluster on Google Cloud. Exactly one of `aws`, `azure` and `gcp` is set. " + replaces,
				PlanModifiers: []planmodifier.Object{replaceObjectWhenSet("Moving a cluster to another project, region, zone or cloud replaces it.")},
				Attributes: map[string]schema.Attribute{
					"project": schema.StringAttribute{Required: true, Description: "Project ID (not its name or number)."},
					"region":  schema.StringAttribute{Required: true, Description: "Region, such as `europe-west4`."},
					"zone":    schema.StringAttribute{Required: true, Description: "Zone of the region, such as `europe-west4-a`."},
				},
			},
			"network": schema.SingleNestedAttribute{
				Optional:    true,
				Computed:    true,
				Description: "Address plan and pod network. Every value has a default, shown in the plan. Changing a value that is set replaces the cluster.",
				Attributes: map[string]schema.Attribute{
					"cni": schema.StringAttribute{
						Optional: true, Computed: true,
						Description:   fmt.Sprintf("Pod network with a Linux and a Windows side, VXLAN (VNI 4096, UDP 4789). Defaults to `%s`. `calico` is refused at plan time until its operator manifest's digest is pinned (its publisher has no checksum file, and every download is verified).", cluster.DefaultCNI),
						PlanModifiers: []planmodifier.String{replaceStringWhenSet("Changing the CNI replaces the cluster.")},
					},
					"node_cidr": schema.StringAttribute{
						Optional: true, Computed: true,
						Description:   fmt.Sprintf("Network and subnet of the nodes. Defaults to `%s`.", cluster.DefaultNodeCIDR),
						PlanModifiers: []planmodifier.String{replaceStringWhenSet("Changing the node CIDR replaces the cluster.")},
					},
					"pod_cidr": schema.StringAttribute{
						Optional: true, Computed: true,
						Description:   fmt.Sprintf("Pod addresses, routed inside the cluster's overlay. Defaults to `%s`.", cluster.DefaultPodCIDR),
						PlanModifiers: []planmodifier.String{replaceStringWhenSet("Changing the pod CIDR replaces the cluster.")},
					},
					"service_cidr": schema.StringAttribute{
						Optional: true, Computed: true,
						Description:   fmt.Sprintf("Service cluster IPs. Defaults to `%s`.", cluster.DefaultServiceCIDR),
						PlanModifiers: []planmodifier.String{replaceStringWhenSet("Changing the service CIDR replaces the cluster.")},
					},
				},
			},
			"control_plane": schema.SingleNestedAttribute{
				Optional:    true,
				Computed:    true,
				Description: "The Linux (Ubuntu) control plane. Growing it joins control-plane nodes one at a time; shrinking it is refused (it would change etcd membership).",
				Attributes: map[string]schema.Attribute{
					"count": schema.Int64Attribute{
						Optional: true, Computed: true,
						Description: fmt.Sprintf("Control-plane nodes: 1, 3 or 5. Defaults to %d.", cluster.DefaultControlPlaneCount),
					},
					"instance_type": optComputedString("Instance type. Defaults per cloud: `m6i.large` (AWS), `Standard_D4s_v5` (Azure), `n2-standard-4` (GCP). Applies to nodes created afterwards."),
					"disk_gb": schema.Int64Attribute{
						Optional: true, Computed: true,
						Description: fmt.Sprintf("OS disk size in GB, at least %d. Defaults to %d.", cluster.MinLinuxDiskGB, cluster.DefaultLinuxDiskGB),
					},
					"image": schema.StringAttribute{Optional: true, Description: "Image that replaces the cloud's default Ubuntu image (an AMI ID, an Azure image ID or a GCE image URL)."},
					"schedulable": schema.BoolAttribute{
						Optional: true, Computed: true,
						Description: "Lets ordinary pods run on the control-plane nodes. Defaults to false.",
					},
				},
			},
			"node_pools": schema.MapNestedAttribute{
				Optional: true,
				Description: "Worker pools by name. Node names are `<cluster>-<pool>-<i>`. Changing `count`, adding a pool or removing one updates the cluster in place: " +
					"new nodes join first, then nodes no longer wanted are drained and deleted one at a time, highest ordinal first. " +
					"A cluster with Windows pools needs a Linux worker (or a schedulable control plane) for CoreDNS and the CNI controllers.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"os": optComputedString("`linux` or `windows`. Defaults to `linux`."),
						"windows_version": optComputedString(fmt.Sprintf("Windows Server release of a Windows pool: `2019`, `2022` or `2025`, as the Kubernetes minor supports it "+
							"(2019 and 2022 up to 1.34; 2022 and 2025 from 1.35). Defaults to `%s`. Applies to nodes created afterwards.", cluster.DefaultWindowsVersion)),
						"isolation": optComputedString(fmt.Sprintf("Windows container isolation: `process` or `hyperv`. Hyper-V isolation needs an instance type with nested virtualisation. Defaults to `%s`.", cluster.DefaultIsolation)),
						"count": schema.Int64Attribute{
							Required:    true,
							Description: fmt.Sprintf("Nodes in the pool, 0 to %d.", cluster.MaxPoolCount),
						},
						"instance_type": optComputedString("Instance type. Defaults per cloud and OS: Linux `m6i.large`, Windows `m6i.xlarge` (AWS); `Standard_D4s_v5` (Azure); `n2-standard-4` (GCP). Applies to nodes created afterwards."),
						"disk_gb": schema.Int64Attribute{
							Optional: true, Computed: true,
							Description: fmt.Sprintf("OS disk size in GB. Defaults to %d (Linux) or %d (Windows); at least %d and %d.", cluster.DefaultLinuxDiskGB, cluster.DefaultWindowsDiskGB, cluster.MinLinuxDiskGB, cluster.MinWindowsDiskGB),
						},
						"image": schema.StringAttribute{Optional: true, Description: "Image that replaces the cloud's default image for the OS and Windows version."},
						"labels": schema.MapAttribute{
							Optional: true, ElementType: types.StringType,
							Description: "Kubernetes labels set on the pool's nodes when they join. `kubernetes.io/` and `k8s.io/` keys are reserved.",
						},
						"taints": schema.ListAttribute{
							Optional: true, ElementType: types.StringType,
							Description: "Taints set on the pool's nodes when they join, as `key=value:Effect` or `key:Effect`, e.g. `os=windows:NoSchedule`.",
						},
					},
				},
			},
			"access": schema.SingleNestedAttribute{
				Optional:    true,
				Description: "Who may reach the nodes and the API server, and how.",
				Attributes: map[string]schema.Attribute{
					"admin_cidrs": schema.ListAttribute{
						Optional: true, ElementType: types.StringType,
						Description: "Prefixes that may reach SSH (22), WinRM over HTTPS (5986) and the API server (6443), such as `203.0.113.0/24`.",
					},
					"ssh_public_keys": schema.ListAttribute{
						Optional: true, ElementType: types.StringType,
						Description: "Public keys authorised on Linux nodes, one authorized_keys line each.",
					},
					"bastion": schema.SingleNestedAttribute{
						Optional:    true,
						Description: "SSH jump host every node is reached through. Overrides the provider's `bastion`.",
						Attributes: map[string]schema.Attribute{
							"address":  schema.StringAttribute{Required: true, Description: "The bastion as `host:port`."},
							"user":     optComputedString(fmt.Sprintf("User to log in as. Defaults to `%s`.", cluster.DefaultBastionUser)),
							"host_key": schema.StringAttribute{Required: true, Description: "The bastion's host key in authorized_keys format; it is pinned, never trusted on first use."},
							"private_key_file": schema.StringAttribute{
								Optional:    true,
								Description: "Path to the private key that authenticates to the bastion. Defaults to the provider's `bastion.private_key`, then ssh-agent.",
							},
						},
					},
				},
			},
			"artifacts": schema.SingleNestedAttribute{
				Optional:    true,
				Description: "Where nodes download Kubernetes, containerd and CNI. Every file is checked against the SHA-256 in the versions manifest, wherever it comes from.",
				Attributes: map[string]schema.Attribute{
					"mirror_base_url": schema.StringAttribute{
						Optional:    true,
						Description: "HTTPS base URL of a mirror that replaces the publishers' download origins (private mirror, air gap). Plain http is allowed for loopback addresses only.",
					},
				},
			},
			"timeouts": timeoutsAttribute(ctx),
			"api_endpoint": schema.StringAttribute{
				Computed:      true,
				Description:   "The API server as `host:port`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"ca_certificate": schema.StringAttribute{
				Computed:      true,
				Description:   "PEM certificate of the cluster CA that signs the API server's certificate.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"kubeconfig": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				Description: "A cluster-admin kubeconfig (group `kubeadm:cluster-admins`), issued when the cluster is created or imported. " +
					"It is stored in the Terraform state: protect the state, or use the `mixedk8s_kubeconfig` ephemeral resource, which keeps it out of state.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"nodes": schema.ListNestedAttribute{
				Computed:    true,
				Description: "The cluster's instances as the cloud reports them, by name. A node deleted outside Terraform disappears from this list, and the next plan recreates it.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"name":        schema.StringAttribute{Computed: true, Description: "Node name, also the instance and (on Windows) the computer name."},
						"pool":        schema.StringAttribute{Computed: true, Description: "Pool name; `control-plane` for control-plane nodes."},
						"os":          schema.StringAttribute{Computed: true, Description: "`linux` or `windows`."},
						"private_ip":  schema.StringAttribute{Computed: true, Description: "Private IP address."},
						"instance_id": schema.StringAttribute{Computed: true, Description: "The cloud's instance ID."},
						"ready":       schema.BoolAttribute{Computed: true, Description: "Whether the Kubernetes node is Ready."},
					},
				},
			},
		},
	}
}

// timeoutsAttribute is the timeouts package's attribute with our defaults in its descriptions.
func timeoutsAttribute(ctx context.Context) schema.Attribute {
	const unit = ` A duration such as "30s" or "2h45m".`
	minutes := func(d time.Duration) string { return fmt.Sprintf("%q", fmt.Sprintf("%dm", int(d.Minutes()))) }
	a, _ := timeouts.Attributes(ctx, timeouts.Opts{
		Create: true, Read: true, Update: true, Delete: true,
		CreateDescription: "How long a create may take: network, instances, bootstrap, joins and Ready. Defaults to " + minutes(defaultCreateTimeout) + "." + unit,
		ReadDescription:   "How long reading the cluster (every refresh and plan) may take. Defaults to " + minutes(defaultReadTimeout) + "." + unit,
		UpdateDescription: "How long an update (scaling, pools added or removed, drains) may take. Defaults to " + minutes(defaultUpdateTimeout) + "." + unit,
		DeleteDescription: "How long a destroy may take. Defaults to " + minutes(defaultDeleteTimeout) + "." + unit,
	}).(schema.SingleNestedAttribute)
	a.Description = "Time limits per operation. A timed-out apply stops where it is; applying again resumes it."
	return a
}

// effectiveSpec is the spec Apply acts on: the resource's, with the
// provider's default bastion when the resource sets none.
func (r *clusterResource) effectiveSpec(s cluster.Spec) cluster.Spec {
	if s.Access.Bastion == nil && r.data != nil {
		s.Access.Bastion = r.data.config.bastion()
	}
	return s
}

// ValidateConfig runs the library's Validate on the configuration, so that
// `terraform validate` and `terraform plan` report every problem at its
// attribute before anything is created. Problems that an unknown value
// (one computed by another resource) could explain wait for the apply,
// where every value is known and Validate runs again.
func (r *clusterResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var config clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, unknown, diags := config.toSpec(ctx)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	addProblems(&resp.Diagnostics, cluster.Validate(spec), unknownFilter(unknown))
}

// resolvePlan fills the plan's unknown optional values with the library's
// defaults (Spec.WithDefaults), so the plan shows the values Apply will use
// and the plan after an apply is empty. It does nothing while the
// configuration has unknown values: the defaults may depend on them.
func resolvePlan(ctx context.Context, config, plan clusterModel) (clusterModel, cluster.Spec, bool, diag.Diagnostics) {
	spec, unknown, diags := config.toSpec(ctx)
	if diags.HasError() || len(unknown) > 0 {
		return plan, spec, false, diags
	}
	spec = spec.WithDefaults()
	var defaults clusterModel
	defaults.fromSpec(spec)
	plan.KubernetesVersion = fillUnknown(ctx, config.KubernetesVersion, plan.KubernetesVersion, defaults.KubernetesVersion).(types.String)
	plan.Network = fillUnknown(ctx, config.Network, plan.Network, defaults.Network).(types.Object)
	plan.ControlPlane = fillUnknown(ctx, config.ControlPlane, plan.ControlPlane, defaults.ControlPlane).(types.Object)
	plan.NodePools = fillUnknown(ctx, config.NodePools, plan.NodePools, defaults.NodePools).(types.Map)
	plan.Access = fillUnknown(ctx, config.Access, plan.Access, defaults.Access).(types.Object)
	plan.ID = plan.Name
	return plan, spec, true, diags
}

// fillUnknown walks a planned value and replaces each unknown value whose
// configuration is null (an optional+computed attribute left out) with the
// default at the same place. Unknown values that come from the
// configuration stay unknown.
func fillUnknown(ctx context.Context, config, plan, def attr.Value) attr.Value {
	if def == nil {
		return plan
	}
	if plan.IsUnknown() {
		if config == nil || config.IsNull() {
			return def
		}
		return plan
	}
	if plan.IsNull() {
		return plan
	}
	switch p := plan.(type) {
	case types.Object:
		c, _ := config.(types.Object)
		d, _ := def.(types.Object)
		if d.IsNull() || d.IsUnknown() {
			return plan
		}
		attrs := make(map[string]attr.Value, len(p.Attributes()))
		for k, v := range p.Attributes() {
			attrs[k] = fillUnknown(ctx, c.Attributes()[k], v, d.Attributes()[k])
		}
		out, diags := types.ObjectValue(p.AttributeTypes(ctx), attrs)
		if diags.HasError() {
			return plan
		}
		return out
	case types.Map:
		c, _ := config.(types.Map)
		d, _ := def.(types.Map)
		if d.IsNull() || d.IsUnknown() {
			return plan
		}
		elems := make(map[string]attr.Value, len(p.Elements()))
		for k, v := range p.Elements() {
			elems[k] = fillUnknown(ctx, c.Elements()[k], v, d.Elements()[k])
		}
		out, diags := types.MapValue(p.ElementType(ctx), elems)
		if diags.HasError() {
			return plan
		}
		return out
	}
	return plan
}

// ModifyPlan makes the plan honest: defaults shown as values, and the
// library's own plan (which nodes are created, finished, drained, deleted)
// shown as a warning, because Terraform's attribute diff says "count: 2 -> 1"
// but not which node is drained. A warning is printed under the plan in
// `terraform plan` and `terraform apply` alike, where the person approving
// reads it; tflog gets the same lines. Drift (a node terminated outside
// Terraform, or an interrupted apply) turns into an in-place update.
func (r *clusterResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var config, plan clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *clusterModel
	if !req.State.Raw.IsNull() {
		state = &clusterModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	plan, spec, known, diags := resolvePlan(ctx, config, plan)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	if state != nil {
		checkUnsupportedChanges(ctx, *state, plan, &resp.Diagnostics)
	}
	defer func() { resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...) }()
	if !known || r.data == nil || resp.Diagnostics.HasError() {
		return
	}
	own := spec.Access.Bastion != nil
	spec = r.effectiveSpec(spec)
	if err := cluster.Validate(spec); err != nil {
		// ValidateConfig reported the resource's own problems at their paths;
		// what is left comes from the provider's default bastion.
		var ps cluster.Problems
		if !own && errors.As(err, &ps) {
			for _, p := range ps {
				if strings.HasPrefix(p.Path, "access.bastion") {
					resp.Diagnostics.AddError("Invalid provider bastion."+strings.TrimPrefix(p.Path, "access.bastion."),
						"The provider's bastion is used because this cluster sets no access.bastion: "+problemDetail(p))
				}
			}
		}
		return
	}
	opts, err := r.data.backend.Options(ctx, spec)
	if err != nil {
		resp.Diagnostics.AddError("Cannot reach the cluster's cloud", err.Error())
		return
	}
	observed, err := cluster.Observe(ctx, spec, opts)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the cluster's current state", err.Error())
		return
	}
	changes, err := cluster.Plan(spec, observed)
	if err != nil {
		if at, field, ok := strings.Cut(err.Error(), ": "); ok {
			if p, ok := problemPath(at); ok {
				resp.Diagnostics.AddAttributeError(p, "Unsupported change to "+at, field)
				return
			}
		}
		resp.Diagnostics.AddError("Cannot plan the cluster", err.Error())
		return
	}
	if changes.Empty() {
		if state != nil {
			plan.Nodes = state.Nodes
		}
		return
	}
	lines := changes.Summary()
	tflog.Info(ctx, "cluster plan", map[string]any{"cluster": spec.Name, "changes": lines})
	resp.Diagnostics.AddWarning(
		fmt.Sprintf("Cluster %q: %s", spec.Name, countsLine(changes)),
		"The apply will make these changes to the cluster's nodes:\n\n  "+strings.Join(lines, "\n  "))
	if state != nil {
		// The configuration may be unchanged (a node was terminated outside
		// Terraform, or an apply was interrupted): an unknown nodes list makes
		// this an update, and the update's Apply converges.
		plan.Nodes = types.ListUnknown(nodeType)
	}
}

func countsLine(c cluster.Changes) string {
	nodes := func(n int) string {
		if n == 1 {
			return "1 node"
		}
		return fmt.Sprintf("%d nodes", n)
	}
	add, remove := c.Counts()
	switch {
	case add > 0 && remove > 0:
		return fmt.Sprintf("%s to add, %d to drain and delete", nodes(add), remove)
	case add > 0:
		return nodes(add) + " to add"
	case remove > 0:
		return nodes(remove) + " to drain and delete"
	}
	return "nodes to finish"
}

// checkUnsupportedChanges refuses what the library cannot change on a
// running cluster, and warns where a change applies to new nodes only.
func checkUnsupportedChanges(ctx context.Context, state, plan clusterModel, diags *diag.Diagnostics) {
	if !state.KubernetesVersion.IsNull() && !plan.KubernetesVersion.IsUnknown() && !state.KubernetesVersion.Equal(plan.KubernetesVersion) {
		diags.AddAttributeError(path.Root("kubernetes_version"), "Invalid kubernetes_version",
			fmt.Sprintf("The cluster runs Kubernetes %s; changing it to %s would need an in-place upgrade, which mixedk8s does not do yet.\n\nFix: keep kubernetes_version = %s, or replace the cluster with terraform apply -replace=<address>.",
				state.KubernetesVersion.ValueString(), plan.KubernetesVersion.ValueString(), state.KubernetesVersion))
	}
	if state.NodePools.IsNull() || plan.NodePools.IsNull() || plan.NodePools.IsUnknown() {
		return
	}
	before, after := state.NodePools.Elements(), plan.NodePools.Elements()
	for _, name := range slices.Sorted(maps.Keys(after)) {
		old, ok := before[name].(types.Object)
		if !ok {
			continue
		}
		now, _ := after[name].(types.Object)
		for _, field := range []string{"os", "windows_version", "isolation", "instance_type", "disk_gb", "image", "labels", "taints"} {
			o, n := old.Attributes()[field], now.Attributes()[field]
			if o == nil || n == nil || o.IsNull() || n.IsUnknown() || o.Equal(n) {
				continue
			}
			diags.AddAttributeWarning(path.Root("node_pools").AtMapKey(name).AtName(field), fmt.Sprintf("node_pools[%q].%s applies to new nodes only", name, field),
				fmt.Sprintf("Existing nodes of pool %q keep their %s. To roll them, scale the pool down and up, or move the workload to a new pool and remove this one.", name, field))
		}
	}
	_ = ctx
}

// options returns the backend's options for spec with progress sent to tflog.
func (r *clusterResource) options(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	if r.data == nil {
		return cluster.Options{}, errors.New("the provider is not configured")
	}
	opts, err := r.data.backend.Options(ctx, spec)
	if err != nil {
		return cluster.Options{}, err
	}
	opts.Progress = progressLogger(ctx, spec.Name)
	return opts, nil
}

// observeInto sets the computed attributes from what exists.
func observeInto(ctx context.Context, m *clusterModel, spec cluster.Spec, opts cluster.Options) (cluster.Observed, error) {
	observed, err := cluster.Observe(ctx, spec, opts)
	if err != nil {
		return observed, err
	}
	m.Nodes = nodesValue(observed)
	m.APIEndpoint, m.CACertificate = types.StringNull(), types.StringNull()
	if ep := observed.Endpoint; ep != nil {
		m.APIEndpoint, m.CACertificate = types.StringValue(ep.APIEndpoint), types.StringValue(ep.CACertPEM)
	}
	if (m.Kubeconfig.IsNull() || m.Kubeconfig.IsUnknown()) && observed.Endpoint != nil {
		kc, err := cluster.Kubeconfig(ctx, spec, opts)
		if err != nil {
			return observed, err
		}
		m.Kubeconfig = types.StringValue(string(kc))
	}
	if m.Kubeconfig.IsUnknown() {
		m.Kubeconfig = types.StringNull()
	}
	return observed, nil
}

// optionsFor returns the spec as the backend sees it (provider defaults
// filled in) and what the library acts through; ok is false when diags say why not.
func (r *clusterResource) optionsFor(ctx context.Context, spec cluster.Spec, diags *diag.Diagnostics) (cluster.Spec, cluster.Options, bool) {
	spec = r.effectiveSpec(spec)
	opts, err := r.options(ctx, spec)
	if err != nil {
		diags.AddError("Cannot reach the cluster's cloud", err.Error())
		return spec, opts, false
	}
	return spec, opts, true
}

// stateOptions is optionsFor the cluster recorded in state.
func (r *clusterResource) stateOptions(ctx context.Context, state clusterModel, diags *diag.Diagnostics) (cluster.Spec, cluster.Options, bool) {
	spec, _, d := state.toSpec(ctx)
	diags.Append(d...)
	if d.HasError() {
		return spec, cluster.Options{}, false
	}
	return r.optionsFor(ctx, spec, diags)
}

// applyPlan resolves the planned cluster and runs cluster.Apply on it. ran
// is false when diags already say why nothing ran; err is Apply's own
// failure, which Create and Update word differently.
func (r *clusterResource) applyPlan(ctx context.Context, config, plan clusterModel, diags *diag.Diagnostics) (clusterModel, cluster.Spec, cluster.Options, error, bool) {
	plan, spec, known, d := resolvePlan(ctx, config, plan)
	diags.Append(d...)
	if d.HasError() {
		return plan, spec, cluster.Options{}, nil, false
	}
	if !known {
		diags.AddError("Unknown values at apply time", "Some attributes of the cluster are still unknown at apply time; this is a bug in the provider or Terraform.")
		return plan, spec, cluster.Options{}, nil, false
	}
	spec, opts, ok := r.optionsFor(ctx, spec, diags)
	if !ok {
		return plan, spec, opts, nil, false
	}
	_, err := cluster.Apply(ctx, spec, opts)
	if err != nil && addProblems(diags, err, nil) {
		return plan, spec, opts, nil, false
	}
	return plan, spec, opts, err, true
}

func (r *clusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx = withLogMasking(ctx)
	var config, plan clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	plan, spec, opts, err, ran := r.applyPlan(ctx, config, plan, &resp.Diagnostics)
	if !ran {
		return
	}
	if err != nil {
		// No state is saved for a failed create, on purpose. The framework
		// taints any resource whose Create returns an error together with
		// state, and Terraform replaces a tainted resource on the next apply:
		// it would destroy the half-built cluster and start again. Without
		// state the next apply plans a create again, and cluster.Apply adopts
		// every object that exists by its tags and finishes the same cluster
		// (the plan's warning lists the nodes it will finish). The cost: after
		// giving up on a failed create, `terraform destroy` does not know the
		// cluster; the error says how to import it first.
		resp.Diagnostics.AddError(fmt.Sprintf("Failed to create cluster %q", spec.Name),
			err.Error()+"\n\n"+
				"What was created is kept and tagged with the cluster's name. Run terraform apply again to resume: it adopts what exists and finishes the same cluster. "+
				fmt.Sprintf("To remove it instead, import it and destroy it: terraform import <address> %s && terraform destroy.", spec.Name))
		return
	}
	if _, err := observeInto(ctx, &plan, spec, opts); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Created cluster %q but cannot read it back", spec.Name),
			err.Error()+"\n\nRun terraform apply again: it adopts the cluster and records it.")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *clusterResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	ctx = withLogMasking(ctx)
	var state clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Read(ctx, defaultReadTimeout)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	spec, opts, ok := r.stateOptions(ctx, state, &resp.Diagnostics)
	if !ok {
		return
	}
	imported := state.ControlPlane.IsNull()
	state.ID = state.Name
	observed, err := observeInto(ctx, &state, spec, opts)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read cluster %q", spec.Name), err.Error())
		return
	}
	if observed.Network == nil && len(observed.Instances) == 0 {
		if imported {
			resp.Diagnostics.AddError(fmt.Sprintf("Cannot import cluster %q", spec.Name),
				fmt.Sprintf("No network and no instance tagged %s = %q exists.\n\nFix: check the name, and that the provider's cloud attribute (region, subscription or project) points where the cluster is.", clusterTag(spec), spec.Name))
			return
		}
		resp.State.RemoveResource(ctx)
		return
	}
	if imported {
		got := importedSpec(spec.Name, observed)
		m := state
		m.fromSpec(got)
		state.ControlPlane, state.NodePools = m.ControlPlane, m.NodePools
		state.Network = types.ObjectNull(networkAttr)
		state.Access = types.ObjectNull(accessAttrs)
		state.Artifacts = types.ObjectNull(artifactsAttrs)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *clusterResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	ctx = withLogMasking(ctx)
	var config, plan, state clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	plan, spec, opts, err, ran := r.applyPlan(ctx, config, plan, &resp.Diagnostics)
	if !ran {
		return
	}
	if err != nil {
		// The prior state stays (the framework keeps it when Update fails):
		// the next plan shows the same change again, and its apply resumes.
		resp.Diagnostics.AddError(fmt.Sprintf("Failed to update cluster %q", spec.Name),
			err.Error()+"\n\nRun terraform apply again to resume: it adopts what exists and finishes.")
		return
	}
	plan.Kubeconfig = state.Kubeconfig
	if _, err := observeInto(ctx, &plan, spec, opts); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Updated cluster %q but cannot read it back", spec.Name), err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *clusterResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	ctx = withLogMasking(ctx)
	var state clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	spec, opts, ok := r.stateOptions(ctx, state, &resp.Diagnostics)
	if !ok {
		return
	}
	if err := cluster.Destroy(ctx, spec, opts); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Failed to destroy cluster %q", spec.Name),
			err.Error()+"\n\nRun terraform destroy again: it finds what is left by tag and deletes it.")
	}
}

// ImportState imports a cluster by name. Read then adopts it by its tags
// and recovers the pools and control plane from its instances; see the
// resource documentation for what the configuration must supply.
func (r *clusterResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}
