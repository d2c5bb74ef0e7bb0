package provider_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/provider"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
	"github.com/mixedk8s/mixedk8s/test/lab/ec2"
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
// emulator through providerAWS (labAssumeRole), its CA and bastion, and a
// cluster with Linux and Windows workers.
func labConfig(env lab.Env, providerAWS string, linux, win int) string {
	// The lab's customer managed key, by its alias: the secrets and root volumes go under it.
	return labClusterConfig(env, providerAWS, fmt.Sprintf("aws = { region = %q, kms_key_id = %q }", env.AWSRegion, ec2.LabKMSKey.Aliases[0]), linux, win)
}

// labKubernetesProvider connects to the cluster as the kubernetes and helm
// providers do with `host`, `cluster_ca_certificate`, `client_certificate`
// and `client_key` set from the resource's exported attributes: client-go's
// ConfigOverrides with no kubeconfig file (hashicorp/terraform-provider-kubernetes,
// kubernetes/provider.go, initializeConfiguration), and lists the nodes.
func labKubernetesProvider(l *lab.Lab, nodes ...string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[labAddr]
		if !ok {
			return fmt.Errorf("%s is not in state", labAddr)
		}
		a := rs.Primary.Attributes
		overrides := &clientcmd.ConfigOverrides{}
		overrides.ClusterInfo.Server = a["host"]
		overrides.ClusterInfo.CertificateAuthorityData = []byte(a["ca_certificate"])
		overrides.AuthInfo.ClientCertificateData = []byte(a["client_certificate"])
		overrides.AuthInfo.ClientKeyData = []byte(a["client_key"])
		rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{}, overrides).ClientConfig()
		if err != nil {
			return fmt.Errorf("the exported attributes make no client configuration: %w", err)
		}
		rc.Dial = func(ctx context.Context, _, addr string) (net.Conn, error) { return l.DialLab(ctx, addr) }
		rc.Timeout = 30 * time.Second
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return err
		}
		list, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list the nodes with host, ca_certificate, client_certificate and client_key: %w", err)
		}
		var got []string
		for _, n := range list.Items {
			got = append(got, n.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, nodes) {
			return fmt.Errorf("the nodes listed with the exported attributes are %q, want %q", got, nodes)
		}
		return nil
	}
}

// labKeys checks that every SSM parameter and every live instance's root
// volume of cluster acc in the lab's EC2 is encrypted with the lab's key,
// which labConfig names.
func labKeys(l *lab.Lab) resource.TestCheckFunc {
	return func(*terraform.State) error {
		want := l.EC2.KeyARN(ec2.LabKMSKey)
		var problems []string
		params := 0
		for _, p := range l.EC2.Parameters() {
			if p.Tags[ec2.TagCluster] != "acc" {
				continue
			}
			params++
			if p.KeyID != want {
				problems = append(problems, fmt.Sprintf("parameter %s: key %q", p.Name, p.KeyID))
			}
		}
		volumes := 0
		for _, in := range l.EC2.Instances() {
			if in.Tags[ec2.TagCluster] != "acc" || in.State == "terminated" {
				continue
			}
			volumes++
			if in.RootKMSKeyID != want {
				problems = append(problems, fmt.Sprintf("root volume of %s: key %q", in.ID, in.RootKMSKeyID))
			}
		}
		if params == 0 || volumes == 0 || len(problems) > 0 {
			return fmt.Errorf("want every parameter and root volume of cluster acc under %s; %d parameters, %d volumes: %s", want, params, volumes, strings.Join(problems, "; "))
		}
		return nil
	}
}

// labAssumeRole is the provider's aws block as a platform team writes it:
// no region (AWS_REGION has it, as the lab's env file sets it), STS and
// EC2 at endpoints of their own with the lab's URL for the other services,
// and a role the lab user assumes with an external ID. The role is made in
// the lab's STS.
func labAssumeRole(t *testing.T, l *lab.Lab, externalID string) string {
	t.Helper()
	env := l.Env()
	t.Setenv("AWS_REGION", env.AWSRegion)
	role, err := l.EC2.CreateRole(ec2.Role{Name: "mixedk8s-deployer", ExternalID: "acc-external-id", MaxSessionDuration: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`
  aws = {
    endpoint  = %q
    endpoints = { ec2 = %q, sts = %q }
    ca_bundle = file(%q)
    assume_role = {
      role_arn     = %q
      session_name = "acc"
      external_id  = %q
      duration     = "1h"
    }
  }`, env.AWSEndpoint, l.EC2.ServiceURL("ec2"), l.EC2.ServiceURL("sts"), env.AWSCABundle, role, externalID)
}

// labAssumedRoleDidEverything checks that every call of the apply but
// AssumeRole was made by the assumed role's session, and that EC2 and STS
// were called at their own endpoints, the other services at the shared one.
func labAssumedRoleDidEverything(l *lab.Lab) resource.TestCheckFunc {
	return func(*terraform.State) error {
		const session = "arn:aws:sts::123456789012:assumed-role/mixedk8s-deployer/acc"
		by := l.EC2.CallsBy()
		for action := range by[ec2.UserARN] {
			if action != "AssumeRole" {
				return fmt.Errorf("the lab user called %s itself; every call but AssumeRole should be the role's (calls by principal: %v)", action, by)
			}
		}
		if by[session]["RunInstances"] == 0 || by[session]["CreateLoadBalancer"] == 0 || by[session]["PutParameter"] == 0 || by[session]["GetCallerIdentity"] == 0 {
			return fmt.Errorf("the role's session did not make the cluster: %v", by[session])
		}
		paths := l.EC2.PathCalls()
		for path, services := range paths {
			for service := range services {
				want := ""
				if service == "ec2" || service == "sts" {
					want = service
				}
				if path != want {
					return fmt.Errorf("%s calls arrived at endpoint path /%s, want /%s (calls by path: %v)", service, path, want, paths)
				}
			}
		}
		return nil
	}
}

// labClusterConfig is labConfig on any cloud: the provider's attribute for
// the cloud and the cluster's location are the caller's.
func labClusterConfig(env lab.Env, providerCloud, location string, linux, win int) string {
	return fmt.Sprintf(`
provider "mixedk8s" {%[1]s
  default_tags = { tags = { cost-center = "platform", team = "infra" } }
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
  tags      = { team = "payments", env = "acc" }
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

// labTagsWant are the tags every cluster object gets from labClusterConfig:
// the provider's default_tags under the resource's tags, which win for "team".
var labTagsWant = map[string]string{"cost-center": "platform", "team": "payments", "env": "acc"}

// untaggable are the kinds of object, as the lab lists them, that a cloud
// gives no tags: GCE networks, subnetworks, firewall rules, backend
// services, health checks and instance groups take no labels; an Azure subnet is part of its virtual network and a VM's OS disk
// is made by ARM with the VM, without its tags.
var untaggable = map[string][]string{
	"gcp":   {"network/", "subnetwork/", "firewall/", "backendservice/", "healthcheck/", "instancegroup/"},
	"azure": {"subnets/", "disks/"},
}

// labTags checks tags_all and that every object the lab lists of the
// cluster in cloud carries the merged tags, except the kinds the cloud
// cannot tag.
func labTags(l *lab.Lab, cloud string) resource.TestCheckFunc {
	checks := []resource.TestCheckFunc{resource.TestCheckResourceAttr(labAddr, "tags_all.%", strconv.Itoa(len(labTagsWant)))}
	for k, v := range labTagsWant {
		checks = append(checks, resource.TestCheckResourceAttr(labAddr, "tags_all."+k, v))
	}
	return resource.ComposeAggregateTestCheckFunc(append(checks, func(*terraform.State) error {
		objects, err := l.ObjectsIn(cloud, "acc")
		if err != nil {
			return err
		}
		tags, err := l.ObjectTagsIn(cloud, "acc")
		if err != nil {
			return err
		}
		var problems []string
		for _, o := range objects {
			if strings.HasPrefix(o, "node/") || slices.ContainsFunc(untaggable[cloud], func(p string) bool { return strings.HasPrefix(o, p) }) {
				continue
			}
			got, ok := tags[o]
			if !ok {
				problems = append(problems, o+": no tags")
				continue
			}
			for k, v := range labTagsWant {
				if got[k] != v {
					problems = append(problems, fmt.Sprintf("%s: tag %s=%q, want %q", o, k, got[k], v))
				}
			}
		}
		if len(tags) == 0 || len(problems) > 0 {
			return fmt.Errorf("tags on the %d objects of cluster acc in the lab's %s: %d tagged; %s", len(objects), cloud, len(tags), strings.Join(problems, "; "))
		}
		return nil
	})...)
}

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
	providerAWS := labAssumeRole(t, l, "acc-external-id")
	factories := map[string]func() (tfprotov6.ProviderServer, error){
		"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             labEmpty(l),
		Steps: []resource.TestStep{
			{
				Config: labConfig(env, providerAWS, 1, 1),
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
					labKubernetesProvider(l, "acc-cp-0", "acc-linux-0", "acc-win-0"),
					labTags(l, "aws"),
					labKeys(l),
					labAssumedRoleDidEverything(l),
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
				Config: labConfig(env, providerAWS, 1, 2),
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
				Config: labConfig(env, providerAWS, 1, 1),
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
				// A lookup without a location finds the cluster in AWS_REGION's region.
				Config: labConfig(env, providerAWS, 1, 1) + `
data "mixedk8s_cluster" "by_name" {
  name = "acc"
}`,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.mixedk8s_cluster.by_name", "nodes.#", "3"),
					resource.TestCheckResourceAttrPair("data.mixedk8s_cluster.by_name", "host", labAddr, "host"),
				),
			},
			{
				// By name alone: the region comes from AWS_REGION, as the provider block names none.
				ResourceName:      labAddr,
				ImportState:       true,
				ImportStateId:     "acc",
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					"kubernetes_version", "aws", "network", "access", "artifacts", "timeouts", "kubeconfig", "client_certificate", "client_key", "tags",
					"control_plane.disk_gb", "control_plane.instance_type",
					"node_pools.linux.disk_gb", "node_pools.linux.instance_type",
					"node_pools.win.disk_gb", "node_pools.win.instance_type", "node_pools.win.windows_version", "node_pools.win.isolation",
				},
			},
		},
	})
}

// wrapped matches the phrases in order in a CLI's diagnostic, which wraps
// lines and, in terraform, starts each with a box-drawing bar.
func wrapped(phrases ...string) *regexp.Regexp {
	var parts []string
	for _, p := range phrases {
		words := strings.Fields(p)
		for i, w := range words {
			words[i] = regexp.QuoteMeta(w)
		}
		parts = append(parts, strings.Join(words, `[\s│]+`))
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, ".*"))
}

// A wrong assume_role.external_id stops at the provider block, before any
// plan, with the chain that was tried and where the docs are; the external
// ID and the keys are not in the message.
func TestAccLabAssumeRoleWrongExternalID(t *testing.T) {
	l := startLab(t)
	env := l.Env()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
		},
		Steps: []resource.TestStep{{
			Config:      labConfig(env, labAssumeRole(t, l, "someone-elses-id"), 1, 0),
			PlanOnly:    true,
			ExpectError: wrapped("AWS credentials do not work", "AccessDenied", "sts:AssumeRole", "AWS_ACCESS_KEY_ID", "with the configured external ID", "trust policy", "docs#credentials"),
		}},
		CheckDestroy: func(*terraform.State) error {
			by := l.EC2.CallsBy()
			for principal, calls := range by {
				for action := range calls {
					if action != "AssumeRole" {
						return fmt.Errorf("%s called %s after the credential check failed (calls by principal: %v)", principal, action, by)
					}
				}
			}
			if len(l.Objects("acc")) > 0 {
				return fmt.Errorf("the failed configuration left %v", l.Objects("acc"))
			}
			return nil
		},
	})
}
