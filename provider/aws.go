package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	mkaws "github.com/mixedk8s/mixedk8s/clouds/aws"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
)

// awsModel is the resource's aws attribute.
type awsModel struct {
	Region    types.String `tfsdk:"region"`
	Zones     types.List   `tfsdk:"zones"`
	KMSKeyID  types.String `tfsdk:"kms_key_id"`
	VPCID     types.String `tfsdk:"vpc_id"`
	SubnetIDs types.List   `tfsdk:"subnet_ids"`
}

// awsProviderConfig is the provider block's aws attribute.
type awsProviderConfig struct {
	Region     types.String         `tfsdk:"region"`
	Profile    types.String         `tfsdk:"profile"`
	Endpoint   types.String         `tfsdk:"endpoint"`
	Endpoints  *awsEndpointsConfig  `tfsdk:"endpoints"`
	CABundle   types.String         `tfsdk:"ca_bundle"`
	AssumeRole *awsAssumeRoleConfig `tfsdk:"assume_role"`
}

// awsEndpointsConfig is the provider's per-service endpoints.
type awsEndpointsConfig struct {
	EC2   types.String `tfsdk:"ec2"`
	ELBv2 types.String `tfsdk:"elbv2"`
	SSM   types.String `tfsdk:"ssm"`
	STS   types.String `tfsdk:"sts"`
}

// awsAssumeRoleConfig is the provider's assume_role, as terraform-provider-aws's.
type awsAssumeRoleConfig struct {
	RoleARN     types.String `tfsdk:"role_arn"`
	SessionName types.String `tfsdk:"session_name"`
	ExternalID  types.String `tfsdk:"external_id"`
	Duration    types.String `tfsdk:"duration"`
}

var awsBlock = cloudBlock{
	name:  "aws",
	title: "AWS",
	location: []locationAttr{
		{name: "region", description: "Region code, such as `eu-west-1`."},
		{name: "zones", list: true, description: "Zone names to spread nodes over, such as `eu-west-1a`. Empty means the region's first zone. Changes apply to nodes created afterwards. Not with `subnet_ids`: the nodes' zones are then the subnets' zones."},
		{name: "kms_key_id", optional: true, description: "Customer managed KMS key that encrypts the cluster's SSM SecureString parameters and every node's root volume: a key ID, key ARN, alias (`alias/name`) or alias ARN, in the cluster's region. " +
			"Empty uses the AWS managed keys `aws/ssm` and `aws/ebs`. The key policy must let the provider's credentials use it through SSM and EC2 (see the security guide). " +
			"A change applies to secrets and nodes created afterwards; existing ones keep the key they were made with."},
		{name: "vpc_id", optional: true, description: "An existing VPC to put the cluster in, such as `vpc-0a1b2c3d4e5f67890`, with `subnet_ids`. " +
			"The cluster then creates no VPC, subnet, route table or internet gateway: only its two security groups (`<name>-control-plane`, `<name>-worker`, and `<name>-api-lb` for the API load balancer), in this VPC and tagged with the cluster; destroy deletes those and leaves the VPC and subnets. " +
			"The security groups admit the subnets' ranges (`network.node_cidr` is not used). Plan checks that the VPC exists in the region. Unset: the cluster creates its own VPC from `network.node_cidr`. " + replaces,
			lookup: "The existing VPC of a cluster made with the resource's `vpc_id`; with it (and `subnet_ids`) a lookup also finds the cluster's network: its subnets and security groups."},
		{name: "subnet_ids", list: true, description: "The existing subnets of `vpc_id` the nodes go in, one per zone (a Network Load Balancer takes one subnet per zone), such as `[\"subnet-0a1b2c3d4e5f67890\"]`. " +
			"Nodes are spread over them by name, and the API load balancer has a leg in each: an internet-facing one (no `access.bastion`) needs them routed to an internet gateway. " +
			"Plan checks that each exists, is in `vpc_id` and is in a zone of its own. " + replaces,
			lookup: "The existing subnets of `vpc_id` (the resource's `subnet_ids`)."},
	},
	description: "Places the cluster on AWS. Exactly one of `aws`, `azure` and `gcp` is set. Removing it, or changing `region`, `vpc_id` or `subnet_ids`, replaces the cluster.",
	replace:     replaceAWSOnRegion(),
	provider: pschema.SingleNestedAttribute{
		Optional: true,
		Description: "How to reach the AWS APIs. Credentials come from the AWS SDK's default chain (AWS_* environment variables, web identity, " +
			"the shared config and credentials files with SSO and credential_process, the container or instance role), then, with `assume_role`, " +
			"from the role they assume. The provider checks them once, when it is configured, with STS GetCallerIdentity.",
		Attributes: map[string]pschema.Attribute{
			"region": pschema.StringAttribute{
				Optional: true,
				Description: "Region used when a cluster's own region is unknown (importing a cluster by name, reading a data source without an aws attribute) " +
					"and for STS. Defaults to the SDK's chain: AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region` in the shared config file.",
			},
			"profile": pschema.StringAttribute{
				Optional:    true,
				Description: "Named profile from the shared config and credentials files, for its credentials and region. Defaults to AWS_PROFILE, then `default`.",
			},
			"endpoint": pschema.StringAttribute{
				Optional:   true,
				Validators: []validator.String{awsEndpointValidator},
				Description: "Base URL of every AWS service that `endpoints` does not set (EC2, Elastic Load Balancing, SSM, STS): a proxy, " +
					"or the lab's emulator, which serves them all at one URL such as `https://127.0.0.1:8443`. Defaults to the SDK's resolution " +
					"(which reads AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>).",
			},
			"endpoints": pschema.SingleNestedAttribute{
				Optional:    true,
				Description: "Base URL per service, such as a VPC interface endpoint's; a service not set here uses `endpoint`, then the SDK's resolution.",
				Attributes: map[string]pschema.Attribute{
					"ec2":   pschema.StringAttribute{Optional: true, Validators: []validator.String{awsEndpointValidator}, Description: "Amazon EC2: networks, security groups, instances."},
					"elbv2": pschema.StringAttribute{Optional: true, Validators: []validator.String{awsEndpointValidator}, Description: "Elastic Load Balancing (v2): the API's Network Load Balancer."},
					"ssm":   pschema.StringAttribute{Optional: true, Validators: []validator.String{awsEndpointValidator}, Description: "Systems Manager: image parameters and the clusters' SecureString parameters."},
					"sts":   pschema.StringAttribute{Optional: true, Validators: []validator.String{awsEndpointValidator}, Description: "Security Token Service: the credential check and `assume_role`."},
				},
			},
			"ca_bundle": pschema.StringAttribute{Optional: true, Description: caBundleDescription},
			"assume_role": pschema.SingleNestedAttribute{
				Optional: true,
				Description: "A role the credentials assume through STS AssumeRole before any other call; its temporary credentials are cached and " +
					"renewed before they expire. The role's trust policy must let the credentials assume it.",
				Attributes: map[string]pschema.Attribute{
					"role_arn": pschema.StringAttribute{
						Required:    true,
						Validators:  []validator.String{stringvalidator.RegexMatches(awsRoleARNRE, "must be an IAM role ARN, arn:aws:iam::<12-digit account>:role/<path/name>")},
						Description: "ARN of the role, `arn:aws:iam::<account>:role/<name>`.",
					},
					"session_name": pschema.StringAttribute{
						Optional:    true,
						Validators:  []validator.String{stringvalidator.RegexMatches(awsSessionNameRE, "must be 2 to 64 characters of letters, digits and +=,.@_-")},
						Description: "Session name CloudTrail records and the assumed-role ARN ends with. Defaults to the SDK's `aws-go-sdk-<time>`.",
					},
					"external_id": pschema.StringAttribute{
						Optional:    true,
						Validators:  []validator.String{stringvalidator.LengthBetween(2, 1224), stringvalidator.RegexMatches(awsExternalIDRE, "must be letters, digits and +=,.@:/_-")},
						Description: "External ID the role's trust policy requires (its `sts:ExternalId` condition).",
					},
					"duration": pschema.StringAttribute{
						Optional:    true,
						Validators:  []validator.String{awsDurationValidator{}},
						Description: "How long each session lasts, such as `1h` or `45m`: 15m to 12h, and at most the role's maximum session duration (1h when a role assumes a role). Defaults to 15m.",
					},
				},
			},
		},
	},
	toSpec: func(r *specReader, v types.Object, s *cluster.Spec) {
		var m awsModel
		if r.object("aws", v, &m) {
			s.AWS = &cluster.AWSSpec{Region: r.str("aws.region", m.Region), Zones: r.list("aws.zones", m.Zones), KMSKeyID: r.str("aws.kms_key_id", m.KMSKeyID),
				VPCID: r.str("aws.vpc_id", m.VPCID), SubnetIDs: r.list("aws.subnet_ids", m.SubnetIDs)}
		}
	},
	fromSpec: func(s cluster.Spec) map[string]attr.Value {
		if s.AWS == nil {
			return nil
		}
		return map[string]attr.Value{"region": types.StringValue(s.AWS.Region), "zones": optList(s.AWS.Zones), "kms_key_id": optString(s.AWS.KMSKeyID),
			"vpc_id": optString(s.AWS.VPCID), "subnet_ids": optList(s.AWS.SubnetIDs)}
	},
	options: func(ctx context.Context, b cloudBackend, spec cluster.Spec) (cluster.Options, error) {
		return b.aws(ctx, spec)
	},
}

// replaceAWSOnRegion replaces the cluster when the aws attribute is removed or
// its region or existing network changes; zones only place new nodes and
// kms_key_id only keys new objects, so they change in place.
func replaceAWSOnRegion() planmodifier.Object {
	const why = "Moving a cluster to another region, network or cloud replaces it."
	return objectplanmodifier.RequiresReplaceIf(func(ctx context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
		if req.StateValue.IsNull() {
			return
		}
		if req.PlanValue.IsNull() {
			resp.RequiresReplace = true
			return
		}
		changed := func(name string) bool {
			before, after := req.StateValue.Attributes()[name], req.PlanValue.Attributes()[name]
			return before != nil && after != nil && !after.IsUnknown() && !before.Equal(after)
		}
		// An import recovers no network settings (its state has a null
		// network attribute): the configuration's vpc_id and subnet_ids
		// are taken as they are then.
		imported := false
		if req.State.Schema != nil {
			var network types.Object
			req.State.GetAttribute(ctx, path.Root("network"), &network)
			imported = network.IsNull()
		}
		resp.RequiresReplace = changed("region") || (!imported && (changed("vpc_id") || changed("subnet_ids")))
	}, why, why)
}

// aws builds the EC2 cloud and the agent provisioner for one cluster.
func (b cloudBackend) aws(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	// Nodes cannot be built without the agents; say so at plan time, not halfway through an apply.
	if err := bundle.Check(); err != nil {
		return cluster.Options{}, err
	}
	cfg := mkaws.Config{Tags: spec.Tags}
	if p := b.config.AWS; p != nil {
		p.apply(&cfg)
	}
	// The cluster's own region wins; the provider's, then the SDK's chain,
	// serve imports by name and lookups without a location.
	if spec.AWS != nil {
		cfg.Region, cfg.Zones = spec.AWS.Region, spec.AWS.Zones
		cfg.KMSKeyID = spec.AWS.KMSKeyID
		cfg.VPCID, cfg.SubnetIDs = spec.AWS.VPCID, spec.AWS.SubnetIDs
	}
	cloud, err := mkaws.New(ctx, cfg)
	if errors.Is(err, mkaws.ErrNoRegion) {
		return cluster.Options{}, fmt.Errorf("cluster %q has no AWS region: neither the resource's nor the provider's aws.region, AWS_REGION, AWS_DEFAULT_REGION nor the profile's region names one; "+
			"fix: set aws.region on the resource (on the provider for imports by name and data sources), or AWS_REGION", spec.Name)
	}
	if err != nil {
		return cluster.Options{}, err
	}
	return b.options(cloud)
}
