package azure

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// etcd's ports admit the control plane's NICs alone: the control-plane
// NSG's etcd rule names the cluster's application security group, the
// control-plane NIC is a member and a worker's is not, and nothing opens
// 2379-2380 to the node CIDR. A cluster an earlier release made (etcd open
// to the node CIDR, its control-plane NIC in no group) is reported as
// having no network; the next EnsureNetwork puts the NIC in the group and
// only then narrows the rule. The group cannot be deleted while the rule
// or a NIC names it, nor joined by a NIC of another virtual network.
func TestEtcdAdmitsTheControlPlaneAlone(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	asg := f.cloud.asgID("demo")
	etcdSources := func() []string {
		t.Helper()
		g, err := f.cloud.nsgs.Get(ctx, group, nsgName("demo", clouds.RoleControlPlane), nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range g.Properties.SecurityRules {
			if val(r.Properties.DestinationPortRange) != "2379-2380" {
				continue
			}
			if p := val(r.Properties.SourceAddressPrefix); p != "" {
				out = append(out, p)
			}
			for _, a := range r.Properties.SourceApplicationSecurityGroups {
				out = append(out, strings.ToLower(val(a.ID)))
			}
		}
		return out
	}
	if got := etcdSources(); !slices.Equal(got, []string{strings.ToLower(asg)}) {
		t.Errorf("etcd is open to %v, want only %s", got, asg)
	}
	cp, err := f.cloud.EnsureInstance(ctx, instReq(t, "demo", "demo-cp-0", clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", n))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cloud.EnsureInstance(ctx, instReq(t, "demo", "demo-lin-0", "lin", clouds.RoleWorker, "linux", n)); err != nil {
		t.Fatal(err)
	}
	member := func(node string) bool {
		t.Helper()
		nic, err := f.cloud.nics.Get(ctx, group, nicName(node), nil)
		if err != nil {
			t.Fatal(err)
		}
		return inASG(nic.Interface, asg)
	}
	if !member("demo-cp-0") || member("demo-lin-0") {
		t.Errorf("group members: control plane %v, worker %v; want true, false", member("demo-cp-0"), member("demo-lin-0"))
	}

	// What an earlier release left: etcd open to the node CIDR, the NIC in no group.
	old, err := f.cloud.nsgs.Get(ctx, group, nsgName("demo", clouds.RoleControlPlane), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range old.Properties.SecurityRules {
		if val(r.Name) == "etcd-control-plane" {
			r.Name = to("etcd-nodes")
			r.Properties.SourceApplicationSecurityGroups, r.Properties.SourceAddressPrefix = nil, to("10.20.0.0/16")
		}
	}
	if p, err := f.cloud.nsgs.BeginCreateOrUpdate(ctx, group, nsgName("demo", clouds.RoleControlPlane), old.SecurityGroup, nil); err != nil {
		t.Fatal(err)
	} else if _, err := p.PollUntilDone(ctx, f.cloud.pollOptions()); err != nil {
		t.Fatal(err)
	}
	nic, err := f.cloud.nics.Get(ctx, group, nicName("demo-cp-0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cloud.asgs.BeginDelete(ctx, group, asgName("demo"), nil); err == nil || !strings.Contains(err.Error(), "InUseApplicationSecurityGroupCannotBeDeleted") {
		t.Errorf("deleting the group a NIC names: %v, want it refused", err)
	}
	nic.Properties.IPConfigurations[0].Properties.ApplicationSecurityGroups = nil
	if p, err := f.cloud.nics.BeginCreateOrUpdate(ctx, group, nicName("demo-cp-0"), nic.Interface, nil); err != nil {
		t.Fatal(err)
	} else if _, err := p.PollUntilDone(ctx, f.cloud.pollOptions()); err != nil {
		t.Fatal(err)
	}
	if _, found, err := f.cloud.FindNetwork(ctx, "demo"); err != nil || found {
		t.Errorf("FindNetwork of an earlier release's network: found %v, %v; want it reported missing", found, err)
	}
	if _, err := f.cloud.EnsureNetwork(ctx, netReq("demo")); err != nil {
		t.Fatal(err)
	}
	if !member("demo-cp-0") || member("demo-lin-0") {
		t.Errorf("after the move, group members: control plane %v, worker %v; want true, false", member("demo-cp-0"), member("demo-lin-0"))
	}
	if got := etcdSources(); !slices.Equal(got, []string{strings.ToLower(asg)}) {
		t.Errorf("after the move etcd is open to %v, want only %s", got, asg)
	}
	if got, found, err := f.cloud.FindNetwork(ctx, "demo"); err != nil || !found || got.Firewalls.ControlPlane == "" {
		t.Errorf("FindNetwork after the move: %+v, %v, %v", got, found, err)
	}
	if after, err := f.cloud.nics.Get(ctx, group, nicName("demo-cp-0"), nil); err != nil || privateIP(after.Interface) != cp.PrivateIP {
		t.Errorf("the NIC's address moved with the join: %v, %v (was %s)", privateIP(after.Interface), err, cp.PrivateIP)
	}
	// The group's members share one virtual network: a NIC in another is refused.
	other, err := f.srv.OwnerNetwork("other-rg", "other", "10.60.0.0/16", "nodes", "10.60.1.0/24")
	if err != nil {
		t.Fatal(err)
	}
	stray := armnetwork.Interface{Location: to(f.cfg.Location), Properties: &armnetwork.InterfacePropertiesFormat{
		IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{Name: to("ipconfig1"), Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
			Subnet: &armnetwork.Subnet{ID: to(other)}, Primary: to(true), PrivateIPAllocationMethod: to(armnetwork.IPAllocationMethodDynamic),
			ApplicationSecurityGroups: []*armnetwork.ApplicationSecurityGroup{{ID: to(asg)}},
		}}},
	}}
	if _, err := f.cloud.nics.BeginCreateOrUpdate(ctx, group, "stray-nic", stray, nil); err == nil || !strings.Contains(err.Error(), "ApplicationSecurityGroupNicsInDifferentVirtualNetworks") {
		t.Errorf("a NIC of another virtual network joining the group: %v, want it refused", err)
	}
	f.srv.ResetCalls()
	if _, err := f.cloud.EnsureNetwork(ctx, netReq("demo")); err != nil || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %v, %d mutating calls %v; want none", err, f.srv.MutatingCalls(), f.srv.Calls())
	}
}
