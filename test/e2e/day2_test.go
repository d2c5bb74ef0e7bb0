package e2e_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// guardPod binds a pod of the guarded workload to a node (no scheduler
// runs in the lab) and waits until it runs and is Ready.
func (w *world) guardPod(ctx context.Context, cs kubernetes.Interface, name, node string) {
	t := w.t
	t.Helper()
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "guarded"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: &grace,
			Containers:                    []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10.1"}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s on %s: %v", name, node, err)
	}
	for {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod %s: %v", name, err)
		}
		if p.Status.Phase == corev1.PodRunning && podReady(p) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s on %s never ran: phase %s", name, node, p.Status.Phase)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitBudget waits until the API server's disruption controller lets the
// budget allow at least allowed disruptions, and no more than that.
func (w *world) waitBudget(ctx context.Context, cs kubernetes.Interface, name string, allowed int32) {
	w.t.Helper()
	for {
		b, err := cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && b.Status.ObservedGeneration == b.Generation && b.Status.DisruptionsAllowed == allowed {
			return
		}
		select {
		case <-ctx.Done():
			w.t.Fatalf("PodDisruptionBudget %s never allowed exactly %d disruptions: %+v, %v", name, allowed, b.Status, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkWindowsRoll moves the Windows pool from Windows Server 2022 to 2025
// by surge while a workload on it has a PodDisruptionBudget that allows no
// disruption: the new node joins and is Ready, the drain of the old one is
// refused by the API server (the eviction API enforces the budget) and the
// Apply fails naming the budget; once the workload has a pod on the new
// node, the budget allows one disruption and the next Apply finishes the
// roll. The guarded workload is never without a Ready pod.
func (w *world) checkWindowsRoll(spec cluster.Spec) cluster.Spec {
	t := w.t
	t.Helper()
	cs := w.kube(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pool := "win"
	old := w.poolNodes(ctx, spec, pool)
	if len(old) != 1 {
		t.Fatalf("pool %s has %q before the roll, want one node", pool, old)
	}
	w.guardPod(ctx, cs, "guard-old", old[0])
	minAvailable := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}}},
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PodDisruptionBudget: %v", err)
	}
	w.waitBudget(ctx, cs, "guarded", 0)

	ps := spec.NodePools[pool]
	ps.WindowsVersion = "2025"
	spec.NodePools = maps.Clone(spec.NodePools)
	spec.NodePools[pool] = ps

	// The first Apply: the surge node comes up, the drain is refused.
	actx, acancel := context.WithTimeout(ctx, 2*time.Minute)
	res, err := cluster.Apply(actx, spec, w.opts(spec))
	w.heard(err)
	acancel()
	if err == nil {
		t.Fatalf("the roll finished although the budget allows no disruption of the only guarded pod: %q", res.Changes.Summary())
	}
	if !strings.Contains(err.Error(), "PodDisruptionBudget default/guarded") || !strings.Contains(err.Error(), "guard-old") {
		t.Errorf("the blocked drain's error does not name the budget and its pod: %v", err)
	}
	t.Logf("the roll's plan: %q", res.Changes.Summary())
	repl := res.Changes.Replacements()
	if len(repl) != 1 || repl[0].Node != old[0] || repl[0].Reason != "windows_version 2022 -> 2025" {
		t.Fatalf("replacements %+v, want %s for its windows_version", repl, old[0])
	}
	surge := repl[0].New
	n, err := cs.CoreV1().Nodes().Get(ctx, surge, metav1.GetOptions{})
	if err != nil || !nodeReady(*n) {
		t.Fatalf("the surge node %s is not Ready before the old one is drained: %v", surge, err)
	}
	if got, want := n.Labels[corev1.LabelWindowsBuild], contract.WindowsBuilds["2025"]; got != want {
		t.Errorf("%s reports Windows build %q, want %q (Windows Server 2025)", surge, got, want)
	}
	if p, err := cs.CoreV1().Pods("default").Get(ctx, "guard-old", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Fatalf("the guarded pod was evicted although its budget forbids it: %v", err)
	}

	// The workload gets a pod on the new node: the budget allows one disruption.
	w.guardPod(ctx, cs, "guard-new", surge)
	w.waitBudget(ctx, cs, "guarded", 1)
	wctx, stop := context.WithCancel(ctx)
	d, watching, err := watchDeletions(wctx, cs, "default")
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	res = w.apply(spec, 2*time.Minute)
	t.Logf("the roll resumed: %q", res.Changes.Summary())
	time.Sleep(500 * time.Millisecond)
	stop()
	<-watching
	if d.pods["guard-old"].IsZero() || !d.pods["guard-old"].Before(d.nodes[old[0]]) {
		t.Errorf("guard-old deleted at %s, node %s at %s: want the eviction first", d.pods["guard-old"], old[0], d.nodes[old[0]])
	}
	if !d.pods["guard-new"].IsZero() {
		t.Errorf("guard-new on the new node was deleted")
	}
	if got := w.poolNodes(ctx, spec, pool); !slices.Equal(got, []string{surge}) {
		t.Errorf("pool %s has %q after the roll, want %s", pool, got, surge)
	}
	for _, in := range w.instances(ctx, spec) {
		if in.Pool == pool && in.WindowsVersion != "" && in.WindowsVersion != "2025" {
			t.Errorf("%s still runs Windows Server %s", in.Name, in.WindowsVersion)
		}
	}
	if again := w.apply(spec, time.Minute); !again.Changes.Empty() {
		t.Errorf("Apply after the roll planned %q", again.Changes.Summary())
	}
	return spec
}

// checkGoneWorkerReplaced deletes a Linux worker's instance behind the
// library's back: the next plan replaces it under its own name, and the
// node is Ready again.
func (w *world) checkGoneWorkerReplaced(spec cluster.Spec) {
	t := w.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	victim := cluster.NodeName(spec.Name, "lin", 0)
	var found bool
	for _, in := range w.instances(ctx, spec) {
		if in.Name == victim {
			found = true
			if err := w.cloud(spec).DeleteInstance(ctx, in); err != nil {
				t.Fatalf("delete %s out of band: %v", victim, err)
			}
		}
	}
	if !found {
		t.Fatalf("no instance %s", victim)
	}
	// The cloud may list it a moment longer while it shuts down: wait until it is gone.
	for slices.ContainsFunc(w.instances(ctx, spec), func(in clouds.Instance) bool { return in.Name == victim && in.State != clouds.StateDeleting }) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s is still listed", victim)
		case <-time.After(100 * time.Millisecond):
		}
	}
	res := w.apply(spec, 2*time.Minute)
	want := "~ replace " + victim + " (linux): its instance is gone"
	if !slices.Contains(res.Changes.Summary(), want) {
		t.Errorf("the plan after %s's instance went: %q, want %q", victim, res.Changes.Summary(), want)
	}
	n, err := w.kube(spec).CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
	if err != nil || !nodeReady(*n) {
		t.Errorf("%s is not Ready after its replacement: %v", victim, err)
	}
}

// instances lists the cluster's instances through its cloud.
func (w *world) instances(ctx context.Context, spec cluster.Spec) []clouds.Instance {
	w.t.Helper()
	ins, err := w.cloud(spec).Instances(ctx, spec.Name)
	if err != nil {
		w.t.Fatal(err)
	}
	return ins
}

// poolNodes names a pool's instances that are not being deleted, sorted.
func (w *world) poolNodes(ctx context.Context, spec cluster.Spec, pool string) []string {
	var out []string
	for _, in := range w.instances(ctx, spec) {
		if in.Pool == pool && in.State != clouds.StateDeleting {
			out = append(out, in.Name)
		}
	}
	slices.Sort(out)
	return out
}
