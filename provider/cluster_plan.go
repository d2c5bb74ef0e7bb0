package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mixedk8s/mixedk8s/cluster"
)

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
	warnOpenAdminCIDRs(spec, &resp.Diagnostics)
	if v := config.KubeconfigValidity; !v.IsNull() && !v.IsUnknown() {
		checkValidity(v.ValueString(), pathKubeconfigValidity, minStateKubeconfigValidity, maxStateKubeconfigValidity, defaultStateKubeconfigValidity, &resp.Diagnostics)
	}
}

// warnOpenAdminCIDRs warns about an admin CIDR that is the whole address
// space: valid, but it opens SSH, WinRM and the API server to the internet.
func warnOpenAdminCIDRs(spec cluster.Spec, diags *diag.Diagnostics) {
	for i, c := range spec.Access.AdminCIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil || p.Bits() != 0 {
			continue
		}
		diags.AddAttributeWarning(path.Root("access").AtName("admin_cidrs").AtListIndex(i), fmt.Sprintf("access.admin_cidrs[%d] is %s: every address on the internet", i, c),
			"Nodes' SSH and WinRM and the API server are open to everyone; only pinned host keys, certificates and credentials stand in the way.\n\nFix: list the networks administrators connect from (a VPN's or an office's range), or reach the nodes through access.bastion.")
	}
}

// resolvePlan fills the plan's unknown optional values, so the plan shows
// the values Apply will use and the plan after an apply is empty: with the
// value in state when there is one, so that a provider whose default moved
// changes nothing the user did not set, and otherwise with the library's
// default (Spec.WithDefaults). The spec is read back from the filled plan.
// It does nothing while the configuration has unknown values: the defaults
// may depend on them. state is nil for a create.
func resolvePlan(ctx context.Context, config, plan clusterModel, state *clusterModel) (clusterModel, cluster.Spec, bool, diag.Diagnostics) {
	spec, unknown, diags := config.toSpec(ctx)
	if diags.HasError() || len(unknown) > 0 {
		return plan, spec, false, diags
	}
	var defaults clusterModel
	defaults.fromSpec(spec.WithDefaults())
	var prior clusterModel
	if state != nil {
		prior = *state
	}
	plan.KubernetesVersion = fillUnknown(ctx, config.KubernetesVersion, plan.KubernetesVersion, prior.KubernetesVersion, defaults.KubernetesVersion).(types.String)
	plan.Network = fillUnknown(ctx, config.Network, plan.Network, prior.Network, defaults.Network).(types.Object)
	plan.ControlPlane = fillUnknown(ctx, config.ControlPlane, plan.ControlPlane, prior.ControlPlane, defaults.ControlPlane).(types.Object)
	plan.NodePools = fillUnknown(ctx, config.NodePools, plan.NodePools, prior.NodePools, defaults.NodePools).(types.Map)
	plan.Access = fillUnknown(ctx, config.Access, plan.Access, prior.Access, defaults.Access).(types.Object)
	plan.ID = plan.Name
	resolved, _, d := plan.toSpec(ctx)
	diags.Append(d...)
	return plan, resolved.WithDefaults(), true, diags
}

// fillUnknown walks a planned value and replaces each unknown value whose
// configuration is null (an optional+computed attribute left out) with the
// state's value at the same place, or, where the state has none, the
// default. Unknown values that come from the configuration stay unknown.
func fillUnknown(ctx context.Context, config, plan, prior, def attr.Value) attr.Value {
	if def == nil {
		return plan
	}
	if plan.IsUnknown() {
		if config == nil || config.IsNull() {
			if prior != nil && !prior.IsNull() && !prior.IsUnknown() {
				return prior
			}
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
		s, _ := prior.(types.Object)
		if d.IsNull() || d.IsUnknown() {
			return plan
		}
		attrs := make(map[string]attr.Value, len(p.Attributes()))
		for k, v := range p.Attributes() {
			attrs[k] = fillUnknown(ctx, c.Attributes()[k], v, s.Attributes()[k], d.Attributes()[k])
		}
		out, diags := types.ObjectValue(p.AttributeTypes(ctx), attrs)
		if diags.HasError() {
			return plan
		}
		return out
	case types.Map:
		c, _ := config.(types.Map)
		d, _ := def.(types.Map)
		s, _ := prior.(types.Map)
		if d.IsNull() || d.IsUnknown() {
			return plan
		}
		elems := make(map[string]attr.Value, len(p.Elements()))
		for k, v := range p.Elements() {
			elems[k] = fillUnknown(ctx, c.Elements()[k], v, s.Elements()[k], d.Elements()[k])
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
	plan, spec, known, diags := resolvePlan(ctx, config, plan, state)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	plan.KubernetesRelease = plannedRelease(plan.KubernetesVersion, state)
	if rel := plan.KubernetesRelease; !rel.IsNull() && !rel.IsUnknown() {
		spec.KubernetesVersion = rel.ValueString() // the library plans (and checks skew against) the release the plan shows
	}
	if state != nil {
		checkUnsupportedChanges(ctx, *state, plan, spec, &resp.Diagnostics)
		// A refresh renews a kubeconfig that is due; one still due here was
		// not refreshed (-refresh=false) or meets a new kubeconfig_validity.
		if v := plan.KubeconfigValidity; !v.IsUnknown() && kubeconfigDue(state.Kubeconfig, stateKubeconfigValidity(v), time.Now()) {
			plan.Kubeconfig = types.StringUnknown()
			plan.credentialAttrs, _, _ = credentialsOf(plan.Kubeconfig)
			resp.Diagnostics.AddAttributeWarning(path.Root("kubeconfig"), fmt.Sprintf("Cluster %q: the kubeconfig in state is renewed", plan.Name.ValueString()),
				fmt.Sprintf("Less than half of its certificate's life is left, or its life is longer than kubeconfig_validity (%s); this apply issues a new one. The old one keeps working until it ends.", stateKubeconfigValidity(v)))
		}
	}
	defer func() { resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...) }()
	if !known || r.data == nil || resp.Diagnostics.HasError() {
		return
	}
	own := spec.Access.Bastion != nil
	ownTags := spec.Tags
	spec = r.effectiveSpec(spec)
	plan.TagsAll = tagsAll(spec.Tags)
	if err := cluster.Validate(spec); err != nil {
		// ValidateConfig reported the resource's own problems at their paths;
		// what is left comes from the provider's default bastion and default tags.
		var ps cluster.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				switch key, isTag := tagKeyOf(p.Path); {
				case !own && strings.HasPrefix(p.Path, "access.bastion"):
					resp.Diagnostics.AddError("Invalid provider bastion."+strings.TrimPrefix(p.Path, "access.bastion."),
						"The provider's bastion is used because this cluster sets no access.bastion: "+problemDetail(p))
				case isTag && !hasKey(ownTags, key):
					resp.Diagnostics.AddError("Invalid provider default_tags.tags["+strconv.Quote(key)+"]",
						"The provider's default_tags apply to this cluster: "+problemDetail(p))
				}
			}
		}
		return
	}
	if state != nil && !state.TagsAll.IsNull() && !state.TagsAll.Equal(plan.TagsAll) {
		resp.Diagnostics.AddAttributeWarning(path.Root("tags"), fmt.Sprintf("Cluster %q: tags apply to new objects only", spec.Name),
			"Objects the cluster already has keep the tags they were created with; nodes, secrets and network objects created from now on get the new tags. Retagging existing objects is not supported yet.")
	}
	opts, err := r.data.backend.Options(ctx, spec)
	if err != nil {
		resp.Diagnostics.AddError("Cannot reach the cluster's cloud", err.Error())
		return
	}
	defer release(opts)
	if state == nil && planPreflight(ctx, spec, opts, &resp.Diagnostics) {
		return
	}
	observed, err := cluster.Observe(ctx, spec, opts)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the cluster's current state", err.Error())
		return
	}
	// The network IDs: what the cloud reports, or known after the apply that makes the network.
	plan.networkAttrs = networkOf(observed.Network)
	if observed.Network == nil {
		plan.networkAttrs = unknownNetwork()
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

// tagKeyOf reads the key of a problem path `tags["key"]`.
func tagKeyOf(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "tags[")
	if !ok {
		return "", false
	}
	key, err := strconv.Unquote(strings.TrimSuffix(rest, "]"))
	return key, err == nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

func countsLine(c cluster.Changes) string {
	nodes := func(n int) string {
		if n == 1 {
			return "1 node"
		}
		return fmt.Sprintf("%d nodes", n)
	}
	add, remove := c.Counts()
	rotate := 0
	for _, s := range c.Steps {
		if s.Kind == cluster.StepRotate {
			rotate++
		}
	}
	switch {
	case add == 0 && remove == 0 && rotate > 0:
		return "the identities of " + nodes(rotate) + " to rotate (secrets_epoch)"
	case add > 0 && remove > 0:
		return fmt.Sprintf("%s to add, %d to drain and delete", nodes(add), remove)
	case add > 0:
		return nodes(add) + " to add"
	case remove > 0:
		return nodes(remove) + " to drain and delete"
	}
	return "nodes to finish"
}

// plannedRelease is the release a planned kubernetes_version runs: the
// recorded one while the version names its minor, else what the version
// resolves to in this build.
func plannedRelease(version types.String, state *clusterModel) types.String {
	if version.IsUnknown() {
		return types.StringUnknown()
	}
	if version.IsNull() {
		return types.StringNull()
	}
	v := version.ValueString()
	if state != nil && !state.KubernetesRelease.IsNull() && !state.KubernetesRelease.IsUnknown() {
		prior := state.KubernetesRelease.ValueString()
		if prior == v || strings.Count(v, ".") == 1 && strings.HasPrefix(prior, v+".") {
			return state.KubernetesRelease
		}
	}
	return types.StringValue(cluster.KubernetesRelease(v))
}

// runningRelease is the release a state records, from kubernetes_version
// where the state predates kubernetes_release.
func runningRelease(state clusterModel) types.String {
	if state.KubernetesRelease.IsNull() || state.KubernetesRelease.IsUnknown() {
		return plannedRelease(state.KubernetesVersion, nil)
	}
	return state.KubernetesRelease
}

// networkCNI is network.cni when known, else "".
func networkCNI(network types.Object) string {
	if network.IsNull() || network.IsUnknown() {
		return ""
	}
	v, ok := network.Attributes()["cni"].(types.String)
	if !ok || v.IsNull() || v.IsUnknown() {
		return ""
	}
	return v.ValueString()
}

// checkUnsupportedChanges refuses a Kubernetes release change the version
// skew rules forbid (from the release in state, so it holds when the API
// server cannot be reached; Plan checks the running one too), and warns
// where a change applies to new nodes only.
func checkUnsupportedChanges(ctx context.Context, state, plan clusterModel, spec cluster.Spec, diags *diag.Diagnostics) {
	if running := runningRelease(state); !running.IsNull() && !plan.KubernetesRelease.IsUnknown() && !running.Equal(plan.KubernetesRelease) {
		spec.KubernetesVersion = plan.KubernetesRelease.ValueString()
		if err := cluster.CheckVersionChange(spec, running.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("kubernetes_version"), "Invalid kubernetes_version", strings.TrimPrefix(err.Error(), "kubernetes_version: "))
		}
	}
	if was, now := networkCNI(state.Network), networkCNI(plan.Network); was != "" && now != "" && was != now {
		diags.AddAttributeError(path.Root("network").AtName("cni"), "Invalid network.cni",
			fmt.Sprintf("The cluster's pod network is %s; switching it to %s would need an in-place CNI migration (every node's pod addresses, routes and HNS networks rebuilt while its pods keep running), which mixedk8s does not do.\n\nFix: keep network.cni = %q, or replace the cluster with terraform apply -replace=<address>.",
				was, now, was))
	}
	if was, now := state.SecretsEpoch, plan.SecretsEpoch; !was.IsNull() && !now.IsNull() && !now.IsUnknown() && now.ValueInt64() < was.ValueInt64() {
		diags.AddAttributeError(path.Root("secrets_epoch"), "Invalid secrets_epoch",
			fmt.Sprintf("The cluster's node identities are at secrets_epoch %d; going back to %d would reinstall identities the rotation retired.\n\nFix: keep secrets_epoch = %d, or raise it to %d to rotate again.",
				was.ValueInt64(), now.ValueInt64(), was.ValueInt64(), was.ValueInt64()+1))
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
		// os, windows_version, instance_type, disk_gb and image replace the nodes (the plan's summary says so).
		for _, field := range []string{"isolation", "labels", "taints"} {
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
