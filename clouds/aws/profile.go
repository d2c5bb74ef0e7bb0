package aws

import (
	"strconv"
	"strings"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Tag keys on every EC2 and SSM object: EC2 tag keys allow "/" (EC2 user
// guide "Tag restrictions"), so the keys read as a domain-scoped prefix.
const (
	tagPrefix  = "mixedk8s.io/"
	TagCluster = tagPrefix + "cluster"
	TagPool    = tagPrefix + "pool"
	TagRole    = tagPrefix + "role"
	TagNode    = tagPrefix + "node"
	// DescribeInstances names neither the Windows release an AMI holds nor
	// the root volume's size (its block device mappings carry volume IDs
	// only: EC2 API reference, InstanceBlockDeviceMapping), so an instance
	// carries both as tags from its launch.
	tagWindowsVersion = tagPrefix + "windows-version"
	tagDiskGB         = tagPrefix + "disk-gb"
)

// Profile is what the validator and the lab know of EC2 without calling it.
var Profile = clouds.Profile{
	Name:  "aws",
	Title: "AWS",
	Tags:  clouds.TagKeys{Cluster: TagCluster, Pool: TagPool, Role: TagRole, Node: TagNode},
	// m6i: current-generation x86 with the Nitro NVMe and ENA drivers every supported Windows Server image carries.
	DefaultInstanceTypes: map[string]string{"linux": "m6i.large", "windows": "m6i.xlarge"},
	NestedVirtualization: nestedVirtualization,
	NestedExamples:       "e.g. m8i.xlarge, c8i.2xlarge or a *.metal type",
	Image:                imageParameter,
	// SSM parameter names are paths; "/" separates levels (SSM user guide
	// "Requirements and constraints for parameter names").
	SecretName: func(cluster string, name clouds.SecretName) string { return secretPath(cluster) + string(name) },
	CheckTags:  checkTags,
	// A Network Load Balancer fronts the API servers (loadbalancer.go).
	LoadBalancer: true,
}

func init() { clouds.Register(Profile) }

// nestedVirtualization reports whether an instance type runs Hyper-V
// inside: bare metal (*.metal*), and since Feb 2026 the virtual C8i, M8i
// and R8i families and their flex variants up to 192 vCPUs, launched with
// CpuOptions.NestedVirtualization=enabled (EC2 user guide
// "amazon-ec2-nested-virtualization"; shared/REFERENCE-windows.md).
func nestedVirtualization(instanceType string) bool {
	family, size, ok := strings.Cut(instanceType, ".")
	if !ok {
		return false
	}
	if strings.HasPrefix(size, "metal") {
		return true
	}
	if nestedFamily(family) {
		n := vCPUs(size)
		return n > 0 && n <= 192
	}
	return false
}

// nestedFamily: the virtual families that need the nested flag at launch.
func nestedFamily(family string) bool {
	switch family {
	case "c8i", "m8i", "r8i", "c8i-flex", "m8i-flex", "r8i-flex":
		return true
	}
	return false
}

// vCPUs reads the vCPU count from an x86 size name (large = 2, Nxlarge = 4N), or 0.
func vCPUs(size string) int {
	if size == "large" {
		return 2
	}
	n, ok := strings.CutSuffix(size, "xlarge")
	if !ok {
		return 0
	}
	if n == "" {
		return 4
	}
	k, err := strconv.Atoi(n)
	if err != nil || k <= 0 || k > 1024 || strings.TrimLeft(n, "0123456789") != "" {
		return 0
	}
	return 4 * k
}
