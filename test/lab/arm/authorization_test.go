package arm_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// permissionsOf lists the caller's permissions at a resource (or group)
// path below the subscription, following nextLink, and returns every
// action granted and the number of pages read.
func permissionsOf(t *testing.T, s *arm.Server, c *http.Client, tok, path string) ([]string, int) {
	t.Helper()
	next := s.URL() + "/subscriptions/" + s.SubscriptionID() + path + "/providers/Microsoft.Authorization/permissions?api-version=" + arm.AuthorizationAPIVersion
	var actions []string
	pages := 0
	for next != "" {
		res, body := do(t, c, http.MethodGet, next, tok, "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("permissions of %s: %d %v", path, res.StatusCode, body)
		}
		pages++
		items, _ := body["value"].([]any)
		for _, it := range items {
			p, _ := it.(map[string]any)
			as, _ := p["actions"].([]any)
			for _, a := range as {
				actions = append(actions, a.(string))
			}
		}
		next, _ = body["nextLink"].(string)
	}
	return actions, pages
}

const joinSubnet = "Microsoft.Network/virtualNetworks/subnets/join/action"

// TestGrantsApplyBelowTheirScope: a role granted on a resource group
// covers the group's resources but not another group's; a join granted
// on one subnet covers that subnet only; List For Resource reports what
// applies at the resource, paged; a NIC naming a subnet the caller may not
// join is refused with LinkedAuthorizationFailed naming the subnet, and
// nothing is created.
func TestGrantsApplyBelowTheirScope(t *testing.T) {
	s, c := startWith(t, arm.Options{Clients: map[string]string{"client": "secret"}, PageSize: 1})
	subnet, err := s.OwnerNetwork("net-rg", "shared", "10.20.0.0/16", "nodes", "10.20.1.0/24")
	if err != nil {
		t.Fatal(err)
	}
	vnet := strings.TrimSuffix(subnet, "/subnets/nodes")
	s.AddGroup("demo-rg")
	network := arm.Permission{Actions: []string{"Microsoft.Network/*", "Microsoft.Resources/subscriptions/resourceGroups/read"}}
	reader := arm.Permission{Actions: []string{"*/read"}}
	s.PermitAt("client", s.GroupScope("demo-rg"), network)
	s.PermitAt("client", s.SubscriptionScope(), reader)
	tok := token(t, s, c, s.URL())
	sub := s.URL() + "/subscriptions/" + s.SubscriptionID()
	demo := sub + "/resourceGroups/demo-rg/providers/Microsoft.Network/"
	q := "?api-version=" + arm.NetworkAPIVersion

	// The group's grant covers a resource in it.
	if res, body := do(t, c, http.MethodPut, demo+"networkSecurityGroups/nsg"+q, tok, `{"location":"westeurope","properties":{}}`); res.StatusCode != http.StatusCreated {
		t.Fatalf("NSG in the granted group: %d %v", res.StatusCode, body)
	}
	// It does not reach another group: writing there names the resource's scope.
	res, body := do(t, c, http.MethodPut, sub+"/resourceGroups/net-rg/providers/Microsoft.Network/networkSecurityGroups/other"+q, tok, `{"location":"westeurope","properties":{}}`)
	if msg := errMessage(body); res.StatusCode != http.StatusForbidden || errCode(body) != "AuthorizationFailed" ||
		!strings.Contains(msg, "'Microsoft.Network/networkSecurityGroups/write' over scope '/subscriptions/"+s.SubscriptionID()+"/resourceGroups/net-rg/providers/Microsoft.Network/networkSecurityGroups/other'") {
		t.Errorf("NSG in another group: %d %v", res.StatusCode, body)
	}

	nic := `{"location":"westeurope","properties":{"networkSecurityGroup":{"id":"` + s.GroupScope("demo-rg") + `/providers/Microsoft.Network/networkSecurityGroups/nsg"},` +
		`"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"` + subnet + `"},"privateIPAllocationMethod":"Dynamic"}}]}}`
	res, body = do(t, c, http.MethodPut, demo+"networkInterfaces/nic"+q, tok, nic)
	want := "does not have permission to perform action(s) '" + joinSubnet + "' on the linked scope(s) '" + subnet + "' (respectively)"
	if res.StatusCode != http.StatusForbidden || errCode(body) != "LinkedAuthorizationFailed" || !strings.Contains(errMessage(body), want) ||
		!strings.Contains(errMessage(body), "has permission to perform action 'Microsoft.Network/networkInterfaces/write' on scope '"+s.GroupScope("demo-rg")+"/providers/Microsoft.Network/networkInterfaces/nic'") {
		t.Errorf("NIC in a subnet the client may not join: %d %v; want LinkedAuthorizationFailed saying %q", res.StatusCode, body, want)
	}
	if res, _ := do(t, c, http.MethodGet, demo+"networkInterfaces/nic"+q, tok, ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("the refused NIC exists: GET %d", res.StatusCode)
	}
	if got, _ := permissionsOf(t, s, c, tok, "/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/shared"); slices.Contains(got, joinSubnet) || slices.Contains(got, "Microsoft.Network/*") || !slices.Contains(got, "*/read") {
		t.Errorf("permissions on the virtual network before any grant there = %v; want the subscription's reader alone", got)
	}

	// A join granted on the subnet: it shows on the subnet, not on its
	// virtual network above it, and the NIC may now join.
	s.PermitAt("client", subnet, arm.Permission{Actions: []string{joinSubnet}})
	onSubnet, pages := permissionsOf(t, s, c, tok, strings.TrimPrefix(subnet, s.SubscriptionScope()))
	if !slices.Contains(onSubnet, joinSubnet) || !slices.Contains(onSubnet, "*/read") || pages != 2 {
		t.Errorf("permissions on the subnet = %v in %d pages; want the join and the reader, one grant a page", onSubnet, pages)
	}
	if got, _ := permissionsOf(t, s, c, tok, strings.TrimPrefix(vnet, s.SubscriptionScope())); slices.Contains(got, joinSubnet) {
		t.Errorf("permissions on the virtual network = %v; a grant on its subnet does not apply above it", got)
	}
	if res, body := do(t, c, http.MethodPut, demo+"networkInterfaces/nic"+q, tok, nic); res.StatusCode != http.StatusCreated {
		t.Errorf("NIC after the join was granted on the subnet: %d %v", res.StatusCode, body)
	}

	// A grant on the network's group applies to the virtual network in it.
	s.PermitAt("client", subnet)
	s.PermitAt("client", s.GroupScope("net-rg"), network)
	if got, _ := permissionsOf(t, s, c, tok, strings.TrimPrefix(vnet, s.SubscriptionScope())); !slices.Contains(got, "Microsoft.Network/*") {
		t.Errorf("permissions on the virtual network with Network Contributor on its group = %v", got)
	}
	// A path that names no resource is no scope.
	bad := sub + "/resourceGroups/net-rg/providers/Microsoft.Network//virtualNetworks/shared/providers/Microsoft.Authorization/permissions?api-version=" + arm.AuthorizationAPIVersion
	if res, _ := do(t, c, http.MethodGet, bad, tok, ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("permissions of an empty path segment: %d; want 404", res.StatusCode)
	}
}

func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}
