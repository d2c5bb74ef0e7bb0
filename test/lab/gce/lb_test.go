package gce_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/mixedk8s/mixedk8s/test/lab/gce"
)

type bearer struct{ base http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer tok")
	return b.base.RoundTrip(r)
}

// lbFixture is an emulator with a network, a subnetwork and one running
// instance in zone a, driven by the official REST clients.
type lbFixture struct {
	srv                    *gce.Server
	project, region, zoneA string
	groups                 *compute.InstanceGroupsClient
	hcs                    *compute.RegionHealthChecksClient
	bss                    *compute.RegionBackendServicesClient
	addrs                  *compute.AddressesClient
	frs                    *compute.ForwardingRulesClient
	ins                    *compute.InstancesClient

	mu      sync.Mutex
	reports []gce.LoadBalancer
}

func (f *lbFixture) last() (gce.LoadBalancer, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reports) == 0 {
		return gce.LoadBalancer{}, 0
	}
	return f.reports[len(f.reports)-1], len(f.reports)
}

func newLBFixture(t *testing.T) *lbFixture {
	t.Helper()
	f := &lbFixture{}
	s, err := gce.New(gce.Options{Token: "tok", OperationDelay: 2 * time.Millisecond, BootDelay: 4 * time.Millisecond,
		OnLoadBalancer: func(lb gce.LoadBalancer) { f.mu.Lock(); f.reports = append(f.reports, lb); f.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM())
	hc := &http.Client{Transport: bearer{&http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	opts := []option.ClientOption{option.WithHTTPClient(hc), option.WithEndpoint(s.URL())}
	ctx := context.Background()
	f.srv, f.project, f.region, f.zoneA = s, s.Project(), s.Region(), s.Zones()[0]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var e error
	f.groups, e = compute.NewInstanceGroupsRESTClient(ctx, opts...)
	must(e)
	f.hcs, e = compute.NewRegionHealthChecksRESTClient(ctx, opts...)
	must(e)
	f.bss, e = compute.NewRegionBackendServicesRESTClient(ctx, opts...)
	must(e)
	f.addrs, e = compute.NewAddressesRESTClient(ctx, opts...)
	must(e)
	f.frs, e = compute.NewForwardingRulesRESTClient(ctx, opts...)
	must(e)
	f.ins, e = compute.NewInstancesRESTClient(ctx, opts...)
	must(e)
	nets, e := compute.NewNetworksRESTClient(ctx, opts...)
	must(e)
	subs, e := compute.NewSubnetworksRESTClient(ctx, opts...)
	must(e)
	for _, c := range []interface{ Close() error }{f.groups, f.hcs, f.bss, f.addrs, f.frs, f.ins, nets, subs} {
		t.Cleanup(func() { c.Close() })
	}
	for _, n := range []string{"n1", "n2"} {
		op, err := nets.Insert(ctx, &computepb.InsertNetworkRequest{Project: f.project, NetworkResource: &computepb.Network{Name: proto.String(n), AutoCreateSubnetworks: proto.Bool(false)}})
		must(err)
		must(op.Wait(ctx))
	}
	op, err := subs.Insert(ctx, &computepb.InsertSubnetworkRequest{Project: f.project, Region: f.region, SubnetworkResource: &computepb.Subnetwork{
		Name: proto.String("s1"), Network: proto.String("global/networks/n1"), IpCidrRange: proto.String("10.1.0.0/16")}})
	must(err)
	must(op.Wait(ctx))
	op, err = f.ins.Insert(ctx, &computepb.InsertInstanceRequest{Project: f.project, Zone: f.zoneA, InstanceResource: &computepb.Instance{
		Name: proto.String("vm1"), MachineType: proto.String("zones/" + f.zoneA + "/machineTypes/e2-standard-2"),
		Disks: []*computepb.AttachedDisk{{Boot: proto.Bool(true), AutoDelete: proto.Bool(true), InitializeParams: &computepb.AttachedDiskInitializeParams{
			SourceImage: proto.String("projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64")}}},
		NetworkInterfaces: []*computepb.NetworkInterface{{Network: proto.String("global/networks/n1"), Subnetwork: proto.String("regions/" + f.region + "/subnetworks/s1")}},
	}})
	must(err)
	must(op.Wait(ctx))
	return f
}

func (f *lbFixture) link(scope, kind, name string) string {
	return "projects/" + f.project + "/" + scope + "/" + kind + "/" + name
}

// reason is the Compute reason of a synchronous error, or "" if none.
func reason(err error) string {
	var ge *googleapi.Error
	if errors.As(err, &ge) && len(ge.Errors) > 0 {
		return ge.Errors[0].Reason
	}
	return ""
}

func wait(t *testing.T, op *compute.Operation, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := op.Proto().GetError().GetErrors(); len(e) > 0 {
		t.Fatalf("operation failed: %v", e)
	}
}

// The objects of a passthrough load balancer refer to one another, and
// Compute holds each to its rules: an instance joins only a group of its
// zone and network, once; an object in use cannot be deleted; labels
// change only with the current fingerprint; the address a rule uses is
// its own; the hook sees the forwarding rule with its members.
func TestPassthroughLoadBalancerRules(t *testing.T) {
	f := newLBFixture(t)
	ctx := context.Background()
	zoneB := f.srv.Zones()[1]
	vm := f.link("zones/"+f.zoneA, "instances", "vm1")
	addTo := func(zone, group string) error {
		op, err := f.groups.AddInstances(ctx, &computepb.AddInstancesInstanceGroupRequest{Project: f.project, Zone: zone, InstanceGroup: group,
			InstanceGroupsAddInstancesRequestResource: &computepb.InstanceGroupsAddInstancesRequest{Instances: []*computepb.InstanceReference{{Instance: proto.String(vm)}}}})
		if err == nil {
			err = op.Wait(ctx)
		}
		return err
	}
	for _, g := range []struct{ zone, name, network string }{{f.zoneA, "ga", "n1"}, {zoneB, "gb", "n1"}, {f.zoneA, "other-net", "n2"}} {
		op, err := f.groups.Insert(ctx, &computepb.InsertInstanceGroupRequest{Project: f.project, Zone: g.zone,
			InstanceGroupResource: &computepb.InstanceGroup{Name: proto.String(g.name), Network: proto.String("global/networks/" + g.network)}})
		wait(t, op, err)
	}
	if err := addTo(zoneB, "gb"); reason(err) != "invalid" {
		t.Fatalf("adding an instance of %s to a group in %s = %v, want 400 invalid", f.zoneA, zoneB, err)
	}
	if err := addTo(f.zoneA, "other-net"); reason(err) != "invalid" {
		t.Fatalf("adding an instance to a group of another network = %v, want 400 invalid", err)
	}
	if err := addTo(f.zoneA, "ga"); err != nil {
		t.Fatal(err)
	}
	if err := addTo(f.zoneA, "ga"); reason(err) != "memberAlreadyExists" {
		t.Fatalf("adding a member again = %v, want memberAlreadyExists", err)
	}

	_, err := f.hcs.Insert(ctx, &computepb.InsertRegionHealthCheckRequest{Project: f.project, Region: f.region, HealthCheckResource: &computepb.HealthCheck{
		Name: proto.String("hc"), Type: proto.String("TCP"), TcpHealthCheck: &computepb.TCPHealthCheck{Port: proto.Int32(6443)}, CheckIntervalSec: proto.Int32(4), TimeoutSec: proto.Int32(5)}})
	if reason(err) != "invalid" {
		t.Fatalf("a timeout longer than the interval = %v, want 400 invalid", err)
	}
	op, err := f.hcs.Insert(ctx, &computepb.InsertRegionHealthCheckRequest{Project: f.project, Region: f.region, HealthCheckResource: &computepb.HealthCheck{
		Name: proto.String("hc"), Type: proto.String("TCP"), TcpHealthCheck: &computepb.TCPHealthCheck{Port: proto.Int32(6443)}}})
	wait(t, op, err)
	bs := func(name, mode string) (*compute.Operation, error) {
		return f.bss.Insert(ctx, &computepb.InsertRegionBackendServiceRequest{Project: f.project, Region: f.region, BackendServiceResource: &computepb.BackendService{
			Name: proto.String(name), LoadBalancingScheme: proto.String("INTERNAL"), Protocol: proto.String("TCP"),
			HealthChecks: []string{f.link("regions/"+f.region, "healthChecks", "hc")},
			Backends:     []*computepb.Backend{{Group: proto.String(f.link("zones/"+f.zoneA, "instanceGroups", "ga")), BalancingMode: proto.String(mode)}}}})
	}
	if _, err := bs("bs", "UTILIZATION"); reason(err) != "invalid" {
		t.Fatalf("UTILIZATION on a passthrough backend service = %v, want 400 invalid", err)
	}
	op, err = bs("bs", "CONNECTION")
	wait(t, op, err)
	op, err = f.addrs.Insert(ctx, &computepb.InsertAddressRequest{Project: f.project, Region: f.region, AddressResource: &computepb.Address{
		Name: proto.String("ip"), AddressType: proto.String("INTERNAL"), Subnetwork: proto.String(f.link("regions/"+f.region, "subnetworks", "s1")),
		Labels: map[string]string{"ignored": "on-insert"}}})
	wait(t, op, err)
	addr, err := f.addrs.Get(ctx, &computepb.GetAddressRequest{Project: f.project, Region: f.region, Address: "ip"})
	if err != nil || !strings.HasPrefix(addr.GetAddress(), "10.1.") || len(addr.GetLabels()) != 0 {
		t.Fatalf("address = %v, %v; want one in 10.1.0.0/16 and no labels from insert", addr, err)
	}
	fr := func(name string) (*compute.Operation, error) {
		return f.frs.Insert(ctx, &computepb.InsertForwardingRuleRequest{Project: f.project, Region: f.region, ForwardingRuleResource: &computepb.ForwardingRule{
			Name: proto.String(name), LoadBalancingScheme: proto.String("INTERNAL"), IPProtocol: proto.String("TCP"), Ports: []string{"6443"},
			IPAddress: proto.String(addr.GetSelfLink()), BackendService: proto.String(f.link("regions/"+f.region, "backendServices", "bs")),
			Subnetwork: proto.String(f.link("regions/"+f.region, "subnetworks", "s1"))}})
	}
	op, err = fr("fr")
	wait(t, op, err)
	if _, err := fr("fr2"); reason(err) != "invalid" {
		t.Fatalf("a second rule on the same address = %v, want 400 invalid", err)
	}

	// Nothing in use can go.
	_, err = f.hcs.Delete(ctx, &computepb.DeleteRegionHealthCheckRequest{Project: f.project, Region: f.region, HealthCheck: "hc"})
	inUse := "resourceInUseByAnotherResource"
	if reason(err) != inUse {
		t.Errorf("deleting a health check a backend service uses = %v", err)
	}
	if _, err = f.addrs.Delete(ctx, &computepb.DeleteAddressRequest{Project: f.project, Region: f.region, Address: "ip"}); reason(err) != inUse {
		t.Errorf("deleting an address a forwarding rule uses = %v", err)
	}
	if _, err = f.bss.Delete(ctx, &computepb.DeleteRegionBackendServiceRequest{Project: f.project, Region: f.region, BackendService: "bs"}); reason(err) != inUse {
		t.Errorf("deleting a backend service a forwarding rule uses = %v", err)
	}
	if _, err = f.groups.Delete(ctx, &computepb.DeleteInstanceGroupRequest{Project: f.project, Zone: f.zoneA, InstanceGroup: "ga"}); reason(err) != inUse {
		t.Errorf("deleting an instance group a backend service uses = %v", err)
	}

	// Labels: a stale fingerprint is 412 conditionNotMet.
	got, err := f.frs.Get(ctx, &computepb.GetForwardingRuleRequest{Project: f.project, Region: f.region, ForwardingRule: "fr"})
	if err != nil || got.GetIPAddress() != addr.GetAddress() {
		t.Fatalf("forwarding rule = %v, %v; want it at %s", got, err, addr.GetAddress())
	}
	_, err = f.frs.SetLabels(ctx, &computepb.SetLabelsForwardingRuleRequest{Project: f.project, Region: f.region, Resource: "fr",
		RegionSetLabelsRequestResource: &computepb.RegionSetLabelsRequest{Labels: map[string]string{"k": "v"}, LabelFingerprint: proto.String("stale")}})
	if reason(err) != "conditionNotMet" {
		t.Fatalf("setLabels with a stale fingerprint = %v", err)
	}
	op, err = f.frs.SetLabels(ctx, &computepb.SetLabelsForwardingRuleRequest{Project: f.project, Region: f.region, Resource: "fr",
		RegionSetLabelsRequestResource: &computepb.RegionSetLabelsRequest{Labels: map[string]string{"k": "v"}, LabelFingerprint: got.LabelFingerprint}})
	wait(t, op, err)

	lbs := f.srv.LoadBalancers()
	vmID := fmt.Sprint(f.srv.Instances()[0].ID)
	if len(lbs) != 1 || lbs[0].Labels["k"] != "v" || !slices.Equal(lbs[0].Targets, []string{vmID}) || lbs[0].Health.Interval != 5*time.Second {
		t.Fatalf("load balancers = %+v, want fr with label k=v, target %s, 5s checks", lbs, vmID)
	}

	// A deleted instance leaves its group; then, in order, everything goes.
	op, err = f.ins.Delete(ctx, &computepb.DeleteInstanceRequest{Project: f.project, Zone: f.zoneA, Instance: "vm1"})
	wait(t, op, err)
	if lbs := f.srv.LoadBalancers(); len(lbs[0].Targets) != 0 {
		t.Fatalf("targets after the instance was deleted: %v", lbs[0].Targets)
	}
	if last, _ := f.last(); last.Name != "fr" || len(last.Targets) != 0 || last.Deleted {
		t.Fatalf("last report after the instance was deleted = %+v, want fr without targets", last)
	}
	op, err = f.frs.Delete(ctx, &computepb.DeleteForwardingRuleRequest{Project: f.project, Region: f.region, ForwardingRule: "fr"})
	wait(t, op, err)
	op, err = f.bss.Delete(ctx, &computepb.DeleteRegionBackendServiceRequest{Project: f.project, Region: f.region, BackendService: "bs"})
	wait(t, op, err)
	op, err = f.hcs.Delete(ctx, &computepb.DeleteRegionHealthCheckRequest{Project: f.project, Region: f.region, HealthCheck: "hc"})
	wait(t, op, err)
	op, err = f.addrs.Delete(ctx, &computepb.DeleteAddressRequest{Project: f.project, Region: f.region, Address: "ip"})
	wait(t, op, err)
	op, err = f.groups.Delete(ctx, &computepb.DeleteInstanceGroupRequest{Project: f.project, Zone: f.zoneA, InstanceGroup: "ga"})
	wait(t, op, err)
	if lbs := f.srv.LoadBalancers(); len(lbs) != 0 {
		t.Fatalf("load balancers after delete: %+v", lbs)
	}
	if last, _ := f.last(); last.Name != "fr" || !last.Deleted {
		t.Fatalf("last report = %+v, want fr deleted", last)
	}
}
