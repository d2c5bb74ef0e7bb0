package provider

import (
	"fmt"
	"os"

	"github.com/mixedk8s/mixedk8s/clouds/azure"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
)

// azure builds the Azure cloud and the agent provisioner for one cluster.
// Credentials come from azidentity's default chain; the provider block
// only points it at another cloud (a sovereign one, or the lab).
func (b cloudBackend) azure(spec cluster.Spec) (cluster.Options, error) {
	if err := bundle.Check(); err != nil {
		return cluster.Options{}, err
	}
	cfg := azure.Config{SubscriptionID: os.Getenv("AZURE_SUBSCRIPTION_ID"), VaultURL: os.Getenv("AZURE_KEY_VAULT_URL")}
	if a := spec.Azure; a != nil {
		cfg.SubscriptionID, cfg.Location, cfg.ResourceGroup = a.SubscriptionID, a.Location, a.ResourceGroup
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
	cloud, err := azure.New(cfg)
	if err != nil {
		return cluster.Options{}, err
	}
	return b.options(cloud)
}
