package arm_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// netLab is a subscription with a group, a virtual network and a NIC, and a
// way to PUT and DELETE Microsoft.Network resources in it.
type netLab struct {
	t    *testing.T
	s    *arm.Server
	c    *http.Client
	tok  string
	base string // .../resourceGroups/rg/providers/Microsoft.Network
}

func newNetLab(t *testing.T) *netLab {
	s, c := start(t)
	n := &netLab{t: t, s: s, c: c, tok: token(t, s, c, s.URL())}
	sub := s.URL() + "/subscriptions/" + s.SubscriptionID()
	if res, body := do(t, c, http.MethodPut, sub+"/resourceGroups/rg?api-version="+arm.ResourcesAPIVersion, n.tok, `{"location":"westeurope"}`); res.StatusCode >= 300 {
		t.Fatalf("group: %d %v", res.StatusCode, body)
	}
	n.base = sub + "/resourceGroups/rg/providers/Microsoft.Network"
	n.mustPut("virtualNetworks/vnet", `{"location":"westeurope","properties":{"addressSpace":{"addressPrefixes":["10.1.0.0/16"]},"subnets":[{"name":"nodes","properties":{"addressPrefix":"10.1.0.0/16"}}]}}`)
	n.mustPut("networkInterfaces/nic", n.plainNIC())
	return n
}

// id is a Microsoft.Network resource's ID.
func (n *netLab) id(path string) string {
	return "/subscriptions/" + n.s.SubscriptionID() + "/resourceGroups/rg/providers/Microsoft.Network/" + path
}

// call sends a request and returns the status and the error code, if any.
func (n *netLab) call(method, path, body string) (int, string) {
	n.t.Helper()
	res, out := do(n.t, n.c, method, n.base+"/"+path+"?api-version="+arm.NetworkAPIVersion, n.tok, body)
	return res.StatusCode, errCode(out)
}

func (n *netLab) mustPut(path, body string) {
	n.t.Helper()
	if st, code := n.call(http.MethodPut, path, body); st >= 300 {
		n.t.Fatalf("PUT %s: %d %s", path, st, code)
	}
	n.settle()
}

// settle waits out the emulator's long-running operations (20ms each).
func (n *netLab) settle() { time.Sleep(100 * time.Millisecond) }

const standardPIP = `{"location":"westeurope","sku":{"name":"Standard"},"properties":{"publicIPAllocationMethod":"Static"}}`

// lbBody is a load balancer with one frontend, one pool, a TCP probe and a TCP rule.
func (n *netLab) lbBody(sku, frontend string, outbound, disableSNAT bool) string {
	lb := n.id("loadBalancers/lb")
	out := ""
	if outbound {
		out = fmt.Sprintf(`,"outboundRules":[{"name":"out","properties":{"protocol":"All","frontendIPConfigurations":[{"id":"%s/frontendIPConfigurations/fe"}],"backendAddressPool":{"id":"%s/backendAddressPools/pool"}}}]`, lb, lb)
	}
	return fmt.Sprintf(`{"location":"westeurope","sku":{"name":"%s"},"tags":{"mixedk8s.io_cluster":"demo"},"properties":{
		"frontendIPConfigurations":[{"name":"fe","properties":%s}],
		"backendAddressPools":[{"name":"pool"}],
		"probes":[{"name":"probe","properties":{"protocol":"Tcp","port":6443,"intervalInSeconds":5,"probeThreshold":2}}],
		"loadBalancingRules":[{"name":"api","properties":{"protocol":"Tcp","frontendPort":6443,"backendPort":6443,"disableOutboundSnat":%t,
			"frontendIPConfiguration":{"id":"%s/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"%s/backendAddressPools/pool"},"probe":{"id":"%s/probes/probe"}}}]%s}}`,
		sku, frontend, disableSNAT, lb, lb, lb, out)
}

func (n *netLab) publicFrontend() string {
	return `{"publicIPAddress":{"id":"` + n.id("publicIPAddresses/pip") + `"}}`
}

func (n *netLab) privateFrontend(subnet string) string {
	return `{"subnet":{"id":"` + n.id("virtualNetworks/vnet") + `/subnets/` + subnet + `"}}`
}

// plainNIC is the NIC in the subnet and no pool.
func (n *netLab) plainNIC() string {
	return `{"location":"westeurope","properties":{"ipConfigurations":[{"name":"ipconfig1","properties":{"subnet":{"id":"` + n.id("virtualNetworks/vnet") + `/subnets/nodes"}}}]}}`
}

// nicInPool is the NIC with its IP configuration in pool.
func (n *netLab) nicInPool(pool string) string {
	return `{"location":"westeurope","properties":{"ipConfigurations":[{"name":"ipconfig1","properties":{"subnet":{"id":"` + n.id("virtualNetworks/vnet") +
		`/subnets/nodes"},"loadBalancerBackendAddressPools":[{"id":"` + pool + `"}]}}]}}`
}

func TestLoadBalancerRulesAreARMs(t *testing.T) {
	n := newNetLab(t)
	for _, tc := range []struct {
		name, path, body, code string
	}{
		{"a Standard public IP must be static", "publicIPAddresses/dyn", `{"location":"westeurope","sku":{"name":"Standard"},"properties":{"publicIPAllocationMethod":"Dynamic"}}`, "StandardSkuPublicIPAddressesMustBeStatic"},
		{"a frontend in a subnet that does not exist", "loadBalancers/lb", n.lbBody("Standard", n.privateFrontend("missing"), false, false), "InvalidResourceReference"},
		{"a frontend on a public IP that does not exist", "loadBalancers/lb", n.lbBody("Standard", n.publicFrontend(), false, false), "InvalidResourceReference"},
		{"a NIC in a pool that does not exist", "networkInterfaces/nic", n.nicInPool(n.id("loadBalancers/lb/backendAddressPools/pool")), "InvalidResourceReference"},
	} {
		if st, code := n.call(http.MethodPut, tc.path, tc.body); st != http.StatusBadRequest || code != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, st, code, tc.code)
		}
	}

	// A Basic public IP on a Standard load balancer: the SKUs must match.
	n.mustPut("publicIPAddresses/pip", `{"location":"westeurope","properties":{"publicIPAllocationMethod":"Static"}}`)
	if st, code := n.call(http.MethodPut, "loadBalancers/lb", n.lbBody("Standard", n.publicFrontend(), false, false)); st != http.StatusBadRequest || code != "PublicIPAndLBSkuDoNotMatch" {
		t.Errorf("Basic IP on a Standard load balancer: %d %s, want 400 PublicIPAndLBSkuDoNotMatch", st, code)
	}
	if st, code := n.call(http.MethodDelete, "publicIPAddresses/pip", ""); st != http.StatusAccepted {
		t.Fatalf("delete the Basic IP: %d %s", st, code)
	}
	n.settle()
	n.mustPut("publicIPAddresses/pip", standardPIP)
	both := `{"subnet":{"id":"` + n.id("virtualNetworks/vnet") + `/subnets/nodes"},"publicIPAddress":{"id":"` + n.id("publicIPAddresses/pip") + `"}}`
	if st, code := n.call(http.MethodPut, "loadBalancers/lb", n.lbBody("Standard", both, false, false)); st != http.StatusBadRequest || code != "FrontendIPConfigHasBothSubnetAndPublicIP" {
		t.Errorf("a frontend with a subnet and a public IP: %d %s", st, code)
	}
	// An outbound rule on the rule's frontend: the rule must leave SNAT to it.
	if st, code := n.call(http.MethodPut, "loadBalancers/lb", n.lbBody("Standard", n.publicFrontend(), true, false)); st != http.StatusBadRequest ||
		code != "LoadBalancingRuleMustDisableSNATSinceSameFrontendIPConfigurationIsReferencedByOutboundRule" {
		t.Errorf("outbound rule with SNAT on the rule: %d %s", st, code)
	}
	n.mustPut("loadBalancers/lb", n.lbBody("Standard", n.publicFrontend(), true, true))

	// In use: the public IP while the frontend has it, the load balancer while a NIC is in its pool.
	pool := n.id("loadBalancers/lb/backendAddressPools/pool")
	n.mustPut("networkInterfaces/nic", n.nicInPool(pool))
	if st, code := n.call(http.MethodDelete, "publicIPAddresses/pip", ""); st != http.StatusBadRequest || code != "PublicIPAddressCannotBeDeleted" {
		t.Errorf("delete the frontend's public IP: %d %s, want 400 PublicIPAddressCannotBeDeleted", st, code)
	}
	if st, code := n.call(http.MethodDelete, "loadBalancers/lb", ""); st != http.StatusBadRequest || code == "" {
		t.Errorf("delete the load balancer with a NIC in its pool: %d %q, want a 400 refusal", st, code)
	}
	lbs := n.s.LoadBalancers()
	if len(lbs) != 1 || len(lbs[0].Rules) != 1 || lbs[0].Rules[0].Address == "" || !lbs[0].Rules[0].Public || lbs[0].Rules[0].Probe.Interval != 5*time.Second || lbs[0].Rules[0].Probe.Threshold != 2 {
		t.Errorf("load balancers = %+v", lbs)
	}

	// Leaving the pool frees the load balancer, and then its public IP.
	n.mustPut("networkInterfaces/nic", n.plainNIC())
	for _, path := range []string{"loadBalancers/lb", "publicIPAddresses/pip"} {
		if st, code := n.call(http.MethodDelete, path, ""); st != http.StatusAccepted {
			t.Errorf("delete %s: %d %s", path, st, code)
		}
		n.settle()
	}
	if got := n.s.Objects("rg"); strings.Contains(strings.Join(got, " "), "loadBalancers/") || strings.Contains(strings.Join(got, " "), "publicIPAddresses/") {
		t.Errorf("objects after the deletes: %v", got)
	}
}

func TestInternalFrontendTakesASubnetAddressAndHoldsTheSubnet(t *testing.T) {
	n := newNetLab(t)
	n.mustPut("loadBalancers/lb", n.lbBody("Standard", n.privateFrontend("nodes"), false, false))
	lbs := n.s.LoadBalancers()
	if len(lbs) != 1 || lbs[0].SKU != "Standard" || len(lbs[0].Rules) != 1 || !strings.HasPrefix(lbs[0].Rules[0].Address, "10.1.0.") || lbs[0].Rules[0].Public {
		t.Fatalf("load balancers = %+v", lbs)
	}
	first := lbs[0].Rules[0].Address
	n.mustPut("loadBalancers/lb", n.lbBody("Standard", n.privateFrontend("nodes"), false, false))
	if again := n.s.LoadBalancers()[0].Rules[0].Address; again != first {
		t.Errorf("a rewrite moved the frontend from %s to %s", first, again)
	}
	if st, code := n.call(http.MethodDelete, "networkInterfaces/nic", ""); st != http.StatusAccepted {
		t.Fatalf("delete the NIC: %d %s", st, code)
	}
	n.settle()
	if st, code := n.call(http.MethodDelete, "virtualNetworks/vnet", ""); st != http.StatusBadRequest || code != "InUseSubnetCannotBeDeleted" {
		t.Errorf("delete the virtual network under a frontend: %d %s, want 400 InUseSubnetCannotBeDeleted", st, code)
	}
}
