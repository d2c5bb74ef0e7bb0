package azure

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// Tag keys on every Azure resource: Azure tag names may not contain
// < > % & \ ? / (ARM "Use tags to organize your Azure resources"), so the
// domain-style prefix takes "_" for "/".
const (
	TagCluster = "mixedk8s.io_cluster"
	TagPool    = "mixedk8s.io_pool"
	TagRole    = "mixedk8s.io_role"
	TagNode    = "mixedk8s.io_node"
)

// Profile is what the validator and the lab know of Azure without calling it.
var Profile = clouds.Profile{
	Name:                 "azure",
	Title:                "Azure",
	Tags:                 clouds.TagKeys{Cluster: TagCluster, Pool: TagPool, Role: TagRole, Node: TagNode},
	DefaultInstanceTypes: map[string]string{"linux": "Standard_D4s_v5", "windows": "Standard_D4s_v5"},
	NestedVirtualization: nestedVirtualization,
	NestedExamples:       "e.g. Standard_D4s_v5 or Standard_E4s_v5",
	Image:                imageName,
	// Key Vault secret names are 1-127 of [0-9a-zA-Z-]: see SecretName.
	SecretName: func(cluster string, name clouds.SecretName) string { return secretName(cluster, string(name)) },
	// A Standard load balancer fronts the API servers (loadbalancer.go).
	LoadBalancer: true,
	CheckTags:    checkTags,
}

func init() { clouds.Register(Profile) }

var sizeRE = regexp.MustCompile(`(?i)^standard_([de])[0-9]+(-[0-9]+)?([a-z]*)_v([0-9]+)$`)

// nestedVirtualization reports whether a VM size runs Hyper-V inside: the
// Dv3/Ev3 and later D and E families with their a/d/s/l/i/b variants; not
// B, A or F, nor Arm (p) sizes (Azure "nested virtualization" docs;
// shared/REFERENCE-windows.md). Every mixedk8s VM is Trusted Launch, which
// runs nested virtualisation on "most v5 VM size families" only
// (gh:MicrosoftDocs/azure-docs articles/virtual-machines/trusted-launch.md),
// so v3 and v4 sizes are refused too.
func nestedVirtualization(size string) bool {
	m := sizeRE.FindStringSubmatch(size)
	if m == nil {
		return false
	}
	gen, err := strconv.Atoi(m[4])
	return err == nil && gen >= 5 && strings.Trim(strings.ToLower(m[3]), "adslib") == ""
}
