package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Provisioner turns running instances into Kubernetes nodes and reads their
// Kubernetes-level state. The default one pushes the node agent over SSH or
// WinRM; clustertest.Provisioner is an in-memory double. Every method is
// idempotent: Apply calls them again after any failure.
type Provisioner interface {
	// Identity returns what a node's first boot installs (host key or certificate, admin login);
	// the cloud renders it as its first-boot data. Every call for a node returns what the provisioner will pin.
	Identity(ctx context.Context, t Target) (clouds.NodeIdentity, error)
	// Bootstrap creates the cluster on the first control-plane node, or reads it back when it exists.
	Bootstrap(ctx context.Context, t Target) (JoinInfo, error)
	// Join makes the node part of the cluster.
	Join(ctx context.Context, t Target, j JoinInfo) error
	// Addons installs what the whole cluster needs: the CNI for both OSes, RuntimeClasses.
	Addons(ctx context.Context, spec Spec, j JoinInfo) error
	// WaitReady returns once every named node is Ready.
	WaitReady(ctx context.Context, spec Spec, names []string) error
	// Drain cordons a node and evicts its pods before its instance is deleted.
	Drain(ctx context.Context, spec Spec, name string) error
	// Remove deletes the Node object of a node whose instance is gone; a
	// control-plane node's etcd member goes first, through the running control plane.
	Remove(ctx context.Context, spec Spec, name string) error
	// Status reports which nodes joined and which are Ready.
	Status(ctx context.Context, spec Spec, instances []clouds.Instance) (map[string]NodeStatus, error)
	// Endpoint returns how clients reach a bootstrapped cluster, and false before bootstrap.
	Endpoint(ctx context.Context, spec Spec, instances []clouds.Instance) (Endpoint, bool, error)
	// AdminKubeconfig issues a cluster-admin kubeconfig that works for validity. Secret.
	AdminKubeconfig(ctx context.Context, spec Spec, instances []clouds.Instance, validity time.Duration) ([]byte, error)
}

// Endpoint is how clients reach the cluster's API server.
type Endpoint struct {
	// APIEndpoint is "host:port": the API load balancer on a cloud that has
	// one, otherwise the first control-plane node.
	APIEndpoint string
	// CACertPEM is the cluster CA that signs the API server's certificate.
	CACertPEM string
}

// URL is the API server's address as kubeconfig and kubectl write it: "https://host:port".
func (e Endpoint) URL() string {
	if e.APIEndpoint == "" {
		return ""
	}
	return "https://" + e.APIEndpoint
}

// Target is one node and the instance it runs on.
type Target struct {
	Spec     Spec
	Node     Node
	Instance clouds.Instance
	// APIEndpoint is the API load balancer's "host:port", the cluster's
	// controlPlaneEndpoint; empty on a cloud without one, where the first
	// control-plane node's address serves.
	APIEndpoint string
	// Report passes the node's own progress (agent steps, reboots) to the caller's events.
	Report func(message string)
}

// NodeStatus is a node's Kubernetes-level state.
type NodeStatus struct {
	// Joined: a Node object exists for it.
	Joined bool
	Ready  bool
	// Since is when the node's Ready condition last changed; zero when unknown.
	Since time.Time
	// KubeletVersion is what the node's kubelet reports, e.g. "v1.36.3".
	KubeletVersion string
	// WindowsBuild is a Windows node's build label, e.g. "10.0.20348"; empty on Linux.
	WindowsBuild string
}

// JoinInfo is what joining nodes need. It holds secrets; its String method
// redacts them so it is safe in logs and errors by accident.
type JoinInfo struct {
	APIEndpoint    string
	BootstrapToken string
	CACertHashes   []string
	CACertPEM      string
	CertificateKey string
}

// String redacts the secrets.
func (j JoinInfo) String() string {
	return fmt.Sprintf("JoinInfo{APIEndpoint: %q, BootstrapToken: <redacted>, CACertHashes: %q, CertificateKey: <redacted>}", j.APIEndpoint, j.CACertHashes)
}

// GoString redacts the secrets from %#v too.
func (j JoinInfo) GoString() string { return j.String() }
