// Package contract is the versioned JSON contract between the provisioner
// (the cluster library) and the node agent: the agent's config, the progress
// lines it prints on stdout, the status it reports, the versions manifest it
// downloads from, and its exit codes.
//
// Both sides import this package, so a field renamed here is renamed on both
// sides at once. A change that an older agent cannot read bumps APIVersion.
package contract

import (
	"time"
)

// APIVersion is written in every config, event and status.
const APIVersion = "nodeagent.mixedk8s.io/v1"

// Exit codes of the agent.
const (
	// ExitOK: the command finished; for apply, the node is configured.
	ExitOK = 0
	// ExitFailed: a step failed; the last event and `status` say which and why.
	ExitFailed = 1
	// ExitUsage: bad arguments or a config that does not validate; stderr names the field.
	ExitUsage = 2
	// ExitRebooting: the node is rebooting to finish; the agent resumes at
	// boot by itself, and the provisioner polls `status` after reconnecting.
	ExitRebooting = 3
)

// WindowsBuilds maps each supported Windows Server version to the build its
// nodes report as node.kubernetes.io/windows-build, which a Windows
// container's base image must match. The agent labels Windows nodes with it
// and the provisioner makes the RuntimeClasses that select them from it, so
// both read this one map. Never write to it.
var WindowsBuilds = map[string]string{"2019": "10.0.17763", "2022": "10.0.20348", "2025": "10.0.26100"}

// LabelIsolation is the label the agent puts on Windows nodes with their
// container isolation ("process" or "hyperv"); the Hyper-V RuntimeClasses
// select nodes by it.
const LabelIsolation = "mixedk8s.io/isolation"

// LabelPool is the label the agent puts on every node with its pool's name,
// so workloads and the cluster's own checks can select a pool.
const LabelPool = "mixedk8s.io/pool"

// Role is what the node does in the cluster.
type Role string

const (
	// RoleInit is the first control-plane node: it runs kubeadm init.
	RoleInit Role = "control-plane-init"
	// RoleControlPlane joins an existing control plane.
	RoleControlPlane Role = "control-plane"
	// RoleWorker joins as a worker.
	RoleWorker Role = "worker"
)

// Config is what the provisioner writes next to the agent and passes with
// --config. It holds secrets (tokens, keys): the agent writes it owner-only
// and never prints it.
type Config struct {
	APIVersion string    `json:"apiVersion"`
	Node       Node      `json:"node"`
	Cluster    Cluster   `json:"cluster"`
	Init       *Init     `json:"init,omitempty"`
	Join       *Join     `json:"join,omitempty"`
	Artifacts  Artifacts `json:"artifacts"`
}

// Node is the node this agent turns the machine into.
type Node struct {
	// Name is the Kubernetes node name (the kubelet's --hostname-override).
	Name string `json:"name"`
	// ComputerName is a Windows node's computer (NetBIOS) name, at most 15
	// characters; empty means Name. Linux nodes keep their hostname.
	ComputerName string `json:"computerName,omitempty"`
	Role         Role   `json:"role"`
	// OS is "linux" or "windows".
	OS string `json:"os"`
	// WindowsVersion is "2019", "2022" or "2025" on Windows.
	WindowsVersion string `json:"windowsVersion,omitempty"`
	// Isolation is "process" or "hyperv" on Windows.
	Isolation string `json:"isolation,omitempty"`
	Pool      string `json:"pool"`
	// PrivateIP is the address the node registers with and other nodes reach it on.
	PrivateIP string            `json:"privateIP,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Taints as "key=value:Effect" or "key:Effect".
	Taints []string `json:"taints,omitempty"`
}

// Cluster is what every node must know about the cluster.
type Cluster struct {
	Name              string `json:"name"`
	KubernetesVersion string `json:"kubernetesVersion"`
	// APIEndpoint is host:port of the API server (a load balancer or the first control-plane node).
	APIEndpoint string `json:"apiEndpoint"`
	// CNI is "calico" or "flannel".
	CNI         string `json:"cni"`
	NodeCIDR    string `json:"nodeCIDR"`
	PodCIDR     string `json:"podCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
	// DNSDomain is the cluster's DNS domain, "cluster.local" by default.
	DNSDomain string `json:"dnsDomain,omitempty"`
}

// Init is what the first control-plane node needs to create the cluster. The
// provisioner generates the CA so it can trust the API server it creates.
type Init struct {
	// CACertPEM and CAKeyPEM are the cluster CA (kubernetes-ca). Secret: the key.
	CACertPEM string `json:"caCertPEM"`
	CAKeyPEM  string `json:"caKeyPEM"`
	// BootstrapToken is "abcdef.0123456789abcdef" with a short TTL. Secret.
	BootstrapToken string `json:"bootstrapToken"`
	// BootstrapTokenTTL is how long the token lives, e.g. "1h".
	BootstrapTokenTTL string `json:"bootstrapTokenTTL,omitempty"`
	// CertificateKey encrypts the control-plane certificates kubeadm uploads
	// for other control-plane nodes (hex, 32 bytes). Secret.
	CertificateKey string `json:"certificateKey,omitempty"`
	// APIServerSANs are extra names and addresses for the API server certificate.
	APIServerSANs []string `json:"apiServerSANs,omitempty"`
}

// Join is what a joining node needs.
type Join struct {
	// BootstrapToken authenticates the TLS bootstrap. Secret.
	BootstrapToken string `json:"bootstrapToken"`
	// CACertHashes pin the cluster CA ("sha256:<hex>" of its public key), as kubeadm does.
	CACertHashes []string `json:"caCertHashes"`
	// CACertPEM is the cluster CA, for nodes that join without kubeadm (Windows).
	CACertPEM string `json:"caCertPEM,omitempty"`
	// CertificateKey decrypts the uploaded control-plane certificates; control-plane joins only. Secret.
	CertificateKey string `json:"certificateKey,omitempty"`
}

// Artifacts says where to download from.
type Artifacts struct {
	// MirrorBaseURL replaces the origin (scheme and host) of every artifact URL. Empty: the publishers' URLs.
	MirrorBaseURL string `json:"mirrorBaseURL,omitempty"`
	// TrustMirrorChecksums makes the mirror's checksum files replace the
	// manifest's pinned digests: only for a mirror that rebuilds artifacts
	// (the lab's stand-ins). A mirror serving the publishers' files needs no such trust.
	TrustMirrorChecksums bool `json:"trustMirrorChecksums,omitempty"`
	// Manifest overrides the manifest built into the agent (a private mirror
	// with its own builds, or the lab). Nil: the built-in one for the version.
	Manifest *Manifest `json:"manifest,omitempty"`
}

// Manifest lists every artifact of one Kubernetes version with its digest.
type Manifest struct {
	KubernetesVersion string     `json:"kubernetesVersion"`
	Artifacts         []Artifact `json:"artifacts"`
}

// Artifact is one file to download and verify.
type Artifact struct {
	// Name is e.g. "kubelet", "kubeadm", "kube-proxy", "containerd", "cni-plugins", "crictl".
	Name    string `json:"name"`
	Version string `json:"version"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	URL     string `json:"url"`
	// SHA256 is the pinned hex digest. Empty means SHA256URL is fetched from
	// the same origin and used instead; the manifest says so per artifact.
	SHA256    string `json:"sha256,omitempty"`
	SHA256URL string `json:"sha256URL,omitempty"`
}

// Phase of one step in an Event.
type Phase string

const (
	PhaseStarted Phase = "started"
	PhaseDone    Phase = "done"
	// PhaseSkipped: the step's effect is already in place.
	PhaseSkipped Phase = "skipped"
	PhaseFailed  Phase = "failed"
	// PhaseReboot: the node reboots now; the agent resumes at boot.
	PhaseReboot Phase = "reboot"
	// PhasePlanned: --dry-run; Changes says what the step would do.
	PhasePlanned Phase = "planned"
)

// Event is one JSON progress line on the agent's stdout. It never carries secrets.
type Event struct {
	APIVersion string    `json:"apiVersion"`
	Time       time.Time `json:"time"`
	Node       string    `json:"node"`
	Step       string    `json:"step"`
	Phase      Phase     `json:"phase"`
	Message    string    `json:"message,omitempty"`
	Error      string    `json:"error,omitempty"`
	// Changes lists the effects the step made or, with --dry-run, would make.
	Changes []string `json:"changes,omitempty"`
}

// NodePhase is where the node is in its life, in Status.
type NodePhase string

const (
	NodeNew       NodePhase = "new"
	NodeApplying  NodePhase = "applying"
	NodeRebooting NodePhase = "rebooting"
	NodeReady     NodePhase = "configured"
	NodeFailed    NodePhase = "failed"
)

// Status is what `nodeagent status` prints: JSON, never secrets.
type Status struct {
	APIVersion string    `json:"apiVersion"`
	Node       string    `json:"node"`
	Phase      NodePhase `json:"phase"`
	StepsDone  []string  `json:"stepsDone"`
	// Versions of what is installed: "kubelet", "containerd", "agent", ...
	Versions  map[string]string `json:"versions,omitempty"`
	Reboots   int               `json:"reboots"`
	LastError string            `json:"lastError,omitempty"`
	UpdatedAt time.Time         `json:"updatedAt"`
	// Watchdog is what the Windows watchdog (`nodeagent watch`) checked
	// last and the repairs it made.
	Watchdog *Watchdog `json:"watchdog,omitempty"`
}

// Watchdog is the Windows watchdog's record in Status.
type Watchdog struct {
	LastCheck time.Time `json:"lastCheck"`
	// LastError is the last pass's failure; empty once a pass succeeds.
	LastError string `json:"lastError,omitempty"`
	// Repairs are the latest passes that changed something, oldest first (at most WatchdogRepairsKept).
	Repairs []Repair `json:"repairs,omitempty"`
}

// WatchdogRepairsKept bounds Watchdog.Repairs.
const WatchdogRepairsKept = 20

// Repair is one watchdog pass that put something back.
type Repair struct {
	Time    time.Time `json:"time"`
	Changes []string  `json:"changes"`
}

// Access is the file `nodeagent access --file FILE` installs: the node's
// lasting login identity, made by the provisioner to replace the one first
// boot installed from data that readers of the instance's attributes can
// see. Secret: the provisioner uploads it owner-only and the agent deletes
// it as soon as it has read it.
type Access struct {
	APIVersion string `json:"apiVersion"`
	// SSHHostKeyPEM is a Linux node's new ed25519 host key (OpenSSH PEM).
	SSHHostKeyPEM string `json:"sshHostKeyPEM,omitempty"`
	// WinRMCertPEM and WinRMKeyPEM are a Windows node's new WinRM HTTPS
	// listener certificate and key.
	WinRMCertPEM string `json:"winrmCertPEM,omitempty"`
	WinRMKeyPEM  string `json:"winrmKeyPEM,omitempty"`
	// AdminUser is the Windows account the provisioner logs in as;
	// AdminPassword its new password.
	AdminUser     string `json:"adminUser,omitempty"`
	AdminPassword string `json:"adminPassword,omitempty"`
}
