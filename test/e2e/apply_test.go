package e2e_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// TestMixedClusterEndToEnd builds the cluster payments-prod, whose Windows
// nodes need derived computer names, on each cloud of the table,
// checks every instance and every node's sandbox, re-applies without a
// mutating call, scales the Windows pool down with a drain, moves it from
// Windows Server 2022 to 2025 by surge under a PodDisruptionBudget, replaces
// a worker whose instance was deleted out of band, and destroys it leaving
// nothing.
func TestMixedClusterEndToEnd(t *testing.T) {
	eachCloud(t, rows, testMixedCluster)
}

func testMixedCluster(t *testing.T, r *row) {
	w := newWorld(t, r)
	// The realistic name: its Windows node names do not fit in 15 characters.
	spec := w.spec("payments-prod", "10.0.0.0/16")
	if r.refuse != nil {
		w.refusedApply(spec)
	}

	before := w.calls()
	start := time.Now()
	res := w.apply(spec, 2*time.Minute)
	applyTime := time.Since(start)
	applyCalls := w.callsSince(before)

	w.checkInstances(spec)
	w.checkNodes(spec, res)
	w.checkFirstBootStale(spec)
	w.checkKubernetes(spec)
	if p := w.lab.Problems(); len(p) > 0 {
		t.Errorf("lab problems: %q", p)
	}

	// Converged: the next Apply plans nothing and changes nothing in the cloud.
	before = w.calls()
	start = time.Now()
	res = w.apply(spec, time.Minute)
	reapplyTime := time.Since(start)
	reapplyCalls := w.callsSince(before)
	if !res.Changes.Empty() {
		t.Errorf("second Apply planned %s", res.Changes.Summary())
	}
	if n := w.mutating(reapplyCalls); n != 0 {
		t.Errorf("second Apply made %d mutating API calls: %s", n, w.formatCalls(reapplyCalls))
	}

	// One Observe through the real provisioner: the cloud's share, and the nodes' status.
	before = w.calls()
	start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	obs, err := cluster.Observe(ctx, spec, w.opts(spec))
	if err != nil {
		t.Fatal(err)
	}
	observeCalls := w.callsSince(before)
	for _, n := range res.Nodes {
		if !obs.Nodes[n.Name].Ready {
			t.Errorf("Observe: %s not ready", n.Name)
		}
	}
	// The pod network is read from the API server, and another one is refused.
	if obs.CNI != cluster.CNIFlannel {
		t.Errorf("Observe reads pod network %q, want flannel", obs.CNI)
	}
	switched := spec
	switched.Network.CNI = cluster.CNICalico
	if _, err := cluster.Plan(switched, obs); err == nil || !strings.HasPrefix(err.Error(), "network.cni: ") {
		t.Errorf("Plan with calico on the running flannel cluster: %v, want a refusal at network.cni", err)
	}
	t.Logf("FIGURE %s: one Observe of the 5-node cluster with the agent provisioner: %s in %s", r.name, w.formatCalls(observeCalls), time.Since(start).Round(time.Millisecond))

	t.Logf("FIGURE %s: apply wall time (1 cp, 2 Linux, 2 Windows 2022 workers): %s", r.name, applyTime.Round(time.Millisecond))
	t.Logf("FIGURE %s: API calls per Apply: %s", r.name, w.formatCalls(applyCalls))
	t.Logf("FIGURE %s: re-Apply wall time: %s", r.name, reapplyTime.Round(time.Millisecond))
	t.Logf("FIGURE %s: API calls per re-Apply: %s", r.name, w.formatCalls(reapplyCalls))

	spec = w.checkScaleDownDrains(spec, "win")
	spec = w.checkWindowsRoll(spec)
	w.checkGoneWorkerReplaced(spec)

	w.destroy(spec)
}

// checkFirstBootStale tries, against every node, the identity its
// instance's first-boot data carried, as a reader of the instance's
// attributes or metadata holds it: after Apply none of it may work.
func (w *world) checkFirstBootStale(spec cluster.Spec) {
	w.t.Helper()
	nodes := w.lab.Nodes(spec.Name)
	if len(nodes) == 0 {
		w.t.Fatal("the lab runs no node of the cluster")
	}
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		open, err := n.StillOpens(ctx, n.FirstBoot)
		cancel()
		if err != nil {
			w.t.Fatalf("%s: %v", n.Name, err)
		}
		for _, o := range open {
			w.t.Errorf("%s %s: %s after Apply", w.row.name, n.Name, o)
		}
	}
}

// checkScaleDownDrains puts an evictable pod on the node a scale-down of
// pool removes (the highest ordinal), scales the pool down by one, and
// checks through the API server that the pod was gone before the Node was
// deleted, and that the Node is gone. It returns the scaled-down spec.
func (w *world) checkScaleDownDrains(spec cluster.Spec, pool string) cluster.Spec {
	t := w.t
	t.Helper()
	ps := spec.NodePools[pool]
	victim := cluster.NodeName(spec.Name, pool, ps.Count-1)
	cs := w.kube(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "evictee", Namespace: "default"},
		Spec: corev1.PodSpec{
			// No scheduler runs in the lab; the pod is bound to the node directly.
			NodeName:                      victim,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: &grace,
			Containers:                    []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10.1"}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod on %s: %v", victim, err)
	}
	// The pod runs (on the hollow kubelet's fake runtime) before the scale-down.
	for {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "evictee", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod: %v", err)
		}
		if p.Status.Phase == corev1.PodRunning {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod evictee on %s never ran: phase %s", victim, p.Status.Phase)
		case <-time.After(100 * time.Millisecond):
		}
	}
	wctx, stop := context.WithCancel(ctx)
	d, watching, err := watchDeletions(wctx, cs, "default")
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	ps.Count--
	spec.NodePools = maps.Clone(spec.NodePools)
	spec.NodePools[pool] = ps
	res := w.apply(spec, 2*time.Minute)
	t.Logf("scale-down of pool %s: %s", pool, res.Changes.Summary())
	if _, err := cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{}); err == nil {
		t.Errorf("node %s is still registered after the scale-down", victim)
	}
	// The deletions arrive on the watches within moments of the Apply.
	time.Sleep(500 * time.Millisecond)
	stop()
	<-watching
	podGone, nodeGone := d.pods["evictee"], d.nodes[victim]
	switch {
	case podGone.IsZero():
		t.Errorf("pod evictee on %s was never deleted", victim)
	case nodeGone.IsZero():
		t.Errorf("node %s was never deleted", victim)
	case !podGone.Before(nodeGone):
		t.Errorf("node %s was deleted at %s, before its pod was gone at %s", victim, nodeGone.Format(time.StampMilli), podGone.Format(time.StampMilli))
	default:
		t.Logf("FIGURE %s: scale-down: pod evicted %s before node %s was deleted", w.row.name, nodeGone.Sub(podGone).Round(time.Millisecond), victim)
	}
	return spec
}

// checkInstances reads the instances back from the emulator: one per node,
// with the cluster's tags, the spec's type and the image for its OS.
func (w *world) checkInstances(spec cluster.Spec) {
	t := w.t
	t.Helper()
	want := map[string]cluster.Node{}
	for _, n := range spec.WithDefaults().Nodes() {
		want[n.Name] = n
	}
	seen := map[string]int{}
	for _, in := range w.row.vms(w.lab) {
		if in.Tags[w.tags.Cluster] != spec.Name || in.Gone {
			continue
		}
		name := in.Tags[w.tags.Node]
		seen[name]++
		n, ok := want[name]
		if !ok {
			t.Errorf("instance %s has node tag %q, which is not in the spec", in.ID, name)
			continue
		}
		if !in.Running {
			t.Errorf("%s: state %s, want running", name, in.State)
		}
		if in.Tags[w.tags.Pool] != n.Pool || in.Tags[w.tags.Role] != n.Role {
			t.Errorf("%s: tags %v, want pool %q role %q", name, in.Tags, n.Pool, n.Role)
		}
		if in.Type != n.InstanceType {
			t.Errorf("%s: instance type %s, want %s", name, in.Type, n.InstanceType)
		}
		image, err := w.row.image(w.lab, n)
		if err != nil {
			t.Fatal(err)
		}
		if image == "" || in.Image != image {
			t.Errorf("%s: image %s, want %q", name, in.Image, image)
		}
		if in.Windows != (n.OS == cluster.Windows) {
			t.Errorf("%s: the emulator runs it as Windows: %v, want %v", name, in.Windows, n.OS == cluster.Windows)
		}
	}
	for name := range want {
		if seen[name] != 1 {
			t.Errorf("node %s has %d instances, want 1", name, seen[name])
		}
	}
}

// checkNodes checks what each virtual node received and did.
func (w *world) checkNodes(spec cluster.Spec, res *cluster.Result) {
	t := w.t
	t.Helper()
	if len(res.Nodes) != 5 {
		t.Errorf("Apply reported %d nodes, want 5", len(res.Nodes))
	}
	for _, ni := range res.Nodes {
		if !ni.Ready {
			t.Errorf("node %s not reported ready", ni.Name)
		}
		n := w.lab.Node(ni.Name)
		if n == nil {
			t.Errorf("node %s has no lab node", ni.Name)
			continue
		}
		goos := map[cluster.OS]string{cluster.Linux: "linux", cluster.Windows: "windows"}[ni.OS]
		agent, err := bundle.Agent(goos, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if d := n.AgentDigests(); len(d) == 0 || slices.ContainsFunc(d, func(s string) bool { return s != agent.SHA256 }) {
			t.Errorf("%s ran agents %q, want only the bundle's %s", ni.Name, d, agent.SHA256)
		}
		effects, err := n.Sandbox.Effects()
		if err != nil {
			t.Fatal(err)
		}
		m := n.Sandbox.Machine()
		// Windows runs kubelet and kube-proxy as services; on Linux kubeadm
		// starts the installed kubelet unit and kube-proxy is a DaemonSet.
		running, installed := []string{"containerd", "kubelet", "kube-proxy"}, []string(nil)
		if ni.OS == cluster.Linux {
			running, installed = []string{"containerd"}, []string{"kubelet"}
		}
		for _, svc := range running {
			if s := m.Services[svc]; s == nil || !s.Running {
				t.Errorf("%s: service %s is not running; services: %q", ni.Name, svc, keys(m.Services))
			}
		}
		for _, svc := range installed {
			if m.Services[svc] == nil {
				t.Errorf("%s: service %s is not installed; services: %q", ni.Name, svc, keys(m.Services))
			}
		}
		commands := strings.Join(targets(effects, sandbox.KindCommand), "\n")
		writes := targets(effects, sandbox.KindFileWrite)
		switch ni.OS {
		case cluster.Windows:
			if m.Reboots > 1 {
				t.Errorf("%s rebooted %d times, want at most 1; boot log:\n%s", ni.Name, m.Reboots, n.BootLog())
			}
			if fl, ok := m.HNSNetworks["flannel.4096"]; !ok {
				t.Errorf("%s: HNS networks %v, want flannel.4096", ni.Name, keys(m.HNSNetworks))
			} else if cidr, err := w.lab.PodCIDR(context.Background(), spec.Name, strings.ToLower(ni.Name)); err != nil || fl.AddressPrefix != cidr {
				// flanneld's network must carry the subnet the control plane allocated, not one the node guessed.
				t.Errorf("%s: flannel.4096 has prefix %s, the API server's Node spec.podCIDR is %q (%v)", ni.Name, fl.AddressPrefix, cidr, err)
			}
			// The node name is longer than 15 characters: the computer has the short, derived name.
			if want := cluster.ComputerName(ni.Name); !strings.EqualFold(m.ComputerName, want) || len(want) > 15 {
				t.Errorf("%s: computer name %q, want %q", ni.Name, m.ComputerName, want)
			}
			if !slices.Contains(writes, `C:\k\bootstrap-kubelet.conf`) {
				t.Errorf("%s wrote no bootstrap kubeconfig; files written: %q", ni.Name, writes)
			}
		case cluster.Linux:
			if m.Reboots != 0 {
				t.Errorf("%s rebooted %d times, want 0", ni.Name, m.Reboots)
			}
			want := "kubeadm join"
			if ni.Pool == clouds.ControlPlanePool {
				want = "kubeadm init"
			}
			if !strings.Contains(commands, want) {
				t.Errorf("%s ran no %q; commands:\n%s", ni.Name, want, commands)
			}
		}
	}
}

func targets(effects []sandbox.Effect, kind string) []string {
	var out []string
	for _, e := range effects {
		if e.Kind == kind {
			out = append(out, e.Target)
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// eachCloud runs a scenario once per row, in parallel with the other rows
// and scenarios: each in its own lab, so they share nothing but the machine.
func eachCloud(t *testing.T, rs []*row, scenario func(t *testing.T, r *row)) {
	t.Parallel()
	for _, r := range rs {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			scenario(t, r)
		})
	}
}

// refusedApply takes from the account what the cluster needs: Apply must
// stop at the cloud's preflight with one refusal naming the field and the
// cloud's code, having made no mutating call and left no object.
func (w *world) refusedApply(spec cluster.Spec) {
	w.t.Helper()
	field, code := w.row.refuse(w.lab, true)
	defer w.row.refuse(w.lab, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := w.calls()
	_, err := cluster.Apply(ctx, spec, w.opts(spec))
	w.heard(err)
	if pe, ok := clouds.AsPreflightError(err); !ok || pe.Field != field || pe.Err.Code != code || pe.Err.Fix == "" {
		w.t.Errorf("Apply without what the cluster needs = %v; want one refusal at %s with code %s and a fix", err, field, code)
	}
	if n := w.mutating(w.callsSince(before)); n != 0 {
		w.t.Errorf("the refused Apply made %d mutating calls: %s", n, w.formatCalls(w.callsSince(before)))
	}
	if left := w.lab.Objects(spec.Name); len(left) > 0 {
		w.t.Errorf("the refused Apply left %q", left)
	}
}
