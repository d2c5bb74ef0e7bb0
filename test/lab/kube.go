package lab

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
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

// signatureWait bounds the wait for kube-controller-manager's bootstrapsigner
// to sign cluster-info for a token whose Secret exists: kubeadm's default
// discovery timeout. It signs a fresh token within about 5 s, later on a
// loaded machine; a token with no Secret fails at once.
const signatureWait = 5 * time.Minute

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
	closed   bool
}

// plane is a cluster's running control plane.
type plane struct {
	cluster string
	node    *Node // the init node, whose port 6443 forwards to cp
	cp      *controlplane.ControlPlane
}

func newKube(dir string) *kube {
	return &kube{dir: dir, planes: map[string]*plane{}, starts: map[string]*sync.Mutex{}, kubelets: map[string]*hollow.Kubelet{}, clusters: map[string]string{}}
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
			// What runs for the node stops; the sandbox then deletes kubeadm's files.
			n, err := node()
			if err != nil {
				return nil, true, err
			}
			k.nodeGone(n)
			return nil, false, nil
		}
		kubeadm := prog == "kubeadm" && (verb == "init" || verb == "join")
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
			if verb == "init" {
				out, err = k.init(ctx, n, c.Args)
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
		// On Linux kubeadm starts the kubelet; the join hook stands for both.
		if n.Host.OS != host.Windows {
			return nil
		}
		return k.windowsKubelet(ctx, n, spec)
	}
	return h
}

// configArg reads the file after --config from the node's sandbox.
func configArg(n *Node, args []string) ([]byte, error) {
	for i, a := range args {
		file, ok := strings.CutPrefix(a, "--config=")
		if !ok && a == "--config" && i+1 < len(args) {
			file, ok = args[i+1], true
		}
		if ok {
			return readNodeFile(n, file)
		}
	}
	return nil, fmt.Errorf("kubeadm %s: no --config FILE (the lab reads the node's configuration from it)", args[0])
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

// kubeadmDoc returns the document of one kind from a kubeadm configuration.
func kubeadmDoc(data []byte, kind string) (map[string]any, error) {
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("the kubeadm configuration does not parse: %w", err)
		}
		if m["kind"] == kind {
			return m, nil
		}
	}
	return nil, fmt.Errorf("the kubeadm configuration has no %s", kind)
}

// registration is what a node's kubelet registers with.
type registration struct {
	name   string
	labels map[string]string
	taints []string
}

// readRegistration reads nodeRegistration: name, taints and the node-labels
// kubelet argument, as kubeadm passes them to the kubelet.
func readRegistration(doc map[string]any, fallback string) (registration, error) {
	r := registration{name: fallback, labels: map[string]string{}}
	nr, _ := doc["nodeRegistration"].(map[string]any)
	if s, _ := nr["name"].(string); s != "" {
		r.name = s
	}
	args, _ := nr["kubeletExtraArgs"].([]any)
	for _, a := range args {
		m, _ := a.(map[string]any)
		if m["name"] == "node-labels" {
			v, _ := m["value"].(string)
			labels, err := parseLabels(v)
			if err != nil {
				return r, err
			}
			r.labels = labels
		}
	}
	taints, err := parseTaints(nr["taints"])
	r.taints = taints
	return r, err
}

// parseLabels reads a --node-labels value: k=v,k2=v2.
func parseLabels(v string) (map[string]string, error) {
	out := map[string]string{}
	for kv := range strings.SplitSeq(v, ",") {
		if kv == "" {
			continue
		}
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("node label %q has no '='", kv)
		}
		out[key] = val
	}
	return out, nil
}

// parseTaints turns kubeadm's or the kubelet configuration's taint list
// into key=value:Effect strings.
func parseTaints(v any) ([]string, error) {
	list, _ := v.([]any)
	var out []string
	for _, t := range list {
		m, _ := t.(map[string]any)
		key, _ := m["key"].(string)
		value, _ := m["value"].(string)
		effect, _ := m["effect"].(string)
		if key == "" || effect == "" {
			return nil, fmt.Errorf("taint %v needs a key and an effect", m)
		}
		if value != "" {
			key += "=" + value
		}
		out = append(out, key+":"+effect)
	}
	return out, nil
}

// init starts the cluster's control plane the way `kubeadm init` would
// bring one up on the node, registers the node, marks it control plane,
// and leaves admin.conf and kubelet.conf where kubeadm writes them.
func (k *kube) init(ctx context.Context, n *Node, args []string) ([]byte, error) {
	conf, err := configArg(n, args)
	if err != nil {
		return nil, err
	}
	cc, err := kubeadmDoc(conf, "ClusterConfiguration")
	if err != nil {
		return nil, err
	}
	ic, err := kubeadmDoc(conf, "InitConfiguration")
	if err != nil {
		return nil, err
	}
	endpoint, _ := cc["controlPlaneEndpoint"].(string)
	if endpoint == "" {
		endpoint = net.JoinHostPort(n.PrivateIP.String(), fmt.Sprint(apiPort))
	}
	reg, err := readRegistration(ic, n.Name)
	if err != nil {
		return nil, err
	}
	cluster := n.Cluster
	if cluster == "" {
		return nil, fmt.Errorf("kubeadm init on %s: the instance has no cluster tag, so the lab cannot tell its cluster", n.Name)
	}

	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil, errors.New("the lab is stopping")
	}
	start := k.starts[cluster]
	if start == nil {
		start = &sync.Mutex{}
		k.starts[cluster] = start
	}
	k.mu.Unlock()
	start.Lock()
	defer start.Unlock()

	k.mu.Lock()
	pl := k.planes[cluster]
	k.mu.Unlock()
	if pl != nil && pl.node.InstanceID != n.InstanceID {
		return nil, fmt.Errorf("kubeadm init on %s: cluster %s already runs a control plane on %s; the lab runs one per cluster", n.Name, cluster, pl.node.Name)
	}
	if pl == nil {
		work := filepath.Join(k.dir, "clusters", cluster, "control-plane")
		cp, err := controlplane.Start(ctx, controlplane.Config{SandboxRoot: n.Sandbox.Root(), KubeadmConfig: conf, WorkDir: work})
		if err != nil {
			return nil, fmt.Errorf("kubeadm init on %s: %w", n.Name, err)
		}
		pl = &plane{cluster: cluster, node: n, cp: cp}
		k.mu.Lock()
		if k.closed {
			k.mu.Unlock()
			_ = cp.Close()
			return nil, errors.New("the lab is stopping")
		}
		k.planes[cluster] = pl
		k.mu.Unlock()
		n.Host.Listen(apiPort, forward(cp.Endpoint()))
		// For kubectl on this machine (hack/demo.sh): where the API server listens.
		if err := os.WriteFile(k.endpointFile(cluster), []byte(cp.Endpoint()+"\n"), 0o644); err != nil {
			return nil, err
		}
	}

	kubeletConf, err := pl.cp.KubeletKubeconfig()
	if err != nil {
		return nil, err
	}
	if _, err := k.startKubelet(ctx, pl, n, reg, kubeletConf); err != nil {
		return nil, fmt.Errorf("kubeadm init on %s: the kubelet: %w", n.Name, err)
	}
	if err := pl.cp.MarkControlPlane(ctx, reg.name); err != nil {
		return nil, fmt.Errorf("kubeadm init on %s: %w", n.Name, err)
	}
	// The files kubeadm leaves on the node, naming the endpoint nodes use.
	admin, err := controlplane.SetServer(pl.cp.AdminKubeconfig(), "https://"+endpoint)
	if err != nil {
		return nil, err
	}
	nodeKubelet, err := controlplane.SetServer(kubeletConf, "https://"+endpoint)
	if err != nil {
		return nil, err
	}
	for file, data := range map[string][]byte{"/etc/kubernetes/admin.conf": admin, "/etc/kubernetes/kubelet.conf": nodeKubelet} {
		if err := writeNodeFile(n, file, data); err != nil {
			return nil, fmt.Errorf("kubeadm init on %s: write %s: %w", n.Name, file, err)
		}
	}
	return fmt.Appendf(nil, "[lab] control plane of cluster %s: etcd, kube-apiserver and kube-controller-manager on the node's certificates\n"+
		"Your Kubernetes control-plane has initialized successfully!\n", cluster), nil
}

// joinDiscovery is the bootstrap-token discovery of a JoinConfiguration.
type joinDiscovery struct {
	endpoint string
	token    string
	pins     []string
}

func readDiscovery(jc map[string]any) (joinDiscovery, error) {
	d, _ := jc["discovery"].(map[string]any)
	bt, _ := d["bootstrapToken"].(map[string]any)
	if bt == nil {
		return joinDiscovery{}, errors.New("the JoinConfiguration has no discovery.bootstrapToken; the lab discovers with bootstrap tokens only")
	}
	out := joinDiscovery{}
	out.endpoint, _ = bt["apiServerEndpoint"].(string)
	out.token, _ = bt["token"].(string)
	hashes, _ := bt["caCertHashes"].([]any)
	for _, h := range hashes {
		if s, ok := h.(string); ok {
			out.pins = append(out.pins, s)
		}
	}
	return out, nil
}

// join does what `kubeadm join` does on a worker: discovery of the cluster
// CA through cluster-info (checked against the token's JWS signature and
// the CA pins), the bootstrap kubeconfig, then the kubelet's TLS bootstrap.
func (k *kube) join(ctx context.Context, n *Node, args []string) ([]byte, error) {
	conf, err := configArg(n, args)
	if err != nil {
		return nil, err
	}
	jc, err := kubeadmDoc(conf, "JoinConfiguration")
	if err != nil {
		return nil, err
	}
	if jc["controlPlane"] != nil {
		return nil, fmt.Errorf("kubeadm join on %s: the lab runs one control-plane node per cluster; fix: set the control plane's count to 1 on the lab", n.Name)
	}
	reg, err := readRegistration(jc, n.Name)
	if err != nil {
		return nil, err
	}
	disc, err := readDiscovery(jc)
	if err != nil {
		return nil, err
	}
	pl, err := k.planeAt(disc.endpoint)
	if err != nil {
		return nil, err
	}
	caPEM, err := discover(ctx, pl.cp, disc)
	if err != nil {
		return nil, fmt.Errorf("error execution phase preflight: couldn't validate the identity of the API Server: %w", err)
	}
	boot, err := bootstrapKubeconfig("https://"+disc.endpoint, caPEM, disc.token)
	if err != nil {
		return nil, err
	}
	const bootFile, kubeletFile = "/etc/kubernetes/bootstrap-kubelet.conf", "/etc/kubernetes/kubelet.conf"
	if err := writeNodeFile(n, bootFile, boot); err != nil {
		return nil, err
	}
	kl, err := k.startKubelet(ctx, pl, n, reg, boot)
	if err != nil {
		if errors.Is(err, hollow.ErrTokenRejected) {
			return nil, fmt.Errorf("error execution phase kubelet-start: the kubelet's TLS bootstrap failed: %w; fix: create a fresh token on the control plane and join again", err)
		}
		return nil, fmt.Errorf("error execution phase kubelet-start: %w", err)
	}
	if err := writeNodeFile(n, kubeletFile, kl); err != nil {
		return nil, err
	}
	// kubeadm removes the bootstrap kubeconfig once the kubelet has its certificate.
	if p, err := n.Sandbox.HostPath(bootFile); err == nil {
		_ = os.Remove(p)
	}
	return fmt.Appendf(nil, "This node has joined the cluster:\n* Certificate signing request was sent to apiserver and a response was received.\n* The Kubelet was informed of the new secure connection details.\n"), nil
}

// planeAt finds the control plane serving endpoint (host:port of a node).
func (k *kube) planeAt(endpoint string) (*plane, error) {
	h, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return nil, fmt.Errorf("API endpoint %q is not host:port", endpoint)
	}
	addr, err := netip.ParseAddr(h)
	if err == nil && port == fmt.Sprint(apiPort) {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, pl := range k.planes {
			if pl.node.PrivateIP == addr || pl.node.Host.Addr == addr {
				return pl, nil
			}
		}
	}
	return nil, fmt.Errorf("dial tcp %s: connect: connection refused (no control plane of the lab serves it; its first control-plane node has not run kubeadm init)", endpoint)
}

// discover fetches cluster-info as an anonymous client would and checks
// it as kubeadm does: a JWS signature for the token's ID that verifies with
// its secret, and a CA whose public key matches a pin. It returns the CA.
func discover(ctx context.Context, cp *controlplane.ControlPlane, d joinDiscovery) ([]byte, error) {
	id, secret, ok := strings.Cut(d.token, ".")
	if !ok {
		return nil, errors.New("the bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}")
	}
	deadline := time.Now().Add(signatureWait)
	for {
		code, body, err := cp.Do(ctx, http.MethodGet, "/api/v1/namespaces/kube-public/configmaps/cluster-info", nil)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET cluster-info: HTTP %d", code)
		}
		var cm struct {
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(body, &cm); err != nil {
			return nil, fmt.Errorf("cluster-info does not parse: %w", err)
		}
		kc := cm.Data["kubeconfig"]
		sig, signed := cm.Data["jws-kubeconfig-"+id]
		if signed {
			if !jws.DetachedTokenIsValid(sig, kc, id, secret) {
				return nil, fmt.Errorf("failed to verify JWS signature of received cluster info object, can't trust this API Server")
			}
			_, caPEM, err := kubeconfigCluster([]byte(kc))
			if err != nil || len(caPEM) == 0 {
				return nil, errors.New("cluster-info holds no kubeconfig with a CA")
			}
			if err := checkPins(caPEM, d.pins); err != nil {
				return nil, err
			}
			return caPEM, nil
		}
		// A token with no signature is unknown or expired, or not signed yet.
		// The lab, unlike an anonymous client, can tell the first two at once.
		if err := checkToken(ctx, cp, d.token); err != nil {
			return nil, fmt.Errorf("could not find a JWS signature in the cluster-info ConfigMap for token ID %q; the token is unknown or has expired: %w", id, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("could not find a JWS signature in the cluster-info ConfigMap for token ID %q after %s; is kube-controller-manager's bootstrapsigner running?", id, signatureWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// kubeconfigCluster is the server and CA of a kubeconfig's first cluster.
func kubeconfigCluster(kc []byte) (server string, caPEM []byte, err error) {
	var c struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CA     []byte `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
	}
	if err := yaml.Unmarshal(kc, &c); err != nil || len(c.Clusters) == 0 {
		return "", nil, errors.New("it holds no cluster")
	}
	return c.Clusters[0].Cluster.Server, c.Clusters[0].Cluster.CA, nil
}

// checkPins compares the CA's public key with the sha256:<hex> pins.
func checkPins(caPEM []byte, pins []string) error {
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return errors.New("the cluster CA in cluster-info is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("the cluster CA in cluster-info does not parse: %w", err)
	}
	got := kubeadm.CACertHash(cert)
	if slices.Contains(pins, got) {
		return nil
	}
	return fmt.Errorf("cluster CA found in cluster-info ConfigMap is invalid: none of the public keys %q are pinned", got)
}

// tokenCheck asks the control plane, with a consistent read, whether the
// bootstrap kubeconfig's token is one its authenticator accepts: a 401 to a
// kubelet that starts moments after its token was created can come from the
// API server's Secret cache lagging behind, and a real kubelet retries.
func tokenCheck(cp *controlplane.ControlPlane, bootstrap []byte) func(context.Context) error {
	return func(ctx context.Context) error {
		var kc struct {
			Users []struct {
				User struct {
					Token string `json:"token"`
				} `json:"user"`
			} `json:"users"`
		}
		if err := yaml.Unmarshal(bootstrap, &kc); err != nil || len(kc.Users) == 0 {
			return errors.New("the bootstrap kubeconfig holds no user")
		}
		return checkToken(ctx, cp, kc.Users[0].User.Token)
	}
}

// checkToken reads the token's Secret as the bootstrap authenticator
// would, but consistently: nil means the token is good now.
func checkToken(ctx context.Context, cp *controlplane.ControlPlane, token string) error {
	id, secret, ok := strings.Cut(token, ".")
	if !ok {
		return errors.New("the bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}")
	}
	secretName := bootstrapapi.BootstrapTokenSecretPrefix + id
	name := "kube-system/" + secretName
	code, body, err := cp.Do(ctx, http.MethodGet, "/api/v1/namespaces/kube-system/secrets/"+secretName, nil)
	if err != nil {
		return err
	}
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return fmt.Errorf("the cluster has no Secret %s: the token was never issued, or was deleted", name)
	default:
		return fmt.Errorf("GET Secret %s: HTTP %d", name, code)
	}
	var sec struct {
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal(body, &sec); err != nil {
		return fmt.Errorf("the Secret %s does not parse: %w", name, err)
	}
	expiry := sec.Data[bootstrapapi.BootstrapTokenExpirationKey]
	exp, err := time.Parse(time.RFC3339, string(expiry))
	switch {
	case subtle.ConstantTimeCompare(sec.Data[bootstrapapi.BootstrapTokenSecretKey], []byte(secret)) != 1:
		return fmt.Errorf("the Secret %s holds another token-secret", name)
	case string(sec.Data[bootstrapapi.BootstrapTokenUsageAuthentication]) != "true":
		return fmt.Errorf("the Secret %s lacks usage-bootstrap-authentication", name)
	case len(expiry) > 0 && (err != nil || time.Now().After(exp)):
		return fmt.Errorf("the Secret %s has expired", name)
	}
	return nil
}

// bootstrapKubeconfig is what kubeadm writes to bootstrap-kubelet.conf.
func bootstrapKubeconfig(server string, caPEM []byte, token string) ([]byte, error) {
	kc := map[string]any{
		"apiVersion": "v1", "kind": "Config",
		"clusters":        []any{map[string]any{"name": "kubernetes", "cluster": map[string]any{"server": server, "certificate-authority-data": caPEM}}},
		"users":           []any{map[string]any{"name": "tls-bootstrap-token-user", "user": map[string]any{"token": token}}},
		"contexts":        []any{map[string]any{"name": "tls-bootstrap-token-user@kubernetes", "context": map[string]any{"cluster": "kubernetes", "user": "tls-bootstrap-token-user"}}},
		"current-context": "tls-bootstrap-token-user@kubernetes",
	}
	return yaml.Marshal(kc)
}

// windowsKubelet starts the hollow kubelet of a Windows node from its
// kubelet service's command line and the files it names.
func (k *kube) windowsKubelet(ctx context.Context, n *Node, spec oslayer.ServiceSpec) error {
	flags := map[string]string{}
	for _, a := range spec.Args {
		if key, val, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			flags[key] = val
		}
	}
	boot, err := readNodeFile(n, flags["bootstrap-kubeconfig"])
	if err != nil {
		return fmt.Errorf("kubelet: the bootstrap kubeconfig --bootstrap-kubeconfig=%q: %w", flags["bootstrap-kubeconfig"], err)
	}
	reg := registration{name: cmp.Or(flags["hostname-override"], n.Name)}
	if reg.labels, err = parseLabels(flags["node-labels"]); err != nil {
		return fmt.Errorf("kubelet: --node-labels: %w", err)
	}
	if file := flags["config"]; file != "" {
		data, err := readNodeFile(n, file)
		if err != nil {
			return fmt.Errorf("kubelet: --config=%q: %w", file, err)
		}
		var kc map[string]any
		if err := yaml.Unmarshal(data, &kc); err != nil {
			return fmt.Errorf("kubelet: %s does not parse: %w", file, err)
		}
		if reg.taints, err = parseTaints(kc["registerWithTaints"]); err != nil {
			return fmt.Errorf("kubelet: %s: %w", file, err)
		}
	}
	server, _, err := kubeconfigCluster(boot)
	if err != nil || server == "" {
		return fmt.Errorf("kubelet: the bootstrap kubeconfig %s names no server", flags["bootstrap-kubeconfig"])
	}
	pl, err := k.planeAt(strings.TrimPrefix(server, "https://"))
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	kl, err := k.startKubelet(ctx, pl, n, reg, boot)
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	if file := flags["kubeconfig"]; file != "" {
		return writeNodeFile(n, file, kl)
	}
	return nil
}

// startKubelet runs the node's hollow kubelet against the cluster's control
// plane (a running one for the node is kept) and returns the kubeconfig
// the kubelet wrote after its TLS bootstrap.
func (k *kube) startKubelet(ctx context.Context, pl *plane, n *Node, reg registration, bootstrap []byte) ([]byte, error) {
	work := filepath.Join(k.dir, "clusters", pl.cluster, "kubelets", reg.name)
	k.mu.Lock()
	running := k.kubelets[reg.name]
	k.mu.Unlock()
	if running != nil {
		if ex, _ := running.Process().Exited(); !ex && k.clusterOf(reg.name) == pl.cluster {
			return os.ReadFile(filepath.Join(work, "kubelet.conf"))
		}
		k.stopKubelet(reg.name)
	}
	// A fresh machine has no kubelet state.
	if err := os.RemoveAll(work); err != nil {
		return nil, err
	}
	kl, err := hollow.StartKubelet(ctx, hollow.Config{
		Name:                reg.name,
		BootstrapKubeconfig: bootstrap,
		Server:              pl.cp.URL(),
		Labels:              reg.labels,
		Taints:              reg.taints,
		WorkDir:             work,
		CheckToken:          tokenCheck(pl.cp, bootstrap),
	})
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		_ = kl.Close()
		return nil, errors.New("the lab is stopping")
	}
	k.kubelets[reg.name] = kl
	k.clusters[reg.name] = pl.cluster
	k.mu.Unlock()
	return os.ReadFile(filepath.Join(work, "kubelet.conf"))
}

func (k *kube) clusterOf(node string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.clusters[node]
}

func (k *kube) stopKubelet(node string) {
	k.mu.Lock()
	kl := k.kubelets[node]
	delete(k.kubelets, node)
	delete(k.clusters, node)
	k.mu.Unlock()
	if kl != nil {
		_ = kl.Close()
	}
}

// kubectl runs the real kubectl for a command the agent runs on a control-
// plane node: the node's admin.conf becomes the control plane's, and file
// arguments are read from the node's sandbox.
func (k *kube) kubectl(ctx context.Context, n *Node, args []string) ([]byte, error) {
	k.mu.Lock()
	pl := k.planes[n.Cluster]
	k.mu.Unlock()
	if pl == nil || pl.node.InstanceID != n.InstanceID {
		return nil, fmt.Errorf("kubectl on %s: no control plane runs on this node (the lab runs kubectl on the node that ran kubeadm init)", n.Name)
	}
	bin, err := proc.BinDir("kubectl")
	if err != nil {
		return nil, err
	}
	out := slices.Clone(args)
	for i := range out {
		prev := ""
		if i > 0 {
			prev = out[i-1]
		}
		switch prev {
		case "--kubeconfig":
			out[i] = pl.cp.AdminKubeconfigPath()
		case "-f", "--filename":
			if out[i], err = n.Sandbox.HostPath(out[i]); err != nil {
				return nil, err
			}
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), out...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return b, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args[:min(len(args), 3)], " "), err, bytes.TrimSpace(b))
	}
	return b, nil
}

// nodeGone stops what ran for a terminated or reset node: its kubelet, and
// the cluster's control plane when the node held it.
func (k *kube) nodeGone(n *Node) {
	k.stopKubelet(n.Name)
	k.mu.Lock()
	var pl *plane
	for c, p := range k.planes {
		if p.node.InstanceID == n.InstanceID {
			pl = p
			delete(k.planes, c)
		}
	}
	k.mu.Unlock()
	if pl != nil {
		n.Host.Listen(apiPort, nil)
		_ = os.Remove(k.endpointFile(pl.cluster))
		_ = pl.cp.Close()
	}
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

// objects are the cluster's lab processes: "control-plane/<cluster>" and
// "kubelet/<node>".
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
