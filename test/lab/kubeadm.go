package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/hollow"
)

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
	held := pl != nil && pl.holds(n)
	k.mu.Unlock()
	if pl != nil && !held {
		return nil, fmt.Errorf("kubeadm init on %s: cluster %s already runs a control plane on %s; a further control-plane node joins it with kubeadm join and a controlPlane section", n.Name, cluster, strings.Join(k.memberNames(pl), ", "))
	}
	if pl == nil {
		// The control plane runs the release the configuration names, from that release's binaries.
		release, _ := cc["kubernetesVersion"].(string)
		bin, err := releaseBinDir("v"+strings.TrimPrefix(release, "v"), controlplane.VersionBinaries...)
		if err != nil {
			return nil, fmt.Errorf("kubeadm init on %s: %w", n.Name, err)
		}
		work := filepath.Join(k.dir, "clusters", cluster, "control-plane", reg.name)
		cp, err := controlplane.Start(ctx, controlplane.Config{SandboxRoot: n.Sandbox.Root(), KubeadmConfig: conf, WorkDir: work, CertificateKey: uploadKey(args, ic), BinDir: bin})
		if err != nil {
			return nil, fmt.Errorf("kubeadm init on %s: %w", n.Name, err)
		}
		pl = &plane{cluster: cluster, cp: cp, nodes: map[string]*Node{n.InstanceID: n}}
		k.mu.Lock()
		if k.closed {
			k.mu.Unlock()
			_ = cp.Close()
			return nil, errors.New("the lab is stopping")
		}
		k.planes[cluster] = pl
		k.mu.Unlock()
		n.Host.Listen(apiPort, forward(cp.Members()[0].Endpoint()))
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
	if jc["controlPlane"] != nil {
		if err := k.joinMember(ctx, pl, n, conf); err != nil {
			return nil, err
		}
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
	if jc["controlPlane"] != nil {
		// join --control-plane: mark-control-plane, and admin.conf naming the cluster's endpoint.
		if err := pl.cp.MarkControlPlane(ctx, reg.name); err != nil {
			return nil, fmt.Errorf("error execution phase control-plane-join/mark-control-plane: %w", err)
		}
		admin, err := controlplane.SetServer(pl.cp.AdminKubeconfig(), "https://"+disc.endpoint)
		if err != nil {
			return nil, err
		}
		if err := writeNodeFile(n, "/etc/kubernetes/admin.conf", admin); err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "[lab] etcd member, kube-apiserver and kube-controller-manager of cluster %s on %s\nThis node has joined the cluster and a new control plane instance was created\n", pl.cluster, n.Name), nil
	}
	return fmt.Appendf(nil, "This node has joined the cluster:\n* Certificate signing request was sent to apiserver and a response was received.\n* The Kubelet was informed of the new secure connection details.\n"), nil
}

// joinMember runs the node's member of the control plane, as
// `kubeadm join --control-plane` does before the kubelet starts
// (controlplane.ControlPlane.Join), and forwards the node's port 6443 to
// its own API server, where the cloud's load balancer reaches it.
func (k *kube) joinMember(ctx context.Context, pl *plane, n *Node, conf []byte) error {
	k.mu.Lock()
	held := pl.holds(n)
	k.mu.Unlock()
	if held {
		return nil // a retried join: the member runs
	}
	work := filepath.Join(k.dir, "clusters", pl.cluster, "control-plane", n.Name)
	m, err := pl.cp.Join(ctx, controlplane.JoinConfig{SandboxRoot: n.Sandbox.Root(), KubeadmConfig: conf, WorkDir: work})
	if err != nil {
		return fmt.Errorf("kubeadm join on %s: %w", n.Name, err)
	}
	k.mu.Lock()
	if k.closed || k.planes[pl.cluster] != pl {
		k.mu.Unlock()
		pl.cp.StopMember(m.Name)
		return errors.New("the control plane stopped while the node joined it")
	}
	pl.nodes[n.InstanceID] = n
	k.mu.Unlock()
	n.Host.Listen(apiPort, forward(m.Endpoint()))
	return nil
}

// uploadCerts is `kubeadm init phase upload-certs --upload-certs
// --certificate-key KEY` on a control-plane node.
func (k *kube) uploadCerts(ctx context.Context, n *Node, args []string) ([]byte, error) {
	if !slices.Contains(args, "--upload-certs") {
		return []byte("[upload-certs] Skipping phase. Please see --upload-certs\n"), nil
	}
	key := flagValue(args, "--certificate-key")
	if key == "" && flagValue(args, "--config") != "" {
		conf, err := configArg(n, args)
		if err != nil {
			return nil, err
		}
		ic, err := kubeadmDoc(conf, "InitConfiguration")
		if err != nil {
			return nil, err
		}
		key, _ = ic["certificateKey"].(string)
	}
	if key == "" {
		return nil, errors.New("error execution phase upload-certs: the lab needs --certificate-key or a configuration's certificateKey (kubeadm would print a new key it generated)")
	}
	k.mu.Lock()
	pl := k.planes[n.Cluster]
	held := pl != nil && pl.holds(n)
	k.mu.Unlock()
	if !held {
		return nil, fmt.Errorf("error execution phase upload-certs: no control plane runs on %s", n.Name)
	}
	if err := pl.cp.UploadCerts(ctx, n.Name, key); err != nil {
		return nil, err
	}
	return []byte("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace\n"), nil
}

// uploadKey is the certificate key of `kubeadm init --upload-certs`: the
// --certificate-key flag, else the InitConfiguration's certificateKey
// (kubeadm makes one up when both are empty, which the lab does not).
func uploadKey(args []string, ic map[string]any) string {
	if !slices.Contains(args, "--upload-certs") {
		return ""
	}
	if k := flagValue(args, "--certificate-key"); k != "" {
		return k
	}
	k, _ := ic["certificateKey"].(string)
	return k
}

// flagValue is the value of --name VALUE or --name=VALUE.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// memberNames are the control-plane nodes of pl.
func (k *kube) memberNames(pl *plane) []string {
	var out []string
	for _, m := range pl.cp.Members() {
		out = append(out, m.Name)
	}
	return out
}

// upgrade is `kubeadm upgrade apply vX` or `kubeadm upgrade node` on a
// control-plane node: the node's member of the control plane moves to the
// release, its static Pods one at a time (controlplane.ControlPlane.Upgrade).
// apply also moves the cluster's configuration (kubeadm-config), which
// `upgrade node` on the other members then follows. The version policy is
// kubeadm's (kubernetes cmd/kubeadm/app/phases/upgrade/policy.go,
// EnforceVersionPolicies): no more than one minor at a time, no downgrade,
// and never above the kubeadm that runs it, which the agent installed on
// the node.
func (k *kube) upgrade(ctx context.Context, n *Node, args []string) ([]byte, error) {
	verb := ""
	if len(args) > 1 {
		verb = args[1]
	}
	k.mu.Lock()
	pl := k.planes[n.Cluster]
	held := pl != nil && pl.holds(n)
	k.mu.Unlock()
	if !held {
		return nil, fmt.Errorf("[upgrade] FATAL: no control-plane member runs on %s: kubeadm upgrade %s upgrades the static Pods of a control-plane node", n.Name, verb)
	}
	own, err := installedRelease(n, "kubeadm")
	if err != nil {
		return nil, err
	}
	ownV, err := version.ParseSemantic(own)
	if err != nil {
		return nil, err
	}
	current := pl.cp.Version()
	cur, err := version.ParseSemantic(current)
	if err != nil {
		return nil, fmt.Errorf("[upgrade] the cluster's version %q: %w", current, err)
	}
	target := current
	switch verb {
	case "apply":
		if len(args) < 3 || !strings.HasPrefix(args[2], "v") {
			return nil, errors.New("[upgrade] FATAL: missing one or more required arguments: [version]")
		}
		target = args[2]
		tv, err := version.ParseSemantic(target)
		if err != nil {
			return nil, fmt.Errorf("[upgrade/version] FATAL: %q is not a version: %w", target, err)
		}
		var problems []string
		if tv.LessThan(cur) {
			problems = append(problems, fmt.Sprintf("Specified version to upgrade to %q is lower than the cluster version %q. Downgrades are not supported", target, current))
		}
		if tv.Minor() > cur.Minor()+1 {
			problems = append(problems, fmt.Sprintf("Specified version to upgrade to %q is too high; kubeadm can upgrade only 1 minor version at a time", target))
		}
		if tv.GreaterThan(ownV) {
			problems = append(problems, fmt.Sprintf("Specified version to upgrade to %q is higher than the kubeadm version %q. Upgrade kubeadm first using the tool you used to install kubeadm", target, own))
		}
		if len(problems) > 0 {
			return nil, fmt.Errorf("[upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n\t- %s", strings.Join(problems, "\n\t- "))
		}
	case "node":
		// Stricter than kubeadm, which renders the cluster's release with
		// whatever kubeadm runs: the upgrade guide has kubeadm upgraded first
		// on every control-plane node
		// (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/#upgrade-additional-control-plane-nodes).
		if cur.GreaterThan(ownV) {
			return nil, fmt.Errorf("[upgrade] FATAL: the cluster runs %s and this node's kubeadm is %s; upgrade kubeadm first using the tool you used to install kubeadm", current, own)
		}
	default:
		return nil, fmt.Errorf("unknown command %q for \"kubeadm upgrade\"", verb)
	}
	dir, err := releaseBinDir(target, controlplane.VersionBinaries...)
	if err != nil {
		return nil, fmt.Errorf("[upgrade] %w", err)
	}
	if err := pl.cp.Upgrade(ctx, controlplane.UpgradeConfig{Node: n.Name, BinDir: dir, Version: target, Cluster: verb == "apply"}); err != nil {
		return nil, fmt.Errorf("[upgrade] FATAL: %w", err)
	}
	return fmt.Appendf(nil, "[upgrade] SUCCESS! The control plane of %s runs %s.\n", n.Name, target), nil
}
