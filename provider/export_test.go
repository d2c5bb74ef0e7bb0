package provider

import (
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// Backend is the seam tests act through with an in-memory cloud.
type Backend = backend

// NewWithBackend returns a constructor for a provider that acts through b
// whatever its configuration says. Every provider instance the constructor
// makes shares b, so state kept in b (an in-memory cloud) persists across
// the Terraform commands of one test.
func NewWithBackend(version string, b Backend) func() provider.Provider {
	return func() provider.Provider { return &Provider{version: version, backend: b} }
}

// KubeconfigDue reports whether a kubeconfig kept in state is issued again at
// now under kubeconfig_validity.
func KubeconfigDue(kubeconfig string, validity time.Duration, now time.Time) bool {
	return kubeconfigDue(types.StringValue(kubeconfig), validity, now)
}

// WarnOpenAdminCIDRs returns the summaries of the warnings a configuration's admin CIDRs get.
func WarnOpenAdminCIDRs(spec cluster.Spec) []string {
	var diags diag.Diagnostics
	warnOpenAdminCIDRs(spec, &diags)
	var out []string
	for _, d := range diags {
		out = append(out, d.Summary())
	}
	return out
}
