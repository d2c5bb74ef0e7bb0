package gcp_test

import (
	"context"
	"crypto/sha1" //nolint:gosec // the thumbprint Windows shows
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/gcp"
	"github.com/mixedk8s/mixedk8s/test/lab/gce"
)

const token = "lab-token"

type env struct {
	cloud *gcp.Cloud
	srv   *gce.Server
}

func newEnv(t testing.TB, mut ...func(*gcp.Config)) env {
	t.Helper()
	srv, err := gce.New(gce.Options{Token: token, OperationDelay: 4 * time.Millisecond, BootDelay: 8 * time.Millisecond, Logf: func(format string, args ...any) {
		if strings.Contains(format, "panicked") {
			t.Errorf(format, args...)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := gcp.Config{
		Project: srv.Project(), Region: srv.Region(), Zones: srv.Zones(),
		Endpoint: srv.URL(), CABundle: srv.CACertPEM(),
		TokenSource:    oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}),
		InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PollInterval: 5 * time.Millisecond,
	}
	for _, m := range mut {
		m(&cfg)
	}
	c, err := gcp.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return env{cloud: c, srv: srv}
}

func netReq(cluster string) clouds.NetworkRequest {
	return clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.20.0.0/16", PodCIDR: "10.244.0.0/16", AdminCIDRs: []string{"198.51.100.0/24"}}
}

func linuxReq(cluster, name string, nw clouds.Network) clouds.InstanceRequest {
	return clouds.InstanceRequest{
		Cluster: cluster, Name: name, Pool: "control-plane", Role: clouds.RoleControlPlane, OS: "linux", InstanceType: "e2-standard-4", DiskGB: 40,
		Identity: clouds.NodeIdentity{AdminUser: "mixedk8s", SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMk8 provisioner"}},
		Network:  nw,
	}
}

func windowsReq(cluster, name string, nw clouds.Network) clouds.InstanceRequest {
	return clouds.InstanceRequest{
		Cluster: cluster, Name: name, Pool: "win", Role: clouds.RoleWorker, OS: "windows", WindowsVersion: "2022", InstanceType: "n2-standard-4", DiskGB: 80,
		Identity: clouds.NodeIdentity{AdminUser: "mixedk8s"}, Network: nw,
	}
}

func TestNetworkCreatesAdoptsConvergesAndDeletes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"firewall/demo-admin-cp", "firewall/demo-admin-worker", "firewall/demo-etcd", "firewall/demo-internal", "network/demo-network", "subnetwork/demo-nodes"}
	if got := e.srv.Objects("demo"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("objects = %v, want %v", got, want)
	}
	// Given a converged network, when EnsureNetwork runs again, then it only reads.
	e.srv.ResetCalls()
	nw2, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil || !reflect.DeepEqual(nw2, nw) {
		t.Fatalf("second EnsureNetwork = %v, %v; want %v", nw2, err, nw)
	}
	if m := e.srv.MutatingCalls(); m != 0 {
		t.Fatalf("converged EnsureNetwork made %d mutating calls: %v", m, e.srv.Calls())
	}
	// A changed admin range is patched in place; dropped admin CIDRs delete the admin rules.
	req := netReq("demo")
	req.AdminCIDRs = []string{"203.0.113.0/24"}
	if _, err := e.cloud.EnsureNetwork(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Calls()["firewalls.patch"]; got != 2 {
		t.Fatalf("firewalls.patch calls = %d, want 2", got)
	}
	req.AdminCIDRs = nil
	if _, err := e.cloud.EnsureNetwork(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Objects("demo"); len(got) != 4 { // the network, its subnetwork, the internal and etcd rules
		t.Fatalf("after dropping admin CIDRs: %v", got)
	}
	if found, ok, err := e.cloud.FindNetwork(ctx, "demo"); err != nil || !ok || !reflect.DeepEqual(found, nw) {
		t.Fatalf("FindNetwork = %v, %v, %v", found, ok, err)
	}
	if err := e.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Objects("demo"); len(got) != 0 {
		t.Fatalf("DeleteNetwork left %v", got)
	}
	if _, ok, err := e.cloud.FindNetwork(ctx, "demo"); ok || err != nil {
		t.Fatalf("FindNetwork after delete = %v, %v", ok, err)
	}
	// Deleting again is not an error.
	if err := e.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkOfSomeoneElseIsNotAdopted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw := rawInstances(t, e)
	_ = raw
	nets, err := compute.NewNetworksRESTClient(ctx, rawOpts(e)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nets.Close()
	op, err := nets.Insert(ctx, &computepb.InsertNetworkRequest{Project: e.srv.Project(), NetworkResource: &computepb.Network{Name: proto.String("demo-network"), AutoCreateSubnetworks: proto.Bool(false)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), "rename the cluster") {
		t.Fatalf("EnsureNetwork over a foreign network = %v, want an invalid error naming the fix", err)
	}
	if err := e.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Objects("demo"); len(got) != 1 {
		t.Fatalf("DeleteNetwork touched a foreign network: %v", got)
	}
}

func rawOpts(e env) []option.ClientOption {
	c, _ := gcp.HTTPClient(context.Background(), gcp.Config{CABundle: e.srv.CACertPEM(), TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})})
	return []option.ClientOption{option.WithHTTPClient(c), option.WithEndpoint(e.srv.URL())}
}

func rawInstances(t testing.TB, e env) *compute.InstancesClient {
	c, err := compute.NewInstancesRESTClient(context.Background(), rawOpts(e)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func zoneOf(t testing.TB, e env, name string) string {
	for _, in := range e.srv.Instances() {
		if in.Name == name {
			return in.Zone
		}
	}
	t.Fatalf("no instance %s", name)
	return ""
}

func TestInstancesCreateAdoptObserveAndDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	lin, err := e.cloud.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw))
	if err != nil {
		t.Fatal(err)
	}
	win, err := e.cloud.EnsureInstance(ctx, windowsReq("demo", "demo-win-0", nw))
	if err != nil {
		t.Fatal(err)
	}
	if lin.State != clouds.StateRunning || lin.ID == "" || lin.PrivateIP == "" || lin.Name != "demo-cp-0" || lin.OS != "linux" || lin.Tags[gcp.LabelPool] != "control-plane" {
		t.Fatalf("linux instance = %+v", lin)
	}
	if win.OS != "windows" || win.Role != clouds.RoleWorker {
		t.Fatalf("windows instance = %+v", win)
	}
	// The instance's ID is a uint64 above 2^53: it survived JSON as a string.
	if len(lin.ID) < 19 {
		t.Fatalf("instance ID %q lost precision", lin.ID)
	}
	// Given running instances, when EnsureInstance runs again, then it only reads.
	e.srv.ResetCalls()
	again, err := e.cloud.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw))
	if err != nil || again.ID != lin.ID {
		t.Fatalf("second EnsureInstance = %+v, %v", again, err)
	}
	if m := e.srv.MutatingCalls(); m != 0 {
		t.Fatalf("adopting made %d mutating calls: %v", m, e.srv.Calls())
	}
	list, err := e.cloud.Instances(ctx, "demo")
	if err != nil || len(list) != 2 {
		t.Fatalf("Instances = %v, %v", list, err)
	}
	for _, in := range e.srv.Instances() {
		if in.Labels[gcp.LabelCluster] != "demo" || in.Labels[gcp.LabelNode] != in.Name {
			t.Fatalf("labels of %s = %v", in.Name, in.Labels)
		}
		// Nothing secret in metadata: only public keys and switches.
		for k, v := range in.Metadata {
			if strings.Contains(v, "PRIVATE KEY") || strings.Contains(strings.ToLower(k), "password") {
				t.Fatalf("metadata %s of %s holds a secret", k, in.Name)
			}
		}
		if in.Metadata["enable-guest-attributes"] != "TRUE" {
			t.Fatalf("%s: guest attributes not enabled", in.Name)
		}
	}

	// Identity: the host key and thumbprint the guest published, the password it encrypted.
	obs, err := e.cloud.ObservedIdentity(ctx, lin)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := e.srv.Guest(zoneOf(t, e, "demo-cp-0"), "demo-cp-0")
	pub, _ := ssh.NewPublicKey(g.HostKey.Public())
	if len(obs.SSHHostKeys) != 1 || obs.SSHHostKeys[0] != strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) {
		t.Fatalf("observed host keys %v, guest has %s", obs.SSHHostKeys, ssh.MarshalAuthorizedKey(pub))
	}
	if got := g.AuthorizedKeys["mixedk8s"]; len(got) != 1 || !strings.HasPrefix(got[0], "ssh-ed25519 ") {
		t.Fatalf("guest users = %v", g.AuthorizedKeys)
	}
	wobs, err := e.cloud.ObservedIdentity(ctx, win)
	if err != nil {
		t.Fatal(err)
	}
	wg, _ := e.srv.Guest(zoneOf(t, e, "demo-win-0"), "demo-win-0")
	sum := sha1.Sum(wg.WinRMCert.Certificate[0]) //nolint:gosec // thumbprint
	if wobs.WinRMThumbprint != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Fatalf("thumbprint %s, guest cert %X", wobs.WinRMThumbprint, sum)
	}
	if wobs.AdminUser != "mixedk8s" || wobs.AdminPassword == "" || wobs.AdminPassword != wg.Passwords["mixedk8s"] {
		t.Fatalf("observed admin %q, password matches guest: %v", wobs.AdminUser, wobs.AdminPassword == wg.Passwords["mixedk8s"])
	}
	if strings.Contains(fmt.Sprint(wobs)+fmt.Sprintf("%#v", wobs), wobs.AdminPassword) {
		t.Fatal("Observed prints its password")
	}

	for _, in := range list {
		if err := e.cloud.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.DeleteSecrets(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Objects("demo"); len(got) != 0 {
		t.Fatalf("destroy left %v", got)
	}
	if err := e.cloud.DeleteInstance(ctx, lin); err != nil {
		t.Fatalf("deleting a deleted instance: %v", err)
	}
}

func TestStoppedInstanceIsStarted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, _ := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	in, err := e.cloud.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.StopInstance(zoneOf(t, e, "demo-cp-0"), "demo-cp-0"); err != nil {
		t.Fatal(err)
	}
	got, err := e.cloud.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw))
	if err != nil || got.ID != in.ID || got.State != clouds.StateRunning {
		t.Fatalf("EnsureInstance of a stopped instance = %+v, %v", got, err)
	}
	if e.srv.Calls()["instances.start"] != 1 {
		t.Fatalf("calls = %v", e.srv.Calls())
	}
}

func TestLostInsertReplyReusesItsRequestID(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, _ := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	// Given a Compute that acts on the insert and loses the reply,
	e.srv.Drop("instances.insert", 1)
	// when EnsureInstance retries,
	if _, err := e.cloud.EnsureInstance(ctx, linuxReq("demo", "demo-cp-0", nw)); err != nil {
		t.Fatal(err)
	}
	// then the retry carried the same requestId and got the first operation: one insert happened.
	if got := e.srv.Calls()["instances.insert"]; got != 2 {
		t.Fatalf("instances.insert calls = %d, want 2 (one lost reply, one retry)", got)
	}
	if got := e.srv.Operations()["insert"]; got != 1+6 { // the instance and the network's six objects
		t.Fatalf("insert operations = %d, want 7: %v", got, e.srv.Operations())
	}
	if got := len(e.srv.Instances()); got != 1 {
		t.Fatalf("%d instances", got)
	}
}

func TestDoneOperationWithErrorsIsAFailure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, _ := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	e.srv.Stockout("n2-standard-4", true)

	// The client library's own Wait says nothing is wrong with such an operation.
	req := windowsReq("demo", "demo-win-0", nw)
	op, err := rawInstances(t, e).Insert(ctx, &computepb.InsertInstanceRequest{Project: e.srv.Project(), Zone: e.srv.Zones()[0],
		InstanceResource: &computepb.Instance{Name: proto.String("raw-0"), MachineType: proto.String("zones/" + e.srv.Zones()[0] + "/machineTypes/n2-standard-4"),
			Disks:             []*computepb.AttachedDisk{{Boot: proto.Bool(true), AutoDelete: proto.Bool(true), InitializeParams: &computepb.AttachedDiskInitializeParams{SourceImage: proto.String(gcp.Images["linux"])}}},
			NetworkInterfaces: []*computepb.NetworkInterface{{Subnetwork: proto.String("regions/" + e.srv.Region() + "/subnetworks/" + nw.SubnetID)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(ctx); err != nil || op.Proto().GetError() == nil {
		t.Fatalf("library Wait = %v with error field %v; the emulator must model a DONE operation whose only failure is its error field", err, op.Proto().GetError())
	}

	_, err = e.cloud.EnsureInstance(ctx, req)
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Kind != clouds.KindCapacity || ce.Code != "ZONE_RESOURCE_POOL_EXHAUSTED" || !strings.Contains(ce.Fix, `pool "win"`) || !strings.Contains(ce.Fix, "instance_type") {
		t.Fatalf("EnsureInstance in a stockout = %v", err)
	}
	if n := len(e.srv.Instances()); n != 0 {
		t.Fatalf("%d instances after a stockout", n)
	}
	// Once capacity is back, a rerun is a fresh attempt: the failed
	// operation its first requestId answers with is not reported again.
	e.srv.Stockout("n2-standard-4", false)
	if _, err := e.cloud.EnsureInstance(ctx, req); err != nil {
		t.Fatalf("rerun after the stockout: %v", err)
	}
	if got := e.srv.Operations()["insert:ZONE_RESOURCE_POOL_EXHAUSTED"]; got != 2 {
		t.Fatalf("failed inserts = %d, want 2 (raw and ours): %v", got, e.srv.Operations())
	}
}

func TestErrorsKeepTheirCodeAndNameTheFix(t *testing.T) {
	type want struct {
		kind      clouds.Kind
		code, fix string
		calls     int // instances.insert calls
	}
	cases := []struct {
		name   string
		inject func(*gce.Server)
		want   want
	}{
		{"synchronous stockout", func(s *gce.Server) { s.Inject("instances.insert", 99, gce.ErrStockoutNow) },
			want{clouds.KindCapacity, "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", "instance_type", 1}},
		{"quota 403", func(s *gce.Server) { s.Inject("instances.insert", 99, gce.ErrQuotaCPUs) },
			want{clouds.KindQuota, "quotaExceeded", "Quotas", 1}},
		{"quota 429 on a resource", func(s *gce.Server) {
			s.Inject("instances.insert", 99, gce.Error{Status: 429, Reason: "quotaExceeded", Message: "Quota 'N2_CPUS' exceeded.  Limit: 8.0 in region us-central1."})
		}, want{clouds.KindQuota, "quotaExceeded", "Quotas", 1}},
		{"missing permission", func(s *gce.Server) { s.Deny("compute.instances.create", true) },
			want{clouds.KindAuth, "compute.instances.create", "grant compute.instances.create", 1}},
		{"rate limit 403 retried", func(s *gce.Server) { s.Inject("instances.insert", 2, gce.ErrRateLimit) }, want{calls: 3}},
		{"rate limit 429 retried", func(s *gce.Server) { s.Inject("instances.insert", 3, gce.ErrTooMany) }, want{calls: 4}},
		{"5xx retried", func(s *gce.Server) { s.Inject("instances.insert", 2, gce.ErrBackend) }, want{calls: 3}},
		{"invalid machine type", nil, want{clouds.KindInvalid, "invalid", "instance_type", 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			nw, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
			if err != nil {
				t.Fatal(err)
			}
			req := linuxReq("demo", "demo-cp-0", nw)
			if tc.inject != nil {
				tc.inject(e.srv)
			} else {
				req.InstanceType = "z9-huge-7"
			}
			_, err = e.cloud.EnsureInstance(ctx, req)
			if got := e.srv.Calls()["instances.insert"]; got != tc.want.calls {
				t.Errorf("instances.insert calls = %d, want %d", got, tc.want.calls)
			}
			if tc.want.code == "" {
				if err != nil {
					t.Fatalf("retryable fault not retried: %v", err)
				}
				return
			}
			var ce *clouds.Error
			if !errors.As(err, &ce) || ce.Kind != tc.want.kind || ce.Code != tc.want.code || !strings.Contains(ce.Fix+ce.Error(), tc.want.fix) {
				t.Fatalf("error = %v (kind %v), want kind %v code %q fix with %q", err, clouds.KindOf(err), tc.want.kind, tc.want.code, tc.want.fix)
			}
		})
	}
}

func TestProjectCredentialsAndSecretPermissions(t *testing.T) {
	ctx := context.Background()
	t.Run("project that does not exist", func(t *testing.T) {
		e := newEnv(t, func(c *gcp.Config) { c.Project = "no-such-project" })
		_, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
		if clouds.KindOf(err) != clouds.KindNotFound || !strings.Contains(err.Error(), "project ID") {
			t.Fatalf("EnsureNetwork in a missing project = %v", err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		e := newEnv(t, func(c *gcp.Config) { c.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "stolen"}) })
		_, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
		if clouds.KindOf(err) != clouds.KindAuth || !strings.Contains(err.Error(), "application-default") {
			t.Fatalf("EnsureNetwork with a bad token = %v", err)
		}
	})
	t.Run("secret access denied", func(t *testing.T) {
		e := newEnv(t)
		e.srv.Deny("secretmanager.versions.access", true)
		_, _, err := e.cloud.Secret(ctx, "demo", "seed")
		var ce *clouds.Error
		if !errors.As(err, &ce) || ce.Kind != clouds.KindAuth || ce.Code != "secretmanager.versions.access" {
			t.Fatalf("Secret without permission = %v", err)
		}
	})
	t.Run("zone outside the region", func(t *testing.T) {
		_, err := gcp.New(ctx, gcp.Config{Project: "p", Region: "us-central1", Zones: []string{"europe-west1-b"}, TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"})})
		if err == nil || !strings.Contains(err.Error(), "not in region") {
			t.Fatalf("New with a foreign zone = %v", err)
		}
	})
}

func TestRequestsGCECannotRunAreRefusedBeforeAnyCall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nw, _ := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	hv := windowsReq("demo", "demo-win-0", nw)
	hv.NestedVirtualization = true
	long := windowsReq("demo", "demo-windows-pool-0", nw)
	for name, tc := range map[string]struct {
		req  clouds.InstanceRequest
		want string
	}{
		// Raw first-boot data cannot be asked for: InstanceRequest carries only the identity.
		"hyper-v": {hv, "KVM"}, "long windows name": {long, "15 characters"},
	} {
		e.srv.ResetCalls()
		_, err := e.cloud.EnsureInstance(ctx, tc.req)
		if clouds.KindOf(err) != clouds.KindInvalid || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%s: %v", name, err)
		}
		if n := len(e.srv.Calls()); n != 0 {
			t.Errorf("%s: made calls %v", name, e.srv.Calls())
		}
	}
}

func TestInstancesPagesThroughEveryZone(t *testing.T) {
	e := newEnv(t, func(c *gcp.Config) { c.PageSize = 3 })
	ctx := context.Background()
	nw, _ := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	createNodes(t, e, nw, 7)
	e.srv.ResetCalls()
	list, err := e.cloud.Instances(ctx, "demo")
	if err != nil || len(list) != 7 {
		t.Fatalf("Instances = %d, %v", len(list), err)
	}
	if got := e.srv.Calls()["instances.aggregatedList"]; got != 3 {
		t.Fatalf("aggregatedList calls = %d, want 3 pages of 3", got)
	}
	zones := map[string]bool{}
	for _, in := range e.srv.Instances() {
		zones[in.Zone] = true
	}
	if len(zones) < 2 {
		t.Fatalf("nodes all in one zone: %v", zones)
	}
	other, err := e.cloud.Instances(ctx, "other")
	if err != nil || len(other) != 0 {
		t.Fatalf("another cluster sees %v, %v", other, err)
	}
}

func createNodes(t testing.TB, e env, nw clouds.Network, n int) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			req := linuxReq("demo", fmt.Sprintf("demo-w-%d", i), nw)
			req.Pool, req.Role = "workers", clouds.RoleWorker
			_, err := e.cloud.EnsureInstance(context.Background(), req)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestSecretsAgreeUnderRaceAndAreDeleted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = e.cloud.EnsureSecret(ctx, "demo", "node/demo-w-0/winrm", []byte{byte('a' + i)})
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || string(got[i]) != string(got[0]) {
			t.Fatalf("EnsureSecret %d = %q, %v; first = %q", i, got[i], errs[i], got[0])
		}
	}
	if v, ok := e.srv.SecretValue(gcp.SecretID("demo", "node/demo-w-0/winrm")); !ok || string(v) != string(got[0]) {
		t.Fatalf("stored %q", v)
	}
	if gcp.SecretID("demo", "a/b") == gcp.SecretID("demo", "a_2fb") {
		t.Fatal("secret IDs collide")
	}
	if _, err := e.cloud.EnsureSecret(ctx, "demo-two", "seed", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.DeleteSecrets(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.cloud.Secret(ctx, "demo", "node/demo-w-0/winrm"); ok || err != nil {
		t.Fatalf("secret after DeleteSecrets: %v, %v", ok, err)
	}
	if _, ok, _ := e.cloud.Secret(ctx, "demo-two", "seed"); !ok {
		t.Fatal("DeleteSecrets reached another cluster")
	}
}

func TestLostRepliesOfEveryMutationConverge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, m := range []string{"networks.insert", "subnetworks.insert", "firewalls.insert", "instances.insert", "instances.delete", "secrets.create", "secrets.addVersion", "zoneOperations.wait", "instances.aggregatedList"} {
		e.srv.Drop(m, 1)
	}
	nw, err := e.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := e.cloud.EnsureInstance(ctx, windowsReq("demo", "demo-win-0", nw))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cloud.Instances(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.DeleteInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.DeleteSecrets(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Objects("demo"); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
	ops := e.srv.Operations()
	if ops["insert"] != 7 {
		t.Fatalf("operations %v: a lost reply made a duplicate", ops)
	}
}

// BenchmarkObserve reports the Compute calls one Instances call costs: the
// same at 20 and at 200 instances, since one aggregated page holds 500.
func BenchmarkObserve(b *testing.B) {
	for _, n := range []int{20, 200} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			e := newEnv(b)
			nw, err := e.cloud.EnsureNetwork(context.Background(), netReq("demo"))
			if err != nil {
				b.Fatal(err)
			}
			createNodes(b, e, nw, n)
			e.srv.ResetCalls()
			b.ResetTimer()
			for b.Loop() {
				list, err := e.cloud.Instances(context.Background(), "demo")
				if err != nil || len(list) != n {
					b.Fatalf("Instances = %d, %v", len(list), err)
				}
			}
			b.ReportMetric(float64(e.srv.ComputeCalls())/float64(b.N), "calls/observe")
		})
	}
}

var _ = http.StatusOK
