package azure

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources/v4"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Names of the network objects.
func vnetName(cluster string) string { return cluster + "-vnet" }

// subnetName is the one subnet of the virtual network.
const subnetName = "nodes"

func nsgName(cluster, role string) string { return cluster + "-" + role + "-nsg" }

// rule is one inbound NSG rule.
type rule struct {
	name   string
	proto  armnetwork.SecurityRuleProtocol
	ports  string
	source string
}

// controlPlaneRules and workerRules open what each role needs, as on the
// other clouds. Traffic inside the virtual network is already allowed by
// the NSG default rule AllowVnetInBound
// (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#default-security-rules);
// the node CIDR rules say it explicitly, so a deny-all policy added later does not cut the cluster.
func controlPlaneRules(req clouds.NetworkRequest) []rule {
	rs := []rule{
		{"kube-api-nodes", armnetwork.SecurityRuleProtocolTCP, "6443", req.NodeCIDR},
		// The API load balancer's probe comes from the AzureLoadBalancer
		// service tag (168.63.129.16); the default rule AllowAzureLoadBalancerInBound
		// admits it too, this one keeps it when a deny-all is added
		// (https://learn.microsoft.com/azure/virtual-network/service-tags-overview#available-service-tags).
		{"kube-api-lb-probe", armnetwork.SecurityRuleProtocolTCP, "6443", "AzureLoadBalancer"},
		{"etcd-nodes", armnetwork.SecurityRuleProtocolTCP, "2379-2380", req.NodeCIDR},
		{"kubelet-nodes", armnetwork.SecurityRuleProtocolTCP, "10250", req.NodeCIDR},
		{"vxlan-nodes", armnetwork.SecurityRuleProtocolUDP, "4789", req.NodeCIDR},
	}
	rs = append(rs, nodePortRules(req)...)
	for i, a := range req.AdminCIDRs {
		rs = append(rs, rule{"kube-api-admin-" + strconv.Itoa(i), armnetwork.SecurityRuleProtocolTCP, "6443", a},
			rule{"ssh-admin-" + strconv.Itoa(i), armnetwork.SecurityRuleProtocolTCP, "22", a})
	}
	return rs
}

// nodePortRules opens the request's node-to-node TCP ports to the node CIDR.
func nodePortRules(req clouds.NetworkRequest) []rule {
	var rs []rule
	for _, p := range req.NodeTCPPorts {
		rs = append(rs, rule{"tcp-" + strconv.Itoa(p) + "-nodes", armnetwork.SecurityRuleProtocolTCP, strconv.Itoa(p), req.NodeCIDR})
	}
	return rs
}

func workerRules(req clouds.NetworkRequest) []rule {
	rs := []rule{
		{"kubelet-nodes", armnetwork.SecurityRuleProtocolTCP, "10250", req.NodeCIDR},
		{"vxlan-nodes", armnetwork.SecurityRuleProtocolUDP, "4789", req.NodeCIDR},
	}
	rs = append(rs, nodePortRules(req)...)
	for i, a := range req.AdminCIDRs {
		rs = append(rs, rule{"ssh-admin-" + strconv.Itoa(i), armnetwork.SecurityRuleProtocolTCP, "22", a},
			rule{"winrm-admin-" + strconv.Itoa(i), armnetwork.SecurityRuleProtocolTCP, "5986", a})
	}
	return rs
}

// EnsureNetwork implements clouds.Cloud: the resource group, the virtual
// network with its subnet, and one NSG per role. Each object is read
// first and written only when missing or different.
func (c *Cloud) EnsureNetwork(ctx context.Context, req clouds.NetworkRequest) (clouds.Network, error) {
	if c.existing() {
		return c.ensureExisting(ctx, req)
	}
	cidr, err := netip.ParsePrefix(req.NodeCIDR)
	if err != nil || !cidr.Addr().Is4() {
		return clouds.Network{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "VirtualNetworks.CreateOrUpdate", Object: fmt.Sprintf("virtual network %q", vnetName(req.Cluster)),
			Err: fmt.Errorf("node CIDR %q is not an IPv4 prefix", req.NodeCIDR), Fix: "set network.node_cidr to an IPv4 range such as 10.0.0.0/16"}
	}
	if err := c.ensureGroup(ctx, req.Cluster); err != nil {
		return clouds.Network{}, err
	}
	vnet, err := c.ensureVNet(ctx, req, cidr.Masked().String())
	if err != nil {
		return clouds.Network{}, err
	}
	fw, err := c.ensureNSGs(ctx, req)
	if err != nil {
		return clouds.Network{}, err
	}
	return clouds.Network{ID: val(vnet.ID), SubnetID: subnetID(vnet), Firewalls: fw}, nil
}

// ensureNSGs ensures both roles' NSGs, whose node rules admit req.NodeCIDR.
func (c *Cloud) ensureNSGs(ctx context.Context, req clouds.NetworkRequest) (clouds.RoleFirewalls, error) {
	cp, err := c.ensureNSG(ctx, req, clouds.RoleControlPlane, controlPlaneRules(req))
	if err != nil {
		return clouds.RoleFirewalls{}, err
	}
	worker, err := c.ensureNSG(ctx, req, clouds.RoleWorker, workerRules(req))
	if err != nil {
		return clouds.RoleFirewalls{}, err
	}
	return clouds.RoleFirewalls{ControlPlane: cp, Worker: worker}, nil
}

func subnetID(vnet armnetwork.VirtualNetwork) string {
	if vnet.Properties == nil {
		return ""
	}
	for _, s := range vnet.Properties.Subnets {
		if val(s.Name) == subnetName {
			return val(s.ID)
		}
	}
	return ""
}

// ensureGroup creates the resource group, tagged with the cluster, unless it exists.
func (c *Cloud) ensureGroup(ctx context.Context, cluster string) error {
	k := call{op: "ResourceGroups.CreateOrUpdate", object: fmt.Sprintf("resource group %q", c.cfg.ResourceGroup)}
	_, err := c.groups.Get(ctx, c.cfg.ResourceGroup, nil)
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return call{op: "ResourceGroups.Get", object: k.object}.classify(err)
	}
	_, err = c.groups.CreateOrUpdate(ctx, c.cfg.ResourceGroup, armresources.ResourceGroup{Location: to(c.cfg.Location), Tags: c.tags(cluster)}, nil)
	return k.classify(err)
}

func (c *Cloud) ensureVNet(ctx context.Context, req clouds.NetworkRequest, cidr string) (armnetwork.VirtualNetwork, error) {
	name := vnetName(req.Cluster)
	object := fmt.Sprintf("virtual network %q", name)
	got, err := c.vnets.Get(ctx, c.cfg.ResourceGroup, name, nil)
	switch {
	case err == nil && vnetMatches(got.VirtualNetwork, cidr) && hasClusterTag(got.Tags, req.Cluster):
		return got.VirtualNetwork, nil
	case err != nil && !isNotFound(err):
		return armnetwork.VirtualNetwork{}, call{op: "VirtualNetworks.Get", object: object}.classify(err)
	}
	want := armnetwork.VirtualNetwork{
		Location: to(c.cfg.Location),
		Tags:     c.tags(req.Cluster),
		Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: []*string{to(cidr)}},
			// The subnet rides in the VNet's PUT: a separate subnet PUT
			// would be removed again by the next VNet PUT that omits it.
			Subnets: []*armnetwork.Subnet{{Name: to(subnetName), Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to(cidr)}}},
		},
	}
	k := call{op: "VirtualNetworks.CreateOrUpdate", object: object}
	poller, err := c.vnets.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, name, want, nil)
	if err != nil {
		return armnetwork.VirtualNetwork{}, k.classify(err)
	}
	res, err := poller.PollUntilDone(ctx, c.pollOptions())
	if err != nil {
		return armnetwork.VirtualNetwork{}, k.classify(err)
	}
	return res.VirtualNetwork, nil
}

func vnetMatches(v armnetwork.VirtualNetwork, cidr string) bool {
	p := v.Properties
	if p == nil || p.AddressSpace == nil || len(p.AddressSpace.AddressPrefixes) != 1 || val(p.AddressSpace.AddressPrefixes[0]) != cidr {
		return false
	}
	return slices.ContainsFunc(p.Subnets, func(s *armnetwork.Subnet) bool {
		return val(s.Name) == subnetName && s.Properties != nil && val(s.Properties.AddressPrefix) == cidr
	})
}

func securityRules(rules []rule) []*armnetwork.SecurityRule {
	out := make([]*armnetwork.SecurityRule, len(rules))
	for i, r := range rules {
		out[i] = &armnetwork.SecurityRule{Name: to(r.name), Properties: &armnetwork.SecurityRulePropertiesFormat{
			Access: to(armnetwork.SecurityRuleAccessAllow), Direction: to(armnetwork.SecurityRuleDirectionInbound),
			Protocol: to(r.proto), Priority: to(int32(100 + 10*i)),
			SourceAddressPrefix: to(r.source), SourcePortRange: to("*"),
			DestinationAddressPrefix: to("*"), DestinationPortRange: to(r.ports),
		}}
	}
	return out
}

// rulesMatch compares the fields mixedk8s sets; ARM adds read-only ones.
func rulesMatch(have []*armnetwork.SecurityRule, want []*armnetwork.SecurityRule) bool {
	if len(have) != len(want) {
		return false
	}
	for _, w := range want {
		ok := slices.ContainsFunc(have, func(h *armnetwork.SecurityRule) bool {
			hp, wp := h.Properties, w.Properties
			return val(h.Name) == val(w.Name) && hp != nil &&
				val(hp.Access) == val(wp.Access) && val(hp.Direction) == val(wp.Direction) && val(hp.Protocol) == val(wp.Protocol) &&
				val(hp.Priority) == val(wp.Priority) && val(hp.SourceAddressPrefix) == val(wp.SourceAddressPrefix) &&
				val(hp.DestinationPortRange) == val(wp.DestinationPortRange)
		})
		if !ok {
			return false
		}
	}
	return true
}

func (c *Cloud) ensureNSG(ctx context.Context, req clouds.NetworkRequest, role string, rules []rule) (string, error) {
	name := nsgName(req.Cluster, role)
	object := fmt.Sprintf("network security group %q", name)
	want := securityRules(rules)
	got, err := c.nsgs.Get(ctx, c.cfg.ResourceGroup, name, nil)
	switch {
	case err == nil && got.Properties != nil && rulesMatch(got.Properties.SecurityRules, want) && hasClusterTag(got.Tags, req.Cluster):
		return val(got.ID), nil
	case err != nil && !isNotFound(err):
		return "", call{op: "NetworkSecurityGroups.Get", object: object}.classify(err)
	}
	k := call{op: "NetworkSecurityGroups.CreateOrUpdate", object: object}
	poller, err := c.nsgs.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, name, armnetwork.SecurityGroup{
		Location:   to(c.cfg.Location),
		Tags:       c.tags(req.Cluster, TagRole, role),
		Properties: &armnetwork.SecurityGroupPropertiesFormat{SecurityRules: want},
	}, nil)
	if err != nil {
		return "", k.classify(err)
	}
	res, err := poller.PollUntilDone(ctx, c.pollOptions())
	if err != nil {
		return "", k.classify(err)
	}
	return val(res.ID), nil
}

// FindNetwork implements clouds.Cloud with two reads, whatever the
// cluster's size: the virtual network, and one page of the group's NSGs.
func (c *Cloud) FindNetwork(ctx context.Context, cluster string) (clouds.Network, bool, error) {
	if c.existing() {
		// The subnet is the owner's: the cluster's network is its NSGs there.
		n := clouds.Network{SubnetID: c.cfg.SubnetID}
		if i := strings.Index(strings.ToLower(c.cfg.SubnetID), "/subnets/"); i > 0 {
			n.ID = c.cfg.SubnetID[:i]
		}
		if err := c.findNSGs(ctx, cluster, &n); err != nil {
			return clouds.Network{}, false, err
		}
		return n, n.Firewalls.ControlPlane != "" || n.Firewalls.Worker != "", nil
	}
	got, err := c.vnets.Get(ctx, c.cfg.ResourceGroup, vnetName(cluster), nil)
	if isNotFound(err) {
		return clouds.Network{}, false, nil
	}
	if err != nil {
		return clouds.Network{}, false, call{op: "VirtualNetworks.Get", object: fmt.Sprintf("virtual network %q", vnetName(cluster))}.classify(err)
	}
	if !hasClusterTag(got.Tags, cluster) {
		return clouds.Network{}, false, nil
	}
	n := clouds.Network{ID: val(got.ID), SubnetID: subnetID(got.VirtualNetwork)}
	if err := c.findNSGs(ctx, cluster, &n); err != nil {
		return clouds.Network{}, false, err
	}
	return n, true, nil
}

// findNSGs fills n's firewalls from one page of the group's NSGs.
func (c *Cloud) findNSGs(ctx context.Context, cluster string, n *clouds.Network) error {
	pager := c.nsgs.NewListPager(c.cfg.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotFound(err) {
			return nil // no resource group yet
		}
		if err != nil {
			return call{op: "NetworkSecurityGroups.List", object: fmt.Sprintf("network security groups of cluster %q", cluster)}.classify(err)
		}
		for _, g := range page.Value {
			switch {
			case !hasClusterTag(g.Tags, cluster):
			case val(g.Name) == nsgName(cluster, clouds.RoleControlPlane):
				n.Firewalls.ControlPlane = val(g.ID)
			case val(g.Name) == nsgName(cluster, clouds.RoleWorker):
				n.Firewalls.Worker = val(g.ID)
			}
		}
	}
	return nil
}

// DeleteNetwork implements clouds.Cloud: the NSGs and the virtual network,
// then the resource group when mixedk8s created it for this cluster (which
// also takes anything of the cluster left in it). A NIC still using them
// makes the delete fail with a transient error until its VM is gone.
func (c *Cloud) DeleteNetwork(ctx context.Context, cluster string) error {
	group, err := c.groups.Get(ctx, c.cfg.ResourceGroup, nil)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return call{op: "ResourceGroups.Get", object: fmt.Sprintf("resource group %q", c.cfg.ResourceGroup)}.classify(err)
	}
	// Never the group the existing subnet's network is in.
	if hasClusterTag(group.Tags, cluster) && !strings.EqualFold(c.subnetGroup(), c.cfg.ResourceGroup) {
		k := call{op: "ResourceGroups.Delete", object: fmt.Sprintf("resource group %q", c.cfg.ResourceGroup)}
		poller, err := c.groups.BeginDelete(ctx, c.cfg.ResourceGroup, nil)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return k.classify(err)
		}
		_, err = poller.PollUntilDone(ctx, c.pollOptions())
		if isNotFound(err) {
			return nil
		}
		return k.classify(err)
	}
	for _, role := range []string{clouds.RoleControlPlane, clouds.RoleWorker} {
		name := nsgName(cluster, role)
		k := call{op: "NetworkSecurityGroups.Delete", object: fmt.Sprintf("network security group %q", name)}
		poller, err := c.nsgs.BeginDelete(ctx, c.cfg.ResourceGroup, name, nil)
		if err == nil {
			_, err = poller.PollUntilDone(ctx, c.pollOptions())
		}
		if err != nil && !isNotFound(err) {
			return k.classify(err)
		}
	}
	if c.existing() {
		return nil // the virtual network is the owner's
	}
	k := call{op: "VirtualNetworks.Delete", object: fmt.Sprintf("virtual network %q", vnetName(cluster))}
	poller, err := c.vnets.BeginDelete(ctx, c.cfg.ResourceGroup, vnetName(cluster), nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, c.pollOptions())
	}
	if err != nil && !isNotFound(err) {
		return k.classify(err)
	}
	return nil
}
