package gcp

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Existing network. With Config.Network and Config.Subnetwork the nodes go
// in a VPC network and subnetwork someone else owns: the cluster creates
// only its firewall rules in that network (marked as the cluster's,
// targeting its network tags), and its instances and load balancer in the
// subnetwork; DeleteNetwork deletes only those rules. The rules admit the
// subnetwork's range where a cluster-made network admits the node CIDR.
//
// Shared VPC. With Config.NetworkProject the network is a Shared VPC host
// project's and the cluster's project one of its service projects: the
// instances and the load balancer stay in the cluster's project and
// reference the host's subnetwork, while the firewall rules are made in
// the host project, where a Shared VPC network's rules live
// (https://cloud.google.com/vpc/docs/shared-vpc#firewall_rules_and_shared_vpc).
// The credentials then need compute.subnetworks.use on the subnetwork and
// the firewall permissions in the host project.

// Configuration fields the refusals name, as the provider spells them.
const (
	fieldNetwork        = "gcp.network"
	fieldSubnetwork     = "gcp.subnetwork"
	fieldNetworkProject = "gcp.network_project"
)

var _ clouds.Preflighter = (*Cloud)(nil)

// existing reports whether the cluster goes in an existing network.
func (c *Cloud) existing() bool { return c.cfg.Network != "" }

// netProject is the project of the network and subnetwork the cluster
// uses, and of its firewall rules.
func (c *Cloud) netProject() string {
	if c.cfg.NetworkProject != "" {
		return c.cfg.NetworkProject
	}
	return c.cfg.Project
}

// netName and subnetName are the network and subnetwork the cluster uses.
func (c *Cloud) netName(cluster string) string {
	if c.existing() {
		return c.cfg.Network
	}
	return networkName(cluster)
}

func (c *Cloud) subnetName(cluster string) string {
	if c.existing() {
		return c.cfg.Subnetwork
	}
	return subnetworkName(cluster)
}

// existingSubnetwork is the configured subnetwork's ranges.
type existingSubnetwork struct {
	prefix string
	// ranges are the primary range and the secondary ones.
	ranges []string
	// others are the ranges of the network's other subnetworks in the
	// region, by name: the VPC routes to each, so pods and Services must
	// stay out of them too.
	others map[string][]string
}

// inspectExisting reads the network and the subnetwork. A refusal is a
// *clouds.PreflightError naming the field; other errors mean Compute could
// not be asked.
func (c *Cloud) inspectExisting(ctx context.Context) (existingSubnetwork, error) {
	p := c.netProject()
	where := "project " + p
	if c.cfg.NetworkProject != "" {
		where = "the Shared VPC host project " + p + " (" + fieldNetworkProject + ")"
	}
	k := call{op: "networks.get", object: fmt.Sprintf("network %q", c.cfg.Network)}
	_, err := c.networks.Get(ctx, &computepb.GetNetworkRequest{Project: p, Network: c.cfg.Network}, c.retry())
	if ce := k.classify(err); clouds.KindOf(ce) == clouds.KindNotFound {
		fix := fmt.Sprintf("set gcp.network to a network of project %s (gcloud compute networks list --project %s)", p, p)
		if c.cfg.NetworkProject != "" {
			fix += fmt.Sprintf(", or gcp.network_project to the Shared VPC host project that has it (gcloud compute shared-vpc get-host-project %s)", c.cfg.Project)
		}
		return existingSubnetwork{}, c.refusal(fieldNetwork, k, fmt.Errorf("%s has no network %q", where, c.cfg.Network), fix)
	} else if ce != nil {
		return existingSubnetwork{}, ce
	}
	k = call{op: "subnetworks.get", object: fmt.Sprintf("subnetwork %q", c.cfg.Subnetwork)}
	sub, err := c.subnetworks.Get(ctx, &computepb.GetSubnetworkRequest{Project: p, Region: c.cfg.Region, Subnetwork: c.cfg.Subnetwork}, c.retry())
	list := fmt.Sprintf("gcloud compute networks subnets list --project %s --network %s --regions %s", p, c.cfg.Network, c.cfg.Region)
	if ce := k.classify(err); clouds.KindOf(ce) == clouds.KindNotFound {
		return existingSubnetwork{}, c.refusal(fieldSubnetwork, k, fmt.Errorf("region %s of project %s has no subnetwork %q", c.cfg.Region, p, c.cfg.Subnetwork),
			fmt.Sprintf("set gcp.subnetwork to a subnetwork of network %s in region %s (%s)", c.cfg.Network, c.cfg.Region, list))
	} else if ce != nil {
		return existingSubnetwork{}, ce
	}
	if got := path.Base(sub.GetNetwork()); got != c.cfg.Network {
		return existingSubnetwork{}, c.refusal(fieldSubnetwork, k, fmt.Errorf("subnetwork %s is in network %s, not in gcp.network %s", c.cfg.Subnetwork, got, c.cfg.Network),
			fmt.Sprintf("name a subnetwork of network %s (%s), or set gcp.network to %s", c.cfg.Network, list, got))
	}
	out := existingSubnetwork{prefix: sub.GetIpCidrRange(), ranges: subnetRanges(sub), others: map[string][]string{}}
	// The network's other subnetworks in the region (Network.subnetworks
	// lists every region's; the cluster's nodes live in this one).
	nw, err := c.networks.Get(ctx, &computepb.GetNetworkRequest{Project: p, Network: c.cfg.Network}, c.retry())
	if ce := (call{op: "networks.get", object: fmt.Sprintf("network %q", c.cfg.Network)}).classify(err); ce != nil {
		return existingSubnetwork{}, ce
	}
	for _, link := range nw.GetSubnetworks() {
		name, region := path.Base(link), path.Base(path.Dir(path.Dir(link)))
		if name == c.cfg.Subnetwork || region != c.cfg.Region {
			continue
		}
		k := call{op: "subnetworks.get", object: fmt.Sprintf("subnetwork %q", name)}
		other, err := c.subnetworks.Get(ctx, &computepb.GetSubnetworkRequest{Project: p, Region: region, Subnetwork: name}, c.retry())
		if ce := k.classify(err); ce != nil {
			return existingSubnetwork{}, ce
		}
		out.others[name] = subnetRanges(other)
	}
	return out, nil
}

// subnetRanges are a subnetwork's primary range and its secondary ones.
func subnetRanges(sub *computepb.Subnetwork) []string {
	out := []string{sub.GetIpCidrRange()}
	for _, r := range sub.GetSecondaryIpRanges() {
		out = append(out, r.GetIpCidrRange())
	}
	return out
}

func (c *Cloud) refusal(field string, k call, err error, fix string) *clouds.PreflightError {
	return &clouds.PreflightError{Field: field, Err: &clouds.Error{Kind: clouds.KindInvalid, Op: k.op, Object: k.object, Err: err, Fix: fix}}
}

// Preflight implements clouds.Preflighter: in an existing network, the
// network and the subnetwork must exist, the subnetwork in the region and
// in the network, and the pod and Service ranges must be outside the
// subnetwork's ranges. Two read calls; a cluster that makes its own
// network has nothing to check here.
func (c *Cloud) Preflight(ctx context.Context, req clouds.PreflightRequest) error {
	if !c.existing() || (!req.Network && !req.Instances && !req.LoadBalancer) {
		return nil
	}
	sub, err := c.inspectExisting(ctx)
	if err != nil {
		return err
	}
	if field, cidr, r, ok := req.OverlapOf(sub.ranges); ok {
		return c.refusal(field, call{op: "subnetworks.get", object: fmt.Sprintf("subnetwork %q", c.cfg.Subnetwork)},
			fmt.Errorf("%s %s overlaps the subnetwork's range %s", field, cidr, r),
			fmt.Sprintf("set %s to a range outside the subnetwork's %s", field, strings.Join(sub.ranges, ", ")))
	}
	for _, name := range slices.Sorted(maps.Keys(sub.others)) {
		if field, cidr, r, ok := req.OverlapOf(sub.others[name]); ok {
			return c.refusal(field, call{op: "subnetworks.get", object: fmt.Sprintf("subnetwork %q", name)},
				fmt.Errorf("%s %s overlaps range %s of subnetwork %s, which network %s routes to", field, cidr, r, name, c.cfg.Network),
				fmt.Sprintf("set %s to a range outside every subnetwork of network %s", field, c.cfg.Network))
		}
	}
	return nil
}
