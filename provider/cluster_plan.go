package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
		if kubeconfigDue(state.Kubeconfig, time.Now()) {
			plan.Kubeconfig = types.StringUnknown()
			plan.credentialAttrs, _, _ = credentialsOf(plan.Kubeconfig)
			resp.Diagnostics.AddAttributeWarning(path.Root("kubeconfig"), fmt.Sprintf("Cluster %q: the kubeconfig in state is renewed", plan.Name.ValueString()),
				fmt.Sprintf("Its certificate ends within %d days; this apply issues a new one, valid for a year. The old one keeps working until it ends.", int(renewKubeconfigWithin.Hours()/24)))
		}
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
	if state == nil && planPreflight(ctx, spec, opts, &resp.Diagnostics) {
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
