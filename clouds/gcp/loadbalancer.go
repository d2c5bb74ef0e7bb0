package gcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/proto"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// The cluster's API load balancer is a regional passthrough Network Load
// Balancer, the objects CAPG makes for its internal one
// (kubernetes-sigs/cluster-api-provider-gcp
// cloud/services/compute/loadbalancers/reconcile.go,
// createInternalLoadBalancer): a regional TCP health check, a regional
// backend service (CONNECTION balancing, as passthrough load balancers
// require) whose backends are one unmanaged instance group per zone holding
// the control-plane instances, a reserved regional address and a forwarding
// rule on the API port. Internal: an INTERNAL address in the cluster's
// subnetwork and INTERNAL backend service and forwarding rule. External: an
// EXTERNAL address and backend service-based external passthrough load
// balancer, Google's recommended form over target pools
// (https://cloud.google.com/load-balancing/docs/network/networklb-backend-service).
// The address is reserved first so that it survives a recreated
// forwarding rule: the API server certificate names it.
//
// All objects are named <cluster>-api (groups <cluster>-api-<zone>) and
// carry marker(cluster) as description; the forwarding rule and the
// address, the two that take labels, get the cluster's label through
// setLabels, as CAPG does ("Labels on ForwardingRules must be added after
// resource is created"). A firewall rule <cluster>-api-health admits
// Google's health-check probes to the control planes.

// Health check of the API backends: Compute's defaults (check every 5s,
// time out after 5s, 2 in a row to turn healthy or unhealthy,
// https://cloud.google.com/compute/docs/reference/rest/v1/regionHealthChecks),
// so a lost control plane leaves rotation in about ten seconds.
const (
	healthInterval  = 5
	healthTimeout   = 5
	healthThreshold = 2
)

// Health-check probe sources. Internal passthrough load balancers are
// probed from 35.191.0.0/16 and 130.211.0.0/22; external passthrough ones
// from 35.191.0.0/16, 209.85.152.0/22 and 209.85.204.0/22
// (https://cloud.google.com/load-balancing/docs/health-check-concepts#ip-ranges;
// CAPG's test template cluster-template-ci-with-firewall-rules.yaml lists all four).
var (
	probesInternal = []string{"35.191.0.0/16", "130.211.0.0/22"}
	probesExternal = []string{"35.191.0.0/16", "130.211.0.0/22", "209.85.152.0/22", "209.85.204.0/22"}
)

// Load-balancing schemes of a passthrough load balancer's backend service,
// forwarding rule and address type.
const (
	schemeInternal = "INTERNAL"
	schemeExternal = "EXTERNAL"
)

// gceName is <cluster>-<suffix>, or a cut of the cluster name with a hash
// of the whole when that would pass Compute's 63 characters, so two long
// cluster names never share a name.
func gceName(cluster, suffix string) string {
	name := cluster + "-" + suffix
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(cluster))
	h := hex.EncodeToString(sum[:])[:8]
	keep := strings.TrimRight(cluster[:max(1, 63-len(suffix)-len(h)-2)], "-")
	return keep + "-" + h + "-" + suffix
}

// lbName names the health check, backend service, address and forwarding rule.
func lbName(cluster string) string { return gceName(cluster, "api") }

// groupName names the zone's instance group of control planes.
func groupName(cluster, zone string) string { return gceName(cluster, "api-"+zone) }

// healthRuleName names the firewall rule that admits the probes.
func healthRuleName(cluster string) string { return gceName(cluster, "api-health") }

// link is a resource's path under the project, as bodies reference it;
// networks and subnetworks are the network project's (a Shared VPC host's).
func (c *Cloud) link(scope, kind, name string) string {
	project := c.cfg.Project
	if kind == "networks" || kind == "subnetworks" {
		project = c.netProject()
	}
	return "projects/" + project + "/" + scope + "/" + kind + "/" + name
}

func (c *Cloud) regionScope() string { return "regions/" + c.cfg.Region }

// relative strips the host of a selfLink: compare links by their path.
func relative(link string) string {
	if i := strings.Index(link, "projects/"); i >= 0 {
		return link[i:]
	}
	return link
}

// ensureObject gets an object and, while it is missing, inserts it with
// the next generation's requestId and waits, then reads it back: the same
// loop the network's objects use. get returns a *clouds.Error when the
// object exists but is not the cluster's or cannot serve.
func (c *Cloud) ensureObject(ctx context.Context, cluster, what, name, op string, get func() error, insert func(requestID string) (*compute.Operation, error)) error {
	k := call{op: op + ".get", object: fmt.Sprintf("%s %q", what, name)}
	for gen := uint64(1); gen <= maxGenerations; gen++ {
		err := get()
		if err == nil {
			return nil
		}
		var ce *clouds.Error
		if errors.As(err, &ce) {
			return err
		}
		if ce := k.classify(err); clouds.KindOf(ce) != clouds.KindNotFound {
			return ce
		}
		ins := call{op: op + ".insert", object: k.object}
		o, err := insert(requestID(cluster, op+"/"+name, gen))
		if isCode(err, codeAlreadyExists) {
			continue // made by a racing call: read it again
		}
		if err != nil {
			return ins.classify(err)
		}
		if p := o.Proto(); p.GetStatus() == computepb.Operation_DONE && opFailure(p) != nil {
			continue // a replay of an earlier failed insert (see insert in instances.go): try the next generation
		}
		if err := c.wait(ctx, o, ins); err != nil {
			return err
		}
	}
	return generationsExhausted(k)
}

// deleteObject deletes an object that is the cluster's; gone is not an error.
func (c *Cloud) deleteObject(ctx context.Context, cluster, what, name, op string, id uint64, del func(requestID string) (*compute.Operation, error)) error {
	k := call{op: op + ".delete", object: fmt.Sprintf("%s %q", what, name)}
	o, err := del(requestID(cluster, "delete/"+op+"/"+name, id))
	if isCode(err, codeNotFound) {
		return nil
	}
	if err != nil {
		return k.classify(err)
	}
	return c.wait(ctx, o, k)
}

func schemeOf(internal bool) string {
	if internal {
		return schemeInternal
	}
	return schemeExternal
}

func schemeWord(scheme string) string { return strings.ToLower(scheme) }

// fixed is the error of an object that exists with settings Compute cannot change in place.
func fixed(op, object, detail string) error {
	return &clouds.Error{Kind: clouds.KindInvalid, Op: op, Object: object,
		Err: fmt.Errorf("%s %s, and Compute cannot change that in place", object, detail),
		Fix: "set the cluster's API access back (bastion or not), or destroy and recreate the cluster"}
}

// EnsureLoadBalancer implements clouds.LoadBalancers.
func (c *Cloud) EnsureLoadBalancer(ctx context.Context, req clouds.LoadBalancerRequest) (clouds.LoadBalancer, error) {
	name := lbName(req.Cluster)
	object := fmt.Sprintf("load balancer %q", name)
	if req.Port < 1 || req.Port > 65535 {
		return clouds.LoadBalancer{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "forwardingRules.insert", Object: object,
			Err: fmt.Errorf("port %d is not a TCP port", req.Port), Fix: "pass the API server port, 6443"}
	}
	if !nameRE.MatchString(req.Cluster) {
		return clouds.LoadBalancer{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "forwardingRules.insert", Object: object,
			Err: fmt.Errorf("cluster name %q makes no Compute name (RFC 1035)", req.Cluster), Fix: "use a cluster name of lowercase letters, digits and dashes"}
	}
	if _, ok, err := c.FindNetwork(ctx, req.Cluster); err != nil {
		return clouds.LoadBalancer{}, err
	} else if !ok {
		return clouds.LoadBalancer{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "forwardingRules.insert", Object: object,
			Err: fmt.Errorf("cluster %q has no network", req.Cluster), Fix: "create the cluster's network before its load balancer"}
	}
	scheme := schemeOf(req.Internal)
	probes := probesExternal
	if req.Internal {
		probes = probesInternal
	}
	port := strconv.Itoa(req.Port)
	if err := c.ensureFirewall(ctx, req.Cluster, firewallRule{name: healthRuleName(req.Cluster), sources: probes,
		targets: []string{roleTag(req.Cluster, clouds.RoleControlPlane)}, allowed: []*computepb.Allowed{allow("tcp", port)}}); err != nil {
		return clouds.LoadBalancer{}, err
	}
	hc, err := c.ensureHealthCheck(ctx, req.Cluster, int32(req.Port))
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	addr, err := c.ensureAddress(ctx, req.Cluster, scheme)
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	var groups []string
	for _, zone := range c.cfg.Zones {
		g, err := c.ensureGroup(ctx, req.Cluster, zone)
		if err != nil {
			return clouds.LoadBalancer{}, err
		}
		groups = append(groups, relative(g.GetSelfLink()))
	}
	bs, err := c.ensureBackendService(ctx, req.Cluster, scheme, relative(hc.GetSelfLink()), groups)
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	fr, err := c.ensureForwardingRule(ctx, req.Cluster, scheme, addr, relative(bs.GetSelfLink()), port)
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	if err := c.labelAddress(ctx, req.Cluster, addr); err != nil {
		return clouds.LoadBalancer{}, err
	}
	if err := c.labelForwardingRule(ctx, req.Cluster, fr); err != nil {
		return clouds.LoadBalancer{}, err
	}
	targets, err := c.registered(ctx, bs, object)
	if err != nil {
		return clouds.LoadBalancer{}, err
	}
	return clouds.LoadBalancer{ID: relative(fr.GetSelfLink()), Address: fr.GetIPAddress(), Port: req.Port, Targets: targets}, nil
}

func (c *Cloud) ensureHealthCheck(ctx context.Context, cluster string, port int32) (*computepb.HealthCheck, error) {
	name := lbName(cluster)
	object := fmt.Sprintf("health check %q", name)
	var got *computepb.HealthCheck
	err := c.ensureObject(ctx, cluster, "health check", name, "regionHealthChecks", func() error {
		hc, err := c.healthChecks.Get(ctx, &computepb.GetRegionHealthCheckRequest{Project: c.cfg.Project, Region: c.cfg.Region, HealthCheck: name}, c.retry())
		if err != nil {
			return err
		}
		if hc.GetDescription() != marker(cluster) {
			return notOurs(call{op: "regionHealthChecks.get", object: object}, "health check", name)
		}
		if hc.GetType() != "TCP" || hc.GetTcpHealthCheck().GetPort() != port {
			return fixed("regionHealthChecks.get", object, fmt.Sprintf("checks %s port %d, not TCP %d,", hc.GetType(), hc.GetTcpHealthCheck().GetPort(), port))
		}
		got = hc
		return nil
	}, func(id string) (*compute.Operation, error) {
		return c.healthChecks.Insert(ctx, &computepb.InsertRegionHealthCheckRequest{Project: c.cfg.Project, Region: c.cfg.Region, RequestId: proto.String(id),
			HealthCheckResource: &computepb.HealthCheck{
				Name: proto.String(name), Description: proto.String(marker(cluster)), Type: proto.String("TCP"),
				TcpHealthCheck:   &computepb.TCPHealthCheck{Port: proto.Int32(port), PortSpecification: proto.String("USE_FIXED_PORT")},
				CheckIntervalSec: proto.Int32(healthInterval), TimeoutSec: proto.Int32(healthTimeout),
				HealthyThreshold: proto.Int32(healthThreshold), UnhealthyThreshold: proto.Int32(healthThreshold),
			}}, c.retry())
	})
	return got, err
}

func (c *Cloud) ensureAddress(ctx context.Context, cluster, scheme string) (*computepb.Address, error) {
	name := lbName(cluster)
	object := fmt.Sprintf("address %q", name)
	var got *computepb.Address
	err := c.ensureObject(ctx, cluster, "address", name, "addresses", func() error {
		a, err := c.addresses.Get(ctx, &computepb.GetAddressRequest{Project: c.cfg.Project, Region: c.cfg.Region, Address: name}, c.retry())
		if err != nil {
			return err
		}
		if a.GetDescription() != marker(cluster) {
			return notOurs(call{op: "addresses.get", object: object}, "address", name)
		}
		if a.GetAddressType() != scheme {
			return fixed("addresses.get", object, fmt.Sprintf("is %s, the cluster asks for an %s load balancer,", schemeWord(a.GetAddressType()), schemeWord(scheme)))
		}
		got = a
		return nil
	}, func(id string) (*compute.Operation, error) {
		res := &computepb.Address{Name: proto.String(name), Description: proto.String(marker(cluster)), AddressType: proto.String(scheme)}
		if scheme == schemeInternal {
			res.Subnetwork = proto.String(c.link(c.regionScope(), "subnetworks", c.subnetName(cluster)))
		} else {
			res.NetworkTier = proto.String("PREMIUM")
		}
		return c.addresses.Insert(ctx, &computepb.InsertAddressRequest{Project: c.cfg.Project, Region: c.cfg.Region, RequestId: proto.String(id), AddressResource: res}, c.retry())
	})
	return got, err
}

func (c *Cloud) ensureGroup(ctx context.Context, cluster, zone string) (*computepb.InstanceGroup, error) {
	name := groupName(cluster, zone)
	object := fmt.Sprintf("instance group %q in %s", name, zone)
	var got *computepb.InstanceGroup
	err := c.ensureObject(ctx, cluster, "instance group", name, "instanceGroups", func() error {
		g, err := c.groups.Get(ctx, &computepb.GetInstanceGroupRequest{Project: c.cfg.Project, Zone: zone, InstanceGroup: name}, c.retry())
		if err != nil {
			return err
		}
		if g.GetDescription() != marker(cluster) {
			return notOurs(call{op: "instanceGroups.get", object: object}, "instance group", name)
		}
		got = g
		return nil
	}, func(id string) (*compute.Operation, error) {
		return c.groups.Insert(ctx, &computepb.InsertInstanceGroupRequest{Project: c.cfg.Project, Zone: zone, RequestId: proto.String(id),
			InstanceGroupResource: &computepb.InstanceGroup{Name: proto.String(name), Description: proto.String(marker(cluster)),
				Network: proto.String(c.link("global", "networks", c.netName(cluster)))}}, c.retry())
	})
	return got, err
}

// ensureBackendService makes the backend service; on one that exists it
// adds the groups of zones it lacks (a zone added to the config) and keeps
// the others, whose members still serve.
func (c *Cloud) ensureBackendService(ctx context.Context, cluster, scheme, hc string, groups []string) (*computepb.BackendService, error) {
	name := lbName(cluster)
	object := fmt.Sprintf("backend service %q", name)
	backends := func(groups []string) []*computepb.Backend {
		var out []*computepb.Backend
		for _, g := range groups {
			// Passthrough load balancers balance by connection
			// (CAPG createOrGetRegionalBackendService: "Always use connection mode").
			out = append(out, &computepb.Backend{Group: proto.String(g), BalancingMode: proto.String("CONNECTION")})
		}
		return out
	}
	var got *computepb.BackendService
	err := c.ensureObject(ctx, cluster, "backend service", name, "regionBackendServices", func() error {
		bs, err := c.backendServices.Get(ctx, &computepb.GetRegionBackendServiceRequest{Project: c.cfg.Project, Region: c.cfg.Region, BackendService: name}, c.retry())
		if err != nil {
			return err
		}
		if bs.GetDescription() != marker(cluster) {
			return notOurs(call{op: "regionBackendServices.get", object: object}, "backend service", name)
		}
		if bs.GetLoadBalancingScheme() != scheme {
			return fixed("regionBackendServices.get", object, fmt.Sprintf("is %s, the cluster asks for an %s load balancer,", schemeWord(bs.GetLoadBalancingScheme()), schemeWord(scheme)))
		}
		got = bs
		return nil
	}, func(id string) (*compute.Operation, error) {
		res := &computepb.BackendService{Name: proto.String(name), Description: proto.String(marker(cluster)),
			LoadBalancingScheme: proto.String(scheme), Protocol: proto.String("TCP"), HealthChecks: []string{hc}, Backends: backends(groups)}
		if scheme == schemeInternal {
			res.Network = proto.String(c.link("global", "networks", c.netName(cluster)))
		}
		return c.backendServices.Insert(ctx, &computepb.InsertRegionBackendServiceRequest{Project: c.cfg.Project, Region: c.cfg.Region, RequestId: proto.String(id), BackendServiceResource: res}, c.retry())
	})
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	var all []string
	for _, b := range got.GetBackends() {
		have[relative(b.GetGroup())] = true
		all = append(all, relative(b.GetGroup()))
	}
	missing := false
	for _, g := range groups {
		if !have[g] {
			missing = true
			all = append(all, g)
		}
	}
	if !missing {
		return got, nil
	}
	// Patch replaces the backends list whole, and its fingerprint makes
	// Compute refuse a patch over a newer version (412 conditionNotMet, also
	// the answer to a retry whose first reply was lost): Apply runs again
	// and reads the service anew.
	k := call{op: "regionBackendServices.patch", object: object}
	o, err := c.backendServices.Patch(ctx, &computepb.PatchRegionBackendServiceRequest{Project: c.cfg.Project, Region: c.cfg.Region, BackendService: name,
		BackendServiceResource: &computepb.BackendService{Backends: backends(all), Fingerprint: got.Fingerprint}}, c.retry())
	if isCode(err, "conditionNotMet") {
		return nil, &clouds.Error{Kind: clouds.KindTransient, Op: k.op, Object: object, Err: fmt.Errorf("the backend service changed while its zones' groups were added: %w", err)}
	}
	if err != nil {
		return nil, k.classify(err)
	}
	if err := c.wait(ctx, o, k); err != nil {
		return nil, err
	}
	got, err = c.backendServices.Get(ctx, &computepb.GetRegionBackendServiceRequest{Project: c.cfg.Project, Region: c.cfg.Region, BackendService: name}, c.retry())
	if err != nil {
		return nil, call{op: "regionBackendServices.get", object: object}.classify(err)
	}
	return got, nil
}

func (c *Cloud) ensureForwardingRule(ctx context.Context, cluster, scheme string, addr *computepb.Address, bs, port string) (*computepb.ForwardingRule, error) {
	name := lbName(cluster)
	object := fmt.Sprintf("forwarding rule %q", name)
	var got *computepb.ForwardingRule
	err := c.ensureObject(ctx, cluster, "forwarding rule", name, "forwardingRules", func() error {
		fr, err := c.forwardingRules.Get(ctx, &computepb.GetForwardingRuleRequest{Project: c.cfg.Project, Region: c.cfg.Region, ForwardingRule: name}, c.retry())
		if err != nil {
			return err
		}
		if fr.GetDescription() != marker(cluster) {
			return notOurs(call{op: "forwardingRules.get", object: object}, "forwarding rule", name)
		}
		switch {
		case fr.GetLoadBalancingScheme() != scheme:
			return fixed("forwardingRules.get", object, fmt.Sprintf("is %s, the cluster asks for an %s load balancer,", schemeWord(fr.GetLoadBalancingScheme()), schemeWord(scheme)))
		case fr.GetIPAddress() != addr.GetAddress():
			return fixed("forwardingRules.get", object, fmt.Sprintf("serves %s, not the cluster's address %s,", fr.GetIPAddress(), addr.GetAddress()))
		case relative(fr.GetBackendService()) != bs:
			return fixed("forwardingRules.get", object, fmt.Sprintf("forwards to %s, not %s,", fr.GetBackendService(), bs))
		case !slices.Equal(fr.GetPorts(), []string{port}):
			return fixed("forwardingRules.get", object, fmt.Sprintf("serves ports %v, not %s,", fr.GetPorts(), port))
		}
		got = fr
		return nil
	}, func(id string) (*compute.Operation, error) {
		res := &computepb.ForwardingRule{Name: proto.String(name), Description: proto.String(marker(cluster)),
			IPAddress: proto.String(relative(addr.GetSelfLink())), IPProtocol: proto.String("TCP"), Ports: []string{port},
			LoadBalancingScheme: proto.String(scheme), BackendService: proto.String(bs)}
		if scheme == schemeInternal {
			res.Network = proto.String(c.link("global", "networks", c.netName(cluster)))
			res.Subnetwork = proto.String(c.link(c.regionScope(), "subnetworks", c.subnetName(cluster)))
		} else {
			res.NetworkTier = proto.String("PREMIUM")
		}
		return c.forwardingRules.Insert(ctx, &computepb.InsertForwardingRuleRequest{Project: c.cfg.Project, Region: c.cfg.Region, RequestId: proto.String(id), ForwardingRuleResource: res}, c.retry())
	})
	return got, err
}

// wantLabels are the labels the load balancer's objects carry.
func wantLabels(cluster string) map[string]string {
	return map[string]string{LabelCluster: labelValue(cluster), LabelRole: labelValue(clouds.RoleControlPlane)}
}

// labelAddress sets the cluster's labels on the address. setLabels takes
// the current labelFingerprint, so a call retried after its reply was lost
// is refused with 412 conditionNotMet: the address is read again and the
// labels compared.
func (c *Cloud) labelAddress(ctx context.Context, cluster string, a *computepb.Address) error {
	k := call{op: "addresses.setLabels", object: fmt.Sprintf("address %q", a.GetName())}
	return c.setLabels(ctx, cluster, k, a.GetLabels(), a.LabelFingerprint, func(l map[string]string, fp *string) (*compute.Operation, error) {
		return c.addresses.SetLabels(ctx, &computepb.SetLabelsAddressRequest{Project: c.cfg.Project, Region: c.cfg.Region, Resource: a.GetName(),
			RegionSetLabelsRequestResource: &computepb.RegionSetLabelsRequest{Labels: l, LabelFingerprint: fp}}, c.retry())
	}, func() (map[string]string, *string, error) {
		got, err := c.addresses.Get(ctx, &computepb.GetAddressRequest{Project: c.cfg.Project, Region: c.cfg.Region, Address: a.GetName()}, c.retry())
		return got.GetLabels(), got.LabelFingerprint, err
	})
}

func (c *Cloud) labelForwardingRule(ctx context.Context, cluster string, fr *computepb.ForwardingRule) error {
	k := call{op: "forwardingRules.setLabels", object: fmt.Sprintf("forwarding rule %q", fr.GetName())}
	return c.setLabels(ctx, cluster, k, fr.GetLabels(), fr.LabelFingerprint, func(l map[string]string, fp *string) (*compute.Operation, error) {
		return c.forwardingRules.SetLabels(ctx, &computepb.SetLabelsForwardingRuleRequest{Project: c.cfg.Project, Region: c.cfg.Region, Resource: fr.GetName(),
			RegionSetLabelsRequestResource: &computepb.RegionSetLabelsRequest{Labels: l, LabelFingerprint: fp}}, c.retry())
	}, func() (map[string]string, *string, error) {
		got, err := c.forwardingRules.Get(ctx, &computepb.GetForwardingRuleRequest{Project: c.cfg.Project, Region: c.cfg.Region, ForwardingRule: fr.GetName()}, c.retry())
		return got.GetLabels(), got.LabelFingerprint, err
	})
}

// setLabels makes an object's labels wantLabels(cluster) and the user's, reading it again
// after a stale fingerprint.
func (c *Cloud) setLabels(ctx context.Context, cluster string, k call, have map[string]string, fp *string,
	set func(map[string]string, *string) (*compute.Operation, error), reread func() (map[string]string, *string, error)) error {
	want := c.withLabels(wantLabels(cluster))
	for range 3 {
		if maps.Equal(have, want) {
			return nil
		}
		o, err := set(want, fp)
		if isCode(err, "conditionNotMet") {
			var rerr error
			if have, fp, rerr = reread(); rerr != nil {
				return call{op: strings.Replace(k.op, "setLabels", "get", 1), object: k.object}.classify(rerr)
			}
			continue
		}
		if err != nil {
			return k.classify(err)
		}
		return c.wait(ctx, o, k)
	}
	return &clouds.Error{Kind: clouds.KindTransient, Op: k.op, Object: k.object, Err: fmt.Errorf("the labels changed under every attempt")}
}

// groupRef is one instance group behind the backend service.
type groupRef struct{ zone, name string }

// groupsOf are the backend service's instance groups, by zone.
func groupsOf(bs *computepb.BackendService) map[string]groupRef {
	out := map[string]groupRef{}
	for _, b := range bs.GetBackends() {
		g := relative(b.GetGroup())
		parts := strings.Split(g, "/")
		// projects/<p>/zones/<zone>/instanceGroups/<name>
		if len(parts) == 6 && parts[2] == "zones" && parts[4] == "instanceGroups" {
			out[parts[3]] = groupRef{zone: parts[3], name: parts[5]}
		}
	}
	return out
}

// members lists the instance URLs (projects/...) in a group.
func (c *Cloud) members(ctx context.Context, g groupRef, object string) ([]string, error) {
	it := c.groups.ListInstances(ctx, &computepb.ListInstancesInstanceGroupsRequest{Project: c.cfg.Project, Zone: g.zone, InstanceGroup: g.name,
		MaxResults: proto.Uint32(uint32(c.cfg.PageSize)),
		InstanceGroupsListInstancesRequestResource: &computepb.InstanceGroupsListInstancesRequest{InstanceState: proto.String("ALL")}}, c.retry())
	var out []string
	for {
		m, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return nil, call{op: "instanceGroups.listInstances", object: object}.classify(err)
		}
		out = append(out, relative(m.GetInstance()))
	}
	return out, nil
}

// registered lists the IDs of the instances in the backend service's
// groups, sorted: group members are named by URL, so each is read once.
func (c *Cloud) registered(ctx context.Context, bs *computepb.BackendService, object string) ([]string, error) {
	var ids []string
	for _, g := range groupsOf(bs) {
		urls, err := c.members(ctx, g, object)
		if err != nil {
			return nil, err
		}
		for _, u := range urls {
			in, err := c.instances.Get(ctx, &computepb.GetInstanceRequest{Project: c.cfg.Project, Zone: g.zone, Instance: path.Base(u)}, c.retry())
			if isCode(err, codeNotFound) {
				continue // deleted meanwhile: Compute drops it from the group
			}
			if err != nil {
				return nil, call{op: "instances.get", object: object}.classify(err)
			}
			ids = append(ids, strconv.FormatUint(in.GetId(), 10))
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// FindLoadBalancer implements clouds.LoadBalancers: the cluster's
// forwarding rule by name, its address and port, and the members of its
// backend service's groups.
func (c *Cloud) FindLoadBalancer(ctx context.Context, cluster string) (clouds.LoadBalancer, bool, error) {
	name := lbName(cluster)
	object := fmt.Sprintf("load balancer %q", name)
	fr, err := c.forwardingRules.Get(ctx, &computepb.GetForwardingRuleRequest{Project: c.cfg.Project, Region: c.cfg.Region, ForwardingRule: name}, c.retry())
	if isCode(err, codeNotFound) {
		return clouds.LoadBalancer{}, false, nil
	}
	if err != nil {
		return clouds.LoadBalancer{}, false, call{op: "forwardingRules.get", object: object}.classify(err)
	}
	if fr.GetDescription() != marker(cluster) {
		return clouds.LoadBalancer{}, false, nil
	}
	out := clouds.LoadBalancer{ID: relative(fr.GetSelfLink()), Address: fr.GetIPAddress()}
	if ports := fr.GetPorts(); len(ports) > 0 {
		out.Port, _ = strconv.Atoi(ports[0])
	}
	bs, err := c.backendServices.Get(ctx, &computepb.GetRegionBackendServiceRequest{Project: c.cfg.Project, Region: c.cfg.Region, BackendService: path.Base(fr.GetBackendService())}, c.retry())
	if isCode(err, codeNotFound) {
		return out, true, nil
	}
	if err != nil {
		return clouds.LoadBalancer{}, false, call{op: "regionBackendServices.get", object: object}.classify(err)
	}
	if out.Targets, err = c.registered(ctx, bs, object); err != nil {
		return clouds.LoadBalancer{}, false, err
	}
	return out, true, nil
}

// SetLoadBalancerTargets implements clouds.LoadBalancers: each control
// plane goes into its zone's group, and members that are not wanted leave.
func (c *Cloud) SetLoadBalancerTargets(ctx context.Context, lb clouds.LoadBalancer, targets []clouds.Instance) error {
	object := fmt.Sprintf("targets of load balancer %s", lb.ID)
	fr, err := c.forwardingRules.Get(ctx, &computepb.GetForwardingRuleRequest{Project: c.cfg.Project, Region: c.cfg.Region, ForwardingRule: path.Base(lb.ID)}, c.retry())
	if err != nil {
		return call{op: "forwardingRules.get", object: object}.classify(err)
	}
	bs, err := c.backendServices.Get(ctx, &computepb.GetRegionBackendServiceRequest{Project: c.cfg.Project, Region: c.cfg.Region, BackendService: path.Base(fr.GetBackendService())}, c.retry())
	if err != nil {
		return call{op: "regionBackendServices.get", object: object, fixText: "run Apply again to recreate the load balancer's backend service"}.classify(err)
	}
	groups := groupsOf(bs)
	want := map[string]map[string]bool{} // zone -> instance URL
	for _, in := range targets {
		zone := c.zoneFor(in.Name)
		if _, ok := groups[zone]; !ok {
			return &clouds.Error{Kind: clouds.KindNotFound, Op: "instanceGroups.addInstances", Object: object,
				Err: fmt.Errorf("the backend service has no instance group in %s, the zone of %s", zone, in.Name), Fix: "run Apply again: it adds the zone's group"}
		}
		if want[zone] == nil {
			want[zone] = map[string]bool{}
		}
		want[zone][c.link("zones/"+zone, "instances", in.Name)] = true
	}
	for _, zone := range slices.Sorted(maps.Keys(groups)) {
		g := groups[zone]
		gobj := fmt.Sprintf("instance group %q in %s", g.name, zone)
		have, err := c.members(ctx, g, gobj)
		if err != nil {
			return err
		}
		var add, drop []*computepb.InstanceReference
		for _, u := range slices.Sorted(maps.Keys(want[zone])) {
			if !slices.Contains(have, u) {
				add = append(add, &computepb.InstanceReference{Instance: proto.String(u)})
			}
		}
		for _, u := range have {
			if !want[zone][u] {
				drop = append(drop, &computepb.InstanceReference{Instance: proto.String(u)})
			}
		}
		if len(add) > 0 {
			k := call{op: "instanceGroups.addInstances", object: gobj, fixText: "add only running instances of the cluster's network in the group's zone"}
			o, err := c.groups.AddInstances(ctx, &computepb.AddInstancesInstanceGroupRequest{Project: c.cfg.Project, Zone: zone, InstanceGroup: g.name,
				InstanceGroupsAddInstancesRequestResource: &computepb.InstanceGroupsAddInstancesRequest{Instances: add}}, c.retry())
			// memberAlreadyExists: added by a call whose reply was lost; what was asked.
			if err != nil && !isCode(err, "memberAlreadyExists") {
				return k.classify(err)
			}
			if err == nil {
				if err := c.wait(ctx, o, k); err != nil {
					return err
				}
			}
		}
		if len(drop) > 0 {
			k := call{op: "instanceGroups.removeInstances", object: gobj}
			o, err := c.groups.RemoveInstances(ctx, &computepb.RemoveInstancesInstanceGroupRequest{Project: c.cfg.Project, Zone: zone, InstanceGroup: g.name,
				InstanceGroupsRemoveInstancesRequestResource: &computepb.InstanceGroupsRemoveInstancesRequest{Instances: drop}}, c.retry())
			if err != nil {
				return k.classify(err)
			}
			if err := c.wait(ctx, o, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteLoadBalancer implements clouds.LoadBalancers, in dependency
// order: the forwarding rule, then the backend service, then what it
// used (health check, instance groups) and the address, then the probes'
// firewall rule. Compute refuses to delete an object another still uses
// (resourceInUseByAnotherResource, a transient error here).
func (c *Cloud) DeleteLoadBalancer(ctx context.Context, cluster string) error {
	name := lbName(cluster)
	p, r := c.cfg.Project, c.cfg.Region
	fr, err := c.forwardingRules.Get(ctx, &computepb.GetForwardingRuleRequest{Project: p, Region: r, ForwardingRule: name}, c.retry())
	if err := ignoreMissing(err, "forwardingRules.get", "forwarding rule", name); err != nil {
		return err
	}
	if fr != nil && fr.GetDescription() == marker(cluster) {
		if err := c.deleteObject(ctx, cluster, "forwarding rule", name, "forwardingRules", fr.GetId(), func(id string) (*compute.Operation, error) {
			return c.forwardingRules.Delete(ctx, &computepb.DeleteForwardingRuleRequest{Project: p, Region: r, ForwardingRule: name, RequestId: proto.String(id)}, c.retry())
		}); err != nil {
			return err
		}
	}
	groups := map[groupRef]bool{}
	for _, zone := range c.cfg.Zones {
		groups[groupRef{zone: zone, name: groupName(cluster, zone)}] = true
	}
	bs, err := c.backendServices.Get(ctx, &computepb.GetRegionBackendServiceRequest{Project: p, Region: r, BackendService: name}, c.retry())
	if err := ignoreMissing(err, "regionBackendServices.get", "backend service", name); err != nil {
		return err
	}
	if bs != nil && bs.GetDescription() == marker(cluster) {
		for _, g := range groupsOf(bs) { // groups of zones no longer configured too
			groups[g] = true
		}
		if err := c.deleteObject(ctx, cluster, "backend service", name, "regionBackendServices", bs.GetId(), func(id string) (*compute.Operation, error) {
			return c.backendServices.Delete(ctx, &computepb.DeleteRegionBackendServiceRequest{Project: p, Region: r, BackendService: name, RequestId: proto.String(id)}, c.retry())
		}); err != nil {
			return err
		}
	}
	hc, err := c.healthChecks.Get(ctx, &computepb.GetRegionHealthCheckRequest{Project: p, Region: r, HealthCheck: name}, c.retry())
	if err := ignoreMissing(err, "regionHealthChecks.get", "health check", name); err != nil {
		return err
	}
	if hc != nil && hc.GetDescription() == marker(cluster) {
		if err := c.deleteObject(ctx, cluster, "health check", name, "regionHealthChecks", hc.GetId(), func(id string) (*compute.Operation, error) {
			return c.healthChecks.Delete(ctx, &computepb.DeleteRegionHealthCheckRequest{Project: p, Region: r, HealthCheck: name, RequestId: proto.String(id)}, c.retry())
		}); err != nil {
			return err
		}
	}
	refs := slices.SortedFunc(maps.Keys(groups), func(a, b groupRef) int { return strings.Compare(a.zone+"/"+a.name, b.zone+"/"+b.name) })
	for _, g := range refs {
		got, err := c.groups.Get(ctx, &computepb.GetInstanceGroupRequest{Project: p, Zone: g.zone, InstanceGroup: g.name}, c.retry())
		if err := ignoreMissing(err, "instanceGroups.get", "instance group", g.name); err != nil {
			return err
		}
		if got == nil || got.GetDescription() != marker(cluster) {
			continue
		}
		// Deleting an unmanaged group leaves its instances alone
		// (https://cloud.google.com/compute/docs/instance-groups/create-uig#delete_an_unmanaged_instance_group).
		if err := c.deleteObject(ctx, cluster, "instance group", g.name, "instanceGroups", got.GetId(), func(id string) (*compute.Operation, error) {
			return c.groups.Delete(ctx, &computepb.DeleteInstanceGroupRequest{Project: p, Zone: g.zone, InstanceGroup: g.name, RequestId: proto.String(id)}, c.retry())
		}); err != nil {
			return err
		}
	}
	a, err := c.addresses.Get(ctx, &computepb.GetAddressRequest{Project: p, Region: r, Address: name}, c.retry())
	if err := ignoreMissing(err, "addresses.get", "address", name); err != nil {
		return err
	}
	if a != nil && a.GetDescription() == marker(cluster) {
		if err := c.deleteObject(ctx, cluster, "address", name, "addresses", a.GetId(), func(id string) (*compute.Operation, error) {
			return c.addresses.Delete(ctx, &computepb.DeleteAddressRequest{Project: p, Region: r, Address: name, RequestId: proto.String(id)}, c.retry())
		}); err != nil {
			return err
		}
	}
	rule := healthRuleName(cluster)
	fw, err := c.firewalls.Get(ctx, &computepb.GetFirewallRequest{Project: c.netProject(), Firewall: rule}, c.retry())
	if err := ignoreMissing(err, "firewalls.get", "firewall rule", rule); err != nil {
		return err
	}
	if fw != nil && fw.GetDescription() == marker(cluster) {
		return c.deleteFirewall(ctx, cluster, fw)
	}
	return nil
}

// ignoreMissing classifies a get's error; notFound is no error (the
// result is then nil).
func ignoreMissing(err error, op, what, name string) error {
	if err == nil || isCode(err, codeNotFound) {
		return nil
	}
	return call{op: op, object: fmt.Sprintf("%s %q", what, name)}.classify(err)
}
