package provider

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// replaces ends the description of an attribute whose change replaces the cluster.
const replaces = "Changing it replaces the cluster."

// What each node in `nodes` reports, on the resource and the data source.
const (
	descNodeInstanceType   = "The instance type the cloud reports for the node."
	descNodeKubeletVersion = "The version its kubelet reports, e.g. `v1.36.3`; empty before it joins."
	descNodeWindowsBuild   = "A Windows node's build (its `node.kubernetes.io/windows-build` label), e.g. `10.0.20348` for Windows Server 2022; null on Linux."
)

// replaceObjectUnlessOnly and replaceStringWhenSet replace the cluster when
// a value that was set changes, except that a change of only the named
// attributes (keys of objects made afterwards) updates in place. A null
// prior value is one an import could not recover from the cloud's tags:
// the configuration supplies it and nothing is replaced.
func replaceObjectUnlessOnly(description string, inPlace ...string) planmodifier.Object {
	return objectplanmodifier.RequiresReplaceIf(func(_ context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
		if req.StateValue.IsNull() {
			return
		}
		if req.PlanValue.IsNull() || req.PlanValue.IsUnknown() {
			resp.RequiresReplace = true
			return
		}
		before, after := req.StateValue.Attributes(), req.PlanValue.Attributes()
		for name, a := range after {
			if slices.Contains(inPlace, name) {
				continue
			}
			if b, ok := before[name]; !ok || !b.Equal(a) {
				resp.RequiresReplace = true
				return
			}
		}
	}, description, description)
}

func replaceStringWhenSet(description string) planmodifier.String {
	return stringplanmodifier.RequiresReplaceIf(func(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
		resp.RequiresReplace = !req.StateValue.IsNull()
	}, description, description)
}

func (r *clusterResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
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
					"a Windows node whose name is longer than 15 characters gets a short computer name derived from it (the first characters, a hash, the ordinal). Every cloud object is tagged with the name (the tag key is spelled as each cloud allows). " + replaces,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"kubernetes_version": optComputedString(fmt.Sprintf("Kubernetes release, such as `%s`, or a minor, such as `1.%d`, for the newest release of it this provider has pinned artifacts for "+
				"(`kubernetes_release` records which). Releases of 1.%d to 1.%d are supported: those whose downloads this provider pins by digest; plan lists them when one is not. Defaults to `%s`. "+
				"Left unset on an existing cluster, it keeps the version in state: a provider whose default moved changes nothing. "+
				"A change of release is checked at plan time against the upstream version skew policy (one minor at a time, no downgrade, kubelets never newer than the API server), each refusal naming the version to go to first; "+
				"a change that passes upgrades the cluster in place: the control-plane nodes one at a time (`kubeadm upgrade apply`, then `kubeadm upgrade node`, each kubelet restarted on its new binary), then every worker replaced by surge as for an `instance_type` change (`max_surge`, `max_unavailable`, PodDisruptionBudgets respected).",
				cluster.DefaultKubernetesVersion, cluster.MaxKubernetesMinor, cluster.MinKubernetesMinor, cluster.MaxKubernetesMinor, cluster.DefaultKubernetesVersion)),
			"kubernetes_release": schema.StringAttribute{
				Computed: true,
				Description: "The Kubernetes release the cluster runs: `kubernetes_version` itself, or for a minor the newest release of it this provider knew when the cluster was created. " +
					"It stays while `kubernetes_version` names the same minor, so a newer provider that knows a newer patch plans no change.",
			},
			"network": schema.SingleNestedAttribute{
				Optional:    true,
				Computed:    true,
				Description: "Address plan and pod network. Every value has a default, shown in the plan. Changing a value that is set replaces the cluster.",
				Attributes: map[string]schema.Attribute{
					"cni": schema.StringAttribute{
						Optional: true, Computed: true,
						Description:   fmt.Sprintf("Pod network with a Linux and a Windows side, VXLAN (VNI 4096, UDP 4789): `flannel` or `calico` (through the Tigera operator; Calico for Windows on Windows Server 2019 and 2022, with Kubernetes 1.34 to 1.36). Defaults to `%s`. Changing it on an existing cluster is refused at plan time: there is no in-place CNI migration.", cluster.DefaultCNI),
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
					"image": schema.StringAttribute{Optional: true, Description: "Image that replaces the cloud's default Ubuntu image (an image ID of the cluster's cloud: an EC2 image ID, an Azure image ID or a Compute Engine image URL)."},
					"schedulable": schema.BoolAttribute{
						Optional: true, Computed: true,
						Description: "Lets ordinary pods run on the control-plane nodes. Defaults to false.",
					},
				},
			},
			"node_pools": schema.MapNestedAttribute{
				Optional: true,
				Description: "Worker pools by name. Node names are `<cluster>-<pool>-<i>`. Changing `count`, adding a pool or removing one updates the cluster in place: " +
					"new nodes join first, then nodes no longer wanted are drained and deleted one at a time, outdated ones first, then the highest ordinal. " +
					"Changing `os`, `windows_version`, `instance_type`, `disk_gb` or `image` replaces the pool's nodes in place, by surge: a new node is Ready before an old one is drained (PodDisruptionBudgets respected) and deleted; a replacement takes a free ordinal. " +
					"A node whose instance is stopped or gone is replaced without a drain. " +
					"A cluster with Windows pools needs a Linux worker (or a schedulable control plane) for CoreDNS and the CNI controllers.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"os": optComputedString("`linux` or `windows`. Defaults to `linux`."),
						"windows_version": optComputedString(fmt.Sprintf("Windows Server release of a Windows pool: `2019`, `2022` or `2025`, as the Kubernetes minor supports it "+
							"(2019 and 2022 up to 1.34; 2022 and 2025 from 1.35). Defaults to `%s`. A change replaces the pool's nodes by surge (see `max_surge`).", cluster.DefaultWindowsVersion)),
						"isolation": optComputedString(fmt.Sprintf("Windows container isolation: `process` or `hyperv`. Hyper-V isolation needs an instance type with nested virtualisation. Defaults to `%s`.", cluster.DefaultIsolation)),
						"count": schema.Int64Attribute{
							Required:    true,
							Description: fmt.Sprintf("Nodes in the pool, 0 to %d.", cluster.MaxPoolCount),
						},
						"instance_type": optComputedString("Instance type. Defaults per cloud and OS: Linux `m6i.large`, Windows `m6i.xlarge` (AWS); `Standard_D4s_v5` (Azure); `n2-standard-4` (GCP). A change replaces the pool's nodes by surge (see `max_surge`)."),
						"disk_gb": schema.Int64Attribute{
							Optional: true, Computed: true,
							Description: fmt.Sprintf("OS disk size in GB. Defaults to %d (Linux) or %d (Windows); at least %d and %d. A change replaces the pool's nodes by surge.", cluster.DefaultLinuxDiskGB, cluster.DefaultWindowsDiskGB, cluster.MinLinuxDiskGB, cluster.MinWindowsDiskGB),
						},
						"image": schema.StringAttribute{Optional: true, Description: "Image that replaces the cloud's default image for the OS and Windows version. Setting or changing it replaces the pool's nodes by surge (on AWS and Azure; Compute Engine's instance listing does not name the image). Going back to the default does not, and neither does a newer default image."},
						"labels": schema.MapAttribute{
							Optional: true, ElementType: types.StringType,
							Description: "Kubernetes labels set on the pool's nodes when they join. `kubernetes.io/` and `k8s.io/` keys are reserved.",
						},
						"taints": schema.ListAttribute{
							Optional: true, ElementType: types.StringType,
							Description: "Taints set on the pool's nodes when they join, as `key=value:Effect` or `key:Effect`, e.g. `os=windows:NoSchedule`.",
						},
						"max_surge": schema.Int64Attribute{
							Optional: true, Computed: true,
							Description: fmt.Sprintf("How many new nodes a rolling replacement adds above `count` at once, each Ready before an old node is drained. Defaults to %d.", cluster.DefaultMaxSurge),
						},
						"max_unavailable": schema.Int64Attribute{
							Optional: true, Computed: true,
							Description: fmt.Sprintf("How many old nodes a rolling replacement drains and deletes before their replacements are Ready (for a quota with no room to surge). Defaults to %d; `max_surge` and `max_unavailable` cannot both be 0.", cluster.DefaultMaxUnavailable),
						},
						"replace_not_ready_after": schema.StringAttribute{
							Optional:    true,
							Description: fmt.Sprintf("A duration such as `15m`, at least %s: a node NotReady for longer is replaced by the next apply. Unset, a node is replaced only when its instance is stopped or gone.", cluster.MinReplaceNotReadyAfter),
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
								Description: "Path to the private key that authenticates to the bastion. Defaults to the provider's `bastion.private_key`, then the cluster's own SSH key (the one its nodes trust); ssh-agent is not consulted.",
							},
						},
					},
				},
			},
			"artifacts": schema.SingleNestedAttribute{
				Optional:    true,
				Description: "Where nodes download Kubernetes, containerd and CNI. Every file is checked against the SHA-256 in the versions manifest (pinned in the provider where a published source gives one), wherever it comes from.",
				Attributes: map[string]schema.Attribute{
					"mirror_base_url": schema.StringAttribute{
						Optional:    true,
						Description: "HTTPS base URL of a mirror that replaces the publishers' download origins (private mirror, air gap). Plain http is allowed for loopback addresses only.",
					},
					"trust_mirror_checksums": schema.BoolAttribute{
						Optional:    true,
						Description: "Lets the mirror's checksum files replace the SHA-256 digests pinned in the provider, for a mirror that rebuilds the artifacts (the lab's). Leave unset for a mirror of the publishers' files: the pins then still decide.",
					},
				},
			},
			"tags": schema.MapAttribute{
				Optional:    true,
				ElementType: types.StringType,
				Description: "Tags on every object the cloud creates for the cluster, beside mixedk8s's own: AWS tags, Azure tags, GCP labels " +
					"(whose keys and values allow only lowercase letters, digits, `_` and `-`; GCP networks, subnetworks and firewall rules take no labels). " +
					"They override the provider's `default_tags` of the same key. Keys starting with `mixedk8s` are reserved; each cloud's own limits are checked at plan time. " +
					"A change applies to objects created from then on; existing objects keep the tags they were created with (not yet retagged).",
			},
			"secrets_epoch": schema.Int64Attribute{
				Optional: true,
				Computed: true,
				Default:  int64default.StaticInt64(0),
				Description: "The generation of the node identities derived from the cluster's seed: each Linux node's SSH host key, each Windows node's WinRM certificate and admin password. " +
					"Raise it by 1 to rotate them: the apply reaches each node, one at a time, pinning the identity it holds, installs the new one in place (no instance is replaced) and pins that once the node shows it; the plan lists each node with the reason. " +
					"It only grows (0 to 100). It does not rotate the seed, the cluster CA, etcd's data or the provisioner's SSH client key: see the security guide. After importing a rotated cluster, set it to the epoch the cluster holds.",
			},
			"tags_all": schema.MapAttribute{
				Computed:    true,
				ElementType: types.StringType,
				Description: "The tags the cluster's objects get: the provider's `default_tags` merged with `tags`, which win.",
			},
			"timeouts":              timeoutsAttribute(ctx),
			"api_endpoint":          computedString(descAPIEndpoint, false),
			"host":                  computedString(descHost, false),
			"ca_certificate":        computedString(descCACertificate, false),
			"ca_certificate_base64": computedString(descCACertificateBase64, false),
			"client_certificate":    computedString(descClientCertificate+" Renewed with `kubeconfig`.", false),
			"client_key":            computedString(descClientKey+" Stored in the state, like `kubeconfig`.", true),
			"network_id":            computedString(descNetworkID, false),
			"subnet_ids":            computedList(descSubnetIDs),
			"security_group_ids":    computedList(descFirewalls),
			"kubeconfig": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				Description: "A cluster-admin kubeconfig (group `kubeadm:cluster-admins`; its user, the certificate's common name, is `<name>-admin-<UTC time>-<8 hex digits>`, its own for each issuance, as the API server's audit log shows), " +
					"valid for `kubeconfig_validity`. Every refresh (each plan) and apply issues a new one when less than half of that is left, so what a plan reads lasts the apply. " +
					"It is stored in the Terraform state and cannot be revoked before it ends: protect the state, keep `kubeconfig_validity` short, or use the `mixedk8s_kubeconfig` ephemeral resource, which keeps it out of state.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"kubeconfig_validity": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString(defaultStateKubeconfigValidity),
				Description: fmt.Sprintf("How long the certificate of `kubeconfig` (and `client_certificate`) works, as a Go duration between `%s` and `%s`. Default `%s`. "+
					"A saved plan applied later than half of it after its refresh configures providers with an expired certificate: raise it for such pipelines. "+
					"Lowering it renews the kubeconfig on the next apply; a certificate already issued keeps working until it ends.", shortDuration(minStateKubeconfigValidity), shortDuration(maxStateKubeconfigValidity), defaultStateKubeconfigValidity),
			},
			"nodes": schema.ListNestedAttribute{
				Computed:    true,
				Description: "The cluster's instances as the cloud reports them, by name. A node deleted outside Terraform disappears from this list, and the next plan recreates it.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"name":            schema.StringAttribute{Computed: true, Description: "Node name, also the instance name."},
						"pool":            schema.StringAttribute{Computed: true, Description: "Pool name; `control-plane` for control-plane nodes."},
						"os":              schema.StringAttribute{Computed: true, Description: "`linux` or `windows`."},
						"private_ip":      schema.StringAttribute{Computed: true, Description: "Private IP address."},
						"instance_id":     schema.StringAttribute{Computed: true, Description: "The cloud's instance ID."},
						"ready":           schema.BoolAttribute{Computed: true, Description: "Whether the Kubernetes node is Ready."},
						"instance_type":   schema.StringAttribute{Computed: true, Description: descNodeInstanceType},
						"kubelet_version": schema.StringAttribute{Computed: true, Description: descNodeKubeletVersion},
						"windows_build":   schema.StringAttribute{Computed: true, Description: descNodeWindowsBuild},
					},
				},
			},
		},
	}
	for _, c := range cloudBlocks {
		resp.Schema.Attributes[c.name] = c.resourceAttribute()
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

// computedList is a computed list of strings that keeps its state value in
// plans; ModifyPlan sets it from what the cloud reports when it can.
func computedList(description string) schema.ListAttribute {
	return schema.ListAttribute{
		Computed: true, ElementType: types.StringType, Description: description,
		PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
	}
}

// computedString is a computed attribute that keeps its state value in plans.
func computedString(description string, sensitive bool) schema.StringAttribute {
	return schema.StringAttribute{
		Computed: true, Sensitive: sensitive, Description: description,
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}
