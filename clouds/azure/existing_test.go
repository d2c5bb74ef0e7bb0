package azure

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources/v4"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// ownerSubnet makes, as the network's owner would, resource group net-rg
// with virtual network shared (10.50.0.0/16) and its subnet nodes
// (10.50.1.0/24), and returns the subnet's ID.
func ownerSubnet(t *testing.T, f fixture, location string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := f.cloud.groups.CreateOrUpdate(ctx, "net-rg", armresources.ResourceGroup{Location: to(f.cfg.Location)}, nil); err != nil {
		t.Fatal(err)
	}
	poller, err := f.cloud.vnets.BeginCreateOrUpdate(ctx, "net-rg", "shared", armnetwork.VirtualNetwork{
		Location: to(location),
		Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: []*string{to("10.50.0.0/16")}},
			Subnets:      []*armnetwork.Subnet{{Name: to("nodes"), Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to("10.50.1.0/24")}}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := poller.PollUntilDone(ctx, f.cloud.pollOptions())
	if err != nil {
		t.Fatal(err)
	}
	return val(res.Properties.Subnets[0].ID)
}

// In an existing subnet the cluster makes its NSGs, admitting the subnet's
// range, joins its NICs to the subnet, converges, and on delete leaves the
// owner's virtual network and subnet.
func TestExistingSubnetAdoptedConvergedAndLeftInPlace(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	subnet := ownerSubnet(t, f, f.cfg.Location)
	cfg := f.cfg
	cfg.SubnetID = subnet
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Preflight(ctx, clouds.PreflightRequest{Cluster: "demo", Network: true, Instances: true, Quick: true, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}); err != nil {
		t.Fatalf("Preflight = %v", err)
	}
	n, err := c.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(n.SubnetID, subnet) || !strings.HasSuffix(n.ID, "/virtualNetworks/shared") {
		t.Errorf("network %+v, want the owner's virtual network and subnet", n)
	}
	want := []string{"applicationSecurityGroups/demo-cp-asg", "networkSecurityGroups/demo-control-plane-nsg", "networkSecurityGroups/demo-worker-nsg", "resourceGroups/" + group}
	if got := sorted(f.srv.Objects(group)); !slices.Equal(got, want) {
		t.Errorf("objects in the cluster's group: %v, want %v", got, want)
	}
	g, err := c.nsgs.Get(ctx, group, nsgName("demo", "worker"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range g.Properties.SecurityRules {
		if strings.HasSuffix(val(r.Name), "-nodes") && val(r.Properties.SourceAddressPrefix) != "10.50.1.0/24" {
			t.Errorf("rule %s admits %s, want the subnet's 10.50.1.0/24", val(r.Name), val(r.Properties.SourceAddressPrefix))
		}
	}
	in, err := c.EnsureInstance(ctx, instReq(t, "demo", "demo-cp-0", clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", n))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(in.PrivateIP, "10.50.1.") {
		t.Errorf("node address %s, want one of the subnet's", in.PrivateIP)
	}
	f.srv.ResetCalls()
	if again, err := c.EnsureNetwork(ctx, netReq("demo")); err != nil || !reflect.DeepEqual(again, n) || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %+v, %v, %d mutating calls %v; want the same network and none", again, err, f.srv.MutatingCalls(), f.srv.Calls())
	}
	if found, ok, err := c.FindNetwork(ctx, "demo"); err != nil || !ok || !reflect.DeepEqual(found, n) {
		t.Errorf("FindNetwork = %+v, %v, %v; want %+v", found, ok, err, n)
	}
	if err := c.DeleteInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.vnets.Get(ctx, "net-rg", "shared", nil); err != nil {
		t.Errorf("the owner's virtual network after DeleteNetwork: %v", err)
	}
	if _, ok, err := c.FindNetwork(ctx, "demo"); ok || err != nil {
		t.Errorf("FindNetwork after DeleteNetwork = %v, %v; want nothing", ok, err)
	}
}

// A subnet that does not exist, one in another location and ranges inside
// the virtual network are refused at their attribute, before anything is made.
func TestExistingSubnetRefusedAtItsField(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	subnet := ownerSubnet(t, f, f.cfg.Location)
	base := clouds.PreflightRequest{Cluster: "bad", Network: true, Quick: true, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}
	inVNet := base
	inVNet.PodCIDR = "10.50.0.0/16"
	for _, tc := range []struct {
		name, subnet, field string
		req                 clouds.PreflightRequest
	}{
		{"an unknown virtual network", strings.Replace(subnet, "/shared/", "/nope/", 1), fieldSubnet, base},
		{"an unknown subnet", strings.Replace(subnet, "/subnets/nodes", "/subnets/nope", 1), fieldSubnet, base},
		{"pods inside the virtual network", subnet, "network.pod_cidr", inVNet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.cfg
			cfg.SubnetID = tc.subnet
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			pe, ok := clouds.AsPreflightError(c.Preflight(context.Background(), tc.req))
			if !ok || pe.Field != tc.field || pe.Err.Kind != clouds.KindInvalid || pe.Err.Fix == "" {
				t.Fatalf("Preflight = %v; want a refusal at %s with a fix", pe, tc.field)
			}
			if tc.field == fieldSubnet {
				if _, err := c.EnsureNetwork(context.Background(), netReq("bad")); clouds.KindOf(err) != clouds.KindInvalid {
					t.Errorf("EnsureNetwork = %v; want the preflight's refusal", err)
				}
			}
			if got := f.srv.Objects(group); len(got) != 0 {
				t.Errorf("a refused network left %v", got)
			}
		})
	}
}

// An existing subnet's join is read on the subnet, wherever its network
// is: a role on the network's group, on the subnet itself, or none at all.
func TestExistingSubnetJoinIsCheckedOnTheSubnet(t *testing.T) {
	t.Parallel()
	reader := arm.Permission{Actions: []string{"*/read"}}
	join := arm.Permission{Actions: []string{actionJoinSubnet}}
	for _, tc := range []struct {
		name string
		// grant gives the roles beside VM Contributor and Network
		// Contributor on the cluster's group and the secrets role on the vault.
		grant func(s *arm.Server, subnet string)
		code  string // "" passes
		has   []string
	}{
		{name: "Network Contributor on the network's group", grant: func(s *arm.Server, _ string) {
			s.PermitAt(labClient, s.GroupScope("net-rg"), roleNetworkContributor)
		}},
		{name: "the join on the subnet alone", grant: func(s *arm.Server, subnet string) {
			s.PermitAt(labClient, s.GroupScope("net-rg"), reader)
			s.PermitAt(labClient, subnet, join)
		}},
		{name: "Reader on the network's group", grant: func(s *arm.Server, _ string) {
			s.PermitAt(labClient, s.GroupScope("net-rg"), reader)
		}, code: "LinkedAuthorizationFailed", has: []string{actionJoinSubnet, "Network Contributor", "--scope /subscriptions/", "/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/shared/subnets/nodes", "set azure.subnet_id"}},
		{name: "the join on the virtual network's other subnet", grant: func(s *arm.Server, subnet string) {
			s.PermitAt(labClient, s.GroupScope("net-rg"), reader)
			s.PermitAt(labClient, strings.TrimSuffix(subnet, "/nodes")+"/other", join)
		}, code: "LinkedAuthorizationFailed", has: []string{actionJoinSubnet}},
		{name: "no role on the network's group", grant: func(*arm.Server, string) {},
			code: "AuthorizationFailed", has: []string{"Microsoft.Network/virtualNetworks/read", "virtual network shared", "Network Contributor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, arm.Options{}, nil)
			subnet := ownerSubnet(t, f, f.cfg.Location)
			withGroup(t, f)
			f.srv.PermitAt(labClient, f.srv.GroupScope(group), roleVMContributor, roleNetworkContributor)
			f.srv.PermitAt(labClient, f.srv.VaultID(), roleSecretsOfficer)
			tc.grant(f.srv, subnet)
			cfg := f.cfg
			cfg.SubnetID = subnet
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := f.srv.Objects(group)
			f.srv.ResetCalls()
			err = c.Preflight(context.Background(), fullRequest())
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Preflight = %v; want nil", err)
				}
				if f.srv.Calls()["permissions.ListForResource"] != 1 {
					t.Errorf("calls %v; want one permissions list on the subnet", f.srv.Calls())
				}
				return
			}
			refused(t, f, before, err, fieldSubnet, tc.code, tc.has...)
		})
	}
}

// Without the preflight, ARM's own answer to the first NIC in a subnet
// the credentials may not join names the subnet and the role to grant there.
func TestExistingSubnetJoinRefusedByARMNamesTheSubnet(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	subnet := ownerSubnet(t, f, f.cfg.Location)
	// The roles on the cluster's group (with its write, to tag it), Reader
	// on the network's group.
	f.srv.AddGroup(group)
	f.srv.PermitAt(labClient, f.srv.GroupScope(group), roleVMContributor, roleNetworkContributor, arm.Permission{Actions: []string{"Microsoft.Resources/subscriptions/resourceGroups/write"}})
	f.srv.PermitAt(labClient, f.srv.GroupScope("net-rg"), arm.Permission{Actions: []string{"*/read"}})
	cfg := f.cfg
	cfg.SubnetID = subnet
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := c.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.EnsureInstance(ctx, instReq(t, "demo", "demo-cp-0", clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", n))
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Code != "LinkedAuthorizationFailed" || ce.Kind != clouds.KindAuth ||
		!strings.Contains(ce.Fix, "Network Contributor on "+subnet) || !strings.Contains(ce.Fix, actionJoinSubnet) {
		t.Fatalf("EnsureInstance = %v; want LinkedAuthorizationFailed whose fix grants Network Contributor on %s", err, subnet)
	}
	for _, o := range f.srv.Objects(group) {
		if strings.HasPrefix(o, "networkInterfaces/") || strings.HasPrefix(o, "virtualMachines/") {
			t.Errorf("the refused join left %s", o)
		}
	}
}

// In an existing subnet the cluster's group needs neither a virtual
// network's write nor a subnet's join; a cluster-made network needs both there.
func TestExistingSubnetNeedsNoNetworkRightsOnTheClustersGroup(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	subnet := ownerSubnet(t, f, f.cfg.Location)
	withGroup(t, f)
	f.srv.PermitAt(labClient, f.srv.GroupScope(group), arm.Permission{Actions: []string{"*"},
		NotActions: []string{"Microsoft.Network/virtualNetworks/write", actionJoinSubnet}})
	f.srv.PermitAt(labClient, f.srv.GroupScope("net-rg"), roleNetworkContributor)
	f.srv.PermitAt(labClient, f.srv.VaultID(), roleSecretsOfficer)
	cfg := f.cfg
	cfg.SubnetID = subnet
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Preflight(context.Background(), fullRequest()); err != nil {
		t.Errorf("Preflight in the existing subnet = %v; want nil", err)
	}
	f.srv.ResetCalls()
	refused(t, f, f.srv.Objects(group), f.cloud.Preflight(context.Background(), fullRequest()), fieldResourceGroup, "AuthorizationFailed",
		"Microsoft.Network/virtualNetworks/write", actionJoinSubnet)
}
