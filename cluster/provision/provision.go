// Package provision is the cluster.Provisioner that turns instances into
// Kubernetes nodes by pushing the node agent: over SSH to Linux nodes and
// over WinRM (HTTPS) to Windows nodes, directly or through the spec's SSH
// bastion. It pins every node's identity, streams the agent's progress, and
// survives the Windows reboot by reconnecting and reading the agent's status.
//
// Identities come from one random seed per cluster kept in the cloud's
// secret store, with the cluster CA and each Windows node's certificate, so
// any machine with the cloud credentials can resume, import or destroy the
// cluster, and a crash between creating an instance and recording its
// identity loses nothing.
//
// Kubernetes-level work goes to the API server with client-go: join tokens
// (bootstrap token Secrets, as kubeadm makes them), the RuntimeClasses for
// every Windows build and isolation, node status (one Node listing), waiting
// for Ready, cordon and drain (kubectl's drain package) before a scale-down
// deletes an instance, and deleting the Node after. The API server is the
// first control-plane node's private address on port 6443, reached the way
// nodes are (Config.Dial, or an SSH direct-tcpip channel through the spec's
// bastion, which also serves clusters with no public endpoint), trusted by
// the cluster CA alone. The provisioner authenticates with a client
// certificate it issues itself from that CA, short-lived and kept in memory,
// in the group kubeadm binds to cluster-admin. One client is kept per
// cluster and endpoint until Close.
package provision

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/kubernetes"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/transport"
)

// Config sets up a Provisioner.
type Config struct {
	// Cloud finds the cluster's instances for Kubernetes-level work.
	Cloud clouds.Cloud
	// Secrets keeps the cluster's seed, CA and node certificates; usually the Cloud.
	Secrets Secrets
	// Agents returns the agent binary for a platform; nil means the embedded bundle.
	Agents func(goos, goarch string) (bundle.Binary, error)
	// Dial, when set, reaches node addresses instead of the spec's bastion or a direct connection.
	Dial transport.DialFunc
	// BastionSigner, when set, authenticates to the spec's bastion instead of
	// access.bastion.private_key_file (a key held in memory, e.g. Terraform's).
	BastionSigner ssh.Signer
	// Manifest overrides the agent's built-in versions manifest (a mirror with its own builds, the lab).
	Manifest *contract.Manifest
	// RebootWait is how long to wait before reconnecting to a rebooting node; 0 means 5s.
	RebootWait time.Duration
	// StatusPoll is the longest wait between asking a rebooting node's agent
	// for its status, and between asking the API server whether the nodes
	// are Ready; waits grow from 1s to it. 0 means 10s.
	StatusPoll time.Duration
	// ConnectTimeout bounds reaching one node, boot included; 0 means 15m.
	ConnectTimeout time.Duration
	// DrainTimeout bounds one drain, evictions a PodDisruptionBudget refuses
	// included (a drain that runs out names the budget); 0 means 10m.
	DrainTimeout time.Duration
}

// Provisioner implements cluster.Provisioner by pushing the node agent and
// asking the cluster's API server.
type Provisioner struct {
	cfg Config

	seedMu   sync.Mutex
	mu       sync.Mutex
	seeds    map[string][]byte
	certs    map[string][]byte // WinRM certificate and key by cluster/node
	bastions map[string]*bastion
	kubes    map[string]*kubeAPI                // API clients by cluster, endpoint and bastion
	observed map[string]clouds.ObservedIdentity // by instance ID, on clouds whose nodes make their own identity
	lbs      map[string]lbLookup                // API load balancers by cluster
	lasting  map[string]bool                    // cluster/instance ID/epoch: holds its lasting identity
	// installing serialises identity installs by instance ID.
	installing map[string]*sync.Mutex

	// testKube, when set, replaces the API client of a cluster (tests without an API server).
	testKube func(cluster string) kubernetes.Interface
}

var _ cluster.Provisioner = (*Provisioner)(nil)

// New makes a Provisioner.
func New(cfg Config) (*Provisioner, error) {
	if cfg.Cloud == nil || cfg.Secrets == nil {
		return nil, errors.New("provision: Config.Cloud and Config.Secrets are required; fix: pass the cloud for both (it lists instances and keeps the cluster's secrets)")
	}
	if cfg.Agents == nil {
		cfg.Agents = bundle.Agent
	}
	if cfg.RebootWait <= 0 {
		cfg.RebootWait = 5 * time.Second
	}
	if cfg.StatusPoll <= 0 {
		cfg.StatusPoll = 10 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = drainTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Minute
	}
	return &Provisioner{cfg: cfg, seeds: map[string][]byte{}, certs: map[string][]byte{}, bastions: map[string]*bastion{}, kubes: map[string]*kubeAPI{}, observed: map[string]clouds.ObservedIdentity{}, lbs: map[string]lbLookup{}, lasting: map[string]bool{}, installing: map[string]*sync.Mutex{}}, nil
}

// Close drops the API clients' and the bastions' connections.
func (p *Provisioner) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.kubes {
		c.close()
		delete(p.kubes, k)
	}
	for k, b := range p.bastions {
		b.close()
		delete(p.bastions, k)
	}
	return nil
}

// Identity implements cluster.Provisioner.
func (p *Provisioner) Identity(ctx context.Context, t cluster.Target) (clouds.NodeIdentity, error) {
	return p.identity(ctx, t.Spec.Name, t.Node.Name, t.Spec.SecretsEpoch, t.Node.OS == cluster.Windows, t.Spec.Access.SSHPublicKeys)
}

// Bootstrap implements cluster.Provisioner: it runs the agent with the init
// role on the first control-plane node, then creates a fresh join token
// through the API server.
func (p *Provisioner) Bootstrap(ctx context.Context, t cluster.Target) (cluster.JoinInfo, error) {
	ca, err := p.ca(ctx, t.Spec.Name)
	if err != nil {
		return cluster.JoinInfo{}, err
	}
	token, err := p.initToken(ctx, t.Spec.Name)
	if err != nil {
		return cluster.JoinInfo{}, err
	}
	certKey, err := p.certificateKey(ctx, t.Spec.Name)
	if err != nil {
		return cluster.JoinInfo{}, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return cluster.JoinInfo{}, err
	}
	cfg := p.agentConfig(t)
	cfg.Node.Role = contract.RoleInit
	cfg.Init = &contract.Init{
		CACertPEM:         string(ca.CertPEM()),
		CAKeyPEM:          string(keyPEM),
		BootstrapToken:    token,
		BootstrapTokenTTL: "2h",
		CertificateKey:    certKey,
		APIServerSANs:     sans(t),
	}
	if err := p.runAgent(ctx, t, cfg); err != nil {
		return cluster.JoinInfo{}, err
	}
	fresh, err := p.joinToken(ctx, t)
	if err != nil {
		return cluster.JoinInfo{}, err
	}
	return p.joinInfo(cfg.Cluster.APIEndpoint, ca, fresh, certKey), nil
}

// Join implements cluster.Provisioner.
func (p *Provisioner) Join(ctx context.Context, t cluster.Target, j cluster.JoinInfo) error {
	cfg := p.agentConfig(t)
	cfg.Cluster.APIEndpoint = j.APIEndpoint
	cfg.Node.Role = contract.RoleWorker
	cfg.Join = &contract.Join{BootstrapToken: j.BootstrapToken, CACertHashes: j.CACertHashes, CACertPEM: j.CACertPEM}
	if t.Node.Role == clouds.RoleControlPlane {
		cfg.Node.Role = contract.RoleControlPlane
		cfg.Join.CertificateKey = j.CertificateKey
		// kubeadm join --control-plane downloads the certificates uploaded
		// with the key; they are gone two hours after an upload.
		if err := p.ensureUploadedCerts(ctx, t, j.CertificateKey); err != nil {
			return err
		}
	}
	return p.runAgent(ctx, t, cfg)
}

// agentConfig is the part of a node's agent config every role shares.
func (p *Provisioner) agentConfig(t cluster.Target) contract.Config {
	s := t.Spec
	n := t.Node
	cfg := contract.Config{
		APIVersion: contract.APIVersion,
		Node: contract.Node{
			Name:      n.Name,
			OS:        string(n.OS),
			Pool:      n.Pool,
			PrivateIP: t.Instance.PrivateIP,
			Labels:    n.Labels,
			Taints:    n.Taints,
		},
		Cluster: contract.Cluster{
			Name:              s.Name,
			KubernetesVersion: s.KubernetesVersion,
			CNI:               string(s.Network.CNI),
			NodeCIDR:          s.Network.NodeCIDR,
			PodCIDR:           s.Network.PodCIDR,
			ServiceCIDR:       s.Network.ServiceCIDR,
		},
		Artifacts: contract.Artifacts{MirrorBaseURL: s.Artifacts.MirrorBaseURL, TrustMirrorChecksums: s.Artifacts.TrustMirrorChecksums, Manifest: p.cfg.Manifest},
	}
	if n.OS == cluster.Windows {
		cfg.Node.WindowsVersion, cfg.Node.Isolation = n.WindowsVersion, string(n.Isolation)
		cfg.Node.ComputerName = n.ComputerName
	}
	switch {
	case t.APIEndpoint != "":
		cfg.Cluster.APIEndpoint = t.APIEndpoint
	case t.Instance.PrivateIP != "":
		cfg.Cluster.APIEndpoint = net.JoinHostPort(t.Instance.PrivateIP, apiPort)
	}
	return cfg
}

// sans are the API server certificate's extra names: the node's addresses
// and name, and the load balancer's address that every client dials.
func sans(t cluster.Target) []string {
	lb, _, _ := net.SplitHostPort(t.APIEndpoint)
	var out []string
	for _, a := range []string{lb, t.Instance.PrivateIP, t.Instance.PublicIP, t.Instance.Name} {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}
