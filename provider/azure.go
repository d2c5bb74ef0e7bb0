package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mixedk8s/mixedk8s/clouds/azure"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
)

// azureModel is the resource's azure attribute.
type azureModel struct {
	SubscriptionID types.String `tfsdk:"subscription_id"`
	Location       types.String `tfsdk:"location"`
	ResourceGroup  types.String `tfsdk:"resource_group"`
	DiskEncryption types.String `tfsdk:"disk_encryption_set_id"`
	SubnetID       types.String `tfsdk:"subnet_id"`
}

// azureProviderConfig is the provider block's azure attribute.
type azureProviderConfig struct {
	SubscriptionID          types.String `tfsdk:"subscription_id"`
	TenantID                types.String `tfsdk:"tenant_id"`
	ResourceManagerEndpoint types.String `tfsdk:"resource_manager_endpoint"`
	AuthorityHost           types.String `tfsdk:"authority_host"`
	CABundle                types.String `tfsdk:"ca_bundle"`
	KeyVaultURL             types.String `tfsdk:"key_vault_url"`
	// Credentials, with azurerm's names (azureCredentialSelectors).
	ClientID                  types.String `tfsdk:"client_id"`
	ClientSecret              types.String `tfsdk:"client_secret"`
	ClientCertificatePath     types.String `tfsdk:"client_certificate_path"`
	ClientCertificatePassword types.String `tfsdk:"client_certificate_password"`
	UseOIDC                   types.Bool   `tfsdk:"use_oidc"`
	OIDCTokenFilePath         types.String `tfsdk:"oidc_token_file_path"`
	UseMSI                    types.Bool   `tfsdk:"use_msi"`
	UseCLI                    types.Bool   `tfsdk:"use_cli"`
}

var azureBlock = cloudBlock{
	name:  "azure",
	title: "Azure",
	location: []locationAttr{
		{name: "subscription_id", description: "Subscription ID (a UUID, `az account show --query id`)."},
		{name: "location", description: "Region name, such as `westeurope`."},
		{name: "resource_group", description: "Resource group the cluster's resources go in."},
		{name: "disk_encryption_set_id", optional: true, description: "Resource ID of a disk encryption set, in the cluster's subscription and location, whose customer-managed key encrypts every node's OS disk " +
			"(`az disk-encryption-set show --query id`). Empty uses platform-managed keys. The cluster's secrets live in the Key Vault of the provider's `key_vault_url`, which encrypts them with the vault's own keys. " +
			"A change applies to nodes created afterwards."},
		{name: "subnet_id", optional: true, description: "Resource ID of an existing subnet, in the cluster's subscription and location, the nodes go in " +
			"(`az network vnet subnet show --query id`). The cluster then creates no virtual network: only its resource group (when missing) and its two network security groups, " +
			"whose node rules admit the subnet's range (`network.node_cidr` is not used); destroy deletes those and leaves the virtual network and the subnet. " +
			"Plan checks that the subnet exists in the location and that `network.pod_cidr` and `network.service_cidr` are outside the virtual network's ranges. " +
			"The credentials need `Microsoft.Network/virtualNetworks/subnets/join/action` on the subnet (Network Contributor on it, its virtual network or its resource group grants it); plan reads their permissions on the subnet and refuses here when it is missing. Unset: the cluster creates its own virtual network from `network.node_cidr`.",
			lookup: "The existing subnet of a cluster made with the resource's `subnet_id`; with it a lookup finds the cluster's network."},
	},
	description: "Places the cluster on Azure. Exactly one of `aws`, `azure` and `gcp` is set. Changing it replaces the cluster, except `disk_encryption_set_id`.",
	replace:     replaceObjectUnlessOnly("Moving a cluster to another subscription, location, resource group or cloud replaces it.", "disk_encryption_set_id"),
	provider: pschema.SingleNestedAttribute{
		Optional: true,
		Description: "How to reach Azure Resource Manager and which credential to sign in with. At most one of `client_secret`, `client_certificate_path`, `use_oidc`, `use_msi` and `use_cli` chooses the credential " +
			"(the names azurerm uses); with none, the Azure SDK's default chain is used (AZURE_* environment variables, workload identity, managed identity, Azure CLI, Azure Developer CLI, Azure PowerShell). " +
			"The provider checks the credential once, when it is configured, by getting a token for Azure Resource Manager, and reports a failure at this attribute.",
		Validators: []validator.Object{azureCredentialsValidator{}},
		Attributes: map[string]pschema.Attribute{
			"client_id": pschema.StringAttribute{
				Optional: true,
				Description: "Application (client) ID of the service principal that `client_secret` or `client_certificate_path` signs in as (defaults to AZURE_CLIENT_ID); " +
					"with `use_oidc`, the application whose federated identity credential accepts the token; with `use_msi`, the user-assigned managed identity's client ID (empty: the system-assigned one).",
			},
			"client_secret": pschema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				Description: "Client secret of the service principal `client_id` in `tenant_id` (its value, not its ID): signs in with a client secret (azidentity's ClientSecretCredential). " +
					"Prefer workload identity (`use_oidc`) or a managed identity where they are available: a secret in the configuration ends up in the plan's inputs.",
			},
			"client_certificate_path": pschema.StringAttribute{
				Optional: true,
				Description: "Path of a PEM or PKCS#12 file holding a certificate registered on the application `client_id` and its private key: signs in with the certificate " +
					"(azidentity's ClientCertificateCredential, a signed client assertion).",
			},
			"client_certificate_password": pschema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Password of the PKCS#12 file in `client_certificate_path`.",
			},
			"use_oidc": pschema.BoolAttribute{
				Optional: true,
				Description: "Signs in by workload identity federation (azidentity's WorkloadIdentityCredential): a token another identity provider issued (a Kubernetes service account's, a CI system's OIDC token), " +
					"read from `oidc_token_file_path` at each sign-in and exchanged for an Entra token. The application `client_id` needs a federated identity credential matching the token's issuer and subject. " +
					"Client, tenant and file default to AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE.",
			},
			"oidc_token_file_path": pschema.StringAttribute{
				Optional:    true,
				Description: "File holding the federated token `use_oidc` presents. Defaults to AZURE_FEDERATED_TOKEN_FILE.",
			},
			"use_msi": pschema.BoolAttribute{
				Optional:    true,
				Description: "Signs in as the Azure host's managed identity (azidentity's ManagedIdentityCredential): the user-assigned one `client_id` names, else the system-assigned one.",
			},
			"use_cli": pschema.BoolAttribute{
				Optional:    true,
				Description: "Signs in as the account `az login` signed in (azidentity's AzureCLICredential), in `tenant_id` when set.",
			},
			"subscription_id": pschema.StringAttribute{
				Optional:    true,
				Description: "Subscription used when a cluster's own subscription is unknown (import, data sources). Defaults to AZURE_SUBSCRIPTION_ID.",
			},
			"tenant_id": pschema.StringAttribute{
				Optional:    true,
				Description: "Microsoft Entra tenant to authenticate in. Defaults to AZURE_TENANT_ID, then the credential's home tenant.",
			},
			"resource_manager_endpoint": pschema.StringAttribute{
				Optional:    true,
				Description: "Base URL that replaces `https://management.azure.com` (a sovereign cloud, or the lab's ARM emulator).",
			},
			"authority_host": pschema.StringAttribute{
				Optional:    true,
				Description: "Base URL that replaces the Microsoft Entra authority `https://login.microsoftonline.com`.",
			},
			"ca_bundle": pschema.StringAttribute{Optional: true, Description: caBundleDescription},
			"key_vault_url": pschema.StringAttribute{
				Optional:    true,
				Description: "URI of the Key Vault that keeps the clusters' secrets, e.g. `https://my-vault.vault.azure.net`. Defaults to AZURE_KEY_VAULT_URL. The credentials need Key Vault Secrets Officer on it.",
			},
		},
	},
	toSpec: func(r *specReader, v types.Object, s *cluster.Spec) {
		var m azureModel
		if r.object("azure", v, &m) {
			s.Azure = &cluster.AzureSpec{
				SubscriptionID:      r.str("azure.subscription_id", m.SubscriptionID),
				Location:            r.str("azure.location", m.Location),
				ResourceGroup:       r.str("azure.resource_group", m.ResourceGroup),
				DiskEncryptionSetID: r.str("azure.disk_encryption_set_id", m.DiskEncryption),
				SubnetID:            r.str("azure.subnet_id", m.SubnetID),
			}
		}
	},
	fromSpec: func(s cluster.Spec) map[string]attr.Value {
		if s.Azure == nil {
			return nil
		}
		return map[string]attr.Value{
			"subscription_id":        types.StringValue(s.Azure.SubscriptionID),
			"location":               types.StringValue(s.Azure.Location),
			"resource_group":         types.StringValue(s.Azure.ResourceGroup),
			"disk_encryption_set_id": optString(s.Azure.DiskEncryptionSetID),
			"subnet_id":              optString(s.Azure.SubnetID),
		}
	},
	options: func(_ context.Context, b cloudBackend, spec cluster.Spec) (cluster.Options, error) {
		return b.azure(spec)
	},
	checkCredentials: func(ctx context.Context, c providerConfig) diag.Diagnostics {
		return checkAzureCredentials(ctx, c.Azure)
	},
}

// azure builds the Azure cloud and the agent provisioner for one cluster,
// with the provider block's credential (else azidentity's default chain)
// and endpoints (another cloud: a sovereign one, or the lab).
func (b cloudBackend) azure(spec cluster.Spec) (cluster.Options, error) {
	if err := bundle.Check(); err != nil {
		return cluster.Options{}, err
	}
	cfg := azure.Config{SubscriptionID: os.Getenv("AZURE_SUBSCRIPTION_ID"), VaultURL: os.Getenv("AZURE_KEY_VAULT_URL"), Tags: spec.Tags}
	if a := spec.Azure; a != nil {
		cfg.SubscriptionID, cfg.Location, cfg.ResourceGroup = a.SubscriptionID, a.Location, a.ResourceGroup
		cfg.DiskEncryptionSetID, cfg.SubnetID = a.DiskEncryptionSetID, a.SubnetID
	}
	if p := b.config.Azure; p != nil {
		if cfg.SubscriptionID == "" || spec.Azure == nil {
			cfg.SubscriptionID = p.SubscriptionID.ValueString()
		}
		p.applyCredentials(&cfg)
		if err := p.applyEndpoints(&cfg); err != nil {
			return cluster.Options{}, err
		}
		if v := p.KeyVaultURL.ValueString(); v != "" {
			cfg.VaultURL = v
		}
	} else if domain := os.Getenv(labLoopbackDomainEnv); domain != "" {
		dial, err := loopbackDialer(domain)
		if err != nil {
			return cluster.Options{}, err
		}
		cfg.DialContext = dial
	}
	if cfg.VaultURL == "" {
		return cluster.Options{}, fmt.Errorf("cluster %q has no Key Vault for its secrets; fix: set azure.key_vault_url on the provider (or AZURE_KEY_VAULT_URL) to a vault the credentials hold Key Vault Secrets Officer on", spec.Name)
	}
	// ARM's async operations say when to poll again (Retry-After); when one
	// does not, every 2s rather than the SDK's 30s keeps an apply's VMs,
	// NICs and disks from idling, far inside ARM's read limits.
	cfg.PollFrequency = 2 * time.Second
	cloud, err := azure.New(cfg)
	if err != nil {
		return cluster.Options{}, err
	}
	return b.options(cloud)
}

// labLoopbackDomainEnv names a domain under .test whose hosts the lab
// serves on 127.0.0.1 (the lab's Key Vault is <vault>.vault.emu.test,
// resolved by nothing but the lab). The lab's env file sets it; nothing
// else should.
const labLoopbackDomainEnv = "MIXEDK8S_LAB_LOOPBACK_DOMAIN"

// loopbackDialer connects hosts under domain to 127.0.0.1 on the same port,
// as a hosts file would, and every other address as usual. TLS still
// verifies the server's certificate against the host name in the URL, with
// the configured CA. Only .test domains are accepted: RFC 6761 section 6.2
// reserves them for testing, so no real name can be redirected.
func loopbackDialer(domain string) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if !strings.HasSuffix(domain, ".test") {
		return nil, fmt.Errorf("%s=%q is not a domain under .test; fix: unset it (it points the lab's names at 127.0.0.1 and is for the lab only)", labLoopbackDomainEnv, domain)
	}
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil {
			host = strings.ToLower(strings.TrimSuffix(host, "."))
			if host == domain || strings.HasSuffix(host, "."+domain) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
		}
		return d.DialContext(ctx, network, addr)
	}, nil
}

// The provider block's Azure credentials take the names azurerm users
// know (https://registry.terraform.io/providers/hashicorp/azurerm/latest/docs#argument-reference):
// client_secret, client_certificate_path, use_oidc, use_msi and use_cli
// each choose one azidentity credential type; none leaves
// DefaultAzureCredential's chain.

// azureCredentialSelectors are the attributes that each choose a
// credential, in the order conflicts are reported.
var azureCredentialSelectors = []string{"client_secret", "client_certificate_path", "use_oidc", "use_msi", "use_cli"}

// selected is the selectors the block sets (a string that is not empty, a
// bool that is true), and whether every one of them is known.
func (p *azureProviderConfig) selected() ([]string, bool) {
	vals := map[string]maybeUnknown{
		"client_secret": p.ClientSecret, "client_certificate_path": p.ClientCertificatePath,
		"use_oidc": p.UseOIDC, "use_msi": p.UseMSI, "use_cli": p.UseCLI,
	}
	var out []string
	known := true
	for _, name := range azureCredentialSelectors {
		v := vals[name]
		if v.IsUnknown() {
			known = false
			continue
		}
		switch v := v.(type) {
		case types.String:
			if v.ValueString() != "" {
				out = append(out, name)
			}
		case types.Bool:
			if v.ValueBool() {
				out = append(out, name)
			}
		}
	}
	return out, known
}

type maybeUnknown interface{ IsUnknown() bool }

// azureCredentialsValidator refuses, at plan time and at the attribute,
// credential settings that contradict each other or lack what they need.
type azureCredentialsValidator struct{}

func (azureCredentialsValidator) Description(context.Context) string {
	return "at most one of client_secret, client_certificate_path, use_oidc, use_msi and use_cli"
}

func (v azureCredentialsValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (azureCredentialsValidator) ValidateObject(ctx context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	var p azureProviderConfig
	if d := req.ConfigValue.As(ctx, &p, basetypes.ObjectAsOptions{}); d.HasError() {
		return
	}
	resp.Diagnostics.Append(p.validate(req.Path)...)
}

// validate is the credential rules, each reported at the attribute to change.
func (p *azureProviderConfig) validate(at path.Path) diag.Diagnostics {
	var diags diag.Diagnostics
	sel, _ := p.selected()
	if len(sel) > 1 {
		// Reported at the later one: the first stays the choice.
		diags.AddAttributeError(at.AtName(sel[1]), "Conflicting Azure credentials",
			fmt.Sprintf("azure.%s and azure.%s each choose a credential; the provider signs in with one.\n\nFix: keep one of %s.",
				sel[0], sel[1], strings.Join(quoteAll(sel), " and ")))
	}
	set := func(v types.String) bool { return !v.IsNull() && !v.IsUnknown() && v.ValueString() != "" }
	if set(p.ClientCertificatePassword) && !set(p.ClientCertificatePath) && !p.ClientCertificatePath.IsUnknown() {
		diags.AddAttributeError(at.AtName("client_certificate_password"), "Azure certificate password without a certificate",
			"azure.client_certificate_password unlocks the PKCS#12 file of azure.client_certificate_path, which is not set.\n\nFix: set client_certificate_path, or remove client_certificate_password.")
	}
	if set(p.OIDCTokenFilePath) && !p.UseOIDC.ValueBool() && !p.UseOIDC.IsUnknown() {
		diags.AddAttributeError(at.AtName("oidc_token_file_path"), "Azure OIDC token file without use_oidc",
			"azure.oidc_token_file_path is read only by workload identity federation, which azure.use_oidc turns on.\n\nFix: set use_oidc = true, or remove oidc_token_file_path.")
	}
	if len(sel) == 1 && (sel[0] == "client_secret" || sel[0] == "client_certificate_path") {
		if !set(p.ClientID) && !p.ClientID.IsUnknown() && os.Getenv("AZURE_CLIENT_ID") == "" {
			diags.AddAttributeError(at.AtName("client_id"), "Azure service principal without a client ID",
				fmt.Sprintf("azure.%s signs in as a service principal, whose application (client) ID is not set.\n\nFix: set azure.client_id (or AZURE_CLIENT_ID) to the application's ID (az ad sp show --id <name> --query appId).", sel[0]))
		}
		if !set(p.TenantID) && !p.TenantID.IsUnknown() && os.Getenv("AZURE_TENANT_ID") == "" {
			diags.AddAttributeError(at.AtName("tenant_id"), "Azure service principal without a tenant",
				fmt.Sprintf("azure.%s signs in as a service principal of a Microsoft Entra tenant, which is not set.\n\nFix: set azure.tenant_id (or AZURE_TENANT_ID) to the tenant's ID (az account show --query tenantId).", sel[0]))
		}
	}
	return diags
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "azure." + n
	}
	return out
}

// applyCredentials sets cfg's credential source from the block. Client and
// tenant IDs not in the block come from AZURE_CLIENT_ID and
// AZURE_TENANT_ID, as DefaultAzureCredential reads them.
func (p *azureProviderConfig) applyCredentials(cfg *azure.Config) {
	orEnv := func(v types.String, env string) string {
		if s := v.ValueString(); s != "" {
			return s
		}
		return os.Getenv(env)
	}
	tenant, client := orEnv(p.TenantID, "AZURE_TENANT_ID"), orEnv(p.ClientID, "AZURE_CLIENT_ID")
	cfg.TenantID = p.TenantID.ValueString()
	switch sel, _ := p.selected(); {
	case len(sel) == 0:
	case sel[0] == "client_secret":
		cfg.ClientSecret = &azure.ClientSecret{TenantID: tenant, ClientID: client, Secret: p.ClientSecret.ValueString()}
	case sel[0] == "client_certificate_path":
		cfg.ClientCertificate = &azure.ClientCertificate{TenantID: tenant, ClientID: client,
			Path: p.ClientCertificatePath.ValueString(), Password: p.ClientCertificatePassword.ValueString()}
	case sel[0] == "use_oidc":
		// Empty values are azidentity's to fill from AZURE_TENANT_ID,
		// AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE.
		cfg.WorkloadIdentity = &azure.WorkloadIdentity{TenantID: p.TenantID.ValueString(), ClientID: p.ClientID.ValueString(), TokenFilePath: p.OIDCTokenFilePath.ValueString()}
	case sel[0] == "use_msi":
		cfg.ManagedIdentity = &azure.ManagedIdentity{ClientID: p.ClientID.ValueString()}
	case sel[0] == "use_cli":
		cfg.AzureCLI = true
	}
}

// applyEndpoints sets cfg's cloud, CA and, in the lab, dialer from the block.
func (p *azureProviderConfig) applyEndpoints(cfg *azure.Config) error {
	cfg.Cloud = azure.CloudEndpoints{AuthorityHost: p.AuthorityHost.ValueString(), ResourceManagerEndpoint: p.ResourceManagerEndpoint.ValueString()}
	cfg.CABundle = []byte(p.CABundle.ValueString())
	if domain := os.Getenv(labLoopbackDomainEnv); domain != "" {
		dial, err := loopbackDialer(domain)
		if err != nil {
			return err
		}
		cfg.DialContext = dial
	}
	return nil
}

// known reports whether every value of the block is known: a block that
// depends on another resource is checked once it is.
func (p *azureProviderConfig) known() bool {
	for _, v := range []maybeUnknown{p.SubscriptionID, p.TenantID, p.ResourceManagerEndpoint, p.AuthorityHost, p.CABundle, p.KeyVaultURL,
		p.ClientID, p.ClientSecret, p.ClientCertificatePath, p.ClientCertificatePassword, p.UseOIDC, p.OIDCTokenFilePath, p.UseMSI, p.UseCLI} {
		if v.IsUnknown() {
			return false
		}
	}
	return true
}

// checkAzureCredentials builds the provider's Azure credential once and
// gets a token for Azure Resource Manager with it, so that a missing or
// refused credential stops at the provider block before any plan.
func checkAzureCredentials(ctx context.Context, p *azureProviderConfig) diag.Diagnostics {
	var diags diag.Diagnostics
	if p == nil || !p.known() {
		return diags
	}
	if diags = p.validate(path.Root("azure")); diags.HasError() {
		return diags
	}
	var cfg azure.Config
	p.applyCredentials(&cfg)
	if err := p.applyEndpoints(&cfg); err != nil {
		diags.AddAttributeError(path.Root("azure"), "Azure credentials cannot be checked", err.Error())
		return diags
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := azure.CheckCredentials(ctx, cfg)
	if err == nil {
		tflog.Info(ctx, "Azure credentials checked")
		return diags
	}
	fix := "make credentials available to one of the sources above (az login; AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH; " +
		"a federated token in AZURE_FEDERATED_TOKEN_FILE; a managed identity), or choose one with azure.client_secret, azure.client_certificate_path, azure.use_oidc, azure.use_msi or azure.use_cli"
	sel, _ := p.selected()
	var ce *azure.CredentialsError
	if errors.As(err, &ce) && len(sel) == 1 {
		switch sel[0] {
		case "client_secret":
			fix = "check azure.tenant_id, azure.client_id and azure.client_secret: the secret's value (not its ID), not expired, of that application in that tenant"
		case "client_certificate_path":
			fix = "check that azure.client_certificate_path holds the certificate and private key of one of the application's registered certificates (and azure.client_certificate_password for a PKCS#12 file), and azure.tenant_id and azure.client_id"
		case "use_oidc":
			fix = "check that the application (azure.client_id) has a federated identity credential whose issuer, subject and audience (api://AzureADTokenExchange) match the token in azure.oidc_token_file_path (or AZURE_FEDERATED_TOKEN_FILE), and that the token is current"
		case "use_msi":
			fix = "run the provider on an Azure host with a managed identity assigned, and set azure.client_id to choose a user-assigned one"
		case "use_cli":
			fix = "sign in with az login (and az account set --subscription), or choose another credential"
		}
	}
	credentialsFailed(&diags, "azure", "Azure", err, fix, "the credentials and the roles the provider needs")
	return diags
}
