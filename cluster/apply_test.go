package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/clustertest"
)

type lab struct {
	cloud *memory.Cloud
	prov  *clustertest.Provisioner
	// noLoadBalancers: the options hide the memory cloud's load balancers from the library.
	noLoadBalancers bool
	mu              sync.Mutex
	evs             []cluster.Event
}

func newLab() *lab { return &lab{cloud: memory.New(), prov: clustertest.NewProvisioner()} }

func (l *lab) opts() cluster.Options {
	return cluster.Options{
		Cloud: l.cloud, Provisioner: l.prov,
		BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Progress: func(e cluster.Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() },
	}
}

func (l *lab) events() []cluster.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// wantConverged checks that exactly the spec's nodes exist, each once, joined.
func wantConverged(t *testing.T, l *lab, spec cluster.Spec) {
	t.Helper()
	want := []string{"network/net-" + spec.Name}
	if !l.noLoadBalancers {
		want = append(want, "loadbalancer/lb-"+spec.Name)
	}
	var names, cps []string
	for _, n := range spec.WithDefaults().Nodes() {
		want = append(want, "instance/"+n.Name)
		names = append(names, n.Name)
		if n.Role == clouds.RoleControlPlane {
			cps = append(cps, n.Name)
		}
	}
	slices.Sort(want)
	if l.noLoadBalancers {
		cps = nil
	}
	if targets, _ := l.cloud.LoadBalancerTargets(spec.Name); !slices.Equal(targets, cps) {
		t.Errorf("API load balancer targets %q, want the control plane %q", targets, cps)
	}
	slices.Sort(names)
	if got := l.cloud.Objects(spec.Name); !slices.Equal(got, want) {
		t.Errorf("cloud objects\n got %q\nwant %q", got, want)
	}
	if got := l.prov.Joined(); !slices.Equal(got, names) {
		t.Errorf("joined nodes\n got %q\nwant %q", got, names)
	}
}

func TestApplyCreatesAndReapplyChangesNothing(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	res, err := cluster.Apply(context.Background(), spec, l.opts())
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	wantConverged(t, l, spec)
	if len(res.Nodes) != 5 {
		t.Fatalf("result has %d nodes, want 5", len(res.Nodes))
	}
	for _, n := range res.Nodes {
		if n.InstanceID == "" || n.PrivateIP == "" || !n.Ready {
			t.Errorf("node %+v: want instance, address and Ready", n)
		}
	}

	l.cloud.ResetCalls()
	l.prov.ResetCalls()
	res, err = cluster.Apply(context.Background(), spec, l.opts())
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if !res.Changes.Empty() {
		t.Errorf("second Apply planned %q, want nothing", res.Changes.Summary())
	}
	if n := l.cloud.MutatingCalls(); n != 0 {
		t.Errorf("second Apply made %d mutating cloud calls (%v), want 0", n, l.cloud.Calls())
	}
	if n := l.prov.MutatingCalls(); n != 0 {
		t.Errorf("second Apply made %d mutating node calls (%v), want 0", n, l.prov.Calls())
	}
}

func TestApplyReportsProgress(t *testing.T) {
	t.Parallel()
	l := newLab()
	if _, err := cluster.Apply(context.Background(), demoSpec(), l.opts()); err != nil {
		t.Fatal(err)
	}
	kinds := map[cluster.EventKind]int{}
	for _, e := range l.events() {
		kinds[e.Kind]++
		if strings.Contains(e.String(), "0123456789abcdef") {
			t.Errorf("event leaks the bootstrap token: %s", e)
		}
	}
	// 15 steps: network, load balancer, 5 instances, its target, bootstrap, 4 joins, addons, ready.
	if kinds[cluster.StepStarted] != 15 || kinds[cluster.StepFinished] != 15 {
		t.Errorf("started %d, finished %d steps; want 15 each", kinds[cluster.StepStarted], kinds[cluster.StepFinished])
	}
	if kinds[cluster.NodePhase] != 5 {
		t.Errorf("%d node-phase events, want 5 (bootstrap + 4 joins)", kinds[cluster.NodePhase])
	}
}

func TestApplyConvergesUnderThrottlingAndServerErrors(t *testing.T) {
	t.Parallel()
	l := newLab()
	var mu sync.Mutex
	seen := map[string]int{}
	// Every operation on every object fails twice before it succeeds.
	flaky := func(op, object string) error {
		mu.Lock()
		defer mu.Unlock()
		seen[op+object]++
		switch seen[op+object] {
		case 1:
			return &clouds.Error{Kind: clouds.KindThrottled, Code: "RequestLimitExceeded", Op: op, Object: object}
		case 2:
			return &clouds.Error{Kind: clouds.KindTransient, Code: "InternalError", Op: op, Object: object}
		}
		return nil
	}
	opts := l.opts()
	l.cloud.Fault = func(op, object string) error {
		if op == memory.OpInstances || op == memory.OpFindNetwork || op == memory.OpFindLoadBalancer {
			return nil // reads before the plan are not retried by the engine
		}
		return flaky(op, object)
	}
	spec := demoSpec()
	if _, err := cluster.Apply(context.Background(), spec, opts); err != nil {
		t.Fatalf("Apply under faults: %v", err)
	}
	wantConverged(t, l, spec)
	retries := 0
	for _, e := range l.events() {
		if e.Kind == cluster.StepRetrying {
			retries++
		}
	}
	if retries < 12 {
		t.Errorf("%d retries reported, want at least 12 (2 per cloud step)", retries)
	}
}

func TestApplyLostReplyDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	l := newLab()
	var lost atomic.Int32
	// The first reply of every create is lost after the instance was made.
	var mu sync.Mutex
	once := map[string]bool{}
	l.cloud.FaultAfter = func(op, object string) error {
		mu.Lock()
		defer mu.Unlock()
		if op == memory.OpEnsureInstance && !once[object] {
			once[object] = true
			lost.Add(1)
			return &clouds.Error{Kind: clouds.KindTransient, Code: "RequestTimeout", Op: op, Object: object}
		}
		return nil
	}
	spec := demoSpec()
	if _, err := cluster.Apply(context.Background(), spec, l.opts()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if lost.Load() != 5 {
		t.Errorf("%d replies lost, want 5", lost.Load())
	}
	wantConverged(t, l, spec)
}

func TestApplyCapacityErrorNamesPoolAndType(t *testing.T) {
	t.Parallel()
	l := newLab()
	l.cloud.Fault = func(op, object string) error {
		if op == memory.OpEnsureInstance && strings.HasPrefix(object, "demo-win-") {
			return &clouds.Error{Kind: clouds.KindCapacity, Code: "InsufficientInstanceCapacity", Op: "RunInstances", Object: fmt.Sprintf("instance %q", object),
				Fix: "choose another instance type or zone"}
		}
		return nil
	}
	spec := demoSpec()
	_, err := cluster.Apply(context.Background(), spec, l.opts())
	if err == nil {
		t.Fatal("Apply succeeded, want a capacity error")
	}
	for _, want := range []string{`node_pools["win"].instance_type = "m6i.xlarge"`, "InsufficientInstanceCapacity", "fix: choose another instance type"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if clouds.KindOf(err) != clouds.KindCapacity {
		t.Errorf("KindOf(err) = %v, want capacity", clouds.KindOf(err))
	}
	// The Linux side went ahead; only the Windows nodes are missing.
	objs := l.cloud.Objects(spec.Name)
	if !slices.Contains(objs, "instance/demo-linux-1") || slices.Contains(objs, "instance/demo-win-0") {
		t.Errorf("objects after the capacity error: %q", objs)
	}
	// When capacity comes back, the next Apply finishes.
	l.cloud.Fault = nil
	if _, err := cluster.Apply(context.Background(), spec, l.opts()); err != nil {
		t.Fatalf("Apply after capacity returned: %v", err)
	}
	wantConverged(t, l, spec)
}

func TestApplyResumesAfterCancelAtRandomPoints(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 11))
	jitter := func(n int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Duration(rng.IntN(n)) * time.Microsecond
	}
	spec := demoSpec()
	interrupted := 0
	for i := range 20 {
		l := newLab()
		l.cloud.Latency = func(op, object string) time.Duration { return jitter(2000) }
		ctx, cancel := context.WithTimeout(context.Background(), jitter(6000))
		_, err := cluster.Apply(ctx, spec, l.opts())
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("run %d: cancelled Apply failed with %v, want a deadline error", i, err)
		}
		if err != nil {
			interrupted++
		}
		l.cloud.Latency = nil
		if _, err := cluster.Apply(context.Background(), spec, l.opts()); err != nil {
			t.Fatalf("run %d: Apply after cancel: %v", i, err)
		}
		wantConverged(t, l, spec)
	}
	if interrupted < 15 {
		t.Errorf("only %d of 20 runs were interrupted; the test no longer cancels mid-apply", interrupted)
	}
}

func TestApplyScaleDownDrainsHighestOrdinalFirst(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	win := spec.NodePools["win"]
	win.Count = 4
	spec = withPool(spec, "win", &win)
	if _, err := cluster.Apply(context.Background(), spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	win.Count = 1
	spec = withPool(spec, "win", &win)
	res, err := cluster.Apply(context.Background(), spec, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.prov.Drained(), []string{"demo-win-3", "demo-win-2", "demo-win-1"}; !slices.Equal(got, want) {
		t.Errorf("drained %q, want %q", got, want)
	}
	if add, remove := res.Changes.Counts(); add != 0 || remove != 3 {
		t.Errorf("counts add=%d remove=%d, want 0 and 3", add, remove)
	}
	wantConverged(t, l, spec)
}

func TestApplyRecreatesDrift(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	if _, err := cluster.Apply(context.Background(), spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	l.cloud.Terminate("demo-win-1")
	o, err := cluster.Observe(context.Background(), spec, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Plan(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Summary(), []string{`~ replace demo-win-1 (windows-2022): its instance is gone`}) {
		t.Errorf("plan after drift: %q", c.Summary())
	}
	if _, err := cluster.Apply(context.Background(), spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	wantConverged(t, l, spec)
}

func TestApplyRejectsInvalidSpecBeforeTouchingTheCloud(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	spec.ControlPlane.Count = 2
	_, err := cluster.Apply(context.Background(), spec, l.opts())
	var ps cluster.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Apply error %v, want cluster.Problems", err)
	}
	if n := len(l.cloud.Calls()); n != 0 {
		t.Errorf("cloud was called %v before validation passed", l.cloud.Calls())
	}
}

func TestApplyNeedsCloudAndProvisioner(t *testing.T) {
	t.Parallel()
	_, err := cluster.Apply(context.Background(), demoSpec(), cluster.Options{})
	if err == nil || !strings.Contains(err.Error(), "Cloud Provisioner") || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("err = %v", err)
	}
}

func TestDestroyLeavesNothing(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	if _, err := cluster.Apply(context.Background(), spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	// The first network delete fails as a dependency the cloud still sees.
	var failed atomic.Bool
	l.cloud.Fault = func(op, object string) error {
		if op == memory.OpDeleteNetwork && failed.CompareAndSwap(false, true) {
			return &clouds.Error{Kind: clouds.KindTransient, Code: "DependencyViolation", Op: op, Object: object}
		}
		return nil
	}
	if err := cluster.Destroy(context.Background(), spec, l.opts()); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if objs := l.cloud.Objects(spec.Name); len(objs) != 0 {
		t.Errorf("left after Destroy: %q", objs)
	}
	if err := cluster.Destroy(context.Background(), spec, l.opts()); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestJoinInfoRedactsSecrets(t *testing.T) {
	t.Parallel()
	j := cluster.JoinInfo{APIEndpoint: "10.0.0.4:6443", BootstrapToken: "abcdef.0123456789abcdef", CertificateKey: "deadbeef"}
	for _, s := range []string{fmt.Sprint(j), fmt.Sprintf("%v %+v %#v", j, j, j)} {
		if strings.Contains(s, "0123456789abcdef") || strings.Contains(s, "deadbeef") {
			t.Errorf("formatted JoinInfo leaks a secret: %s", s)
		}
	}
}

func TestApplyReportsTheEndpointAndObserveFindsIt(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	res, err := cluster.Apply(context.Background(), spec, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.Endpoint.APIEndpoint == "" || res.Endpoint.CACertPEM == "" {
		t.Fatalf("Apply result endpoint %+v, want address and CA", res.Endpoint)
	}
	o, err := cluster.Observe(context.Background(), spec, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	if o.Endpoint == nil || *o.Endpoint != res.Endpoint {
		t.Errorf("Observe endpoint %+v, want %+v", o.Endpoint, res.Endpoint)
	}
	// A converged re-apply bootstraps nothing, yet still reports the endpoint.
	res, err = cluster.Apply(context.Background(), spec, l.opts())
	if err != nil || res.Endpoint != *o.Endpoint {
		t.Errorf("re-apply endpoint %+v (%v), want %+v", res.Endpoint, err, *o.Endpoint)
	}
	kc, err := cluster.Kubeconfig(context.Background(), spec, l.opts(), time.Hour)
	if err != nil || !strings.Contains(string(kc), res.Endpoint.APIEndpoint) {
		t.Errorf("Kubeconfig = %q, %v", kc, err)
	}
	// Its certificate works for the hour asked for, not a year.
	if c, err := cluster.ReadKubeconfig(kc); err != nil || time.Until(c.NotAfter) > time.Hour || time.Until(c.NotAfter) < 50*time.Minute {
		t.Errorf("kubeconfig expires at %v (%v), want in about an hour", c.NotAfter, err)
	}
}

func instanceOf(t *testing.T, l *lab, name string) clouds.Instance {
	t.Helper()
	all, err := l.cloud.Instances(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if in.Name == name {
			return in
		}
	}
	t.Fatalf("no instance %s", name)
	return clouds.Instance{}
}

// cloudWithoutLoadBalancers hides the memory cloud's load balancers: a cloud whose package has none.
type cloudWithoutLoadBalancers struct{ clouds.Cloud }

func TestApplyWithoutLoadBalancersUsesTheFirstNode(t *testing.T) {
	t.Parallel()
	l := newLab()
	opts := l.opts()
	opts.Cloud = cloudWithoutLoadBalancers{l.cloud}
	spec := demoSpec()
	res, err := cluster.Apply(context.Background(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range l.cloud.Objects(spec.Name) {
		if strings.HasPrefix(o, "loadbalancer/") {
			t.Errorf("a cloud without load balancers got %s", o)
		}
	}
	cp0 := instanceOf(t, l, "demo-cp-0")
	if want := cp0.PrivateIP + ":6443"; res.Endpoint.APIEndpoint != want || res.Endpoint.URL() != "https://"+want {
		t.Errorf("endpoint %q (%s), want the first control-plane node %s", res.Endpoint.APIEndpoint, res.Endpoint.URL(), want)
	}
	if err := cluster.Destroy(context.Background(), spec, opts); err != nil {
		t.Fatal(err)
	}
}

// A cluster of one grows to three in place behind its load balancer; a
// control-plane node terminated out of band is replaced on the next Apply
// and its gone instance leaves the targets; a converged re-apply calls
// nothing that mutates; Destroy removes the load balancer.
func TestApplyHighlyAvailableControlPlane(t *testing.T) {
	t.Parallel()
	if p, _ := clouds.ProfileOf("aws"); !p.LoadBalancer {
		t.Skip("the AWS cloud package has no load balancer support yet (clouds.Profile.LoadBalancer), so validation refuses control_plane.count 3 on AWS")
	}
	l := newLab()
	spec := demoSpec()
	res, err := cluster.Apply(context.Background(), spec, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	lbEndpoint := "demo.public.lb.invalid:6443"
	if res.Endpoint.APIEndpoint != lbEndpoint {
		t.Errorf("endpoint %q, want the load balancer's %q", res.Endpoint.APIEndpoint, lbEndpoint)
	}
	spec.ControlPlane.Count = 3
	if res, err = cluster.Apply(context.Background(), spec, l.opts()); err != nil {
		t.Fatalf("grow to 3: %v", err)
	}
	if add, remove := res.Changes.Counts(); add != 2 || remove != 0 {
		t.Errorf("growing added %d and removed %d nodes, want 2 and 0", add, remove)
	}
	wantConverged(t, l, spec)

	old := instanceOf(t, l, "demo-cp-1")
	l.cloud.Terminate("demo-cp-1")
	if res, err = cluster.Apply(context.Background(), spec, l.opts()); err != nil {
		t.Fatalf("replace demo-cp-1: %v", err)
	}
	wantConverged(t, l, spec)
	if res.Endpoint.APIEndpoint != lbEndpoint {
		t.Errorf("endpoint after the replacement %q, want %q", res.Endpoint.APIEndpoint, lbEndpoint)
	}
	if lb, _, _ := l.cloud.FindLoadBalancer(context.Background(), spec.Name); slices.Contains(lb.Targets, old.ID) {
		t.Errorf("targets %q still hold the terminated %s", lb.Targets, old.ID)
	}

	l.cloud.ResetCalls()
	l.prov.ResetCalls()
	if res, err = cluster.Apply(context.Background(), spec, l.opts()); err != nil || !res.Changes.Empty() {
		t.Fatalf("re-apply planned %q (%v), want nothing", res.Changes.Summary(), err)
	}
	if n := l.cloud.MutatingCalls(); n != 0 {
		t.Errorf("re-apply made %d mutating cloud calls (%v)", n, l.cloud.Calls())
	}
	if err := cluster.Destroy(context.Background(), spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	if objs := l.cloud.Objects(spec.Name); len(objs) != 0 {
		t.Errorf("left after Destroy: %q", objs)
	}
}

// networkRecorder keeps the network requests the library makes.
type networkRecorder struct {
	clouds.Cloud
	mu   sync.Mutex
	reqs []clouds.NetworkRequest
}

func (c *networkRecorder) EnsureNetwork(ctx context.Context, req clouds.NetworkRequest) (clouds.Network, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	return c.Cloud.EnsureNetwork(ctx, req)
}

// Calico's Felix reaches Typha on TCP 5473 on other nodes: the network asks
// the cloud to open it; flannel needs no port beyond VXLAN.
func TestApplyOpensThePodNetworksNodePorts(t *testing.T) {
	t.Parallel()
	for cni, want := range map[cluster.CNI][]int{cluster.CNIFlannel: nil, cluster.CNICalico: {5473}} {
		l := newLab()
		rec := &networkRecorder{Cloud: cloudWithoutLoadBalancers{l.cloud}}
		opts := l.opts()
		opts.Cloud = rec
		spec := demoSpec()
		spec.Network.CNI = cni
		if _, err := cluster.Apply(context.Background(), spec, opts); err != nil {
			t.Fatalf("%s: %v", cni, err)
		}
		if len(rec.reqs) == 0 || !slices.Equal(rec.reqs[0].NodeTCPPorts, want) {
			t.Errorf("%s: network requests %+v, want node TCP ports %v", cni, rec.reqs, want)
		}
	}
}
