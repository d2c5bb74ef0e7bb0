package provider

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"golang.org/x/oauth2"

	"github.com/mixedk8s/mixedk8s/clouds/gcp"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
)

// gcpModel is the resource's gcp attribute.
type gcpModel struct {
	Project    types.String `tfsdk:"project"`
	Region     types.String `tfsdk:"region"`
	Zone       types.String `tfsdk:"zone"`
	KMSKeyName types.String `tfsdk:"kms_key_name"`
	Network    types.String `tfsdk:"network"`
	Subnetwork types.String `tfsdk:"subnetwork"`
	// NetworkProject is the Shared VPC host project of Network.
	NetworkProject types.String `tfsdk:"network_project"`
}

// gcpProviderConfig is the provider block's gcp attribute.
type gcpProviderConfig struct {
	Project     types.String `tfsdk:"project"`
	Region      types.String `tfsdk:"region"`
	Endpoint    types.String `tfsdk:"endpoint"`
	CABundle    types.String `tfsdk:"ca_bundle"`
	AccessToken types.String `tfsdk:"access_token"`
	// Service-account impersonation (checkGCPCredentials).
	ImpersonateServiceAccount types.String `tfsdk:"impersonate_service_account"`
	ImpersonateDelegates      types.List   `tfsdk:"impersonate_service_account_delegates"`
	IAMCredentialsEndpoint    types.String `tfsdk:"iam_credentials_endpoint"`
}

var gcpBlock = cloudBlock{
	name:  "gcp",
	title: "Google Cloud",
	location: []locationAttr{
		{name: "project", description: "Project ID (not its name or number)."},
		{name: "region", description: "Region, such as `europe-west4`."},
		{name: "zone", description: "Zone of the region, such as `europe-west4-a`."},
		{name: "kms_key_name", optional: true, description: "Cloud KMS key, `projects/P/locations/L/keyRings/R/cryptoKeys/K` with `L` the cluster's region, that encrypts every node's boot disk and the cluster's Secret Manager secrets " +
			"(then replicated in the region only). Empty uses Google-managed keys. The Compute Engine and Secret Manager service agents need `roles/cloudkms.cryptoKeyEncrypterDecrypter` on it (see the security guide). " +
			"A change applies to secrets and nodes created afterwards."},
		{name: "network", optional: true, description: "Name of an existing VPC network of `project` to put the cluster in, with `subnetwork`. " +
			"The cluster then creates no network or subnetwork: only its firewall rules there (`<name>-internal`, `<name>-etcd`, the admin rules and the load balancer's health-check rule, marked as the cluster's), " +
			"which admit the subnetwork's range (`network.node_cidr` is not used); destroy deletes those and leaves the network. " +
			"Plan checks that the network and subnetwork exist and that `network.pod_cidr` and `network.service_cidr` are outside the ranges of the network's subnetworks in the region. " +
			"Unset: the cluster creates its own network from `network.node_cidr`.",
			lookup: "The existing network of a cluster made with the resource's `network`; with it (and `subnetwork`) a lookup finds the cluster's network."},
		{name: "subnetwork", optional: true, description: "Name of the subnetwork of `network`, in the cluster's region, the nodes and the internal load balancer go in.",
			lookup: "The existing subnetwork of `network` (the resource's `subnetwork`)."},
		{name: "network_project", optional: true, description: "Project ID of the Shared VPC host project that holds `network` and `subnetwork`, `project` being one of its attached service projects. " +
			"The nodes and the load balancer stay in `project` and use the host's subnetwork; the cluster's firewall rules are created in the host project, where a Shared VPC network's rules live, " +
			"and destroy deletes them from there. The credentials need `compute.subnetworks.use` on the subnetwork (`roles/compute.networkUser`) and `roles/compute.securityAdmin` in the host project. " +
			"Unset: `network` is a network of `project`.",
			lookup: "The Shared VPC host project of `network` (the resource's `network_project`)."},
	},
	description: "Places the cluster on Google Cloud. Exactly one of `aws`, `azure` and `gcp` is set. Changing it replaces the cluster, except `kms_key_name`.",
	replace:     replaceObjectUnlessOnly("Moving a cluster to another project, region, zone or cloud replaces it.", "kms_key_name"),
	provider: pschema.SingleNestedAttribute{
		Optional: true,
		Description: "How to reach Compute Engine and Secret Manager. Credentials come from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, " +
			"gcloud's application-default login, workload identity federation, the metadata server) unless an access token is given; " +
			"with `impersonate_service_account` they only mint that service account's tokens and every call is made as it. " +
			"The provider obtains a token once, when it is configured, and reports a failure at this attribute.",
		Attributes: map[string]pschema.Attribute{
			"project": pschema.StringAttribute{
				Optional:    true,
				Validators:  []validator.String{stringvalidator.RegexMatches(gcpProjectRE, "must be a project ID: 6-30 lowercase letters, digits and '-', starting with a letter (not the project's name or number)")},
				Description: "Project used when a cluster's own project is unknown (import, data sources). Defaults to GOOGLE_CLOUD_PROJECT.",
			},
			"region": pschema.StringAttribute{
				Optional:    true,
				Description: "Region used when a cluster's own region is unknown (import, data sources), such as `europe-west4`.",
			},
			"endpoint": pschema.StringAttribute{
				Optional:   true,
				Validators: []validator.String{stringvalidator.RegexMatches(gcpEndpointRE, "must be an https:// base URL without a trailing slash or path, such as `https://compute-psc.p.googleapis.com`")},
				Description: "Base URL that replaces `https://compute.googleapis.com` and `https://secretmanager.googleapis.com` " +
					"(Private Service Connect, or the lab's Compute Engine emulator), without a trailing slash.",
			},
			"ca_bundle": pschema.StringAttribute{Optional: true, Description: caBundleDescription},
			"access_token": pschema.StringAttribute{
				Optional: true, Sensitive: true,
				Description: "OAuth 2.0 access token used instead of Application Default Credentials (it expires: short-lived automation and the lab only). " +
					"Defaults to GOOGLE_OAUTH_ACCESS_TOKEN.",
			},
			"impersonate_service_account": pschema.StringAttribute{
				Optional:   true,
				Validators: []validator.String{gcpServiceAccountValidator},
				Description: "Email of a service account every Compute Engine and Secret Manager call is made as, as the Google provider's attribute of the same name: " +
					"the credentials above only mint its short-lived tokens through the IAM Service Account Credentials API (`generateAccessToken`), " +
					"so they need `roles/iam.serviceAccountTokenCreator` on it (or on the first of `impersonate_service_account_delegates`). " +
					"The service account needs the roles the cluster's objects need. Defaults to GOOGLE_IMPERSONATE_SERVICE_ACCOUNT.",
			},
			"impersonate_service_account_delegates": pschema.ListAttribute{
				Optional:    true,
				ElementType: types.StringType,
				Validators: []validator.List{
					listvalidator.ValueStringsAre(gcpServiceAccountValidator),
					listvalidator.AlsoRequires(path.MatchRelative().AtParent().AtName("impersonate_service_account")),
				},
				Description: "Delegation chain to `impersonate_service_account`, as service account emails: the credentials hold `roles/iam.serviceAccountTokenCreator` " +
					"on the first, each on the next, and the last on `impersonate_service_account`.",
			},
			"iam_credentials_endpoint": pschema.StringAttribute{
				Optional:   true,
				Validators: []validator.String{stringvalidator.RegexMatches(gcpEndpointRE, "must be an https:// base URL without a trailing slash or path, such as `https://iamcredentials.googleapis.com`")},
				Description: "Base URL that replaces `https://iamcredentials.googleapis.com` for `impersonate_service_account` (Private Service Connect, or the lab's emulator), " +
					"without a trailing slash. Defaults to `endpoint` when that is set.",
			},
		},
	},
	toSpec: func(r *specReader, v types.Object, s *cluster.Spec) {
		var m gcpModel
		if r.object("gcp", v, &m) {
			s.GCP = &cluster.GCPSpec{Project: r.str("gcp.project", m.Project), Region: r.str("gcp.region", m.Region), Zone: r.str("gcp.zone", m.Zone),
				KMSKeyName: r.str("gcp.kms_key_name", m.KMSKeyName), Network: r.str("gcp.network", m.Network), Subnetwork: r.str("gcp.subnetwork", m.Subnetwork),
				NetworkProject: r.str("gcp.network_project", m.NetworkProject)}
		}
	},
	fromSpec: func(s cluster.Spec) map[string]attr.Value {
		if s.GCP == nil {
			return nil
		}
		return map[string]attr.Value{
			"project": types.StringValue(s.GCP.Project), "region": types.StringValue(s.GCP.Region), "zone": types.StringValue(s.GCP.Zone),
			"kms_key_name": optString(s.GCP.KMSKeyName), "network": optString(s.GCP.Network), "subnetwork": optString(s.GCP.Subnetwork),
			"network_project": optString(s.GCP.NetworkProject),
		}
	},
	options: func(ctx context.Context, b cloudBackend, spec cluster.Spec) (cluster.Options, error) {
		return b.gcp(ctx, spec)
	},
	checkCredentials: func(ctx context.Context, c providerConfig) diag.Diagnostics { return checkGCPCredentials(ctx, c.GCP) },
}

// gcpProjectRE is a project ID, domain-scoped or not, as cluster.Validate has it (https://cloud.google.com/resource-manager/docs/creating-managing-projects#before_you_begin).
var gcpProjectRE = regexp.MustCompile(`^([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$`)

// gcpEndpointRE is an https base URL: the clients append /compute/v1/... to it.
var gcpEndpointRE = regexp.MustCompile(`^https://[^/?#]+$`)

// gcp builds the Compute Engine cloud and the agent provisioner for one cluster.
func (b cloudBackend) gcp(ctx context.Context, spec cluster.Spec) (cluster.Options, error) {
	if err := bundle.Check(); err != nil {
		return cluster.Options{}, err
	}
	cfg := gcp.Config{Labels: spec.Tags}
	if g := spec.GCP; g != nil {
		cfg.Project, cfg.Region, cfg.Zones = g.Project, g.Region, []string{g.Zone}
		cfg.KMSKeyName, cfg.Network, cfg.Subnetwork, cfg.NetworkProject = g.KMSKeyName, g.Network, g.Subnetwork, g.NetworkProject
	}
	b.config.GCP.apply(&cfg)
	if p := b.config.GCP; p != nil && spec.GCP == nil {
		cfg.Project, cfg.Region = p.Project.ValueString(), p.Region.ValueString()
	}
	cfg.Project = cmp.Or(cfg.Project, os.Getenv("GOOGLE_CLOUD_PROJECT"))
	if cfg.Project == "" {
		return cluster.Options{}, fmt.Errorf("cluster %q has no GCP project; fix: set gcp.project on the resource, or on the provider (or GOOGLE_CLOUD_PROJECT)", spec.Name)
	}
	if cfg.Region == "" {
		return cluster.Options{}, fmt.Errorf("cluster %q has no GCP region; fix: set gcp.region on the resource, or on the provider for lookups", spec.Name)
	}
	cloud, err := gcp.New(ctx, cfg)
	if err != nil {
		return cluster.Options{}, err
	}
	return b.options(cloud)
}

// gcpServiceAccountRE is an email's shape: service accounts are
// <id>@<project>.iam.gserviceaccount.com, and Google-managed ones other
// domains (<number>-compute@developer.gserviceaccount.com)
// (https://cloud.google.com/iam/docs/service-account-types).
var gcpServiceAccountRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]*@[a-z0-9][a-z0-9.-]*\.[a-z]{2,}$`)

var gcpServiceAccountValidator = stringvalidator.RegexMatches(gcpServiceAccountRE,
	"must be a service account's email, such as `deployer@my-project.iam.gserviceaccount.com` (`gcloud iam service-accounts list` shows them), not its name or unique ID")

// apply sets cfg's endpoints, CA and credentials from the provider block
// (nil: the environment's only).
func (p *gcpProviderConfig) apply(cfg *gcp.Config) {
	token, tokenName := os.Getenv("GOOGLE_OAUTH_ACCESS_TOKEN"), "the access token GOOGLE_OAUTH_ACCESS_TOKEN sets"
	cfg.ImpersonateServiceAccount = os.Getenv("GOOGLE_IMPERSONATE_SERVICE_ACCOUNT")
	if p != nil {
		cfg.Endpoint = p.Endpoint.ValueString()
		cfg.IAMCredentialsEndpoint = p.IAMCredentialsEndpoint.ValueString()
		cfg.CABundle = []byte(p.CABundle.ValueString())
		if t := p.AccessToken.ValueString(); t != "" {
			token, tokenName = t, "the access token gcp.access_token sets"
		}
		cfg.ImpersonateServiceAccount = cmp.Or(p.ImpersonateServiceAccount.ValueString(), cfg.ImpersonateServiceAccount)
		for _, v := range p.ImpersonateDelegates.Elements() {
			if s, ok := v.(types.String); ok {
				cfg.ImpersonateDelegates = append(cfg.ImpersonateDelegates, s.ValueString())
			}
		}
	}
	if token != "" {
		cfg.TokenSource, cfg.TokenSourceName = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), tokenName
	}
}

// known reports whether every value of the block is known: a block that
// depends on another resource is checked once it is.
func (p *gcpProviderConfig) known() bool {
	for _, v := range []types.String{p.Endpoint, p.CABundle, p.AccessToken, p.ImpersonateServiceAccount, p.IAMCredentialsEndpoint} {
		if v.IsUnknown() {
			return false
		}
	}
	if p.ImpersonateDelegates.IsUnknown() {
		return false
	}
	for _, v := range p.ImpersonateDelegates.Elements() {
		if v.IsUnknown() {
			return false
		}
	}
	return true
}

// checkGCPCredentials obtains a token once with the provider's GCP
// credentials, impersonating its service account if it names one, so that
// missing or refused credentials stop at the provider block before any plan.
func checkGCPCredentials(ctx context.Context, p *gcpProviderConfig) diag.Diagnostics {
	var diags diag.Diagnostics
	if p == nil || !p.known() {
		return diags
	}
	var cfg gcp.Config
	p.apply(&cfg)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	id, err := gcp.CheckCredentials(ctx, cfg)
	if err == nil {
		tflog.Info(ctx, "GCP credentials checked", map[string]any{"principal": id.Principal})
		return diags
	}
	fix := "make credentials available to the chain above: `gcloud auth application-default login`, GOOGLE_APPLICATION_CREDENTIALS naming a credentials file, " +
		"workload identity federation, the metadata server of a Compute Engine VM, or gcp.access_token (GOOGLE_OAUTH_ACCESS_TOKEN) with a token that has not expired"
	var ce *gcp.CredentialsError
	if errors.As(err, &ce) && ce.Impersonating() {
		fix = fmt.Sprintf("check gcp.impersonate_service_account (%s): the service account must exist (`gcloud iam service-accounts describe %s`), "+
			"and the credentials must hold roles/iam.serviceAccountTokenCreator on it, or along gcp.impersonate_service_account_delegates "+
			"(`gcloud iam service-accounts add-iam-policy-binding %s --member=<you> --role=roles/iam.serviceAccountTokenCreator`); "+
			"a 401 means the base credentials themselves were refused", cfg.ImpersonateServiceAccount, cfg.ImpersonateServiceAccount, cfg.ImpersonateServiceAccount)
	}
	credentialsFailed(&diags, "gcp", "GCP", err, fix, "the credential chain, impersonation and the permissions the provider needs")
	return diags
}
