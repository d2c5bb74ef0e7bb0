package gcp

import (
	"github.com/mixedk8s/mixedk8s/clouds"
)

// Profile is what the validator and the lab know of Compute Engine without calling it.
var Profile = clouds.Profile{
	Name:                 "gcp",
	Title:                "GCP",
	Tags:                 clouds.TagKeys{Cluster: LabelCluster, Pool: LabelPool, Role: LabelRole, Node: LabelNode},
	DefaultInstanceTypes: map[string]string{"linux": "n2-standard-4", "windows": "n2-standard-4"},
	RefuseHyperV:         "Hyper-V isolation needs nested Hyper-V, which GCE does not offer (KVM is its only L1 hypervisor)",
	Image:                imageOf,
	SecretName:           func(cluster string, name clouds.SecretName) string { return secretID(cluster, string(name)) },
	LoadBalancer:         true,
	CheckTags:            checkLabels,
}

func init() { clouds.Register(Profile) }
