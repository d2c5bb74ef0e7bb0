package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

// planPreflight asks the cloud of a cluster about to be created whether
// the account and the credentials allow it (clouds.Preflighter, in its
// quick form: one or two read calls), and reports a refusal at the
// attribute it names. A check that cannot tell says nothing here: the
// apply asks again and the cloud answers the first call itself.
func planPreflight(ctx context.Context, spec cluster.Spec, opts cluster.Options, diags *diag.Diagnostics) bool {
	net := spec.WithDefaults().Network
	err := clouds.Preflight(ctx, opts.Cloud, clouds.PreflightRequest{Cluster: spec.Name, Network: true, Instances: true, Secrets: true, Quick: true,
		PodCIDR: net.PodCIDR, ServiceCIDR: net.ServiceCIDR})
	pe, ok := clouds.AsPreflightError(err)
	if !ok {
		return false
	}
	ce := pe.Err
	detail := fmt.Sprintf("%s %s", ce.Op, ce.Object)
	if ce.Code != "" {
		detail += " (" + ce.Code + ")"
	}
	if ce.Err != nil {
		detail += ": " + ce.Err.Error()
	}
	detail += ".\n\nFix: " + ce.Fix + "."
	summary := "Invalid " + pe.Field
	// The provider block's attributes (a vault URL) have no path in the resource.
	if p, ok := problemPath(pe.Field); ok && !strings.HasSuffix(pe.Field, "key_vault_url") {
		diags.AddAttributeError(p, summary, detail)
	} else {
		diags.AddError(summary, detail)
	}
	return true
}
