// Package e2e_test builds, re-applies, scales and destroys a mixed cluster
// through cluster.Apply on the lab (test/lab), once per cloud of a table
// (clouds_test.go: aws, azure, gcp): the real clouds/<name> on the lab's
// emulator of that cloud (EC2+SSM, ARM+Key Vault, Compute Engine+Secret
// Manager), built from the lab's env only as another process would build
// it; the real provisioner pushing the bundled node agent through the
// lab's bastion to virtual nodes; the artifact mirror; a real control
// plane per cluster. The scenarios know no cloud: a row says how to start
// its emulator, how to connect, and how to read and fault its emulator in
// neutral terms, and tag keys come from the cloud's clouds.Profile.
//
// Per cloud, rows and scenarios in parallel (each in its own lab, at least
// three at once unless -parallel says otherwise): the mixed cluster
// Ready through the API server, re-Apply without a mutating call, Observe's
// cost, a Windows pool scaled down with a drain, Destroy leaving nothing
// (TestMixedClusterEndToEnd); Apply and Destroy under throttling and server
// errors on every operation (TestApplyConvergesUnderThrottlingAnd5xx);
// Apply cut at random points, then re-applied to one instance per node and
// destroyed (TestCancelledAppliesConverge); a capacity error naming pool,
// type and the cloud's code, the rest of the cluster up regardless
// (TestCapacityErrorNamesThePoolAndType); dropped bastion connections and
// host reboots (TestApplySurvivesDroppedConnectionsAndHostReboots); on
// Azure and GCP, whose emulators model it, lost replies of instance
// creations adopted without a duplicate (TestApplyAdoptsLostReplies). On AWS
// only, as they exercise the lab's nodes or count EC2 calls (the other
// clouds count theirs in clouds/<name>'s BenchmarkObserve): a wrong
// bootstrap token, and what one Observe costs at 20 and 101 instances.
// Figures (Apply wall time, API calls per Apply and
// re-Apply, one Observe) are logged as FIGURE lines.
//
// The node agent bundle must be built (`make agent-bundle`), and so must the
// lab's Kubernetes binaries (`make lab-bins`); without them the tests skip,
// unless MIXEDK8S_REQUIRE_BUNDLE=1 or MIXEDK8S_REQUIRE_K8S_BINS=1 makes that
// a failure.
// MIXEDK8S_E2E_ROUNDS sets the cuts per cloud of the cancellation test:
// 2 by default (`make test`), 8 under `make e2e`; MIXEDK8S_E2E_SEED
// replays a run.
package e2e_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
	"github.com/mixedk8s/mixedk8s/internal/secretscan"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
)

func TestMain(m *testing.M) {
	// Never let the SDK reach IMDS or read the developer's AWS configuration.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	// A scenario mostly waits (on emulated operations, boots, polls): three
	// labs at once keep this package's wall time down on two cores, where
	// -parallel would default to two. An explicit -parallel wins.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		if err := flag.Set("test.parallel", strconv.Itoa(max(runtime.GOMAXPROCS(0), len(rows)))); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// requireBundle skips (or fails, when asked to) without the built agents.
func requireBundle(t testing.TB) {
	t.Helper()
	if err := bundle.Check(); err != nil {
		if os.Getenv("MIXEDK8S_REQUIRE_BUNDLE") == "1" {
			t.Fatalf("MIXEDK8S_REQUIRE_BUNDLE=1: %v", err)
		}
		t.Skipf("the end-to-end tests push the real agent bundle: %v", err)
	}
}

// world is one lab running a row's emulator, and the library pointed at
// it as another process would point it: from the lab's env only. It knows
// no cloud: the row and the cloud's clouds.Profile do.
type world struct {
	t   testing.TB
	row *row
	lab *lab.Lab
	// env is the lab's bastion and mirror; vars every variable of lab.env.
	env  lab.Env
	vars map[string]string
	emu  cloudemu.Emulator
	tags clouds.TagKeys

	smu      sync.Mutex
	sessions map[string]*session // by cluster name

	mu     sync.Mutex
	events []cluster.Event
	// said is everything the library told the scenario: each progress line
	// with its error, each error an Apply or Destroy returned. The world's
	// cleanup scans it for secrets, collected after each Apply that
	// succeeded (applied counts them) and before each Destroy.
	said    []string
	applied int
	secrets secretscan.Set
	// dials counts the connections of clients through a load balancer.
	dials atomic.Int64
}

// session is the cloud and provisioner of one cluster: a cloud's client
// may depend on the spec's cloud block (Azure's resource group).
type session struct {
	cloud clouds.Cloud
	prov  *provision.Provisioner
}

// Timings tuned for a 2-core machine: the lab's latencies are short, so the
// library's polls and backoffs are too.
const (
	pollInterval = 20 * time.Millisecond
	baseBackoff  = 20 * time.Millisecond
	maxBackoff   = 200 * time.Millisecond
)

func newWorld(t testing.TB, r *row) *world { return newWorldWith(t, r, nil) }

// newWorldWith starts the lab with the row's emulator and sandbox hooks
// for its nodes (faults on the nodes themselves).
func newWorldWith(t testing.TB, r *row, hooks func(node string) sandbox.Hooks) *world {
	t.Helper()
	requireBundle(t)
	cptest.Bins(t, lab.Binaries...)
	cfg := lab.Config{
		Dir:               t.TempDir(),
		Region:            "eu-west-1",
		PendingDelay:      30 * time.Millisecond,
		ShuttingDownDelay: 30 * time.Millisecond,
		Hooks:             hooks,
		Logf:              t.Logf,
	}
	if r.starter != nil {
		cfg.Clouds = []cloudemu.Starter{r.starter()}
	}
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	profile, ok := clouds.ProfileOf(r.name)
	if !ok {
		t.Fatalf("no clouds.Profile registered for %s", r.name)
	}
	w := &world{t: t, row: r, lab: l, emu: l.Emulator(r.name), tags: profile.Tags, sessions: map[string]*session{}}
	t.Cleanup(w.scanSaid) // before the lab closes: it reads the clusters' secrets
	if w.emu == nil {
		t.Fatalf("the lab runs no %s emulator", r.name)
	}
	// Read what another process would: the env file.
	if w.env, err = lab.ReadEnv(l.EnvFile()); err != nil {
		t.Fatal(err)
	}
	if w.vars, err = lab.ReadVars(l.EnvFile()); err != nil {
		t.Fatal(err)
	}
	return w
}

// session returns the cluster's cloud and provisioner, made on first use.
func (w *world) session(spec cluster.Spec) *session {
	w.t.Helper()
	w.smu.Lock()
	defer w.smu.Unlock()
	if s, ok := w.sessions[spec.Name]; ok {
		return s
	}
	cloud := w.row.connect(w.t, w.vars, spec)
	prov, err := provision.New(provision.Config{
		Cloud:          cloud,
		Secrets:        cloud,
		RebootWait:     50 * time.Millisecond,
		StatusPoll:     50 * time.Millisecond,
		ConnectTimeout: time.Minute,
		// A drain a PodDisruptionBudget blocks fails within the scenario's time.
		DrainTimeout: 20 * time.Second,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { prov.Close() })
	s := &session{cloud: cloud, prov: prov}
	w.sessions[spec.Name] = s
	// The secrets of a cluster the scenario keeps, read while its cloud's
	// clients are open (cleanups run last first).
	w.t.Cleanup(func() { w.collectSecrets(spec) })
	return s
}

// cloud is the cluster's clouds.Cloud.
func (w *world) cloud(spec cluster.Spec) clouds.Cloud { return w.session(spec).cloud }

func (w *world) opts(spec cluster.Spec) cluster.Options {
	s := w.session(spec)
	return cluster.Options{
		Cloud: s.cloud, Provisioner: s.prov,
		BaseBackoff: baseBackoff, MaxBackoff: maxBackoff, Attempts: 20,
		Progress: func(e cluster.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.said = append(w.said, e.String()+"\t"+e.Err)
			w.mu.Unlock()
		},
	}
}

// resetEvents forgets the progress so far.
func (w *world) resetEvents() {
	w.mu.Lock()
	w.events = nil
	w.mu.Unlock()
}

// finishedSteps counts the steps finished since resetEvents.
func (w *world) finishedSteps() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.events {
		if e.Kind == cluster.StepFinished {
			n++
		}
	}
	return n
}

// logEvents prints the progress so far, for a failure's context.
func (w *world) logEvents() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		w.t.Log(e)
	}
}

// fatal ends the test on err from what: the error first and last, the
// progress between, so that a log cut at either end still shows it.
func (w *world) fatal(what string, err error) {
	w.t.Helper()
	w.t.Logf("%s failed: %v\nlab problems: %q\nthe progress until then:", what, err, w.lab.Problems())
	w.logEvents()
	w.t.Fatalf("%s: %v", what, err)
}

// spec is the cluster: 1 control-plane node, 2 Linux workers and 2
// Windows Server 2022 workers, reached through the lab's bastion, in the
// row's cloud.
func (w *world) spec(name, nodeCIDR string) cluster.Spec {
	spec := cluster.Spec{
		Name:              name,
		KubernetesVersion: "1.36.3",
		// Flannel here; TestApplyConvergesUnderThrottlingAnd5xx runs Calico.
		Network:      cluster.NetworkSpec{CNI: cluster.CNIFlannel, NodeCIDR: nodeCIDR},
		ControlPlane: cluster.ControlPlaneSpec{Count: 1},
		NodePools: map[string]cluster.PoolSpec{
			"lin": {OS: cluster.Linux, Count: 2},
			"win": {OS: cluster.Windows, WindowsVersion: "2022", Count: 2},
		},
		Access: cluster.AccessSpec{
			AdminCIDRs: []string{"127.0.0.1/32"},
			Bastion: &cluster.BastionSpec{
				Address: w.env.BastionAddress, User: w.env.BastionUser,
				HostKey: w.env.BastionHostKey, PrivateKeyFile: w.env.BastionPrivateKeyFile,
			},
		},
		Artifacts: cluster.ArtifactsSpec{MirrorBaseURL: w.env.MirrorBaseURL, TrustMirrorChecksums: true}, // the lab's stand-ins
	}
	w.row.place(&spec, w.vars)
	return spec
}

// apply runs Apply with a bound and fails the test with the progress on error.
func (w *world) apply(spec cluster.Spec, within time.Duration) *cluster.Result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	res, err := cluster.Apply(ctx, spec, w.opts(spec))
	w.heard(err)
	if err != nil {
		w.fatal("Apply", err)
	}
	w.collectSecrets(spec)
	w.mu.Lock()
	w.applied++
	w.mu.Unlock()
	return res
}

// heard records an error the library returned, for the scan.
func (w *world) heard(err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	w.said = append(w.said, err.Error())
	w.mu.Unlock()
}

// collectSecrets adds the cluster's secrets, read from where they live:
// the cloud's secret store, and each node's first-boot and lasting identity.
func (w *world) collectSecrets(spec cluster.Spec) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cloud := w.cloud(spec)
	names := []clouds.SecretName{"seed", "ca", "init-token", "certificate-key"}
	for _, n := range w.lab.Nodes(spec.Name) {
		names = append(names, clouds.NewSecretName("node", n.Name, "winrm"), clouds.NewSecretName("node", n.Name, "winrm-lasting"))
		boot := n.FirstBoot
		w.secrets.AddPEM(n.Name+"'s first-boot host key", []byte(boot.SSHHostKeyPEM))
		w.secrets.AddPEM(n.Name+"'s first-boot WinRM key", []byte(boot.WinRMKeyPEM))
		w.secrets.Add(n.Name+"'s first-boot admin password", []byte(boot.AdminPassword))
		a := n.Sandbox.Access()
		w.secrets.AddPEM(n.Name+"'s host key", []byte(a.SSHHostKeyPEM))
		w.secrets.AddPEM(n.Name+"'s WinRM key", []byte(a.WinRMKeyPEM))
		for user, pw := range a.Passwords {
			w.secrets.Add(n.Name+"'s password of "+user, []byte(pw))
		}
	}
	for _, name := range names {
		v, ok, err := cloud.Secret(ctx, spec.Name, name)
		// A scenario's throttling and 5xx faults are still on: read again.
		for try := 1; err != nil && try < 20 && ctx.Err() == nil; try++ {
			time.Sleep(50 * time.Millisecond)
			v, ok, err = cloud.Secret(ctx, spec.Name, name)
		}
		if err != nil {
			w.t.Errorf("read secret %s of cluster %s: %v", name, spec.Name, err)
			return
		}
		if !ok {
			continue
		}
		if bytes.Contains(v, []byte("-----BEGIN")) {
			w.secrets.AddPEM(spec.Name+"'s stored "+string(name), v)
		} else {
			w.secrets.Add(spec.Name+"'s stored "+string(name), v)
		}
	}
}

// scanSaid fails the test when anything the library said holds a secret.
func (w *world) scanSaid() {
	w.mu.Lock()
	said, applied := strings.Join(w.said, "\n"), w.applied
	w.mu.Unlock()
	if applied > 0 && w.secrets.Len() < 4 {
		w.t.Errorf("after %d Applies only %d secrets collected: the scan of what the library said would prove little", applied, w.secrets.Len())
	}
	hits, err := w.secrets.Scan("progress and errors", strings.NewReader(said))
	if err != nil {
		w.t.Error(err)
	}
	for _, h := range hits {
		w.t.Errorf("the library said a secret: %s", h)
	}
}

// destroy runs Destroy and checks that nothing of the cluster is left,
// secrets and nodes included: not in the cloud's emulator, not in the lab.
func (w *world) destroy(spec cluster.Spec) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w.collectSecrets(spec)
	err := cluster.Destroy(ctx, spec, w.opts(spec))
	w.heard(err)
	if err != nil {
		w.fatal("Destroy", err)
	}
	// Terminated instances stop their nodes after the shutting-down delay.
	deadline := time.Now().Add(10 * time.Second)
	for len(w.lab.Objects(spec.Name)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := w.lab.Objects(spec.Name); len(left) > 0 {
		w.t.Errorf("after Destroy, cluster %s still has %q", spec.Name, left)
	}
	if left, err := w.lab.ObjectsIn(w.row.name, spec.Name); err != nil || len(left) > 0 {
		w.t.Errorf("after Destroy, the %s emulator still holds %q of cluster %s (%v)", w.row.name, left, spec.Name, err)
	}
}

// instancesByNode counts the live (not terminated nor being deleted)
// instances of each node name.
func (w *world) instancesByNode(clusterName string) map[string]int {
	out := map[string]int{}
	for _, in := range w.row.vms(w.lab) {
		if in.Tags[w.tags.Cluster] == clusterName && !in.Gone && !in.Leaving {
			out[in.Tags[w.tags.Node]]++
		}
	}
	return out
}

// calls is the emulator's calls by action so far.
func (w *world) calls() map[string]int { return w.emu.Calls() }

// callsSince is the emulator's calls by action since before.
func (w *world) callsSince(before map[string]int) map[string]int {
	out := map[string]int{}
	for a, n := range w.emu.Calls() {
		if d := n - before[a]; d > 0 {
			out[a] = d
		}
	}
	return out
}

func (w *world) mutating(calls map[string]int) int {
	n := 0
	for a, k := range calls {
		if w.emu.Mutating(a) {
			n += k
		}
	}
	return n
}

func total(calls map[string]int) int {
	n := 0
	for _, k := range calls {
		n += k
	}
	return n
}

// formatCalls prints calls by action in a stable order.
func (w *world) formatCalls(calls map[string]int) string {
	keys := slices.Collect(maps.Keys(calls))
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, calls[k])
	}
	return fmt.Sprintf("%d calls (%d mutating):%s", total(calls), w.mutating(calls), b.String())
}
