package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

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

// effectiveSpec is the spec Apply acts on: the resource's, with the
// provider's default bastion when the resource sets none.
func (r *clusterResource) effectiveSpec(s cluster.Spec) cluster.Spec {
	if s.Access.Bastion == nil && r.data != nil {
		s.Access.Bastion = r.data.config.bastion()
	}
	if r.data != nil {
		s.Tags = r.data.config.tags(s.Tags)
	}
	return s
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

// The kubeconfig kept in state: short-lived, because a certificate cannot
// be revoked and state is read by more people than the cluster's admins;
// every read (a plan's refresh) and apply issues a new one when less than
// half of its life is left, so a plan leaves at least half for the apply.
const (
	defaultStateKubeconfigValidity = "1h"
	minStateKubeconfigValidity     = 10 * time.Minute
	maxStateKubeconfigValidity     = 365 * 24 * time.Hour
	// kubeconfigClockSlack absorbs the backdated start and clock skew when
	// judging whether a certificate outlives the validity asked for.
	kubeconfigClockSlack = 10 * time.Minute
)

var pathKubeconfigValidity = path.Root("kubeconfig_validity")

// stateKubeconfigValidity is kubeconfig_validity, its default when unset or
// unknown (ValidateConfig has refused what does not parse).
func stateKubeconfigValidity(v types.String) time.Duration {
	s := defaultStateKubeconfigValidity
	if !v.IsNull() && !v.IsUnknown() {
		s = v.ValueString()
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		d, _ = time.ParseDuration(defaultStateKubeconfigValidity)
	}
	return d
}

// kubeconfigDue reports whether a kubeconfig in state is issued again at now
// under validity: less than half its life is left, or it outlives validity
// (issued under a longer one, or a year-long one of an earlier release).
// One whose certificate cannot be read (not issued by this provider) is left alone.
func kubeconfigDue(kc types.String, validity time.Duration, now time.Time) bool {
	if kc.IsNull() || kc.IsUnknown() {
		return false
	}
	_, end, err := credentialsOf(kc)
	if err != nil {
		return false
	}
	left := end.Sub(now)
	return left < validity/2 || left > validity+kubeconfigClockSlack
}

// tagsAll is the tags_all attribute: the merged tags, an empty map for none.
func tagsAll(tags map[string]string) types.Map {
	if tags == nil {
		return types.MapValueMust(types.StringType, map[string]attr.Value{})
	}
	return optMap(tags)
}

// observeInto sets the computed attributes from what exists.
func observeInto(ctx context.Context, m *clusterModel, spec cluster.Spec, opts cluster.Options) (cluster.Observed, error) {
	observed, err := cluster.Observe(ctx, spec, opts)
	if err != nil {
		return observed, err
	}
	m.Nodes = nodesValue(observed)
	m.TagsAll = tagsAll(spec.Tags)
	m.endpointAttrs = endpointOf(observed.Endpoint)
	m.networkAttrs = networkOf(observed.Network)
	validity := stateKubeconfigValidity(m.KubeconfigValidity)
	if observed.Endpoint != nil && (m.Kubeconfig.IsNull() || m.Kubeconfig.IsUnknown() || kubeconfigDue(m.Kubeconfig, validity, time.Now())) {
		kc, err := cluster.Kubeconfig(ctx, spec, opts, validity)
		if err != nil {
			return observed, err
		}
		m.Kubeconfig = types.StringValue(string(kc))
	}
	if m.Kubeconfig.IsUnknown() {
		m.Kubeconfig = types.StringNull()
	}
	creds, _, err := credentialsOf(m.Kubeconfig)
	if err != nil {
		return observed, fmt.Errorf("the kubeconfig in state: %w", err)
	}
	m.credentialAttrs = creds
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
func (r *clusterResource) applyPlan(ctx context.Context, config, plan clusterModel, prior *clusterModel, diags *diag.Diagnostics) (clusterModel, cluster.Spec, cluster.Options, bool, error) {
	plan, spec, known, d := resolvePlan(ctx, config, plan, prior)
	diags.Append(d...)
	if d.HasError() {
		return plan, spec, cluster.Options{}, false, nil
	}
	if !known {
		diags.AddError("Unknown values at apply time", "Some attributes of the cluster are still unknown at apply time; this is a bug in the provider or Terraform.")
		return plan, spec, cluster.Options{}, false, nil
	}
	if rel := plan.KubernetesRelease; rel.IsNull() || rel.IsUnknown() {
		plan.KubernetesRelease = types.StringValue(spec.KubernetesVersion) // resolved by resolvePlan's defaults
	} else {
		spec.KubernetesVersion = rel.ValueString() // what the plan showed, not today's newest of a minor
	}
	spec, opts, ok := r.optionsFor(ctx, spec, diags)
	if !ok {
		return plan, spec, opts, false, nil
	}
	_, err := cluster.Apply(ctx, spec, opts)
	if err != nil && addProblems(diags, err, nil) {
		return plan, spec, opts, false, nil
	}
	return plan, spec, opts, true, err
}

// apply is Create and Update: the planned cluster applied within the
// operation's timeout and read back into the new state. prior is the state
// an update starts from, nil for a create.
func (r *clusterResource) apply(ctx context.Context, config, plan clusterModel, prior *clusterModel, state *tfsdk.State, diags *diag.Diagnostics) {
	ctx = withLogMasking(ctx)
	timeout, d := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	if prior != nil {
		timeout, d = plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	}
	diags.Append(d...)
	if d.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	plan, spec, opts, ran, err := r.applyPlan(ctx, config, plan, prior, diags)
	defer release(opts)
	if !ran {
		return
	}
	if err != nil {
		if prior != nil {
			// The prior state stays (the framework keeps it when Update fails):
			// the next plan shows the same change again, and its apply resumes.
			diags.AddError(fmt.Sprintf("Failed to update cluster %q", spec.Name),
				err.Error()+"\n\nRun terraform apply again to resume: it adopts what exists and finishes.")
			return
		}
		// No state is saved for a failed create, on purpose. The framework
		// taints any resource whose Create returns an error together with
		// state, and Terraform replaces a tainted resource on the next apply:
		// it would destroy the half-built cluster and start again. Without
		// state the next apply plans a create again, and cluster.Apply adopts
		// every object that exists by its tags and finishes the same cluster
		// (the plan's warning lists the nodes it will finish). The cost: after
		// giving up on a failed create, `terraform destroy` does not know the
		// cluster; the error says how to import it first.
		diags.AddError(fmt.Sprintf("Failed to create cluster %q", spec.Name),
			err.Error()+"\n\n"+
				"What was created is kept and tagged with the cluster's name. Run terraform apply again to resume: it adopts what exists and finishes the same cluster. "+
				fmt.Sprintf("To remove it instead, import it and destroy it: terraform import <address> %s && terraform destroy.", spec.Name))
		return
	}
	if prior != nil && !plan.Kubeconfig.IsUnknown() {
		plan.Kubeconfig = prior.Kubeconfig // unknown: the plan renews it
	}
	if _, err := observeInto(ctx, &plan, spec, opts); err != nil {
		if prior != nil {
			diags.AddError(fmt.Sprintf("Updated cluster %q but cannot read it back", spec.Name), err.Error())
			return
		}
		diags.AddError(fmt.Sprintf("Created cluster %q but cannot read it back", spec.Name),
			err.Error()+"\n\nRun terraform apply again: it adopts the cluster and records it.")
		return
	}
	diags.Append(state.Set(ctx, &plan)...)
}

func (r *clusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var config, plan clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, config, plan, nil, &resp.State, &resp.Diagnostics)
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
	defer release(opts)
	imported := state.ControlPlane.IsNull()
	state.ID = state.Name
	if state.KubernetesRelease.IsNull() {
		state.KubernetesRelease = runningRelease(state) // a state written before the attribute existed
	}
	if state.SecretsEpoch.IsNull() {
		state.SecretsEpoch = types.Int64Value(0) // a state written before the attribute existed, or an import
	}
	if state.KubeconfigValidity.IsNull() {
		state.KubeconfigValidity = types.StringValue(defaultStateKubeconfigValidity) // likewise
	}
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
		if v := strings.TrimPrefix(observed.ServerVersion, "v"); v != "" && state.KubernetesRelease.IsNull() {
			// The release the API server reports is the one the cluster runs.
			state.KubernetesVersion, state.KubernetesRelease = types.StringValue(v), types.StringValue(v)
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *clusterResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var config, plan, state clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, config, plan, &state, &resp.State, &resp.Diagnostics)
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
	defer release(opts)
	if err := cluster.Destroy(ctx, spec, opts); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Failed to destroy cluster %q", spec.Name),
			err.Error()+"\n\nRun terraform destroy again: it finds what is left by tag and deletes it.")
	}
}

// ImportState imports a cluster by name, optionally with its cloud
// location (parseImportID). Read then adopts it by its tags and recovers
// the pools and control plane from its instances; see the resource
// documentation for what the configuration must supply.
func (r *clusterResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	name, loc, err := parseImportID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
	if loc != nil {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(loc.cloud), loc.value)...)
	}
}
