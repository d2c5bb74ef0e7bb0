// Package e2e_test builds, re-applies and destroys a mixed cluster through
// cluster.Apply on the lab (test/lab): the real clouds/aws on the EC2+SSM
// emulator, the real provisioner pushing the bundled node agent through the
// lab's bastion to virtual nodes, and the artifact mirror. It also checks
// that Apply converges under API faults and random cancellation, and logs
// the figures: Apply wall time, API calls per Apply and re-Apply, and what
// one Observe costs.
//
// The node agent bundle must be built (`make agent-bundle`), and so must the
// lab's Kubernetes binaries (`make lab-bins`); without them the tests skip,
// unless MIXEDK8S_REQUIRE_BUNDLE=1 or MIXEDK8S_REQUIRE_K8S_BINS=1 makes that
// a failure.
// MIXEDK8S_E2E_SEED replays a run of the cancellation test and
// MIXEDK8S_E2E_ROUNDS sets its number of cuts (default 8).
package e2e_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/mixedk8s/mixedk8s/clouds/aws"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
	"github.com/mixedk8s/mixedk8s/test/lab/ec2"
)

func TestMain(m *testing.M) {
	// Never let the SDK reach IMDS or read the developer's AWS configuration.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
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

// world is one lab and the library pointed at it, as another process
// would point it: from the lab's env only.
type world struct {
	t     testing.TB
	lab   *lab.Lab
	env   lab.Env
	cloud *aws.Cloud
	prov  *provision.Provisioner

	mu     sync.Mutex
	events []cluster.Event
}

// Timings tuned for a 2-core machine: the lab's latencies are short, so the
// library's polls and backoffs are too.
const (
	pollInterval = 20 * time.Millisecond
	baseBackoff  = 20 * time.Millisecond
	maxBackoff   = 200 * time.Millisecond
)

func newWorld(t testing.TB) *world { return newWorldWith(t, nil) }

// newWorldWith starts the lab with sandbox hooks for its nodes (faults on
// the nodes themselves).
func newWorldWith(t testing.TB, hooks func(node string) sandbox.Hooks) *world {
	t.Helper()
	requireBundle(t)
	cptest.Bins(t, lab.Binaries...)
	l, err := lab.Start(context.Background(), lab.Config{
		Dir:               t.TempDir(),
		Region:            "eu-west-1",
		PendingDelay:      30 * time.Millisecond,
		ShuttingDownDelay: 30 * time.Millisecond,
		Hooks:             hooks,
		Logf:              t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	w := &world{t: t, lab: l}
	// Read what another process would: the env file.
	if w.env, err = lab.ReadEnv(l.EnvFile()); err != nil {
		t.Fatal(err)
	}
	w.cloud = w.newCloud()
	w.prov, err = provision.New(provision.Config{
		Cloud:          w.cloud,
		Secrets:        w.cloud,
		RebootWait:     50 * time.Millisecond,
		StatusPoll:     50 * time.Millisecond,
		ConnectTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.prov.Close() })
	return w
}

func (w *world) newCloud() *aws.Cloud {
	ca, err := os.ReadFile(w.env.AWSCABundle)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := aws.New(context.Background(), aws.Config{
		Region:       w.env.AWSRegion,
		Endpoint:     w.env.AWSEndpoint,
		CABundle:     ca,
		Credentials:  credentials.NewStaticCredentialsProvider(w.env.AWSAccessKeyID, w.env.AWSSecretAccessKey, ""),
		RetryMode:    "standard",
		MaxBackoff:   maxBackoff,
		PollInterval: pollInterval,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) opts() cluster.Options {
	return cluster.Options{
		Cloud: w.cloud, Provisioner: w.prov,
		BaseBackoff: baseBackoff, MaxBackoff: maxBackoff, Attempts: 20,
		Progress: func(e cluster.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
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
// Windows Server 2022 workers, reached through the lab's bastion.
func (w *world) spec(name, nodeCIDR string) cluster.Spec {
	return cluster.Spec{
		Name:              name,
		KubernetesVersion: "1.36.3",
		AWS:               &cluster.AWSSpec{Region: w.env.AWSRegion},
		// Flannel: Calico's operator manifest needs a pinned digest the lab mirror does not serve.
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
		Artifacts: cluster.ArtifactsSpec{MirrorBaseURL: w.env.MirrorBaseURL},
	}
}

// apply runs Apply with a bound and fails the test with the progress on error.
func (w *world) apply(spec cluster.Spec, within time.Duration) *cluster.Result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	res, err := cluster.Apply(ctx, spec, w.opts())
	if err != nil {
		w.fatal("Apply", err)
	}
	return res
}

// destroy runs Destroy and checks that nothing of the cluster is left,
// secrets and nodes included.
func (w *world) destroy(spec cluster.Spec) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.Destroy(ctx, spec, w.opts()); err != nil {
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
}

// instancesByNode counts the live (not terminated) instances of each node name.
func (w *world) instancesByNode(clusterName string) map[string]int {
	out := map[string]int{}
	for _, in := range w.lab.EC2.Instances() {
		if in.Tags[aws.TagCluster] == clusterName && in.State != "terminated" && in.State != "shutting-down" {
			out[in.Tags[aws.TagNode]]++
		}
	}
	return out
}

// callsSince is the emulator's calls by action since before.
func callsSince(srv *ec2.Server, before map[string]int) map[string]int {
	out := map[string]int{}
	for a, n := range srv.Calls() {
		if d := n - before[a]; d > 0 {
			out[a] = d
		}
	}
	return out
}

func mutating(calls map[string]int) int {
	n := 0
	for a, k := range calls {
		if ec2.Mutating(a) {
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
func formatCalls(calls map[string]int) string {
	keys := slices.Collect(maps.Keys(calls))
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, calls[k])
	}
	return fmt.Sprintf("%d calls (%d mutating):%s", total(calls), mutating(calls), b.String())
}
