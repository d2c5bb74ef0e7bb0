package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	mkaws "github.com/mixedk8s/mixedk8s/clouds/aws"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
)

// awsModel is the resource's aws attribute.
type awsModel struct {
	Region types.String `tfsdk:"region"`
	Zones  types.List   `tfsdk:"zones"`
}

// awsProviderConfig is the provider block's aws attribute.
type awsProviderConfig struct {
	Region   types.String `tfsdk:"region"`
	Profile  types.String `tfsdk:"profile"`
	Endpoint types.String `tfsdk:"endpoint"`
	CABundle types.String `tfsdk:"ca_bundle"`
}

var awsBlock = cloudBlock{
	name:  "aws",
	title: "AWS",
	location: []locationAttr{
		{name: "region", description: "Region code, such as `eu-west-1`."},
		{name: "zones", list: true, description: "Zone names to spread nodes over, such as `eu-west-1a`. Empty means the region's first zone. Changes apply to nodes created afterwards."},
	},
	description: "Places the cluster on AWS. Exactly one of `aws`, `azure` and `gcp` is set. Removing it, or changing `region`, replaces the cluster.",
	replace:     replaceAWSOnRegion(),
	provider: pschema.SingleNestedAttribute{
		Optional:    true,
		Description: "How to reach the AWS APIs. Credentials come from the AWS SDK's default chain (AWS_* environment variables, the shared config and credentials files, SSO, an instance or container role).",
		Attributes: map[string]pschema.Attribute{
			"region": pschema.StringAttribute{
				Optional:    true,
				Description: "Region used when a cluster's own region is unknown: importing a cluster, or reading a data source without an aws attribute. Defaults to the SDK's (AWS_REGION, the profile's region).",
			},
			"profile": pschema.StringAttribute{
				Optional:    true,
				Description: "Named profile from the shared config and credentials files. Defaults to AWS_PROFILE, then `default`.",
			},
			"endpoint": pschema.StringAttribute{
				Optional:    true,
				Description: "Base URL that replaces the EC2 endpoint (a VPC endpoint, or the lab's EC2 emulator such as `https://127.0.0.1:8443`).",
			},
			"ca_bundle": pschema.StringAttribute{Optional: true, Description: caBundleDescription},
		},
	},
	toSpec: func(r *specReader, v types.Object, s *cluster.Spec) {
		var m awsModel
		if r.object("aws", v, &m) {
			s.AWS = &cluster.AWSSpec{Region: r.str("aws.region", m.Region), Zones: r.list("aws.zones", m.Zones)}
		}
	},
	fromSpec: func(s cluster.Spec) map[string]attr.Value {
		if s.AWS == nil {
			return nil
		}
		return map[string]attr.Value{"region": types.StringValue(s.AWS.Region), "zones": optList(s.AWS.Zones)}
	},
	options: func(ctx context.Context, b cloudBackend, spec cluster.Spec) (cluster.Options, error) {
		return b.aws(ctx, spec)
	},
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

// aws builds the EC2 cloud and the agent provisioner for one cluster.
func (b cloudBackend) aws(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	// Nodes cannot be built without the agents; say so at plan time, not halfway through an apply.
	if err := bundle.Check(); err != nil {
		return cluster.Options{}, err
	}
	cfg := mkaws.Config{}
	if spec.AWS != nil {
		cfg.Region = spec.AWS.Region
		cfg.Zones = spec.AWS.Zones
	}
	if p := b.config.AWS; p != nil {
		if cfg.Region == "" {
			cfg.Region = p.Region.ValueString()
		}
		cfg.Endpoint = p.Endpoint.ValueString()
		cfg.CABundle = []byte(p.CABundle.ValueString())
		cfg.Profile = p.Profile.ValueString()
	}
	if cfg.Region == "" {
		return cluster.Options{}, fmt.Errorf("cluster %q has no AWS region; fix: set aws.region on the resource or on the provider", spec.Name)
	}
	cloud, err := mkaws.New(ctx, cfg)
	if err != nil {
		return cluster.Options{}, err
	}
	return b.options(cloud)
}
