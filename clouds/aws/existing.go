package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Existing network. With Config.VPCID and Config.SubnetIDs the cluster
// goes in a VPC someone else owns: it creates its role security groups
// there (tagged with the cluster, as everything it creates), spreads its
// nodes over the subnets by node name (subnetFor) and gives the API load
// balancer a leg in each subnet. It creates no VPC, subnet, route table or
// internet gateway, changes none of the VPC's routes, and DeleteNetwork
// deletes only its own security groups there. The subnets' routes are the
// owner's: an internet-facing API load balancer needs them routed to an
// internet gateway, which ELB checks when it is created.
//
// The nodes' addresses come from the subnets, so the groups admit the
// subnets' ranges where a cluster-made network admits the node CIDR.
//
// Zones: each subnet must be in a zone of its own. The nodes' zones are
// the subnets' zones (aws.zones is refused beside subnet_ids), and a
// Network Load Balancer takes at most one subnet per Availability Zone
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html, Subnets).

// Configuration fields the refusals name, as the provider spells them.
const (
	fieldVPC     = "aws.vpc_id"
	fieldSubnets = "aws.subnet_ids"
)

var _ clouds.Preflighter = (*Cloud)(nil)

// existing reports whether the cluster goes in an existing network.
func (c *Cloud) existing() bool { return c.cfg.VPCID != "" }

// existingNet is the existing network as EC2 describes it.
type existingNet struct {
	vpcID string
	// vpcCIDRs are the VPC's IPv4 ranges, the primary first.
	vpcCIDRs []string
	// subnets in Config.SubnetIDs order.
	subnets []subnetRef
}

func (n existingNet) cidrs() []string {
	out := make([]string, len(n.subnets))
	for i, s := range n.subnets {
		out[i] = s.cidr
	}
	return out
}

// Preflight implements clouds.Preflighter: in an existing network, the VPC
// and the subnets must exist in the region, the subnets must be in the
// VPC and each in a zone of its own, and the pod and Service ranges must
// be outside the VPC's ranges. Two read calls, quick or not; a cluster
// that makes its own network has nothing to check here (validation keeps
// its node CIDR apart from the others).
func (c *Cloud) Preflight(ctx context.Context, req clouds.PreflightRequest) error {
	if !c.existing() || (!req.Network && !req.Instances && !req.LoadBalancer) {
		return nil
	}
	ex, err := c.inspectExisting(ctx)
	if err != nil {
		return err
	}
	return ex.checkApart(req)
}

// checkApart refuses a pod or Service range that overlaps the VPC.
func (n existingNet) checkApart(req clouds.PreflightRequest) error {
	if field, cidr, v, ok := req.OverlapOf(n.vpcCIDRs); ok {
		return refusal(field, "DescribeVpcs", "VPC "+n.vpcID, fmt.Errorf("%s %s overlaps the VPC's range %s", field, cidr, v),
			fmt.Sprintf("set %s to a range outside the VPC's %s", field, strings.Join(n.vpcCIDRs, ", ")))
	}
	return nil
}

// inspectExisting describes the configured VPC and subnets. A refusal is a
// *clouds.PreflightError naming the field; other errors mean EC2 could not
// be asked.
func (c *Cloud) inspectExisting(ctx context.Context) (existingNet, error) {
	region := c.cfg.Region
	vpcs, err := c.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{c.cfg.VPCID}})
	// An ID that is not one EC2 knows in the region is InvalidVpcID.NotFound,
	// one not of a VPC ID's form InvalidVpcID.Malformed
	// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
	if hasCode(err, "InvalidVpcID.NotFound", "InvalidVpcID.Malformed") {
		return existingNet{}, refusal(fieldVPC, "DescribeVpcs", fmt.Sprintf("VPC %s", c.cfg.VPCID), err,
			fmt.Sprintf("set aws.vpc_id to a VPC of region %s (aws ec2 describe-vpcs --region %s); VPC IDs are per region", region, region))
	}
	if err != nil {
		return existingNet{}, call{op: "DescribeVpcs", object: fmt.Sprintf("VPC %s", c.cfg.VPCID)}.classify(err)
	}
	if len(vpcs.Vpcs) != 1 {
		return existingNet{}, fmt.Errorf("DescribeVpcs of %s answered %d VPCs, want 1", c.cfg.VPCID, len(vpcs.Vpcs))
	}
	out := existingNet{vpcID: c.cfg.VPCID, vpcCIDRs: []string{aws.ToString(vpcs.Vpcs[0].CidrBlock)}}
	for _, a := range vpcs.Vpcs[0].CidrBlockAssociationSet {
		if cidr := aws.ToString(a.CidrBlock); a.CidrBlockState != nil && a.CidrBlockState.State == types.VpcCidrBlockStateCodeAssociated && !slices.Contains(out.vpcCIDRs, cidr) {
			out.vpcCIDRs = append(out.vpcCIDRs, cidr)
		}
	}
	subnets, err := c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: c.cfg.SubnetIDs})
	if hasCode(err, "InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed") {
		// EC2 names the first ID it does not know: "The subnet ID 'subnet-...' does not exist".
		field, object := fieldSubnets, "subnets "+strings.Join(c.cfg.SubnetIDs, ", ")
		for i, id := range c.cfg.SubnetIDs {
			if strings.Contains(err.Error(), id) {
				field, object = fmt.Sprintf("%s[%d]", fieldSubnets, i), "subnet "+id
				break
			}
		}
		return existingNet{}, refusal(field, "DescribeSubnets", object, err,
			fmt.Sprintf("list subnets of VPC %s in region %s (aws ec2 describe-subnets --filters Name=vpc-id,Values=%s)", c.cfg.VPCID, region, c.cfg.VPCID))
	}
	if err != nil {
		return existingNet{}, call{op: "DescribeSubnets", object: "subnets " + strings.Join(c.cfg.SubnetIDs, ", ")}.classify(err)
	}
	byID := map[string]types.Subnet{}
	for _, s := range subnets.Subnets {
		byID[aws.ToString(s.SubnetId)] = s
	}
	zoneOf := map[string]int{}
	for i, id := range c.cfg.SubnetIDs {
		field := fmt.Sprintf("%s[%d]", fieldSubnets, i)
		s, ok := byID[id]
		if !ok {
			return existingNet{}, fmt.Errorf("DescribeSubnets did not answer subnet %s", id)
		}
		if vpc := aws.ToString(s.VpcId); vpc != c.cfg.VPCID {
			return existingNet{}, refusal(field, "DescribeSubnets", "subnet "+id,
				fmt.Errorf("the subnet is in VPC %s, not in aws.vpc_id %s", vpc, c.cfg.VPCID),
				fmt.Sprintf("list only subnets of VPC %s, or set aws.vpc_id to %s", c.cfg.VPCID, vpc))
		}
		zone := aws.ToString(s.AvailabilityZone)
		if first, dup := zoneOf[zone]; dup {
			return existingNet{}, refusal(field, "DescribeSubnets", "subnet "+id,
				fmt.Errorf("the subnet is in zone %s, as aws.subnet_ids[%d] (%s) is; the cluster takes one subnet per zone, as the API load balancer does", zone, first, c.cfg.SubnetIDs[first]),
				"list one subnet per zone: remove one of the two")
		}
		zoneOf[zone] = i
		out.subnets = append(out.subnets, subnetRef{id: id, zone: zone, cidr: aws.ToString(s.CidrBlock)})
	}
	return out, nil
}

// refusal is a preflight refusal at field: an invalid request whose fix names the field.
func refusal(field, op, object string, err error, fix string) *clouds.PreflightError {
	ce := &clouds.Error{Kind: clouds.KindInvalid, Op: op, Object: object, Err: err, Fix: fix}
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		ce.Code = ae.ErrorCode()
	}
	return &clouds.PreflightError{Field: field, Err: ce}
}

// unwrapRefusal is a refusal's classified error (its fix names the
// field), for the callers that return *clouds.Error; others pass through.
func unwrapRefusal(err error) error {
	if pe, ok := clouds.AsPreflightError(err); ok {
		return pe.Err
	}
	return err
}

// ensureInExisting is EnsureNetwork in an existing network: the role
// security groups in the VPC, admitting the subnets' ranges.
func (c *Cloud) ensureInExisting(ctx context.Context, req clouds.NetworkRequest) (clouds.Network, error) {
	ex, err := c.inspectExisting(ctx)
	if err != nil {
		return clouds.Network{}, unwrapRefusal(err)
	}
	return c.ensureGroups(ctx, req, ex.vpcID, ex.subnets, ex.cidrs())
}

// findInExisting is FindNetwork in an existing network: the cluster has a
// network once one of its security groups is in the VPC.
func (c *Cloud) findInExisting(ctx context.Context, cluster string) (clouds.Network, bool, error) {
	fw, outdated, err := c.roleGroups(ctx, cluster, c.cfg.VPCID)
	if err != nil || outdated || (fw.ControlPlane == "" && fw.Worker == "") {
		return clouds.Network{}, false, err
	}
	ex, err := c.inspectExisting(ctx)
	if err != nil {
		return clouds.Network{}, false, unwrapRefusal(err)
	}
	c.mu.Lock()
	c.subnets[cluster] = ex.subnets
	c.mu.Unlock()
	return clouds.Network{ID: ex.vpcID, SubnetID: ex.subnets[0].id, SubnetIDs: subnetIDs(ex.subnets), Firewalls: fw}, true, nil
}

// nodeSources are the ranges the cluster's nodes have addresses in, for
// rules that admit them: the VPC's CIDR for a cluster-made network, the
// subnets' ranges in an existing one.
func (c *Cloud) nodeSources(cluster, vpcCIDR string) []string {
	if !c.existing() {
		return []string{vpcCIDR}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.subnets[cluster] {
		if !slices.Contains(out, s.cidr) {
			out = append(out, s.cidr)
		}
	}
	return out
}
