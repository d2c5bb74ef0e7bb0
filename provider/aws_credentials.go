package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	mkaws "github.com/mixedk8s/mixedk8s/clouds/aws"
)

// credentialsDocsURL is the provider page's section on each cloud's credentials.
const credentialsDocsURL = "https://registry.terraform.io/providers/mixedk8s/mixedk8s/latest/docs#credentials"

// The assume_role rules, as STS's AssumeRole API reference has them
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html),
// checked at plan time rather than by a failing call. A role ARN is
// arn:<partition>:iam::<account>:role/<path/><name>
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns).
var (
	awsRoleARNRE     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/([!-~]*/)?[\w+=,.@-]{1,64}$`)
	awsSessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	// ExternalId: 2 to 1224 characters (the length is its own validator).
	awsExternalIDRE = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// awsEndpointValidator accepts an http(s) base URL.
var awsEndpointValidator = stringvalidator.RegexMatches(regexp.MustCompile(`^https?://[^\s/?#]+(/[^\s?#]*)?$`),
	"must be an https:// base URL, such as `https://ec2.eu-west-1.amazonaws.com` or a VPC endpoint's DNS name")

// awsDurationValidator accepts a Go duration from STS's 15 minutes to 12 hours.
type awsDurationValidator struct{}

func (awsDurationValidator) Description(context.Context) string {
	return "a duration such as `1h` or `45m`, from 15m to 12h"
}

func (v awsDurationValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (awsDurationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	// DurationSeconds: minimum 900, maximum 43200 (API_AssumeRole.html).
	if err != nil || d < 15*time.Minute || d > 12*time.Hour {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid assume_role duration",
			fmt.Sprintf("%q is not a duration from 15m to 12h, which STS AssumeRole accepts.\n\nFix: write it as Go durations are written, such as \"1h\" or \"45m\"; "+
				"it may not exceed the role's maximum session duration (1h by default, and always 1h when a role assumes a role).", req.ConfigValue.ValueString()))
	}
}

// apply sets cfg from the provider block: region, profile, endpoints, CA and role.
func (p *awsProviderConfig) apply(cfg *mkaws.Config) {
	cfg.Region = p.Region.ValueString()
	cfg.Profile = p.Profile.ValueString()
	cfg.Endpoint = p.Endpoint.ValueString()
	cfg.CABundle = []byte(p.CABundle.ValueString())
	if e := p.Endpoints; e != nil {
		cfg.Endpoints = mkaws.Endpoints{EC2: e.EC2.ValueString(), ELBv2: e.ELBv2.ValueString(), SSM: e.SSM.ValueString(), STS: e.STS.ValueString()}
	}
	if a := p.AssumeRole; a != nil {
		d, _ := time.ParseDuration(a.Duration.ValueString()) // validated at plan time; "" is zero: the SDK's default
		cfg.AssumeRole = &mkaws.AssumeRole{RoleARN: a.RoleARN.ValueString(), SessionName: a.SessionName.ValueString(), ExternalID: a.ExternalID.ValueString(), Duration: d}
	}
}

// known reports whether every value of the block is known: a block that
// depends on another resource is checked once it is.
func (p *awsProviderConfig) known() bool {
	vals := []types.String{p.Region, p.Profile, p.Endpoint, p.CABundle}
	if e := p.Endpoints; e != nil {
		vals = append(vals, e.EC2, e.ELBv2, e.SSM, e.STS)
	}
	if a := p.AssumeRole; a != nil {
		vals = append(vals, a.RoleARN, a.SessionName, a.ExternalID, a.Duration)
	}
	for _, v := range vals {
		if v.IsUnknown() {
			return false
		}
	}
	return true
}

// checkAWSCredentials resolves the provider's AWS credentials once, assumes
// its role, and asks STS who they are, so that a missing or refused
// credential stops at the provider block before any plan.
func checkAWSCredentials(ctx context.Context, p *awsProviderConfig) diag.Diagnostics {
	var diags diag.Diagnostics
	if p == nil || !p.known() {
		return diags
	}
	var cfg mkaws.Config
	p.apply(&cfg)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	id, err := mkaws.CheckCredentials(ctx, cfg)
	if err == nil {
		tflog.Info(ctx, "AWS credentials checked", map[string]any{"arn": id.ARN, "account": id.Account})
		return diags
	}
	fix := "make credentials available to one of the sources above (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, aws.profile or AWS_PROFILE, `aws sso login` for an SSO profile, an instance or container role)"
	var ce *mkaws.CredentialsError
	if errors.As(err, &ce) {
		switch {
		case strings.HasPrefix(ce.Step, "assume role"):
			fix = "check aws.assume_role.role_arn, and that the role's trust policy lets these credentials assume it with this external_id (its sts:ExternalId condition) and for this duration (at most the role's maximum session duration)"
		case strings.HasPrefix(ce.Step, "call STS"):
			fix = "the credentials were found but refused: refresh or rotate them (`aws sso login` for an SSO profile), check the account and region, or point aws.endpoints.sts (or aws.endpoint) at an STS endpoint that answers for them"
		}
	}
	credentialsFailed(&diags, "aws", "AWS", err, fix, "the credential chain, assume_role and the permissions the provider needs")
	return diags
}

// credentialsFailed reports a failed credential check at the cloud's
// provider block: what failed, the fix, and where the docs say more.
func credentialsFailed(diags *diag.Diagnostics, block, cloud string, err error, fix, docsCover string) {
	diags.AddAttributeError(path.Root(block), cloud+" credentials do not work",
		fmt.Sprintf("The provider checks its %s credentials once, when it is configured, and the check failed: %v.\n\nFix: %s. See %s for %s.", cloud, err, fix, credentialsDocsURL, docsCover))
}
