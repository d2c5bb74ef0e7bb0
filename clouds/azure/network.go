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

// rule is one inbound NSG rule, from an address prefix or, with
// sourceASG, from the members of an application security group.
type rule struct {
	name      string
	proto     armnetwork.SecurityRuleProtocol
	ports     string
	source    string
	sourceASG string
}

// asgName is the application security group of the control-plane NICs:
// an NSG rule can name its members as a source where it cannot name
// another NSG's (https://learn.microsoft.com/azure/virtual-network/application-security-groups),
// so etcd's ports admit the control plane alone.
func asgName(cluster string) string { return cluster + "-cp-asg" }

// asgID is the resource ID of the cluster's application security group.
func (c *Cloud) asgID(cluster string) string {
	return c.networkID("applicationSecurityGroups", asgName(cluster))
}

// networkID is the resource ID of a Microsoft.Network resource of the cluster's group.
func (c *Cloud) networkID(typ, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/%s/%s", c.cfg.SubscriptionID, c.cfg.ResourceGroup, typ, name)
}

// controlPlaneRules and workerRules open what each role needs, as on the
// other clouds. Traffic inside the virtual network is already allowed by
// the NSG default rule AllowVnetInBound
// (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#default-security-rules);
// the node CIDR rules say it explicitly, so a deny-all policy added later does not cut the cluster.
func controlPlaneRules(req clouds.NetworkRequest, asgID string) []rule {
	rs := []rule{
		{name: "kube-api-nodes", proto: armnetwork.SecurityRuleProtocolTCP, ports: "6443", source: req.NodeCIDR},
		// The API load balancer's probe comes from the AzureLoadBalancer
		// service tag (168.63.129.16); the default rule AllowAzureLoadBalancerInBound
		// admits it too, this one keeps it when a deny-all is added
		// (https://learn.microsoft.com/azure/virtual-network/service-tags-overview#available-service-tags).
		{name: "kube-api-lb-probe", proto: armnetwork.SecurityRuleProtocolTCP, ports: "6443", source: "AzureLoadBalancer"},
		// etcd admits the control plane's NICs alone: the members of its application security group.
		{name: "etcd-control-plane", proto: armnetwork.SecurityRuleProtocolTCP, ports: "2379-2380", sourceASG: asgID},
		{name: "kubelet-nodes", proto: armnetwork.SecurityRuleProtocolTCP, ports: "10250", source: req.NodeCIDR},
		{name: "vxlan-nodes", proto: armnetwork.SecurityRuleProtocolUDP, ports: "4789", source: req.NodeCIDR},
	}
	rs = append(rs, nodePortRules(req)...)
	for i, a := range req.AdminCIDRs {
		rs = append(rs, rule{name: "kube-api-admin-" + strconv.Itoa(i), proto: armnetwork.SecurityRuleProtocolTCP, ports: "6443", source: a},
			rule{name: "ssh-admin-" + strconv.Itoa(i), proto: armnetwork.SecurityRuleProtocolTCP, ports: "22", source: a})
	}
	return rs
}

// nodePortRules opens the request's node-to-node TCP ports to the node CIDR.
func nodePortRules(req clouds.NetworkRequest) []rule {
	var rs []rule
	for _, p := range req.NodeTCPPorts {
		rs = append(rs, rule{name: "tcp-" + strconv.Itoa(p) + "-nodes", proto: armnetwork.SecurityRuleProtocolTCP, ports: strconv.Itoa(p), source: req.NodeCIDR})
	}
	return rs
}

func workerRules(req clouds.NetworkRequest) []rule {
	rs := []rule{
		{name: "kubelet-nodes", proto: armnetwork.SecurityRuleProtocolTCP, ports: "10250", source: req.NodeCIDR},
		{name: "vxlan-nodes", proto: armnetwork.SecurityRuleProtocolUDP, ports: "4789", source: req.NodeCIDR},
	}
	rs = append(rs, nodePortRules(req)...)
	for i, a := range req.AdminCIDRs {
		rs = append(rs, rule{name: "ssh-admin-" + strconv.Itoa(i), proto: armnetwork.SecurityRuleProtocolTCP, ports: "22", source: a},
			rule{name: "winrm-admin-" + strconv.Itoa(i), proto: armnetwork.SecurityRuleProtocolTCP, ports: "5986", source: a})
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

// ensureNSGs ensures both roles' NSGs, whose node rules admit
// req.NodeCIDR, and the control plane's application security group, which
// etcd's rule admits. Every control-plane NIC joins the group before the
// rule names it: a cluster an earlier release made admitted etcd from the
// node CIDR, and its members must keep reaching each other.
func (c *Cloud) ensureNSGs(ctx context.Context, req clouds.NetworkRequest) (clouds.RoleFirewalls, error) {
	if err := c.ensureASG(ctx, req.Cluster); err != nil {
		return clouds.RoleFirewalls{}, err
	}
	if err := c.joinControlPlaneNICs(ctx, req.Cluster); err != nil {
		return clouds.RoleFirewalls{}, err
	}
	cp, err := c.ensureNSG(ctx, req, clouds.RoleControlPlane, controlPlaneRules(req, c.asgID(req.Cluster)))
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
			Protocol: to(r.proto), Priority: to(int32(100 + 10*i)), SourcePortRange: to("*"),
			DestinationAddressPrefix: to("*"), DestinationPortRange: to(r.ports),
		}}
		if r.sourceASG != "" {
			out[i].Properties.SourceApplicationSecurityGroups = []*armnetwork.ApplicationSecurityGroup{{ID: to(r.sourceASG)}}
		} else {
			out[i].Properties.SourceAddressPrefix = to(r.source)
		}
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
				sameASGs(hp.SourceApplicationSecurityGroups, wp.SourceApplicationSecurityGroups) &&
				val(hp.DestinationPortRange) == val(wp.DestinationPortRange)
		})
		if !ok {
			return false
		}
	}
	return true
}

// sameASGs compares two lists of application security group references by ID.
func sameASGs(a, b []*armnetwork.ApplicationSecurityGroup) bool {
	ids := func(gs []*armnetwork.ApplicationSecurityGroup) []string {
		var out []string
		for _, g := range gs {
			if g != nil {
				out = append(out, strings.ToLower(val(g.ID)))
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(ids(a), ids(b))
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
// A network whose control-plane NSG an earlier release made is reported
// missing (findNSGs).
func (c *Cloud) FindNetwork(ctx context.Context, cluster string) (clouds.Network, bool, error) {
	if c.existing() {
		// The subnet is the owner's: the cluster's network is its NSGs there.
		n := clouds.Network{SubnetID: c.cfg.SubnetID}
		if i := strings.Index(strings.ToLower(c.cfg.SubnetID), "/subnets/"); i > 0 {
			n.ID = c.cfg.SubnetID[:i]
		}
		outdated, err := c.findNSGs(ctx, cluster, &n)
		if err != nil || outdated {
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
	outdated, err := c.findNSGs(ctx, cluster, &n)
	if err != nil || outdated {
		return clouds.Network{}, false, err
	}
	return n, true, nil
}

// findNSGs fills n's firewalls from one page of the group's NSGs, and
// reports a control-plane NSG an earlier release made, whose etcd rule
// admits the node CIDR: the cluster's network is then reported missing,
// so the next Apply's EnsureNetwork moves it to the application security
// group.
func (c *Cloud) findNSGs(ctx context.Context, cluster string, n *clouds.Network) (outdated bool, err error) {
	pager := c.nsgs.NewListPager(c.cfg.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotFound(err) {
			return false, nil // no resource group yet
		}
		if err != nil {
			return false, call{op: "NetworkSecurityGroups.List", object: fmt.Sprintf("network security groups of cluster %q", cluster)}.classify(err)
		}
		for _, g := range page.Value {
			switch {
			case !hasClusterTag(g.Tags, cluster):
			case val(g.Name) == nsgName(cluster, clouds.RoleControlPlane):
				n.Firewalls.ControlPlane = val(g.ID)
				outdated = !etcdByASG(g)
			case val(g.Name) == nsgName(cluster, clouds.RoleWorker):
				n.Firewalls.Worker = val(g.ID)
			}
		}
	}
	return outdated, nil
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
	// The NSG rule naming it is gone, and the NICs went with their VMs.
	if err := c.deleteASG(ctx, cluster); err != nil {
		return err
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

// ensureASG makes the control plane's application security group unless it exists.
func (c *Cloud) ensureASG(ctx context.Context, cluster string) error {
	name := asgName(cluster)
	object := fmt.Sprintf("application security group %q", name)
	got, err := c.asgs.Get(ctx, c.cfg.ResourceGroup, name, nil)
	switch {
	case err == nil && hasClusterTag(got.Tags, cluster):
		return nil
	case err != nil && !isNotFound(err):
		return call{op: "ApplicationSecurityGroups.Get", object: object}.classify(err)
	}
	k := call{op: "ApplicationSecurityGroups.CreateOrUpdate", object: object}
	poller, err := c.asgs.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, name, armnetwork.ApplicationSecurityGroup{
		Location: to(c.cfg.Location),
		Tags:     c.tags(cluster, TagRole, clouds.RoleControlPlane),
	}, nil)
	if err != nil {
		return k.classify(err)
	}
	_, err = poller.PollUntilDone(ctx, c.pollOptions())
	return k.classify(err)
}

// joinControlPlaneNICs puts each NIC of the group that carries the
// control-plane NSG, and is not yet a member, in the application security
// group, by a PUT of the NIC as read (its pools and address stay).
func (c *Cloud) joinControlPlaneNICs(ctx context.Context, cluster string) error {
	nsg := strings.ToLower("/" + nsgName(cluster, clouds.RoleControlPlane))
	asg := c.asgID(cluster)
	pager := c.nics.NewListPager(c.cfg.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotFound(err) {
			return nil // no group yet, so no NIC
		}
		if err != nil {
			return call{op: "NetworkInterfaces.List", object: fmt.Sprintf("the NICs of resource group %q", c.cfg.ResourceGroup)}.classify(err)
		}
		for _, n := range page.Value {
			p := n.Properties
			if p == nil || p.NetworkSecurityGroup == nil || !strings.HasSuffix(strings.ToLower(val(p.NetworkSecurityGroup.ID)), nsg) ||
				len(p.IPConfigurations) == 0 || p.IPConfigurations[0].Properties == nil || inASG(*n, asg) {
				continue
			}
			ipc := p.IPConfigurations[0].Properties
			ipc.ApplicationSecurityGroups = append(ipc.ApplicationSecurityGroups, &armnetwork.ApplicationSecurityGroup{ID: to(asg)})
			k := call{op: "NetworkInterfaces.CreateOrUpdate", object: fmt.Sprintf("NIC %q", val(n.Name))}
			poller, err := c.nics.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, val(n.Name), *n, nil)
			if err == nil {
				_, err = poller.PollUntilDone(ctx, c.pollOptions())
			}
			if err != nil {
				return k.classify(err)
			}
		}
	}
	return nil
}

// inASG reports whether the NIC's first IP configuration is a member of the group.
func inASG(n armnetwork.Interface, asg string) bool {
	p := n.Properties
	if p == nil || len(p.IPConfigurations) == 0 || p.IPConfigurations[0].Properties == nil {
		return false
	}
	return slices.ContainsFunc(p.IPConfigurations[0].Properties.ApplicationSecurityGroups, func(g *armnetwork.ApplicationSecurityGroup) bool {
		return g != nil && strings.EqualFold(val(g.ID), asg)
	})
}

// etcdByASG reports whether the NSG's etcd rule admits the application security group.
func etcdByASG(g *armnetwork.SecurityGroup) bool {
	if g.Properties == nil {
		return false
	}
	return slices.ContainsFunc(g.Properties.SecurityRules, func(r *armnetwork.SecurityRule) bool {
		return val(r.Name) == "etcd-control-plane" && r.Properties != nil && len(r.Properties.SourceApplicationSecurityGroups) > 0
	})
}

func (c *Cloud) deleteASG(ctx context.Context, cluster string) error {
	k := call{op: "ApplicationSecurityGroups.Delete", object: fmt.Sprintf("application security group %q", asgName(cluster))}
	poller, err := c.asgs.BeginDelete(ctx, c.cfg.ResourceGroup, asgName(cluster), nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, c.pollOptions())
	}
	if err != nil && !isNotFound(err) {
		return k.classify(err)
	}
	return nil
}
