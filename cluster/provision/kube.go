package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/kubectl/pkg/drain"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/internal/pki"
	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
)

const (
	// joinTokenTTL is how long a join token works: one Apply's joins.
	joinTokenTTL = time.Hour
	// joinTokenGroup is the group kubeadm's TLS-bootstrap RBAC binds
	// (kubeadm:kubelet-bootstrap, kubeadm:node-autoapprove-bootstrap).
	joinTokenGroup = "system:bootstrappers:kubeadm:default-node-token"
	// statusTimeout bounds Status: Observe must not wait for a control
	// plane that does not answer.
	statusTimeout = 20 * time.Second
	// drainTimeout is Config.DrainTimeout's default.
	drainTimeout = 10 * time.Minute
	// notReadyListed is how many not-Ready nodes an error names.
	notReadyListed = 10
)

// firstControlPlane finds the node that holds the cluster's admin credentials.
func firstControlPlane(spec cluster.Spec, instances []clouds.Instance) (cluster.Target, error) {
	name := cluster.NodeName(spec.Name, clouds.ControlPlanePool, 0)
	for _, in := range instances {
		if in.Name == name && in.State == clouds.StateRunning {
			return cluster.Target{Spec: spec, Node: nodeOf(in), Instance: in}, nil
		}
	}
	return cluster.Target{}, fmt.Errorf("%w (%s)", errNoControlPlane, name)
}

// isControlPlane reports whether name is one of the spec's control-plane
// node names, or one a larger control plane had.
func isControlPlane(spec cluster.Spec, name string) bool {
	prefix := strings.TrimSuffix(cluster.NodeName(spec.Name, clouds.ControlPlanePool, 0), "0")
	i, err := strconv.Atoi(strings.TrimPrefix(name, prefix))
	return strings.HasPrefix(name, prefix) && err == nil && i >= 0
}

// nodeOf is what reaching a node needs, read from its instance's tags and
// platform, so that a cluster known only by name (an import) can be read.
func nodeOf(in clouds.Instance) cluster.Node {
	return cluster.Node{Name: in.Name, Pool: in.Pool, Role: in.Role, OS: cluster.OS(in.OS)}
}

// joinToken creates a fresh, short-lived bootstrap token through the API
// server: the Secret `kubeadm token create` makes, so the bootstrap
// authenticator accepts it for the TLS bootstrap and the bootstrapsigner
// signs cluster-info with it for kubeadm join's discovery.
func (p *Provisioner) joinToken(ctx context.Context, t cluster.Target) (string, error) {
	k, err := p.kube(ctx, t.Spec, []clouds.Instance{t.Instance})
	if err != nil {
		return "", fmt.Errorf("failed to create a join token: %w", err)
	}
	for {
		tok, err := bootstraputil.GenerateBootstrapToken()
		if err != nil {
			return "", fmt.Errorf("failed to generate a join token: %w", err)
		}
		id, secret, _ := strings.Cut(tok, ".")
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
			Type:       bootstrapapi.SecretTypeBootstrapToken,
			Data: map[string][]byte{
				bootstrapapi.BootstrapTokenIDKey:               []byte(id),
				bootstrapapi.BootstrapTokenSecretKey:           []byte(secret),
				bootstrapapi.BootstrapTokenExpirationKey:       []byte(time.Now().Add(joinTokenTTL).UTC().Format(time.RFC3339)),
				bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
				bootstrapapi.BootstrapTokenUsageSigningKey:     []byte("true"),
				bootstrapapi.BootstrapTokenExtraGroupsKey:      []byte(joinTokenGroup),
				bootstrapapi.BootstrapTokenDescriptionKey:      []byte("mixedk8s: nodes joining cluster " + t.Spec.Name),
			},
		}
		_, err = k.cs.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{FieldManager: fieldManager})
		if apierrors.IsAlreadyExists(err) {
			continue // another token has this id: draw again
		}
		if err != nil {
			// The Secret's name holds the token id, which is public; the secret half never appears.
			return "", k.fail("create the join token Secret kube-system/"+s.Name, err)
		}
		return tok, nil
	}
}

func (p *Provisioner) joinInfo(endpoint string, ca *pki.CA, token, certKey string) cluster.JoinInfo {
	return cluster.JoinInfo{
		APIEndpoint:    endpoint,
		BootstrapToken: token,
		CACertHashes:   []string{kubeadm.CACertHash(ca.Cert)},
		CACertPEM:      string(ca.CertPEM()),
		CertificateKey: certKey,
	}
}

// Status implements cluster.Provisioner with one listing of the cluster's
// Nodes: a node joined when its Node object exists, and is Ready when its
// Ready condition is True. A cluster whose API server cannot be reached
// (never bootstrapped, control plane down) has no joined node; an API
// server that answers with an error (403, a certificate from another CA)
// fails Status.
func (p *Provisioner) Status(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (map[string]cluster.NodeStatus, error) {
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	nodes, err := p.nodes(sctx, spec, instances)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, errAPIUnreachable), errors.Is(err, errNoControlPlane), errors.Is(err, errNotBootstrapped):
		return map[string]cluster.NodeStatus{}, nil
	default:
		return nil, err
	}
	// A node of the spec whose instance is gone keeps its Node object: it
	// joined, and a replacement must take its place (its etcd member too).
	want := make(map[string]bool, len(instances))
	for _, in := range instances {
		want[in.Name] = true
	}
	for _, n := range spec.WithDefaults().Nodes() {
		want[n.Name] = true
	}
	out := map[string]cluster.NodeStatus{}
	for name, n := range nodes {
		// A Node named as the cluster names nodes, whose instance is gone,
		// is reported too: the plan makes it again and says why.
		if want[name] || ownName(spec.Name, name) {
			c := readyCondition(n)
			out[name] = cluster.NodeStatus{Joined: true, Ready: c.Status == corev1.ConditionTrue, Since: c.LastTransitionTime.Time,
				KubeletVersion: n.Status.NodeInfo.KubeletVersion, WindowsBuild: n.Labels[corev1.LabelWindowsBuild]}
		}
	}
	return out, nil
}

// ownName reports whether a node name is one the cluster gives: "<cluster>-<pool>-<i>".
func ownName(clusterName, name string) bool {
	rest, ok := strings.CutPrefix(name, clusterName+"-")
	i := strings.LastIndexByte(rest, '-')
	if !ok || i < 1 {
		return false
	}
	_, err := strconv.Atoi(rest[i+1:])
	return err == nil
}

// ServerVersion reads the API server's version from /version; "" when the
// cluster was never bootstrapped or its API server cannot be reached, as
// Status reports no node then.
func (p *Provisioner) ServerVersion(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	k, err := p.kube(sctx, spec, instances)
	if err == nil {
		rc := k.cs.Discovery().RESTClient()
		if rc == nil || reflect.ValueOf(rc).IsNil() {
			return "", nil // a client without REST access (a test double) cannot tell
		}
		var raw []byte
		if raw, err = rc.Get().AbsPath("/version").Do(sctx).Raw(); err == nil {
			var info apimachineryversion.Info
			if err := json.Unmarshal(raw, &info); err != nil {
				return "", fmt.Errorf("failed to read the version of the API server of cluster %q: %w", spec.Name, err)
			}
			return info.GitVersion, nil
		}
		err = k.fail("read the API server's version", err)
	}
	return "", unlessUnreachable(ctx, err)
}

// unlessUnreachable is err, except nil when the cluster has no API server to
// ask (never bootstrapped, or unreachable), as Status reports no node then;
// the context's own error when it ended.
func unlessUnreachable(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errAPIUnreachable), errors.Is(err, errNoControlPlane), errors.Is(err, errNotBootstrapped):
		return nil
	}
	return err
}

// The objects that tell a cluster's pod network: flannel's DaemonSet
// (nodeagent/agent/addons/flannel.yaml) and the Tigera operator's
// Deployment (nodeagent/manifest/calico/tigera-operator.yaml), both
// applied by the first control-plane node's agent.
const (
	flannelNamespace, flannelDaemonSet = "kube-flannel", "kube-flannel-ds"
	tigeraNamespace, tigeraOperator    = "tigera-operator", "tigera-operator"
)

// CNI reads which pod network the cluster runs from the objects its agent
// applied; "" before they exist or when the API server cannot be reached.
func (p *Provisioner) CNI(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (cluster.CNI, error) {
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	k, err := p.kube(sctx, spec, instances)
	if err == nil {
		_, err = k.cs.AppsV1().DaemonSets(flannelNamespace).Get(sctx, flannelDaemonSet, metav1.GetOptions{})
		if err == nil {
			return cluster.CNIFlannel, nil
		}
		if apierrors.IsNotFound(err) {
			_, err = k.cs.AppsV1().Deployments(tigeraNamespace).Get(sctx, tigeraOperator, metav1.GetOptions{})
			if err == nil {
				return cluster.CNICalico, nil
			}
			if apierrors.IsNotFound(err) {
				return "", nil
			}
		}
		err = k.fail("read which pod network the cluster runs", err)
	}
	return "", unlessUnreachable(ctx, err)
}

// nodes lists the cluster's Node objects by name.
func (p *Provisioner) nodes(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (map[string]*corev1.Node, error) {
	k, err := p.kube(ctx, spec, instances)
	if err != nil {
		return nil, err
	}
	list, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, k.fail("list the nodes", err)
	}
	out := make(map[string]*corev1.Node, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out, nil
}

// readyCondition is the node's Ready condition; Unknown when it has none.
func readyCondition(n *corev1.Node) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NoReadyCondition", Message: "the kubelet has not reported yet"}
}

// WaitReady implements cluster.Provisioner: it lists the Nodes every second,
// then less often up to Config.StatusPoll, until every named node is Ready.
// An API server that cannot be reached yet is waited for; when ctx ends, the
// error names the nodes still not Ready and why.
func (p *Provisioner) WaitReady(ctx context.Context, spec cluster.Spec, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var (
		instances []clouds.Instance
		nodes     map[string]*corev1.Node
		lastErr   error
	)
	poll := min(time.Second, p.cfg.StatusPoll)
	for {
		var err error
		if instances == nil {
			instances, err = p.cfg.Cloud.Instances(ctx, spec.Name)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("failed to list the instances of cluster %q: %w", spec.Name, err)
			}
		}
		if err == nil {
			var got map[string]*corev1.Node
			got, err = p.nodes(ctx, spec, instances)
			switch {
			case err == nil:
				nodes, lastErr = got, nil
				if len(notReady(nodes, names)) == 0 {
					return nil
				}
			case ctx.Err() != nil:
			case errors.Is(err, errAPIUnreachable):
				// The address may have changed (a replaced instance): look again.
				instances, lastErr = nil, err
			default:
				return err
			}
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return notReadyError(spec.Name, nodes, names, lastErr, ctx.Err())
		case <-t.C:
		}
		poll = min(poll*2, p.cfg.StatusPoll)
	}
}

// notReady lists the named nodes that are missing or not Ready.
func notReady(nodes map[string]*corev1.Node, names []string) []string {
	var out []string
	for _, name := range names {
		if n, ok := nodes[name]; !ok || readyCondition(n).Status != corev1.ConditionTrue {
			out = append(out, name)
		}
	}
	return out
}

// notReadyError names each waiting node with its Ready condition, or says
// that it never registered.
func notReadyError(clusterName string, nodes map[string]*corev1.Node, names []string, lastErr, ctxErr error) error {
	if nodes == nil {
		return fmt.Errorf("the nodes of cluster %q were never listed: %w: %w", clusterName, lastErr, ctxErr)
	}
	waiting := notReady(nodes, names)
	var parts []string
	for _, name := range waiting[:min(len(waiting), notReadyListed)] {
		n, ok := nodes[name]
		if !ok {
			parts = append(parts, name+" (no Node object: its kubelet has not registered)")
			continue
		}
		c := readyCondition(n)
		what := fmt.Sprintf("%s (Ready=%s", name, c.Status)
		if c.Reason != "" {
			what += " " + c.Reason
		}
		if c.Message != "" {
			what += ": " + c.Message
		}
		parts = append(parts, what+")")
	}
	if more := len(waiting) - len(parts); more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	msg := fmt.Sprintf("%d of %d nodes of cluster %q are not Ready: %s; fix: run `nodeagent diagnose` on them and read the kubelet log; a node without a Node object could not reach the API server or its join token expired (apply again for a fresh one), a NotReady node's reason says what its kubelet lacks (often the CNI)",
		len(waiting), len(names), clusterName, strings.Join(parts, ", "))
	if lastErr != nil {
		return fmt.Errorf("%s; at the last try: %w: %w", msg, lastErr, ctxErr)
	}
	return fmt.Errorf("%s: %w", msg, ctxErr)
}

// Drain implements cluster.Provisioner with kubectl's drain package: it
// cordons the node, then evicts its pods (DaemonSet pods stay; pods with
// emptyDir data and pods no controller recreates go too) and waits until
// they are gone, each with its own grace period. A node that no longer
// exists is drained.
func (p *Provisioner) Drain(ctx context.Context, spec cluster.Spec, name string) error {
	k, err := p.kube(ctx, spec, nil)
	if err != nil {
		return fmt.Errorf("failed to drain node %s: %w", name, err)
	}
	node, err := k.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return k.fail("read node "+name+" to drain it", err)
	}
	timeout := p.cfg.DrainTimeout
	if d, ok := ctx.Deadline(); ok {
		// Stop a little before the caller does, to say which budget blocked.
		timeout = min(timeout, time.Until(d)*9/10)
	}
	// kubectl's messages (evictions, warnings) are kept for the error, never printed.
	var out drainOutput
	h := &drain.Helper{
		Ctx:                  ctx,
		Client:               k.cs,
		Force:                true,
		GracePeriodSeconds:   -1,
		IgnoreAllDaemonSets:  true,
		DeleteEmptyDirData:   true,
		Timeout:              timeout,
		EvictErrorRetryDelay: 5 * time.Second,
		Out:                  &out,
		ErrOut:               &out,
	}
	if err := drain.RunCordonOrUncordon(h, node, true); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return k.fail("cordon node "+name, err)
	}
	if err := drain.RunNodeDrain(h, name); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("failed to drain node %s of cluster %q: %w; kubectl's drain said: %s", name, spec.Name, ctx.Err(), strings.TrimSpace(out.String()))
		}
		if pdbs := blockingBudgets(ctx, k, name); len(pdbs) > 0 {
			return fmt.Errorf("failed to drain node %s of cluster %q: %w; blocked by %s; fix: scale the workload up so its budget allows a disruption, or relax the budget, then apply again (the node stays cordoned)", name, spec.Name, err, strings.Join(pdbs, "; "))
		}
		return fmt.Errorf("failed to drain node %s of cluster %q: %w; kubectl's drain said: %s; fix: a PodDisruptionBudget may forbid the eviction (kubectl get pdb -A); move or delete the pods it protects, then apply again", name, spec.Name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// blockingBudgets names the PodDisruptionBudgets that allow no disruption
// of a pod on the node, which is why the API server refuses its eviction
// (429, https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/).
// Best effort: a failed listing names none.
func blockingBudgets(ctx context.Context, k *kubeAPI, node string) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusTimeout)
	defer cancel()
	pods, err := k.cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil
	}
	pdbs, err := k.cs.PolicyV1().PodDisruptionBudgets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	var out []string
	for _, b := range pdbs.Items {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || sel.Empty() || b.Status.DisruptionsAllowed > 0 {
			continue
		}
		var hit []string
		for _, pod := range pods.Items {
			if pod.Namespace == b.Namespace && pod.DeletionTimestamp == nil && sel.Matches(labels.Set(pod.Labels)) {
				hit = append(hit, pod.Name)
			}
		}
		if len(hit) > 0 {
			out = append(out, fmt.Sprintf("PodDisruptionBudget %s/%s (%d of %d pods healthy, %d required; it allows no disruption of pod %s)",
				b.Namespace, b.Name, b.Status.CurrentHealthy, b.Status.ExpectedPods, b.Status.DesiredHealthy, strings.Join(hit, ", ")))
		}
	}
	return out
}

// drainOutput keeps the start of what kubectl's drain writes; its eviction
// goroutines write at once.
type drainOutput struct {
	mu  sync.Mutex
	buf limitedBuffer
}

func (d *drainOutput) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.Write(b)
}

func (d *drainOutput) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.String()
}

// Remove implements cluster.Provisioner: it deletes the Node object; one
// that is already gone is removed. A control-plane node's etcd member is
// removed first, through another control-plane node.
func (p *Provisioner) Remove(ctx context.Context, spec cluster.Spec, name string) error {
	if isControlPlane(spec, name) {
		if err := p.removeEtcdMember(ctx, spec, name); err != nil {
			return err
		}
	}
	k, err := p.kube(ctx, spec, nil)
	if err != nil {
		return fmt.Errorf("failed to remove node %s: %w", name, err)
	}
	err = k.cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	return k.fail("delete node "+name, err)
}

// Endpoint implements cluster.Provisioner from the API load balancer (or,
// on a cloud without one, the first control-plane instance) and the stored
// CA, without contacting any node.
func (p *Provisioner) Endpoint(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (cluster.Endpoint, bool, error) {
	ep, ok, err := p.loadBalancer(ctx, spec.Name)
	if err != nil {
		return cluster.Endpoint{}, false, err
	}
	if !ok {
		t, err := firstControlPlane(spec, instances)
		if err != nil {
			return cluster.Endpoint{}, false, nil
		}
		ep = net.JoinHostPort(t.Instance.PrivateIP, apiPort)
	}
	ca, ok, err := p.storedCA(ctx, spec.Name)
	if err != nil || !ok {
		return cluster.Endpoint{}, false, err
	}
	return cluster.Endpoint{APIEndpoint: ep, CACertPEM: string(ca.CertPEM())}, true, nil
}

// lbLookupTTL is how long a found load balancer's address is used without
// asking the cloud again: the provisioner reaches the API server every
// second while it waits.
const lbLookupTTL = time.Minute

// loadBalancer is the host:port of the cluster's API load balancer, and
// false on a cloud without load balancers or when the cluster has none.
func (p *Provisioner) loadBalancer(ctx context.Context, clusterName string) (string, bool, error) {
	lbs, ok := p.cfg.Cloud.(clouds.LoadBalancers)
	if !ok {
		return "", false, nil
	}
	p.mu.Lock()
	c, cached := p.lbs[clusterName]
	p.mu.Unlock()
	if cached && time.Since(c.at) < lbLookupTTL {
		return c.endpoint, true, nil
	}
	lb, found, err := lbs.FindLoadBalancer(ctx, clusterName)
	if err != nil {
		return "", false, fmt.Errorf("failed to find the API load balancer of cluster %q: %w", clusterName, err)
	}
	if !found {
		return "", false, nil
	}
	ep := net.JoinHostPort(lb.Address, strconv.Itoa(lb.Port))
	p.mu.Lock()
	p.lbs[clusterName] = lbLookup{endpoint: ep, at: time.Now()}
	p.mu.Unlock()
	return ep, true, nil
}

// lbLookup is a load balancer address the provisioner found, and when.
type lbLookup struct {
	endpoint string
	at       time.Time
}

// AdminKubeconfig implements cluster.Provisioner: the provisioner holds the
// CA, so it issues the kubeconfig itself instead of copying one off a node.
func (p *Provisioner) AdminKubeconfig(ctx context.Context, spec cluster.Spec, instances []clouds.Instance, validity time.Duration) ([]byte, error) {
	ep, ok, err := p.Endpoint(ctx, spec, instances)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("cluster %q has no control plane yet; fix: apply it first", spec.Name)
	}
	ca, _, err := p.storedCA(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	return ca.AdminKubeconfig(spec.Name, "https://"+ep.APIEndpoint, validity, time.Now())
}

func (p *Provisioner) storedCA(ctx context.Context, cluster string) (*pki.CA, bool, error) {
	b, ok, err := p.cfg.Secrets.Secret(ctx, cluster, secretCA)
	if err != nil || !ok {
		return nil, false, err
	}
	certPEM, keyPEM := splitPEM(b)
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, false, fmt.Errorf("the CA of cluster %q in the secret store is damaged: %w", cluster, err)
	}
	return ca, true, nil
}
