package lab

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
	"github.com/mixedk8s/mixedk8s/test/lab/hollow"
	"github.com/mixedk8s/mixedk8s/test/lab/host"
)

// Binaries are the programs the lab's Kubernetes runs, from <repo>/bin
// (`make lab-bins`).
var Binaries = append(slices.Clone(controlplane.Binaries), hollow.Binary, "kubectl")

// CheckBinaries says which of Binaries are missing, and how to build them.
func CheckBinaries() error {
	_, err := proc.BinDir(Binaries...)
	return err
}

// apiPort is where a control-plane node serves the Kubernetes API.
const apiPort = 6443

// kube is the lab's Kubernetes. When the agent on a cluster's first
// control-plane node runs `kubeadm init`, a real control plane starts for
// that cluster (package controlplane) on the PKI the agent wrote, and port
// 6443 of that node forwards to it. When an agent runs `kubeadm join` (Linux)
// or starts its kubelet service (Windows), a hollow kubelet (package hollow)
// joins through the real TLS bootstrap with what the agent configured.
type kube struct {
	dir string // the lab folder; clusters/<name> holds their processes' files

	mu       sync.Mutex
	planes   map[string]*plane          // by cluster
	starts   map[string]*sync.Mutex     // one kubeadm init at a time per cluster
	kubelets map[string]*hollow.Kubelet // by node name
	clusters map[string]string          // node name -> cluster, for the kubelets
	owners   map[string]*Node           // node name -> the node whose agent started its kubelet
	closed   bool
	// lbCluster names the cluster whose load balancer listens at host:port; set by the lab.
	lbCluster func(hostport string) (string, bool)
	// calicoBlocks are Calico IPAM's blocks by cluster and node (calico.go).
	calicoBlocks map[string]map[string]string
}

// plane is a cluster's running control plane.
type plane struct {
	cluster string
	cp      *controlplane.ControlPlane
	// nodes are the control-plane nodes by instance ID; each one's port
	// 6443 forwards to its own member's API server. Guarded by kube.mu.
	nodes map[string]*Node
}

// holds reports whether the node runs a member of this control plane; kube.mu held.
func (pl *plane) holds(n *Node) bool { return pl.nodes[n.InstanceID] == n }

func newKube(dir string) *kube {
	return &kube{dir: dir, planes: map[string]*plane{}, starts: map[string]*sync.Mutex{}, kubelets: map[string]*hollow.Kubelet{}, clusters: map[string]string{}, owners: map[string]*Node{}}
}

// hooks are a node's sandbox hooks for Kubernetes, after the caller's own:
// a command or service start the caller handles (a fault) never reaches
// the lab's Kubernetes.
func (k *kube) hooks(l *Lab, name string, user sandbox.Hooks) sandbox.Hooks {
	h := user
	node := func() (*Node, error) {
		if n := l.Node(name); n != nil {
			return n, nil
		}
		return nil, fmt.Errorf("lab node %s is not running", name)
	}
	h.OnCommand = func(ctx context.Context, c oslayer.Command) ([]byte, bool, error) {
		if user.OnCommand != nil {
			if out, handled, err := user.OnCommand(ctx, c); handled {
				return out, true, err
			}
		}
		verb := ""
		if len(c.Args) > 0 {
			verb = c.Args[0]
		}
		prog := host.ProgramName(strings.ReplaceAll(c.Path, `\`, "/"))
		if prog == "kubeadm" && verb == "reset" {
			// What runs for the node stops; the kubeadm stub (package kubeadmstub) then deletes kubeadm's files.
			n, err := node()
			if err != nil {
				return nil, true, err
			}
			if err := k.nodeReset(ctx, n); err != nil {
				return nil, true, err
			}
			return nil, false, nil
		}
		if prog == "crictl" && (verb == "ps" || verb == "exec") {
			n, err := node()
			if err != nil {
				return nil, true, err
			}
			out, err := k.crictl(ctx, n, c.Args)
			return out, true, err
		}
		kubeadm := prog == "kubeadm" && (verb == "init" || verb == "join" || verb == "upgrade")

		if !kubeadm && prog != "kubectl" {
			return nil, false, nil
		}
		n, err := node()
		if err != nil {
			return nil, true, err
		}
		var out []byte
		switch prog {
		case "kubectl":
			out, err = k.kubectl(ctx, n, c.Args)
		default:
			if verb == "init" && len(c.Args) > 2 && c.Args[1] == "phase" && c.Args[2] == "upload-certs" {
				out, err = k.uploadCerts(ctx, n, c.Args)
			} else if verb == "init" {
				out, err = k.init(ctx, n, c.Args)
			} else if verb == "upgrade" {
				out, err = k.upgrade(ctx, n, c.Args)
			} else {
				out, err = k.join(ctx, n, c.Args)
			}
		}
		return out, true, err
	}
	h.OnServiceStart = func(ctx context.Context, spec oslayer.ServiceSpec) error {
		if user.OnServiceStart != nil {
			if err := user.OnServiceStart(ctx, spec); err != nil {
				return err
			}
		}
		if spec.Name != "kubelet" {
			return nil
		}
		n, err := node()
		if err != nil {
			return err
		}
		// On Linux kubeadm starts the kubelet (the join hook stands for
		// both); a start after that is a restart, on the binary now installed.
		if n.Host.OS != host.Windows {
			return k.restartKubelet(ctx, n)
		}
		if err := k.windowsKubelet(ctx, n, spec); err != nil {
			return err
		}
		// The node joined: the DaemonSets that tolerate it start (calico.go).
		k.calicoNodeWindows(ctx, l, n, spec)
		return nil
	}
	h.PodSubnet = k.podSubnetHook(l, name, user)
	return h
}

func readNodeFile(n *Node, file string) ([]byte, error) {
	p, err := n.Sandbox.HostPath(file)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func writeNodeFile(n *Node, file string, data []byte) error {
	p, err := n.Sandbox.HostPath(file)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o600)
}

// planeAt finds the control plane serving endpoint (host:port of a node).
func (k *kube) planeAt(endpoint string) (*plane, error) {
	h, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return nil, fmt.Errorf("API endpoint %q is not host:port", endpoint)
	}
	addr, err := netip.ParseAddr(h)
	if err == nil && port == fmt.Sprint(apiPort) {
		// Held for the loop only: a load balancer's address (GCP's has no
		// DNS name) falls through to the lookup below, which locks again.
		k.mu.Lock()
		for _, pl := range k.planes {
			for _, n := range pl.nodes {
				if n.PrivateIP == addr || n.Host.Addr == addr {
					k.mu.Unlock()
					return pl, nil
				}
			}
		}
		k.mu.Unlock()
	}
	// A cluster's API load balancer carries the endpoint to its control plane.
	if k.lbCluster != nil {
		if cluster, ok := k.lbCluster(endpoint); ok {
			k.mu.Lock()
			pl := k.planes[cluster]
			k.mu.Unlock()
			if pl != nil {
				return pl, nil
			}
		}
	}
	return nil, fmt.Errorf("dial tcp %s: connect: connection refused (no control plane of the lab serves it; its first control-plane node has not run kubeadm init)", endpoint)
}

// loadBalancerCluster is the cluster of the load balancer that listens at
// host:port (its DNS name or an address), as clients in the cluster dial it.
func (l *Lab) loadBalancerCluster(hostport string) (string, bool) {
	cluster, _, ok := l.frontAt(hostport)
	return cluster, ok
}

// nodeGone stops what ran for a terminated node: its kubelet, and its
// control-plane member, whose etcd membership stays as a vanished
// machine's does; the control plane ends with its last member.
func (k *kube) nodeGone(n *Node) {
	// Only its own kubelet: a new instance under the node's name may run one already.
	k.mu.Lock()
	own := k.owners[n.Name] == n
	k.mu.Unlock()
	if own {
		k.stopKubelet(n.Name)
	}
	k.mu.Lock()
	var pl *plane
	last := false
	for _, p := range k.planes {
		if p.holds(n) {
			pl = p
			delete(p.nodes, n.InstanceID)
			if last = len(p.nodes) == 0; last {
				delete(k.planes, p.cluster)
			}
		}
	}
	k.mu.Unlock()
	if pl == nil {
		return
	}
	n.Host.Listen(apiPort, nil)
	if last {
		_ = os.Remove(k.endpointFile(pl.cluster))
		_ = pl.cp.Close()
		return
	}
	pl.cp.StopMember(n.Name)
}

// nodeReset is `kubeadm reset` on a node: on a control-plane node that is
// not the last, its etcd member is removed first through the others, as
// kubeadm reset's remove-etcd-member phase does
// (kubernetes/cmd/kubeadm/app/phases/etcd/local.go,
// RemoveStackedEtcdMemberFromCluster); then what runs for it stops.
func (k *kube) nodeReset(ctx context.Context, n *Node) error {
	k.mu.Lock()
	var pl *plane
	for _, p := range k.planes {
		if p.holds(n) && len(p.nodes) > 1 {
			pl = p
		}
	}
	k.mu.Unlock()
	if pl != nil {
		if err := pl.cp.RemoveMember(ctx, n.Name); err != nil {
			return fmt.Errorf("[reset] failed to remove etcd member %s: %w", n.Name, err)
		}
	}
	k.nodeGone(n)
	return nil
}

// endpointFile holds the host:port of the cluster's API server on 127.0.0.1
// while its control plane runs: clusters/<name>/api-endpoint in the lab folder.
func (k *kube) endpointFile(cluster string) string {
	return filepath.Join(k.dir, "clusters", cluster, "api-endpoint")
}

// close stops every kubelet and control plane.
func (k *kube) close() {
	k.mu.Lock()
	k.closed = true
	kubelets := slices.Collect(maps.Values(k.kubelets))
	planes := slices.Collect(maps.Values(k.planes))
	k.kubelets, k.planes = map[string]*hollow.Kubelet{}, map[string]*plane{}
	k.mu.Unlock()
	for _, kl := range kubelets {
		_ = kl.Close()
	}
	for _, pl := range planes {
		_ = pl.cp.Close()
	}
}

// apiEndpoint is the cluster's API server on 127.0.0.1, for clients on this machine.
func (k *kube) apiEndpoint(cluster string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	pl := k.planes[cluster]
	if pl == nil {
		return "", false
	}
	return pl.cp.Endpoint(), true
}

// controlPlane is the cluster's running control plane.
func (k *kube) controlPlane(cluster string) (*controlplane.ControlPlane, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	pl := k.planes[cluster]
	if pl == nil {
		return nil, fmt.Errorf("cluster %s runs no control plane in the lab", cluster)
	}
	return pl.cp, nil
}

// objects are the cluster's lab processes: "control-plane/<cluster>" while
// any member runs, and "kubelet/<node>".
func (k *kube) objects(cluster string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	if k.planes[cluster] != nil {
		out = append(out, "control-plane/"+cluster)
	}
	for node, c := range k.clusters {
		if c == cluster {
			out = append(out, "kubelet/"+node)
		}
	}
	return out
}

// forward serves a connection to a node's port by relaying it to addr.
func forward(addr string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		up, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		defer up.Close()
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
		go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
		<-done
	}
}
