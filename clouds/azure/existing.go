package azure

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Existing network. With Config.SubnetID the nodes go in a subnet someone
// else owns: the cluster creates its resource group (when missing) and its
// two network security groups there, joins each NIC to the subnet, and
// creates no virtual network; DeleteNetwork deletes only the NSGs (and the
// resource group when the cluster created it and the subnet is not in it).
// The subnet's own NSG and route table, if any, are the owner's: they
// apply on top of the NIC's NSG
// (https://learn.microsoft.com/azure/virtual-network/network-security-group-how-it-works).
// The node rules admit the subnet's range where a cluster-made network
// admits the node CIDR.

const fieldSubnet = "azure.subnet_id"

// existing reports whether the cluster goes in an existing subnet.
func (c *Cloud) existing() bool { return c.cfg.SubnetID != "" }

// existingSubnet is the configured subnet as ARM describes it.
type existingSubnet struct {
	id, vnetID string
	// prefix is the subnet's IPv4 range; vnetPrefixes the virtual network's.
	prefix       string
	vnetPrefixes []string
}

// inspectExisting reads the subnet and its virtual network. A refusal is a
// *clouds.PreflightError at azure.subnet_id; other errors mean ARM could
// not be asked.
func (c *Cloud) inspectExisting(ctx context.Context) (existingSubnet, error) {
	id := c.cfg.SubnetID
	rid, err := arm.ParseResourceID(id)
	if err != nil || !strings.EqualFold(rid.ResourceType.String(), "Microsoft.Network/virtualNetworks/subnets") || rid.Parent == nil {
		return existingSubnet{}, invalidSubnet("Subnets.Get", id, fmt.Errorf("%q is not a subnet's resource ID", id),
			"use the ID az network vnet subnet show --query id prints")
	}
	vnet := rid.Parent
	got, err := c.vnets.Get(ctx, vnet.ResourceGroupName, vnet.Name, nil)
	if status, _, ok := responseCode(err); ok && status == http.StatusNotFound {
		return existingSubnet{}, invalidSubnet("VirtualNetworks.Get", id, fmt.Errorf("virtual network %s of resource group %s does not exist in subscription %s", vnet.Name, vnet.ResourceGroupName, vnet.SubscriptionID),
			fmt.Sprintf("set azure.subnet_id to a subnet of a virtual network in location %s (az network vnet list --query '[].subnets[].id')", c.cfg.Location))
	}
	if status, code, ok := responseCode(err); ok && status == http.StatusForbidden {
		// The subnet's network may sit in a group the credentials hold no
		// role on; its read is checked there, as its join is (checkJoin).
		return existingSubnet{}, refusal(fieldSubnet, code, "VirtualNetworks.Get", "virtual network "+vnet.String(),
			fmt.Sprintf("grant the credentials in use Network Contributor (or Reader and the subnet's join) on virtual network %s or resource group %s (az role assignment create --role \"Network Contributor\" --scope %s), or set azure.subnet_id to a subnet they can read",
				vnet.Name, vnet.ResourceGroupName, vnet.String()),
			fmt.Errorf("the credentials in use may not perform Microsoft.Network/virtualNetworks/read on virtual network %s", vnet.Name))
	}
	if err != nil {
		return existingSubnet{}, call{op: "VirtualNetworks.Get", object: fmt.Sprintf("virtual network %q", vnet.Name)}.classify(err)
	}
	v := got.VirtualNetwork
	// A NIC joins a subnet of its own location only
	// (https://learn.microsoft.com/azure/virtual-network/virtual-network-network-interface#constraints).
	if loc := val(v.Location); !strings.EqualFold(loc, c.cfg.Location) {
		return existingSubnet{}, invalidSubnet("VirtualNetworks.Get", id, fmt.Errorf("virtual network %s is in location %s, the cluster in %s", vnet.Name, loc, c.cfg.Location),
			fmt.Sprintf("use a subnet of a virtual network in %s, or set azure.location to %s", c.cfg.Location, loc))
	}
	out := existingSubnet{id: id, vnetID: val(v.ID)}
	if v.Properties != nil && v.Properties.AddressSpace != nil {
		for _, p := range v.Properties.AddressSpace.AddressPrefixes {
			out.vnetPrefixes = append(out.vnetPrefixes, val(p))
		}
	}
	var subnet *armnetwork.Subnet
	if v.Properties != nil {
		for _, s := range v.Properties.Subnets {
			if strings.EqualFold(val(s.Name), rid.Name) {
				subnet = s
			}
		}
	}
	if subnet == nil || subnet.Properties == nil {
		return existingSubnet{}, invalidSubnet("VirtualNetworks.Get", id, fmt.Errorf("virtual network %s has no subnet %s", vnet.Name, rid.Name),
			fmt.Sprintf("use one of the subnets of %s (az network vnet subnet list -g %s --vnet-name %s --query '[].id')", vnet.Name, vnet.ResourceGroupName, vnet.Name))
	}
	out.id, out.prefix = val(subnet.ID), val(subnet.Properties.AddressPrefix)
	if _, err := netip.ParsePrefix(out.prefix); err != nil {
		return existingSubnet{}, invalidSubnet("VirtualNetworks.Get", id, fmt.Errorf("subnet %s has no single IPv4 address prefix (%q)", rid.Name, out.prefix),
			"use a subnet with one IPv4 address prefix")
	}
	return out, nil
}

func invalidSubnet(op, id string, err error, fix string) *clouds.PreflightError {
	return &clouds.PreflightError{Field: fieldSubnet, Err: &clouds.Error{Kind: clouds.KindInvalid, Op: op, Object: "subnet " + id, Err: err, Fix: fix}}
}

// checkApart refuses a pod or Service range that overlaps the virtual network.
func (s existingSubnet) checkApart(req clouds.PreflightRequest) error {
	if field, cidr, v, ok := req.OverlapOf(s.vnetPrefixes); ok {
		return &clouds.PreflightError{Field: field, Err: &clouds.Error{Kind: clouds.KindInvalid, Op: "VirtualNetworks.Get", Object: "virtual network " + s.vnetID,
			Err: fmt.Errorf("%s %s overlaps the virtual network's range %s", field, cidr, v),
			Fix: fmt.Sprintf("set %s to a range outside the virtual network's %s", field, strings.Join(s.vnetPrefixes, ", "))}}
	}
	return nil
}

// ensureExisting is EnsureNetwork in an existing subnet: the resource
// group and the two NSGs, whose node rules admit the subnet's range.
func (c *Cloud) ensureExisting(ctx context.Context, req clouds.NetworkRequest) (clouds.Network, error) {
	sub, err := c.inspectExisting(ctx)
	if pe, ok := clouds.AsPreflightError(err); ok {
		return clouds.Network{}, pe.Err
	}
	if err != nil {
		return clouds.Network{}, err
	}
	if err := c.ensureGroup(ctx, req.Cluster); err != nil {
		return clouds.Network{}, err
	}
	req.NodeCIDR = sub.prefix
	fw, err := c.ensureNSGs(ctx, req)
	if err != nil {
		return clouds.Network{}, err
	}
	return clouds.Network{ID: sub.vnetID, SubnetID: sub.id, Firewalls: fw}, nil
}

// subnetGroup is the resource group of the configured subnet's virtual network.
func (c *Cloud) subnetGroup() string {
	if rid, err := arm.ParseResourceID(c.cfg.SubnetID); err == nil && rid.Parent != nil {
		return rid.Parent.ResourceGroupName
	}
	return ""
}
