package gcp_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/gcp"
)

// lbObjects are the load-balancing objects among a cluster's objects.
func lbObjects(objs []string) []string {
	var out []string
	for _, o := range objs {
		if !strings.HasPrefix(o, "instance/") && !strings.HasPrefix(o, "disk/") && !strings.HasPrefix(o, "network/") &&
			!strings.HasPrefix(o, "subnetwork/") && !strings.HasPrefix(o, "secret/") && !slices.Contains([]string{"firewall/demo-internal", "firewall/demo-etcd", "firewall/demo-admin-cp", "firewall/demo-admin-worker"}, o) {
			out = append(out, o)
		}
	}
	return out
}

func lbReq(nw clouds.Network, internal bool) clouds.LoadBalancerRequest {
	return clouds.LoadBalancerRequest{Cluster: "demo", Internal: internal, Port: 6443, Network: nw, AdminCIDRs: []string{"198.51.100.0/24"}}
}

func ids(ins ...clouds.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	slices.Sort(out)
	return out
}

// Given a cluster's network and two control planes, when the internal load
// balancer is ensured, then Compute holds the health check, backend
// service, one instance group per zone, the reserved address in the
// cluster's subnetwork, the forwarding rule and the probes' firewall rule;
// ensuring it again only reads; the targets follow SetLoadBalancerTargets;
// and DeleteLoadBalancer removes every object, in an order Compute accepts.
func TestInternalLoadBalancerCreatesConvergesTargetsAndDeletes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	var cps []clouds.Instance
	for _, name := range []string{"demo-cp-0", "demo-cp-1", "demo-cp-2"} {
		in, err := e.cloud.EnsureInstance(ctx, linuxReq("demo", name, nw))
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, in)
	}
	lb, err := e.cloud.EnsureLoadBalancer(ctx, lbReq(nw, true))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"address/demo-api", "backendservice/demo-api", "firewall/demo-api-health", "forwardingrule/demo-api", "healthcheck/demo-api"}
	for _, z := range e.srv.Zones() {
		want = append(want, "instancegroup/demo-api-"+z)
	}
	slices.Sort(want)
	if got := lbObjects(e.srv.Objects("demo")); !slices.Equal(got, want) {
		t.Fatalf("load-balancing objects = %v, want %v", got, want)
	}
	if ip, err := netip.ParseAddr(lb.Address); err != nil || !netip.MustParsePrefix("10.20.0.0/16").Contains(ip) || lb.Port != 6443 || len(lb.Targets) != 0 {
		t.Fatalf("load balancer = %+v, want an address in the node subnetwork, port 6443, no targets", lb)
	}
	snap := e.srv.LoadBalancers()
	if len(snap) != 1 || snap[0].Scheme != "INTERNAL" || snap[0].Labels[gcp.LabelCluster] != "demo" || snap[0].Health.Interval != 5*time.Second ||
		snap[0].Health.Healthy != 2 || snap[0].Health.Unhealthy != 2 || snap[0].Health.Port != 6443 || !slices.Equal(snap[0].Ports, []int{6443}) {
		t.Fatalf("emulated load balancer = %+v", snap)
	}

	// Converged: a second Ensure only reads and returns the same load balancer.
	e.srv.ResetCalls()
	again, err := e.cloud.EnsureLoadBalancer(ctx, lbReq(nw, true))
	if err != nil || again.ID != lb.ID || again.Address != lb.Address {
		t.Fatalf("second EnsureLoadBalancer = %+v, %v; want %+v", again, err, lb)
	}
	if m := e.srv.MutatingCalls(); m != 0 {
		t.Fatalf("converged EnsureLoadBalancer made %d mutating calls: %v", m, e.srv.Calls())
	}

	if err := e.cloud.SetLoadBalancerTargets(ctx, lb, cps); err != nil {
		t.Fatal(err)
	}
	found, ok, err := e.cloud.FindLoadBalancer(ctx, "demo")
	if err != nil || !ok || !slices.Equal(found.Targets, ids(cps...)) || found.Address != lb.Address || found.Port != 6443 {
		t.Fatalf("FindLoadBalancer = %+v, %v, %v; want targets %v", found, ok, err, ids(cps...))
	}
	if got := e.srv.LoadBalancers()[0].Targets; !slices.Equal(got, ids(cps...)) {
		t.Fatalf("emulated targets = %v, want %v", got, ids(cps...))
	}
	// Setting the same targets again changes nothing.
	e.srv.ResetCalls()
	if err := e.cloud.SetLoadBalancerTargets(ctx, lb, cps); err != nil || e.srv.MutatingCalls() != 0 {
		t.Fatalf("same targets again: %v, %d mutating calls", err, e.srv.MutatingCalls())
	}
	if err := e.cloud.SetLoadBalancerTargets(ctx, lb, cps[1:2]); err != nil {
		t.Fatal(err)
	}
	if found, _, _ := e.cloud.FindLoadBalancer(ctx, "demo"); !slices.Equal(found.Targets, ids(cps[1])) {
		t.Fatalf("after dropping two targets: %v, want %v", found.Targets, ids(cps[1]))
	}
	// A deleted instance leaves its group.
	if err := e.cloud.DeleteInstance(ctx, cps[1]); err != nil {
		t.Fatal(err)
	}
	if found, _, _ := e.cloud.FindLoadBalancer(ctx, "demo"); len(found.Targets) != 0 {
		t.Fatalf("targets after the instance was deleted: %v", found.Targets)
	}

	if err := e.cloud.DeleteLoadBalancer(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := lbObjects(e.srv.Objects("demo")); len(got) != 0 {
		t.Fatalf("DeleteLoadBalancer left %v", got)
	}
	if _, ok, err := e.cloud.FindLoadBalancer(ctx, "demo"); ok || err != nil {
		t.Fatalf("FindLoadBalancer after delete = %v, %v", ok, err)
	}
	if err := e.cloud.DeleteLoadBalancer(ctx, "demo"); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	for _, in := range []clouds.Instance{cps[0], cps[2]} {
		if err := e.cloud.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Objects("demo"); len(got) != 0 {
		t.Fatalf("after destroy: %v", got)
	}
}

// An external load balancer reserves an external address and admits the
// external passthrough probes' ranges; the cluster cannot then switch to
// an internal one in place, and the error says what to do.
func TestExternalLoadBalancerAndSchemeChange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := e.cloud.EnsureLoadBalancer(ctx, lbReq(nw, false))
	if err != nil {
		t.Fatal(err)
	}
	if ip := netip.MustParseAddr(lb.Address); netip.MustParsePrefix("10.20.0.0/16").Contains(ip) {
		t.Fatalf("external load balancer at %s, inside the node subnetwork", ip)
	}
	if s := e.srv.LoadBalancers(); len(s) != 1 || s[0].Scheme != "EXTERNAL" {
		t.Fatalf("emulated = %+v", s)
	}
	fws, err := compute.NewFirewallsRESTClient(ctx, rawOpts(e)...)
	if err != nil {
		t.Fatal(err)
	}
	defer fws.Close()
	fw, err := fws.Get(ctx, &computepb.GetFirewallRequest{Project: e.srv.Project(), Firewall: "demo-api-health"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22"} {
		if !slices.Contains(fw.GetSourceRanges(), r) {
			t.Errorf("health firewall sources %v lack %s", fw.GetSourceRanges(), r)
		}
	}
	if !slices.Equal(fw.GetTargetTags(), []string{"demo-control-plane"}) {
		t.Errorf("health firewall targets %v", fw.GetTargetTags())
	}
	_, err = e.cloud.EnsureLoadBalancer(ctx, lbReq(nw, true))
	if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "destroy and recreate") {
		t.Fatalf("switching to internal = %v, want an invalid error naming the fix", err)
	}
	// EnsureNetwork keeps the load balancer's firewall rule.
	if _, err := e.cloud.EnsureNetwork(ctx, netReq("demo")); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(e.srv.Objects("demo"), "firewall/demo-api-health") {
		t.Fatal("EnsureNetwork deleted the load balancer's firewall rule")
	}
	if err := e.cloud.DeleteLoadBalancer(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Objects("demo"); len(got) != 0 {
		t.Fatalf("after destroy: %v", got)
	}
}

// Replies lost after Compute acted: every insert carries its requestId and
// the group add is answered memberAlreadyExists, so the retried calls make
// one object each and the targets are what was asked.
func TestLoadBalancerLostRepliesConverge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := e.cloud.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"addresses.insert", "regionHealthChecks.insert", "instanceGroups.insert", "regionBackendServices.insert",
		"forwardingRules.insert", "forwardingRules.setLabels", "instanceGroups.addInstances"} {
		e.srv.Drop(m, 1)
	}
	lb, err := e.cloud.EnsureLoadBalancer(ctx, lbReq(nw, true))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.SetLoadBalancerTargets(ctx, lb, []clouds.Instance{cp}); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.LoadBalancers(); len(got) != 1 || !slices.Equal(got[0].Targets, ids(cp)) {
		t.Fatalf("load balancers = %+v, want one with target %s", got, cp.ID)
	}
	if n := e.srv.Calls()["forwardingRules.insert"]; n != 2 {
		t.Fatalf("forwardingRules.insert calls = %d, want the dropped one and its retry", n)
	}
	if err := e.cloud.DeleteLoadBalancer(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := lbObjects(e.srv.Objects("demo")); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
}

// A missing permission for the load balancer API names the permission and
// the fix.
func TestLoadBalancerPermissionDenied(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Deny("compute.forwardingRules.create", true)
	_, err = e.cloud.EnsureLoadBalancer(ctx, lbReq(nw, true))
	if clouds.KindOf(err) != clouds.KindAuth || !strings.Contains(err.Error(), "compute.forwardingRules.create") || !strings.Contains(err.Error(), "grant") {
		t.Fatalf("EnsureLoadBalancer without compute.forwardingRules.create = %v", err)
	}
}
