// Package azure is the clouds.Cloud for Microsoft Azure, on the Azure SDK
// for Go (azcore, azidentity, armcompute, armnetwork, armresources,
// azsecrets).
//
// A cluster lives in one resource group (Config.ResourceGroup), created
// and tagged when missing: one virtual network with one subnet, one network
// security group per role (applied to each node's NIC), and per node a NIC,
// a VM and its managed OS disk; in front of the control plane a Standard
// load balancer, with a public IP address when the API is public
// (loadbalancer.go). Every name is derived from the cluster and
// node names, and ARM's PUT is create-or-update, so the name is the
// idempotency key: a call retried after a lost reply adopts what the first
// call made, and a converged rerun makes no mutating call (every Ensure*
// reads before it writes).
//
// Azure forbids '/' in tag names, so the mixedk8s.io/... tags are spelled
// mixedk8s.io_... on Azure objects (see AzureTag); Instances reports them
// under their usual names.
//
// Long-running operations go through the SDK's own pollers, which follow
// Azure-AsyncOperation. Throttling (429 with Retry-After) and 5xx are
// retried by the SDK's retry policy; what still fails comes back as a
// *clouds.Error that keeps Azure's error code and names the field, size,
// quota or role to change.
//
// The same code drives the lab's ARM emulator (test/lab/arm): only the
// cloud endpoints, the CA bundle, the credential and the name resolver
// differ from a real subscription.
package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources/v4"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Config selects the subscription, location, resource group and endpoints.
type Config struct {
	// SubscriptionID is the subscription's UUID. Required.
	SubscriptionID string
	// Location is the region's programmatic name, e.g. "westeurope". Required.
	Location string
	// Tags go on every resource and secret the cloud creates, beside its own
	// (the spec's tags; CheckTags says which Azure refuses).
	Tags map[string]string
	// ResourceGroup holds the cluster's resources. Required. It is created
	// (and tagged with the cluster) when missing, and deleted with the
	// network only when it carries this cluster's tag.
	ResourceGroup string
	// VaultURL is the Key Vault that keeps the cluster's secrets, e.g.
	// "https://my-vault.vault.azure.net". Required for the secret methods.
	VaultURL string
	// DiskEncryptionSetID is the resource ID of a disk encryption set
	// (same subscription and location) whose customer-managed key
	// encrypts every node's OS disk; empty leaves platform-managed keys.
	DiskEncryptionSetID string
	// SubnetID, when set, is an existing subnet's resource ID (same
	// subscription and location) the nodes go in; the cluster then makes
	// no virtual network (existing.go).
	SubnetID string

	// Cloud selects a sovereign cloud or an emulator; the zero value is
	// Azure public cloud. Set AuthorityHost and ResourceManagerEndpoint
	// together (ResourceManagerAudience defaults to the endpoint).
	Cloud CloudEndpoints
	// CABundle is PEM CA certificates trusted in addition to the system pool.
	CABundle []byte
	// DialContext, when set, opens every connection (a proxy, or the lab's
	// resolver that sends *.emu.test to 127.0.0.1).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Credential, ClientSecret, ClientCertificate, WorkloadIdentity,
	// ManagedIdentity and AzureCLI name at most one credential source
	// (credentials.go); none is azidentity.DefaultAzureCredential
	// (environment, workload identity, managed identity, Azure CLI).
	Credential azcore.TokenCredential
	// ClientSecret signs in as a service principal with a secret.
	ClientSecret *ClientSecret
	// ClientCertificate signs in as a service principal with a certificate.
	ClientCertificate *ClientCertificate
	// WorkloadIdentity signs in with a federated token from a file.
	WorkloadIdentity *WorkloadIdentity
	// ManagedIdentity signs in as the host's managed identity.
	ManagedIdentity *ManagedIdentity
	// AzureCLI signs in as the Azure CLI's account.
	AzureCLI bool
	// TenantID is the Entra tenant DefaultAzureCredential and the Azure
	// CLI sign in to; empty means AZURE_TENANT_ID, then the credential's
	// home tenant.
	TenantID string

	// MaxRetries per request after the first try; 0 is the SDK's 3, -1 none.
	MaxRetries int32
	// RetryDelay is the first backoff; 0 is the SDK's 800ms.
	RetryDelay time.Duration
	// PollFrequency between long-running-operation polls when the server
	// sends no Retry-After; 0 is the SDK's 30s.
	PollFrequency time.Duration
}

// CloudEndpoints are the Entra ID authority and the ARM endpoint of a cloud.
type CloudEndpoints struct {
	AuthorityHost           string
	ResourceManagerEndpoint string
	ResourceManagerAudience string
}

// ClientSecret is a service principal's secret. Secret.
type ClientSecret struct {
	TenantID, ClientID, Secret string
}

// String redacts the secret.
func (c ClientSecret) String() string {
	return fmt.Sprintf("ClientSecret{TenantID: %q, ClientID: %q, secret redacted}", c.TenantID, c.ClientID)
}

// Cloud implements clouds.Cloud on Azure. Create it with New.
type Cloud struct {
	cfg   Config
	cred  azcore.TokenCredential
	copts policy.ClientOptions

	groups  *armresources.ResourceGroupsClient
	vms     *armcompute.VirtualMachinesClient
	exts    *armcompute.VirtualMachineExtensionsClient
	disks   *armcompute.DisksClient
	vnets   *armnetwork.VirtualNetworksClient
	nsgs    *armnetwork.SecurityGroupsClient
	nics    *armnetwork.InterfacesClient
	lbs     *armnetwork.LoadBalancersClient
	pips    *armnetwork.PublicIPAddressesClient
	asgs    *armnetwork.ApplicationSecurityGroupsClient
	secrets *azsecrets.Client

	secretLocks sync.Map // Key Vault name -> *sync.Mutex
}

var _ clouds.Cloud = (*Cloud)(nil)

// New builds the clients. It makes no API call.
func New(cfg Config) (*Cloud, error) {
	switch {
	case cfg.SubscriptionID == "":
		return nil, errors.New("azure: Config.SubscriptionID is empty; set the subscription's UUID (az account show --query id)")
	case cfg.Location == "":
		return nil, errors.New(`azure: Config.Location is empty; set a region name such as "westeurope"`)
	case cfg.ResourceGroup == "":
		return nil, errors.New("azure: Config.ResourceGroup is empty; set the resource group the cluster's resources go in")
	case len(cfg.sources()) > 1:
		return nil, fmt.Errorf("azure: Config names the credential sources %s; fix: name one", strings.Join(cfg.sources(), " and "))
	}
	copts, err := clientOptions(cfg)
	if err != nil {
		return nil, err
	}
	c := &Cloud{cfg: cfg, copts: copts, cred: cfg.Credential}
	if c.cred == nil {
		if c.cred, err = newCredential(cfg, copts); err != nil {
			return nil, err
		}
	}
	// Registering resource providers needs subscription-wide rights the
	// cluster's credentials should not have; a missing registration is an
	// error naming the provider instead (errors.go).
	armOpts := &arm.ClientOptions{ClientOptions: copts, DisableRPRegistration: true}
	if c.groups, err = armresources.NewResourceGroupsClient(cfg.SubscriptionID, c.cred, armOpts); err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	cf, err := armcompute.NewClientFactory(cfg.SubscriptionID, c.cred, armOpts)
	if err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	c.vms, c.exts, c.disks = cf.NewVirtualMachinesClient(), cf.NewVirtualMachineExtensionsClient(), cf.NewDisksClient()
	nf, err := armnetwork.NewClientFactory(cfg.SubscriptionID, c.cred, armOpts)
	if err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	c.vnets, c.nsgs, c.nics = nf.NewVirtualNetworksClient(), nf.NewSecurityGroupsClient(), nf.NewInterfacesClient()
	c.lbs, c.pips, c.asgs = nf.NewLoadBalancersClient(), nf.NewPublicIPAddressesClient(), nf.NewApplicationSecurityGroupsClient()
	if cfg.VaultURL != "" {
		if !strings.HasPrefix(cfg.VaultURL, "https://") {
			return nil, fmt.Errorf("azure: Config.VaultURL %q is not an https URL; use the vault's URI, e.g. https://my-vault.vault.azure.net", cfg.VaultURL)
		}
		if c.secrets, err = azsecrets.NewClient(cfg.VaultURL, c.cred, &azsecrets.ClientOptions{ClientOptions: copts}); err != nil {
			return nil, fmt.Errorf("azure: %w", err)
		}
	}
	return c, nil
}

// clientOptions is the SDK's options for cfg's cloud, CA, dialer and retries.
func clientOptions(cfg Config) (policy.ClientOptions, error) {
	if (cfg.Cloud.AuthorityHost == "") != (cfg.Cloud.ResourceManagerEndpoint == "") {
		return policy.ClientOptions{}, errors.New("azure: set Config.Cloud.AuthorityHost and Config.Cloud.ResourceManagerEndpoint together, or neither for Azure public cloud")
	}
	cc := cloud.AzurePublic
	if cfg.Cloud.ResourceManagerEndpoint != "" {
		aud := cfg.Cloud.ResourceManagerAudience
		if aud == "" {
			aud = cfg.Cloud.ResourceManagerEndpoint
		}
		cc = cloud.Configuration{
			ActiveDirectoryAuthorityHost: cfg.Cloud.AuthorityHost,
			Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: cfg.Cloud.ResourceManagerEndpoint, Audience: aud}},
		}
	}
	transport, err := newTransport(cfg)
	if err != nil {
		return policy.ClientOptions{}, err
	}
	return policy.ClientOptions{Cloud: cc, Transport: transport,
		Retry: policy.RetryOptions{MaxRetries: cfg.MaxRetries, RetryDelay: cfg.RetryDelay}}, nil
}

func newTransport(cfg Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.CABundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(cfg.CABundle) {
			return nil, errors.New("azure: Config.CABundle holds no PEM certificate; pass the CA certificate in PEM form")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if cfg.DialContext != nil {
		tr.DialContext = cfg.DialContext
	}
	return &http.Client{Transport: tr}, nil
}

// Name implements clouds.Cloud.
func (c *Cloud) Name() string { return "azure" }

// tags builds an Azure tag map: the user's tags (Config.Tags), then the
// cluster tag and key, value pairs, which the user's never replace.
func (c *Cloud) tags(cluster string, extra ...string) map[string]*string {
	out := map[string]*string{}
	for k, v := range c.cfg.Tags {
		out[k] = to(v)
	}
	out[TagCluster] = to(cluster)
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = to(extra[i+1])
	}
	return out
}

func fromTags(t map[string]*string) map[string]string {
	out := make(map[string]string, len(t))
	for k, v := range t {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func hasClusterTag(t map[string]*string, cluster string) bool {
	v := t[TagCluster]
	return v != nil && *v == cluster
}

func to[T any](v T) *T { return &v }

func val[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// pollOptions waits for a long-running operation with the configured frequency.
func (c *Cloud) pollOptions() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: c.cfg.PollFrequency}
}
