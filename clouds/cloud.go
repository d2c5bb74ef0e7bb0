// Package clouds is the seam between the cluster library and a cloud: the
// Cloud interface, the shared types, and the error classification that the
// Apply engine retries on. Each cloud lives in its own package (clouds/aws,
// clouds/azure, clouds/gcp) on that cloud's official SDK; clouds/memory is an
// in-process double for tests.
//
// Every object a Cloud creates carries its cluster's tag, spelled as that
// cloud allows (Profile.Tags), and a deterministic name, so that Ensure*
// calls adopt what exists instead of duplicating it and Delete* calls find
// everything by tag. Requests carry the cluster, pool, role and node; each
// cloud encodes them into its own tag keys.
package clouds

import (
	"context"
	"errors"
	"fmt"
)

// Node roles, the value of the role tag.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// ControlPlanePool is the pool name of control-plane nodes.
const ControlPlanePool = "control-plane"

// Cloud creates, finds and deletes a cluster's network and instances. Every
// method is idempotent: calling it again after any failure converges.
type Cloud interface {
	// Name is "aws", "azure", "gcp" or the name of a double.
	Name() string
	// EnsureNetwork creates or adopts the cluster's network, subnet and firewall rules.
	EnsureNetwork(ctx context.Context, req NetworkRequest) (Network, error)
	// FindNetwork returns the cluster's network found by tag, and false when there is none.
	FindNetwork(ctx context.Context, cluster string) (Network, bool, error)
	// EnsureInstance creates or adopts the instance named req.Name and returns once it runs.
	EnsureInstance(ctx context.Context, req InstanceRequest) (Instance, error)
	// Instances lists the cluster's instances that are not terminated, found by tag.
	Instances(ctx context.Context, cluster string) ([]Instance, error)
	// DeleteInstance terminates an instance; an instance already gone is not an error.
	DeleteInstance(ctx context.Context, inst Instance) error
	// DeleteNetwork deletes every network object tagged with the cluster.
	DeleteNetwork(ctx context.Context, cluster string) error

	// EnsureSecret stores value under the cluster and name unless a value is
	// already there, and returns the stored value, so concurrent and repeated
	// calls agree. The cluster's seed, CA and node certificates live here, so
	// any machine with the cloud credentials can resume or destroy it.
	// The name is logical; the cloud maps it to what its store allows.
	EnsureSecret(ctx context.Context, cluster string, name SecretName, value []byte) ([]byte, error)
	// Secret returns a stored secret, and false when there is none.
	Secret(ctx context.Context, cluster string, name SecretName) ([]byte, bool, error)
	// DeleteSecrets deletes every secret of the cluster.
	DeleteSecrets(ctx context.Context, cluster string) error
}

// NetworkRequest is the cluster's network as the cloud must build it.
type NetworkRequest struct {
	Cluster  string
	NodeCIDR string
	// AdminCIDRs may reach SSH, WinRM and the API server.
	AdminCIDRs []string
	// PodCIDR is routed inside the cluster (overlay), never exposed.
	PodCIDR string
	// NodeTCPPorts are TCP ports every node serves to the cluster's other
	// nodes beyond the kubelet's, such as Calico's Typha (5473).
	NodeTCPPorts []int
}

// Network is what EnsureNetwork made or found.
type Network struct {
	ID       string
	SubnetID string
	// SubnetIDs are all the subnets the cluster's nodes go in, SubnetID
	// first; nil where the cloud has one subnet only.
	SubnetIDs []string
	// Firewalls are the cloud's firewall objects by node role, when the
	// cloud has per-role ones.
	Firewalls RoleFirewalls
}

// RoleFirewalls name a cloud firewall object (whatever the cloud calls it)
// per node role.
type RoleFirewalls struct {
	ControlPlane, Worker string
}

// For returns the firewall of a role (RoleControlPlane or RoleWorker).
func (f RoleFirewalls) For(role string) string {
	if role == RoleControlPlane {
		return f.ControlPlane
	}
	return f.Worker
}

// InstanceRequest describes one node's virtual machine.
type InstanceRequest struct {
	Cluster string
	// Name is the deterministic node name; it is also the idempotency key.
	Name string
	Pool string
	Role string
	OS   string // "linux" | "windows"
	// WindowsVersion is "2019" | "2022" | "2025" for Windows instances.
	WindowsVersion string
	// ComputerName is the Windows computer name the first boot sets (at most
	// 15 characters, NetBIOS); the Kubernetes node name stays Name. Empty: Name.
	ComputerName string
	InstanceType string
	DiskGB       int
	// Image overrides the cloud's default image for the OS and version.
	Image string
	// NestedVirtualization is required for Hyper-V isolated containers.
	NestedVirtualization bool
	// Identity is what the instance's first boot installs so the provisioner
	// can reach and trust it; the cloud renders it in its own first-boot
	// format (cloud-init, EC2Launch, custom data, metadata scripts). A zero
	// identity boots the image as it is.
	Identity NodeIdentity
	Network  Network
}

// NodeIdentity is the identity the provisioner generated for one node: the
// SSH host key or WinRM certificate it pins, and the admin login it uses.
// Secrets: the cloud puts it in first-boot data and never logs it.
type NodeIdentity struct {
	// AdminUser is the account the provisioner logs in as.
	AdminUser string
	// SSHHostKeyPEM is the Linux node's ed25519 host key (OpenSSH PEM). Secret.
	SSHHostKeyPEM string
	// SSHAuthorizedKeys may log in as AdminUser on a Linux node.
	SSHAuthorizedKeys []string
	// WinRMCertPEM and WinRMKeyPEM are the Windows node's WinRM HTTPS listener certificate; the key is secret.
	WinRMCertPEM string
	WinRMKeyPEM  string
	// AdminPassword is AdminUser's password on a Windows node. Secret.
	AdminPassword string
}

// String redacts the secrets, so an identity printed by accident leaks nothing.
func (id NodeIdentity) String() string {
	return fmt.Sprintf("NodeIdentity{AdminUser: %q, SSHAuthorizedKeys: %d, secrets redacted}", id.AdminUser, len(id.SSHAuthorizedKeys))
}

// GoString redacts %#v too.
func (id NodeIdentity) GoString() string { return id.String() }

// Instance states, normalised across clouds.
const (
	StatePending  = "pending"
	StateRunning  = "running"
	StateStopping = "stopping"
	StateStopped  = "stopped"
	StateDeleting = "deleting"
)

// Instance is one virtual machine as the cloud reports it.
type Instance struct {
	ID string
	// Incarnation tells this instance from an earlier one under the same
	// ID (Azure keeps a VM's resource ID when it is made again with its name,
	// and gives the new VM a new vmId); empty where the ID is never reused.
	Incarnation string
	// Cluster, Name, Pool and Role are read back from the instance's tags.
	Cluster      string
	Name         string
	Pool         string
	Role         string
	OS           string
	InstanceType string
	// Image is the image the instance was made from, as the spec names
	// one; empty where the cloud's listing does not say.
	Image string
	// WindowsVersion is the Windows Server release ("2022") of a Windows
	// instance; empty on Linux and where the cloud's listing does not say.
	WindowsVersion string
	// DiskGB is the size of the boot disk; 0 where the listing does not say.
	DiskGB    int
	State     string
	PrivateIP string
	PublicIP  string
	// Tags are the instance's tags as the cloud spells them.
	Tags map[string]string
}

// Kind classifies a cloud error for retries and for the message the user sees.
type Kind int

const (
	// KindFatal: retrying cannot help; the user must change something.
	KindFatal Kind = iota
	// KindThrottled: the API asked us to slow down; retry with backoff.
	KindThrottled
	// KindTransient: a 5xx, a dropped connection, an eventual-consistency miss; retry.
	KindTransient
	// KindCapacity: the zone has no capacity for the instance type; a different type or zone is needed.
	KindCapacity
	// KindQuota: an account limit; raise the quota or ask for fewer resources.
	KindQuota
	// KindAuth: credentials missing or lacking a permission.
	KindAuth
	// KindInvalid: the request is malformed for this cloud.
	KindInvalid
	// KindNotFound: the object does not exist.
	KindNotFound
)

func (k Kind) String() string {
	switch k {
	case KindThrottled:
		return "throttled"
	case KindTransient:
		return "transient"
	case KindCapacity:
		return "capacity"
	case KindQuota:
		return "quota"
	case KindAuth:
		return "auth"
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not found"
	}
	return "fatal"
}

// Retryable reports whether waiting and trying again can succeed.
func (k Kind) Retryable() bool { return k == KindThrottled || k == KindTransient }

// Error is a classified cloud error. It keeps the cloud's own code and says
// which field or permission to change.
type Error struct {
	Kind Kind
	// Code is the cloud's error code, e.g. "InsufficientInstanceCapacity".
	Code string
	// Op is the API operation, e.g. "RunInstances".
	Op string
	// Object names what was being acted on, e.g. `instance "demo-win-0"`.
	Object string
	// Fix says what the user can change; empty for retryable kinds.
	Fix string
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Op, e.Object, e.Kind)
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Fix != "" {
		msg += "; fix: " + e.Fix
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a classified error anywhere in err's chain, and
// KindFatal for an unclassified one.
func KindOf(err error) Kind {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Kind
	}
	return KindFatal
}
