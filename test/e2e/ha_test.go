package e2e_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

// TestHighlyAvailableControlPlane runs on every cloud of the table whose
// profile has a load balancer: three control-plane nodes (three etcd
// members, three API servers) and a Linux and a Windows pool come up
// Ready; one control-plane instance is terminated through the cloud's API;
// a client through the cluster's load balancer keeps working once the load
// balancer's health check has taken the instance out; the next Apply
// removes the gone node's etcd member, joins a new instance, and etcd has
// three healthy members again. The cluster is made at the previous minor
// and ends upgraded to the next (checkUpgrade).
func TestHighlyAvailableControlPlane(t *testing.T) {
	var ha []*row
	for _, r := range rows {
		if p, ok := clouds.ProfileOf(r.name); ok && p.LoadBalancer {
			ha = append(ha, r)
		}
	}
	if len(ha) == 0 {
		t.Skip("no cloud of the table has a load balancer")
	}
	eachCloud(t, ha, testHighlyAvailable)
}

func testHighlyAvailable(t *testing.T, r *row) {
	w := newWorld(t, r)
	spec := w.spec("ha", "10.8.0.0/16")
	spec.ControlPlane.Count = 3
	// Made at the previous minor: the scenario ends with the upgrade.
	spec.KubernetesVersion = upgradeFrom
	spec.NodePools = map[string]cluster.PoolSpec{
		"lin": {OS: cluster.Linux, Count: 1},
		"win": {OS: cluster.Windows, WindowsVersion: "2022", Count: 1},
	}
	start := time.Now()
	w.apply(spec, 4*time.Minute)
	t.Logf("FIGURE %s: apply wall time (3 cp, 1 Linux, 1 Windows 2022 worker): %s", r.name, time.Since(start).Round(time.Millisecond))
	w.checkKubernetes(spec)
	w.wantEtcd(spec, 3)

	kube := w.kubeThroughLoadBalancer(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	gone := cluster.NodeName(spec.Name, clouds.ControlPlanePool, 2)
	ins, err := w.cloud(spec).Instances(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ins, func(in clouds.Instance) bool { return in.Name == gone })
	if i < 0 {
		t.Fatalf("no instance of %s", gone)
	}
	if err := w.cloud(spec).DeleteInstance(ctx, ins[i]); err != nil {
		t.Fatalf("terminate %s through the cloud: %v", gone, err)
	}

	// The load balancer sends some connections to the gone instance until
	// its health check fails it, as a real one does; from the moment the
	// instance's node is down and for 30 polls in a row after, every poll
	// (each on a new connection, as kubectl makes one) must succeed.
	const inARow = 30
	began, failed, ok, okTotal := time.Now(), 0, 0, 0
	dialsBefore := w.dials.Load()
	for ok < inARow {
		if time.Since(began) > time.Minute {
			t.Fatalf("through the load balancer with %s gone: %d polls failed, never %d in a row after it was down within a minute", gone, failed, inARow)
		}
		down := !w.nodeRuns(gone, ins[i].ID)
		if err := pollNodes(ctx, kube); err != nil {
			failed, ok = failed+1, 0
		} else {
			okTotal++
			if down {
				ok++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if polls, dials := failed+okTotal, w.dials.Load()-dialsBefore; dials < int64(polls) {
		t.Errorf("%d polls opened %d connections through the load balancer; want one each", polls, dials)
	}
	t.Logf("FIGURE %s: with %s terminated, %d polls through the load balancer failed before %d in a row succeeded with it down (%s)", r.name, gone, failed, inARow, time.Since(began).Round(time.Millisecond))

	start = time.Now()
	res := w.apply(spec, 3*time.Minute)
	t.Logf("FIGURE %s: replacing %s: %s", r.name, gone, time.Since(start).Round(time.Millisecond))
	if !slices.ContainsFunc(res.Changes.Summary(), func(l string) bool { return strings.Contains(l, "replace "+gone) }) {
		t.Errorf("the Apply after %s was terminated planned %q, want its replacement", gone, res.Changes.Summary())
	}
	w.wantEtcd(spec, 3)
	if err := pollNodes(ctx, kube); err != nil {
		t.Errorf("through the load balancer after the replacement: %v", err)
	}
	w.checkKubernetes(spec)
	spec = w.checkUpgrade(spec, kube)
	w.destroy(spec)
}

// wantEtcd checks that etcd lists exactly the spec's control-plane nodes as
// voting members, every one running and healthy.
func (w *world) wantEtcd(spec cluster.Spec, n int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms, err := w.lab.EtcdMembers(ctx, spec.Name)
	if err != nil {
		w.t.Fatal(err)
	}
	var want, got []string
	for i := range n {
		want = append(want, cluster.NodeName(spec.Name, clouds.ControlPlanePool, i))
	}
	for _, m := range ms {
		if m.Learner || !m.Running || !m.Healthy {
			w.t.Errorf("etcd member %q (%s): learner %v, running %v, healthy %v", m.Name, m.ID, m.Learner, m.Running, m.Healthy)
		}
		got = append(got, m.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		w.t.Errorf("etcd members %q, want %q", got, want)
	}
}

// kubeThroughLoadBalancer is an admin client of the cluster that dials its
// load balancer, as kubectl with the cluster's kubeconfig would: the lab
// carries the load balancer's address to 127.0.0.1, and TLS checks the
// load balancer's name.
func (w *world) kubeThroughLoadBalancer(spec cluster.Spec) kubernetes.Interface {
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
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		w.t.Fatal(err)
	}
	hostport := strings.TrimPrefix(rc.Host, "https://")
	local, ok := w.lab.LoadBalancerEndpoint(hostport)
	if !ok {
		w.t.Fatalf("the kubeconfig's server %s is no load balancer of the lab", rc.Host)
	}
	host, _, _ := net.SplitHostPort(hostport)
	rc.Host, rc.ServerName = "https://"+local, host
	rc.Timeout = 2 * time.Second
	// A new connection for every request, as each kubectl command makes:
	// a kept-alive one would stay on one API server behind the load balancer.
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			req = req.Clone(req.Context())
			req.Close = true
			return rt.RoundTrip(req)
		})
	}
	rc.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		w.dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		w.t.Fatal(err)
	}
	return cs
}

// nodeRuns reports whether the lab runs the node on that instance.
func (w *world) nodeRuns(name, instanceID string) bool {
	n := w.lab.Node(name)
	return n != nil && n.InstanceID == instanceID
}

// pollNodes lists the nodes once on a new connection, as one kubectl
// command does: a kept-alive connection would stay on one API server.
func pollNodes(ctx context.Context, kube kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	defer func() {
		// client-go wraps its transport: unwrap to reach the connections.
		if rc, ok := kube.CoreV1().RESTClient().(*rest.RESTClient); ok && rc.Client != nil {
			utilnet.CloseIdleConnectionsFor(rc.Client.Transport)
		}
	}()
	_, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	return err
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
