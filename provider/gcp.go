package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// gcpModel is the resource's gcp attribute.
type gcpModel struct {
	Project types.String `tfsdk:"project"`
	Region  types.String `tfsdk:"region"`
	Zone    types.String `tfsdk:"zone"`
}

// gcpProviderConfig is the provider block's gcp attribute.
type gcpProviderConfig struct {
	Project  types.String `tfsdk:"project"`
	Endpoint types.String `tfsdk:"endpoint"`
	CABundle types.String `tfsdk:"ca_bundle"`
}

var gcpBlock = cloudBlock{
	name:  "gcp",
	title: "Google Cloud",
	location: []locationAttr{
		{name: "project", description: "Project ID (not its name or number)."},
		{name: "region", description: "Region, such as `europe-west4`."},
		{name: "zone", description: "Zone of the region, such as `europe-west4-a`."},
	},
	description: "Places the cluster on Google Cloud. Exactly one of `aws`, `azure` and `gcp` is set. " + replaces,
	replace:     replaceObjectWhenSet("Moving a cluster to another project, region, zone or cloud replaces it."),
	provider: pschema.SingleNestedAttribute{
		Optional:    true,
		Description: "How to reach Compute Engine. Credentials come from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login, the metadata server).",
		Attributes: map[string]pschema.Attribute{
			"project": pschema.StringAttribute{
				Optional:    true,
				Description: "Project used when a cluster's own project is unknown (import, data sources). Defaults to the credentials' project.",
			},
			"endpoint": pschema.StringAttribute{
				Optional:    true,
				Description: "Base URL that replaces `https://compute.googleapis.com` (Private Service Connect, or the lab's Compute Engine emulator).",
			},
			"ca_bundle": pschema.StringAttribute{Optional: true, Description: caBundleDescription},
		},
	},
	toSpec: func(r *specReader, v types.Object, s *cluster.Spec) {
		var m gcpModel
		if r.object("gcp", v, &m) {
			s.GCP = &cluster.GCPSpec{Project: r.str("gcp.project", m.Project), Region: r.str("gcp.region", m.Region), Zone: r.str("gcp.zone", m.Zone)}
		}
	},
	fromSpec: func(s cluster.Spec) map[string]attr.Value {
		if s.GCP == nil {
			return nil
		}
		return map[string]attr.Value{
			"project": types.StringValue(s.GCP.Project), "region": types.StringValue(s.GCP.Region), "zone": types.StringValue(s.GCP.Zone),
		}
	},
	options: func(context.Context, cloudBackend, cluster.Spec) (cluster.Options, error) {
		return cluster.Options{}, fmt.Errorf("the gcp backend is not available in this build yet: this provider build validates cluster configurations but cannot plan, create or read clusters on gcp; fix: use aws, or the lab (examples/lab)")
	},
}
