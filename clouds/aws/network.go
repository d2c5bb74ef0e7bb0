package aws

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Names of the network objects: "<cluster>-" + suffix.
const (
	nameVPC          = "vpc"
	nameIGW          = "igw"
	nameRouteTable   = "public"
	nameControlPlane = "control-plane"
	nameWorker       = "worker"
)

func clusterFilter(cluster string) types.Filter {
	return types.Filter{Name: aws.String("tag:" + TagCluster), Values: []string{cluster}}
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

// tagSpec tags an object at creation, so it is never untagged (and so
// never invisible to FindNetwork and DeleteNetwork), not even for a moment:
// the cluster and Name tags, base's, then the user's (Config.Tags), which
// never replace the project's own.
func (c *Cloud) tagSpec(rt types.ResourceType, base map[string]string, cluster, name string) []types.TagSpecification {
	tags := []types.Tag{{Key: aws.String(TagCluster), Value: aws.String(cluster)}, {Key: aws.String("Name"), Value: aws.String(name)}}
	for _, k := range sortedKeys(base) {
		if k != TagCluster && k != "Name" {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(base[k])})
		}
	}
	for _, k := range sortedKeys(c.cfg.Tags) {
		if _, own := base[k]; !own && k != TagCluster && k != "Name" {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(c.cfg.Tags[k])})
		}
	}
	return []types.TagSpecification{{ResourceType: rt, Tags: tags}}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// EnsureNetwork implements clouds.Cloud. Each object is found by tag before
// it is created; rules already present are not authorized again.
func (c *Cloud) EnsureNetwork(ctx context.Context, req clouds.NetworkRequest) (clouds.Network, error) {
	if c.existing() {
		return c.ensureInExisting(ctx, req)
	}
	cidr, err := netip.ParsePrefix(req.NodeCIDR)
	if err != nil || !cidr.Addr().Is4() {
		return clouds.Network{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "CreateVpc", Object: fmt.Sprintf("VPC %q", req.Cluster+"-"+nameVPC),
			Err: fmt.Errorf("node CIDR %q is not an IPv4 prefix", req.NodeCIDR), Fix: "set network.node_cidr to an IPv4 range such as 10.0.0.0/16"}
	}
	vpcID, _, err := c.findVPC(ctx, req.Cluster)
	if err != nil {
		return clouds.Network{}, err
	}
	if vpcID == "" {
		name := req.Cluster + "-" + nameVPC
		out, err := c.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr.Masked().String()),
			TagSpecifications: c.tagSpec(types.ResourceTypeVpc, nil, req.Cluster, name)})
		if err != nil {
			return clouds.Network{}, call{op: "CreateVpc", object: fmt.Sprintf("VPC %q", name)}.classify(err)
		}
		vpcID = aws.ToString(out.Vpc.VpcId)
	}
	subnets, err := c.ensureSubnets(ctx, req, vpcID, cidr.Masked())
	if err != nil {
		return clouds.Network{}, err
	}
	if err := c.ensureInternetAccess(ctx, req, vpcID, subnets); err != nil {
		return clouds.Network{}, err
	}
	return c.ensureGroups(ctx, req, vpcID, subnets, []string{req.NodeCIDR})
}

// ensureGroups creates or adopts the two role security groups in vpcID,
// whose node rules admit nodes (the ranges the nodes' addresses are in),
// and returns the network.
func (c *Cloud) ensureGroups(ctx context.Context, req clouds.NetworkRequest, vpcID string, subnets []subnetRef, nodes []string) (clouds.Network, error) {
	cp, err := c.ensureGroup(ctx, req.Cluster, vpcID, nameControlPlane, roleGroupDescription(req.Cluster, nameControlPlane), controlPlaneRules(req, nodes))
	if err != nil {
		return clouds.Network{}, err
	}
	worker, err := c.ensureGroup(ctx, req.Cluster, vpcID, nameWorker, roleGroupDescription(req.Cluster, nameWorker), workerRules(req, nodes))
	if err != nil {
		return clouds.Network{}, err
	}
	c.mu.Lock()
	c.subnets[req.Cluster] = subnets
	c.mu.Unlock()
	return clouds.Network{ID: vpcID, SubnetID: subnets[0].id, SubnetIDs: subnetIDs(subnets), Firewalls: clouds.RoleFirewalls{ControlPlane: cp, Worker: worker}}, nil
}

func subnetIDs(subnets []subnetRef) []string {
	out := make([]string, len(subnets))
	for i, s := range subnets {
		out[i] = s.id
	}
	return out
}

// findVPC returns the cluster's VPC ID and CIDR, "" when there is none. Two
// VPCs with the tag (a CreateVpc whose reply was lost, then retried) adopt
// the first by ID; DeleteNetwork deletes both.
func (c *Cloud) findVPC(ctx context.Context, cluster string) (string, string, error) {
	out, err := c.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{clusterFilter(cluster)}})
	if err != nil {
		return "", "", call{op: "DescribeVpcs", object: fmt.Sprintf("VPC of cluster %q", cluster)}.classify(err)
	}
	vpcs := out.Vpcs
	if len(vpcs) == 0 {
		return "", "", nil
	}
	slices.SortFunc(vpcs, func(a, b types.Vpc) int { return compare(aws.ToString(a.VpcId), aws.ToString(b.VpcId)) })
	return aws.ToString(vpcs[0].VpcId), aws.ToString(vpcs[0].CidrBlock), nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// zoneSubnets splits the node CIDR into one equal block per zone.
func zoneSubnets(cidr netip.Prefix, zones int) ([]netip.Prefix, error) {
	if zones <= 1 {
		return []netip.Prefix{cidr}, nil
	}
	extra := bits.Len(uint(zones - 1))
	if cidr.Bits()+extra > 28 {
		return nil, fmt.Errorf("node CIDR %s is too small for %d zone subnets of at least /28", cidr, zones)
	}
	base := cidr.Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	size := uint32(1) << (32 - cidr.Bits() - extra)
	var out []netip.Prefix
	for i := range zones {
		v := n + uint32(i)*size
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), cidr.Bits()+extra))
	}
	return out, nil
}

func (c *Cloud) ensureSubnets(ctx context.Context, req clouds.NetworkRequest, vpcID string, cidr netip.Prefix) ([]subnetRef, error) {
	zones := c.cfg.Zones
	blocks, err := zoneSubnets(cidr, len(zones))
	if err != nil {
		return nil, &clouds.Error{Kind: clouds.KindInvalid, Op: "CreateSubnet", Object: fmt.Sprintf("subnets of cluster %q", req.Cluster), Err: err,
			Fix: "use a larger network.node_cidr or fewer zones"}
	}
	have, err := c.findSubnets(ctx, req.Cluster, vpcID)
	if err != nil {
		return nil, err
	}
	var out []subnetRef
	for i, block := range blocks {
		zone := ""
		name := req.Cluster + "-subnet"
		if len(zones) > 0 {
			zone = zones[i]
			name = req.Cluster + "-" + zone
		}
		if s, ok := have[name]; ok {
			out = append(out, s)
			continue
		}
		in := &ec2.CreateSubnetInput{VpcId: aws.String(vpcID), CidrBlock: aws.String(block.String()),
			TagSpecifications: c.tagSpec(types.ResourceTypeSubnet, nil, req.Cluster, name)}
		if zone != "" {
			in.AvailabilityZone = aws.String(zone)
		}
		res, err := c.ec2.CreateSubnet(ctx, in)
		if err != nil {
			return nil, call{op: "CreateSubnet", object: fmt.Sprintf("subnet %q", name)}.classify(err)
		}
		out = append(out, subnetRef{id: aws.ToString(res.Subnet.SubnetId), zone: aws.ToString(res.Subnet.AvailabilityZone), cidr: aws.ToString(res.Subnet.CidrBlock)})
	}
	return out, nil
}

// findSubnets returns the cluster's subnets in vpcID by Name tag.
func (c *Cloud) findSubnets(ctx context.Context, cluster, vpcID string) (map[string]subnetRef, error) {
	out := map[string]subnetRef{}
	p := ec2.NewDescribeSubnetsPaginator(c.ec2, &ec2.DescribeSubnetsInput{Filters: []types.Filter{clusterFilter(cluster), filter("vpc-id", vpcID)}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, call{op: "DescribeSubnets", object: fmt.Sprintf("subnets of cluster %q", cluster)}.classify(err)
		}
		for _, s := range page.Subnets {
			out[tagValue(s.Tags, "Name")] = subnetRef{id: aws.ToString(s.SubnetId), zone: aws.ToString(s.AvailabilityZone), cidr: aws.ToString(s.CidrBlock)}
		}
	}
	return out, nil
}

// ensureInternetAccess gives the subnets a route to an internet gateway,
// the path admins (or a bastion) use to reach nodes.
func (c *Cloud) ensureInternetAccess(ctx context.Context, req clouds.NetworkRequest, vpcID string, subnets []subnetRef) error {
	igwName := req.Cluster + "-" + nameIGW
	igws, err := c.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []types.Filter{clusterFilter(req.Cluster)}})
	if err != nil {
		return call{op: "DescribeInternetGateways", object: fmt.Sprintf("internet gateway %q", igwName)}.classify(err)
	}
	var igwID string
	attached := false
	for _, g := range igws.InternetGateways {
		for _, a := range g.Attachments {
			if aws.ToString(a.VpcId) == vpcID {
				igwID, attached = aws.ToString(g.InternetGatewayId), true
			}
		}
		if igwID == "" && len(g.Attachments) == 0 {
			igwID = aws.ToString(g.InternetGatewayId)
		}
	}
	if igwID == "" {
		out, err := c.ec2.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{TagSpecifications: c.tagSpec(types.ResourceTypeInternetGateway, nil, req.Cluster, igwName)})
		if err != nil {
			return call{op: "CreateInternetGateway", object: fmt.Sprintf("internet gateway %q", igwName)}.classify(err)
		}
		igwID = aws.ToString(out.InternetGateway.InternetGatewayId)
	}
	if !attached {
		_, err := c.ec2.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(igwID), VpcId: aws.String(vpcID)})
		if err != nil && !hasCode(err, "Resource.AlreadyAssociated") {
			return call{op: "AttachInternetGateway", object: fmt.Sprintf("internet gateway %q", igwName)}.classify(err)
		}
	}
	rtName := req.Cluster + "-" + nameRouteTable
	rts, err := c.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{clusterFilter(req.Cluster), filter("vpc-id", vpcID)}})
	if err != nil {
		return call{op: "DescribeRouteTables", object: fmt.Sprintf("route table %q", rtName)}.classify(err)
	}
	var rt *types.RouteTable
	if len(rts.RouteTables) > 0 {
		rt = &rts.RouteTables[0]
	} else {
		out, err := c.ec2.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(vpcID), TagSpecifications: c.tagSpec(types.ResourceTypeRouteTable, nil, req.Cluster, rtName)})
		if err != nil {
			return call{op: "CreateRouteTable", object: fmt.Sprintf("route table %q", rtName)}.classify(err)
		}
		rt = out.RouteTable
	}
	hasDefault := slices.ContainsFunc(rt.Routes, func(r types.Route) bool {
		return aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" && aws.ToString(r.GatewayId) == igwID
	})
	if !hasDefault {
		_, err := c.ec2.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTableId, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: aws.String(igwID)})
		if err != nil {
			return call{op: "CreateRoute", object: fmt.Sprintf("default route of %q", rtName)}.classify(err)
		}
	}
	for _, s := range subnets {
		if slices.ContainsFunc(rt.Associations, func(a types.RouteTableAssociation) bool { return aws.ToString(a.SubnetId) == s.id }) {
			continue
		}
		_, err := c.ec2.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTableId, SubnetId: aws.String(s.id)})
		if err != nil && !hasCode(err, "Resource.AlreadyAssociated") {
			return call{op: "AssociateRouteTable", object: fmt.Sprintf("route table %q with subnet %s", rtName, s.id)}.classify(err)
		}
	}
	return nil
}

// rule is one ingress permission: a protocol, a port range and a source,
// a CIDR or fromGroupItself.
type rule struct {
	proto    string
	from, to int32
	cidr     string
	why      string
}

// fromGroupItself as a rule's source admits the members of the rule's own
// security group (a self-referencing group pair).
const fromGroupItself = "self"

// controlPlaneRules opens the API server to admins and nodes, the kubelet
// and VXLAN to nodes, etcd to the control plane's own group only (a worker
// has no business with etcd), and SSH to admins.
// "The cluster" is nodes: the node CIDR, or an existing network's subnet
// ranges. Pod traffic between nodes is VXLAN from node addresses, and
// pods reaching the API server are masqueraded.
func controlPlaneRules(req clouds.NetworkRequest, nodes []string) []rule {
	rs := []rule{{"tcp", 2379, 2380, fromGroupItself, "etcd between control-plane nodes"}}
	for _, n := range nodes {
		rs = append(rs,
			rule{"tcp", 6443, 6443, n, "Kubernetes API from nodes"},
			rule{"tcp", 10250, 10250, n, "kubelet API"},
			rule{"udp", 4789, 4789, n, "VXLAN overlay"})
		rs = append(rs, nodePortRules(req, n)...)
	}
	for _, a := range req.AdminCIDRs {
		rs = append(rs, rule{"tcp", 6443, 6443, a, "Kubernetes API from admins"}, rule{"tcp", 22, 22, a, "SSH from admins"})
	}
	return rs
}

// workerRules opens the kubelet and VXLAN to nodes, SSH (Linux) and WinRM
// over HTTPS (Windows) to admins.
func workerRules(req clouds.NetworkRequest, nodes []string) []rule {
	var rs []rule
	for _, n := range nodes {
		rs = append(rs, rule{"tcp", 10250, 10250, n, "kubelet API"}, rule{"udp", 4789, 4789, n, "VXLAN overlay"})
		rs = append(rs, nodePortRules(req, n)...)
	}
	for _, a := range req.AdminCIDRs {
		rs = append(rs, rule{"tcp", 22, 22, a, "SSH from admins"}, rule{"tcp", 5986, 5986, a, "WinRM over HTTPS from admins"})
	}
	return rs
}

// nodePortRules opens the request's node-to-node TCP ports to nodes.
func nodePortRules(req clouds.NetworkRequest, nodes string) []rule {
	var rs []rule
	for _, p := range req.NodeTCPPorts {
		rs = append(rs, rule{"tcp", int32(p), int32(p), nodes, "between nodes (the pod network's agents)"})
	}
	return rs
}

func roleGroupDescription(cluster, role string) string {
	return fmt.Sprintf("mixedk8s %s nodes of cluster %s", role, cluster)
}

// ensureGroup creates or adopts the security group <cluster>-<what> in
// vpcID, adds the rules it lacks and revokes those no longer wanted (an
// earlier release's, a removed admin CIDR), so the group converges.
func (c *Cloud) ensureGroup(ctx context.Context, cluster, vpcID, what, description string, rules []rule) (string, error) {
	name := cluster + "-" + what
	object := fmt.Sprintf("security group %q", name)
	out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", vpcID), filter("group-name", name)}})
	if err != nil {
		return "", call{op: "DescribeSecurityGroups", object: object}.classify(err)
	}
	var id string
	var have []types.IpPermission
	if len(out.SecurityGroups) > 0 {
		id, have = aws.ToString(out.SecurityGroups[0].GroupId), out.SecurityGroups[0].IpPermissions
	} else {
		res, err := c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), VpcId: aws.String(vpcID),
			Description:       aws.String(description),
			TagSpecifications: c.tagSpec(types.ResourceTypeSecurityGroup, nil, cluster, name)})
		if err != nil && hasCode(err, "InvalidGroup.Duplicate") {
			return c.ensureGroup(ctx, cluster, vpcID, what, description, rules) // created by a call whose reply was lost
		}
		if err != nil {
			return "", call{op: "CreateSecurityGroup", object: object}.classify(err)
		}
		id = aws.ToString(res.GroupId)
	}
	var missing []types.IpPermission
	for _, r := range rules {
		present := slices.ContainsFunc(have, func(p types.IpPermission) bool {
			return aws.ToString(p.IpProtocol) == r.proto && aws.ToInt32(p.FromPort) == r.from && aws.ToInt32(p.ToPort) == r.to && hasSource(p, r.cidr, id)
		})
		if !present {
			missing = append(missing, r.permission(id))
		}
	}
	if err := c.revokeStale(ctx, id, object, have, rules); err != nil {
		return "", err
	}
	if len(missing) == 0 {
		return id, nil
	}
	_, err = c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: missing})
	if hasCode(err, "InvalidPermission.Duplicate") {
		// EC2 rejects the whole batch for one existing rule; add them one by one.
		for _, p := range missing {
			_, err := c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{p}})
			if err != nil && !hasCode(err, "InvalidPermission.Duplicate") {
				return "", call{op: "AuthorizeSecurityGroupIngress", object: object}.classify(err)
			}
		}
		return id, nil
	}
	if err != nil {
		return "", call{op: "AuthorizeSecurityGroupIngress", object: object}.classify(err)
	}
	return id, nil
}

// permission is the rule as EC2 takes it, in group id.
func (r rule) permission(id string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String(r.proto), FromPort: aws.Int32(r.from), ToPort: aws.Int32(r.to)}
	if r.cidr == fromGroupItself {
		p.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: aws.String(id), Description: aws.String(r.why)}}
	} else {
		p.IpRanges = []types.IpRange{{CidrIp: aws.String(r.cidr), Description: aws.String(r.why)}}
	}
	return p
}

// hasSource says whether p admits source (a CIDR, or fromGroupItself for group id).
func hasSource(p types.IpPermission, source, id string) bool {
	if source == fromGroupItself {
		return slices.ContainsFunc(p.UserIdGroupPairs, func(g types.UserIdGroupPair) bool { return aws.ToString(g.GroupId) == id })
	}
	return slices.ContainsFunc(p.IpRanges, func(ip types.IpRange) bool { return aws.ToString(ip.CidrIp) == source })
}

// revokeStale revokes, one source at a time, what group id admits and
// rules do not; a rule another run revoked first is gone already.
func (c *Cloud) revokeStale(ctx context.Context, id, object string, have []types.IpPermission, rules []rule) error {
	wanted := func(p types.IpPermission, source string) bool {
		return slices.ContainsFunc(rules, func(r rule) bool {
			return aws.ToString(p.IpProtocol) == r.proto && aws.ToInt32(p.FromPort) == r.from && aws.ToInt32(p.ToPort) == r.to && r.cidr == source
		})
	}
	var stale []types.IpPermission
	for _, p := range have {
		base := types.IpPermission{IpProtocol: p.IpProtocol, FromPort: p.FromPort, ToPort: p.ToPort}
		for _, ip := range p.IpRanges {
			if !wanted(p, aws.ToString(ip.CidrIp)) {
				s := base
				s.IpRanges = []types.IpRange{{CidrIp: ip.CidrIp}}
				stale = append(stale, s)
			}
		}
		for _, g := range p.UserIdGroupPairs {
			if aws.ToString(g.GroupId) != id || !wanted(p, fromGroupItself) {
				s := base
				s.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: g.GroupId}}
				stale = append(stale, s)
			}
		}
	}
	for _, s := range stale {
		_, err := c.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{s}})
		if err != nil && !hasCode(err, "InvalidPermission.NotFound") {
			return call{op: "RevokeSecurityGroupIngress", object: object}.classify(err)
		}
	}
	return nil
}

// FindNetwork implements clouds.Cloud.
func (c *Cloud) FindNetwork(ctx context.Context, cluster string) (clouds.Network, bool, error) {
	if c.existing() {
		return c.findInExisting(ctx, cluster)
	}
	vpcID, _, err := c.findVPC(ctx, cluster)
	if err != nil || vpcID == "" {
		return clouds.Network{}, false, err
	}
	n := clouds.Network{ID: vpcID}
	byName, err := c.findSubnets(ctx, cluster, vpcID)
	if err != nil {
		return clouds.Network{}, false, err
	}
	var subnets []subnetRef
	if len(c.cfg.Zones) == 0 {
		if s, ok := byName[cluster+"-subnet"]; ok {
			subnets = append(subnets, s)
		}
	}
	for _, z := range c.cfg.Zones {
		if s, ok := byName[cluster+"-"+z]; ok {
			subnets = append(subnets, s)
		}
	}
	if len(subnets) > 0 {
		n.SubnetID, n.SubnetIDs = subnets[0].id, subnetIDs(subnets)
		c.mu.Lock()
		c.subnets[cluster] = subnets
		c.mu.Unlock()
	}
	outdated := false
	if n.Firewalls, outdated, err = c.roleGroups(ctx, cluster, vpcID); err != nil || outdated {
		return clouds.Network{}, false, err
	}
	return n, true, nil
}

// roleGroups finds the cluster's role security groups in vpcID by tag and
// name, and reports a control-plane group whose etcd ports admit more than
// the group itself (an earlier release opened them to the node CIDR): the
// cluster's network is then reported missing, so the next Apply's
// EnsureNetwork revokes that rule.
func (c *Cloud) roleGroups(ctx context.Context, cluster, vpcID string) (fw clouds.RoleFirewalls, outdated bool, err error) {
	groups, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", vpcID), clusterFilter(cluster)}})
	if err != nil {
		return fw, false, call{op: "DescribeSecurityGroups", object: fmt.Sprintf("security groups of cluster %q", cluster)}.classify(err)
	}
	for _, g := range groups.SecurityGroups {
		switch aws.ToString(g.GroupName) {
		case cluster + "-" + nameControlPlane:
			fw.ControlPlane = aws.ToString(g.GroupId)
			outdated = etcdOpenBeyond(g)
		case cluster + "-" + nameWorker:
			fw.Worker = aws.ToString(g.GroupId)
		}
	}
	return fw, outdated, nil
}

// etcdOpenBeyond says whether group g admits etcd's ports (2379-2380) from
// a CIDR or another group, not only from its own members.
func etcdOpenBeyond(g types.SecurityGroup) bool {
	for _, p := range g.IpPermissions {
		proto := aws.ToString(p.IpProtocol)
		if (proto != "tcp" && proto != "-1") || (proto == "tcp" && (aws.ToInt32(p.ToPort) < 2379 || aws.ToInt32(p.FromPort) > 2380)) {
			continue
		}
		if len(p.IpRanges) > 0 || len(p.Ipv6Ranges) > 0 || slices.ContainsFunc(p.UserIdGroupPairs, func(u types.UserIdGroupPair) bool { return aws.ToString(u.GroupId) != aws.ToString(g.GroupId) }) {
			return true
		}
	}
	return false
}

// DeleteNetwork implements clouds.Cloud. Objects still in use (an instance
// shutting down) fail with DependencyViolation, a transient error: the
// caller retries once the instances are gone.
func (c *Cloud) DeleteNetwork(ctx context.Context, cluster string) error {
	vpcs, err := c.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{clusterFilter(cluster)}})
	if err != nil {
		return call{op: "DescribeVpcs", object: fmt.Sprintf("VPC of cluster %q", cluster)}.classify(err)
	}
	for _, v := range vpcs.Vpcs {
		if aws.ToString(v.VpcId) == c.cfg.VPCID {
			continue // an existing network is never the cluster's to delete, whatever its tags
		}
		if err := c.deleteVPC(ctx, cluster, aws.ToString(v.VpcId)); err != nil {
			return err
		}
	}
	if c.existing() {
		if err := c.deleteGroups(ctx, cluster, c.cfg.VPCID); err != nil {
			return err
		}
	}
	// Gateways left detached by an earlier, interrupted delete.
	igws, err := c.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []types.Filter{clusterFilter(cluster)}})
	if err != nil {
		return call{op: "DescribeInternetGateways", object: fmt.Sprintf("internet gateways of cluster %q", cluster)}.classify(err)
	}
	for _, g := range igws.InternetGateways {
		if err := c.deleteIGW(ctx, g); err != nil {
			return err
		}
	}
	c.mu.Lock()
	delete(c.subnets, cluster)
	c.mu.Unlock()
	return nil
}

// deleteGroups deletes the security groups in vpcID that carry the cluster's tag.
func (c *Cloud) deleteGroups(ctx context.Context, cluster, vpcID string) error {
	groups, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", vpcID), clusterFilter(cluster)}})
	if err != nil {
		return call{op: "DescribeSecurityGroups", object: fmt.Sprintf("security groups of VPC %s", vpcID)}.classify(err)
	}
	for _, g := range groups.SecurityGroups {
		if aws.ToString(g.GroupName) == "default" {
			continue
		}
		_, err := c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId})
		if err := ignoreNotFound(err); err != nil {
			return call{op: "DeleteSecurityGroup", object: fmt.Sprintf("security group %q (%s)", aws.ToString(g.GroupName), aws.ToString(g.GroupId))}.classify(err)
		}
	}
	return nil
}

func (c *Cloud) deleteVPC(ctx context.Context, cluster, vpcID string) error {
	inVPC := []types.Filter{filter("vpc-id", vpcID)}
	if err := c.deleteGroups(ctx, cluster, vpcID); err != nil {
		return err
	}
	subnets, err := c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: inVPC})
	if err != nil {
		return call{op: "DescribeSubnets", object: fmt.Sprintf("subnets of VPC %s", vpcID)}.classify(err)
	}
	for _, s := range subnets.Subnets {
		_, err := c.ec2.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: s.SubnetId})
		if err := ignoreNotFound(err); err != nil {
			return call{op: "DeleteSubnet", object: fmt.Sprintf("subnet %q (%s)", tagValue(s.Tags, "Name"), aws.ToString(s.SubnetId))}.classify(err)
		}
	}
	rts, err := c.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: inVPC})
	if err != nil {
		return call{op: "DescribeRouteTables", object: fmt.Sprintf("route tables of VPC %s", vpcID)}.classify(err)
	}
	for _, rt := range rts.RouteTables {
		if slices.ContainsFunc(rt.Associations, func(a types.RouteTableAssociation) bool { return aws.ToBool(a.Main) }) {
			continue // the main route table goes with the VPC
		}
		_, err := c.ec2.DeleteRouteTable(ctx, &ec2.DeleteRouteTableInput{RouteTableId: rt.RouteTableId})
		if err := ignoreNotFound(err); err != nil {
			return call{op: "DeleteRouteTable", object: fmt.Sprintf("route table %s", aws.ToString(rt.RouteTableId))}.classify(err)
		}
	}
	igws, err := c.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []types.Filter{filter("attachment.vpc-id", vpcID)}})
	if err != nil {
		return call{op: "DescribeInternetGateways", object: fmt.Sprintf("internet gateway of VPC %s", vpcID)}.classify(err)
	}
	for _, g := range igws.InternetGateways {
		if err := c.deleteIGW(ctx, g); err != nil {
			return err
		}
	}
	_, err = c.ec2.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(vpcID)})
	if err := ignoreNotFound(err); err != nil {
		return call{op: "DeleteVpc", object: fmt.Sprintf("VPC %s of cluster %q", vpcID, cluster)}.classify(err)
	}
	return nil
}

func (c *Cloud) deleteIGW(ctx context.Context, g types.InternetGateway) error {
	for _, a := range g.Attachments {
		_, err := c.ec2.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: g.InternetGatewayId, VpcId: a.VpcId})
		if err := ignoreNotFound(err); err != nil && !hasCode(err, "Gateway.NotAttached") {
			return call{op: "DetachInternetGateway", object: fmt.Sprintf("internet gateway %s", aws.ToString(g.InternetGatewayId))}.classify(err)
		}
	}
	_, err := c.ec2.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: g.InternetGatewayId})
	if err := ignoreNotFound(err); err != nil {
		return call{op: "DeleteInternetGateway", object: fmt.Sprintf("internet gateway %s", aws.ToString(g.InternetGatewayId))}.classify(err)
	}
	return nil
}

func hasCode(err error, codes ...string) bool {
	if err == nil {
		return false
	}
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}

func ignoreNotFound(err error) error {
	var ae interface{ ErrorCode() string }
	if err != nil && errors.As(err, &ae) && kindOfCode(ae.ErrorCode()) == clouds.KindNotFound {
		return nil
	}
	return err
}
