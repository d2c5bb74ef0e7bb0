package provider

import (
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// networkAttrs are the IDs of the network objects the cluster uses, for
// other resources to refer to (a database's security group rule, a peering,
// a route), each in its cloud's own form.
type networkAttrs struct {
	NetworkID        types.String `tfsdk:"network_id"`
	SubnetIDs        types.List   `tfsdk:"subnet_ids"`
	SecurityGroupIDs types.List   `tfsdk:"security_group_ids"`
}

// Descriptions shared by the resource and the data source.
const (
	descNetworkID = "The network the nodes are in: the VPC ID on AWS (the cluster's own, or `aws.vpc_id`), the virtual network's resource ID on Azure, the VPC network's name on GCP. Null until the network exists."
	descSubnetIDs = "The subnets the nodes are in: subnet IDs on AWS (one per zone; `aws.subnet_ids` in an existing VPC), the subnet's resource ID on Azure, the subnetwork's name on GCP."
	descFirewalls = "The firewall objects the cluster made for its nodes, control plane's first: the security group IDs of the control-plane and worker nodes on AWS, " +
		"the network security groups' resource IDs on Azure, and on GCP the network tags its firewall rules target (`<name>-control-plane`, `<name>-worker`). " +
		"Another resource's rule that admits one of these admits that role's nodes."
)

// networkOf returns the attributes of n, all null while there is none.
func networkOf(n *clouds.Network) networkAttrs {
	if n == nil {
		return networkAttrs{types.StringNull(), types.ListNull(types.StringType), types.ListNull(types.StringType)}
	}
	subnets := n.SubnetIDs
	if len(subnets) == 0 && n.SubnetID != "" {
		subnets = []string{n.SubnetID}
	}
	var groups []string
	for _, g := range []string{n.Firewalls.ControlPlane, n.Firewalls.Worker} {
		if g != "" && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return networkAttrs{NetworkID: types.StringValue(n.ID), SubnetIDs: stringsValue(subnets), SecurityGroupIDs: stringsValue(groups)}
}

// stringsValue is a known list, empty for none.
func stringsValue(s []string) types.List {
	vs := make([]attr.Value, len(s))
	for i, v := range s {
		vs[i] = types.StringValue(v)
	}
	return types.ListValueMust(types.StringType, vs)
}

func unknownNetwork() networkAttrs {
	return networkAttrs{types.StringUnknown(), types.ListUnknown(types.StringType), types.ListUnknown(types.StringType)}
}
