package provision_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox/mirror"
	"github.com/mixedk8s/mixedk8s/test/lab/node"
)

// world is a cloud whose instances become virtual nodes that run the agent.
// Its Kubernetes API is client-go's fake: a node registers, Ready, when
// its kubelet service starts, as a kubelet would.
type world struct {
	t     *testing.T
	cloud *memory.Cloud
	prov  *provision.Provisioner
	kube  *fake.Clientset
	mu    sync.Mutex
	nodes map[string]*node.Node // by private IP
	// redirect sends a private IP's connections to another node, as a
	// replaced machine or a reused address would.
	redirect map[string]string
	agent    bundle.Binary
	// kubeadmConfigs are the files the agent passed to kubeadm init and join, by node.
	kubeadmConfigs map[string]string
	// boot is the identity each node's first-boot data carried, by node.
	boot map[string]clouds.NodeIdentity
	// fault, when set, may refuse an effect on a node's machine.
	fault func(node string, e sandbox.Effect) error
}

// testAgent stands in for the built agent: the nodes run the agent in
// process, so only the bytes' digest matters.
func testAgent(goos, goarch string) (bundle.Binary, error) {
	data := []byte("nodeagent for " + goos + "/" + goarch)
	sum := sha256.Sum256(data)
	return bundle.Binary{Name: "nodeagent-" + goos + "-" + goarch, Data: data, SHA256: hex.EncodeToString(sum[:])}, nil
}

// newWorld starts an artifact mirror for the spec's version and points the
// spec at it.
func newWorld(t *testing.T, spec *cluster.Spec) *world {
	t.Helper()
	m, err := manifest.Builtin(spec.KubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := mirror.New(m)
	if err != nil {
		t.Fatal(err)
	}
	base, stop, err := mirror.Serve(mr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	spec.Artifacts.MirrorBaseURL = base
	spec.Artifacts.TrustMirrorChecksums = true // stand-ins, not the pinned files
	w := &world{t: t, cloud: memory.New(), kube: fake.NewClientset(), nodes: map[string]*node.Node{}, kubeadmConfigs: map[string]string{}, boot: map[string]clouds.NodeIdentity{}}
	w.agent, _ = testAgent("linux", "amd64")
	root := t.TempDir()
	w.cloud.OnCreate = func(req clouds.InstanceRequest, in clouds.Instance) error {
		ip := netip.MustParseAddr(in.PrivateIP).As4()
		w.mu.Lock()
		w.boot[req.Name] = req.Identity
		w.mu.Unlock()
		n, err := node.Start(node.Config{
			Name:           req.Name,
			OS:             req.OS,
			WindowsVersion: req.WindowsVersion,
			Addr:           netip.AddrFrom4([4]byte{127, 10, ip[2], ip[3]}),
			Root:           filepath.Join(root, req.Name),
			Identity:       req.Identity,
			Hooks: sandbox.Hooks{
				// kubeadm starts the kubelet on Linux; the agent starts its service on Windows.
				OnCommand: func(ctx context.Context, cmd oslayer.Command) ([]byte, bool, error) {
					if path.Base(cmd.Path) == "kubeadm" && len(cmd.Args) > 0 && (cmd.Args[0] == "init" || cmd.Args[0] == "join") {
						w.keepKubeadmConfig(req.Name, cmd.Args)
						if err := w.register(ctx, req.Name); err != nil {
							return nil, true, err
						}
					}
					return nil, false, nil
				},
				OnServiceStart: func(ctx context.Context, svc oslayer.ServiceSpec) error {
					if svc.Name == "kubelet" {
						return w.register(ctx, req.Name)
					}
					return nil
				},
				Fault: func(e sandbox.Effect) error {
					w.mu.Lock()
					fault := w.fault
					w.mu.Unlock()
					if fault != nil {
						return fault(req.Name, e)
					}
					return nil
				},
			},
		})
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.nodes[in.PrivateIP] = n
		w.mu.Unlock()
		t.Cleanup(n.Close)
		return nil
	}
	w.prov, err = provision.New(provision.Config{
		Cloud:      w.cloud,
		Secrets:    w.cloud,
		Agents:     testAgent,
		Dial:       w.dial,
		RebootWait: 50 * time.Millisecond,
		StatusPoll: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	provision.UseKubernetes(w.prov, func(string) kubernetes.Interface { return w.kube })
	t.Cleanup(func() { w.prov.Close() })
	return w
}

// keepKubeadmConfig reads the file after --config while kubeadm runs: the agent removes it after.
func (w *world) keepKubeadmConfig(name string, args []string) {
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		return
	}
	p, err := w.node(name).Sandbox.HostPath(args[i+1])
	if err != nil {
		w.t.Error(err)
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		w.t.Error(err)
		return
	}
	w.mu.Lock()
	w.kubeadmConfigs[name] = string(b)
	w.mu.Unlock()
}

// register makes the Node a kubelet registers, Ready.
func (w *world) register(ctx context.Context, name string) error {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}},
	}
	_, err := w.kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// dial reaches a node's port in process, as the lab's bastion does.
func (w *world) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	if to, ok := w.redirect[h]; ok {
		h = to
	}
	n := w.nodes[h]
	w.mu.Unlock()
	if n == nil {
		return nil, fmt.Errorf("dial %s: no such node", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port: %w", addr, err)
	}
	return n.Host.Dial(ctx, port)
}

func (w *world) node(name string) *node.Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.nodes {
		if n.Host.Name == name {
			return n
		}
	}
	w.t.Fatalf("no node %s", name)
	return nil
}

func (w *world) opts(events *[]cluster.Event, mu *sync.Mutex) cluster.Options {
	return cluster.Options{Cloud: w.cloud, Provisioner: w.prov, BaseBackoff: 10 * time.Millisecond, Progress: func(e cluster.Event) {
		mu.Lock()
		*events = append(*events, e)
		mu.Unlock()
	}}
}

func mixedSpec() cluster.Spec {
	return cluster.Spec{
		Name:              "lab",
		KubernetesVersion: "1.36.3",
		AWS:               &cluster.AWSSpec{Region: "eu-west-1"},
		Network:           cluster.NetworkSpec{CNI: cluster.CNIFlannel},
		ControlPlane:      cluster.ControlPlaneSpec{Count: 1},
		NodePools: map[string]cluster.PoolSpec{
			"lin": {OS: cluster.Linux, Count: 1},
			"win": {OS: cluster.Windows, WindowsVersion: "2022", Count: 2},
		},
	}
}

func kinds(effects []sandbox.Effect, kind string) []string {
	var out []string
	for _, e := range effects {
		if e.Kind == kind {
			out = append(out, e.Target)
		}
	}
	return out
}

func TestApplyPushesTheAgentToEveryNode(t *testing.T) {
	spec := mixedSpec()
	w := newWorld(t, &spec)
	var events []cluster.Event
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := cluster.Apply(ctx, spec, w.opts(&events, &mu))
	if err != nil {
		mu.Lock()
		for _, e := range events {
			t.Log(e)
		}
		mu.Unlock()
		t.Fatalf("Apply: %v", err)
	}
	if res.Endpoint.APIEndpoint == "" || !strings.Contains(res.Endpoint.CACertPEM, "BEGIN CERTIFICATE") {
		t.Errorf("endpoint %+v", res.Endpoint)
	}
	// The cloud has load balancers: every node and client goes through the
	// API load balancer, which the API server's certificate names.
	lb, ok, err := w.cloud.FindLoadBalancer(ctx, spec.Name)
	if err != nil || !ok {
		t.Fatalf("no API load balancer (%v)", err)
	}
	lbEndpoint := net.JoinHostPort(lb.Address, strconv.Itoa(lb.Port))
	if res.Endpoint.APIEndpoint != lbEndpoint {
		t.Errorf("endpoint %q, want the load balancer's %q", res.Endpoint.APIEndpoint, lbEndpoint)
	}
	w.mu.Lock()
	for name, conf := range w.kubeadmConfigs {
		if strings.HasSuffix(name, "-cp-0") {
			if !strings.Contains(conf, "controlPlaneEndpoint: "+lbEndpoint) || !strings.Contains(conf, "- "+lb.Address+"\n") {
				t.Errorf("%s's kubeadm init configuration does not name the load balancer %s as controlPlaneEndpoint and certificate SAN:\n%s", name, lbEndpoint, conf)
			}
		} else if !strings.Contains(conf, "apiServerEndpoint: "+lbEndpoint) {
			t.Errorf("%s joins elsewhere than through the load balancer %s:\n%s", name, lbEndpoint, conf)
		}
	}
	if len(w.kubeadmConfigs) != 2 {
		t.Errorf("kubeadm ran with %d configurations (%q), want init and one Linux join", len(w.kubeadmConfigs), slices.Collect(maps.Keys(w.kubeadmConfigs)))
	}
	w.mu.Unlock()
	for _, n := range res.Nodes {
		if !n.Ready {
			t.Errorf("node %s not ready", n.Name)
		}
		vn := w.node(n.Name)
		digests := vn.AgentDigests()
		goos := "linux"
		if n.OS == cluster.Windows {
			goos = "windows"
		}
		want, _ := testAgent(goos, "amd64")
		if len(digests) == 0 || slices.ContainsFunc(digests, func(d string) bool { return d != want.SHA256 }) {
			t.Errorf("%s ran agents %q, want only %s", n.Name, digests, want.SHA256)
		}
		effects, err := vn.Sandbox.Effects()
		if err != nil {
			t.Fatal(err)
		}
		m := vn.Sandbox.Machine()
		switch n.OS {
		case cluster.Windows:
			if m.Reboots != 1 {
				t.Errorf("%s rebooted %d times, want 1; boot log:\n%s", n.Name, m.Reboots, vn.BootLog())
			}
			if _, ok := m.HNSNetworks["flannel.4096"]; !ok {
				t.Errorf("%s has HNS networks %v, want flannel.4096", n.Name, m.HNSNetworks)
			}
			if !strings.EqualFold(m.ComputerName, n.Name) {
				t.Errorf("%s computer name is %q", n.Name, m.ComputerName)
			}
			for _, svc := range []string{"kubelet", "kube-proxy", "containerd"} {
				if s := m.Services[svc]; s == nil || !s.Running {
					t.Errorf("%s: service %s not running", n.Name, svc)
				}
			}
		case cluster.Linux:
			if m.Reboots != 0 {
				t.Errorf("%s rebooted %d times, want 0", n.Name, m.Reboots)
			}
			cmds := strings.Join(kinds(effects, sandbox.KindCommand), "\n")
			want := "kubeadm join"
			if n.Pool == clouds.ControlPlanePool {
				want = "kubeadm init"
			}
			if !strings.Contains(cmds, want) {
				t.Errorf("%s ran no %q; commands:\n%s", n.Name, want, cmds)
			}
		}
	}
	rcs, err := w.kube.NodeV1().RuntimeClasses().List(ctx, metav1.ListOptions{})
	if err != nil || len(rcs.Items) != 6 {
		t.Errorf("RuntimeClasses: %v, %d of them, want 6 (3 Windows builds, 2 isolations)", err, len(rcs.Items))
	}
	tokens, err := w.kube.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil || len(tokens.Items) != 1 || tokens.Items[0].Type != "bootstrap.kubernetes.io/token" {
		t.Errorf("join token Secrets: %v, %+v", err, tokens)
	}
	mu.Lock()
	for _, e := range events {
		if strings.Contains(e.String(), "BEGIN") || strings.Contains(e.String(), "PRIVATE KEY") {
			t.Errorf("event leaks key material: %s", e)
		}
	}
	mu.Unlock()

	// Converged: the next Apply plans nothing and changes nothing.
	w.cloud.ResetCalls()
	res, err = cluster.Apply(ctx, spec, w.opts(&events, &mu))
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if !res.Changes.Empty() || w.cloud.MutatingCalls() != 0 {
		t.Errorf("second Apply planned %q and made %d mutating calls", res.Changes.Summary(), w.cloud.MutatingCalls())
	}
	kc, err := cluster.Kubeconfig(ctx, spec, w.opts(&events, &mu), time.Hour)
	if err != nil || !strings.Contains(string(kc), "https://"+res.Endpoint.APIEndpoint) {
		t.Errorf("Kubeconfig: %v\n%s", err, kc)
	}
}

func TestAgentFailureNamesTheStepAndTheFix(t *testing.T) {
	spec := mixedSpec()
	spec.NodePools = map[string]cluster.PoolSpec{"lin": {OS: cluster.Linux, Count: 1}}
	w := newWorld(t, &spec)
	// The Linux worker's machine refuses to register the kubelet service.
	w.cloud.OnCreate = wrapCreate(w.cloud.OnCreate, func(n *node.Node) {
		if !strings.Contains(n.Host.Name, "-lin-") {
			return
		}
		n.Sandbox.SetHooks(sandbox.Hooks{Fault: func(e sandbox.Effect) error {
			if e.Kind == sandbox.KindServiceInstall && strings.Contains(e.Target, "kubelet") {
				return fmt.Errorf("injected: the kubelet service cannot be registered")
			}
			return nil
		}})
	}, w)
	var events []cluster.Event
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := cluster.Apply(ctx, spec, w.opts(&events, &mu))
	if err == nil {
		t.Fatal("Apply succeeded with a failing kubelet service")
	}
	for _, want := range []string{"lab-lin-0", "failed", "diagnose", "injected"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// wrapCreate runs then after the world has made a node.
func wrapCreate(inner func(clouds.InstanceRequest, clouds.Instance) error, then func(*node.Node), w *world) func(clouds.InstanceRequest, clouds.Instance) error {
	return func(req clouds.InstanceRequest, in clouds.Instance) error {
		if err := inner(req, in); err != nil {
			return err
		}
		w.mu.Lock()
		n := w.nodes[in.PrivateIP]
		w.mu.Unlock()
		then(n)
		return nil
	}
}
