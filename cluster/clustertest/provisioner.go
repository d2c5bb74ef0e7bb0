// Package clustertest has test doubles for the cluster library: an
// in-memory Provisioner that joins nodes instantly (or after a simulated
// latency), fails on demand, and counts its calls. Pair it with
// clouds/memory to run Apply, Observe and Destroy without any cloud.
package clustertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/internal/pki"
	"github.com/mixedk8s/mixedk8s/internal/double"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// Operations, as counted and as named to Latency and Fault.
const (
	OpIdentity      = "Identity"
	OpBootstrap     = "Bootstrap"
	OpJoin          = "Join"
	OpAddons        = "Addons"
	OpWaitReady     = "WaitReady"
	OpDrain         = "Drain"
	OpRemove        = "Remove"
	OpStatus        = "Status"
	OpServerVersion = "ServerVersion"
	OpCNI           = "CNI"
	OpEndpoint      = "Endpoint"
	OpKubeconfig    = "AdminKubeconfig"
)

// certificateKey stands in for the key of kubeadm's uploaded control-plane certificates.
const certificateKey = "clustertest-certificate-key"

// caPEM stands in for the cluster CA; it is not a real certificate.
const caPEM = "-----BEGIN CERTIFICATE-----\nclustertest\n-----END CERTIFICATE-----\n"

// Provisioner is an in-memory cluster.Provisioner.
type Provisioner struct {
	// Simulation gives the provisioner Latency and Fault hooks per operation
	// and node, and counts calls.
	double.Simulation

	mu            sync.Mutex
	bootstrapped  bool
	serverVersion string
	cni           cluster.CNI // installed by the first bootstrap, as the agent does
	endpoint      string
	ca            *pki.CA
	joined        map[string]bool
	nodes         map[string]cluster.NodeStatus // what each joined node reports
	drained       []string
	removed       []string
}

// NewProvisioner makes a provisioner with no cluster yet.
func NewProvisioner() *Provisioner {
	return &Provisioner{joined: map[string]bool{}, nodes: map[string]cluster.NodeStatus{}}
}

var _ cluster.Provisioner = (*Provisioner)(nil)

// Identity implements cluster.Provisioner.
func (p *Provisioner) Identity(ctx context.Context, t cluster.Target) (clouds.NodeIdentity, error) {
	if err := p.Enter(ctx, OpIdentity, t.Node.Name); err != nil {
		return clouds.NodeIdentity{}, err
	}
	return clouds.NodeIdentity{AdminUser: "clustertest"}, nil
}

// Bootstrap implements cluster.Provisioner.
func (p *Provisioner) Bootstrap(ctx context.Context, t cluster.Target) (cluster.JoinInfo, error) {
	if err := p.Enter(ctx, OpBootstrap, t.Node.Name); err != nil {
		return cluster.JoinInfo{}, err
	}
	if t.Instance.State != clouds.StateRunning {
		return cluster.JoinInfo{}, fmt.Errorf("bootstrap %s: instance is %q, not running", t.Node.Name, t.Instance.State)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bootstrapped = true
	// Bootstrapping a running first node again with a new release is its
	// agent's kubeadm upgrade apply.
	p.serverVersion = "v" + t.Spec.KubernetesVersion
	if p.cni == "" {
		p.cni = t.Spec.WithDefaults().Network.CNI
	}
	p.joined[t.Node.Name] = true
	p.nodes[t.Node.Name] = reported(t)
	t.Report("control plane initialised")
	p.endpoint = t.APIEndpoint
	if p.endpoint == "" {
		p.endpoint = t.Instance.PrivateIP + ":6443"
	}
	return cluster.JoinInfo{APIEndpoint: p.endpoint, BootstrapToken: "abcdef.0123456789abcdef", CACertHashes: []string{"sha256:00"}, CACertPEM: caPEM, CertificateKey: certificateKey}, nil
}

// Join implements cluster.Provisioner.
func (p *Provisioner) Join(ctx context.Context, t cluster.Target, j cluster.JoinInfo) error {
	if err := p.Enter(ctx, OpJoin, t.Node.Name); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.bootstrapped || j.BootstrapToken == "" {
		return fmt.Errorf("join %s: the control plane is not bootstrapped", t.Node.Name)
	}
	if t.Node.Role == clouds.RoleControlPlane {
		// kubeadm join --control-plane refuses a cluster without a
		// controlPlaneEndpoint, and needs the key of the uploaded certificates.
		if t.APIEndpoint == "" || j.APIEndpoint != t.APIEndpoint {
			return fmt.Errorf("join %s as a control-plane node: the cluster's API endpoint %q is not a stable controlPlaneEndpoint (target's %q)", t.Node.Name, j.APIEndpoint, t.APIEndpoint)
		}
		if j.CertificateKey == "" {
			return fmt.Errorf("join %s as a control-plane node: no certificate key", t.Node.Name)
		}
	}
	p.joined[t.Node.Name] = true
	p.nodes[t.Node.Name] = reported(t)
	t.Report("joined")
	return nil
}

// Addons implements cluster.Provisioner.
func (p *Provisioner) Addons(ctx context.Context, spec cluster.Spec, j cluster.JoinInfo) error {
	return p.Enter(ctx, OpAddons, "")
}

// WaitReady implements cluster.Provisioner: every named node must have joined.
func (p *Provisioner) WaitReady(ctx context.Context, spec cluster.Spec, names []string) error {
	if err := p.Enter(ctx, OpWaitReady, ""); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		if !p.joined[n] {
			return fmt.Errorf("node %s never became Ready: it has not joined", n)
		}
	}
	return nil
}

// Drain implements cluster.Provisioner.
func (p *Provisioner) Drain(ctx context.Context, spec cluster.Spec, name string) error {
	if err := p.Enter(ctx, OpDrain, name); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drained = append(p.drained, name)
	return nil
}

// Remove implements cluster.Provisioner.
func (p *Provisioner) Remove(ctx context.Context, spec cluster.Spec, name string) error {
	if err := p.Enter(ctx, OpRemove, name); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.joined, name)
	delete(p.nodes, name)
	p.removed = append(p.removed, name)
	return nil
}

// Status implements cluster.Provisioner. A node whose instance is gone keeps
// its Node object, NotReady, as in a real cluster.
func (p *Provisioner) Status(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (map[string]cluster.NodeStatus, error) {
	if err := p.Enter(ctx, OpStatus, ""); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	running := map[string]bool{}
	for _, in := range instances {
		running[in.Name] = in.State == clouds.StateRunning
	}
	out := map[string]cluster.NodeStatus{}
	for name := range p.joined {
		st := p.nodes[name]
		st.Joined, st.Ready = true, running[name] && st.Since.IsZero()
		out[name] = st
	}
	return out, nil
}

// reported is what a node's kubelet reports once it joined.
func reported(t cluster.Target) cluster.NodeStatus {
	st := cluster.NodeStatus{KubeletVersion: "v" + t.Spec.KubernetesVersion}
	if t.Node.OS == cluster.Windows {
		st.WindowsBuild = contract.WindowsBuilds[t.Node.WindowsVersion]
	}
	return st
}

// SetNotReady makes a joined node report NotReady since a time, as a
// kubelet that stopped posting status does; false when it has not joined.
func (p *Provisioner) SetNotReady(name string, since time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.joined[name] {
		return false
	}
	st := p.nodes[name]
	st.Since = since
	p.nodes[name] = st
	return true
}

// ServerVersion is the version the control plane was last bootstrapped
// (or upgraded) with, or the one SetServerVersion set; "" before bootstrap.
func (p *Provisioner) ServerVersion(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (string, error) {
	if err := p.Enter(ctx, OpServerVersion, ""); err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serverVersion, nil
}

// CNI is the pod network the first bootstrap installed; "" before it.
func (p *Provisioner) CNI(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (cluster.CNI, error) {
	if err := p.Enter(ctx, OpCNI, ""); err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cni, nil
}

// SetServerVersion makes the API server report a version, as an upgrade
// done outside the library would.
func (p *Provisioner) SetServerVersion(v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serverVersion = v
}

// SetKubeletVersion makes a joined node's kubelet report a version.
func (p *Provisioner) SetKubeletVersion(name, v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.nodes[name]
	st.KubeletVersion = v
	p.nodes[name] = st
}

// Endpoint implements cluster.Provisioner.
func (p *Provisioner) Endpoint(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (cluster.Endpoint, bool, error) {
	if err := p.Enter(ctx, OpEndpoint, ""); err != nil {
		return cluster.Endpoint{}, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.bootstrapped {
		return cluster.Endpoint{}, false, nil
	}
	return cluster.Endpoint{APIEndpoint: p.endpoint, CACertPEM: caPEM}, true, nil
}

// AdminKubeconfig implements cluster.Provisioner with a kubeconfig that names
// the endpoint and carries a client certificate valid for validity, signed
// by the double's own CA (not the placeholder the endpoint reports).
func (p *Provisioner) AdminKubeconfig(ctx context.Context, spec cluster.Spec, instances []clouds.Instance, validity time.Duration) ([]byte, error) {
	if err := p.Enter(ctx, OpKubeconfig, ""); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.bootstrapped {
		return nil, fmt.Errorf("cluster %q has no control plane yet; fix: apply it first", spec.Name)
	}
	if p.ca == nil {
		ca, err := pki.NewCA(spec.Name, time.Now())
		if err != nil {
			return nil, err
		}
		p.ca = ca
	}
	return p.ca.AdminKubeconfig(spec.Name, "https://"+p.endpoint, validity, time.Now())
}

// MutatingCalls counts the calls that change nodes.
func (p *Provisioner) MutatingCalls() int {
	n := 0
	for op, k := range p.Calls() {
		if op == OpBootstrap || op == OpJoin || op == OpAddons || op == OpDrain || op == OpRemove {
			n += k
		}
	}
	return n
}

// Drained lists drained nodes in the order they were drained.
func (p *Provisioner) Drained() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.drained)
}

// Joined lists the nodes that joined, sorted.
func (p *Provisioner) Joined() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.joined))
}
