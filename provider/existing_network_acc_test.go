package provider_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/mixedk8s/mixedk8s/provider"
	"github.com/mixedk8s/mixedk8s/test/lab/awslab"
)

// A cluster in a VPC and subnet made beforehand by their owner (through
// the EC2 emulator's CreateVpc and CreateSubnet): plan refuses an unknown
// subnet at its attribute, the cluster
// creates only its security groups there and exports the IDs it uses, a
// second plan is empty, and destroy leaves the VPC and subnet with nothing
// of the cluster.
func TestAccLabClusterInAnExistingVPC(t *testing.T) {
	l := startLab(t)
	env := l.Env()
	ec2 := l.Emulator("aws").(*awslab.Emulator).Server
	vpcID, subnetID, err := ec2.OwnerNetwork("10.60.0.0/16", "10.60.1.0/24")
	if err != nil {
		t.Fatal(err)
	}
	config := func(subnet string, network ...string) string {
		providerCloud := fmt.Sprintf(`
  aws = {
    region    = %q
    endpoint  = %q
    ca_bundle = file(%q)
  }`, env.AWSRegion, env.AWSEndpoint, env.AWSCABundle)
		location := fmt.Sprintf("aws = { region = %q, vpc_id = %q, subnet_ids = [%q] }", env.AWSRegion, vpcID, subnet) + strings.Join(network, "")
		return labClusterConfig(env, providerCloud, location, 1, 0)
	}
	factories := map[string]func() (tfprotov6.ProviderServer, error){
		"mixedk8s": providerserver.NewProtocol6WithError(provider.New("test")()),
	}
	ownerNetworkStays := func(*terraform.State) error {
		if !ec2.OwnerNetworkStays(vpcID, subnetID) {
			return fmt.Errorf("the existing VPC %s or subnet %s is gone after destroy", vpcID, subnetID)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             resource.ComposeAggregateTestCheckFunc(labEmpty(l), ownerNetworkStays),
		Steps: []resource.TestStep{
			{
				// A subnet the region does not have: refused at plan time, at its attribute, with EC2's code.
				Config:      config("subnet-0123456789abcdef0"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid aws\.subnet_ids\[0\].*InvalidSubnetID\.NotFound.*Fix:`),
			},
			{
				// Pods addressed inside the VPC: refused at plan time, at the attribute, naming the VPC's range.
				Config:      config(subnetID, "\n  network = { pod_cidr = \"10.60.0.0/16\" }"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid network\.pod_cidr.*overlaps the VPC's range 10\.60\.0\.0/16.*Fix:`),
			},
			{
				Config: config(subnetID),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(labAddr, "nodes.#", "2"),
					resource.TestCheckResourceAttr(labAddr, "nodes.1.ready", "true"),
					resource.TestCheckResourceAttr(labAddr, "network_id", vpcID),
					resource.TestCheckResourceAttr(labAddr, "subnet_ids.#", "1"),
					resource.TestCheckResourceAttr(labAddr, "subnet_ids.0", subnetID),
					resource.TestCheckResourceAttr(labAddr, "security_group_ids.#", "2"),
					resource.TestMatchResourceAttr(labAddr, "security_group_ids.0", regexp.MustCompile(`^sg-[0-9a-f]{17}$`)),
					labTags(l, "aws"),
					func(s *terraform.State) error {
						// The cluster made its security groups and instances, and no network of its own.
						var kinds []string
						for _, o := range l.Objects("acc") {
							kind, _, _ := strings.Cut(o, "/")
							if !slices.Contains(kinds, kind) {
								kinds = append(kinds, kind)
							}
						}
						for _, k := range []string{"vpc", "subnet", "internet-gateway", "route-table"} {
							if slices.Contains(kinds, k) {
								return fmt.Errorf("the cluster made a %s in an existing VPC: %v", k, l.Objects("acc"))
							}
						}
						for _, attr := range []string{"security_group_ids.0", "security_group_ids.1"} {
							id := s.RootModule().Resources[labAddr].Primary.Attributes[attr]
							if vpc, ok := ec2.GroupVPC(id); !ok || vpc != vpcID {
								return fmt.Errorf("security group %s is in %q, want %s", id, vpc, vpcID)
							}
						}
						return nil
					},
				),
			},
		},
	})
}
