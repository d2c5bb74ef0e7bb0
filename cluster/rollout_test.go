package cluster_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

// poolInstances lists the running instances of a pool, by name, with what each was made from.
func poolInstances(t *testing.T, l *lab, spec cluster.Spec, pool string) []clouds.Instance {
	t.Helper()
	all, err := l.cloud.Instances(context.Background(), spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(in clouds.Instance) bool { return in.Pool != pool })
}

// watchPool records the most instances a pool had at once, counted at each create and delete.
type watchPool struct {
	mu       sync.Mutex
	live     map[string]bool
	most     int
	creates  []string
	finished []string // step IDs in the order they finished
}

func (w *watchPool) opts(l *lab, spec cluster.Spec, pool string) cluster.Options {
	o := l.opts()
	prefix := cluster.NodeName(spec.Name, pool, 0)
	prefix = prefix[:len(prefix)-1]
	o.Progress = func(e cluster.Event) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if e.Kind != cluster.StepFinished {
			return
		}
		w.finished = append(w.finished, e.Step)
		kind, node, _ := strings.Cut(e.Step, "/")
		if !strings.HasPrefix(node, prefix) {
			return
		}
		switch cluster.StepKind(kind) {
		case cluster.StepInstance:
			w.live[node+"@"+e.Time.String()] = true
			w.creates = append(w.creates, node)
		case cluster.StepDelete:
			for k := range w.live {
				if strings.HasPrefix(k, node+"@") {
					delete(w.live, k)
				}
			}
		}
		w.most = max(w.most, len(w.live))
	}
	return o
}

func (w *watchPool) seed(ins []clouds.Instance) {
	w.live = map[string]bool{}
	for _, in := range ins {
		w.live[in.Name+"@seed"] = true
	}
}

func (w *watchPool) index(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Index(w.finished, id)
}

func TestApplyRollsAWindowsPoolBySurge(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	ctx := context.Background()
	if _, err := cluster.Apply(ctx, spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	win := spec.NodePools["win"]
	win.WindowsVersion = "2025"
	spec = withPool(spec, "win", &win)

	o, err := cluster.Observe(ctx, spec, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cluster.Plan(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{
		`~ pool "win": replace 2 nodes (max_surge 1, max_unavailable 0; a repair does not wait)`,
		`  ~ replace demo-win-0 with demo-win-2 (windows-2025): windows_version 2022 -> 2025`,
		`  ~ replace demo-win-1 with demo-win-0 (windows-2025): windows_version 2022 -> 2025`,
	}
	if got := plan.Summary(); !slices.Equal(got, wantLines) {
		t.Errorf("summary\n got %q\nwant %q", got, wantLines)
	}
	if got := plan.Replacements(); len(got) != 2 || got[0].Node != "demo-win-0" || got[0].New != "demo-win-2" || got[0].Reason != "windows_version 2022 -> 2025" {
		t.Errorf("replacements %+v", got)
	}

	w := &watchPool{}
	w.seed(poolInstances(t, l, spec, "win"))
	if _, err := cluster.Apply(ctx, spec, w.opts(l, spec, "win")); err != nil {
		t.Fatal(err)
	}
	if w.most > win.Count+1 {
		t.Errorf("the pool had %d instances at once, more than count %d + max_surge 1", w.most, win.Count)
	}
	// Each old node is drained only once its replacement is Ready, and the
	// second replacement starts only once the first old node is gone.
	order := [][2]string{
		{"ready/demo-win-2", "drain/demo-win-0"},
		{"drain/demo-win-0", "delete/demo-win-0"},
		{"remove/demo-win-0", "instance/demo-win-0"},
		{"ready/demo-win-0", "drain/demo-win-1"},
	}
	for _, pair := range order {
		if a, b := w.index(pair[0]), w.index(pair[1]); a < 0 || b < 0 || a > b {
			t.Errorf("%s finished at %d, %s at %d; want the first before the second", pair[0], a, pair[1], b)
		}
	}
	if got, want := l.prov.Drained(), []string{"demo-win-0", "demo-win-1"}; !slices.Equal(got, want) {
		t.Errorf("drained %q, want %q", got, want)
	}
	var names []string
	for _, in := range poolInstances(t, l, spec, "win") {
		names = append(names, in.Name)
		if in.WindowsVersion != "2025" {
			t.Errorf("%s runs Windows Server %s after the roll, want 2025", in.Name, in.WindowsVersion)
		}
	}
	if want := []string{"demo-win-0", "demo-win-2"}; !slices.Equal(names, want) {
		t.Errorf("pool nodes after the roll %q, want %q", names, want)
	}

	// Converged: the next plan is empty, even though the ordinals moved.
	o, err = cluster.Observe(ctx, spec, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	if again, err := cluster.Plan(spec, o); err != nil || !again.Empty() {
		t.Errorf("plan after the roll: %v %q", err, again.Summary())
	}
}

func TestApplyRollsWithMaxUnavailableWithoutSurge(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	ctx := context.Background()
	if _, err := cluster.Apply(ctx, spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	lin := spec.NodePools["linux"]
	lin.InstanceType, lin.DiskGB = "m6i.2xlarge", 80
	zero, one := 0, 1
	lin.MaxSurge, lin.MaxUnavailable = &zero, &one
	spec = withPool(spec, "linux", &lin)
	w := &watchPool{}
	w.seed(poolInstances(t, l, spec, "linux"))
	res, err := cluster.Apply(ctx, spec, w.opts(l, spec, "linux"))
	if err != nil {
		t.Fatal(err)
	}
	if w.most > lin.Count {
		t.Errorf("the pool had %d instances at once, more than count %d with max_surge 0", w.most, lin.Count)
	}
	want := `  ~ replace demo-linux-0 (linux): instance_type m6i.large -> m6i.2xlarge, disk_gb 50 -> 80`
	if !slices.Contains(res.Changes.Summary(), want) {
		t.Errorf("summary %q lacks %q", res.Changes.Summary(), want)
	}
	for _, in := range poolInstances(t, l, spec, "linux") {
		if in.InstanceType != "m6i.2xlarge" || in.DiskGB != 80 {
			t.Errorf("%s is %s with %d GB after the roll", in.Name, in.InstanceType, in.DiskGB)
		}
	}
	if a, b := w.index("remove/demo-linux-0"), w.index("instance/demo-linux-0"); a < 0 || b < a {
		t.Errorf("with max_surge 0 the old node goes first: remove at %d, instance at %d", a, b)
	}
	wantConverged(t, l, spec)
}

func TestRepairReplacesStoppedGoneAndLongNotReadyWorkers(t *testing.T) {
	t.Parallel()
	l := newLab()
	spec := demoSpec()
	lin := spec.NodePools["linux"]
	lin.Count = 3
	lin.ReplaceNotReadyAfter = "10m"
	spec = withPool(spec, "linux", &lin)
	ctx := context.Background()
	if _, err := cluster.Apply(ctx, spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	l.cloud.Stop("demo-linux-0")
	l.cloud.Terminate("demo-win-1")
	l.prov.SetNotReady("demo-linux-2", time.Now().Add(-20*time.Minute))
	l.prov.SetNotReady("demo-win-0", time.Now().Add(-20*time.Minute)) // its pool sets no threshold

	// Repair leaves an outdated pool as it is.
	win := spec.NodePools["win"]
	win.InstanceType = "m6i.2xlarge"
	changed := withPool(spec, "win", &win)
	res, err := cluster.Repair(ctx, changed, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res.Changes.Replacements() {
		got[r.Node] = r.Reason
	}
	want := map[string]string{
		"demo-linux-0": "its instance is stopped",
		"demo-win-1":   "its instance is gone",
	}
	for node, reason := range want {
		if got[node] != reason {
			t.Errorf("repair of %s: %q, want %q", node, got[node], reason)
		}
	}
	if r := got["demo-linux-2"]; !strings.HasPrefix(r, "NotReady for 20m") || !strings.Contains(r, `replace_not_ready_after = "10m"`) {
		t.Errorf("repair of demo-linux-2: %q", r)
	}
	if len(got) != 3 {
		t.Errorf("repaired %v, want only the three broken nodes", got)
	}
	if d := l.prov.Drained(); len(d) != 0 {
		t.Errorf("a repair drained %q; a broken node serves nothing to drain", d)
	}
	for _, in := range poolInstances(t, l, spec, "win") {
		// demo-win-1 was made again, from the spec Repair was given.
		if in.Name == "demo-win-0" && in.InstanceType != "m6i.xlarge" {
			t.Errorf("Repair changed %s to %s; only Apply rolls", in.Name, in.InstanceType)
		}
	}
	l.prov.SetNotReady("demo-win-0", time.Time{})
	if _, err := cluster.Apply(ctx, changed, l.opts()); err != nil {
		t.Fatal(err)
	}
	o, err := cluster.Observe(ctx, changed, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	if again, err := cluster.Plan(changed, o); err != nil || !again.Empty() {
		t.Errorf("plan after the repair and a roll: %v %q", err, again.Summary())
	}
}

func TestPlanScaleDownTakesOutdatedNodesFirst(t *testing.T) {
	t.Parallel()
	spec := demoSpec()
	o := converged(spec)
	for i := range o.Instances {
		if o.Instances[i].Pool == "linux" {
			o.Instances[i].InstanceType = "m6i.large"
		}
		if o.Instances[i].Name == "demo-linux-0" {
			o.Instances[i].InstanceType = "m5.large"
		}
	}
	lin := spec.NodePools["linux"]
	lin.Count = 1
	c, err := cluster.Plan(withPool(spec, "linux", &lin), o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Summary(), []string{"- drain and delete demo-linux-0"}; !slices.Equal(got, want) {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// TestPlanUpgradesTheControlPlaneThenReplacesWorkers: a version one minor
// up upgrades the control-plane nodes in place, the first by its bootstrap
// step and the others one at a time after it, and replaces every worker by
// surge; no worker joins before the last control-plane node is upgraded.
func TestPlanUpgradesTheControlPlaneThenReplacesWorkers(t *testing.T) {
	t.Parallel()
	spec := demoSpec()
	spec.ControlPlane.Count = 3
	o := converged(spec)
	o.LoadBalancing = true
	o.LoadBalancer = &clouds.LoadBalancer{}
	for _, in := range o.Instances {
		if in.Role == clouds.RoleControlPlane {
			o.LoadBalancer.Targets = append(o.LoadBalancer.Targets, in.ID)
		}
	}
	o.ServerVersion = "v1.35.4"
	for name, st := range o.Nodes {
		st.KubeletVersion = "v1.35.4"
		o.Nodes[name] = st
	}
	c, err := cluster.Plan(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]cluster.Step{}
	for _, s := range c.Steps {
		steps[s.ID] = s
	}
	cp := []string{"demo-cp-0", "demo-cp-1", "demo-cp-2"}
	if _, ok := steps["bootstrap/"+cp[0]]; !ok {
		t.Fatalf("no bootstrap step, which upgrades the first control-plane node: %v", stepIDs(c))
	}
	if _, ok := steps["upgrade/"+cp[0]]; ok {
		t.Errorf("the first control-plane node has an upgrade step of its own: %v", stepIDs(c))
	}
	if got := steps["upgrade/"+cp[1]].After; !slices.Equal(got, []string{"bootstrap/" + cp[0]}) {
		t.Errorf("upgrade/%s after %v, want the bootstrap", cp[1], got)
	}
	if got := steps["upgrade/"+cp[2]].After; !slices.Equal(got, []string{"upgrade/" + cp[1]}) {
		t.Errorf("upgrade/%s after %v, want upgrade/%s: one at a time", cp[2], got, cp[1])
	}
	// Every worker is replaced, and each new one joins after the last upgrade.
	if got := len(c.Replacements()); got != 4 {
		t.Errorf("%d replacements, want the 4 workers: %v", got, c.Replacements())
	}
	for _, r := range c.Replacements() {
		if r.Reason != "kubernetes_version 1.35.4 -> 1.36.3" {
			t.Errorf("%s replaced because %q", r.Node, r.Reason)
		}
		if join := steps["join/"+r.New]; !slices.Contains(join.After, "upgrade/"+cp[2]) {
			t.Errorf("join/%s after %v: not after the control plane's last upgrade", r.New, join.After)
		}
	}
	if sum := strings.Join(c.Summary(), "\n"); !strings.Contains(sum, "upgrade the control plane from Kubernetes 1.35.4 to 1.36.3, one node at a time: demo-cp-0 (kubeadm upgrade apply), demo-cp-1 (kubeadm upgrade node), demo-cp-2 (kubeadm upgrade node)") {
		t.Errorf("summary:\n%s", sum)
	}

	// Cut after the first two: the API server reports the new release, one
	// control-plane node and the workers are left.
	o.ServerVersion = "v1.36.3"
	for _, n := range cp[:2] {
		st := o.Nodes[n]
		st.KubeletVersion = "v1.36.3"
		o.Nodes[n] = st
	}
	c, err = cluster.Plan(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	ids := stepIDs(c)
	if slices.Contains(ids, "upgrade/"+cp[1]) || !slices.Contains(ids, "upgrade/"+cp[2]) {
		t.Errorf("after a cut, steps %v: want only %s upgraded", ids, cp[2])
	}
	// The next minor waits until that upgrade has finished.
	spec.KubernetesVersion = "1.37.0"
	if _, err := cluster.Plan(spec, o); err == nil || !strings.Contains(err.Error(), `an earlier upgrade has not finished; fix: apply kubernetes_version = "1.36.3" first`) {
		t.Errorf("the next minor over an unfinished upgrade: %v", err)
	}
}

func TestPlanVersionSkew(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, running, kubelet, want, err string
	}{
		{"same", "v1.36.3", "v1.36.3", "1.36.3", ""},
		{"skipped minor", "v1.34.2", "v1.34.2", "1.36.3", "fix: upgrade to the newest 1.35.x release first, then to 1.36.3"},
		{"downgrade", "v1.36.3", "v1.36.3", "1.35.1", `fix: set kubernetes_version = "1.36.3"`},
		{"patch downgrade", "v1.36.3", "v1.36.3", "1.36.2", `fix: set kubernetes_version = "1.36.3"`},
		{"kubelet newer", "v1.35.0", "v1.36.1", "1.36.0", "kubelet of node demo-linux-0 (1.36.1) newer than the API server"},
		{"next minor", "v1.35.4", "v1.35.4", "1.36.3", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := demoSpec()
			spec.KubernetesVersion = tc.want
			o := converged(spec)
			o.ServerVersion = tc.running
			st := o.Nodes["demo-linux-0"]
			st.KubeletVersion = tc.kubelet
			o.Nodes["demo-linux-0"] = st
			_, err := cluster.Plan(spec, o)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Plan: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "kubernetes_version: ")):
				t.Errorf("Plan: %v, want an error at kubernetes_version containing %q", err, tc.err)
			}
		})
	}
}

// The pod network is installed once: Plan refuses another network.cni on a
// running cluster at that field, names the one it runs, and makes no call.
func TestPlanRefusesSwitchingTheCNIOfARunningCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLab()
	spec := demoSpec()
	if _, err := cluster.Apply(ctx, spec, l.opts()); err != nil {
		t.Fatal(err)
	}
	o, err := cluster.Observe(ctx, spec, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	if o.CNI != cluster.CNIFlannel {
		t.Fatalf("Observe reads CNI %q, want the flannel the cluster was made with", o.CNI)
	}
	switched := spec
	switched.Network.CNI = cluster.CNICalico
	if _, err := cluster.Plan(switched, o); err == nil || !strings.HasPrefix(err.Error(), "network.cni: ") || !strings.Contains(err.Error(), `keep network.cni = "flannel"`) {
		t.Errorf("Plan with calico on a flannel cluster: %v, want a refusal at network.cni naming flannel", err)
	}
	before := l.cloud.MutatingCalls()
	if _, err := cluster.Apply(ctx, switched, l.opts()); err == nil || !strings.Contains(err.Error(), "in-place CNI migration") {
		t.Errorf("Apply with calico on a flannel cluster: %v, want the refusal", err)
	}
	if n := l.cloud.MutatingCalls() - before; n != 0 {
		t.Errorf("the refused Apply made %d mutating calls", n)
	}
	if _, err := cluster.Plan(spec, o); err != nil {
		t.Errorf("Plan keeping flannel: %v", err)
	}
}
