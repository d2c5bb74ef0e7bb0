package aws

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mixedk8s/mixedk8s/clouds"
	lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

func TestMain(m *testing.M) {
	// Never let the SDK reach IMDS or read the developer's AWS configuration.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Exit(m.Run())
}

type fixture struct {
	srv   *lab.Server
	cloud *Cloud
}

func setup(t *testing.T, mod func(*Config)) fixture {
	t.Helper()
	srv, err := lab.New(lab.Options{
		Credentials:       map[string]string{"AKIDTEST": "test-secret"},
		PendingDelay:      10 * time.Millisecond,
		ShuttingDownDelay: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := Config{
		Region: srv.Region(), Zones: srv.Zones()[:2], Endpoint: srv.URL(), CABundle: srv.CACertPEM(),
		AccessKeyID: "AKIDTEST", SecretAccessKey: "test-secret",
		MaxBackoff: 5 * time.Millisecond, PollInterval: 5 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.firstBoot = fixedUserData
	return fixture{srv, c}
}

func netReq(cluster string) clouds.NetworkRequest {
	return clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.20.0.0/16", AdminCIDRs: []string{"203.0.113.0/24"}, PodCIDR: "192.168.0.0/16"}
}

func instReq(cluster, name, pool, role, os string, n clouds.Network) clouds.InstanceRequest {
	r := clouds.InstanceRequest{Cluster: cluster, Name: name, Pool: pool, Role: role, OS: os, InstanceType: "m5.large", DiskGB: 40, Network: n}
	if os == "windows" {
		r.WindowsVersion, r.InstanceType, r.DiskGB, r.NestedVirtualization = "2022", "m8i.xlarge", 80, true
	}
	return r
}

// fixedUserData stands in for rendered identities: the tests check that user
// data reaches the instance, not what it holds (identity_test.go does).
func fixedUserData(r clouds.InstanceRequest) (string, error) {
	if r.OS == "windows" {
		return "<powershell></powershell>", nil
	}
	return "#cloud-config\n", nil
}

func kinds(objects []string) map[string]int {
	out := map[string]int{}
	for _, o := range objects {
		kind, _, _ := strings.Cut(o, "/")
		out[kind]++
	}
	return out
}

func TestNetworkAndInstancesEndToEnd(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"vpc": 1, "subnet": 2, "internet-gateway": 1, "route-table": 1, "security-group": 2}
	if got := kinds(f.srv.Objects("demo")); !mapsEqual(got, want) {
		t.Errorf("objects after EnsureNetwork: %v, want %v", got, want)
	}

	// A converged rerun reads and changes nothing.
	f.srv.ResetCalls()
	again, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, n) || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: network %+v (was %+v), %d mutating calls %v; want the same and none", again, n, f.srv.MutatingCalls(), f.srv.Calls())
	}
	found, ok, err := f.cloud.FindNetwork(ctx, "demo")
	if err != nil || !ok || !reflect.DeepEqual(found, n) {
		t.Errorf("FindNetwork = %+v, %v, %v; want %+v", found, ok, err, n)
	}
	if _, ok, err := f.cloud.FindNetwork(ctx, "other"); ok || err != nil {
		t.Errorf("FindNetwork(other) = %v, %v; want false, nil", ok, err)
	}
	checkRules(t, f, n)

	cp, err := f.cloud.EnsureInstance(ctx, instReq("demo", "demo-cp-0", clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", n))
	if err != nil {
		t.Fatal(err)
	}
	win, err := f.cloud.EnsureInstance(ctx, instReq("demo", "demo-win-0", "win", clouds.RoleWorker, "windows", n))
	if err != nil {
		t.Fatal(err)
	}
	ubuntu, _ := f.srv.ImageID("/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id")
	ws2022, _ := f.srv.ImageID("/aws/service/ami-windows-latest/Windows_Server-2022-English-Core-Base")
	for _, tc := range []struct {
		got                        clouds.Instance
		name, pool, os, typ, image string
	}{
		{cp, "demo-cp-0", clouds.ControlPlanePool, "linux", "m5.large", ubuntu},
		{win, "demo-win-0", "win", "windows", "m8i.xlarge", ws2022},
	} {
		g := tc.got
		if g.Name != tc.name || g.Pool != tc.pool || g.OS != tc.os || g.InstanceType != tc.typ || g.Image != tc.image || g.State != clouds.StateRunning ||
			!strings.HasPrefix(g.PrivateIP, "10.20.") || g.Tags[TagCluster] != "demo" || g.Tags["Name"] != tc.name {
			t.Errorf("instance %s = %+v", tc.name, g)
		}
	}
	byID := map[string]lab.Instance{}
	for _, in := range f.srv.Instances() {
		byID[in.ID] = in
	}
	if w := byID[win.ID]; !w.NestedVirtualization || w.DiskGB != 80 || string(w.UserData) != "<powershell></powershell>" || !slices.Equal(w.SecurityIDs, []string{n.Firewalls.Worker}) {
		t.Errorf("windows instance in the emulator: nested %v disk %d groups %v user data %q", w.NestedVirtualization, w.DiskGB, w.SecurityIDs, w.UserData)
	}
	for _, in := range []lab.Instance{byID[win.ID], byID[cp.ID]} {
		// Pods must not reach instance credentials or first-boot data: IMDSv2 only, one hop.
		if in.Metadata.HTTPTokens != "required" || in.Metadata.HopLimit != 1 || !in.RootEncrypted {
			t.Errorf("instance %s: metadata %+v, root encrypted %v; want IMDSv2 required, hop limit 1, encrypted", in.ID, in.Metadata, in.RootEncrypted)
		}
	}
	if c := byID[cp.ID]; c.NestedVirtualization || !slices.Equal(c.SecurityIDs, []string{n.Firewalls.ControlPlane}) {
		t.Errorf("control-plane instance: nested %v groups %v", c.NestedVirtualization, c.SecurityIDs)
	}

	// EnsureInstance adopts: no second RunInstances.
	f.srv.ResetCalls()
	if again, err := f.cloud.EnsureInstance(ctx, instReq("demo", "demo-win-0", "win", clouds.RoleWorker, "windows", n)); err != nil || again.ID != win.ID {
		t.Errorf("EnsureInstance again = %s, %v; want %s", again.ID, err, win.ID)
	}
	if f.srv.MutatingCalls() != 0 {
		t.Errorf("adopting made mutating calls: %v", f.srv.Calls())
	}
	list, err := f.cloud.Instances(ctx, "demo")
	if err != nil || len(list) != 2 {
		t.Fatalf("Instances = %d, %v; want 2", len(list), err)
	}

	// The network cannot go while instances use it; the error is transient.
	err = f.cloud.DeleteNetwork(ctx, "demo")
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Kind != clouds.KindTransient || ce.Code != "DependencyViolation" {
		t.Fatalf("DeleteNetwork with instances running: %v, want transient DependencyViolation", err)
	}
	for _, in := range list {
		if err := f.cloud.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
		if err := f.cloud.DeleteInstance(ctx, in); err != nil {
			t.Errorf("deleting %s twice: %v", in.Name, err)
		}
	}
	waitGone(t, f, "demo")
	if err := f.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if left := f.srv.Objects("demo"); len(left) != 0 {
		t.Errorf("left after DeleteNetwork: %v", left)
	}
	if err := f.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Errorf("DeleteNetwork again: %v", err)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func waitGone(t *testing.T, f fixture, cluster string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		list, err := f.cloud.Instances(context.Background(), cluster)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances never terminated: %v", list)
		}
	}
}

// checkRules pins what each role's security group opens, and to whom.
func checkRules(t *testing.T, f fixture, n clouds.Network, nodeRules ...string) {
	t.Helper()
	c := f.cloud.ec2
	out, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{n.Firewalls.ControlPlane, n.Firewalls.Worker}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, g := range out.SecurityGroups {
		for _, p := range g.IpPermissions {
			for _, r := range p.IpRanges {
				got[aws.ToString(g.GroupId)] = append(got[aws.ToString(g.GroupId)], aws.ToString(p.IpProtocol)+"/"+itoa(aws.ToInt32(p.FromPort))+"-"+itoa(aws.ToInt32(p.ToPort))+" from "+aws.ToString(r.CidrIp))
			}
			for _, r := range p.UserIdGroupPairs {
				got[aws.ToString(g.GroupId)] = append(got[aws.ToString(g.GroupId)], aws.ToString(p.IpProtocol)+"/"+itoa(aws.ToInt32(p.FromPort))+"-"+itoa(aws.ToInt32(p.ToPort))+" from group "+aws.ToString(r.GroupId))
			}
		}
	}
	want := map[string][]string{
		// etcd from the control plane's own group only.
		n.Firewalls.ControlPlane: {"tcp/6443-6443 from 10.20.0.0/16", "tcp/6443-6443 from 203.0.113.0/24", "tcp/2379-2380 from group " + n.Firewalls.ControlPlane,
			"tcp/10250-10250 from 10.20.0.0/16", "udp/4789-4789 from 10.20.0.0/16", "tcp/22-22 from 203.0.113.0/24"},
		n.Firewalls.Worker: {"tcp/10250-10250 from 10.20.0.0/16", "udp/4789-4789 from 10.20.0.0/16", "tcp/22-22 from 203.0.113.0/24", "tcp/5986-5986 from 203.0.113.0/24"},
	}
	for g := range want {
		want[g] = append(want[g], nodeRules...)
	}
	for g, rules := range want {
		slices.Sort(rules)
		have := got[g]
		slices.Sort(have)
		if !slices.Equal(have, rules) {
			t.Errorf("group %s opens %v, want %v", g, have, rules)
		}
	}
}

// A pod network's node port (Calico's Typha) added to a running cluster
// opens on both roles' groups, from nodes only, and converges.
func TestNodeTCPPortsOpenBetweenNodes(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	if _, err := f.cloud.EnsureNetwork(ctx, netReq("typha")); err != nil {
		t.Fatal(err)
	}
	req := netReq("typha")
	req.NodeTCPPorts = []int{5473}
	n, err := f.cloud.EnsureNetwork(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	checkRules(t, f, n, "tcp/5473-5473 from 10.20.0.0/16")
	f.srv.ResetCalls()
	if _, err := f.cloud.EnsureNetwork(ctx, req); err != nil || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %v, %d mutating calls %v; want none", err, f.srv.MutatingCalls(), f.srv.Calls())
	}
}

// A network made by an earlier release opened etcd to every node and to an
// admin range since dropped: FindNetwork reports it missing, EnsureNetwork
// revokes both, keeps the rest, and converges.
func TestStaleRulesAreRevoked(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("old"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cidr := range []string{"10.20.0.0/16", "198.51.100.0/24"} {
		if _, err := f.cloud.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(n.Firewalls.ControlPlane),
			IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(2379), ToPort: aws.Int32(2380), IpRanges: []types.IpRange{{CidrIp: aws.String(cidr)}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Found missing, so that the next Apply runs EnsureNetwork.
	if _, ok, err := f.cloud.FindNetwork(ctx, "old"); err != nil || ok {
		t.Errorf("FindNetwork of a network whose etcd ports admit the node CIDR: found %v (%v), want missing", ok, err)
	}
	if _, err := f.cloud.EnsureNetwork(ctx, netReq("old")); err != nil {
		t.Fatal(err)
	}
	checkRules(t, f, n)
	if _, ok, err := f.cloud.FindNetwork(ctx, "old"); err != nil || !ok {
		t.Errorf("FindNetwork after EnsureNetwork narrowed etcd: found %v (%v), want found", ok, err)
	}
	f.srv.ResetCalls()
	if _, err := f.cloud.EnsureNetwork(ctx, netReq("old")); err != nil || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %v, %d mutating calls %v; want none", err, f.srv.MutatingCalls(), f.srv.Calls())
	}
}

// The EC2 emulator revokes as a non-default VPC does: a batch naming a rule
// that does not exist fails with InvalidPermission.NotFound and revokes
// nothing.
func TestRevokingAMissingRuleRevokesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("rev"))
	if err != nil {
		t.Fatal(err)
	}
	perm := func(port int32, cidr string) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port), IpRanges: []types.IpRange{{CidrIp: aws.String(cidr)}}}
	}
	_, err = f.cloud.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(n.Firewalls.Worker),
		IpPermissions: []types.IpPermission{perm(10250, "10.20.0.0/16"), perm(10250, "192.0.2.0/24")}})
	if !hasCode(err, "InvalidPermission.NotFound") {
		t.Fatalf("revoking an existing and a missing rule: %v, want InvalidPermission.NotFound", err)
	}
	checkRules(t, f, n)
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func TestRetriedLaunchDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("tok"))
	if err != nil {
		t.Fatal(err)
	}
	req := instReq("tok", "tok-lin-0", "lin", clouds.RoleWorker, "linux", n)
	// launch is what a retry after a lost RunInstances reply runs again.
	first, err := f.cloud.launch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.cloud.launch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || len(f.srv.Instances()) != 1 {
		t.Errorf("two launches gave %s and %s, %d instances; want one", first, second, len(f.srv.Instances()))
	}
	// After the node's instance is deleted, the next one gets the next token generation.
	in, err := f.cloud.EnsureInstance(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cloud.DeleteInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	waitGone(t, f, "tok")
	repl, err := f.cloud.EnsureInstance(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if repl.ID == in.ID || repl.State != clouds.StateRunning {
		t.Errorf("replacement = %+v, want a new running instance", repl)
	}
	var tokens []string
	for _, i := range f.srv.Instances() {
		tokens = append(tokens, i.ClientToken)
	}
	if !slices.Contains(tokens, clientToken("tok", "tok-lin-0", 2)) || len(clientToken(strings.Repeat("c", 63), strings.Repeat("n", 63), 99)) > 64 {
		t.Errorf("tokens %v: want generation 2 in use and at most 64 characters", tokens)
	}
}

func TestAdaptiveRetryerRidesOutThrottlingAndServerErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("adapt"))
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Inject("RunInstances", 1, lab.ErrRequestLimitExceeded)
	f.srv.Inject("DescribeInstances", 1, lab.ErrUnavailable)
	f.srv.Inject("GetParameter", 1, lab.ErrInternal)
	f.srv.ResetCalls()
	if _, err := f.cloud.EnsureInstance(ctx, instReq("adapt", "adapt-lin-0", "lin", clouds.RoleWorker, "linux", n)); err != nil {
		t.Fatal(err)
	}
	if calls := f.srv.Calls(); calls["RunInstances"] != 2 || calls["GetParameter"] != 2 {
		t.Errorf("calls %v: want RunInstances and GetParameter retried once each", calls)
	}
	if len(f.srv.Instances()) != 1 {
		t.Errorf("%d instances, want 1", len(f.srv.Instances()))
	}
}

// Every action of a whole lifecycle fails twice (throttled, then 500)
// before it succeeds. Standard mode: the adaptive mode's client-side rate
// limit would make this test wait for seconds per action.
func TestThrottlingAndServerErrorsOnEveryAction(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.RetryMode = "standard" })
	var mu sync.Mutex
	seen := map[string]int{}
	// Every action's first call is throttled and its second gets a 500.
	f.srv.Fault(func(action string, _ url.Values) *lab.Error {
		mu.Lock()
		defer mu.Unlock()
		seen[action]++
		switch seen[action] {
		case 1:
			e := lab.ErrRequestLimitExceeded
			return &e
		case 2:
			e := lab.ErrInternal
			return &e
		}
		return nil
	})
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("flaky"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.cloud.EnsureInstance(ctx, instReq("flaky", "flaky-win-0", "win", clouds.RoleWorker, "windows", n))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cloud.DeleteInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	waitGone(t, f, "flaky")
	if err := f.cloud.DeleteNetwork(ctx, "flaky"); err != nil {
		t.Fatal(err)
	}
	if left := f.srv.Objects("flaky"); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range []string{"CreateVpc", "RunInstances", "GetParameter", "DescribeInstances", "TerminateInstances", "DeleteVpc"} {
		if seen[a] < 3 {
			t.Errorf("%s was called %d times; the faults were not exercised", a, seen[a])
		}
	}
	if len(f.srv.Instances()) > 1 {
		t.Errorf("%d instances after retries, want at most 1", len(f.srv.Instances()))
	}
}

func TestErrorsAreClassified(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.MaxAttempts = 3; c.RetryMode = "standard" })
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("err"))
	if err != nil {
		t.Fatal(err)
	}
	f.srv.NoCapacity("m5.large", true)
	f.srv.ResetCalls()
	_, err = f.cloud.EnsureInstance(ctx, instReq("err", "err-lin-0", "lin", clouds.RoleWorker, "linux", n))
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Kind != clouds.KindCapacity || ce.Code != "InsufficientInstanceCapacity" || !strings.Contains(ce.Fix, `pool "lin"`) || ce.Op != "RunInstances" {
		t.Errorf("no capacity: %v, want KindCapacity with the code and a fix naming the pool", err)
	}
	if got := f.srv.Calls()["RunInstances"]; got != 1 {
		t.Errorf("RunInstances called %d times for a capacity error, want 1 (not retried)", got)
	}
	f.srv.NoCapacity("m5.large", false)

	f.srv.Deny("RunInstances", true)
	_, err = f.cloud.EnsureInstance(ctx, instReq("err", "err-lin-0", "lin", clouds.RoleWorker, "linux", n))
	if !errors.As(err, &ce) || ce.Kind != clouds.KindAuth || !strings.Contains(ce.Fix, "ec2:RunInstances") {
		t.Errorf("denied: %v, want KindAuth naming ec2:RunInstances", err)
	}
	f.srv.Deny("RunInstances", false)

	f.srv.Inject("DescribeVpcs", 10, lab.ErrRequestLimitExceeded)
	_, _, err = f.cloud.FindNetwork(ctx, "err")
	if !errors.As(err, &ce) || ce.Kind != clouds.KindThrottled || !clouds.KindOf(err).Retryable() {
		t.Errorf("throttled past the retryer: %v, want KindThrottled", err)
	}

	bad := instReq("err", "err-lin-1", "lin", clouds.RoleWorker, "linux", n)
	bad.InstanceType = "x9.huge"
	_, err = f.cloud.EnsureInstance(ctx, bad)
	if !errors.As(err, &ce) || ce.Kind != clouds.KindInvalid || ce.Code != "InvalidParameterValue" {
		t.Errorf("unknown instance type: %v, want KindInvalid", err)
	}
	if err := f.cloud.DeleteInstance(ctx, clouds.Instance{ID: "i-00000000000000bad", Name: "ghost"}); err != nil {
		t.Errorf("deleting a missing instance: %v, want nil", err)
	}

	for code, want := range map[string]clouds.Kind{
		"RequestLimitExceeded": clouds.KindThrottled, "Throttling": clouds.KindThrottled, "InternalError": clouds.KindTransient,
		"Unavailable": clouds.KindTransient, "InsufficientInstanceCapacity": clouds.KindCapacity, "InstanceLimitExceeded": clouds.KindQuota,
		"VcpuLimitExceeded": clouds.KindQuota, "UnauthorizedOperation": clouds.KindAuth, "AuthFailure": clouds.KindAuth,
		"InvalidParameterValue": clouds.KindInvalid, "InvalidInstanceID.NotFound": clouds.KindNotFound, "DependencyViolation": clouds.KindTransient,
		"SomethingNew": clouds.KindFatal,
	} {
		if got := kindOfCode(code); got != want {
			t.Errorf("kindOfCode(%s) = %s, want %s", code, got, want)
		}
	}
}

func TestInstancesPagesIndependentOfNodeCount(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.PageSize = 50; c.Zones = nil })
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("big"))
	if err != nil {
		t.Fatal(err)
	}
	ami, _ := f.srv.ImageID("/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id")
	_, err = f.cloud.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), InstanceType: "t3.micro", MinCount: aws.Int32(120), MaxCount: aws.Int32(120),
		SubnetId: aws.String(n.SubnetID), TagSpecifications: f.cloud.tagSpec(types.ResourceTypeInstance, nil, "big", "big-node")})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.ResetCalls()
	list, err := f.cloud.Instances(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 120 || f.srv.Calls()["DescribeInstances"] != 3 || len(f.srv.Calls()) != 1 {
		t.Errorf("listed %d instances with calls %v; want 120 with 3 DescribeInstances (pages of 50) and nothing else", len(list), f.srv.Calls())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := New(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "Region") {
		t.Errorf("empty config: %v, want an error naming Region", err)
	}
	if _, err := New(context.Background(), Config{Region: "us-east-1", CABundle: []byte("not pem")}); err == nil || !strings.Contains(err.Error(), "CABundle") {
		t.Errorf("bad CA bundle: %v, want an error naming CABundle", err)
	}
	if _, err := New(context.Background(), Config{Region: "us-east-1", AccessKeyID: "AKIDTEST"}); err == nil || !strings.Contains(err.Error(), "SecretAccessKey") {
		t.Errorf("key ID without its secret: %v, want an error naming SecretAccessKey", err)
	}
}

// TestNewNamesAnUnknownProfile is not parallel: it points the SDK's shared
// files at an empty folder through the environment.
func TestNewNamesAnUnknownProfile(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "credentials"))
	if _, err := New(context.Background(), Config{Region: "us-east-1", Profile: "nowhere"}); err == nil || !strings.Contains(err.Error(), `profile "nowhere"`) {
		t.Errorf("unknown profile: %v, want an error naming the profile", err)
	}
}

func TestUserData(t *testing.T) {
	t.Parallel()
	lin, err := linuxUserData{AdminUser: "ubuntu", AuthorizedKeys: []string{"ssh-ed25519 AAAAadmin me"},
		HostKeyPrivate: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n", HostKeyPublic: "ssh-ed25519 AAAAhost"}.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#cloud-config\n", `ed25519_private: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n`, `ed25519_public: "ssh-ed25519 AAAAhost"`,
		"ssh_genkeytypes: []", `- name: "ubuntu"`, `- "ssh-ed25519 AAAAadmin me"`} {
		if !strings.Contains(lin, want) {
			t.Errorf("cloud-config lacks %q:\n%s", want, lin)
		}
	}
	if _, err := (linuxUserData{AdminUser: "root; rm -rf /", AuthorizedKeys: []string{"k"}, HostKeyPrivate: "PRIVATE KEY", HostKeyPublic: "ssh-ed25519 x"}).Render(); err == nil {
		t.Error("a user name with shell characters was accepted")
	}
	win, err := windowsUserData{PFX: []byte{1, 2, 3}, PFXPassword: "p'fx", AdminPassword: "it's secret"}.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<powershell>\n", "Cert:\\LocalMachine\\My", "-Transport HTTPS", "-CertificateThumbPrint $cert.Thumbprint", "-LocalPort 5986",
		"'p''fx'", "'it''s secret'", "$adminUser = 'Administrator'", "LocalAccountTokenFilterPolicy", "</powershell>\n<persist>false</persist>\n", "AQID"} {
		if !strings.Contains(win, want) {
			t.Errorf("EC2Launch script lacks %q:\n%s", want, win)
		}
	}
	if _, err := (windowsUserData{AdminPassword: "x"}).Render(); err == nil {
		t.Error("a Windows user data without certificate was accepted")
	}
	if _, err := (windowsUserData{PFX: []byte{1}, AdminPassword: "x", ComputerName: "payments-prod-win-1"}).Render(); err == nil {
		t.Error("a 19-character computer name, which NetBIOS would cut, was accepted")
	}
}
