package azure

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// reports collects the emulator's load balancer reports.
type reports struct {
	mu  sync.Mutex
	all []arm.LoadBalancer
}

func (r *reports) add(lb arm.LoadBalancer) { r.mu.Lock(); r.all = append(r.all, lb); r.mu.Unlock() }

func (r *reports) last() (arm.LoadBalancer, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.all) == 0 {
		return arm.LoadBalancer{}, 0
	}
	return r.all[len(r.all)-1], len(r.all)
}

// lbCluster is a network and control-plane VMs, ready for a load balancer.
func lbCluster(t *testing.T, opts arm.Options, cps int) (fixture, clouds.Network, []clouds.Instance) {
	t.Helper()
	f := setup(t, opts, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	var out []clouds.Instance
	for i := range cps {
		in, err := f.cloud.EnsureInstance(ctx, instReq(t, "demo", "demo-cp-"+string(rune('0'+i)), clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, in)
	}
	return f, n, out
}

func ids(ins ...clouds.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	slices.Sort(out)
	return out
}

// waitReport waits for the emulator's last report to satisfy ok.
func waitReport(t *testing.T, r *reports, ok func(arm.LoadBalancer) bool) arm.LoadBalancer {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lb, n := r.last()
		if n > 0 && ok(lb) {
			return lb
		}
		if time.Now().After(deadline) {
			t.Fatalf("no load balancer report as expected; last: %+v", lb)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInternalLoadBalancerFrontsTheControlPlane(t *testing.T) {
	t.Parallel()
	var got reports
	f, n, cps := lbCluster(t, arm.Options{OnLoadBalancer: got.add}, 3)
	ctx := context.Background()
	req := clouds.LoadBalancerRequest{Cluster: "demo", Internal: true, Port: 6443, Network: n, AdminCIDRs: []string{"203.0.113.0/24"}}
	lb, err := f.cloud.EnsureLoadBalancer(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(lb.Address, "10.20.0.") || lb.Port != 6443 || len(lb.Targets) != 0 || !strings.HasSuffix(lb.ID, "/loadBalancers/demo-api-lb") {
		t.Errorf("EnsureLoadBalancer = %+v; want a 10.20.0.x frontend on 6443 and no targets", lb)
	}
	objs := strings.Join(f.srv.Objects(group), " ")
	if !strings.Contains(objs, "loadBalancers/demo-api-lb") || strings.Contains(objs, "publicIPAddresses/") {
		t.Errorf("objects = %s; want the load balancer and no public IP", objs)
	}
	em := f.srv.LoadBalancers()
	if len(em) != 1 || em[0].SKU != "Standard" || em[0].Tags[TagCluster] != "demo" || len(em[0].Rules) != 1 {
		t.Fatalf("emulated load balancers = %+v", em)
	}
	if r := em[0].Rules[0]; r.Protocol != "Tcp" || r.Port != 6443 || r.BackendPort != 6443 || r.Address != lb.Address || r.Public ||
		r.Probe != (arm.Probe{Protocol: "Tcp", Port: 6443, Interval: 5 * time.Second, Threshold: 2}) {
		t.Errorf("rule = %+v", r)
	}

	// Converged: a rerun reads and changes nothing, and keeps the address.
	f.srv.ResetCalls()
	again, err := f.cloud.EnsureLoadBalancer(ctx, req)
	if err != nil || again.Address != lb.Address || again.ID != lb.ID || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun = %+v, %v, %d mutating calls %v; want the same and none", again, err, f.srv.MutatingCalls(), f.srv.Calls())
	}

	// Targets: the NICs join the pool; the lab hears of each change.
	if err := f.cloud.SetLoadBalancerTargets(ctx, lb, cps[:2]); err != nil {
		t.Fatal(err)
	}
	found, ok, err := f.cloud.FindLoadBalancer(ctx, "demo")
	if err != nil || !ok || found.Address != lb.Address || found.Port != 6443 || !slices.Equal(found.Targets, ids(cps[:2]...)) {
		t.Errorf("FindLoadBalancer = %+v, %v, %v; want targets %v", found, ok, err, ids(cps[:2]...))
	}
	waitReport(t, &got, func(r arm.LoadBalancer) bool { return slices.Equal(r.Rules[0].Targets, ids(cps[:2]...)) })
	if err := f.cloud.SetLoadBalancerTargets(ctx, found, []clouds.Instance{cps[1], cps[2]}); err != nil {
		t.Fatal(err)
	}
	found, _, _ = f.cloud.FindLoadBalancer(ctx, "demo")
	if !slices.Equal(found.Targets, ids(cps[1], cps[2])) {
		t.Errorf("targets after a swap = %v; want %v", found.Targets, ids(cps[1], cps[2]))
	}
	waitReport(t, &got, func(r arm.LoadBalancer) bool { return slices.Equal(r.Rules[0].Targets, ids(cps[1], cps[2])) })
	f.srv.ResetCalls()
	if err := f.cloud.SetLoadBalancerTargets(ctx, found, []clouds.Instance{cps[2], cps[1]}); err != nil || f.srv.MutatingCalls() != 0 {
		t.Errorf("setting the same targets again: %v, %d mutating calls %v", err, f.srv.MutatingCalls(), f.srv.Calls())
	}
	// A VM that is deleted leaves the pool with its NIC.
	if err := f.cloud.DeleteInstance(ctx, cps[2]); err != nil {
		t.Fatal(err)
	}
	if found, _, _ = f.cloud.FindLoadBalancer(ctx, "demo"); !slices.Equal(found.Targets, ids(cps[1])) {
		t.Errorf("targets after deleting %s = %v; want %v", cps[2].Name, found.Targets, ids(cps[1]))
	}

	// Destroy: the NICs leave the pool, the load balancer goes; twice is no error.
	for range 2 {
		if err := f.cloud.DeleteLoadBalancer(ctx, "demo"); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := f.cloud.FindLoadBalancer(ctx, "demo"); ok || err != nil {
		t.Errorf("FindLoadBalancer after delete = %v, %v", ok, err)
	}
	if objs := strings.Join(f.srv.Objects(group), " "); strings.Contains(objs, "loadBalancers/") {
		t.Errorf("objects after DeleteLoadBalancer: %s", objs)
	}
	waitReport(t, &got, func(r arm.LoadBalancer) bool { return r.Deleted })
}

func TestPublicLoadBalancerHasAStandardStaticAddress(t *testing.T) {
	t.Parallel()
	f, n, cps := lbCluster(t, arm.Options{}, 1)
	ctx := context.Background()
	req := clouds.LoadBalancerRequest{Cluster: "demo", Port: 6443, Network: n, AdminCIDRs: []string{"203.0.113.0/24"}}
	lb, err := f.cloud.EnsureLoadBalancer(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	pips := f.srv.PublicIPs()
	if pips["demo-api-pip"] == "" || lb.Address != pips["demo-api-pip"] {
		t.Errorf("address %q, public IPs %v; want the address of demo-api-pip", lb.Address, pips)
	}
	if r := f.srv.LoadBalancers()[0].Rules[0]; !r.Public || r.Address != lb.Address {
		t.Errorf("rule = %+v", r)
	}
	f.srv.ResetCalls()
	if again, err := f.cloud.EnsureLoadBalancer(ctx, req); err != nil || again.Address != lb.Address || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun = %+v, %v, %d mutating calls %v", again, err, f.srv.MutatingCalls(), f.srv.Calls())
	}
	if err := f.cloud.SetLoadBalancerTargets(ctx, lb, cps); err != nil {
		t.Fatal(err)
	}
	// The API certificate names the address: the scheme is not changed in place.
	req.Internal = true
	_, err = f.cloud.EnsureLoadBalancer(ctx, req)
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Kind != clouds.KindInvalid || !strings.Contains(ce.Fix, "destroy and recreate") {
		t.Errorf("public to internal = %v; want an invalid error naming the fix", err)
	}
	if err := f.cloud.DeleteLoadBalancer(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	objs := strings.Join(f.srv.Objects(group), " ")
	if strings.Contains(objs, "loadBalancers/") || strings.Contains(objs, "publicIPAddresses/") {
		t.Errorf("objects after DeleteLoadBalancer: %s", objs)
	}
}

func TestLoadBalancerErrorsNameTheFix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("a load balancer of that name that is not the cluster's", func(t *testing.T) {
		t.Parallel()
		f, n, _ := lbCluster(t, arm.Options{}, 0)
		req := clouds.LoadBalancerRequest{Cluster: "demo", Internal: true, Port: 6443, Network: n}
		foreign := f.cloud.lbSpec(req, &armnetwork.FrontendIPConfigurationPropertiesFormat{Subnet: &armnetwork.Subnet{ID: to(n.SubnetID)}})
		foreign.Tags = map[string]*string{TagCluster: to("someone-else")}
		poller, err := f.cloud.lbs.BeginCreateOrUpdate(ctx, group, lbName("demo"), foreign, nil)
		if err == nil {
			_, err = poller.PollUntilDone(ctx, f.cloud.pollOptions())
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = f.cloud.FindLoadBalancer(ctx, "demo")
		var ce *clouds.Error
		if !errors.As(err, &ce) || ce.Kind != clouds.KindInvalid || !strings.Contains(ce.Fix, "belongs to something else") {
			t.Errorf("FindLoadBalancer = %v; want invalid, naming the fix", err)
		}
		f.srv.ResetCalls()
		if _, err := f.cloud.EnsureLoadBalancer(ctx, req); !errors.As(err, &ce) || ce.Kind != clouds.KindInvalid || f.srv.MutatingCalls() != 0 {
			t.Errorf("EnsureLoadBalancer = %v, %d mutating calls; want invalid and none", err, f.srv.MutatingCalls())
		}
		if _, err := f.cloud.EnsureLoadBalancer(ctx, clouds.LoadBalancerRequest{Cluster: "demo", Internal: true, Port: 0, Network: n}); clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "6443") {
			t.Errorf("port 0 = %v; want invalid naming 6443", err)
		}
	})
	t.Run("missing the right to join the pool", func(t *testing.T) {
		t.Parallel()
		f, n, cps := lbCluster(t, arm.Options{}, 1)
		lb, err := f.cloud.EnsureLoadBalancer(ctx, clouds.LoadBalancerRequest{Cluster: "demo", Internal: true, Port: 6443, Network: n})
		if err != nil {
			t.Fatal(err)
		}
		f.srv.Deny("Microsoft.Network/loadBalancers/backendAddressPools/join/action", true)
		err = f.cloud.SetLoadBalancerTargets(ctx, lb, cps)
		var ce *clouds.Error
		if !errors.As(err, &ce) || ce.Kind != clouds.KindAuth || ce.Code != "LinkedAuthorizationFailed" || !strings.Contains(ce.Fix, "Network Contributor") {
			t.Errorf("SetLoadBalancerTargets = %v; want LinkedAuthorizationFailed naming Network Contributor", err)
		}
	})
	t.Run("no network", func(t *testing.T) {
		t.Parallel()
		f := setup(t, arm.Options{}, nil)
		_, err := f.cloud.EnsureLoadBalancer(ctx, clouds.LoadBalancerRequest{Cluster: "demo", Internal: true, Port: 6443})
		if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "network") {
			t.Errorf("without a network = %v; want invalid naming the network", err)
		}
	})
}
