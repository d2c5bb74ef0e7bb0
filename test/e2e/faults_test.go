package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// TestApplyConvergesUnderThrottlingAnd5xx fails, on each cloud of the
// table, every second call of every API action with the cloud's throttling
// reply (EC2 and SSM RequestLimitExceeded, ARM and Key Vault 429 with
// Retry-After, Compute Engine and Secret Manager rateLimitExceeded) and
// every third of the rest with a server error, for the whole Apply and
// Destroy. The cluster runs Calico (checkCalico), so each cloud also builds
// one Calico cluster without another Apply.
func TestApplyConvergesUnderThrottlingAnd5xx(t *testing.T) {
	eachCloud(t, rows, testThrottlingAnd5xx)
}

func testThrottlingAnd5xx(t *testing.T, r *row) {
	w := newWorld(t, r)
	spec := w.spec("faulty", "10.1.0.0/16")
	spec.Network.CNI = cluster.CNICalico
	if err := r.rates(w.lab, 2, 3); err != nil {
		t.Fatal(err)
	}
	before := w.calls()
	start := time.Now()
	res := w.apply(spec, 2*time.Minute)
	calls := w.callsSince(before)
	t.Logf("FIGURE %s: apply under faults: %s, %s", r.name, time.Since(start).Round(time.Millisecond), w.formatCalls(calls))
	for _, n := range res.Nodes {
		if !n.Ready {
			t.Errorf("node %s not ready", n.Name)
		}
	}
	for name, k := range w.instancesByNode(spec.Name) {
		if k != 1 {
			t.Errorf("node %s has %d instances, want 1", name, k)
		}
	}
	w.checkCalico(spec, res)
	for _, p := range w.lab.Problems() {
		if strings.Contains(p, "calico") {
			t.Errorf("lab problem: %s", p)
		}
	}
	// Destroy under the same faults leaves nothing either.
	w.destroy(spec)
}

// TestApplyAdoptsLostReplies loses the replies of the first instance
// creations (the cloud acted, the client never heard): Apply converges with
// one instance per node, the creations were sent again (each cloud's key
// is the name or the request ID, so nothing is made twice), and Destroy
// leaves nothing. On the clouds whose emulator models a lost reply.
func TestApplyAdoptsLostReplies(t *testing.T) {
	eachCloud(t, rowsWith(func(r *row) bool { return r.loseReplies != nil }), testLostReplies)
}

func testLostReplies(t *testing.T, r *row) {
	w := newWorld(t, r)
	spec := w.spec("lost", "10.7.0.0/16")
	const lost = 2
	action := r.loseReplies(w.lab, lost)
	before := w.calls()
	start := time.Now()
	res := w.apply(spec, 2*time.Minute)
	calls := w.callsSince(before)
	t.Logf("FIGURE %s: apply with %d lost replies: %s, %s", r.name, lost, time.Since(start).Round(time.Millisecond), w.formatCalls(calls))
	for _, n := range res.Nodes {
		if !n.Ready {
			t.Errorf("node %s not ready", n.Name)
		}
	}
	nodes := len(spec.WithDefaults().Nodes())
	got := w.instancesByNode(spec.Name)
	if len(got) != nodes {
		t.Errorf("instances by node %v, want one for each of %d nodes", got, nodes)
	}
	for name, k := range got {
		if k != 1 {
			t.Errorf("node %s has %d instances, want 1", name, k)
		}
	}
	// Each lost reply was followed by the same call again.
	if calls[action] < nodes+lost {
		t.Errorf("%d %s calls for %d nodes and %d lost replies: the lost ones were not sent again; %s", calls[action], action, nodes, lost, w.formatCalls(calls))
	}
	w.destroy(spec)
}

// TestCapacityErrorNamesThePoolAndType takes the Windows pool's instance
// type out of capacity: Apply fails saying which pool and type, the rest of
// the cluster still comes up, and once capacity is back Apply completes.
func TestCapacityErrorNamesThePoolAndType(t *testing.T) {
	eachCloud(t, rows, testCapacityError)
}

func testCapacityError(t *testing.T, r *row) {
	w := newWorld(t, r)
	spec := w.spec("capacity", "10.2.0.0/16")
	if r.windowsType != "" {
		win := spec.NodePools["win"]
		win.InstanceType = r.windowsType
		spec.NodePools["win"] = win
	}
	winType := spec.WithDefaults().NodePools["win"].InstanceType
	if err := r.capacity(w.lab, winType, true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := cluster.Apply(ctx, spec, w.opts(spec))
	w.heard(err)
	if err == nil {
		t.Fatal("Apply succeeded without capacity for the Windows pool's instance type")
	}
	for _, want := range []string{`node_pools["win"].instance_type`, winType, r.capacityCode} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q:\n%v", want, err)
		}
	}
	t.Logf("capacity error: %v", err)

	// Nothing else broke: the control plane and the Linux pool joined. The
	// failed Apply did not wait for them to be Ready (that step needs every
	// node), and a kubelet registers its Node moments after its TLS
	// bootstrap, so Observe is asked until they are.
	healthy := []string{"capacity-cp-0", "capacity-lin-0", "capacity-lin-1"}
	var obs cluster.Observed
	for {
		if obs, err = cluster.Observe(ctx, spec, w.opts(spec)); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(healthy, func(n string) bool { return !obs.Nodes[n].Ready }) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, name := range healthy {
		if !obs.Nodes[name].Ready {
			t.Errorf("%s is not ready after the Windows pool failed: %+v", name, obs.Nodes[name])
		}
	}
	if got := w.instancesByNode(spec.Name); got["capacity-win-0"]+got["capacity-win-1"] != 0 {
		t.Errorf("Windows instances exist without capacity: %v", got)
	}

	if err := r.capacity(w.lab, winType, false); err != nil {
		t.Fatal(err)
	}
	res := w.apply(spec, 2*time.Minute)
	for _, n := range res.Nodes {
		if !n.Ready {
			t.Errorf("node %s not ready once capacity is back", n.Name)
		}
	}
	w.destroy(spec)
}

// TestCancelledAppliesConverge cuts Apply at random points on each cloud
// of the table: 2 cuts per cloud in `make test` (each round starts a
// control plane, 15 s or so), MIXEDK8S_E2E_ROUNDS per cloud with `make
// e2e` (8 there; `MIXEDK8S_E2E_ROUNDS=20 make e2e` for a longer soak). Each
// cut lands in a fresh build (the cluster of the previous round was
// destroyed), so every cut interrupts real work; after each, Apply is run
// again and must converge with exactly one instance per node, and Destroy
// must leave nothing. One lab per cloud, one cluster at a time: a cluster
// name per round keeps the idempotency keys of destroyed rounds (EC2's
// client tokens, Compute Engine's request IDs) out of the way.
func TestCancelledAppliesConverge(t *testing.T) {
	eachCloud(t, rows, testCancelledApplies)
}

func testCancelledApplies(t *testing.T, r *row) {
	w := newWorld(t, r)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MIXEDK8S_E2E_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MIXEDK8S_E2E_SEED=%q is not a number", s)
		}
	}
	rounds := 2
	if s := os.Getenv("MIXEDK8S_E2E_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			t.Fatalf("MIXEDK8S_E2E_ROUNDS=%q is not a positive number", s)
		}
	}
	t.Logf("seed %d (replay with MIXEDK8S_E2E_SEED=%d), %d rounds", seed, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, seed))
	// Cuts fall anywhere in an Apply: the span is a whole Apply on this
	// machine, now, and the shortest one a round has seen since.
	ref := w.spec("cancel-rf", "10.3.0.0/16")
	start := time.Now()
	w.apply(ref, 2*time.Minute)
	span := time.Since(start) * 9 / 10
	w.destroy(ref)
	t.Logf("cuts fall within the first %s of each Apply", span.Round(time.Millisecond))
	cut := 0
	for i := range rounds {
		spec := w.spec(fmt.Sprintf("cancel-%02d", i), "10.3.0.0/16")
		d := time.Duration(rng.Int64N(int64(span)))
		w.resetEvents()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		began := time.Now()
		_, err := cluster.Apply(ctx, spec, w.opts(spec))
		w.heard(err)
		took := time.Since(began)
		cancel()
		switch {
		case err == nil:
			// The reference Apply ran on a busier machine than this one: the
			// span shrinks to the shortest whole Apply seen.
			span = min(span, took*9/10)
			t.Logf("round %2d: the deadline %s came after Apply finished (in %s)", i, d, took.Round(time.Millisecond))
		case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), context.DeadlineExceeded.Error()):
			cut++
			t.Logf("round %2d: cut at %s after %d finished steps", i, d, w.finishedSteps())
		default:
			w.fatal(fmt.Sprintf("round %d: Apply cut at %s (failed other than by its deadline)", i, d), err)
		}
		for name, k := range w.instancesByNode(spec.Name) {
			if k > 1 {
				t.Fatalf("round %d: after the cut, node %s has %d instances", i, name, k)
			}
		}
		reapply := time.Now()
		res := w.apply(spec, 2*time.Minute)
		t.Logf("round %2d: re-applied in %s", i, time.Since(reapply).Round(time.Millisecond))
		for _, n := range res.Nodes {
			if !n.Ready {
				t.Errorf("round %d: node %s not ready after re-applying", i, n.Name)
			}
		}
		got := w.instancesByNode(spec.Name)
		if len(got) != 5 {
			t.Errorf("round %d: instances by node %v, want one for each of 5 nodes", i, got)
		}
		for name, k := range got {
			if k != 1 {
				t.Errorf("round %d: node %s has %d instances, want 1", i, name, k)
			}
		}
		destroy := time.Now()
		w.destroy(spec)
		t.Logf("round %2d: destroyed in %s", i, time.Since(destroy).Round(time.Millisecond))
		if t.Failed() {
			return
		}
	}
	if cut < (rounds+1)/2 {
		t.Errorf("only %d of %d Applies were cut short; the deadlines miss the work", cut, rounds)
	}
	if p := w.lab.Problems(); len(p) > 0 {
		t.Errorf("lab problems: %q", p)
	}
}

// TestApplySurvivesDroppedConnectionsAndHostReboots drops every bastion
// connection and reboots a node's host (all its connections drop) every
// 250ms for the first seconds of the Apply: it still converges, and the
// Windows nodes still reboot only for their own reason, at most once.
func TestApplySurvivesDroppedConnectionsAndHostReboots(t *testing.T) {
	eachCloud(t, rows, testDroppedConnections)
}

func testDroppedConnections(t *testing.T, r *row) {
	w := newWorld(t, r)
	spec := w.spec("drops", "10.5.0.0/16")
	done := make(chan struct{})
	injected := make(chan int)
	go func() {
		n := 0
		defer func() { injected <- n }()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		stop := time.After(3 * time.Second)
		for {
			select {
			case <-done:
				return
			case <-stop:
				return
			case <-tick.C:
			}
			n++
			if n%2 == 1 {
				w.lab.DropConnections()
				continue
			}
			if nodes := w.lab.Nodes(spec.Name); len(nodes) > 0 {
				_ = w.lab.RebootHost(nodes[n%len(nodes)].Name)
			}
		}
	}()
	start := time.Now()
	// The provisioner dials a dropped bastion again and runs a cut agent
	// session again, so this one Apply must converge by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	res, err := cluster.Apply(ctx, spec, w.opts(spec))
	w.heard(err)
	cancel()
	close(done)
	t.Logf("%d connection faults; Apply took %s", <-injected, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("Apply under dropped connections and host reboots: %v", err)
	}
	for _, n := range res.Nodes {
		if !n.Ready {
			t.Errorf("node %s not ready", n.Name)
		}
		if ln := w.lab.Node(n.Name); ln != nil && ln.Sandbox.Machine().Reboots > 1 {
			t.Errorf("%s rebooted itself %d times, want at most 1", n.Name, ln.Sandbox.Machine().Reboots)
		}
	}
	for name, k := range w.instancesByNode(spec.Name) {
		if k != 1 {
			t.Errorf("node %s has %d instances, want 1", name, k)
		}
	}
	w.destroy(spec)
}

// TestWrongBootstrapTokenFailsTheJoin gives one Linux and one Windows node
// a bootstrap token the cluster never issued (the nodes' own copies are
// rewritten just before kubeadm join reads its configuration and the
// kubelet service reads its bootstrap kubeconfig). Apply must fail soon,
// with the agents' errors naming the token, not wait for nodes that cannot
// join; the rest of the cluster still comes up. The nodes are the lab's,
// the same for every cloud: on AWS.
func TestWrongBootstrapTokenFailsTheJoin(t *testing.T) {
	eachCloud(t, []*row{awsRow}, testWrongBootstrapToken)
}

func testWrongBootstrapToken(t *testing.T, r *row) {
	const bogus = "abcdef.0123456789abcdef"
	var w *world
	spoil := func(name, file string) {
		n := w.lab.Node(name)
		if n == nil {
			return
		}
		p, err := n.Sandbox.HostPath(file)
		if err != nil {
			t.Error(err)
			return
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			return
		}
		spoilt := tokenPattern.ReplaceAll(data, []byte(bogus))
		if err := os.WriteFile(p, spoilt, 0o600); err != nil {
			t.Error(err)
		}
	}
	w = newWorldWith(t, r, func(name string) sandbox.Hooks {
		if !strings.HasSuffix(name, "-lin-0") && !strings.HasSuffix(name, "-win-0") {
			return sandbox.Hooks{}
		}
		return sandbox.Hooks{
			OnCommand: func(ctx context.Context, c oslayer.Command) ([]byte, bool, error) {
				if len(c.Args) > 2 && c.Args[0] == "join" && c.Args[1] == "--config" {
					spoil(name, c.Args[2])
				}
				return nil, false, nil
			},
			OnServiceStart: func(ctx context.Context, s oslayer.ServiceSpec) error {
				if s.Name == "kubelet" {
					spoil(name, `C:\k\bootstrap-kubelet.conf`)
				}
				return nil
			},
		}
	})
	spec := w.spec("badtoken", "10.6.0.0/16")
	spec.NodePools = map[string]cluster.PoolSpec{
		"lin": {OS: cluster.Linux, Count: 2},
		"win": {OS: cluster.Windows, WindowsVersion: "2022", Count: 1},
	}
	opts := w.opts(spec)
	opts.Attempts = 2
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := cluster.Apply(ctx, spec, opts)
	w.heard(err)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Apply succeeded with nodes holding a token the cluster never issued")
	}
	if ctx.Err() != nil {
		t.Fatalf("Apply waited for its deadline (%s) instead of failing: %v", took.Round(time.Second), err)
	}
	msg := err.Error()
	t.Logf("Apply failed after %s: %v", took.Round(time.Millisecond), err)
	for _, node := range []string{"badtoken-lin-0", "badtoken-win-0"} {
		if !strings.Contains(msg, node) {
			t.Errorf("the error does not name %s: %v", node, err)
		}
	}
	if !hasTokenWords(msg) {
		t.Errorf("the error does not speak of the token: %v", err)
	}
	if n := strings.Count(msg, "start service kubelet"); n != 1 {
		t.Errorf("the error says %d times that starting the kubelet failed, want once: %v", n, err)
	}
	if strings.Contains(msg, bogus) || strings.Contains(msg, "0123456789abcdef") {
		t.Errorf("the error shows the token's secret: %v", err)
	}
	// The nodes with a good token joined.
	cs := w.kube(spec)
	for _, node := range []string{"badtoken-cp-0", "badtoken-lin-1"} {
		if _, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil {
			t.Errorf("node %s with a good token did not join: %v", node, err)
		}
	}
	w.destroy(spec)
}

// tokenPattern matches a bootstrap token.
var tokenPattern = regexp.MustCompile(`[a-z0-9]{6}\.[a-z0-9]{16}`)
