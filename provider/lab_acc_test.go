package provider_test

import (
	"context"
	"fmt"
	"os"
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

	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/provider"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
)

// startLab runs a lab for one acceptance test and points the AWS SDK's
// default credential chain at its emulator, as a user's environment would.
func startLab(t *testing.T) *lab.Lab {
	t.Helper()
	return startLabWith(t, lab.Config{PendingDelay: 20 * time.Millisecond, ShuttingDownDelay: 20 * time.Millisecond})
}

// startLabWith is startLab with the lab's configuration: other clouds' emulators.
func startLabWith(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 and TF_ACC_TERRAFORM_PATH (make testacc does)")
	}
	if err := bundle.Check(); err != nil {
		if os.Getenv("MIXEDK8S_REQUIRE_BUNDLE") == "1" {
			t.Fatal(err)
		}
		t.Skipf("the provider needs the node agents: %v", err)
	}
	cptest.Bins(t, lab.Binaries...)
	cfg.Dir = t.TempDir()
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start the lab: %v", err)
	}
	t.Cleanup(l.Close)
	env := l.Env()
	t.Setenv("AWS_ACCESS_KEY_ID", env.AWSAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", env.AWSSecretAccessKey)
	// Nothing outside the lab: no shared config, no instance metadata service.
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return l
}

// labConfig is what a user writes for the lab: the provider pointed at its
// endpoint, CA and bastion, and a cluster with Linux and Windows workers.
func labConfig(env lab.Env, linux, win int) string {
	providerCloud := fmt.Sprintf(`
  aws = {
    region    = %q
    endpoint  = %q
    ca_bundle = file(%q)
  }`, env.AWSRegion, env.AWSEndpoint, env.AWSCABundle)
	return labClusterConfig(env, providerCloud, fmt.Sprintf("aws = { region = %q }", env.AWSRegion), linux, win)
}

// labClusterConfig is labConfig on any cloud: the provider's attribute for
// the cloud and the cluster's location are the caller's.
func labClusterConfig(env lab.Env, providerCloud, location string, linux, win int) string {
	return fmt.Sprintf(`
provider "mixedk8s" {%[1]s
  bastion = {
    address     = %[3]q
    user        = %[4]q
    host_key    = %[5]q
    private_key = file(%[6]q)
  }
}

resource "mixedk8s_cluster" "lab" {
  name               = "acc"
  kubernetes_version = "1.36.3"
  %[2]s
  control_plane      = { count = 1 }
  node_pools = {
    linux = { os = "linux", count = %[8]d }
    win   = { os = "windows", windows_version = "2022", count = %[9]d }
  }
  access    = { admin_cidrs = ["127.0.0.0/8"] }
  artifacts = { mirror_base_url = %[7]q, trust_mirror_checksums = true }
}
`, providerCloud, location, env.BastionAddress, env.BastionUser, strings.TrimSpace(env.BastionHostKey),
		env.BastionPrivateKeyFile, env.MirrorBaseURL, linux, win)
}

// labEmpty is a CheckDestroy: nothing of the cluster is left in the lab. A
// terminated instance's node stops moments later (its control plane's
// processes shut down first).
func labEmpty(l *lab.Lab) func(*terraform.State) error {
	return func(*terraform.State) error {
		deadline := time.Now().Add(15 * time.Second)
		for len(l.Objects("acc")) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if left := l.Objects("acc"); len(left) > 0 {
			return fmt.Errorf("destroy left %v", left)
		}
		return nil
	}
}

const labAddr = "mixedk8s_cluster.lab"

// labNodes checks which nodes the lab runs for the cluster. A terminated
// instance's node stops moments after the apply (its kubelet shuts down
// first), so a node too many is waited for, briefly.
func labNodes(l *lab.Lab, want ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		slices.Sort(want)
		deadline := time.Now().Add(15 * time.Second)
		for {
			var got []string
			for _, n := range l.Nodes("acc") {
				got = append(got, n.Name)
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("lab nodes\n got %v\nwant %v", got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// The released provider (its AWS backend and the agent provisioner), driven
// by the real CLI against the lab: create, an empty plan, scale the Windows
// pool up and down, import, and destroy with nothing left.
func TestAccLabCluster(t *testing.T) {
	l := startLab(t)
	env := l.Env()
	factories := map[string]func() (tfprotov6.ProviderServer, error){
		"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             labEmpty(l),
		Steps: []resource.TestStep{
			{
				Config: labConfig(env, 1, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "nodes.#", "3"),
					resource.TestCheckResourceAttr(labAddr, "nodes.0.name", "acc-cp-0"),
					resource.TestCheckResourceAttr(labAddr, "nodes.0.ready", "true"),
					resource.TestCheckResourceAttr(labAddr, "nodes.2.name", "acc-win-0"),
					resource.TestCheckResourceAttr(labAddr, "nodes.2.os", "windows"),
					resource.TestCheckResourceAttr(labAddr, "nodes.2.ready", "true"),
					// On EC2 the API server is behind the cluster's Network Load Balancer.
					resource.TestMatchResourceAttr(labAddr, "api_endpoint", regexp.MustCompile(`^acc-api-[0-9a-f]+\.elb\.[a-z0-9-]+\.amazonaws\.com:6443$`)),
					resource.TestMatchResourceAttr(labAddr, "ca_certificate", regexp.MustCompile("BEGIN CERTIFICATE")),
					resource.TestMatchResourceAttr(labAddr, "kubeconfig", regexp.MustCompile(`client-key-data`)),
					resource.TestMatchResourceAttr(labAddr, "host", regexp.MustCompile(`^https://[^/]+:6443$`)),
					resource.TestMatchResourceAttr(labAddr, "client_certificate", regexp.MustCompile("BEGIN CERTIFICATE")),
					labNodes(l, "acc-cp-0", "acc-linux-0", "acc-win-0"),
					func(*terraform.State) error {
						// The Windows node rebooted once, as the agent promises.
						if n := l.Node("acc-win-0"); n == nil || n.Sandbox.Machine().Reboots != 1 {
							return fmt.Errorf("acc-win-0 did not reboot exactly once")
						}
						return nil
					},
				),
			},
			{
				Config: labConfig(env, 1, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(labAddr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "nodes.#", "4"),
					labNodes(l, "acc-cp-0", "acc-linux-0", "acc-win-0", "acc-win-1"),
				),
			},
			{
				Config: labConfig(env, 1, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(labAddr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "nodes.#", "3"),
					labNodes(l, "acc-cp-0", "acc-linux-0", "acc-win-0"),
				),
			},
			{
				ResourceName:      labAddr,
				ImportState:       true,
				ImportStateId:     "acc",
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					"kubernetes_version", "aws", "network", "access", "artifacts", "timeouts", "kubeconfig", "client_certificate", "client_key",
					"control_plane.disk_gb", "control_plane.instance_type",
					"node_pools.linux.disk_gb", "node_pools.linux.instance_type",
					"node_pools.win.disk_gb", "node_pools.win.instance_type", "node_pools.win.windows_version", "node_pools.win.isolation",
				},
			},
		},
	})
}
