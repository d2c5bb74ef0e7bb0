package aws

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// ownerNetwork is a VPC with one subnet per zone made through the
// emulator's API as the network's owner would, untagged by any cluster.
type ownerNetwork struct {
	vpc     string
	subnets []string
	cidrs   []string
}

func makeOwnerNetwork(t *testing.T, f fixture, zones ...string) ownerNetwork {
	t.Helper()
	ctx := context.Background()
	vpc, err := f.cloud.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.50.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	out := ownerNetwork{vpc: aws.ToString(vpc.Vpc.VpcId)}
	for i, z := range zones {
		cidr := fmt.Sprintf("10.50.%d.0/24", i+1)
		sn, err := f.cloud.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(z)})
		if err != nil {
			t.Fatal(err)
		}
		out.subnets, out.cidrs = append(out.subnets, aws.ToString(sn.Subnet.SubnetId)), append(out.cidrs, cidr)
	}
	return out
}

// existingCloud is a Cloud of the same emulator configured for an existing network.
func existingCloud(t *testing.T, f fixture, vpc string, subnets []string) *Cloud {
	t.Helper()
	cfg := f.cloud.cfg
	cfg.Zones, cfg.VPCID, cfg.SubnetIDs = nil, vpc, subnets
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.firstBoot = fixedUserData
	return c
}

func TestExistingNetworkAdoptedConvergedAndLeftInPlace(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	zones := f.srv.Zones()[:2]
	own := makeOwnerNetwork(t, f, zones...)
	c := existingCloud(t, f, own.vpc, own.subnets)

	// Given an existing VPC and two subnets, when the network is ensured,
	// then only the cluster's two security groups are created, in that VPC.
	f.srv.ResetCalls()
	n, err := c.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	calls := f.srv.Calls()
	for _, op := range []string{"CreateVpc", "CreateSubnet", "CreateInternetGateway", "AttachInternetGateway", "CreateRouteTable", "CreateRoute", "AssociateRouteTable"} {
		if calls[op] != 0 {
			t.Errorf("EnsureNetwork in an existing VPC called %s %d times", op, calls[op])
		}
	}
	if got, want := kinds(f.srv.Objects("demo")), map[string]int{"security-group": 2}; !mapsEqual(got, want) {
		t.Errorf("cluster objects after EnsureNetwork: %v, want %v", got, want)
	}
	if n.ID != own.vpc || n.SubnetID != own.subnets[0] || !slices.Equal(n.SubnetIDs, own.subnets) || n.Firewalls.ControlPlane == "" || n.Firewalls.Worker == "" {
		t.Errorf("network = %+v, want VPC %s, subnets %v and both groups", n, own.vpc, own.subnets)
	}
	groups, err := f.cloud.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{n.Firewalls.ControlPlane, n.Firewalls.Worker}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.SecurityGroups {
		if aws.ToString(g.VpcId) != own.vpc {
			t.Errorf("group %s is in VPC %s, want %s", aws.ToString(g.GroupId), aws.ToString(g.VpcId), own.vpc)
		}
		if tagValue(g.Tags, TagCluster) != "demo" {
			t.Errorf("group %s has no cluster tag: %v", aws.ToString(g.GroupId), g.Tags)
		}
		// The nodes' rules admit the subnets' ranges, not the node CIDR the cluster did not make.
		var kubelet []string
		for _, p := range g.IpPermissions {
			for _, r := range p.IpRanges {
				if aws.ToInt32(p.FromPort) == 10250 {
					kubelet = append(kubelet, aws.ToString(r.CidrIp))
				}
			}
		}
		slices.Sort(kubelet)
		if !slices.Equal(kubelet, own.cidrs) {
			t.Errorf("group %s admits the kubelet from %v, want the subnets' %v", aws.ToString(g.GroupId), kubelet, own.cidrs)
		}
	}

	// When it is ensured again, then nothing changes.
	f.srv.ResetCalls()
	again, err := c.EnsureNetwork(ctx, netReq("demo"))
	if err != nil || !reflect.DeepEqual(again, n) || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %+v, %v, %d mutating calls %v; want the same network and none", again, err, f.srv.MutatingCalls(), f.srv.Calls())
	}
	if found, ok, err := c.FindNetwork(ctx, "demo"); err != nil || !ok || !reflect.DeepEqual(found, n) {
		t.Errorf("FindNetwork = %+v, %v, %v; want %+v", found, ok, err, n)
	}
	if _, ok, err := c.FindNetwork(ctx, "other"); ok || err != nil {
		t.Errorf("FindNetwork(other) in the same VPC = %v, %v; want false, nil", ok, err)
	}

	// Nodes go in the subnets, spread by name; the API load balancer has a leg in each.
	var nodes []clouds.Instance
	for i := range 4 {
		in, err := c.EnsureInstance(ctx, instReq("demo", fmt.Sprintf("demo-cp-%d", i), clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", n))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, in)
	}
	used := map[string]bool{}
	for _, in := range f.srv.Instances() {
		if in.VpcID != own.vpc || !slices.Contains(own.subnets, in.SubnetID) {
			t.Errorf("instance %s is in %s/%s, want one of the subnets %v of %s", in.ID, in.VpcID, in.SubnetID, own.subnets, own.vpc)
		}
		used[in.SubnetID] = true
	}
	if len(used) != 2 {
		t.Errorf("four nodes used subnets %v, want both", used)
	}
	lb, err := c.EnsureLoadBalancer(ctx, lbReq("demo", n, true))
	if err != nil {
		t.Fatal(err)
	}
	if got := emulated(t, f, "demo-api"); !slices.Equal(sorted(got.Subnets), sorted(own.subnets)) {
		t.Errorf("load balancer subnets %v, want %v", got.Subnets, own.subnets)
	}

	// When the cluster is destroyed, then what it made is gone and the VPC and subnets stay.
	if err := retryTransient(t, func() error { return c.DeleteLoadBalancer(ctx, "demo") }); err != nil {
		t.Fatal(err)
	}
	for _, in := range nodes {
		if err := c.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	waitGone(t, f, "demo")
	if err := retryTransient(t, func() error { return c.DeleteNetwork(ctx, "demo") }); err != nil {
		t.Fatal(err)
	}
	if left := f.srv.Objects("demo"); len(left) != 0 {
		t.Errorf("left after destroy: %v (load balancer %s)", left, lb.ID)
	}
	if _, err := f.cloud.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{own.vpc}}); err != nil {
		t.Errorf("the existing VPC after destroy: %v", err)
	}
	if out, err := f.cloud.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: own.subnets}); err != nil || len(out.Subnets) != 2 {
		t.Errorf("the existing subnets after destroy: %v", err)
	}
	if _, ok, err := c.FindNetwork(ctx, "demo"); ok || err != nil {
		t.Errorf("FindNetwork after destroy = %v, %v; want false, nil", ok, err)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestExistingNetworkRefusedAtItsField(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	zones := f.srv.Zones()
	own := makeOwnerNetwork(t, f, zones[0], zones[1])
	other := makeOwnerNetwork(t, f, zones[0])
	// A second subnet of the first VPC in a zone it already has.
	sameZone, err := f.cloud.ec2.CreateSubnet(context.Background(), &ec2.CreateSubnetInput{VpcId: aws.String(own.vpc), CidrBlock: aws.String("10.50.9.0/24"), AvailabilityZone: aws.String(zones[0])})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		vpc         string
		subnets     []string
		field, code string
	}{
		{"an unknown VPC", "vpc-0123456789abcdef0", own.subnets, "aws.vpc_id", "InvalidVpcID.NotFound"},
		{"a malformed VPC ID", "vpc-012345678", own.subnets, "aws.vpc_id", "InvalidVpcID.Malformed"},
		{"an unknown second subnet", own.vpc, []string{own.subnets[0], "subnet-0123456789abcdef0"}, "aws.subnet_ids[1]", "InvalidSubnetID.NotFound"},
		{"a malformed subnet ID", own.vpc, []string{"subnet-xyz"}, "aws.subnet_ids[0]", "InvalidSubnetID.Malformed"},
		{"a subnet of another VPC", own.vpc, []string{other.subnets[0]}, "aws.subnet_ids[0]", ""},
		{"two subnets in one zone", own.vpc, []string{own.subnets[0], own.subnets[1], aws.ToString(sameZone.Subnet.SubnetId)}, "aws.subnet_ids[2]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := existingCloud(t, f, tc.vpc, tc.subnets)
			err := c.Preflight(context.Background(), clouds.PreflightRequest{Cluster: "bad", Network: true, Instances: true, Quick: true})
			pe, ok := clouds.AsPreflightError(err)
			if !ok || pe.Field != tc.field || pe.Err.Code != tc.code || pe.Err.Kind != clouds.KindInvalid || pe.Err.Fix == "" {
				t.Fatalf("Preflight = %v; want a refusal at %s with code %q and a fix", err, tc.field, tc.code)
			}
			// EnsureNetwork refuses the same way, having created nothing.
			_, err = c.EnsureNetwork(context.Background(), netReq("bad"))
			var ce *clouds.Error
			if !errors.As(err, &ce) || ce.Kind != clouds.KindInvalid || ce.Fix != pe.Err.Fix {
				t.Errorf("EnsureNetwork = %v; want the preflight's refusal %v", err, pe.Err)
			}
			if left := f.srv.Objects("bad"); len(left) != 0 {
				t.Errorf("a refused network left %v", left)
			}
		})
	}
	// Pod and Service ranges inside the VPC's 10.50.0.0/16 are refused at their field.
	c := existingCloud(t, f, own.vpc, own.subnets)
	for field, req := range map[string]clouds.PreflightRequest{
		"network.pod_cidr":     {Cluster: "in", Network: true, PodCIDR: "10.0.0.0/8", ServiceCIDR: "10.96.0.0/12"},
		"network.service_cidr": {Cluster: "in", Network: true, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.50.128.0/20"},
	} {
		pe, ok := clouds.AsPreflightError(c.Preflight(context.Background(), req))
		if !ok || pe.Field != field || !strings.Contains(pe.Err.Fix, "10.50.0.0/16") {
			t.Errorf("Preflight with %s inside the VPC = %v; want a refusal at %s naming the VPC's range", field, pe, field)
		}
	}
	if err := c.Preflight(context.Background(), clouds.PreflightRequest{Cluster: "in", Network: true, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}); err != nil {
		t.Errorf("Preflight with ranges outside the VPC = %v", err)
	}
	// A cluster that makes its own network has nothing to check.
	if err := f.cloud.Preflight(context.Background(), clouds.PreflightRequest{Cluster: "own", Network: true}); err != nil {
		t.Errorf("Preflight without an existing network = %v", err)
	}
}
