package aws

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/mixedk8s/mixedk8s/clouds"
	lab "github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

func lbReq(cluster string, n clouds.Network, internal bool) clouds.LoadBalancerRequest {
	return clouds.LoadBalancerRequest{Cluster: cluster, Internal: internal, Port: 6443, Network: n, AdminCIDRs: []string{"203.0.113.0/24"}}
}

// controlPlanes makes a network and n running control-plane instances.
func controlPlanes(t *testing.T, f fixture, cluster string, n int) (clouds.Network, []clouds.Instance) {
	t.Helper()
	ctx := context.Background()
	net, err := f.cloud.EnsureNetwork(ctx, netReq(cluster))
	if err != nil {
		t.Fatal(err)
	}
	var out []clouds.Instance
	for i := range n {
		in, err := f.cloud.EnsureInstance(ctx, instReq(cluster, fmt.Sprintf("%s-cp-%d", cluster, i), clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", net))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, in)
	}
	return net, out
}

func ids(ins []clouds.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	slices.Sort(out)
	return out
}

// emulated returns the emulator's view of the cluster's load balancer.
func emulated(t *testing.T, f fixture, name string) lab.LoadBalancer {
	t.Helper()
	for _, lb := range f.srv.LoadBalancers() {
		if lb.Name == name {
			return lb
		}
	}
	t.Fatalf("the emulator has no load balancer %q", name)
	return lab.LoadBalancer{}
}

// retryTransient runs op until it stops failing with a retryable error, as
// the Apply engine does.
func retryTransient(t *testing.T, op func() error) error {
	t.Helper()
	var err error
	for range 200 {
		if err = op(); err == nil || !clouds.KindOf(err).Retryable() {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return err
}

func TestLoadBalancerLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	n, cps := controlPlanes(t, f, "ha", 3)
	lb, err := f.cloud.EnsureLoadBalancer(ctx, lbReq("ha", n, true))
	if err != nil {
		t.Fatal(err)
	}
	em := emulated(t, f, "ha-api")
	if lb.ID != em.ARN || lb.Address != em.DNSName || lb.Port != 6443 || len(lb.Targets) != 0 || em.State != "active" || em.Scheme != "internal" {
		t.Fatalf("EnsureLoadBalancer = %+v; emulator has %+v", lb, em)
	}
	if len(em.Subnets) != 2 || len(em.Listeners) != 1 || em.Listeners[0].Port != 6443 || em.Listeners[0].TargetPort != 6443 || em.Listeners[0].Health.Protocol != "TCP" {
		t.Errorf("load balancer %+v: want both zones' subnets and one TCP listener on 6443 to a TCP-checked group on 6443", em)
	}
	attrs, _ := f.srv.TargetGroupAttributes("ha-api")
	if attrs["preserve_client_ip.enabled"] != "false" || attrs["deregistration_delay.timeout_seconds"] != drainSeconds {
		t.Errorf("target group attributes %v: want client IP preservation off and a short drain", attrs)
	}
	want := map[string]int{"vpc": 1, "subnet": 2, "internet-gateway": 1, "route-table": 1, "security-group": 3,
		"instance": 3, "load-balancer": 1, "target-group": 1, "listener": 1}
	if got := kinds(f.srv.Objects("ha")); !mapsEqual(got, want) {
		t.Errorf("objects: %v, want %v", got, want)
	}

	// A converged rerun changes nothing and answers the same.
	f.srv.ResetCalls()
	again, err := f.cloud.EnsureLoadBalancer(ctx, lbReq("ha", n, true))
	if err != nil || again.ID != lb.ID || again.Address != lb.Address || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun = %+v, %v with %d mutating calls %v; want the same and none", again, err, f.srv.MutatingCalls(), f.srv.Calls())
	}

	if err := f.cloud.SetLoadBalancerTargets(ctx, lb, cps); err != nil {
		t.Fatal(err)
	}
	if got := emulated(t, f, "ha-api").Listeners[0].Targets; !slices.Equal(got, ids(cps)) {
		t.Errorf("targets %v, want %v", got, ids(cps))
	}
	// Replacing one control plane: exactly the new set, the old one drains out.
	if err := f.cloud.SetLoadBalancerTargets(ctx, lb, cps[1:]); err != nil {
		t.Fatal(err)
	}
	if got := emulated(t, f, "ha-api").Listeners[0].Targets; !slices.Equal(got, ids(cps[1:])) {
		t.Errorf("targets after dropping %s: %v, want %v", cps[0].ID, got, ids(cps[1:]))
	}
	f.srv.ResetCalls()
	if err := f.cloud.SetLoadBalancerTargets(ctx, lb, cps[1:]); err != nil || f.srv.MutatingCalls() != 0 {
		t.Errorf("setting the same targets again: %v, %d mutating calls %v; want none", err, f.srv.MutatingCalls(), f.srv.Calls())
	}
	found, ok, err := f.cloud.FindLoadBalancer(ctx, "ha")
	if err != nil || !ok || found.ID != lb.ID || found.Address != lb.Address || found.Port != 6443 || !slices.Equal(found.Targets, ids(cps[1:])) {
		t.Errorf("FindLoadBalancer = %+v, %v, %v", found, ok, err)
	}
	if _, ok, err := f.cloud.FindLoadBalancer(ctx, "other"); ok || err != nil {
		t.Errorf("FindLoadBalancer(other) = %v, %v; want none", ok, err)
	}

	// Destroy: the load balancer first, then instances and network; nothing is left.
	if err := retryTransient(t, func() error { return f.cloud.DeleteLoadBalancer(ctx, "ha") }); err != nil {
		t.Fatal(err)
	}
	if err := f.cloud.DeleteLoadBalancer(ctx, "ha"); err != nil {
		t.Errorf("deleting again: %v, want nil", err)
	}
	for _, in := range cps {
		if err := f.cloud.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	waitGone(t, f, "ha")
	if err := retryTransient(t, func() error { return f.cloud.DeleteNetwork(ctx, "ha") }); err != nil {
		t.Fatal(err)
	}
	if left := f.srv.Objects("ha"); len(left) != 0 {
		t.Errorf("left after destroy: %v", left)
	}
}

func TestLoadBalancerInternetFacingAndItsGuards(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.MaxAttempts = 2; c.RetryMode = "standard" })
	ctx := context.Background()
	n, _ := controlPlanes(t, f, "pub", 0)
	lb, err := f.cloud.EnsureLoadBalancer(ctx, lbReq("pub", n, false))
	if err != nil {
		t.Fatal(err)
	}
	if em := emulated(t, f, "pub-api"); em.Scheme != "internet-facing" || !strings.HasSuffix(lb.Address, ".elb.us-east-1.amazonaws.com") {
		t.Errorf("load balancer %+v at %q: want internet-facing with an ELB DNS name", em, lb.Address)
	}
	// ELB cannot change a scheme: asking for the other one is a clear error, not a silent replacement.
	_, err = f.cloud.EnsureLoadBalancer(ctx, lbReq("pub", n, true))
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Kind != clouds.KindInvalid || !strings.Contains(ce.Err.Error(), "scheme") || ce.Fix == "" {
		t.Errorf("scheme change: %v, want KindInvalid naming the scheme, with a fix", err)
	}

	// A missing IAM permission names the ELB action to allow.
	f.srv.Deny("CreateLoadBalancer", true)
	n2, _ := controlPlanes(t, f, "deny", 0)
	_, err = f.cloud.EnsureLoadBalancer(ctx, lbReq("deny", n2, true))
	if !errors.As(err, &ce) || ce.Kind != clouds.KindAuth || ce.Code != "AccessDenied" || !strings.Contains(ce.Fix, "elasticloadbalancing:CreateLoadBalancer") {
		t.Errorf("denied: %v, want KindAuth naming elasticloadbalancing:CreateLoadBalancer", err)
	}
	f.srv.Deny("CreateLoadBalancer", false)

	// A name taken by an object without the cluster's tag is not adopted.
	_, err = f.cloud.elb.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("taken-api"), Type: types.LoadBalancerTypeEnumNetwork,
		Scheme: types.LoadBalancerSchemeEnumInternal, Subnets: []string{n2.SubnetID}})
	if err != nil {
		t.Fatal(err)
	}
	n3, _ := controlPlanes(t, f, "taken", 0)
	_, err = f.cloud.EnsureLoadBalancer(ctx, lbReq("taken", n3, true))
	if !errors.As(err, &ce) || ce.Kind != clouds.KindInvalid || !strings.Contains(ce.Fix, "belongs to something else") {
		t.Errorf("foreign load balancer of the same name: %v, want KindInvalid", err)
	}
}

// A network whose subnets have no route to an internet gateway cannot
// serve an internet-facing load balancer; ELB says so and the error says why.
func TestLoadBalancerSchemeTheNetworkCannotServe(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.Zones = nil; c.MaxAttempts = 2; c.RetryMode = "standard" })
	ctx := context.Background()
	vpc, err := f.cloud.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.30.0.0/16"), TagSpecifications: f.cloud.tagSpec(ec2types.ResourceTypeVpc, nil, "closed", "closed-vpc")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cloud.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.30.0.0/16"),
		TagSpecifications: f.cloud.tagSpec(ec2types.ResourceTypeSubnet, nil, "closed", "closed-subnet")}); err != nil {
		t.Fatal(err)
	}
	n, ok, err := f.cloud.FindNetwork(ctx, "closed")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	_, err = f.cloud.EnsureLoadBalancer(ctx, lbReq("closed", n, false))
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Kind != clouds.KindInvalid || ce.Code != "InvalidSubnet" || !strings.Contains(ce.Fix, "internet gateway") {
		t.Errorf("internet-facing without a gateway: %v, want KindInvalid InvalidSubnet with a fix about the gateway", err)
	}
	if _, err := f.cloud.EnsureLoadBalancer(ctx, lbReq("closed", n, true)); err != nil {
		t.Errorf("an internal load balancer in the same network: %v", err)
	}
}

// Each create whose reply was lost (it took effect, the caller never
// learned) is adopted by the next Ensure: one of each object, no duplicate.
func TestLoadBalancerAdoptsAfterLostReplies(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	n, cps := controlPlanes(t, f, "lost", 2)
	sg, err := f.cloud.ensureGroup(ctx, "lost", n.ID, nameAPIRule, "lost reply", nil)
	if err != nil {
		t.Fatal(err)
	}
	subnets := []string{}
	for _, s := range f.cloud.subnets["lost"] {
		subnets = append(subnets, s.id)
	}
	// The exact calls EnsureLoadBalancer makes, each as if its reply never came back.
	lbOut, err := f.cloud.elb.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("lost-api"), Type: types.LoadBalancerTypeEnumNetwork,
		Scheme: types.LoadBalancerSchemeEnumInternal, IpAddressType: types.IpAddressTypeIpv4, Subnets: subnets, SecurityGroups: []string{sg}, Tags: f.cloud.elbTags("lost", "lost-api")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cloud.ensureTargetGroup(ctx, "lost", n.ID, 6443); err != nil {
		t.Fatal(err)
	}
	lb, err := f.cloud.EnsureLoadBalancer(ctx, lbReq("lost", n, true))
	if err != nil {
		t.Fatal(err)
	}
	if lb.ID != aws.ToString(lbOut.LoadBalancers[0].LoadBalancerArn) {
		t.Errorf("Ensure made %s, want the load balancer already there %s", lb.ID, aws.ToString(lbOut.LoadBalancers[0].LoadBalancerArn))
	}
	if err := f.cloud.SetLoadBalancerTargets(ctx, lb, cps); err != nil {
		t.Fatal(err)
	}
	// RegisterTargets whose reply was lost: registering again is harmless.
	if err := f.cloud.SetLoadBalancerTargets(ctx, lb, cps); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"load-balancer": 1, "target-group": 1, "listener": 1, "security-group": 3}
	got := kinds(f.srv.Objects("lost"))
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%d %s, want %d (objects %v)", got[k], k, v, got)
		}
	}
}

// Every ELB call of a whole lifecycle fails once, past the retryer, as a
// reply lost or refused would; rerunning the failed step converges, and
// destroy leaves nothing.
func TestLoadBalancerFaultOnEachCallConverges(t *testing.T) {
	t.Parallel()
	actions := []string{"DescribeLoadBalancers", "CreateLoadBalancer", "DescribeTargetGroups", "CreateTargetGroup",
		"DescribeTargetGroupAttributes", "ModifyTargetGroupAttributes", "DescribeListeners", "CreateListener",
		"DescribeTargetHealth", "RegisterTargets", "DeregisterTargets", "DescribeTags", "DeleteListener",
		"DeleteLoadBalancer", "DeleteTargetGroup"}
	for _, action := range actions {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			f := setup(t, func(c *Config) { c.MaxAttempts = 1; c.RetryMode = "standard" })
			ctx := context.Background()
			cluster := "f" + strings.ToLower(action[:6])
			n, cps := controlPlanes(t, f, cluster, 2)
			var mu sync.Mutex
			failed := false
			f.srv.Fault(func(a string, _ url.Values) *lab.Error {
				mu.Lock()
				defer mu.Unlock()
				if a == action && !failed {
					failed = true
					e := lab.ErrThrottling
					return &e
				}
				return nil
			})
			errs := 0
			step := func(op func() error) {
				t.Helper()
				for range 100 {
					err := op()
					if err == nil {
						return
					}
					if !clouds.KindOf(err).Retryable() {
						t.Fatalf("%v: not retryable", err)
					}
					errs++
					time.Sleep(5 * time.Millisecond)
				}
				t.Fatalf("did not converge in 100 tries: %v", op())
			}
			var lb clouds.LoadBalancer
			step(func() (err error) { lb, err = f.cloud.EnsureLoadBalancer(ctx, lbReq(cluster, n, true)); return err })
			step(func() error { return f.cloud.SetLoadBalancerTargets(ctx, lb, cps) })
			step(func() error { return f.cloud.SetLoadBalancerTargets(ctx, lb, cps[:1]) })
			step(func() error { return f.cloud.DeleteLoadBalancer(ctx, cluster) })
			mu.Lock()
			hit := failed
			mu.Unlock()
			if !hit || errs == 0 {
				t.Errorf("the fault on %s was never hit (%d errors)", action, errs)
			}
			for _, in := range cps {
				if err := f.cloud.DeleteInstance(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			waitGone(t, f, cluster)
			if err := retryTransient(t, func() error { return f.cloud.DeleteNetwork(ctx, cluster) }); err != nil {
				t.Fatal(err)
			}
			if left := f.srv.Objects(cluster); len(left) != 0 {
				t.Errorf("left: %v", left)
			}
			if lbs := f.srv.LoadBalancers(); len(lbs) != 0 {
				t.Errorf("load balancers left: %+v", lbs)
			}
		})
	}
}

func TestELBNamesFitAndDiffer(t *testing.T) {
	t.Parallel()
	if got := elbName("demo", nameAPI); got != "demo-api" {
		t.Errorf("elbName(demo) = %q", got)
	}
	a, b := strings.Repeat("a", 40)+"-x", strings.Repeat("a", 40)+"-y"
	na, nb := elbName(a, nameAPI), elbName(b, nameAPI)
	if len(na) > 32 || len(nb) > 32 || na == nb || na != elbName(a, nameAPI) || strings.HasPrefix(na, "-") || strings.Contains(na, "--") {
		t.Errorf("long names %q and %q: want at most 32 characters, distinct, stable, no stray hyphens", na, nb)
	}
	if got := elbName(strings.Repeat("b", 28)+"-", nameAPI); strings.Contains(got, "--") || len(got) > 32 {
		t.Errorf("cut at a hyphen: %q", got)
	}
	for code, want := range map[string]clouds.Kind{
		"LoadBalancerNotFound": clouds.KindNotFound, "TargetGroupNotFound": clouds.KindNotFound, "ResourceInUse": clouds.KindTransient,
		"DuplicateLoadBalancerName": clouds.KindInvalid, "InvalidTarget": clouds.KindInvalid, "TooManyLoadBalancers": clouds.KindQuota,
		"AccessDenied": clouds.KindAuth, "Throttling": clouds.KindThrottled,
	} {
		if got := kindOfCode(code); got != want {
			t.Errorf("kindOfCode(%s) = %s, want %s", code, got, want)
		}
	}
}
