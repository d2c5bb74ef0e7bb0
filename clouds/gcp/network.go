package gcp

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Object names of a cluster's network. Compute networks, subnetworks and
// firewalls take no labels, so their names are the cluster's handle on them.
func networkName(cluster string) string    { return cluster + "-network" }
func subnetworkName(cluster string) string { return cluster + "-nodes" }

// roleTag is the network tag of a cluster's instances of a role: firewall
// rules aim at instances by it.
func roleTag(cluster, role string) string {
	if role == clouds.RoleControlPlane {
		return cluster + "-control-plane"
	}
	return cluster + "-worker"
}

// marker is the description that says an object belongs to the cluster;
// an object of the same name without it is someone else's and is left alone.
func marker(cluster string) string { return LabelCluster + "=" + cluster }

// requestNamespace roots every requestId: Compute wants a non-zero UUID.
var requestNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://mixedk8s.io/clouds/gcp/request-id"))

// requestID is the requestId of one intent: the same cluster, object and
// generation (or object ID) always give the same UUIDv5, so a call retried
// after a lost reply is recognised by Compute and answered with the first
// call's operation (computepb InsertInstanceRequest.request_id: "the server
// will know to ignore the request if it has already been completed").
func requestID(cluster, object string, generation uint64) string {
	return uuid.NewSHA1(requestNamespace, []byte(cluster+"\x00"+object+"\x00"+strconv.FormatUint(generation, 10))).String()
}

// firewallRule is one firewall rule the cluster needs.
type firewallRule struct {
	name    string
	sources []string
	// sourceTags admit instances by network tag, as sources admit ranges.
	sourceTags []string
	targets    []string
	allowed    []*computepb.Allowed
}

func allow(proto string, ports ...string) *computepb.Allowed {
	return &computepb.Allowed{IPProtocol: &proto, Ports: ports}
}

// rules are the cluster's firewall rules: everything between nodes and
// pods (the overlay, kubelet, the API server, and so any NodeTCPPorts) but
// etcd, open between control-plane nodes only, and per role only what the
// admin CIDRs need: SSH and WinRM everywhere, the API server on the
// control plane.
func rules(req clouds.NetworkRequest) []firewallRule {
	cp, worker := roleTag(req.Cluster, clouds.RoleControlPlane), roleTag(req.Cluster, clouds.RoleWorker)
	internal := []string{req.NodeCIDR}
	if req.PodCIDR != "" {
		internal = append(internal, req.PodCIDR)
	}
	out := []firewallRule{{
		// Every TCP port but etcd's, which only the control plane's own tag reaches.
		name: req.Cluster + "-internal", sources: internal, targets: []string{cp, worker},
		allowed: []*computepb.Allowed{allow("tcp", "0-2378", "2381-65535"), allow("udp"), allow("icmp"), allow("ipip"), allow("esp")},
	}, {
		name: req.Cluster + "-etcd", sourceTags: []string{cp}, targets: []string{cp},
		allowed: []*computepb.Allowed{allow("tcp", "2379-2380")},
	}}
	if len(req.AdminCIDRs) > 0 {
		out = append(out,
			firewallRule{name: req.Cluster + "-admin-cp", sources: req.AdminCIDRs, targets: []string{cp}, allowed: []*computepb.Allowed{allow("tcp", "22", "5986", "6443")}},
			firewallRule{name: req.Cluster + "-admin-worker", sources: req.AdminCIDRs, targets: []string{worker}, allowed: []*computepb.Allowed{allow("tcp", "22", "5986")}},
		)
	}
	return out
}

// firewallNames are every rule name a cluster may have, for deletion.
func firewallNames(cluster string) []string {
	return []string{cluster + "-internal", cluster + "-etcd", cluster + "-admin-cp", cluster + "-admin-worker", healthRuleName(cluster)}
}

// EnsureNetwork implements clouds.Cluster: it adopts or creates the network,
// the subnetwork and the firewall rules, and patches a rule whose ranges or
// ports changed. A converged network costs reads only.
func (c *Cloud) EnsureNetwork(ctx context.Context, req clouds.NetworkRequest) (clouds.Network, error) {
	if !nameRE.MatchString(req.Cluster+"-admin-worker") || !nameRE.MatchString(roleTag(req.Cluster, clouds.RoleControlPlane)) {
		return clouds.Network{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "networks.insert", Object: fmt.Sprintf("network of cluster %q", req.Cluster),
			Err: fmt.Errorf("the cluster name makes Compute names that break RFC 1035 or exceed 63 characters"), Fix: "use a cluster name of lowercase letters, digits and dashes, at most 48 characters"}
	}
	if c.existing() {
		sub, err := c.inspectExisting(ctx)
		if pe, ok := clouds.AsPreflightError(err); ok {
			return clouds.Network{}, pe.Err
		}
		if err != nil {
			return clouds.Network{}, err
		}
		req.NodeCIDR = sub.prefix // the rules admit the subnetwork's range
	} else {
		if err := c.ensureVPC(ctx, req.Cluster); err != nil {
			return clouds.Network{}, err
		}
		if err := c.ensureSubnetwork(ctx, req); err != nil {
			return clouds.Network{}, err
		}
	}
	for _, r := range rules(req) {
		if err := c.ensureFirewall(ctx, req.Cluster, r); err != nil {
			return clouds.Network{}, err
		}
	}
	existing, err := c.existingFirewalls(ctx, req.Cluster)
	if err != nil {
		return clouds.Network{}, err
	}
	// Admin rules of a spec that no longer lists admin CIDRs.
	want := map[string]bool{healthRuleName(req.Cluster): true} // the load balancer's own
	for _, r := range rules(req) {
		want[r.name] = true
	}
	for _, fw := range existing {
		if !want[fw.GetName()] {
			if err := c.deleteFirewall(ctx, req.Cluster, fw); err != nil {
				return clouds.Network{}, err
			}
		}
	}
	return c.network(req.Cluster), nil
}

func (c *Cloud) network(cluster string) clouds.Network {
	return clouds.Network{
		ID:        c.netName(cluster),
		SubnetID:  c.subnetName(cluster),
		Firewalls: clouds.RoleFirewalls{ControlPlane: roleTag(cluster, clouds.RoleControlPlane), Worker: roleTag(cluster, clouds.RoleWorker)},
	}
}

func (c *Cloud) ensureVPC(ctx context.Context, cluster string) error {
	name := networkName(cluster)
	k := call{op: "networks.get", object: fmt.Sprintf("network %q", name)}
	for gen := uint64(1); gen <= maxGenerations; gen++ {
		got, err := c.networks.Get(ctx, &computepb.GetNetworkRequest{Project: c.cfg.Project, Network: name}, c.retry())
		if err == nil {
			if got.GetDescription() != marker(cluster) {
				return notOurs(k, "network", name)
			}
			return nil
		}
		if ce := k.classify(err); clouds.KindOf(ce) != clouds.KindNotFound {
			return ce
		}
		ins := call{op: "networks.insert", object: k.object}
		op, err := c.networks.Insert(ctx, &computepb.InsertNetworkRequest{
			Project:   c.cfg.Project,
			RequestId: proto.String(requestID(cluster, "network/"+name, gen)),
			NetworkResource: &computepb.Network{
				Name:                  proto.String(name),
				Description:           proto.String(marker(cluster)),
				AutoCreateSubnetworks: proto.Bool(false),
				RoutingConfig:         &computepb.NetworkRoutingConfig{RoutingMode: proto.String("REGIONAL")},
			},
		}, c.retry())
		if isCode(err, codeAlreadyExists) {
			continue // made by a racing call: read it again
		}
		if err != nil {
			return ins.classify(err)
		}
		if err := c.wait(ctx, op, ins); err != nil {
			return err
		}
		// The loop reads it back; a requestId that answered with an old,
		// since deleted network moves on to the next generation.
	}
	return generationsExhausted(k)
}

func (c *Cloud) ensureSubnetwork(ctx context.Context, req clouds.NetworkRequest) error {
	name := subnetworkName(req.Cluster)
	k := call{op: "subnetworks.get", object: fmt.Sprintf("subnetwork %q", name)}
	for gen := uint64(1); gen <= maxGenerations; gen++ {
		got, err := c.subnetworks.Get(ctx, &computepb.GetSubnetworkRequest{Project: c.cfg.Project, Region: c.cfg.Region, Subnetwork: name}, c.retry())
		if err == nil {
			if got.GetDescription() != marker(req.Cluster) {
				return notOurs(k, "subnetwork", name)
			}
			if got.GetIpCidrRange() != req.NodeCIDR {
				return &clouds.Error{Kind: clouds.KindInvalid, Op: "subnetworks.get", Object: k.object,
					Err: fmt.Errorf("the subnetwork has range %s, the spec asks for %s", got.GetIpCidrRange(), req.NodeCIDR),
					Fix: fmt.Sprintf("set node_cidr back to %s: a subnetwork's range cannot change while instances use it", got.GetIpCidrRange())}
			}
			return nil
		}
		if ce := k.classify(err); clouds.KindOf(ce) != clouds.KindNotFound {
			return ce
		}
		ins := call{op: "subnetworks.insert", object: k.object}
		op, err := c.subnetworks.Insert(ctx, &computepb.InsertSubnetworkRequest{
			Project:   c.cfg.Project,
			Region:    c.cfg.Region,
			RequestId: proto.String(requestID(req.Cluster, "subnetwork/"+name, gen)),
			SubnetworkResource: &computepb.Subnetwork{
				Name:                  proto.String(name),
				Description:           proto.String(marker(req.Cluster)),
				Network:               proto.String("projects/" + c.cfg.Project + "/global/networks/" + networkName(req.Cluster)),
				IpCidrRange:           proto.String(req.NodeCIDR),
				PrivateIpGoogleAccess: proto.Bool(true),
			},
		}, c.retry())
		if isCode(err, codeAlreadyExists) {
			continue
		}
		if err != nil {
			return ins.classify(err)
		}
		if err := c.wait(ctx, op, ins); err != nil {
			return err
		}
	}
	return generationsExhausted(k)
}

func (c *Cloud) ensureFirewall(ctx context.Context, cluster string, r firewallRule) error {
	k := call{op: "firewalls.get", object: fmt.Sprintf("firewall rule %q", r.name)}
	want := &computepb.Firewall{
		Name:         proto.String(r.name),
		Description:  proto.String(marker(cluster)),
		Network:      proto.String("projects/" + c.netProject() + "/global/networks/" + c.netName(cluster)),
		Direction:    proto.String("INGRESS"),
		SourceRanges: r.sources,
		SourceTags:   r.sourceTags,
		TargetTags:   r.targets,
		Allowed:      r.allowed,
	}
	for gen := uint64(1); gen <= maxGenerations; gen++ {
		got, err := c.firewalls.Get(ctx, &computepb.GetFirewallRequest{Project: c.netProject(), Firewall: r.name}, c.retry())
		if err == nil {
			if got.GetDescription() != marker(cluster) {
				return notOurs(k, "firewall rule", r.name)
			}
			if sameRule(got, want) {
				return nil
			}
			// Patch sets the whole desired rule: repeating it is harmless,
			// so it needs no requestId to be safe to retry.
			p := call{op: "firewalls.patch", object: k.object}
			op, err := c.firewalls.Patch(ctx, &computepb.PatchFirewallRequest{Project: c.netProject(), Firewall: r.name, FirewallResource: want}, c.retry())
			if err != nil {
				return p.classify(err)
			}
			return c.wait(ctx, op, p)
		}
		if ce := k.classify(err); clouds.KindOf(ce) != clouds.KindNotFound {
			return ce
		}
		ins := call{op: "firewalls.insert", object: k.object}
		op, err := c.firewalls.Insert(ctx, &computepb.InsertFirewallRequest{
			Project: c.netProject(), RequestId: proto.String(requestID(cluster, "firewall/"+r.name, gen)), FirewallResource: want,
		}, c.retry())
		if isCode(err, codeAlreadyExists) {
			continue
		}
		if err != nil {
			return ins.classify(err)
		}
		if err := c.wait(ctx, op, ins); err != nil {
			return err
		}
	}
	return generationsExhausted(k)
}

func sameRule(got, want *computepb.Firewall) bool {
	norm := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	allowed := func(a []*computepb.Allowed) []string {
		var out []string
		for _, x := range a {
			out = append(out, x.GetIPProtocol()+":"+strings.Join(norm(x.GetPorts()), ","))
		}
		return norm(out)
	}
	return slices.Equal(norm(got.GetSourceRanges()), norm(want.GetSourceRanges())) &&
		slices.Equal(norm(got.GetSourceTags()), norm(want.GetSourceTags())) &&
		slices.Equal(norm(got.GetTargetTags()), norm(want.GetTargetTags())) &&
		slices.Equal(allowed(got.GetAllowed()), allowed(want.GetAllowed())) &&
		!got.GetDisabled()
}

// existingFirewalls returns the cluster's rules among the names it may use.
func (c *Cloud) existingFirewalls(ctx context.Context, cluster string) ([]*computepb.Firewall, error) {
	var out []*computepb.Firewall
	for _, name := range firewallNames(cluster) {
		k := call{op: "firewalls.get", object: fmt.Sprintf("firewall rule %q", name)}
		fw, err := c.firewalls.Get(ctx, &computepb.GetFirewallRequest{Project: c.netProject(), Firewall: name}, c.retry())
		if ce := k.classify(err); clouds.KindOf(ce) == clouds.KindNotFound {
			continue
		} else if ce != nil {
			return nil, ce
		}
		if fw.GetDescription() == marker(cluster) {
			out = append(out, fw)
		}
	}
	return out, nil
}

func (c *Cloud) deleteFirewall(ctx context.Context, cluster string, fw *computepb.Firewall) error {
	k := call{op: "firewalls.delete", object: fmt.Sprintf("firewall rule %q", fw.GetName())}
	op, err := c.firewalls.Delete(ctx, &computepb.DeleteFirewallRequest{
		Project: c.netProject(), Firewall: fw.GetName(), RequestId: proto.String(requestID(cluster, "delete/firewall/"+fw.GetName(), fw.GetId())),
	}, c.retry())
	if isCode(err, codeNotFound) {
		return nil
	}
	if err != nil {
		return k.classify(err)
	}
	return c.wait(ctx, op, k)
}

// FindNetwork implements clouds.Cloud.
func (c *Cloud) FindNetwork(ctx context.Context, cluster string) (clouds.Network, bool, error) {
	if c.existing() {
		// The network is the owner's: the cluster's share is its firewall rules.
		fws, err := c.existingFirewalls(ctx, cluster)
		if err != nil || len(fws) == 0 {
			return clouds.Network{}, false, err
		}
		return c.network(cluster), true, nil
	}
	name := networkName(cluster)
	k := call{op: "networks.get", object: fmt.Sprintf("network %q", name)}
	got, err := c.networks.Get(ctx, &computepb.GetNetworkRequest{Project: c.cfg.Project, Network: name}, c.retry())
	if ce := k.classify(err); clouds.KindOf(ce) == clouds.KindNotFound {
		return clouds.Network{}, false, nil
	} else if ce != nil {
		return clouds.Network{}, false, ce
	}
	if got.GetDescription() != marker(cluster) {
		return clouds.Network{}, false, nil
	}
	return c.network(cluster), true, nil
}

// DeleteNetwork implements clouds.Cloud: firewall rules, the subnetwork,
// then the network, each waited on. A network still used by instances
// fails with resourceInUseByAnotherResource, which is transient: the
// caller retries once the instances are gone.
func (c *Cloud) DeleteNetwork(ctx context.Context, cluster string) error {
	fws, err := c.existingFirewalls(ctx, cluster)
	if err != nil {
		return err
	}
	for _, fw := range fws {
		if err := c.deleteFirewall(ctx, cluster, fw); err != nil {
			return err
		}
	}
	if c.existing() {
		return nil // the network and the subnetwork are the owner's
	}
	sub := subnetworkName(cluster)
	k := call{op: "subnetworks.get", object: fmt.Sprintf("subnetwork %q", sub)}
	got, err := c.subnetworks.Get(ctx, &computepb.GetSubnetworkRequest{Project: c.cfg.Project, Region: c.cfg.Region, Subnetwork: sub}, c.retry())
	if ce := k.classify(err); ce != nil && clouds.KindOf(ce) != clouds.KindNotFound {
		return ce
	}
	if err == nil && got.GetDescription() == marker(cluster) {
		d := call{op: "subnetworks.delete", object: k.object}
		op, err := c.subnetworks.Delete(ctx, &computepb.DeleteSubnetworkRequest{Project: c.cfg.Project, Region: c.cfg.Region, Subnetwork: sub,
			RequestId: proto.String(requestID(cluster, "delete/subnetwork/"+sub, got.GetId()))}, c.retry())
		if err != nil && !isCode(err, codeNotFound) {
			return d.classify(err)
		}
		if err == nil {
			if err := c.wait(ctx, op, d); err != nil {
				return err
			}
		}
	}
	name := networkName(cluster)
	k = call{op: "networks.get", object: fmt.Sprintf("network %q", name)}
	nw, err := c.networks.Get(ctx, &computepb.GetNetworkRequest{Project: c.cfg.Project, Network: name}, c.retry())
	if ce := k.classify(err); clouds.KindOf(ce) == clouds.KindNotFound {
		return nil
	} else if ce != nil {
		return ce
	}
	if nw.GetDescription() != marker(cluster) {
		return nil
	}
	d := call{op: "networks.delete", object: k.object}
	op, err := c.networks.Delete(ctx, &computepb.DeleteNetworkRequest{Project: c.cfg.Project, Network: name,
		RequestId: proto.String(requestID(cluster, "delete/network/"+name, nw.GetId()))}, c.retry())
	if isCode(err, codeNotFound) {
		return nil
	}
	if err != nil {
		return d.classify(err)
	}
	return c.wait(ctx, op, d)
}

// maxGenerations bounds how often an insert's requestId moves on after
// Compute answered it with an operation whose object has since been deleted.
const maxGenerations = 32

func notOurs(k call, what, name string) error {
	return &clouds.Error{Kind: clouds.KindInvalid, Op: k.op, Object: k.object,
		Err: fmt.Errorf("a %s named %q exists in the project but its description does not mark it as the cluster's", what, name),
		Fix: fmt.Sprintf("rename the cluster, or delete the %s %q if nothing uses it", what, name)}
}

func generationsExhausted(k call) error {
	return &clouds.Error{Kind: clouds.KindTransient, Op: k.op, Object: k.object,
		Err: fmt.Errorf("%d inserts in a row were answered but the object is still missing", maxGenerations)}
}
