package arm

import (
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
)

// Azure Load Balancer and public IP addresses as the Network RP serves
// them (REST reference: https://learn.microsoft.com/rest/api/load-balancer/load-balancers/create-or-update
// and https://learn.microsoft.com/rest/api/virtualnetwork/public-ip-addresses/create-or-update;
// the models are armnetwork/v9's, which the emulator stores as they come).
// Backends are NIC IP configurations that name a pool
// (loadBalancerBackendAddressPools on the NIC); the pool's
// backendIPConfigurations are read-only and computed from the NICs, as
// ARM reports them.

// publicRange is where the lab's public IP addresses come from:
// TEST-NET-2 (RFC 5737), which no network routes, so an address the
// emulator hands out can never reach a real host.
var publicRange = netip.MustParsePrefix("198.51.100.0/24")

// LoadBalancer is an emulated load balancer as the OnLoadBalancer hook
// and the inspection API see it.
type LoadBalancer struct {
	ID, Name, Group string
	// SKU is Basic or Standard.
	SKU  string
	Tags map[string]string
	// Rules are its load-balancing rules, each with what it forwards to.
	Rules []Rule
	// Deleted is set on the last report of a deleted load balancer.
	Deleted bool
}

// Rule is one load-balancing rule.
type Rule struct {
	Name string
	// Address is the rule's frontend address: the private address in the
	// subnet, or the address of the public IP address resource.
	Address string
	// Public says Address is a public IP address.
	Public            bool
	Protocol          string
	Port, BackendPort int
	// Targets are the IDs of the VMs whose NIC IP configuration is in the rule's pool, sorted.
	Targets []string
	// Probe is the rule's health probe.
	Probe Probe
}

// Probe is a health probe as the load balancer runs it.
type Probe struct {
	Protocol string
	Port     int
	Interval time.Duration
	// Threshold is how many probes in a row take an instance in or out of rotation.
	Threshold int
}

func skuOf(name *armnetwork.LoadBalancerSKUName) string {
	// A load balancer without sku is Basic (armnetwork/v9 models.go, LoadBalancerSKU.Name; the API's default).
	if name == nil {
		return string(armnetwork.LoadBalancerSKUNameBasic)
	}
	return string(*name)
}

func pipSKU(p *armnetwork.PublicIPAddress) string {
	if p.SKU == nil || p.SKU.Name == nil {
		return string(armnetwork.PublicIPAddressSKUNameBasic)
	}
	return string(*p.SKU.Name)
}

// --- public IP addresses ---

func (s *Server) putPublicIP(rt route, id string, existing *resource, body []byte) (int, any, http.Header, *Error) {
	var in armnetwork.PublicIPAddress
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	if e := s.checkTracked(in.Location, in.Tags); e != nil {
		return 0, nil, nil, e
	}
	if in.Properties == nil {
		in.Properties = &armnetwork.PublicIPAddressPropertiesFormat{}
	}
	p := in.Properties
	sku := pipSKU(&in)
	if sku != string(armnetwork.PublicIPAddressSKUNameBasic) && sku != string(armnetwork.PublicIPAddressSKUNameStandard) {
		return 0, nil, nil, invalidParam("sku.name", "The lab serves Basic and Standard public IP addresses only, not %s.", sku)
	}
	if v := p.PublicIPAddressVersion; v != nil && *v != armnetwork.IPVersionIPv4 {
		return 0, nil, nil, invalidParam("properties.publicIPAddressVersion", "The lab serves IPv4 public IP addresses only.")
	}
	// A Standard public IP is static; its allocation method must say so
	// (StandardSkuPublicIPAddressesMustBeStatic: gh:MicrosoftDocs/azure-docs#42889,
	// gh:pulumi/pulumi-azure-native#1597).
	if sku == string(armnetwork.PublicIPAddressSKUNameStandard) && deref(p.PublicIPAllocationMethod) != armnetwork.IPAllocationMethodStatic {
		return 0, nil, nil, errf(http.StatusBadRequest, "StandardSkuPublicIPAddressesMustBeStatic", "Standard sku publicIp %s must have AllocationMethod set to Static.", id)
	}
	if existing != nil {
		// The SKU of a public IP address cannot change in place
		// (https://learn.microsoft.com/azure/virtual-network/ip-services/public-ip-upgrade-portal: upgrade is its own operation, confirm).
		if old := pipSKU(existing.pip); old != sku {
			return 0, nil, nil, errf(http.StatusBadRequest, "PropertyChangeNotAllowed", "Changing property 'sku.name' of public IP address %s from %s to %s is not allowed.", id, old, sku)
		}
		p.IPAddress = existing.pip.Properties.IPAddress
	} else {
		addr := publicRange.Addr()
		for range s.nextPIP + 10 {
			addr = addr.Next()
		}
		if !publicRange.Contains(addr.Next()) {
			return 0, nil, nil, errf(http.StatusConflict, "PublicIPCountLimitReached", "Cannot create more than %d public IP addresses for this subscription in this region.", s.nextPIP)
		}
		s.nextPIP++
		p.IPAddress = ptr(addr.String())
	}
	p.IPConfiguration = nil // read-only: the frontend using it, computed
	in.ID, in.Name, in.Type = ptr(id), ptr(rt.name), ptr("Microsoft.Network/publicIPAddresses")
	return s.accepted(&resource{id: id, group: rt.group, name: rt.name, kind: rt.kind, pip: &in}, existing != nil, "publicIPAddresses.Put", nil)
}

// pipView is a public IP address with the frontend that uses it.
func (s *Server) pipView(r *resource) *armnetwork.PublicIPAddress {
	v := clone(r.pip)
	if fe := s.pipUser(r.id); fe != "" {
		v.Properties.IPConfiguration = &armnetwork.IPConfiguration{ID: ptr(fe)}
	}
	return v
}

// pipUser is the ID of the load balancer frontend that uses a public IP address, or "".
func (s *Server) pipUser(pipID string) string {
	for _, id := range sortedKeys(s.resources) {
		o := s.resources[id]
		if o.lb == nil {
			continue
		}
		for _, fe := range o.lb.Properties.FrontendIPConfigurations {
			if fe.Properties.PublicIPAddress != nil && strings.EqualFold(deref(fe.Properties.PublicIPAddress.ID), pipID) {
				return deref(fe.ID)
			}
		}
	}
	return ""
}

// pipInUse is the refusal to delete a public IP address a frontend still
// uses (PublicIPAddressCannotBeDeleted: gh:hashicorp/terraform-provider-azurerm#2566,
// gh:ernestio/ernest#514; https://aka.ms/deletepublicip).
func pipInUse(id, user string) *Error {
	return errf(http.StatusBadRequest, "PublicIPAddressCannotBeDeleted",
		"Public IP address %s can not be deleted since it is still allocated to resource %s. In order to delete the public IP, disassociate/detach the Public IP address from the resource.  To learn how to do this, see aka.ms/deletepublicip.", id, user)
}

// --- load balancers ---

func (s *Server) putLB(rt route, id string, existing *resource, body []byte) (int, any, http.Header, *Error) {
	var in armnetwork.LoadBalancer
	if e := decode(body, &in); e != nil {
		return 0, nil, nil, e
	}
	if e := s.checkTracked(in.Location, in.Tags); e != nil {
		return 0, nil, nil, e
	}
	if in.Properties == nil {
		in.Properties = &armnetwork.LoadBalancerPropertiesFormat{}
	}
	var sku string
	if in.SKU != nil {
		sku = skuOf(in.SKU.Name)
	} else {
		sku = skuOf(nil)
	}
	if sku != string(armnetwork.LoadBalancerSKUNameBasic) && sku != string(armnetwork.LoadBalancerSKUNameStandard) {
		return 0, nil, nil, invalidParam("sku.name", "The lab serves Basic and Standard load balancers only, not %s.", sku)
	}
	p := in.Properties
	sub := func(kind, name string) string { return id + "/" + kind + "/" + name }
	fronts := map[string]*armnetwork.FrontendIPConfiguration{}
	for _, fe := range p.FrontendIPConfigurations {
		if fe == nil || fe.Name == nil || fe.Properties == nil {
			return 0, nil, nil, invalidParam("properties.frontendIPConfigurations", "Each frontend IP configuration needs a name and properties.")
		}
		fe.ID, fe.Type = ptr(sub("frontendIPConfigurations", *fe.Name)), ptr("Microsoft.Network/loadBalancers/frontendIPConfigurations")
		if e := s.checkFrontend(id, sku, fe, existing); e != nil {
			return 0, nil, nil, e
		}
		fronts[strings.ToLower(*fe.ID)] = fe
	}
	pools := map[string]bool{}
	for _, bp := range p.BackendAddressPools {
		if bp == nil || bp.Name == nil {
			return 0, nil, nil, invalidParam("properties.backendAddressPools", "Each backend address pool needs a name.")
		}
		bp.ID, bp.Type = ptr(sub("backendAddressPools", *bp.Name)), ptr("Microsoft.Network/loadBalancers/backendAddressPools")
		bp.Properties = nil // backendIPConfigurations are read-only, computed from the NICs
		pools[strings.ToLower(*bp.ID)] = true
	}
	probes := map[string]bool{}
	for _, pr := range p.Probes {
		if pr == nil || pr.Name == nil || pr.Properties == nil {
			return 0, nil, nil, invalidParam("properties.probes", "Each probe needs a name and properties.")
		}
		pr.ID, pr.Type = ptr(sub("probes", *pr.Name)), ptr("Microsoft.Network/loadBalancers/probes")
		if e := checkProbe(pr); e != nil {
			return 0, nil, nil, e
		}
		probes[strings.ToLower(*pr.ID)] = true
	}
	ref := func(r *armnetwork.SubResource, in map[string]bool, what string) *Error {
		if r == nil || !in[strings.ToLower(deref(r.ID))] {
			target := ""
			if r != nil {
				target = deref(r.ID)
			}
			return errf(http.StatusBadRequest, "InvalidResourceReference", "Resource %s referenced by resource %s was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.", target, id+" ("+what+")")
		}
		return nil
	}
	frontIDs := map[string]bool{}
	for k := range fronts {
		frontIDs[k] = true
	}
	outboundFronts := map[string]bool{}
	for _, o := range p.OutboundRules {
		if o == nil || o.Name == nil || o.Properties == nil {
			return 0, nil, nil, invalidParam("properties.outboundRules", "Each outbound rule needs a name and properties.")
		}
		o.ID, o.Type = ptr(sub("outboundRules", *o.Name)), ptr("Microsoft.Network/loadBalancers/outboundRules")
		// Outbound rules are a Standard load balancer's, on public frontends
		// (https://learn.microsoft.com/azure/load-balancer/outbound-rules#limitations).
		if sku != string(armnetwork.LoadBalancerSKUNameStandard) {
			return 0, nil, nil, invalidParam("properties.outboundRules", "Outbound rules are supported on Standard load balancers only.")
		}
		if e := ref(o.Properties.BackendAddressPool, pools, "outbound rule "+*o.Name); e != nil {
			return 0, nil, nil, e
		}
		if len(o.Properties.FrontendIPConfigurations) == 0 {
			return 0, nil, nil, invalidParam("properties.outboundRules.frontendIPConfigurations", "Outbound rule %s needs a frontend.", *o.Name)
		}
		for _, f := range o.Properties.FrontendIPConfigurations {
			if e := ref(f, frontIDs, "outbound rule "+*o.Name); e != nil {
				return 0, nil, nil, e
			}
			if fronts[strings.ToLower(deref(f.ID))].Properties.PublicIPAddress == nil {
				return 0, nil, nil, invalidParam("properties.outboundRules.frontendIPConfigurations", "Outbound rule %s must use a public frontend.", *o.Name)
			}
			outboundFronts[strings.ToLower(deref(f.ID))] = true
		}
	}
	for _, lr := range p.LoadBalancingRules {
		if lr == nil || lr.Name == nil || lr.Properties == nil {
			return 0, nil, nil, invalidParam("properties.loadBalancingRules", "Each load-balancing rule needs a name and properties.")
		}
		lr.ID, lr.Type = ptr(sub("loadBalancingRules", *lr.Name)), ptr("Microsoft.Network/loadBalancers/loadBalancingRules")
		q := lr.Properties
		for _, c := range []struct {
			r    *armnetwork.SubResource
			in   map[string]bool
			what string
		}{{q.FrontendIPConfiguration, frontIDs, "frontend"}, {q.BackendAddressPool, pools, "backend pool"}, {q.Probe, probes, "probe"}} {
			if c.r == nil && c.what == "probe" {
				continue // a rule may go without a probe
			}
			if e := ref(c.r, c.in, "rule "+*lr.Name+" "+c.what); e != nil {
				return 0, nil, nil, e
			}
		}
		if proto := deref(q.Protocol); proto != armnetwork.TransportProtocolTCP && proto != armnetwork.TransportProtocolUDP && proto != armnetwork.TransportProtocolAll {
			return 0, nil, nil, invalidParam("properties.loadBalancingRules.protocol", "Rule %s has protocol %q; use Tcp, Udp or All.", *lr.Name, proto)
		}
		// Ports are 1-65534 (0 only for HA ports, protocol All on an internal Standard load balancer), armnetwork/v9 models.go LoadBalancingRulePropertiesFormat.
		for _, port := range []*int32{q.FrontendPort, q.BackendPort} {
			if port == nil || *port < 1 || *port > 65534 {
				return 0, nil, nil, invalidParam("properties.loadBalancingRules.frontendPort", "Rule %s needs frontend and backend ports between 1 and 65534.", *lr.Name)
			}
		}
		// A rule on a frontend an outbound rule also uses must leave
		// outbound SNAT to it (LoadBalancingRuleMustDisableSNATSinceSameFrontendIPConfigurationIsReferencedByOutboundRule;
		// https://learn.microsoft.com/azure/load-balancer/outbound-rules#scenario-1-configure-outbound-connectivity-to-a-specific-set-of-public-ips-or-prefix).
		if outboundFronts[strings.ToLower(deref(q.FrontendIPConfiguration.ID))] && !deref(q.DisableOutboundSnat) {
			return 0, nil, nil, errf(http.StatusBadRequest, "LoadBalancingRuleMustDisableSNATSinceSameFrontendIPConfigurationIsReferencedByOutboundRule",
				"Load balancing rule %s must have disableOutboundSnat set to true because its frontend IP configuration %s is referenced by an outbound rule.", *lr.ID, deref(q.FrontendIPConfiguration.ID))
		}
	}
	if existing != nil {
		// A pool that NICs still name cannot go (the NICs must leave it first).
		for _, bp := range existing.lb.Properties.BackendAddressPools {
			if !pools[strings.ToLower(deref(bp.ID))] {
				if ipc := s.poolMemberOf(deref(bp.ID)); ipc != "" {
					return 0, nil, nil, lbInUse(deref(bp.ID), ipc)
				}
			}
		}
	}
	in.ID, in.Name, in.Type = ptr(id), ptr(rt.name), ptr("Microsoft.Network/loadBalancers")
	if in.SKU == nil {
		in.SKU = &armnetwork.LoadBalancerSKU{Name: ptr(armnetwork.LoadBalancerSKUNameBasic)}
	}
	return s.accepted(&resource{id: id, group: rt.group, name: rt.name, kind: rt.kind, lb: &in}, existing != nil, "loadBalancers.Put", nil)
}

// checkFrontend checks one frontend and gives it its private address.
func (s *Server) checkFrontend(lbID, sku string, fe *armnetwork.FrontendIPConfiguration, existing *resource) *Error {
	fp := fe.Properties
	switch {
	case fp.Subnet != nil && fp.PublicIPAddress != nil:
		// gh:hashicorp/terraform-provider-azurerm#1622
		return errf(http.StatusBadRequest, "FrontendIPConfigHasBothSubnetAndPublicIP", "Frontend IP Configuration %s must not reference both a Subnet and a Public IP Address.", deref(fe.ID))
	case fp.Subnet == nil && fp.PublicIPAddress == nil:
		return invalidParam("properties.frontendIPConfigurations", "Frontend IP Configuration %s must reference a subnet or a public IP address.", deref(fe.ID))
	case fp.PublicIPAddress != nil:
		pipID := deref(fp.PublicIPAddress.ID)
		pip := s.resources[strings.ToLower(pipID)]
		if pip == nil || pip.pip == nil {
			return errf(http.StatusBadRequest, "InvalidResourceReference", "Resource %s referenced by resource %s was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.", pipID, lbID)
		}
		// A load balancer and its public IP addresses share one SKU
		// (PublicIPAndLBSkuDoNotMatch: gh:Azure/terraform-azurerm-loadbalancer#32;
		// https://learn.microsoft.com/azure/virtual-network/ip-services/public-ip-addresses#sku).
		if ps := pipSKU(pip.pip); !strings.EqualFold(ps, sku) {
			return errf(http.StatusBadRequest, "PublicIPAndLBSkuDoNotMatch", "%s sku load balancer %s cannot reference %s sku publicIP %s.", sku, lbID, ps, pipID)
		}
		if user := s.pipUser(pipID); user != "" && !strings.EqualFold(user, deref(fe.ID)) {
			// One public IP address serves one resource (confirm the code).
			return errf(http.StatusBadRequest, "PublicIPAddressInUse", "Public IP address %s is already used by %s.", pipID, user)
		}
		fp.PublicIPAddress = &armnetwork.PublicIPAddress{ID: ptr(pipID)}
		fp.PrivateIPAddress, fp.PrivateIPAllocationMethod = nil, nil
		return nil
	}
	subnet := deref(fp.Subnet.ID)
	pfx, ok := s.subnetPrefix(subnet)
	if !ok {
		return errf(http.StatusBadRequest, "InvalidResourceReference", "Resource %s referenced by resource %s was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.", subnet, lbID)
	}
	fp.Subnet = &armnetwork.Subnet{ID: ptr(subnet)}
	if deref(fp.PrivateIPAllocationMethod) == armnetwork.IPAllocationMethodStatic {
		a, err := netip.ParseAddr(deref(fp.PrivateIPAddress))
		if err != nil || !pfx.Contains(a) {
			return invalidParam("properties.frontendIPConfigurations.privateIPAddress", "Private static IP address %s does not belong to the range of subnet %s.", deref(fp.PrivateIPAddress), subnet)
		}
		return nil
	}
	fp.PrivateIPAllocationMethod = ptr(armnetwork.IPAllocationMethodDynamic)
	if existing != nil {
		for _, old := range existing.lb.Properties.FrontendIPConfigurations {
			if strings.EqualFold(deref(old.ID), deref(fe.ID)) && old.Properties.Subnet != nil && strings.EqualFold(deref(old.Properties.Subnet.ID), subnet) && old.Properties.PrivateIPAddress != nil {
				fp.PrivateIPAddress = old.Properties.PrivateIPAddress
				return nil
			}
		}
	}
	addr, e := s.allocIP(subnet, pfx)
	if e != nil {
		return e
	}
	fp.PrivateIPAddress = ptr(addr)
	return nil
}

// checkProbe applies the probe rules of armnetwork/v9 models.go
// ProbePropertiesFormat: a port of 1-65535, an interval of at least 5
// seconds (15 when unset), a request path for Http and Https and none for Tcp.
func checkProbe(pr *armnetwork.Probe) *Error {
	q := pr.Properties
	switch deref(q.Protocol) {
	case armnetwork.ProbeProtocolTCP:
		if q.RequestPath != nil {
			return invalidParam("properties.probes.requestPath", "Probe %s uses Tcp and must not set a request path.", deref(pr.Name))
		}
	case armnetwork.ProbeProtocolHTTP, armnetwork.ProbeProtocolHTTPS:
		if deref(q.RequestPath) == "" {
			return invalidParam("properties.probes.requestPath", "Probe %s uses %s and needs a request path.", deref(pr.Name), deref(q.Protocol))
		}
	default:
		return invalidParam("properties.probes.protocol", "Probe %s has protocol %q; use Tcp, Http or Https.", deref(pr.Name), deref(q.Protocol))
	}
	if q.Port == nil || *q.Port < 1 || *q.Port > 65535 {
		return invalidParam("properties.probes.port", "Probe %s needs a port between 1 and 65535.", deref(pr.Name))
	}
	if q.IntervalInSeconds == nil {
		q.IntervalInSeconds = ptr(int32(15))
	}
	if *q.IntervalInSeconds < 5 {
		return invalidParam("properties.probes.intervalInSeconds", "Probe %s has an interval of %d seconds; the minimum is 5.", deref(pr.Name), *q.IntervalInSeconds)
	}
	if q.ProbeThreshold == nil {
		q.ProbeThreshold = ptr(int32(1))
	}
	return nil
}

// lbView is a load balancer with each pool's backendIPConfigurations,
// read from the NICs that name it.
func (s *Server) lbView(r *resource) *armnetwork.LoadBalancer {
	v := clone(r.lb)
	for _, bp := range v.Properties.BackendAddressPools {
		var ipcs []*armnetwork.InterfaceIPConfiguration
		for _, ipc := range s.poolMembers(deref(bp.ID)) {
			ipcs = append(ipcs, &armnetwork.InterfaceIPConfiguration{ID: ptr(ipc)})
		}
		bp.Properties = &armnetwork.BackendAddressPoolPropertiesFormat{BackendIPConfigurations: ipcs}
	}
	return v
}

// poolMembers are the IDs of the NIC IP configurations in a pool, sorted.
func (s *Server) poolMembers(poolID string) []string {
	var out []string
	for _, id := range sortedKeys(s.resources) {
		o := s.resources[id]
		if o.nic == nil {
			continue
		}
		for _, ipc := range o.nic.Properties.IPConfigurations {
			if ipc.Properties == nil {
				continue
			}
			for _, p := range ipc.Properties.LoadBalancerBackendAddressPools {
				if strings.EqualFold(deref(p.ID), poolID) {
					out = append(out, deref(ipc.ID))
				}
			}
		}
	}
	return out
}

// poolMemberOf is one NIC IP configuration in a pool, or "".
func (s *Server) poolMemberOf(poolID string) string {
	if m := s.poolMembers(poolID); len(m) > 0 {
		return m[0]
	}
	return ""
}

// poolMember is one NIC IP configuration in any of a load balancer's pools, or "".
func (s *Server) poolMember(r *resource) string {
	for _, bp := range r.lb.Properties.BackendAddressPools {
		if m := s.poolMemberOf(deref(bp.ID)); m != "" {
			return m
		}
	}
	return ""
}

// lbInUse refuses to delete a load balancer, or drop a pool, that NIC IP
// configurations still name: the association lives on the NIC, which
// must leave the pool first (cloud-provider-azure removes backends before
// it deletes a load balancer, gh:kubernetes-sigs/cloud-provider-azure
// pkg/provider/azure_loadbalancer.go; the code is the lab's, ARM's own for
// this case is not confirmed here).
func lbInUse(id, ipc string) *Error {
	return errf(http.StatusBadRequest, "LoadBalancerInUseByNetworkInterface",
		"%s cannot be deleted because it is in use by network interface IP configuration %s. Remove the IP configuration from the backend pool first.", id, ipc)
}

// subnetUserLB finds a load balancer frontend in a subnet of the virtual
// network that the subnets in keep (lower-case IDs; nil: none) leave out.
func (s *Server) subnetUserLB(vnetID string, keep []string) (string, string) {
	for _, id := range sortedKeys(s.resources) {
		o := s.resources[id]
		if o.lb == nil {
			continue
		}
		for _, fe := range o.lb.Properties.FrontendIPConfigurations {
			if fe.Properties.Subnet == nil {
				continue
			}
			sn := strings.ToLower(deref(fe.Properties.Subnet.ID))
			if strings.HasPrefix(sn, strings.ToLower(vnetID)+"/") && !slices.Contains(keep, sn) {
				return deref(fe.Properties.Subnet.ID), deref(fe.ID)
			}
		}
	}
	return "", ""
}

// checkPools refuses a NIC IP configuration that names a pool no load
// balancer has (InvalidResourceReference, as for any missing reference),
// and keeps only the pools' IDs.
func (s *Server) checkPools(nicID string, ipc *armnetwork.InterfaceIPConfiguration) *Error {
	if ipc.Properties == nil {
		return nil
	}
	var keep []*armnetwork.BackendAddressPool
	for _, p := range ipc.Properties.LoadBalancerBackendAddressPools {
		poolID := deref(p.ID)
		lbID, _, ok := strings.Cut(strings.ToLower(poolID), "/backendaddresspools/")
		lb := s.resources[lbID]
		found := ok && lb != nil && lb.lb != nil && slices.ContainsFunc(lb.lb.Properties.BackendAddressPools, func(bp *armnetwork.BackendAddressPool) bool {
			return strings.EqualFold(deref(bp.ID), poolID)
		})
		if !found {
			return errf(http.StatusBadRequest, "InvalidResourceReference", "Resource %s referenced by resource %s was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.", poolID, nicID)
		}
		keep = append(keep, &armnetwork.BackendAddressPool{ID: ptr(poolID)})
	}
	ipc.Properties.LoadBalancerBackendAddressPools = keep
	return nil
}

// snapshotLB is a load balancer with its rules' addresses and targets. Called with s.mu held.
func (s *Server) snapshotLB(r *resource) LoadBalancer {
	out := LoadBalancer{ID: r.id, Name: r.name, Group: r.group, SKU: skuOf(r.lb.SKU.Name), Tags: map[string]string{}}
	for k, v := range r.lb.Tags {
		out.Tags[k] = deref(v)
	}
	p := r.lb.Properties
	for _, lr := range p.LoadBalancingRules {
		q := lr.Properties
		rule := Rule{Name: deref(lr.Name), Protocol: string(deref(q.Protocol)), Port: int(deref(q.FrontendPort)), BackendPort: int(deref(q.BackendPort))}
		for _, fe := range p.FrontendIPConfigurations {
			if !strings.EqualFold(deref(fe.ID), deref(q.FrontendIPConfiguration.ID)) {
				continue
			}
			if fe.Properties.PublicIPAddress != nil {
				if pip := s.resources[strings.ToLower(deref(fe.Properties.PublicIPAddress.ID))]; pip != nil && pip.pip != nil {
					rule.Address, rule.Public = deref(pip.pip.Properties.IPAddress), true
				}
			} else {
				rule.Address = deref(fe.Properties.PrivateIPAddress)
			}
		}
		for _, pr := range p.Probes {
			if q.Probe != nil && strings.EqualFold(deref(pr.ID), deref(q.Probe.ID)) {
				pp := pr.Properties
				rule.Probe = Probe{Protocol: string(deref(pp.Protocol)), Port: int(deref(pp.Port)),
					Interval: time.Duration(deref(pp.IntervalInSeconds)) * time.Second, Threshold: int(deref(pp.ProbeThreshold))}
			}
		}
		for _, ipc := range s.poolMembers(deref(q.BackendAddressPool.ID)) {
			nicID, _, _ := strings.Cut(strings.ToLower(ipc), "/ipconfigurations/")
			if nic := s.resources[nicID]; nic != nil && nic.nic != nil && nic.nic.Properties.VirtualMachine != nil {
				rule.Targets = append(rule.Targets, deref(nic.nic.Properties.VirtualMachine.ID))
			}
		}
		slices.Sort(rule.Targets)
		rule.Targets = slices.Compact(rule.Targets)
		out.Rules = append(out.Rules, rule)
	}
	return out
}

// reportLoadBalancers tells OnLoadBalancer about each provisioned load
// balancer that changed since its last report, and about each one gone.
// The reports are taken and delivered under one lock, so a slower report
// never overtakes a newer state.
func (s *Server) reportLoadBalancers() {
	hook := s.opts.OnLoadBalancer
	if hook == nil {
		return
	}
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.mu.Lock()
	var out []LoadBalancer
	for _, id := range sortedKeys(s.resources) {
		r := s.resources[id]
		if r.lb == nil || deref(r.lb.Properties.ProvisioningState) != armnetwork.ProvisioningStateSucceeded {
			continue
		}
		snap := s.snapshotLB(r)
		if last, ok := s.reported[id]; ok && reflect.DeepEqual(last, snap) {
			continue
		}
		s.reported[id] = snap
		out = append(out, snap)
	}
	for _, id := range sortedKeys(s.reported) {
		if r := s.resources[id]; r == nil || r.lb == nil {
			gone := s.reported[id]
			gone.Deleted = true
			out = append(out, gone)
			delete(s.reported, id)
		}
	}
	s.mu.Unlock()
	for _, lb := range out {
		hook(lb)
	}
}

// LoadBalancers returns every load balancer with its rules' addresses and targets, by ID.
func (s *Server) LoadBalancers() []LoadBalancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LoadBalancer
	for _, id := range sortedKeys(s.resources) {
		if r := s.resources[id]; r.lb != nil {
			out = append(out, s.snapshotLB(r))
		}
	}
	return out
}

// PublicIPs returns each public IP address resource's name and address, by ID.
func (s *Server) PublicIPs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, id := range sortedKeys(s.resources) {
		if r := s.resources[id]; r.pip != nil {
			out[r.name] = deref(r.pip.Properties.IPAddress)
		}
	}
	return out
}
