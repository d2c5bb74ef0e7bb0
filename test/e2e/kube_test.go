package e2e_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/test/lab/hollow"
)

// kube is a client of the cluster's API server as its admin: the
// kubeconfig cluster.Kubeconfig issues, pointed at the lab's 127.0.0.1
// address of the API server (its certificate holds that address too).
func (w *world) kube(spec cluster.Spec) kubernetes.Interface {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kc, err := cluster.Kubeconfig(ctx, spec, w.opts(spec), time.Hour)
	if err != nil {
		w.t.Fatalf("Kubeconfig: %v", err)
	}
	cfg, err := clientcmd.Load(kc)
	if err != nil {
		w.t.Fatal(err)
	}
	ep, ok := w.lab.APIEndpoint(spec.Name)
	if !ok {
		w.t.Fatalf("cluster %s runs no control plane in the lab", spec.Name)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + ep
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		w.t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		w.t.Fatal(err)
	}
	return cs
}

// checkKubernetes reads the cluster back from its API server: one Ready
// Node per node of the spec, with its pool's labels and taints, the
// control plane marked, the Windows nodes labelled and tainted as the agent
// set them, and a RuntimeClass per Windows build and isolation.
func (w *world) checkKubernetes(spec cluster.Spec) {
	t := w.t
	t.Helper()
	cs := w.kube(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	got := map[string]corev1.Node{}
	for _, n := range list.Items {
		got[n.Name] = n
	}
	want := spec.WithDefaults().Nodes()
	if len(got) != len(want) {
		t.Errorf("the API server has nodes %q, want %d", slices.Sorted(maps.Keys(got)), len(want))
	}
	for _, n := range want {
		node, ok := got[n.Name]
		if !ok {
			t.Errorf("node %s is not registered", n.Name)
			continue
		}
		if !nodeReady(node) {
			t.Errorf("node %s is not Ready: %v", n.Name, node.Status.Conditions)
		}
		labels := node.Labels
		if labels[contract.LabelPool] != n.Pool {
			t.Errorf("node %s: label %s=%q, want %q", n.Name, contract.LabelPool, labels[contract.LabelPool], n.Pool)
		}
		// Every hollow kubelet runs on Linux and says so; see test/lab/hollow.
		if labels["kubernetes.io/os"] != hollow.ReportedOS {
			t.Errorf("node %s: kubernetes.io/os=%q, want the hollow kubelet's %q", n.Name, labels["kubernetes.io/os"], hollow.ReportedOS)
		}
		taints := taintStrings(node.Spec.Taints)
		switch {
		case n.Pool == clouds.ControlPlanePool:
			if _, ok := labels["node-role.kubernetes.io/control-plane"]; !ok {
				t.Errorf("control-plane node %s has no node-role.kubernetes.io/control-plane label: %v", n.Name, labels)
			}
			if !slices.Contains(taints, "node-role.kubernetes.io/control-plane:NoSchedule") {
				t.Errorf("control-plane node %s: taints %q", n.Name, taints)
			}
		case n.OS == cluster.Windows:
			if b := labels["node.kubernetes.io/windows-build"]; b != contract.WindowsBuilds[n.WindowsVersion] {
				t.Errorf("Windows node %s: node.kubernetes.io/windows-build=%q, want %q", n.Name, b, contract.WindowsBuilds[n.WindowsVersion])
			}
			if !slices.Contains(taints, "os=windows:NoSchedule") {
				t.Errorf("Windows node %s: taints %q, want os=windows:NoSchedule", n.Name, taints)
			}
		default:
			if slices.Contains(taints, "os=windows:NoSchedule") {
				t.Errorf("Linux node %s carries the Windows taint", n.Name)
			}
		}
		for _, taint := range n.Taints {
			if !slices.Contains(taints, taint) {
				t.Errorf("node %s: taints %q, want the pool's %q", n.Name, taints, taint)
			}
		}
	}

	rcs, err := cs.NodeV1().RuntimeClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list RuntimeClasses: %v", err)
	}
	handlers := map[string]string{}
	for _, rc := range rcs.Items {
		handlers[rc.Name] = rc.Handler
	}
	for v := range contract.WindowsBuilds {
		for name, handler := range map[string]string{"windows-" + v: "runhcs-wcow-process", "windows-" + v + "-hyperv": "runhcs-wcow-hypervisor"} {
			if handlers[name] != handler {
				t.Errorf("RuntimeClass %s: handler %q, want %q (RuntimeClasses: %v)", name, handlers[name], handler, handlers)
			}
		}
	}
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// taintStrings writes taints as key[=value]:Effect.
func taintStrings(taints []corev1.Taint) []string {
	var out []string
	for _, t := range taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		out = append(out, s+":"+string(t.Effect))
	}
	return out
}

// deletions records when pods and nodes of a cluster are deleted.
type deletions struct {
	pods, nodes map[string]time.Time
}

// watchDeletions watches pods in namespace and all nodes until ctx ends.
func watchDeletions(ctx context.Context, cs kubernetes.Interface, namespace string) (*deletions, <-chan struct{}, error) {
	d := &deletions{pods: map[string]time.Time{}, nodes: map[string]time.Time{}}
	pw, err := cs.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	nw, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		pw.Stop()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pw.Stop()
		defer nw.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-pw.ResultChan():
				if !ok {
					return
				}
				if p, isPod := e.Object.(*corev1.Pod); isPod && e.Type == "DELETED" {
					d.pods[p.Name] = time.Now()
				}
			case e, ok := <-nw.ResultChan():
				if !ok {
					return
				}
				if n, isNode := e.Object.(*corev1.Node); isNode && e.Type == "DELETED" {
					d.nodes[n.Name] = time.Now()
				}
			}
		}
	}()
	return d, done, nil
}

// hasTokenWords says whether an error speaks of the bootstrap token.
func hasTokenWords(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "token")
}
