package gcp

import (
	"github.com/mixedk8s/mixedk8s/clouds"
)

// Label keys on every Compute Engine resource: keys and values allow only
// lowercase letters, digits, '_' and '-' (Compute Engine "Labels overview":
// requirements for labels).
const (
	TagCluster = "mixedk8s-cluster"
	TagPool    = "mixedk8s-pool"
	TagRole    = "mixedk8s-role"
	TagNode    = "mixedk8s-node"
)

// Profile is what the validator and the lab know of Compute Engine without calling it.
var Profile = clouds.Profile{
	Name:                 "gcp",
	Title:                "GCP",
	Tags:                 clouds.TagKeys{Cluster: TagCluster, Pool: TagPool, Role: TagRole, Node: TagNode},
	DefaultInstanceTypes: map[string]string{"linux": "n2-standard-4", "windows": "n2-standard-4"},
	RefuseHyperV:         "Hyper-V isolation needs nested Hyper-V, which GCE does not offer (KVM is its only L1 hypervisor)",
	// Secret Manager secret IDs are 1-255 of [A-Za-z0-9_-] (Secret Manager
	// "Create a secret"); "_" cannot occur in cluster or node names, so it
	// separates the parts unambiguously.
	SecretName: func(cluster string, name clouds.SecretName) string {
		return "mixedk8s_" + cluster + "_" + name.Join("_")
	},
}

func init() { clouds.Register(Profile) }
