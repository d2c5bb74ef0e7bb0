package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
)

// Spec is the desired state of one cluster: a Linux control plane and any
// number of Linux and Windows worker pools on exactly one cloud.
//
// JSON and YAML field names are the same snake_case names the Terraform
// resource uses, so a spec reads the same in HCL, JSON and YAML.
type Spec struct {
	// Name is the cluster name: DNS-1123 label, at most 20 characters, because
	// Windows computer names derived from it must fit in 15.
	Name string `json:"name"`
	// KubernetesVersion is a release such as "1.36.3", or a minor such as
	// "1.36", which WithDefaults resolves to the newest release of it this
	// build has pinned artifacts for.
	KubernetesVersion string `json:"kubernetes_version"`

	// Exactly one of Azure, AWS, GCP.
	Azure *AzureSpec `json:"azure,omitempty"`
	AWS   *AWSSpec   `json:"aws,omitempty"`
	GCP   *GCPSpec   `json:"gcp,omitempty"`

	Network      NetworkSpec         `json:"network"`
	ControlPlane ControlPlaneSpec    `json:"control_plane"`
	NodePools    map[string]PoolSpec `json:"node_pools,omitempty"`
	Access       AccessSpec          `json:"access"`
	Artifacts    ArtifactsSpec       `json:"artifacts"`
	// Tags go on every object the cloud creates for the cluster, beside its
	// own (AWS tags, Azure tags, GCP labels), checked against the cloud's
	// rules; keys starting with "mixedk8s" are reserved. The cloud takes
	// them in its Config (Tags), as the provider does from this field.
	Tags map[string]string `json:"tags,omitempty"`
	// SecretsEpoch picks the generation of every node identity derived from
	// the cluster's seed: SSH host keys, WinRM certificates and Windows
	// admin passwords. Raising it rotates them node by node in place (Plan
	// shows each); 0, the default, keeps the identities clusters were made
	// with. It only grows: an epoch once left is never used again.
	SecretsEpoch int `json:"secrets_epoch,omitempty"`
}

// AzureSpec places the cluster in one Azure subscription and region.
type AzureSpec struct {
	SubscriptionID string `json:"subscription_id"`
	Location       string `json:"location"`
	ResourceGroup  string `json:"resource_group"`
	// DiskEncryptionSetID, when set, is the resource ID of a disk
	// encryption set whose customer-managed key encrypts every node's OS
	// disk; empty leaves them on platform-managed keys. The cluster's
	// secrets stay in the Key Vault the cloud is configured with, under
	// that vault's own protection.
	DiskEncryptionSetID string `json:"disk_encryption_set_id,omitempty"`
	// SubnetID, when set, is the resource ID of an existing subnet (same
	// subscription and location) the nodes go in: the cluster creates no
	// virtual network, only its network security groups, and Destroy
	// leaves the virtual network and the subnet.
	SubnetID string `json:"subnet_id,omitempty"`
}

// AWSSpec places the cluster in one AWS region.
type AWSSpec struct {
	Region string `json:"region"`
	// Zones to spread nodes over; empty means the first zone of the region.
	// Not with SubnetIDs: the nodes' zones are then the subnets' zones.
	Zones []string `json:"zones,omitempty"`
	// KMSKeyID, when set, is the customer-managed KMS key (key ID, key
	// ARN, alias name or alias ARN) that encrypts the cluster's SSM
	// SecureString parameters and every node's root volume; empty uses
	// the AWS managed keys aws/ssm and aws/ebs.
	KMSKeyID string `json:"kms_key_id,omitempty"`
	// VPCID and SubnetIDs place the cluster in an existing network (both or
	// neither): the cluster creates no VPC, subnet, route table or internet
	// gateway, only its security groups in the VPC, and Destroy leaves the
	// VPC and subnets in place. Each subnet is in a zone of its own; nodes
	// are spread over them, and the API load balancer has a leg in each.
	// network.node_cidr is not used then: the security groups admit the
	// subnets' ranges.
	VPCID     string   `json:"vpc_id,omitempty"`
	SubnetIDs []string `json:"subnet_ids,omitempty"`
}

// GCPSpec places the cluster in one GCP project and zone.
type GCPSpec struct {
	Project string `json:"project"`
	Region  string `json:"region"`
	Zone    string `json:"zone"`
	// KMSKeyName, when set, is the Cloud KMS key
	// (projects/P/locations/L/keyRings/R/cryptoKeys/K, L the cluster's
	// region) that encrypts the cluster's Secret Manager secrets, then
	// replicated in the region only, and every node's boot disk; empty
	// uses Google-managed keys.
	KMSKeyName string `json:"kms_key_name,omitempty"`
	// Network and Subnetwork, when set (both or neither), are the names of
	// an existing VPC network of the project and its subnetwork in the
	// region the nodes go in: the cluster creates only its firewall rules
	// there, and Destroy leaves the network and the subnetwork.
	Network    string `json:"network,omitempty"`
	Subnetwork string `json:"subnetwork,omitempty"`
	// NetworkProject, when set with Network, is the Shared VPC host project
	// that holds Network and Subnetwork, Project being one of its service
	// projects: the nodes stay in Project, the firewall rules go in the
	// host project. Empty is Project.
	NetworkProject string `json:"network_project,omitempty"`
}

// CNI names a pod network that has both a Linux and a Windows side.
type CNI string

const (
	CNICalico  CNI = "calico"
	CNIFlannel CNI = "flannel"
)

// NetworkSpec is the cluster's address plan and pod network.
type NetworkSpec struct {
	CNI         CNI    `json:"cni"`
	NodeCIDR    string `json:"node_cidr"`
	PodCIDR     string `json:"pod_cidr"`
	ServiceCIDR string `json:"service_cidr"`
}

// ControlPlaneSpec sizes the Linux control plane.
type ControlPlaneSpec struct {
	Count        int    `json:"count"`
	InstanceType string `json:"instance_type"`
	DiskGB       int    `json:"disk_gb"`
	// Image overrides the cloud's default Ubuntu image.
	Image string `json:"image,omitempty"`
	// Schedulable lets ordinary pods run on control-plane nodes.
	Schedulable bool `json:"schedulable,omitempty"`
}

// OS is a node operating system.
type OS string

const (
	Linux   OS = "linux"
	Windows OS = "windows"
)

// Isolation is how Windows containers are isolated from the host.
type Isolation string

const (
	IsolationProcess Isolation = "process"
	IsolationHyperV  Isolation = "hyperv"
)

// PoolSpec is one group of identical worker nodes.
type PoolSpec struct {
	OS OS `json:"os"`
	// WindowsVersion is "2019", "2022" or "2025"; Windows pools only.
	WindowsVersion string `json:"windows_version,omitempty"`
	// Isolation is "process" or "hyperv"; Windows pools only.
	Isolation    Isolation         `json:"isolation,omitempty"`
	Count        int               `json:"count"`
	InstanceType string            `json:"instance_type"`
	DiskGB       int               `json:"disk_gb"`
	Image        string            `json:"image,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	// Taints as "key=value:Effect" or "key:Effect".
	Taints []string `json:"taints,omitempty"`
	// MaxSurge is how many new nodes a rolling replacement adds above count
	// at once, each Ready before an old one is drained; nil means 1.
	MaxSurge *int `json:"max_surge,omitempty"`
	// MaxUnavailable is how many old nodes a rolling replacement drains and
	// deletes before their replacements are Ready; nil means 0.
	MaxUnavailable *int `json:"max_unavailable,omitempty"`
	// ReplaceNotReadyAfter, a duration such as "15m", replaces a node that
	// has been NotReady for longer; empty means never (a node whose instance
	// is gone or stopped is replaced whatever it says).
	ReplaceNotReadyAfter string `json:"replace_not_ready_after,omitempty"`
}

// Surge returns the pool's max_surge and max_unavailable with their defaults.
func (p PoolSpec) Surge() (maxSurge, maxUnavailable int) {
	maxSurge, maxUnavailable = DefaultMaxSurge, DefaultMaxUnavailable
	if p.MaxSurge != nil {
		maxSurge = *p.MaxSurge
	}
	if p.MaxUnavailable != nil {
		maxUnavailable = *p.MaxUnavailable
	}
	return maxSurge, maxUnavailable
}

// AccessSpec says who may reach the nodes and how.
type AccessSpec struct {
	// AdminCIDRs may reach SSH (22), WinRM (5986) and the API server (6443).
	AdminCIDRs []string `json:"admin_cidrs,omitempty"`
	// SSHPublicKeys are authorised on Linux nodes, in authorized_keys format.
	SSHPublicKeys []string `json:"ssh_public_keys,omitempty"`
	// Bastion, when set, is the SSH jump host every node is reached through.
	Bastion *BastionSpec `json:"bastion,omitempty"`
}

// BastionSpec is an SSH jump host.
type BastionSpec struct {
	// Address is host:port.
	Address string `json:"address"`
	User    string `json:"user"`
	// HostKey pins the bastion's host key, in authorized_keys format.
	HostKey string `json:"host_key"`
	// PrivateKeyFile is a path to the key that authenticates to the bastion.
	PrivateKeyFile string `json:"private_key_file,omitempty"`
}

// ArtifactsSpec says where nodes download Kubernetes, containerd and CNI.
type ArtifactsSpec struct {
	// MirrorBaseURL replaces the publishers' download origins (private mirror,
	// air gap). Empty means the publishers' own URLs.
	MirrorBaseURL string `json:"mirror_base_url,omitempty"`
	// TrustMirrorChecksums lets the mirror's checksum files replace the
	// digests pinned in the build: only for a mirror that rebuilds the
	// artifacts (the lab's stand-ins). A mirror of the publishers' files needs no such trust.
	TrustMirrorChecksums bool `json:"trust_mirror_checksums,omitempty"`
}

// APIPort is where every API server, and the API load balancer in front of them, serves.
const APIPort = 6443

// Defaults, in one place. WithDefaults applies them; Validate checks the result.
const (
	// DefaultCNI is flannel: the only CNI whose every artifact can be verified today.
	DefaultCNI               = CNIFlannel
	DefaultNodeCIDR          = "10.0.0.0/16"
	DefaultPodCIDR           = "10.244.0.0/16"
	DefaultServiceCIDR       = "10.96.0.0/12"
	DefaultControlPlaneCount = 1
	DefaultLinuxDiskGB       = 50
	DefaultWindowsDiskGB     = 128
	DefaultWindowsVersion    = "2022"
	DefaultIsolation         = IsolationProcess
	DefaultBastionUser       = "mixedk8s"
	// DefaultKubernetesVersion is the release the lab runs (its kubeadm,
	// control plane and hollow kubelets are built from k8s.io/kubernetes
	// v1.36.3, test/lab/k8s/go.mod), not the newest pinned one: "1.36" names that.
	DefaultKubernetesVersion = "1.36.3"
	// DefaultMaxSurge and DefaultMaxUnavailable roll a pool one node at a
	// time, the new node Ready before the old one is drained: capacity never drops.
	DefaultMaxSurge       = 1
	DefaultMaxUnavailable = 0
)

// KubernetesRelease returns the release a kubernetes_version names: for a
// minor such as "1.36", the newest release of it this build has pinned
// artifacts for (a caller records it, so a newer build does not move a
// running cluster); anything else unchanged, for Validate to judge.
func KubernetesRelease(version string) string {
	if newest, ok := manifest.Newest(version); ok {
		return newest
	}
	return version
}

// WithDefaults returns a copy of s with every unset optional field filled in.
// It never overrides a value the caller set, and does not validate.
func (s Spec) WithDefaults() Spec {
	out := s
	if out.KubernetesVersion == "" {
		out.KubernetesVersion = DefaultKubernetesVersion
	}
	out.KubernetesVersion = KubernetesRelease(out.KubernetesVersion)
	if out.Network.CNI == "" {
		out.Network.CNI = DefaultCNI
	}
	if out.Network.NodeCIDR == "" {
		out.Network.NodeCIDR = DefaultNodeCIDR
	}
	if out.Network.PodCIDR == "" {
		out.Network.PodCIDR = DefaultPodCIDR
	}
	if out.Network.ServiceCIDR == "" {
		out.Network.ServiceCIDR = DefaultServiceCIDR
	}
	if out.ControlPlane.Count == 0 {
		out.ControlPlane.Count = DefaultControlPlaneCount
	}
	if out.ControlPlane.DiskGB == 0 {
		out.ControlPlane.DiskGB = DefaultLinuxDiskGB
	}
	if out.ControlPlane.InstanceType == "" {
		out.ControlPlane.InstanceType = s.defaultInstanceType(Linux)
	}
	if s.NodePools != nil {
		out.NodePools = make(map[string]PoolSpec, len(s.NodePools))
		for name, p := range s.NodePools {
			if p.OS == "" {
				p.OS = Linux
			}
			if p.OS == Windows {
				if p.WindowsVersion == "" {
					p.WindowsVersion = DefaultWindowsVersion
				}
				if p.Isolation == "" {
					p.Isolation = DefaultIsolation
				}
			}
			if p.DiskGB == 0 {
				p.DiskGB = DefaultLinuxDiskGB
				if p.OS == Windows {
					p.DiskGB = DefaultWindowsDiskGB
				}
			}
			if p.InstanceType == "" {
				p.InstanceType = s.defaultInstanceType(p.OS)
			}
			surge, unavailable := p.Surge()
			p.MaxSurge, p.MaxUnavailable = &surge, &unavailable
			out.NodePools[name] = p
		}
	}
	if out.Access.Bastion != nil {
		b := *out.Access.Bastion
		if b.User == "" {
			b.User = DefaultBastionUser
		}
		out.Access.Bastion = &b
	}
	return out
}

// defaultInstanceType is the spec's cloud's default for os, from the
// cloud's registered profile; "" when the cloud is not linked in.
func (s Spec) defaultInstanceType(os OS) string {
	p, ok := clouds.ProfileOf(s.CloudName())
	if !ok {
		return ""
	}
	return p.DefaultInstanceType(string(os))
}

// CloudName is "aws", "azure" or "gcp", or "" when no cloud (or more than one) is set.
func (s Spec) CloudName() string {
	var names []string
	if s.AWS != nil {
		names = append(names, "aws")
	}
	if s.Azure != nil {
		names = append(names, "azure")
	}
	if s.GCP != nil {
		names = append(names, "gcp")
	}
	if len(names) != 1 {
		return ""
	}
	return names[0]
}

// ParseSpec reads a spec from JSON or YAML. Unknown fields are errors, so a
// misspelt field is caught instead of silently ignored.
func ParseSpec(data []byte) (Spec, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return Spec{}, fmt.Errorf("failed to parse cluster spec: %w (fix: the file must be JSON or YAML)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("failed to parse cluster spec: %s (fix: compare the field names with the cluster.Spec documentation)", strings.TrimPrefix(err.Error(), "json: "))
	}
	return s, nil
}

// LoadSpec reads a spec from a JSON or YAML file.
func LoadSpec(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("failed to read cluster spec: %w", err)
	}
	s, err := ParseSpec(data)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
