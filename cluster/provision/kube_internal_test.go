package provision

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/transport"
)

func TestUnreachableTellsNoAnswerFromAnAnswer(t *testing.T) {
	t.Parallel()
	nodes := schema.GroupResource{Resource: "nodes"}
	get := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://10.0.0.5:6443/api/v1/nodes", Err: err}
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", get(syscall.ECONNREFUSED), true},
		{"timeout", get(context.DeadlineExceeded), true},
		{"bastion channel refused", fmt.Errorf("dial 10.0.0.5:6443: ssh: rejected: connect failed"), true},
		{"503 starting", apierrors.NewServiceUnavailable("not ready"), true},
		{"429", apierrors.NewTooManyRequests("slow down", 1), true},
		{"403", apierrors.NewForbidden(nodes, "", errors.New("RBAC")), false},
		{"401", apierrors.NewUnauthorized("no"), false},
		{"500", apierrors.NewInternalError(errors.New("boom")), false},
		{"certificate from another CA", get(x509.UnknownAuthorityError{}), false},
		{"bastion host key mismatch", fmt.Errorf("bastion: %w", transport.ErrIdentityMismatch), false},
	}
	for _, c := range cases {
		if got := unreachable(c.err); got != c.want {
			t.Errorf("%s: unreachable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// fakeCluster is a provisioner whose cluster "demo" has a running first
// control-plane node and whose API is cs.
func fakeCluster(t *testing.T, cs kubernetes.Interface) (*Provisioner, cluster.Spec, []clouds.Instance) {
	t.Helper()
	cloud := memory.New()
	p, err := New(Config{Cloud: cloud, Secrets: cloud})
	if err != nil {
		t.Fatal(err)
	}
	p.testKube = func(string) kubernetes.Interface { return cs }
	ctx := context.Background()
	if _, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: "demo"}); err != nil {
		t.Fatal(err)
	}
	var instances []clouds.Instance
	for _, name := range []string{"demo-cp-0", "demo-win-0", "demo-win-1"} {
		in, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: "demo", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		instances = append(instances, in)
	}
	return p, cluster.Spec{Name: "demo"}, instances
}

func TestStatusReadsNodesAndFailsOnAnAnswer(t *testing.T) {
	t.Parallel()
	ready := func(name string, s corev1.ConditionStatus) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s}}}}
	}
	cs := fake.NewClientset(ready("demo-win-0", corev1.ConditionTrue), ready("demo-win-1", corev1.ConditionFalse), ready("stranger", corev1.ConditionTrue))
	p, spec, instances := fakeCluster(t, cs)
	st, err := p.Status(context.Background(), spec, instances)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]cluster.NodeStatus{"demo-win-0": {Joined: true, Ready: true}, "demo-win-1": {Joined: true}}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("Status = %v, want %v", st, want)
	}

	cs.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("RBAC: access denied"))
	})
	_, err = p.Status(context.Background(), spec, instances)
	if err == nil || !strings.Contains(err.Error(), "kubeadm:cluster-admins") || !strings.Contains(err.Error(), `cluster "demo"`) {
		t.Errorf("Status on a 403: %v, want an error naming the cluster and the binding", err)
	}
}

func TestWaitReadyNamesEachWaitingNodeWithItsReason(t *testing.T) {
	t.Parallel()
	notReady := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "demo-win-0"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "container runtime network not ready: cni plugin not initialized",
	}}}}
	p, spec, _ := fakeCluster(t, fake.NewClientset(notReady))
	p.cfg.StatusPoll = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.WaitReady(ctx, spec, []string{"demo-win-0", "demo-win-1"})
	for _, want := range []string{
		"2 of 2 nodes", "demo-win-0 (Ready=False KubeletNotReady: container runtime network not ready", "demo-win-1 (no Node object", "fix:",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("WaitReady error lacks %q: %v", want, err)
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady error does not wrap the context's: %v", err)
	}
}

func TestRuntimeClassesCoverEveryBuildAndIsolation(t *testing.T) {
	t.Parallel()
	var got []string
	for _, rc := range runtimeClasses() {
		got = append(got, *rc.Name+"="+*rc.Handler+" "+fmt.Sprint(rc.Scheduling.NodeSelector))
	}
	want := []string{
		"windows-2019=runhcs-wcow-process map[kubernetes.io/os:windows node.kubernetes.io/windows-build:10.0.17763]",
		"windows-2019-hyperv=runhcs-wcow-hypervisor map[kubernetes.io/os:windows mixedk8s.io/isolation:hyperv node.kubernetes.io/windows-build:10.0.17763]",
		"windows-2022=runhcs-wcow-process map[kubernetes.io/os:windows node.kubernetes.io/windows-build:10.0.20348]",
		"windows-2022-hyperv=runhcs-wcow-hypervisor map[kubernetes.io/os:windows mixedk8s.io/isolation:hyperv node.kubernetes.io/windows-build:10.0.20348]",
		"windows-2025=runhcs-wcow-process map[kubernetes.io/os:windows node.kubernetes.io/windows-build:10.0.26100]",
		"windows-2025-hyperv=runhcs-wcow-hypervisor map[kubernetes.io/os:windows mixedk8s.io/isolation:hyperv node.kubernetes.io/windows-build:10.0.26100]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("RuntimeClasses:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// CNI looks for the objects the agent's manifests make, by their names there.
func TestCNIObjectsAreTheManifests(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ file, kind, name, namespace string }{
		{"../../nodeagent/agent/addons/flannel.yaml", "DaemonSet", flannelDaemonSet, flannelNamespace},
		{"../../nodeagent/manifest/calico/tigera-operator.yaml", "Deployment", tigeraOperator, tigeraNamespace},
	} {
		raw, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("kind: %s\nmetadata:\n  name: %s\n  namespace: %s\n", c.kind, c.name, c.namespace); !strings.Contains(string(raw), want) {
			t.Errorf("%s makes no %s %s/%s", c.file, c.kind, c.namespace, c.name)
		}
	}
}
