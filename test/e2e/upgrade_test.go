package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// The releases the upgrade scenario moves between: the lab's binaries of
// both are built (test/lab/k8s/prev and test/lab/k8s).
const (
	upgradeFrom = "1.35.4"
	upgradeTo   = "1.36.3"
)

// checkUpgrade moves a running cluster one minor up through Apply: the
// control-plane nodes one at a time in place (kubeadm upgrade apply, then
// upgrade node), then every worker by surge. Meanwhile a workload with a
// pod on every worker and a PodDisruptionBudget of minAvailable 1 keeps a
// Ready pod at every moment (a stand-in controller binds a pod to each new
// worker, as nothing schedules in the lab), and a client through the load
// balancer is polled throughout. After it the API server reports the new
// release, every kubelet runs it and etcd has its three members.
func (w *world) checkUpgrade(spec cluster.Spec, lb kubernetes.Interface) cluster.Spec {
	t := w.t
	t.Helper()
	cs := w.kube(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	minAvailable := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "upgrade-guard", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "upgrade-guard"}}},
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PodDisruptionBudget: %v", err)
	}
	workers := func() []corev1.Node {
		nl, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil
		}
		return slices.DeleteFunc(nl.Items, func(n corev1.Node) bool {
			return n.Labels[contract.LabelPool] == clouds.ControlPlanePool || !nodeReady(n)
		})
	}
	// The stand-in controller: a guarded pod on every Ready worker.
	bind := func() {
		for _, n := range workers() {
			grace := int64(1)
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "guard-" + n.Name, Namespace: "default", Labels: map[string]string{"app": "upgrade-guard"}},
				Spec: corev1.PodSpec{
					NodeName: n.Name, TerminationGracePeriodSeconds: &grace,
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers:  []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10.1"}},
				},
			}
			if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Logf("bind a guarded pod to %s: %v", n.Name, err)
			}
		}
	}
	// readyGuards counts the guarded pods that serve, and describes them all.
	readyGuards := func() (int, string, error) {
		pl, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=upgrade-guard"})
		if err != nil {
			return 0, "", err
		}
		ready := 0
		var all []string
		for i := range pl.Items {
			p := &pl.Items[i]
			// Healthy as the disruption controller counts it: Ready, not being deleted
			// (kubernetes pkg/controller/disruption, countHealthyPods).
			if p.DeletionTimestamp == nil && podReady(p) {
				ready++
			}
			all = append(all, fmt.Sprintf("%s on %s: %s ready=%v deleting=%v", p.Name, p.Spec.NodeName, p.Status.Phase, podReady(p), p.DeletionTimestamp != nil))
		}
		if b, err := cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "upgrade-guard", metav1.GetOptions{}); err == nil {
			all = append(all, fmt.Sprintf("budget: %d healthy, %d allowed, %d disrupted", b.Status.CurrentHealthy, b.Status.DisruptionsAllowed, len(b.Status.DisruptedPods)))
		}
		return ready, strings.Join(all, "; "), nil
	}
	bind()
	if len(workers()) < 2 {
		t.Fatalf("the upgrade needs two workers for its budget, the cluster has %d", len(workers()))
	}
	w.waitBudget(ctx, cs, "upgrade-guard", int32(len(workers())-1))

	var (
		stop                   = make(chan struct{})
		wg                     sync.WaitGroup
		polls, failed, emptyAt atomic.Int64
		firstEmpty             atomic.Value
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			bind()
			if n, what, err := readyGuards(); err == nil && n == 0 {
				if emptyAt.Add(1) == 1 {
					firstEmpty.Store(time.Now().Format(time.RFC3339Nano) + ": " + what)
				}
			}
			polls.Add(1)
			if err := pollNodes(ctx, lb); err != nil {
				failed.Add(1)
			}
		}
	}()

	spec.KubernetesVersion = upgradeTo
	start := time.Now()
	res, err := cluster.Apply(ctx, spec, w.opts(spec))
	w.heard(err)
	close(stop)
	wg.Wait()
	if err != nil {
		w.fatal("upgrade Apply", err)
	}
	t.Logf("FIGURE %s: upgrade %s -> %s (3 cp in place, 2 workers by surge): %s; %d of %d polls through the load balancer failed", w.row.name, upgradeFrom, upgradeTo, time.Since(start).Round(time.Millisecond), failed.Load(), polls.Load())
	sum := strings.Join(res.Changes.Summary(), "\n")
	if !strings.Contains(sum, fmt.Sprintf("upgrade the control plane from Kubernetes %s to %s, one node at a time", upgradeFrom, upgradeTo)) {
		t.Errorf("the upgrade's plan:\n%s", sum)
	}
	if n := emptyAt.Load(); n > 0 {
		t.Errorf("the budgeted workload had no Ready pod %d times during the upgrade, first at %v", n, firstEmpty.Load())
	}
	if polls.Load() > 0 && failed.Load() == polls.Load() {
		t.Errorf("no poll through the load balancer succeeded during the upgrade (%d)", polls.Load())
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil || v.GitVersion != "v"+upgradeTo {
		t.Errorf("the API server reports %v (%v) after the upgrade, want v%s", v, err, upgradeTo)
	}
	nl, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nl.Items {
		if n.Status.NodeInfo.KubeletVersion != "v"+upgradeTo || !nodeReady(n) {
			t.Errorf("node %s after the upgrade: kubelet %s, Ready %v", n.Name, n.Status.NodeInfo.KubeletVersion, nodeReady(n))
		}
	}
	if len(nl.Items) != spec.ControlPlane.Count+2 {
		t.Errorf("%d nodes after the upgrade, want %d: the old workers are gone", len(nl.Items), spec.ControlPlane.Count+2)
	}
	w.wantEtcd(spec, spec.ControlPlane.Count)
	// Converged: nothing left to do.
	again := w.apply(spec, 2*time.Minute)
	if !again.Changes.Empty() {
		t.Errorf("an Apply after the upgrade planned %q", again.Changes.Summary())
	}
	return spec
}
