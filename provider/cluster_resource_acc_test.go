package provider_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
)

// Acceptance tests: real terraform (or tofu) commands against the provider
// served in-process with the in-memory cloud and provisioner. They run with
// TF_ACC=1 and TF_ACC_TERRAFORM_PATH; the framework skips them otherwise.

const addr = "mixedk8s_cluster.demo"

// clusterConfig renders a cluster with a Linux pool, a Windows pool and,
// optionally, more pools given as HCL map entries.
func clusterConfig(name string, linux, win int, extraPools ...string) string {
	return fmt.Sprintf(`
resource "mixedk8s_cluster" "demo" {
  name               = %q
  kubernetes_version = "1.36.3"
  aws                = { region = "eu-west-1" }
  control_plane      = { count = 1, instance_type = "m6i.large" }
  node_pools = {
    linux = { os = "linux", count = %d, instance_type = "m6i.large" }
    win   = { os = "windows", windows_version = "2022", isolation = "process", count = %d, instance_type = "m6i.xlarge" }
    %s
  }
  access   = { admin_cidrs = ["203.0.113.0/24"] }
  timeouts = { create = "60m" }
}
`, name, linux, win, strings.Join(extraPools, "\n    "))
}

// kubeconfigLife checks that the kubeconfig in state lives life and names a
// user other than *user (the one before), which it then records.
func kubeconfigLife(life time.Duration, user *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s is not in state", addr)
		}
		c, err := cluster.ReadKubeconfig([]byte(rs.Primary.Attributes["kubeconfig"]))
		if err != nil {
			return err
		}
		if got := c.NotAfter.Sub(c.NotBefore); got < life || got > life+10*time.Minute {
			return fmt.Errorf("the kubeconfig in state lives %s, want %s", got, life)
		}
		if c.User == *user {
			return fmt.Errorf("the kubeconfig in state names user %q again, want a new one", c.User)
		}
		*user = c.User
		return nil
	}
}

// objects checks what exists in the memory cloud for the cluster.
func objects(b *memBackend, name string, want ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got := b.cloud.Objects(name)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			return fmt.Errorf("cloud objects of %s:\n got %v\nwant %v", name, got, want)
		}
		return nil
	}
}

func nothingLeft(b *memBackend, name string) func(*terraform.State) error {
	return func(*terraform.State) error {
		if left := b.cloud.Objects(name); len(left) > 0 {
			return fmt.Errorf("destroy left %v", left)
		}
		return nil
	}
}

func TestAccClusterLifecycle(t *testing.T) {
	b := newMemBackend()
	var admin string // the user of the kubeconfig in state, step to step
	base := []string{"network/net-lc", "loadbalancer/lb-lc", "instance/lc-cp-0", "instance/lc-linux-0", "instance/lc-linux-1"}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: b.factories(),
		CheckDestroy:             nothingLeft(b, "lc"),
		Steps: []resource.TestStep{
			{
				// Create: defaults appear in state, the plan after apply is empty.
				Config: clusterConfig("lc", 2, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "id", "lc"),
					resource.TestCheckResourceAttr(addr, "network.cni", "flannel"),
					resource.TestCheckResourceAttr(addr, "network.pod_cidr", "10.244.0.0/16"),
					resource.TestCheckResourceAttr(addr, "control_plane.disk_gb", "50"),
					resource.TestCheckResourceAttr(addr, "node_pools.win.disk_gb", "128"),
					resource.TestCheckResourceAttr(addr, "nodes.#", "5"),
					resource.TestCheckResourceAttr(addr, "nodes.3.name", "lc-win-0"),
					resource.TestCheckResourceAttr(addr, "nodes.3.os", "windows"),
					resource.TestCheckResourceAttr(addr, "nodes.3.ready", "true"),
					resource.TestCheckResourceAttrSet(addr, "nodes.3.instance_id"),
					resource.TestCheckResourceAttr(addr, "nodes.3.instance_type", "m6i.xlarge"),
					resource.TestCheckResourceAttr(addr, "nodes.3.kubelet_version", "v1.36.3"),
					resource.TestCheckResourceAttr(addr, "nodes.3.windows_build", "10.0.20348"),
					resource.TestCheckNoResourceAttr(addr, "nodes.1.windows_build"),
					resource.TestCheckResourceAttrSet(addr, "api_endpoint"),
					resource.TestMatchResourceAttr(addr, "ca_certificate", regexp.MustCompile("BEGIN CERTIFICATE")),
					resource.TestMatchResourceAttr(addr, "kubeconfig", regexp.MustCompile(`server: https://`)),
					resource.TestMatchResourceAttr(addr, "host", regexp.MustCompile(`^https://[^/]+:6443$`)),
					resource.TestMatchResourceAttr(addr, "client_certificate", regexp.MustCompile("BEGIN CERTIFICATE")),
					resource.TestMatchResourceAttr(addr, "client_key", regexp.MustCompile("PRIVATE KEY")),
					resource.TestCheckResourceAttr(addr, "kubeconfig_validity", "1h"),
					kubeconfigLife(time.Hour, &admin),
					objects(b, "lc", append(base, "instance/lc-win-0", "instance/lc-win-1")...),
				),
			},
			{
				// Scale the Windows pool up: an in-place update.
				Config: clusterConfig("lc", 2, 3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "nodes.#", "6"),
					objects(b, "lc", append(base, "instance/lc-win-0", "instance/lc-win-1", "instance/lc-win-2")...),
				),
			},
			{
				// Scale it down: the highest ordinals are drained, then deleted.
				Config: clusterConfig("lc", 2, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "nodes.#", "4"),
					objects(b, "lc", append(base, "instance/lc-win-0")...),
					func(*terraform.State) error {
						if got := b.prov.Drained(); !slices.Equal(got, []string{"lc-win-2", "lc-win-1"}) {
							return fmt.Errorf("drained %v, want lc-win-2 then lc-win-1", got)
						}
						return nil
					},
				),
			},
			{
				// Add a pool.
				Config: clusterConfig("lc", 2, 1, `batch = { count = 2 }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "node_pools.batch.os", "linux"),
					resource.TestCheckResourceAttr(addr, "node_pools.batch.instance_type", "m6i.large"),
					resource.TestCheckResourceAttr(addr, "nodes.#", "6"),
					objects(b, "lc", append(base, "instance/lc-win-0", "instance/lc-batch-0", "instance/lc-batch-1")...),
				),
			},
			{
				// Remove it again: its nodes are drained and deleted.
				Config: clusterConfig("lc", 2, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "nodes.#", "4"),
					objects(b, "lc", append(base, "instance/lc-win-0")...),
				),
			},
			{
				// A shorter kubeconfig_validity: the apply issues a kubeconfig
				// that lives it, under a user of its own.
				Config: strings.Replace(clusterConfig("lc", 2, 1), "timeouts =", "kubeconfig_validity = \"30m\"\n  timeouts =", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: kubeconfigLife(30*time.Minute, &admin),
			},
			{
				// Import by name: what the instances tell is verified, what
				// only the configuration knows is ignored.
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "lc",
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					"kubernetes_version", "aws", "network", "access", "artifacts", "timeouts", "kubeconfig", "kubeconfig_validity", "client_certificate", "client_key",
					"control_plane.disk_gb",
					"node_pools.linux.disk_gb", "node_pools.win.disk_gb", "node_pools.win.windows_version", "node_pools.win.isolation",
				},
			},
			{
				// Import by <region>/<name>: the location comes from the ID,
				// and the import verifies the same way.
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "eu-west-1/lc",
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					"kubernetes_version", "aws", "network", "access", "artifacts", "timeouts", "kubeconfig", "kubeconfig_validity", "client_certificate", "client_key",
					"control_plane.disk_gb",
					"node_pools.linux.disk_gb", "node_pools.win.disk_gb", "node_pools.win.windows_version", "node_pools.win.isolation",
				},
			},
			{
				// A node terminated outside Terraform: the plan is an update
				// that recreates it.
				PreConfig: func() {
					if !b.cloud.Terminate("lc-linux-1") {
						t.Fatal("lc-linux-1 did not exist")
					}
				},
				Config: clusterConfig("lc", 2, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "nodes.#", "4"),
					resource.TestCheckResourceAttr(addr, "nodes.2.name", "lc-linux-1"),
					objects(b, "lc", append(base, "instance/lc-win-0")...),
				),
			},
			{
				// The whole cluster deleted outside Terraform: Read removes it
				// from the state and the plan creates it again.
				PreConfig: func() {
					opts := b.direct()
					if err := cluster.Destroy(t.Context(), cluster.Spec{Name: "lc"}, opts); err != nil {
						t.Fatal(err)
					}
				},
				Config: clusterConfig("lc", 2, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: objects(b, "lc", append(base, "instance/lc-win-0")...),
			},
		},
	})
	// Every operation released the provisioner it built.
	if built, released := b.built.Load(), b.released.Load(); built == 0 || built != released {
		t.Errorf("%d Options built, %d released", built, released)
	}
}

// A new kubernetes_version upgrades in place: the plan is an update whose
// warning lists the control-plane upgrade and each worker's replacement,
// the apply leaves every node on the new release, and a skipped minor is
// refused at plan time at the attribute.
func TestAccClusterUpgrade(t *testing.T) {
	b := newMemBackend()
	at := func(version string) string {
		return strings.Replace(clusterConfig("up", 1, 1), `kubernetes_version = "1.36.3"`, fmt.Sprintf("kubernetes_version = %q", version), 1)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: b.factories(),
		CheckDestroy:             nothingLeft(b, "up"),
		Steps: []resource.TestStep{
			{
				Config: at("1.35.4"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "kubernetes_release", "1.35.4"),
					resource.TestCheckResourceAttr(addr, "nodes.1.kubelet_version", "v1.35.4"),
				),
			},
			{
				Config:      at("1.34.11"),
				ExpectError: regexp.MustCompile(`(?s)kubernetes_version.*downgrade`),
			},
			{
				Config: at("1.36.3"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "kubernetes_release", "1.36.3"),
					resource.TestCheckResourceAttr(addr, "nodes.#", "3"),
					resource.TestCheckResourceAttr(addr, "nodes.0.kubelet_version", "v1.36.3"),
					resource.TestCheckResourceAttr(addr, "nodes.1.kubelet_version", "v1.36.3"),
					resource.TestCheckResourceAttr(addr, "nodes.2.kubelet_version", "v1.36.3"),
					// The workers were replaced by surge: new ordinals, the old instances gone.
					objects(b, "up", "network/net-up", "loadbalancer/lb-up", "instance/up-cp-0", "instance/up-linux-1", "instance/up-win-1"),
				),
			},
		},
	})
}

// Every mistake is reported at plan time, at its attribute, with the fix,
// and nothing is created.
func TestAccClusterPlanTimeErrors(t *testing.T) {
	b := newMemBackend()
	bad := func(replace ...string) string {
		c := clusterConfig("bad", 1, 1)
		for i := 0; i+1 < len(replace); i += 2 {
			c = strings.Replace(c, replace[i], replace[i+1], 1)
		}
		return c
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: b.factories(),
		Steps: []resource.TestStep{
			{
				Config:      bad(`isolation = "process"`, `isolation = "container"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid node_pools\["win"\]\.isolation.*Fix:`),
			},
			{
				Config:      bad(`windows_version = "2022"`, `windows_version = "2016"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid node_pools\["win"\]\.windows_version.*Fix:`),
			},
			{
				Config:      bad(`["203.0.113.0/24"]`, `["203.0.113.0/24", "10.0.0.1/8"]`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid access\.admin_cidrs\[1\].*host bits.*Fix:`),
			},
			{
				// Several mistakes at once: all are reported.
				Config:      bad(`name               = "bad"`, `name = "Bad_Name"`, `aws                = { region = "eu-west-1" }`, ``, `count = 1, instance_type = "m6i.large"`, `count = 2`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid cloud.*Fix:.*Invalid control_plane\.count.*Fix:.*Invalid name.*Fix:`),
			},
		},
	})
	if left := b.cloud.Objects("bad"); len(left) > 0 {
		t.Errorf("a failed plan created %v", left)
	}
	if n := b.cloud.MutatingCalls(); n > 0 {
		t.Errorf("a failed plan made %d mutating cloud calls: %v", n, b.cloud.Calls())
	}
	if n := b.prov.MutatingCalls(); n > 0 {
		t.Errorf("a failed plan made %d mutating provisioner calls", n)
	}
}

// A create that fails half-way (no capacity for one Windows instance) keeps
// what it made; the next apply adopts it and finishes the same cluster.
func TestAccClusterFailedCreateResumes(t *testing.T) {
	b := newMemBackend()
	capacity := true
	b.cloud.Fault = func(op, object string) error {
		if capacity && op == memory.OpEnsureInstance && object == "fc-win-1" {
			return &clouds.Error{Kind: clouds.KindCapacity, Code: "InsufficientInstanceCapacity", Op: "RunInstances", Object: `instance "fc-win-1"`,
				Fix: "choose another instance type or zone"}
		}
		return nil
	}
	ids := map[string]string{}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: b.factories(),
		CheckDestroy:             nothingLeft(b, "fc"),
		Steps: []resource.TestStep{
			{
				Config:      clusterConfig("fc", 1, 2),
				ExpectError: regexp.MustCompile(`(?s)Failed to create cluster "fc".*InsufficientInstanceCapacity.*terraform\s+apply\s+again`),
			},
			{
				PreConfig: func() {
					ins, err := b.cloud.Instances(t.Context(), "fc")
					if err != nil || len(ins) == 0 {
						t.Fatalf("the failed create left nothing to resume (%v)", err)
					}
					for _, in := range ins {
						ids[in.Name] = in.ID
					}
					if _, ok := ids["fc-win-1"]; ok {
						t.Fatal("fc-win-1 exists although its creation failed")
					}
					capacity = false
				},
				Config: clusterConfig("fc", 1, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "nodes.#", "4"),
					objects(b, "fc", "network/net-fc", "loadbalancer/lb-fc", "instance/fc-cp-0", "instance/fc-linux-0", "instance/fc-win-0", "instance/fc-win-1"),
					func(*terraform.State) error {
						// The same cluster: every instance made before the failure was adopted, not replaced.
						ins, err := b.cloud.Instances(t.Context(), "fc")
						if err != nil {
							return err
						}
						for _, in := range ins {
							if old, ok := ids[in.Name]; ok && old != in.ID {
								return fmt.Errorf("%s was replaced: %s, then %s", in.Name, old, in.ID)
							}
						}
						return nil
					},
				),
			},
		},
	})
}

// Values known only after another resource is applied: the plan cannot
// judge them, so it neither reports a problem nor fills defaults; the apply
// does both, and a bad value still stops the apply before anything exists.
func TestAccClusterValuesKnownOnlyAtApply(t *testing.T) {
	b := newMemBackend()
	config := func(count string) string {
		return fmt.Sprintf(`
resource "terraform_data" "size" {
  input = %s
}

resource "mixedk8s_cluster" "demo" {
  name = "uk"
  aws  = { region = "eu-west-1" }
  node_pools = {
    linux = { count = 1 }
    win   = { os = "windows", count = terraform_data.size.output }
  }
}
`, count)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: b.factories(),
		CheckDestroy:             nothingLeft(b, "uk"),
		Steps: []resource.TestStep{
			{
				// 501 is over the pool limit: found at apply, nothing created.
				Config:      config("501"),
				ExpectError: regexp.MustCompile(`(?s)Invalid node_pools\["win"\]\.count.*Fix:`),
			},
			{
				PreConfig: func() {
					if left := b.cloud.Objects("uk"); len(left) > 0 || b.cloud.MutatingCalls() > 0 {
						t.Fatalf("the refused apply created %v (%d mutating calls)", left, b.cloud.MutatingCalls())
					}
				},
				Config: config("2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectUnknownValue(addr, tfjsonpath.New("node_pools").AtMapKey("win").AtMapKey("windows_version"))},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "node_pools.win.windows_version", "2022"),
					resource.TestCheckResourceAttr(addr, "nodes.#", "4"),
				),
			},
		},
	})
}

// The data source reads a cluster that something else created.
func TestAccClusterDataSource(t *testing.T) {
	b := newMemBackend()
	b.applyDemo(t, "ds")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: b.factories(),
		Steps: []resource.TestStep{
			{
				Config: `
data "mixedk8s_cluster" "shared" {
  name = "ds"
  aws  = { region = "eu-west-1" }
}
`,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrSet("data.mixedk8s_cluster.shared", "api_endpoint"),
					resource.TestCheckResourceAttr("data.mixedk8s_cluster.shared", "nodes.#", "3"),
					resource.TestCheckResourceAttr("data.mixedk8s_cluster.shared", "nodes.2.name", "ds-win-0"),
					resource.TestCheckResourceAttr("data.mixedk8s_cluster.shared", "nodes.2.os", "windows"),
				),
			},
			{
				Config: `
data "mixedk8s_cluster" "missing" {
  name = "nosuch"
  aws  = { region = "eu-west-1" }
}
`,
				ExpectError: regexp.MustCompile(`Cluster "nosuch" not found`),
			},
		},
	})
}
