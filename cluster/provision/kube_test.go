package provision_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
	"github.com/mixedk8s/mixedk8s/test/lab/hollow"
)

// apiLab is a real control plane (etcd, kube-apiserver,
// kube-controller-manager on 127.0.0.1) for cluster "demo", whose first
// control-plane instance lives in an in-memory cloud. The provisioner
// reaches it as it reaches nodes: its Config.Dial maps the instance's
// private address, port 6443, to the API server.
type apiLab struct {
	cl    *cptest.Cluster
	cp    *controlplane.ControlPlane
	cloud *memory.Cloud
	cp0   clouds.Instance
	spec  cluster.Spec
	up    atomic.Bool // false: the address refuses connections, as a stopped control plane's does
	prov  *provision.Provisioner
}

func startAPILab(t *testing.T, ctx context.Context) *apiLab {
	t.Helper()
	l := &apiLab{cloud: memory.New(), spec: cluster.Spec{Name: "demo"}}
	if _, err := l.cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: "demo"}); err != nil {
		t.Fatal(err)
	}
	var err error
	l.cp0, err = l.cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: "demo", Name: "demo-cp-0", Pool: clouds.ControlPlanePool, Role: clouds.RoleControlPlane, OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	// The control plane serves the instance's address, as the agent's
	// kubeadm init on it would, with a CA made the way the provisioner
	// makes it; the provisioner finds that CA in the cloud's secret store.
	l.cl = cptest.Sandbox(t)
	l.cl.Config.Node.PrivateIP = l.cp0.PrivateIP
	l.cl.Config.Cluster.APIEndpoint = l.cp0.PrivateIP + ":6443"
	if l.cl.KubeadmConfig, err = kubeadm.InitConfig(l.cl.Config); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	l.cp = cptest.Start(t, l.cl)
	t.Logf("control plane ready in %s", time.Since(began).Round(100*time.Millisecond))
	if _, err := l.cloud.EnsureSecret(ctx, "demo", provision.SecretCA, []byte(l.cl.Config.Init.CACertPEM+l.cl.Config.Init.CAKeyPEM)); err != nil {
		t.Fatal(err)
	}
	l.up.Store(true)
	l.prov = l.provisioner(t, l.cloud)
	return l
}

// provisioner reaches the lab's API server through its dial.
func (l *apiLab) provisioner(t *testing.T, cloud *memory.Cloud) *provision.Provisioner {
	t.Helper()
	p, err := provision.New(provision.Config{Cloud: cloud, Secrets: cloud, Dial: l.dial, StatusPoll: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func (l *apiLab) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != l.cp0.PrivateIP+":6443" || !l.up.Load() {
		return nil, fmt.Errorf("dial %s %s: connection refused", network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", l.cp.Endpoint())
}

// get reads an object as the admin user; 0 and the error when the request failed.
func (l *apiLab) get(t *testing.T, ctx context.Context, path string, into any) int {
	t.Helper()
	code, body, err := l.cp.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if code == http.StatusOK && into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return code
}

func (l *apiLab) send(t *testing.T, ctx context.Context, method, path string, obj any, want ...int) {
	t.Helper()
	body, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	code, out, err := l.cp.Do(ctx, method, path, body)
	if err != nil || !slices.Contains(want, code) {
		t.Fatalf("%s %s: HTTP %d, %v: %s", method, path, code, err, out)
	}
}

// TestKubernetesStepsOnARealControlPlane drives the provisioner's
// Kubernetes steps against a real API server: a join token a kubelet's TLS
// bootstrap accepts, Status and WaitReady, the RuntimeClasses, drain before
// removal, and an API server that cannot be reached.
func TestKubernetesStepsOnARealControlPlane(t *testing.T) {
	cptest.Bins(t, append(slices.Clone(controlplane.Binaries), hollow.Binary)...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := startAPILab(t, ctx)
	worker, err := l.cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: "demo", Name: "demo-lin-0", Pool: "lin", Role: clouds.RoleWorker, OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	instances := []clouds.Instance{l.cp0, worker}

	// Before any node joined: the API server answers, no node is joined.
	st, err := l.prov.Status(ctx, l.spec, instances)
	if err != nil || len(st) != 0 {
		t.Fatalf("Status before any node joined = %v, %v; want none, no error", st, err)
	}

	var token string
	t.Run("join token", func(t *testing.T) {
		began := time.Now()
		token, err = provision.JoinToken(ctx, l.prov, cluster.Target{Spec: l.spec, Node: cluster.Node{Name: l.cp0.Name}, Instance: l.cp0})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("join token created in %s", time.Since(began).Round(time.Millisecond))
		id, _, ok := strings.Cut(token, ".")
		if !ok || len(token) != 23 {
			t.Fatalf("token has not the form [a-z0-9]{6}.[a-z0-9]{16}")
		}
		var s corev1.Secret
		if code := l.get(t, ctx, "/api/v1/namespaces/kube-system/secrets/bootstrap-token-"+id, &s); code != http.StatusOK {
			t.Fatalf("no Secret kube-system/bootstrap-token-%s: HTTP %d", id, code)
		}
		if s.Type != "bootstrap.kubernetes.io/token" {
			t.Errorf("Secret type %q", s.Type)
		}
		for k, v := range map[string]string{
			"token-id": id, "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
			"auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
		} {
			if got := string(s.Data[k]); got != v {
				t.Errorf("Secret %s = %q, want %q", k, got, v)
			}
		}
		exp, err := time.Parse(time.RFC3339, string(s.Data["expiration"]))
		if err != nil || time.Until(exp) < 55*time.Minute || time.Until(exp) > 61*time.Minute {
			t.Errorf("expiration %q (%v), want in an hour", s.Data["expiration"], err)
		}
		if string(s.Data["description"]) == "" {
			t.Error("no description")
		}
		// The token authenticates in the bootstrappers' group, whose RBAC lets
		// a kubelet file its certificate request.
		pool, err := l.cp.CAPool()
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		defer hc.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.cp.URL()+"/apis/certificates.k8s.io/v1/certificatesigningrequests", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("listing CSRs with the join token: HTTP %d, want 200", resp.StatusCode)
		}
		// kube-controller-manager's bootstrapsigner signs cluster-info with
		// the token, which kubeadm join's discovery checks.
		for {
			var cm corev1.ConfigMap
			if l.get(t, ctx, "/api/v1/namespaces/kube-public/configmaps/cluster-info", &cm) == http.StatusOK && cm.Data["jws-kubeconfig-"+id] != "" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("cluster-info was never signed with token %s", id)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	if token == "" {
		t.FailNow()
	}

	// The worker: a hollow kubelet that joins with the token through the
	// real TLS bootstrap.
	var kubelet *hollow.Kubelet
	kubeletDir := t.TempDir() // the kubelet outlives its subtest
	t.Cleanup(func() {
		if kubelet != nil {
			_ = kubelet.Close()
		}
	})
	t.Run("kubelet joins with the token", func(t *testing.T) {
		boot, err := kubeadm.BootstrapKubeconfig(l.cl.JoinConfig(worker.Name, "linux", token))
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		kubelet, err = hollow.StartKubelet(ctx, hollow.Config{
			Name: worker.Name, BootstrapKubeconfig: boot, Server: l.cp.URL(), WorkDir: kubeletDir,
			Labels: map[string]string{"mixedk8s.io/pool": "lin"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("TLS bootstrap with the join token done in %s", time.Since(began).Round(100*time.Millisecond))
	})
	if kubelet == nil {
		t.FailNow()
	}

	t.Run("status and wait ready", func(t *testing.T) {
		began := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := l.prov.WaitReady(wctx, l.spec, []string{worker.Name}); err != nil {
			t.Fatalf("%v\nthe kubelet's log %s ends:\n%s", err, kubelet.Process().Log, kubelet.Process().Tail(20))
		}
		t.Logf("%s Ready %s after joining", worker.Name, time.Since(began).Round(100*time.Millisecond))
		st, err := l.prov.Status(ctx, l.spec, instances)
		if err != nil {
			t.Fatal(err)
		}
		got := st[worker.Name]
		if len(st) != 1 || !got.Joined || !got.Ready || got.KubeletVersion == "" || got.Since.IsZero() {
			t.Errorf("Status = %v, want only %s, joined and Ready, with its kubelet version and when it became Ready (the control plane runs no kubelet)", st, worker.Name)
		}

		// A node that never registers: WaitReady names it and the fix when ctx ends.
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err = l.prov.WaitReady(sctx, l.spec, []string{worker.Name, "demo-lin-1"})
		if err == nil || !strings.Contains(err.Error(), "demo-lin-1 (no Node object") || strings.Contains(err.Error(), worker.Name) || !strings.Contains(err.Error(), "fix:") || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitReady for a node that never registers: %v", err)
		}
	})

	t.Run("addons", func(t *testing.T) {
		spec := l.spec
		if err := l.prov.Addons(ctx, spec, cluster.JoinInfo{}); err != nil {
			t.Fatal(err)
		}
		var list nodev1.RuntimeClassList
		l.get(t, ctx, "/apis/node.k8s.io/v1/runtimeclasses", &list)
		var names []string
		versions := map[string]string{}
		for _, rc := range list.Items {
			names = append(names, rc.Name)
			versions[rc.Name] = rc.ResourceVersion
		}
		wantNames := []string{"windows-2019", "windows-2019-hyperv", "windows-2022", "windows-2022-hyperv", "windows-2025", "windows-2025-hyperv"}
		if !slices.Equal(names, wantNames) {
			t.Fatalf("RuntimeClasses %v, want %v", names, wantNames)
		}
		var hv nodev1.RuntimeClass
		l.get(t, ctx, "/apis/node.k8s.io/v1/runtimeclasses/windows-2022-hyperv", &hv)
		wantSel := map[string]string{"kubernetes.io/os": "windows", "node.kubernetes.io/windows-build": "10.0.20348", "mixedk8s.io/isolation": "hyperv"}
		if hv.Handler != "runhcs-wcow-hypervisor" || hv.Labels["mixedk8s.io/isolation"] != "hyperv" || hv.Scheduling == nil || fmt.Sprint(hv.Scheduling.NodeSelector) != fmt.Sprint(wantSel) {
			t.Errorf("windows-2022-hyperv: %+v", hv)
		}
		if hv.Scheduling == nil || len(hv.Scheduling.Tolerations) != 1 || hv.Scheduling.Tolerations[0] != (corev1.Toleration{Key: "os", Operator: corev1.TolerationOpEqual, Value: "windows", Effect: corev1.TaintEffectNoSchedule}) {
			t.Errorf("windows-2022-hyperv tolerations: %+v", hv.Scheduling)
		}
		if len(hv.ManagedFields) == 0 || hv.ManagedFields[0].Manager != "mixedk8s" || hv.ManagedFields[0].Operation != "Apply" {
			t.Errorf("windows-2022-hyperv managed fields: %+v", hv.ManagedFields)
		}
		var proc nodev1.RuntimeClass
		l.get(t, ctx, "/apis/node.k8s.io/v1/runtimeclasses/windows-2025", &proc)
		if proc.Handler != "runhcs-wcow-process" || proc.Scheduling == nil || proc.Scheduling.NodeSelector["mixedk8s.io/isolation"] != "" || proc.Scheduling.NodeSelector["node.kubernetes.io/windows-build"] != "10.0.26100" {
			t.Errorf("windows-2025: %+v", proc)
		}

		// Idempotent: a second apply writes nothing.
		if err := l.prov.Addons(ctx, spec, cluster.JoinInfo{}); err != nil {
			t.Fatal(err)
		}
		l.get(t, ctx, "/apis/node.k8s.io/v1/runtimeclasses", &list)
		for _, rc := range list.Items {
			if versions[rc.Name] != rc.ResourceVersion {
				t.Errorf("the second Addons changed %s", rc.Name)
			}
		}
	})

	t.Run("drain then remove", func(t *testing.T) {
		// No scheduler runs: the pod is bound to the node directly, and its
		// kubelet confirms its end after the grace period.
		grace := int64(1)
		pod := corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName:                      worker.Name,
				TerminationGracePeriodSeconds: &grace,
				AutomountServiceAccountToken:  new(false),
				Containers:                    []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10"}},
			},
		}
		l.send(t, ctx, http.MethodPost, "/api/v1/namespaces/default/pods", pod, http.StatusCreated)

		began := time.Now()
		if err := l.prov.Drain(ctx, l.spec, worker.Name); err != nil {
			t.Fatal(err)
		}
		t.Logf("drained in %s", time.Since(began).Round(100*time.Millisecond))
		if code := l.get(t, ctx, "/api/v1/namespaces/default/pods/web", nil); code != http.StatusNotFound {
			t.Errorf("the pod on the drained node: HTTP %d, want 404", code)
		}
		var n corev1.Node
		l.get(t, ctx, "/api/v1/nodes/"+worker.Name, &n)
		if !n.Spec.Unschedulable {
			t.Error("the drained node is not cordoned")
		}
		if err := l.prov.Drain(ctx, l.spec, "demo-lin-9"); err != nil {
			t.Errorf("Drain of a node that does not exist: %v", err)
		}

		// As Apply does: the instance goes, then its Node.
		_ = kubelet.Close()
		if err := l.prov.Remove(ctx, l.spec, worker.Name); err != nil {
			t.Fatal(err)
		}
		if code := l.get(t, ctx, "/api/v1/nodes/"+worker.Name, nil); code != http.StatusNotFound {
			t.Errorf("the removed Node: HTTP %d, want 404", code)
		}
		if err := l.prov.Remove(ctx, l.spec, worker.Name); err != nil {
			t.Errorf("Remove of a removed node: %v", err)
		}
		st, err := l.prov.Status(ctx, l.spec, instances)
		if err != nil || len(st) != 0 {
			t.Errorf("Status after Remove = %v, %v; want none", st, err)
		}
	})

	t.Run("API server unreachable", func(t *testing.T) {
		l.up.Store(false)
		defer l.up.Store(true)
		// A client made before the outage must not help: connections are new.
		_ = l.prov.Close()
		began := time.Now()
		st, err := l.prov.Status(ctx, l.spec, instances)
		if err != nil || len(st) != 0 {
			t.Errorf("Status of an unreachable API server = %v, %v; want none, no error", st, err)
		}
		if d := time.Since(began); d > 25*time.Second {
			t.Errorf("Status took %s", d)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err = l.prov.WaitReady(wctx, l.spec, []string{worker.Name})
		if err == nil || !strings.Contains(err.Error(), "cannot be reached") || !strings.Contains(err.Error(), "6443") {
			t.Errorf("WaitReady on an unreachable API server: %v", err)
		}
		if err := l.prov.Addons(ctx, l.spec, cluster.JoinInfo{}); err == nil || !strings.Contains(err.Error(), `cluster "demo"`) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("Addons on an unreachable API server: %v", err)
		}
	})

	t.Run("another CA is an error, no CA is not bootstrapped", func(t *testing.T) {
		// The same address, but the secret store holds another cluster's CA.
		other := memory.New()
		if _, err := other.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: "demo"}); err != nil {
			t.Fatal(err)
		}
		in, err := other.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: "demo", Name: "demo-cp-0", Pool: clouds.ControlPlanePool, Role: clouds.RoleControlPlane, OS: "linux"})
		if err != nil || in.PrivateIP != l.cp0.PrivateIP {
			t.Fatalf("%v, %s", err, in.PrivateIP)
		}
		p := l.provisioner(t, other)
		st, err := p.Status(ctx, l.spec, []clouds.Instance{in})
		if err != nil || len(st) != 0 {
			t.Errorf("Status with no CA stored = %v, %v; want none", st, err)
		}
		wrong := cptest.Sandbox(t).Config.Init
		if _, err := other.EnsureSecret(ctx, "demo", provision.SecretCA, []byte(wrong.CACertPEM+wrong.CAKeyPEM)); err != nil {
			t.Fatal(err)
		}
		_, err = p.Status(ctx, l.spec, []clouds.Instance{in})
		if err == nil || !strings.Contains(err.Error(), "not the API server of cluster") {
			t.Errorf("Status with another CA: %v", err)
		}
		var verify *tls.CertificateVerificationError
		if !errors.As(err, &verify) {
			t.Errorf("Status with another CA: %v does not wrap the TLS verification error", err)
		}
	})
}
