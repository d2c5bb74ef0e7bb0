package azure

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// The cluster's API load balancer is a Standard SKU load balancer
// (<cluster>-api-lb) with one frontend: a Standard static public IP
// address (<cluster>-api-pip) when the API is public, or a private address
// in the cluster's subnet when it is internal. A TCP probe on the API
// port decides health; one TCP rule forwards the port to a backend pool
// the control-plane NICs' IP configurations join, as CAPZ does
// (gh:kubernetes-sigs/cluster-api-provider-azure azure/services/loadbalancers/spec.go,
// azure/services/networkinterfaces/spec.go LoadBalancerBackendAddressPools,
// azure/services/publicips/spec.go). A public one also carries an outbound
// rule for the pool, and its load-balancing rule leaves outbound SNAT to
// it: a VM in the pool of a Standard public load balancer has no outbound
// access of its own (https://learn.microsoft.com/azure/load-balancer/outbound-rules;
// CAPZ getOutboundRules).
//
// Standard load balancers admit nothing the NICs' NSG does not: the
// control-plane NSG admits the admins' CIDRs and the node CIDR on the API
// port, and the AzureLoadBalancer service tag for the probe (network.go).
//
// Every object carries the cluster's tag and a name derived from the
// cluster's; a PUT is sent only when what exists differs from what is wanted.

var _ clouds.LoadBalancers = (*Cloud)(nil)

// Names of the load balancer's parts.
const (
	lbFrontend = "api"
	lbPool     = "control-plane"
	lbProbe    = "api"
	lbRule     = "api"
	lbOutbound = "control-plane-outbound"
)

// Probe timing: a TCP probe every 5 seconds (the minimum, armnetwork/v9
// models.go ProbePropertiesFormat), two in a row to turn healthy or
// unhealthy, so a lost control plane leaves rotation in about 10 seconds.
const (
	probeInterval  = 5
	probeThreshold = 2
)

func lbName(cluster string) string  { return cluster + "-api-lb" }
func pipName(cluster string) string { return cluster + "-api-pip" }

// lbObject names the load balancer in messages.
func lbObject(cluster string) string { return fmt.Sprintf("load balancer %q", lbName(cluster)) }

// EnsureLoadBalancer implements clouds.LoadBalancers.
func (c *Cloud) EnsureLoadBalancer(ctx context.Context, req clouds.LoadBalancerRequest) (clouds.LoadBalancer, error) {
	name := lbName(req.Cluster)
	object := lbObject(req.Cluster)
	invalid := func(err error, fix string) error {
		return &clouds.Error{Kind: clouds.KindInvalid, Op: "LoadBalancers.CreateOrUpdate", Object: object, Err: err, Fix: fix}
	}
	if req.Port < 1 || req.Port > 65534 {
		return clouds.LoadBalancer{}, invalid(fmt.Errorf("port %d is not a port a load-balancing rule takes (1-65534)", req.Port), "pass the API server port, 6443")
	}
	got, err := c.lbs.Get(ctx, c.cfg.ResourceGroup, name, nil)
	var have *armnetwork.LoadBalancer
	switch {
	case err == nil:
		have = &got.LoadBalancer
		if !hasClusterTag(have.Tags, req.Cluster) {
			return clouds.LoadBalancer{}, invalid(fmt.Errorf("%s exists in resource group %q without the %s=%s tag", object, c.cfg.ResourceGroup, TagCluster, req.Cluster),
				"it belongs to something else: delete it, or give the cluster another name")
		}
		if internal := isInternal(*have); internal != req.Internal {
			return clouds.LoadBalancer{}, invalid(fmt.Errorf("%s is %s, and the cluster asks for %s; the API certificate names the address", object, scheme(internal), scheme(req.Internal)),
				"set the cluster's API access back, or destroy and recreate the cluster")
		}
	case !isNotFound(err):
		return clouds.LoadBalancer{}, call{op: "LoadBalancers.Get", object: object}.classify(err)
	}
	fe := &armnetwork.FrontendIPConfigurationPropertiesFormat{}
	var pipAddr string
	if req.Internal {
		if req.Network.SubnetID == "" {
			return clouds.LoadBalancer{}, invalid(fmt.Errorf("cluster %q has no subnet", req.Cluster), "create the cluster's network before its load balancer")
		}
		fe.Subnet = &armnetwork.Subnet{ID: to(req.Network.SubnetID)}
		fe.PrivateIPAllocationMethod = to(armnetwork.IPAllocationMethodDynamic)
		if have != nil {
			// Keep the address it was given: the API certificate names it.
			fe.PrivateIPAddress = frontendOf(*have).PrivateIPAddress
		}
	} else {
		pip, err := c.ensurePublicIP(ctx, req.Cluster)
		if err != nil {
			return clouds.LoadBalancer{}, err
		}
		fe.PublicIPAddress = &armnetwork.PublicIPAddress{ID: pip.ID}
		pipAddr = val(pip.Properties.IPAddress)
	}
	want := c.lbSpec(req, fe)
	lb := have
	if have == nil || !lbMatches(*have, want) {
		k := call{op: "LoadBalancers.CreateOrUpdate", object: object}
		poller, err := c.lbs.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, name, want, nil)
		if err != nil {
			return clouds.LoadBalancer{}, k.classify(err)
		}
		res, err := poller.PollUntilDone(ctx, c.pollOptions())
		if err != nil {
			return clouds.LoadBalancer{}, k.classify(err)
		}
		lb = &res.LoadBalancer
	}
	out := clouds.LoadBalancer{ID: val(lb.ID), Address: pipAddr, Port: req.Port}
	if req.Internal {
		out.Address = val(frontendOf(*lb).PrivateIPAddress)
	}
	if out.Address == "" {
		return clouds.LoadBalancer{}, &clouds.Error{Kind: clouds.KindTransient, Op: "LoadBalancers.Get", Object: object, Err: fmt.Errorf("%s has no frontend address yet", object)}
	}
	if out.Targets, err = c.poolTargets(ctx, *lb, object); err != nil {
		return clouds.LoadBalancer{}, err
	}
	return out, nil
}

func scheme(internal bool) string {
	if internal {
		return "internal"
	}
	return "public"
}

// lbSpec is the load balancer as mixedk8s wants it.
func (c *Cloud) lbSpec(req clouds.LoadBalancerRequest, fe *armnetwork.FrontendIPConfigurationPropertiesFormat) armnetwork.LoadBalancer {
	id := c.networkID("loadBalancers", lbName(req.Cluster))
	ref := func(kind, name string) *armnetwork.SubResource {
		return &armnetwork.SubResource{ID: to(id + "/" + kind + "/" + name)}
	}
	port := int32(req.Port)
	p := &armnetwork.LoadBalancerPropertiesFormat{
		FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to(lbFrontend), Properties: fe}},
		BackendAddressPools:      []*armnetwork.BackendAddressPool{{Name: to(lbPool)}},
		Probes: []*armnetwork.Probe{{Name: to(lbProbe), Properties: &armnetwork.ProbePropertiesFormat{
			Protocol: to(armnetwork.ProbeProtocolTCP), Port: to(port), IntervalInSeconds: to(int32(probeInterval)), ProbeThreshold: to(int32(probeThreshold)),
		}}},
		LoadBalancingRules: []*armnetwork.LoadBalancingRule{{Name: to(lbRule), Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
			Protocol: to(armnetwork.TransportProtocolTCP), FrontendPort: to(port), BackendPort: to(port),
			FrontendIPConfiguration: ref("frontendIPConfigurations", lbFrontend), BackendAddressPool: ref("backendAddressPools", lbPool),
			Probe: ref("probes", lbProbe), EnableFloatingIP: to(false), DisableOutboundSnat: to(!req.Internal),
		}}},
	}
	if !req.Internal {
		p.OutboundRules = []*armnetwork.OutboundRule{{Name: to(lbOutbound), Properties: &armnetwork.OutboundRulePropertiesFormat{
			Protocol:                 to(armnetwork.LoadBalancerOutboundRuleProtocolAll),
			FrontendIPConfigurations: []*armnetwork.SubResource{ref("frontendIPConfigurations", lbFrontend)},
			BackendAddressPool:       ref("backendAddressPools", lbPool),
		}}}
	}
	return armnetwork.LoadBalancer{
		Location:   to(c.cfg.Location),
		Tags:       c.tags(req.Cluster, TagRole, clouds.RoleControlPlane),
		SKU:        &armnetwork.LoadBalancerSKU{Name: to(armnetwork.LoadBalancerSKUNameStandard), Tier: to(armnetwork.LoadBalancerSKUTierRegional)},
		Properties: p,
	}
}

// frontendOf is the load balancer's API frontend's properties (never nil).
func frontendOf(lb armnetwork.LoadBalancer) armnetwork.FrontendIPConfigurationPropertiesFormat {
	if lb.Properties != nil {
		for _, fe := range lb.Properties.FrontendIPConfigurations {
			if fe != nil && val(fe.Name) == lbFrontend && fe.Properties != nil {
				return *fe.Properties
			}
		}
	}
	return armnetwork.FrontendIPConfigurationPropertiesFormat{}
}

func isInternal(lb armnetwork.LoadBalancer) bool { return frontendOf(lb).PublicIPAddress == nil }

// lbMatches compares the fields mixedk8s sets; ARM adds IDs, states and
// the pools' members.
func lbMatches(have, want armnetwork.LoadBalancer) bool {
	if have.SKU == nil || val(have.SKU.Name) != armnetwork.LoadBalancerSKUNameStandard || have.Properties == nil || !tagsCover(have.Tags, want.Tags) {
		return false
	}
	h, w := have.Properties, want.Properties
	hf, wf := frontendOf(have), frontendOf(want)
	switch {
	case len(h.FrontendIPConfigurations) != 1, (hf.PublicIPAddress == nil) != (wf.PublicIPAddress == nil):
		return false
	case wf.PublicIPAddress != nil && !strings.EqualFold(val(hf.PublicIPAddress.ID), val(wf.PublicIPAddress.ID)):
		return false
	case wf.Subnet != nil && (hf.Subnet == nil || !strings.EqualFold(val(hf.Subnet.ID), val(wf.Subnet.ID))):
		return false
	case len(h.BackendAddressPools) != 1 || val(h.BackendAddressPools[0].Name) != lbPool:
		return false
	case len(h.Probes) != 1 || len(h.LoadBalancingRules) != 1 || len(h.OutboundRules) != len(w.OutboundRules):
		return false
	}
	hp, wp := h.Probes[0], w.Probes[0]
	if val(hp.Name) != val(wp.Name) || hp.Properties == nil || val(hp.Properties.Protocol) != val(wp.Properties.Protocol) ||
		val(hp.Properties.Port) != val(wp.Properties.Port) || val(hp.Properties.IntervalInSeconds) != val(wp.Properties.IntervalInSeconds) ||
		val(hp.Properties.ProbeThreshold) != val(wp.Properties.ProbeThreshold) {
		return false
	}
	hr, wr := h.LoadBalancingRules[0], w.LoadBalancingRules[0]
	same := func(a, b *armnetwork.SubResource) bool {
		return a != nil && b != nil && strings.EqualFold(val(a.ID), val(b.ID))
	}
	hq, wq := hr.Properties, wr.Properties
	if val(hr.Name) != val(wr.Name) || hq == nil || val(hq.Protocol) != val(wq.Protocol) || val(hq.FrontendPort) != val(wq.FrontendPort) ||
		val(hq.BackendPort) != val(wq.BackendPort) || val(hq.DisableOutboundSnat) != val(wq.DisableOutboundSnat) ||
		!same(hq.FrontendIPConfiguration, wq.FrontendIPConfiguration) || !same(hq.BackendAddressPool, wq.BackendAddressPool) || !same(hq.Probe, wq.Probe) {
		return false
	}
	for i, wo := range w.OutboundRules {
		if ho := h.OutboundRules[i]; val(ho.Name) != val(wo.Name) || ho.Properties == nil || !same(ho.Properties.BackendAddressPool, wo.Properties.BackendAddressPool) {
			return false
		}
	}
	return true
}

// tagsCover reports whether have holds every tag of want.
func tagsCover(have, want map[string]*string) bool {
	for k, v := range want {
		if have[k] == nil || val(have[k]) != val(v) {
			return false
		}
	}
	return true
}

// ensurePublicIP adopts or creates the cluster's Standard static public IP address.
func (c *Cloud) ensurePublicIP(ctx context.Context, cluster string) (armnetwork.PublicIPAddress, error) {
	name := pipName(cluster)
	object := fmt.Sprintf("public IP address %q", name)
	got, err := c.pips.Get(ctx, c.cfg.ResourceGroup, name, nil)
	if err == nil {
		pip := got.PublicIPAddress
		switch {
		case !hasClusterTag(pip.Tags, cluster):
			return armnetwork.PublicIPAddress{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "PublicIPAddresses.Get", Object: object,
				Err: fmt.Errorf("%s exists in resource group %q without the %s=%s tag", object, c.cfg.ResourceGroup, TagCluster, cluster),
				Fix: "it belongs to something else: delete it, or give the cluster another name"}
		case pip.SKU == nil || val(pip.SKU.Name) != armnetwork.PublicIPAddressSKUNameStandard:
			// A Standard load balancer takes only Standard public IP addresses (PublicIPAndLBSkuDoNotMatch).
			return armnetwork.PublicIPAddress{}, &clouds.Error{Kind: clouds.KindInvalid, Op: "PublicIPAddresses.Get", Object: object,
				Err: fmt.Errorf("%s is not of the Standard SKU, which a Standard load balancer needs", object),
				Fix: "delete the public IP address; the next Apply creates a Standard one"}
		case pip.Properties != nil && pip.Properties.IPAddress != nil:
			return pip, nil
		}
	} else if !isNotFound(err) {
		return armnetwork.PublicIPAddress{}, call{op: "PublicIPAddresses.Get", object: object}.classify(err)
	}
	k := call{op: "PublicIPAddresses.CreateOrUpdate", object: object}
	poller, err := c.pips.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, name, armnetwork.PublicIPAddress{
		Location: to(c.cfg.Location),
		Tags:     c.tags(cluster, TagRole, clouds.RoleControlPlane),
		SKU:      &armnetwork.PublicIPAddressSKU{Name: to(armnetwork.PublicIPAddressSKUNameStandard), Tier: to(armnetwork.PublicIPAddressSKUTierRegional)},
		Properties: &armnetwork.PublicIPAddressPropertiesFormat{
			// Standard public IP addresses are static (StandardSkuPublicIPAddressesMustBeStatic).
			PublicIPAllocationMethod: to(armnetwork.IPAllocationMethodStatic),
			PublicIPAddressVersion:   to(armnetwork.IPVersionIPv4),
		},
	}, nil)
	if err != nil {
		return armnetwork.PublicIPAddress{}, k.classify(err)
	}
	res, err := poller.PollUntilDone(ctx, c.pollOptions())
	if err != nil {
		return armnetwork.PublicIPAddress{}, k.classify(err)
	}
	if res.Properties == nil || res.Properties.IPAddress == nil {
		return armnetwork.PublicIPAddress{}, &clouds.Error{Kind: clouds.KindTransient, Op: "PublicIPAddresses.Get", Object: object, Err: fmt.Errorf("%s has no address yet", object)}
	}
	return res.PublicIPAddress, nil
}

// poolID is the ID of the load balancer's backend pool.
func poolID(lb armnetwork.LoadBalancer) string {
	if lb.Properties != nil {
		for _, p := range lb.Properties.BackendAddressPools {
			if val(p.Name) == lbPool {
				return val(p.ID)
			}
		}
	}
	return val(lb.ID) + "/backendAddressPools/" + lbPool
}

// poolNICs are the names of the NICs whose IP configurations are in the pool.
func poolNICs(lb armnetwork.LoadBalancer) []string {
	var out []string
	if lb.Properties == nil {
		return nil
	}
	for _, p := range lb.Properties.BackendAddressPools {
		if val(p.Name) != lbPool || p.Properties == nil {
			continue
		}
		for _, ipc := range p.Properties.BackendIPConfigurations {
			if n := nicOfIPConfig(val(ipc.ID)); n != "" {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// nicOfIPConfig is the NIC name in .../networkInterfaces/<nic>/ipConfigurations/<name>.
func nicOfIPConfig(id string) string {
	parts := strings.Split(id, "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], "networkInterfaces") {
			return parts[i+1]
		}
	}
	return ""
}

// poolTargets are the IDs of the VMs whose NICs are in the pool, sorted:
// one list of the group's NICs, whatever the pool's size.
func (c *Cloud) poolTargets(ctx context.Context, lb armnetwork.LoadBalancer, object string) ([]string, error) {
	members := poolNICs(lb)
	if len(members) == 0 {
		return nil, nil
	}
	var out []string
	pager := c.nics.NewListPager(c.cfg.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, call{op: "NetworkInterfaces.List", object: "backends of " + object}.classify(err)
		}
		for _, n := range page.Value {
			if slices.ContainsFunc(members, func(m string) bool { return strings.EqualFold(m, val(n.Name)) }) && n.Properties != nil && n.Properties.VirtualMachine != nil {
				out = append(out, val(n.Properties.VirtualMachine.ID))
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// FindLoadBalancer implements clouds.LoadBalancers.
func (c *Cloud) FindLoadBalancer(ctx context.Context, cluster string) (clouds.LoadBalancer, bool, error) {
	object := lbObject(cluster)
	got, err := c.lbs.Get(ctx, c.cfg.ResourceGroup, lbName(cluster), nil)
	if isNotFound(err) {
		return clouds.LoadBalancer{}, false, nil
	}
	if err != nil {
		return clouds.LoadBalancer{}, false, call{op: "LoadBalancers.Get", object: object}.classify(err)
	}
	lb := got.LoadBalancer
	if !hasClusterTag(lb.Tags, cluster) {
		return clouds.LoadBalancer{}, false, &clouds.Error{Kind: clouds.KindInvalid, Op: "LoadBalancers.Get", Object: object,
			Err: fmt.Errorf("%s exists in resource group %q without the %s=%s tag", object, c.cfg.ResourceGroup, TagCluster, cluster),
			Fix: "it belongs to something else: delete it, or give the cluster another name"}
	}
	out := clouds.LoadBalancer{ID: val(lb.ID)}
	if lb.Properties != nil {
		for _, r := range lb.Properties.LoadBalancingRules {
			if val(r.Name) == lbRule && r.Properties != nil {
				out.Port = int(val(r.Properties.FrontendPort))
			}
		}
	}
	fe := frontendOf(lb)
	if fe.PublicIPAddress != nil {
		id := val(fe.PublicIPAddress.ID)
		pip, err := c.pips.Get(ctx, c.cfg.ResourceGroup, id[strings.LastIndex(id, "/")+1:], nil)
		if err != nil && !isNotFound(err) {
			return clouds.LoadBalancer{}, false, call{op: "PublicIPAddresses.Get", object: fmt.Sprintf("public IP address of %s", object)}.classify(err)
		}
		if err == nil && pip.Properties != nil {
			out.Address = val(pip.Properties.IPAddress)
		}
	} else {
		out.Address = val(fe.PrivateIPAddress)
	}
	if out.Targets, err = c.poolTargets(ctx, lb, object); err != nil {
		return clouds.LoadBalancer{}, false, err
	}
	return out, true, nil
}

// SetLoadBalancerTargets implements clouds.LoadBalancers: each target's
// NIC IP configuration joins the pool, then the NICs of other VMs leave
// it, so the pool is never emptier than it must be.
func (c *Cloud) SetLoadBalancerTargets(ctx context.Context, lb clouds.LoadBalancer, targets []clouds.Instance) error {
	name := lb.ID[strings.LastIndex(lb.ID, "/")+1:]
	object := fmt.Sprintf("backends of load balancer %q", name)
	got, err := c.lbs.Get(ctx, c.cfg.ResourceGroup, name, nil)
	if err != nil {
		return call{op: "LoadBalancers.Get", object: object}.classify(err)
	}
	pool := poolID(got.LoadBalancer)
	have := poolNICs(got.LoadBalancer)
	var want []string
	for _, in := range targets {
		node := in.Name
		if node == "" {
			node = in.ID[strings.LastIndex(in.ID, "/")+1:]
		}
		want = append(want, nicName(node))
	}
	slices.Sort(want)
	want = slices.Compact(want)
	in := func(list []string, n string) bool {
		return slices.ContainsFunc(list, func(m string) bool { return strings.EqualFold(m, n) })
	}
	for _, n := range want {
		if !in(have, n) {
			if err := c.setPool(ctx, n, pool, true); err != nil {
				return err
			}
		}
	}
	for _, n := range have {
		if !in(want, n) {
			if err := c.setPool(ctx, n, pool, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// setPool makes a NIC's primary IP configuration join (or leave) a pool.
// A NIC that is gone has left every pool.
func (c *Cloud) setPool(ctx context.Context, nic, pool string, join bool) error {
	object := fmt.Sprintf("NIC %q", nic)
	got, err := c.nics.Get(ctx, c.cfg.ResourceGroup, nic, nil)
	if isNotFound(err) && !join {
		return nil
	}
	if err != nil {
		return call{op: "NetworkInterfaces.Get", object: object}.classify(err)
	}
	n := got.Interface
	if n.Properties == nil || len(n.Properties.IPConfigurations) == 0 || n.Properties.IPConfigurations[0].Properties == nil {
		return &clouds.Error{Kind: clouds.KindInvalid, Op: "NetworkInterfaces.Get", Object: object, Err: fmt.Errorf("%s has no IP configuration", object), Fix: "delete the NIC's VM; the next Apply recreates both"}
	}
	ipc := n.Properties.IPConfigurations[0].Properties
	pools := slices.DeleteFunc(slices.Clone(ipc.LoadBalancerBackendAddressPools), func(p *armnetwork.BackendAddressPool) bool {
		return p == nil || strings.EqualFold(val(p.ID), pool)
	})
	if join {
		pools = append(pools, &armnetwork.BackendAddressPool{ID: to(pool)})
	}
	ipc.LoadBalancerBackendAddressPools = pools
	k := call{op: "NetworkInterfaces.CreateOrUpdate", object: object}
	poller, err := c.nics.BeginCreateOrUpdate(ctx, c.cfg.ResourceGroup, nic, n, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, c.pollOptions())
	}
	if isNotFound(err) && !join {
		return nil
	}
	return k.classify(err)
}

// DeleteLoadBalancer implements clouds.LoadBalancers: every load balancer
// of the resource group carrying the cluster's tag, once its NICs left
// its pool, then the cluster's public IP addresses, which a frontend no
// longer uses (PublicIPAddressCannotBeDeleted until then).
func (c *Cloud) DeleteLoadBalancer(ctx context.Context, cluster string) error {
	object := fmt.Sprintf("load balancers of cluster %q", cluster)
	var lbs []*armnetwork.LoadBalancer
	pager := c.lbs.NewListPager(c.cfg.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotFound(err) {
			return nil // no resource group, nothing in it
		}
		if err != nil {
			return call{op: "LoadBalancers.List", object: object}.classify(err)
		}
		for _, lb := range page.Value {
			if hasClusterTag(lb.Tags, cluster) {
				lbs = append(lbs, lb)
			}
		}
	}
	for _, lb := range lbs {
		for _, n := range poolNICs(*lb) {
			if err := c.setPool(ctx, n, poolID(*lb), false); err != nil {
				return err
			}
		}
		k := call{op: "LoadBalancers.Delete", object: fmt.Sprintf("load balancer %q", val(lb.Name))}
		poller, err := c.lbs.BeginDelete(ctx, c.cfg.ResourceGroup, val(lb.Name), nil)
		if err == nil {
			_, err = poller.PollUntilDone(ctx, c.pollOptions())
		}
		if err != nil && !isNotFound(err) {
			return k.classify(err)
		}
	}
	pips := c.pips.NewListPager(c.cfg.ResourceGroup, nil)
	for pips.More() {
		page, err := pips.NextPage(ctx)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return call{op: "PublicIPAddresses.List", object: fmt.Sprintf("public IP addresses of cluster %q", cluster)}.classify(err)
		}
		for _, p := range page.Value {
			if !hasClusterTag(p.Tags, cluster) {
				continue
			}
			k := call{op: "PublicIPAddresses.Delete", object: fmt.Sprintf("public IP address %q", val(p.Name))}
			poller, err := c.pips.BeginDelete(ctx, c.cfg.ResourceGroup, val(p.Name), nil)
			if err == nil {
				_, err = poller.PollUntilDone(ctx, c.pollOptions())
			}
			if err != nil && !isNotFound(err) {
				return k.classify(err)
			}
		}
	}
	return nil
}
