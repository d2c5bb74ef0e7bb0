package provider_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/azure"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/provider"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
	"github.com/mixedk8s/mixedk8s/test/lab/azurelab"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/gce"
	"github.com/mixedk8s/mixedk8s/test/lab/gcelab"
)

// The released provider on the lab's Azure and the lab's Compute Engine,
// driven by the real CLI: one mixed cluster applied, an empty plan after
// it, and a destroy that leaves nothing. Scaling and import are the same
// code on every cloud and run once, on AWS (TestAccLabCluster).

func TestAccLabClusterOnAzure(t *testing.T) {
	l := startLabWith(t, lab.Config{Clouds: []cloudemu.Starter{azurelab.Starter(azurelab.Options{ClientID: "acc-client", ClientSecret: "acc-secret"})}})
	// The service principal reaches azidentity through its environment
	// credential, as a pipeline's would; the lab's env file says the rest.
	env := setLabEnv(t, l.Emulator("azure").Env())
	provider := labAzureProvider(env)
	location := fmt.Sprintf(`azure = { subscription_id = %q, location = %q, resource_group = "acc-rg" }`, env["AZURE_SUBSCRIPTION_ID"], env["AZURE_LOCATION"])
	// The nodes' secrets went to the lab's Key Vault, at its .test name.
	vaultUsed := func(*terraform.State) error {
		if n := l.Emulator("azure").Calls()["secrets.Set"]; n == 0 {
			return fmt.Errorf("no secret was set in the lab's Key Vault")
		}
		return nil
	}
	cloudLabTest(t, l, provider, location, vaultUsed)
}

// labAzureProvider is the provider block's azure attribute for the lab's ARM emulator.
func labAzureProvider(env map[string]string) string {
	return fmt.Sprintf(`
  azure = {
    resource_manager_endpoint = %q
    authority_host            = %q
    ca_bundle                 = file(%q)
    key_vault_url             = %q
  }`, env["AZURE_RESOURCE_MANAGER_ENDPOINT"], env["AZURE_AUTHORITY_HOST"], env["AZURE_CA_BUNDLE"], env["AZURE_KEY_VAULT_URL"])
}

func TestAccLabClusterOnGCP(t *testing.T) {
	l := startLabWith(t, lab.Config{Clouds: []cloudemu.Starter{gcelab.Starter(gcelab.Options{Token: "acc-token"})}})
	env := l.Emulator("gcp").Env()
	location := fmt.Sprintf(`gcp = { project = %q, region = %q, zone = %q }`, env["GOOGLE_CLOUD_PROJECT"], env["MIXEDK8S_GCP_REGION"], env["MIXEDK8S_GCP_REGION"]+"-a")
	cloudLabTest(t, l, labGCPProvider(env), location)
}

// labGCPProvider is the provider's gcp block for the lab's Compute Engine.
func labGCPProvider(env map[string]string) string { return labGCPProviderAs(env, "") }

// labGCPProviderAs is labGCPProvider impersonating a service account
// (none when empty).
func labGCPProviderAs(env map[string]string, serviceAccount string) string {
	impersonate := ""
	if serviceAccount != "" {
		impersonate = fmt.Sprintf("\n    impersonate_service_account = %q", serviceAccount)
	}
	return fmt.Sprintf(`
  gcp = {
    endpoint     = %q
    ca_bundle    = file(%q)
    access_token = %q%s
  }`, env["MIXEDK8S_GCP_ENDPOINT"], env["MIXEDK8S_GCP_CA_BUNDLE"], env["MIXEDK8S_GCP_ACCESS_TOKEN"], impersonate)
}

// The released provider impersonates a service account on the lab's
// Compute Engine: a name that is not an email is refused at plan time, an
// account the lab's credentials may not impersonate when the provider is
// configured, at its gcp block; once they
// hold roles/iam.serviceAccountTokenCreator on it, a cluster applies and
// is destroyed with every mutating call made as the service account.
func TestAccLabClusterOnGCPAsAServiceAccount(t *testing.T) {
	l := startLabWith(t, lab.Config{Clouds: []cloudemu.Starter{gcelab.Starter(gcelab.Options{Token: "acc-token"})}})
	env := l.Emulator("gcp").Env()
	srv := l.Emulator("gcp").(*gcelab.Emulator).Server
	deployer, err := srv.OwnerServiceAccount("acc-deployer")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := srv.OwnerServiceAccount("acc-stranger")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.GrantTokenCreator(srv.Principal(), deployer); err != nil {
		t.Fatal(err)
	}
	location := fmt.Sprintf(`gcp = { project = %q, region = %q, zone = %q }`, env["GOOGLE_CLOUD_PROJECT"], env["MIXEDK8S_GCP_REGION"], env["MIXEDK8S_GCP_REGION"]+"-a")
	// asDeployer checks that no principal but the service account made a
	// mutating call, and that it made some.
	asDeployer := func(*terraform.State) error {
		made := 0
		for principal, methods := range srv.CallsBy() {
			for m, n := range methods {
				if !gce.Mutating(m) {
					continue
				}
				if principal != "serviceAccount:"+deployer {
					return fmt.Errorf("%d %s calls were made as %s, want every mutating call as %s", n, m, principal, deployer)
				}
				made += n
			}
		}
		if made == 0 {
			return fmt.Errorf("no mutating call was made as %s: %v", deployer, srv.CallsBy())
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
		},
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(labEmpty(l), asDeployer),
		Steps: []resource.TestStep{
			{
				Config:      labClusterConfig(l.Env(), labGCPProviderAs(env, "acc-deployer"), location, 1, 0),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)gcp\.impersonate_service_account.*must be a service account's email`),
			},
			{
				Config:      labClusterConfig(l.Env(), labGCPProviderAs(env, stranger), location, 1, 0),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)GCP credentials do not work.*impersonate\s+acc-stranger@.*PERMISSION_DENIED.*Fix:.*roles/iam.serviceAccountTokenCreator`),
			},
			{
				Config: labClusterConfig(l.Env(), labGCPProviderAs(env, deployer), location, 1, 0),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "nodes.#", "2"),
					resource.TestCheckResourceAttr(labAddr, "nodes.1.ready", "true"),
					asDeployer,
				),
			},
		},
	})
}

// The released provider puts a cluster in an existing VPC network and
// subnetwork of the project: a pod range inside the subnetwork is refused
// at plan time, the cluster applies with its firewall rules only, and
// destroy leaves the owner's network.
func TestAccLabClusterInAnExistingGCPNetwork(t *testing.T) {
	l := startLabWith(t, lab.Config{Clouds: []cloudemu.Starter{gcelab.Starter(gcelab.Options{Token: "acc-token"})}})
	env := l.Emulator("gcp").Env()
	srv := l.Emulator("gcp").(*gcelab.Emulator).Server
	if err := srv.OwnerNetwork(t.Context(), "shared", "nodes", "10.60.1.0/24"); err != nil {
		t.Fatal(err)
	}
	config := func(network string) string {
		location := fmt.Sprintf(`gcp = { project = %q, region = %q, zone = %q, network = "shared", subnetwork = "nodes" }`, env["GOOGLE_CLOUD_PROJECT"], env["MIXEDK8S_GCP_REGION"], env["MIXEDK8S_GCP_REGION"]+"-a") + network
		return labClusterConfig(l.Env(), labGCPProvider(env), location, 1, 0)
	}
	ownerNetworkStays := func(*terraform.State) error {
		if !srv.HasNetwork("shared", "nodes") {
			return errors.New("destroy took the owner's network or subnetwork")
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
		},
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(labEmpty(l), ownerNetworkStays),
		Steps: []resource.TestStep{
			{
				Config:      config("\n  network = { pod_cidr = \"10.60.0.0/16\" }"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid network\.pod_cidr.*overlaps\s+the\s+subnetwork's\s+range\s+10\.60\.1\.0/24.*Fix:`),
			},
			{
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "nodes.#", "2"),
					resource.TestCheckResourceAttr(labAddr, "nodes.1.ready", "true"),
					resource.TestCheckResourceAttr(labAddr, "network_id", "shared"),
					resource.TestCheckResourceAttr(labAddr, "subnet_ids.0", "nodes"),
					resource.TestMatchResourceAttr(labAddr, "nodes.0.private_ip", regexp.MustCompile(`^10\.60\.1\.`)),
					func(*terraform.State) error {
						objs, err := l.ObjectsIn("gcp", "acc")
						if err != nil {
							return err
						}
						for _, o := range objs {
							if strings.HasPrefix(o, "network/") || strings.HasPrefix(o, "subnetwork/") {
								return fmt.Errorf("the cluster made %s in an existing network", o)
							}
						}
						return nil
					},
				),
			},
		},
	})
}

// The released provider puts a cluster of the lab's project in a Shared
// VPC: a host project's network the plan does not find is refused at
// gcp.network, then the nodes go in the host's subnetwork, the firewall
// rules in the host project, and destroy deletes them there and leaves the
// host's network.
func TestAccLabClusterInASharedVPC(t *testing.T) {
	l := startLabWith(t, lab.Config{Clouds: []cloudemu.Starter{gcelab.Starter(gcelab.Options{Token: "acc-token"})}})
	env := l.Emulator("gcp").Env()
	srv := l.Emulator("gcp").(*gcelab.Emulator).Server
	const host = "acc-net-host"
	if err := srv.OwnerSharedVPC(host, ""); err != nil {
		t.Fatal(err)
	}
	if err := srv.OwnerNetworkIn(t.Context(), host, "shared", "nodes", "10.61.1.0/24"); err != nil {
		t.Fatal(err)
	}
	config := func(network string) string {
		location := fmt.Sprintf(`gcp = { project = %q, region = %q, zone = %q, network = %q, subnetwork = "nodes", network_project = %q }`,
			env["GOOGLE_CLOUD_PROJECT"], env["MIXEDK8S_GCP_REGION"], env["MIXEDK8S_GCP_REGION"]+"-a", network, host)
		return labClusterConfig(l.Env(), labGCPProvider(env), location, 1, 0)
	}
	rulesIn := func(project string) []string {
		var out []string
		for _, name := range srv.Firewalls(project) {
			if strings.HasPrefix(name, "acc-") {
				out = append(out, name)
			}
		}
		return out
	}
	hostStays := func(*terraform.State) error {
		if !srv.HasNetworkIn(host, "shared", "nodes") {
			return errors.New("destroy took the host project's network or subnetwork")
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
		},
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(labEmpty(l), hostStays),
		Steps: []resource.TestStep{
			{
				Config:      config("nope"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)gcp\.network.*Shared\s+VPC\s+host\s+project\s+acc-net-host.*has\s+no\s+network\s+"nope".*Fix:`),
			},
			{
				Config: config("shared"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "nodes.#", "2"),
					resource.TestCheckResourceAttr(labAddr, "nodes.1.ready", "true"),
					resource.TestCheckResourceAttr(labAddr, "network_id", "shared"),
					resource.TestMatchResourceAttr(labAddr, "nodes.0.private_ip", regexp.MustCompile(`^10\.61\.1\.`)),
					func(*terraform.State) error {
						if got := rulesIn(host); !slices.Contains(got, "acc-internal") {
							return fmt.Errorf("the host project's rules of the cluster are %v, want acc-internal among them", got)
						}
						if got := rulesIn(env["GOOGLE_CLOUD_PROJECT"]); len(got) != 0 {
							return fmt.Errorf("the cluster made firewall rules %v in its own project, want them in the host project", got)
						}
						return nil
					},
				),
			},
		},
	})
}

// setLabEnv sets an emulator's environment for the provider, as sourcing
// the lab's env file does, and returns it.
func setLabEnv(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	return env
}

// cloudLabTest applies a mixed cluster on one cloud of the lab, checks that
// the next plan is empty, and that destroy leaves no object of the cluster.
func cloudLabTest(t *testing.T, l *lab.Lab, providerCloud, location string, checks ...resource.TestCheckFunc) {
	config := labClusterConfig(l.Env(), providerCloud, location, 1, 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
		},
		CheckDestroy: labEmpty(l),
		Steps: []resource.TestStep{{
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr(labAddr, "nodes.#", "3"),
				resource.TestCheckResourceAttr(labAddr, "nodes.0.name", "acc-cp-0"),
				resource.TestCheckResourceAttr(labAddr, "nodes.0.ready", "true"),
				resource.TestCheckResourceAttr(labAddr, "nodes.1.ready", "true"),
				resource.TestCheckResourceAttr(labAddr, "nodes.2.name", "acc-win-0"),
				resource.TestCheckResourceAttr(labAddr, "nodes.2.os", "windows"),
				resource.TestCheckResourceAttr(labAddr, "nodes.2.ready", "true"),
				resource.TestMatchResourceAttr(labAddr, "api_endpoint", regexp.MustCompile(`^10\.\d+\.\d+\.\d+:6443$`)),
				resource.TestMatchResourceAttr(labAddr, "kubeconfig", regexp.MustCompile(`client-key-data`)),
				labNodes(l, "acc-cp-0", "acc-linux-0", "acc-win-0"),
				labTags(l, strings.Fields(location)[0]), // location starts with the cloud attribute
				resource.ComposeAggregateTestCheckFunc(checks...),
			),
		}},
	})
}

// The released provider puts a cluster in an existing Azure subnet: a pod
// range inside the virtual network is refused at plan time, the cluster
// applies with its NSGs only, and destroy leaves the owner's network.
func TestAccLabClusterInAnExistingAzureSubnet(t *testing.T) {
	l := startLabWith(t, lab.Config{Clouds: []cloudemu.Starter{azurelab.Starter(azurelab.Options{ClientID: "acc-client", ClientSecret: "acc-secret"})}})
	env := setLabEnv(t, l.Emulator("azure").Env())
	srv := l.Emulator("azure").(*azurelab.Emulator).Server
	subnet, err := srv.OwnerNetwork("net-rg", "shared", "10.50.0.0/16", "nodes", "10.50.1.0/24")
	if err != nil {
		t.Fatal(err)
	}
	providerCloud := labAzureProvider(env)
	config := func(network string) string {
		location := fmt.Sprintf(`azure = { subscription_id = %q, location = %q, resource_group = "acc-rg", subnet_id = %q }`, env["AZURE_SUBSCRIPTION_ID"], env["AZURE_LOCATION"], subnet) + network
		return labClusterConfig(l.Env(), providerCloud, location, 1, 0)
	}
	ownerNetworkStays := func(*terraform.State) error {
		if objs := srv.Objects("net-rg"); !slices.Contains(objs, "virtualNetworks/shared") {
			return fmt.Errorf("the owner's resource group after destroy holds %v, want its virtual network", objs)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
		},
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(labEmpty(l), ownerNetworkStays),
		Steps: []resource.TestStep{
			{
				Config:      config("\n  network = { pod_cidr = \"10.50.0.0/16\" }"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid network\.pod_cidr.*overlaps\s+the\s+virtual\s+network's\s+range\s+10\.50\.0\.0/16.*Fix:`),
			},
			{
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "nodes.#", "2"),
					resource.TestCheckResourceAttr(labAddr, "nodes.1.ready", "true"),
					resource.TestCheckResourceAttr(labAddr, "network_id", strings.TrimSuffix(subnet, "/subnets/nodes")),
					resource.TestCheckResourceAttr(labAddr, "subnet_ids.0", subnet),
					resource.TestMatchResourceAttr(labAddr, "nodes.0.private_ip", regexp.MustCompile(`^10\.50\.1\.`)),
					func(*terraform.State) error {
						objs, err := l.ObjectsIn("azure", "acc")
						if err != nil {
							return err
						}
						for _, o := range objs {
							if strings.HasPrefix(o, "virtualNetworks/") {
								return fmt.Errorf("the cluster made %s in an existing subnet", o)
							}
						}
						return nil
					},
				),
			},
		},
	})
}

// The azure block's own service principal, as an azurerm user writes it:
// a wrong client_secret stops at the provider block, before any plan,
// naming the credential, Entra's code and the docs; the right one looks a
// cluster up through the lab's ARM. Nothing is applied.
func TestAccLabAzureClientSecretInTheProviderBlock(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 and TF_ACC_TERRAFORM_PATH (make testacc does)")
	}
	if err := bundle.Check(); err != nil {
		if os.Getenv("MIXEDK8S_REQUIRE_BUNDLE") == "1" {
			t.Fatal(err)
		}
		t.Skipf("the provider needs the node agents: %v", err)
	}
	const client, secret = "acc-sp", "acc-sp-Secret-7"
	srv, err := arm.New(arm.Options{Clients: map[string]string{client: secret}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// No other source: azidentity's environment is empty, the vault's
	// .test name reaches the lab.
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_KEY_VAULT_URL", "AZURE_SUBSCRIPTION_ID"} {
		t.Setenv(k, "")
	}
	t.Setenv("MIXEDK8S_LAB_LOOPBACK_DOMAIN", "emu.test")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The cluster's network, made beforehand as an earlier apply would.
	cloud, err := azure.New(azure.Config{SubscriptionID: srv.SubscriptionID(), Location: srv.Location(), ResourceGroup: "acc-rg",
		Cloud: azure.CloudEndpoints{AuthorityHost: srv.URL() + "/", ResourceManagerEndpoint: srv.URL()}, CABundle: srv.CACertPEM(), DialContext: srv.DialContext,
		ClientSecret: &azure.ClientSecret{TenantID: srv.TenantID(), ClientID: client, Secret: secret}, PollFrequency: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	network, err := cloud.EnsureNetwork(context.Background(), clouds.NetworkRequest{Cluster: "acc", NodeCIDR: "10.20.0.0/16", AdminCIDRs: []string{"203.0.113.0/24"}, PodCIDR: "192.168.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	config := func(clientSecret string) string {
		return fmt.Sprintf(`
provider "mixedk8s" {
  azure = {
    resource_manager_endpoint = %q
    authority_host            = %q
    ca_bundle                 = file(%q)
    key_vault_url             = %q
    tenant_id                 = %q
    client_id                 = %q
    client_secret             = %q
  }
}

data "mixedk8s_cluster" "acc" {
  name  = "acc"
  azure = { subscription_id = %q, location = %q, resource_group = "acc-rg" }
}
`, srv.URL(), srv.URL()+"/", ca, srv.VaultURL(), srv.TenantID(), client, clientSecret, srv.SubscriptionID(), srv.Location())
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
		},
		Steps: []resource.TestStep{
			{
				Config:      config("not-the-Secret-9"),
				PlanOnly:    true,
				ExpectError: wrapped("Azure credentials do not work", "get a token for Azure Resource Manager", "AADSTS7000215", "ClientSecretCredential (service principal acc-sp", "docs#credentials"),
			},
			{
				Config: config(secret),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.mixedk8s_cluster.acc", "network_id", network.ID),
					resource.TestCheckResourceAttr("data.mixedk8s_cluster.acc", "nodes.#", "0"),
				),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if n := srv.MutatingCalls(); n != 0 {
				return fmt.Errorf("the lookups made %d mutating calls: %v", n, srv.Calls())
			}
			if c := srv.Calls(); c["login.Token"] == 0 || c["virtualNetworks.Get"] == 0 {
				return fmt.Errorf("calls %v; want tokens and the network's read", c)
			}
			return nil
		},
	})
}
