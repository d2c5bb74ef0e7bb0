// Package gcp is the clouds.Cloud for Google Compute Engine, on the
// official REST clients (cloud.google.com/go/compute/apiv1) and, for the
// cluster's secrets, Secret Manager (cloud.google.com/go/secretmanager).
//
// A cluster's network is one custom-mode VPC network, one subnetwork in the
// region and three firewall rules: traffic inside the node and pod ranges,
// and admin access (SSH, WinRM, the API server) per role, aimed by network
// tag. Compute networks, subnetworks and firewalls take no labels, so they
// are found by their deterministic names <cluster>-<what> and their
// description marks them as the cluster's; instances carry the labels
// mixedk8s-cluster, mixedk8s-pool, mixedk8s-role and mixedk8s-node (label
// keys allow only [a-z0-9_-]; Profile.Tags spells them).
//
// Every insert and delete carries a requestId, a UUIDv5 of the cluster, the
// object and its generation: Compute ignores a repeated request it has
// already completed, so a call retried after a lost reply returns the same
// operation instead of a second object. An object that already exists is
// adopted. Every operation is waited on and its error field read: Compute
// reports a failed insert (a stockout, a quota) as a DONE operation with
// errors, which the client library's own Wait treats as success.
//
// Instances make their own identity, the GCE way: the guest agent generates
// SSH host keys on first boot and Windows images make their own WinRM HTTPS
// certificate; both are published as guest attributes under hostkeys/.
// The Windows admin password comes from the windows-keys flow, encrypted by
// the guest agent to an RSA key the cluster keeps in Secret Manager and
// read back from serial port 4. Nothing secret is put in instance metadata.
// See ObservedIdentity (clouds.IdentityObserver).
//
// The same code drives the lab's Compute Engine emulator (test/lab/gce):
// only Config.Endpoint, Config.CABundle and Config.TokenSource differ.
//
// With Config.ImpersonateServiceAccount every call is made as that
// service account (credentials.go).
package gcp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Config selects the project, region and endpoint.
type Config struct {
	// Project is the project ID, e.g. "my-project". Required.
	Project string
	// Region, e.g. "us-central1". Required.
	Region string
	// Labels go on every instance, disk and secret the cloud creates, beside
	// its own (the spec's tags; networks and firewalls take no labels).
	Labels map[string]string
	// Zones of the region that get instances, spread by node name; default Region+"-a".
	Zones []string
	// KMSKeyName is the Cloud KMS key
	// (projects/P/locations/L/keyRings/R/cryptoKeys/K, L being Region) that
	// encrypts the instances' boot disks and the cluster's secrets, which
	// are then replicated in Region only; empty uses Google-managed keys
	// and automatic replication. The Compute Engine and Secret Manager
	// service agents need roles/cloudkms.cryptoKeyEncrypterDecrypter on it.
	KMSKeyName string
	// Network and Subnetwork name an existing VPC network of
	// NetworkProject and its subnetwork in Region the nodes go in (both or
	// neither); the cluster then makes only its firewall rules there
	// (existing.go).
	Network, Subnetwork string
	// NetworkProject is the project of Network: a Shared VPC host project
	// Project is attached to as a service project. Empty is Project. The
	// cluster's firewall rules are made in it.
	NetworkProject string
	// Endpoint overrides the Compute endpoint (Private Service Connect, a
	// proxy, the lab), e.g. "https://compute-psc.p.googleapis.com"; empty
	// uses https://compute.googleapis.com.
	Endpoint string
	// SecretsEndpoint overrides the Secret Manager endpoint; empty uses
	// Endpoint when that is set, else https://secretmanager.googleapis.com.
	SecretsEndpoint string
	// CABundle is PEM CA certificates trusted in addition to the system pool.
	CABundle []byte
	// TokenSource, when nil, is Application Default Credentials
	// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's user credentials, the
	// metadata server).
	TokenSource oauth2.TokenSource
	// TokenSourceName names TokenSource in credential errors, e.g. "the
	// access token gcp.access_token sets".
	TokenSourceName string
	// ImpersonateServiceAccount, when set, is the email of the service
	// account every call is made as: the base credentials (TokenSource or
	// ADC) mint its tokens through IAM Credentials and need
	// roles/iam.serviceAccountTokenCreator on it (credentials.go).
	ImpersonateServiceAccount string
	// ImpersonateDelegates is the delegation chain to it: the base
	// credentials hold the token creator role on the first, each on the next.
	ImpersonateDelegates []string
	// IAMCredentialsEndpoint overrides https://iamcredentials.googleapis.com;
	// empty uses Endpoint when that is set.
	IAMCredentialsEndpoint string
	// MaxAttempts per API call, retries included; default 10.
	MaxAttempts int
	// MaxBackoff between retried attempts; default 30s.
	MaxBackoff time.Duration
	// InitialBackoff before the first retry; default 1s.
	InitialBackoff time.Duration
	// PollInterval between checks while waiting for an instance to run; default 5s.
	PollInterval time.Duration
	// PageSize is the maxResults of list calls; default 500 (Compute's maximum).
	PageSize int
}

// Cloud implements clouds.Cloud on Compute Engine. Create it with New.
type Cloud struct {
	cfg Config

	instances   *compute.InstancesClient
	networks    *compute.NetworksClient
	subnetworks *compute.SubnetworksClient
	firewalls   *compute.FirewallsClient
	zoneOps     *compute.ZoneOperationsClient
	regionOps   *compute.RegionOperationsClient
	globalOps   *compute.GlobalOperationsClient
	secrets     *secretmanager.Client

	// The API load balancer's objects (loadbalancer.go).
	addresses       *compute.AddressesClient
	forwardingRules *compute.ForwardingRulesClient
	backendServices *compute.RegionBackendServicesClient
	healthChecks    *compute.RegionHealthChecksClient
	groups          *compute.InstanceGroupsClient

	closers []interface{ Close() error }
}

var (
	_ clouds.Cloud            = (*Cloud)(nil)
	_ clouds.IdentityObserver = (*Cloud)(nil)
	_ clouds.LoadBalancers    = (*Cloud)(nil)
)

// nameRE is Compute's resource name rule (RFC 1035), from the computepb
// field docs of Instance.name: 1-63 characters.
var nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// New builds the Compute and Secret Manager clients. It makes no API call,
// but finds Application Default Credentials when TokenSource is nil.
func New(ctx context.Context, cfg Config) (*Cloud, error) {
	if cfg.Project == "" {
		return nil, errors.New("gcp: Config.Project is empty; set the project ID, e.g. \"my-project\"")
	}
	if cfg.Region == "" {
		return nil, errors.New("gcp: Config.Region is empty; set the region, e.g. \"us-central1\"")
	}
	if cfg.NetworkProject != "" && cfg.Network == "" {
		return nil, errors.New("gcp: Config.NetworkProject is set without Config.Network; fix: name the host project's network and subnetwork too, or drop NetworkProject")
	}
	if len(cfg.Zones) == 0 {
		cfg.Zones = []string{cfg.Region + "-a"}
	}
	for _, z := range cfg.Zones {
		if !strings.HasPrefix(z, cfg.Region+"-") {
			return nil, fmt.Errorf("gcp: zone %q is not in region %q; fix: list zones of the region, e.g. %q", z, cfg.Region, cfg.Region+"-a")
		}
	}
	if strings.HasSuffix(cfg.Endpoint, "/") || strings.HasSuffix(cfg.SecretsEndpoint, "/") {
		// The clients append "/compute/v1/..." to the endpoint's path.
		return nil, errors.New("gcp: Config.Endpoint ends with \"/\"; fix: drop the trailing slash")
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff = time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 500
	}
	hc, err := httpClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opts := []option.ClientOption{option.WithHTTPClient(hc)}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	sopts := []option.ClientOption{option.WithHTTPClient(hc)}
	if e := cmp.Or(cfg.SecretsEndpoint, cfg.Endpoint); e != "" {
		sopts = append(sopts, option.WithEndpoint(e))
	}
	c := &Cloud{cfg: cfg}
	// build runs one client constructor unless an earlier one failed, and
	// remembers the client so Close releases it.
	build := func(what string, f func() (interface{ Close() error }, error)) {
		if err != nil {
			return
		}
		cl, e := f()
		if e != nil {
			err = fmt.Errorf("gcp: failed to build the %s client: %w", what, e)
			return
		}
		c.closers = append(c.closers, cl)
	}
	build("instances", func() (interface{ Close() error }, error) {
		var e error
		c.instances, e = compute.NewInstancesRESTClient(ctx, opts...)
		return c.instances, e
	})
	build("networks", func() (interface{ Close() error }, error) {
		var e error
		c.networks, e = compute.NewNetworksRESTClient(ctx, opts...)
		return c.networks, e
	})
	build("subnetworks", func() (interface{ Close() error }, error) {
		var e error
		c.subnetworks, e = compute.NewSubnetworksRESTClient(ctx, opts...)
		return c.subnetworks, e
	})
	build("firewalls", func() (interface{ Close() error }, error) {
		var e error
		c.firewalls, e = compute.NewFirewallsRESTClient(ctx, opts...)
		return c.firewalls, e
	})
	build("zone operations", func() (interface{ Close() error }, error) {
		var e error
		c.zoneOps, e = compute.NewZoneOperationsRESTClient(ctx, opts...)
		return c.zoneOps, e
	})
	build("region operations", func() (interface{ Close() error }, error) {
		var e error
		c.regionOps, e = compute.NewRegionOperationsRESTClient(ctx, opts...)
		return c.regionOps, e
	})
	build("global operations", func() (interface{ Close() error }, error) {
		var e error
		c.globalOps, e = compute.NewGlobalOperationsRESTClient(ctx, opts...)
		return c.globalOps, e
	})
	build("addresses", func() (interface{ Close() error }, error) {
		var e error
		c.addresses, e = compute.NewAddressesRESTClient(ctx, opts...)
		return c.addresses, e
	})
	build("forwarding rules", func() (interface{ Close() error }, error) {
		var e error
		c.forwardingRules, e = compute.NewForwardingRulesRESTClient(ctx, opts...)
		return c.forwardingRules, e
	})
	build("region backend services", func() (interface{ Close() error }, error) {
		var e error
		c.backendServices, e = compute.NewRegionBackendServicesRESTClient(ctx, opts...)
		return c.backendServices, e
	})
	build("region health checks", func() (interface{ Close() error }, error) {
		var e error
		c.healthChecks, e = compute.NewRegionHealthChecksRESTClient(ctx, opts...)
		return c.healthChecks, e
	})
	build("instance groups", func() (interface{ Close() error }, error) {
		var e error
		c.groups, e = compute.NewInstanceGroupsRESTClient(ctx, opts...)
		return c.groups, e
	})
	build("Secret Manager", func() (interface{ Close() error }, error) {
		var e error
		c.secrets, e = secretmanager.NewRESTClient(ctx, sopts...)
		return c.secrets, e
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the clients' connections.
func (c *Cloud) Close() error {
	var errs []error
	for _, cl := range c.closers {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

// Name implements clouds.Cloud.
func (c *Cloud) Name() string { return "gcp" }

// Project is the project the cloud acts in.
func (c *Cloud) Project() string { return c.cfg.Project }

// httpClient is the client every API call goes through: cfg's
// credentials over a transport that trusts cfg.CABundle in addition to
// the system pool.
func httpClient(ctx context.Context, cfg Config) (*http.Client, error) {
	base, err := transport(cfg.CABundle)
	if err != nil {
		return nil, err
	}
	ts, err := tokenSource(ctx, cfg, base)
	var ce *CredentialsError
	if errors.As(err, &ce) && ce.Step == "find Application Default Credentials" {
		return nil, fmt.Errorf("gcp: no Application Default Credentials: %w; fix: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file", ce.Err)
	}
	if err != nil {
		return nil, err
	}
	// WithHTTPClient takes precedence over every other option and adds no
	// auth of its own (google.golang.org/api option.WithHTTPClient), so the
	// client carries the token source itself.
	tctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base})
	return oauth2.NewClient(tctx, ts), nil
}
