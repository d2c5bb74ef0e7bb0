package provider_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/mixedk8s/mixedk8s/provider"
	"github.com/mixedk8s/mixedk8s/test/lab"
)

// labEC2 is an EC2 client of the lab's emulator, as the network's owner
// (another team, another Terraform configuration) would use the API.
func labEC2(t *testing.T, env lab.Env) *ec2.Client {
	t.Helper()
	ca, err := os.ReadFile(env.AWSCABundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("the lab's CA bundle holds no certificate")
	}
	return ec2.New(ec2.Options{
		Region:       env.AWSRegion,
		BaseEndpoint: aws.String(env.AWSEndpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(env.AWSAccessKeyID, env.AWSSecretAccessKey, ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}},
	})
}

// A cluster in a VPC and subnet made beforehand through the emulator's
// API: plan refuses an unknown subnet at its attribute, the cluster
// creates only its security groups there and exports the IDs it uses, a
// second plan is empty, and destroy leaves the VPC and subnet with nothing
// of the cluster.
func TestAccLabClusterInAnExistingVPC(t *testing.T) {
	l := startLab(t)
	env := l.Env()
	ctx := context.Background()
	api := labEC2(t, env)
	vpc, err := api.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.60.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	sn, err := api.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.60.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	subnetID := aws.ToString(sn.Subnet.SubnetId)
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
		if _, err := api.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{vpcID}}); err != nil {
			return fmt.Errorf("the existing VPC after destroy: %w", err)
		}
		if _, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnetID}}); err != nil {
			return fmt.Errorf("the existing subnet after destroy: %w", err)
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
						groups, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
							GroupIds: []string{s.RootModule().Resources[labAddr].Primary.Attributes["security_group_ids.0"], s.RootModule().Resources[labAddr].Primary.Attributes["security_group_ids.1"]},
						})
						if err != nil {
							return err
						}
						for _, g := range groups.SecurityGroups {
							if aws.ToString(g.VpcId) != vpcID {
								return fmt.Errorf("security group %s is in %s, want %s", aws.ToString(g.GroupId), aws.ToString(g.VpcId), vpcID)
							}
						}
						return nil
					},
				),
			},
		},
	})
}
