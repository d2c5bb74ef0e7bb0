package provider

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

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
			"The credentials need `Microsoft.Network/virtualNetworks/subnets/join/action` on the subnet. Unset: the cluster creates its own virtual network from `network.node_cidr`.",
			lookup: "The existing subnet of a cluster made with the resource's `subnet_id`; with it a lookup finds the cluster's network."},
	},
	description: "Places the cluster on Azure. Exactly one of `aws`, `azure` and `gcp` is set. Changing it replaces the cluster, except `disk_encryption_set_id`.",
	replace:     replaceObjectUnlessOnly("Moving a cluster to another subscription, location, resource group or cloud replaces it.", "disk_encryption_set_id"),
	provider: pschema.SingleNestedAttribute{
		Optional:    true,
		Description: "How to reach Azure Resource Manager. Credentials come from the Azure SDK's default chain (AZURE_* environment variables, workload identity, managed identity, Azure CLI).",
		Attributes: map[string]pschema.Attribute{
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
}

// azure builds the Azure cloud and the agent provisioner for one cluster.
// Credentials come from azidentity's default chain; the provider block
// only points it at another cloud (a sovereign one, or the lab).
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
		cfg.TenantID = p.TenantID.ValueString()
		cfg.Cloud = azure.CloudEndpoints{AuthorityHost: p.AuthorityHost.ValueString(), ResourceManagerEndpoint: p.ResourceManagerEndpoint.ValueString()}
		cfg.CABundle = []byte(p.CABundle.ValueString())
		if v := p.KeyVaultURL.ValueString(); v != "" {
			cfg.VaultURL = v
		}
	}
	if cfg.VaultURL == "" {
		return cluster.Options{}, fmt.Errorf("cluster %q has no Key Vault for its secrets; fix: set azure.key_vault_url on the provider (or AZURE_KEY_VAULT_URL) to a vault the credentials hold Key Vault Secrets Officer on", spec.Name)
	}
	// ARM's async operations say when to poll again (Retry-After); when one
	// does not, every 2s rather than the SDK's 30s keeps an apply's VMs,
	// NICs and disks from idling, far inside ARM's read limits.
	cfg.PollFrequency = 2 * time.Second
	if domain := os.Getenv(labLoopbackDomainEnv); domain != "" {
		dial, err := loopbackDialer(domain)
		if err != nil {
			return cluster.Options{}, err
		}
		cfg.DialContext = dial
	}
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
