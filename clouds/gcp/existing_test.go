package gcp_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"golang.org/x/oauth2"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/gcp"
)

// In an existing network (here one another configuration made: "owner"'s,
// 10.20.0.0/16) the cluster makes only its firewall rules, its instance
// goes in the owner's subnetwork, everything converges, and deleting the
// cluster's network leaves the owner's.
func TestExistingNetworkAdoptedConvergedAndLeftInPlace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.cloud.EnsureNetwork(ctx, netReq("owner")); err != nil {
		t.Fatal(err)
	}
	ownerObjects := e.srv.Objects("owner")
	c := existingCloud(t, e, "owner-network", "owner-nodes")
	req := netReq("demo")
	req.NodeCIDR = "10.99.0.0/16" // not used: the rules admit the subnetwork's range
	if err := c.Preflight(ctx, clouds.PreflightRequest{Cluster: "demo", Network: true, Instances: true, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}); err != nil {
		t.Fatalf("Preflight = %v", err)
	}
	nw, err := c.EnsureNetwork(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if nw.ID != "owner-network" || nw.SubnetID != "owner-nodes" {
		t.Errorf("network %+v, want the owner's network and subnetwork", nw)
	}
	var made []string
	for _, o := range e.srv.Objects("demo") {
		kind, _, _ := strings.Cut(o, "/")
		if kind == "network" || kind == "subnetwork" {
			t.Errorf("the cluster made %s in an existing network", o)
		}
		made = append(made, o)
	}
	if !slices.Contains(made, "firewall/demo-internal") {
		t.Errorf("the cluster's objects %v, want its firewall rules", made)
	}
	inst, err := c.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inst.PrivateIP, "10.20.") {
		t.Errorf("node address %s, want one of the owner's subnetwork 10.20.0.0/16", inst.PrivateIP)
	}
	e.srv.ResetCalls()
	if _, err := c.EnsureNetwork(ctx, req); err != nil || e.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %v, %d mutating calls %v; want none", err, e.srv.MutatingCalls(), e.srv.Calls())
	}
	if found, ok, err := c.FindNetwork(ctx, "demo"); err != nil || !ok || found.ID != "owner-network" {
		t.Errorf("FindNetwork = %+v, %v, %v", found, ok, err)
	}
	if err := c.DeleteInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if left := e.srv.Objects("demo"); len(left) != 0 {
		t.Errorf("DeleteNetwork left %v", left)
	}
	if got := e.srv.Objects("owner"); !slices.Equal(got, ownerObjects) {
		t.Errorf("the owner's network after the cluster's went: %v, want %v", got, ownerObjects)
	}
}

// A network or subnetwork the project does not have, a subnetwork of
// another network and pods inside the subnetwork are refused at their field.
func TestExistingNetworkRefusedAtItsField(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, cl := range []string{"owner", "other"} {
		req := netReq(cl)
		if cl == "other" {
			req.NodeCIDR = "10.30.0.0/16"
		}
		if _, err := e.cloud.EnsureNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	// The owner's network has a second subnetwork, which it routes to like the first.
	if err := e.srv.OwnerNetwork(ctx, "owner-network", "owner-batch", "10.40.0.0/20"); err != nil {
		t.Fatal(err)
	}
	base := clouds.PreflightRequest{Cluster: "bad", Network: true, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}
	inside := base
	inside.ServiceCIDR = "10.20.128.0/20"
	besides := base
	besides.PodCIDR = "10.40.0.0/16"
	for _, tc := range []struct {
		name, network, subnetwork, field string
		req                              clouds.PreflightRequest
	}{
		{"an unknown network", "nope", "owner-nodes", "gcp.network", base},
		{"an unknown subnetwork", "owner-network", "nope", "gcp.subnetwork", base},
		{"a subnetwork of another network", "owner-network", "other-nodes", "gcp.subnetwork", base},
		{"Services inside the subnetwork", "owner-network", "owner-nodes", "network.service_cidr", inside},
		{"pods over another subnetwork of the network", "owner-network", "owner-nodes", "network.pod_cidr", besides},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := existingCloud(t, e, tc.network, tc.subnetwork)
			pe, ok := clouds.AsPreflightError(c.Preflight(ctx, tc.req))
			if !ok || pe.Field != tc.field || pe.Err.Kind != clouds.KindInvalid || pe.Err.Fix == "" {
				t.Fatalf("Preflight = %v; want a refusal at %s with a fix", pe, tc.field)
			}
			if tc.req.PodCIDR == besides.PodCIDR && !strings.Contains(pe.Error(), "subnetwork owner-batch") {
				t.Errorf("the refusal %q does not name the subnetwork it overlaps", pe.Error())
			}
			if strings.HasPrefix(tc.field, "gcp.") {
				if _, err := c.EnsureNetwork(ctx, netReq("bad")); clouds.KindOf(err) != clouds.KindInvalid {
					t.Errorf("EnsureNetwork = %v; want the preflight's refusal", err)
				}
			}
			if left := e.srv.Objects("bad"); len(left) != 0 {
				t.Errorf("a refused network left %v", left)
			}
		})
	}
}

// existingCloud is a Cloud of e's emulator configured for an existing network.
func existingCloud(t *testing.T, e env, network, subnetwork string, mut ...func(*gcp.Config)) *gcp.Cloud {
	t.Helper()
	cfg := gcp.Config{
		Project: e.srv.Project(), Region: e.srv.Region(), Zones: e.srv.Zones(),
		Endpoint: e.srv.URL(), CABundle: e.srv.CACertPEM(),
		TokenSource:    oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}),
		InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PollInterval: 5 * time.Millisecond,
		Network: network, Subnetwork: subnetwork,
	}
	for _, m := range mut {
		m(&cfg)
	}
	c, err := gcp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// In a Shared VPC the nodes of the cluster's (service) project go in the
// host project's subnetwork, the firewall rules are made in the host
// project, the pod and Service ranges are checked against the host's
// subnetworks, and deleting the cluster's network deletes its rules there
// and leaves the host's network.
func TestSharedVPC(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const host = "net-host-1"
	if err := e.srv.OwnerSharedVPC(host, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.OwnerNetworkIn(ctx, host, "shared", "nodes", "10.70.1.0/24"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.OwnerNetworkIn(ctx, host, "shared", "batch", "10.70.8.0/22"); err != nil {
		t.Fatal(err)
	}
	inHost := func(c *gcp.Config) { c.NetworkProject = host }
	c := existingCloud(t, e, "shared", "nodes", inHost)
	pre := clouds.PreflightRequest{Cluster: "demo", Network: true, Instances: true, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}
	if err := c.Preflight(ctx, pre); err != nil {
		t.Fatalf("Preflight = %v", err)
	}
	over := pre
	over.PodCIDR = "10.70.0.0/16"
	if pe, ok := clouds.AsPreflightError(c.Preflight(ctx, over)); !ok || pe.Field != "network.pod_cidr" {
		t.Fatalf("Preflight with pods over the host's subnetworks = %v, want a refusal at network.pod_cidr", pe)
	}
	// The service project has no network of that name: only the host has.
	if pe, ok := clouds.AsPreflightError(existingCloud(t, e, "shared", "nodes").Preflight(ctx, pre)); !ok || pe.Field != "gcp.network" {
		t.Fatalf("Preflight without network_project = %v, want a refusal at gcp.network", pe)
	}
	if pe, ok := clouds.AsPreflightError(existingCloud(t, e, "nope", "nodes", inHost).Preflight(ctx, pre)); !ok || pe.Field != "gcp.network" ||
		!strings.Contains(pe.Error(), host) || !strings.Contains(pe.Error(), "gcp.network_project") {
		t.Fatalf("Preflight of an unknown host network = %v, want a refusal at gcp.network naming the host project and gcp.network_project", pe)
	}
	nw, err := c.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	rules := e.srv.Firewalls(host)
	if !slices.Contains(rules, "demo-internal") || slices.ContainsFunc(e.srv.Firewalls(e.srv.Project()), func(n string) bool { return strings.HasPrefix(n, "demo-") }) {
		t.Fatalf("host rules %v, service rules %v; want the cluster's rules in the host project only", rules, e.srv.Firewalls(e.srv.Project()))
	}
	inst, err := c.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inst.PrivateIP, "10.70.1.") {
		t.Errorf("node address %s, want one of the host's subnetwork 10.70.1.0/24", inst.PrivateIP)
	}
	got, err := rawInstances(t, e).Get(ctx, &computepb.GetInstanceRequest{Project: e.srv.Project(), Zone: zoneOf(t, e, "demo-cp-0"), Instance: "demo-cp-0"})
	if err != nil {
		t.Fatal(err)
	}
	if sub := got.GetNetworkInterfaces()[0].GetSubnetwork(); !strings.HasSuffix(sub, "projects/"+host+"/regions/"+e.srv.Region()+"/subnetworks/nodes") {
		t.Errorf("the instance's subnetwork is %s, want the host project's", sub)
	}
	e.srv.ResetCalls()
	if _, err := c.EnsureNetwork(ctx, netReq("demo")); err != nil || e.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %v, %d mutating calls; want none", err, e.srv.MutatingCalls())
	}
	if err := c.DeleteInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if left := e.srv.Objects("demo"); len(left) != 0 {
		t.Errorf("DeleteNetwork left %v", left)
	}
	if !e.srv.HasNetworkIn(host, "shared", "nodes") {
		t.Error("DeleteNetwork took the host's network")
	}
}

// Compute refuses a node in another project's subnetwork unless that
// project is a Shared VPC host the cluster's project is attached to.
func TestSharedVPCNeedsTheServiceProjectAttached(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const host = "net-host-2"
	if err := e.srv.OwnerSharedVPC(host, "someone-else"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.OwnerNetworkIn(ctx, host, "shared", "nodes", "10.70.1.0/24"); err != nil {
		t.Fatal(err)
	}
	c := existingCloud(t, e, "shared", "nodes", func(c *gcp.Config) { c.NetworkProject = host })
	nw, err := c.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw))
	if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "Cross-project references") {
		t.Fatalf("EnsureInstance in an unattached host's subnetwork = %v, want Compute's cross-project refusal", err)
	}
	if err := c.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
}
