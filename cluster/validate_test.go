package cluster

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// testPublicKey returns a deterministic ed25519 authorized_keys line.
func testPublicKey(seed byte) string {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(s).Public())
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " admin@example"
}

// testDSAKey returns a well-formed ssh-dss line (1024-bit P, 160-bit Q), which OpenSSH no longer accepts.
func testDSAKey() string {
	one := big.NewInt(1)
	p := new(big.Int).Add(new(big.Int).Lsh(one, 1023), one)
	q := new(big.Int).Add(new(big.Int).Lsh(one, 159), one)
	wire := ssh.Marshal(struct {
		Type       string
		P, Q, G, Y *big.Int
	}{"ssh-dss", p, q, big.NewInt(2), big.NewInt(3)})
	return "ssh-dss " + base64.StdEncoding.EncodeToString(wire)
}

// validSpec is an Azure cluster with one Linux and one Windows pool that passes Validate.
func validSpec() Spec {
	return Spec{
		Name:              "prod",
		KubernetesVersion: "1.36.3",
		Azure:             &AzureSpec{SubscriptionID: "0b1f6471-1bf0-4dda-aec3-cb9272f09590", Location: "westeurope", ResourceGroup: "rg-prod"},
		NodePools: map[string]PoolSpec{
			"lin": {OS: Linux, Count: 2},
			"win": {OS: Windows, Count: 2, Taints: []string{"os=windows:NoSchedule"}},
		},
		Access: AccessSpec{AdminCIDRs: []string{"203.0.113.0/24"}, SSHPublicKeys: []string{testPublicKey(1)}},
	}
}

func onAWS(s *Spec) {
	s.Azure = nil
	s.AWS = &AWSSpec{Region: "eu-west-1", Zones: []string{"eu-west-1a", "eu-west-1b"}}
}

func onGCP(s *Spec) {
	s.Azure = nil
	s.GCP = &GCPSpec{Project: "mixed-prod", Region: "europe-west4", Zone: "europe-west4-a"}
}

// setPool edits one pool of the spec in place.
func setPool(s *Spec, name string, edit func(*PoolSpec)) {
	p := s.NodePools[name]
	edit(&p)
	s.NodePools[name] = p
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		given func(s *Spec)
		// wantPaths are the exact paths of every problem, in order; empty means valid.
		wantPaths []string
		// wantText, when set, must appear in the error (message or fix).
		wantText string
		// notText, when set, must not appear in the error (secrets).
		notText string
	}{
		// Valid specs.
		{name: "given the base Azure spec, then it is valid", given: func(*Spec) {}},
		{name: "given an AWS spec with zones of its region, then it is valid", given: onAWS},
		{name: "given a GCP spec with process isolation, then it is valid", given: onGCP},
		{name: "given only a control plane, then it is valid", given: func(s *Spec) { s.NodePools = nil }},
		{name: "given an empty Windows pool, then it is valid", given: func(s *Spec) { setPool(s, "win", func(p *PoolSpec) { p.Count = 0 }) }},
		{name: "given Windows pools and a schedulable control plane but no Linux pool, then it is valid", given: func(s *Spec) {
			delete(s.NodePools, "lin")
			s.ControlPlane.Schedulable = true
		}},
		{name: "given Kubernetes 1.34 with Windows Server 2019, then it is valid", given: func(s *Spec) {
			s.KubernetesVersion = "1.34.11"
			setPool(s, "win", func(p *PoolSpec) { p.WindowsVersion = "2019" })
		}},
		{name: "given Calico on Kubernetes 1.36 with Windows Server 2022, then it is valid", given: func(s *Spec) {
			s.Network.CNI = CNICalico
			s.KubernetesVersion = "1.36.3"
			setPool(s, "win", func(p *PoolSpec) { p.WindowsVersion = "2022" })
		}},
		{name: "given Calico on Kubernetes 1.34 with Windows Server 2019, then it is valid", given: func(s *Spec) {
			s.Network.CNI = CNICalico
			s.KubernetesVersion = "1.34.11"
			setPool(s, "win", func(p *PoolSpec) { p.WindowsVersion = "2019" })
		}},
		{name: "given Kubernetes 1.35 with Windows Server 2025 on flannel, then it is valid", given: func(s *Spec) {
			s.KubernetesVersion = "1.35.8"
			s.Network.CNI = CNIFlannel
			setPool(s, "win", func(p *PoolSpec) { p.WindowsVersion = "2025" })
		}},
		{name: "given Hyper-V isolation on an Azure Dsv5 size, then it is valid", given: func(s *Spec) {
			setPool(s, "win", func(p *PoolSpec) { p.Isolation = IsolationHyperV; p.InstanceType = "Standard_D8ds_v5" })
		}},
		{name: "given Hyper-V isolation on AWS m8i.xlarge, then it is valid", given: func(s *Spec) {
			onAWS(s)
			setPool(s, "win", func(p *PoolSpec) { p.Isolation = IsolationHyperV; p.InstanceType = "m8i.xlarge" })
		}},
		{name: "given Hyper-V isolation on AWS bare metal, then it is valid", given: func(s *Spec) {
			onAWS(s)
			setPool(s, "win", func(p *PoolSpec) { p.Isolation = IsolationHyperV; p.InstanceType = "m5.metal" })
		}},
		{name: "given a node-role label, a domain label and an empty value, then they are valid", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) {
				p.Labels = map[string]string{"node-role.kubernetes.io/worker": "", "example.com/team": "payments", "tier": "web_1.a"}
			})
		}},
		{name: "given taints with and without a value and one key under two effects, then they are valid", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) {
				p.Taints = []string{"dedicated:NoExecute", "dedicated:NoSchedule", "example.com/gpu=true:PreferNoSchedule"}
			})
		}},
		{name: "given admin CIDRs open to the world in IPv4 and IPv6, then they are allowed", given: func(s *Spec) {
			s.Access.AdminCIDRs = []string{"0.0.0.0/0", "::/0", "2001:db8::/48", "198.51.100.7/32"}
		}},
		{name: "given a bastion with host:port and a pinned host key, then it is valid", given: func(s *Spec) {
			s.Access.Bastion = &BastionSpec{Address: "bastion.example.com:2222", HostKey: testPublicKey(2)}
		}},
		{name: "given an https mirror, then it is valid", given: func(s *Spec) { s.Artifacts.MirrorBaseURL = "https://mirror.example.com/k8s/" }},
		{name: "given an http mirror on loopback, then it is valid for the lab", given: func(s *Spec) { s.Artifacts.MirrorBaseURL = "http://127.0.0.2:8080/mirror" }},
		{name: "given an http mirror on localhost, then it is valid for the lab", given: func(s *Spec) { s.Artifacts.MirrorBaseURL = "http://localhost:8080" }},
		{name: "given pod and service CIDRs in 100.64.0.0/10, then they are valid", given: func(s *Spec) {
			s.Network.PodCIDR = "100.64.0.0/16"
			s.Network.ServiceCIDR = "100.100.0.0/16"
		}},
		{name: "given a 500-node pool with a /14 pod CIDR, then it is valid", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) { p.Count = 500 })
			s.Network.PodCIDR = "10.244.0.0/14"
		}},

		// Name.
		{name: "given no cluster name, then name is refused", given: func(s *Spec) { s.Name = "" }, wantPaths: []string{"name"}},
		{name: "given an uppercase cluster name, then name is refused", given: func(s *Spec) { s.Name = "Prod" }, wantPaths: []string{"name"}, wantText: `"prod"`},
		{name: "given a 21-character cluster name, then only the name is refused: Windows computer names are derived", given: func(s *Spec) { s.Name = "abcdefghijklmnopqrstu" },
			wantPaths: []string{"name"}},
		{name: "given a cluster name starting with a digit, then name is refused", given: func(s *Spec) { s.Name = "1prod" }, wantPaths: []string{"name"}},

		// Cloud.
		{name: "given no cloud block, then cloud is refused", given: func(s *Spec) { s.Azure = nil }, wantPaths: []string{"cloud"}},
		{name: "given aws and gcp blocks, then the second is refused", given: func(s *Spec) {
			onAWS(s)
			s.GCP = &GCPSpec{Project: "mixed-prod", Region: "europe-west4", Zone: "europe-west4-a"}
		}, wantPaths: []string{"gcp"}},
		{name: "given a subscription name instead of its ID, then subscription_id is refused", given: func(s *Spec) { s.Azure.SubscriptionID = "Pay-As-You-Go" },
			wantPaths: []string{"azure.subscription_id"}},
		{name: "given no Azure location or resource group, then both are refused", given: func(s *Spec) { s.Azure.Location = ""; s.Azure.ResourceGroup = "" },
			wantPaths: []string{"azure.location", "azure.resource_group"}},
		{name: "given an Azure location display name, then location is refused with its programmatic name", given: func(s *Spec) { s.Azure.Location = "West Europe" },
			wantPaths: []string{"azure.location"}, wantText: `"westeurope"`},
		{name: "given a resource group ending in a period, then resource_group is refused", given: func(s *Spec) { s.Azure.ResourceGroup = "rg." },
			wantPaths: []string{"azure.resource_group"}},
		{name: "given no AWS region, then region is refused", given: func(s *Spec) { onAWS(s); s.AWS.Region = "" }, wantPaths: []string{"aws.region"}},
		{name: "given a zone as the AWS region, then region is refused", given: func(s *Spec) { onAWS(s); s.AWS.Region = "eu-west-1a"; s.AWS.Zones = nil },
			wantPaths: []string{"aws.region"}},
		{name: "given an AWS zone of another region and a duplicate zone, then both zones are refused", given: func(s *Spec) {
			onAWS(s)
			s.AWS.Zones = []string{"eu-west-1a", "us-east-1a", "eu-west-1a"}
		}, wantPaths: []string{"aws.zones[1]", "aws.zones[2]"}},
		{name: "given an AWS Local Zone of the region, then it is valid", given: func(s *Spec) { onAWS(s); s.AWS.Zones = []string{"eu-west-1-lhr-1a"} }},
		{name: "given an AWS key ARN, key ID, alias and alias ARN of the region, then each is valid", given: func(s *Spec) {
			onAWS(s)
			s.AWS.KMSKeyID = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}},
		{name: "given a multi-Region AWS key ID, then it is valid", given: func(s *Spec) { onAWS(s); s.AWS.KMSKeyID = "mrk-1234abcd12ab34cd56ef1234567890ab" }},
		{name: "given an AWS alias, then it is valid", given: func(s *Spec) { onAWS(s); s.AWS.KMSKeyID = "alias/mixedk8s-prod" }},
		{name: "given an AWS alias ARN, then it is valid", given: func(s *Spec) {
			onAWS(s)
			s.AWS.KMSKeyID = "arn:aws:kms:eu-west-1:111122223333:alias/mixedk8s-prod"
		}},
		{name: "given an AWS key ARN of another region, then kms_key_id is refused naming both regions", given: func(s *Spec) {
			onAWS(s)
			s.AWS.KMSKeyID = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, wantPaths: []string{"aws.kms_key_id"}, wantText: "in region us-east-1, the cluster in eu-west-1"},
		{name: "given an AWS managed key alias, then kms_key_id is refused", given: func(s *Spec) { onAWS(s); s.AWS.KMSKeyID = "alias/aws/ebs" },
			wantPaths: []string{"aws.kms_key_id"}, wantText: "customer managed key"},
		{name: "given a key name that is no KMS reference, then kms_key_id is refused with the accepted forms", given: func(s *Spec) { onAWS(s); s.AWS.KMSKeyID = "my-key" },
			wantPaths: []string{"aws.kms_key_id"}, wantText: "alias ARN"},
		{name: "given an ARN of another service, then kms_key_id is refused", given: func(s *Spec) { onAWS(s); s.AWS.KMSKeyID = "arn:aws:s3:::bucket" },
			wantPaths: []string{"aws.kms_key_id"}},
		{name: "given a GCP key in the cluster's region, then it is valid", given: func(s *Spec) {
			onGCP(s)
			s.GCP.KMSKeyName = "projects/keys-prod/locations/europe-west4/keyRings/mixedk8s/cryptoKeys/cluster"
		}},
		{name: "given a global GCP key, then kms_key_name is refused: the secrets' replica is regional", given: func(s *Spec) {
			onGCP(s)
			s.GCP.KMSKeyName = "projects/keys-prod/locations/global/keyRings/mixedk8s/cryptoKeys/cluster"
		}, wantPaths: []string{"gcp.kms_key_name"}, wantText: "key ring in europe-west4"},
		{name: "given a GCP key version, then kms_key_name is refused", given: func(s *Spec) {
			onGCP(s)
			s.GCP.KMSKeyName = "projects/keys-prod/locations/europe-west4/keyRings/mixedk8s/cryptoKeys/cluster/cryptoKeyVersions/3"
		}, wantPaths: []string{"gcp.kms_key_name"}, wantText: "version"},
		{name: "given a GCP key by its short name, then kms_key_name is refused with the full form", given: func(s *Spec) { onGCP(s); s.GCP.KMSKeyName = "cluster" },
			wantPaths: []string{"gcp.kms_key_name"}, wantText: "projects/<project>/locations/europe-west4/keyRings/"},
		{name: "given an Azure disk encryption set of the subscription, then it is valid", given: func(s *Spec) {
			s.Azure.DiskEncryptionSetID = "/subscriptions/" + s.Azure.SubscriptionID + "/resourceGroups/keys/providers/Microsoft.Compute/diskEncryptionSets/des-prod"
		}},
		{name: "given an Azure disk encryption set of another subscription, then disk_encryption_set_id is refused", given: func(s *Spec) {
			s.Azure.DiskEncryptionSetID = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/keys/providers/Microsoft.Compute/diskEncryptionSets/des-prod"
		}, wantPaths: []string{"azure.disk_encryption_set_id"}, wantText: "create the disk encryption set in subscription 0b1f6471"},
		{name: "given a Key Vault key ID as the disk encryption set, then disk_encryption_set_id is refused", given: func(s *Spec) {
			s.Azure.DiskEncryptionSetID = "https://vault.vault.azure.net/keys/k/0123"
		}, wantPaths: []string{"azure.disk_encryption_set_id"}, wantText: "az disk-encryption-set show"},
		{name: "given an existing Azure subnet of the subscription, then it is valid", given: func(s *Spec) {
			s.Azure.SubnetID = "/subscriptions/" + s.Azure.SubscriptionID + "/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/shared/subnets/nodes"
		}},
		{name: "given an Azure subnet of another subscription, then subnet_id is refused", given: func(s *Spec) {
			s.Azure.SubnetID = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/shared/subnets/nodes"
		}, wantPaths: []string{"azure.subnet_id"}, wantText: "a network interface joins a subnet of its own subscription only"},
		{name: "given a virtual network's ID as the subnet, then subnet_id is refused", given: func(s *Spec) {
			s.Azure.SubnetID = "/subscriptions/" + s.Azure.SubscriptionID + "/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/shared"
		}, wantPaths: []string{"azure.subnet_id"}, wantText: "az network vnet subnet show"},
		{name: "given an existing GCP network and subnetwork, then it is valid", given: func(s *Spec) { onGCP(s); s.GCP.Network, s.GCP.Subnetwork = "shared", "shared-europe-west4" }},
		{name: "given a Shared VPC host's network, then it is valid", given: func(s *Spec) {
			onGCP(s)
			s.GCP.Network, s.GCP.Subnetwork, s.GCP.NetworkProject = "shared", "nodes", "net-host-1"
		}},
		{name: "given a network project without a network, then network_project is refused", given: func(s *Spec) { onGCP(s); s.GCP.NetworkProject = "net-host-1" },
			wantPaths: []string{"gcp.network_project"}, wantText: "set network and subnetwork"},
		{name: "given a network project that is no project ID, then network_project is refused", given: func(s *Spec) {
			onGCP(s)
			s.GCP.Network, s.GCP.Subnetwork, s.GCP.NetworkProject = "shared", "nodes", "Net Host"
		}, wantPaths: []string{"gcp.network_project"}, wantText: "host project's ID"},
		{name: "given the cluster's own project as network project, then network_project is refused", given: func(s *Spec) {
			onGCP(s)
			s.GCP.Network, s.GCP.Subnetwork, s.GCP.NetworkProject = "shared", "nodes", s.GCP.Project
		}, wantPaths: []string{"gcp.network_project"}, wantText: "remove network_project"},
		{name: "given a GCP network without its subnetwork, then subnetwork is asked for", given: func(s *Spec) { onGCP(s); s.GCP.Network = "shared" },
			wantPaths: []string{"gcp.subnetwork"}, wantText: "set subnetwork"},
		{name: "given a GCP network's URL, then network is refused with the name form", given: func(s *Spec) {
			onGCP(s)
			s.GCP.Network, s.GCP.Subnetwork = "projects/p/global/networks/shared", "nodes"
		}, wantPaths: []string{"gcp.network"}, wantText: "use the name, not the URL"},
		{name: "given an existing VPC and its subnets, then it is valid", given: func(s *Spec) {
			onAWS(s)
			s.AWS.Zones, s.AWS.VPCID, s.AWS.SubnetIDs = nil, "vpc-0a1b2c3d4e5f67890", []string{"subnet-0a1b2c3d4e5f67890", "subnet-1a2b3c4d"}
		}},
		{name: "given a VPC without subnets, then subnet_ids is asked for", given: func(s *Spec) {
			onAWS(s)
			s.AWS.Zones, s.AWS.VPCID = nil, "vpc-0a1b2c3d4e5f67890"
		}, wantPaths: []string{"aws.subnet_ids"}, wantText: "remove vpc_id"},
		{name: "given subnets without their VPC, then vpc_id is asked for", given: func(s *Spec) {
			onAWS(s)
			s.AWS.Zones, s.AWS.SubnetIDs = nil, []string{"subnet-0a1b2c3d4e5f67890"}
		}, wantPaths: []string{"aws.vpc_id"}, wantText: "set vpc_id"},
		{name: "given a VPC name, a subnet CIDR and a duplicate subnet, then each is refused by its path", given: func(s *Spec) {
			onAWS(s)
			s.AWS.Zones, s.AWS.VPCID = nil, "prod-vpc"
			s.AWS.SubnetIDs = []string{"subnet-0a1b2c3d4e5f67890", "10.0.1.0/24", "subnet-0a1b2c3d4e5f67890", "subnet-012345678"}
		}, wantPaths: []string{"aws.subnet_ids[1]", "aws.subnet_ids[2]", "aws.subnet_ids[3]", "aws.vpc_id"}},
		{name: "given zones beside existing subnets, then zones is refused", given: func(s *Spec) {
			onAWS(s)
			s.AWS.VPCID, s.AWS.SubnetIDs = "vpc-0a1b2c3d4e5f67890", []string{"subnet-0a1b2c3d4e5f67890"}
		}, wantPaths: []string{"aws.zones"}, wantText: "subnets' zones"},
		{name: "given no GCP project, then project is refused", given: func(s *Spec) { onGCP(s); s.GCP.Project = "" }, wantPaths: []string{"gcp.project"}},
		{name: "given a GCP project display name, then project is refused", given: func(s *Spec) { onGCP(s); s.GCP.Project = "My Project" }, wantPaths: []string{"gcp.project"}},
		{name: "given a GCP zone outside the region, then zone is refused", given: func(s *Spec) { onGCP(s); s.GCP.Zone = "us-central1-a" }, wantPaths: []string{"gcp.zone"}},
		{name: "given no GCP region, then only region is refused", given: func(s *Spec) { onGCP(s); s.GCP.Region = "" }, wantPaths: []string{"gcp.region"}},

		// Kubernetes version.
		{name: "given a version with a leading v, then the fix drops it", given: func(s *Spec) { s.KubernetesVersion = "v1.36.3" },
			wantPaths: []string{"kubernetes_version"}, wantText: `drop the leading v: "1.36.3"`},
		{name: "given a minor with releases, then it is valid (it resolves to the newest)", given: func(s *Spec) { s.KubernetesVersion = "1.35" }},
		{name: "given a minor without releases, then kubernetes_version is refused naming the minors", given: func(s *Spec) { s.KubernetesVersion = "1.37" },
			wantPaths: []string{"kubernetes_version"}, wantText: `use a minor from "1.34" to "1.36"`},
		{name: "given a release without pinned artifacts, then kubernetes_version is refused naming the releases", given: func(s *Spec) { s.KubernetesVersion = "1.36.5" },
			wantPaths: []string{"kubernetes_version"}, wantText: "1.35.3 to 1.35.8, 1.36.0 to 1.36.4"},
		{name: "given an old patch whose Windows binaries have no pin, then kubernetes_version is refused", given: func(s *Spec) { s.KubernetesVersion = "1.34.2" },
			wantPaths: []string{"kubernetes_version"}, wantText: "1.34.6 to 1.34.11"},
		{name: "given Kubernetes 1.37, then it is refused until its binaries are pinned", given: func(s *Spec) { s.KubernetesVersion = "1.37.0" }, wantPaths: []string{"kubernetes_version"}},
		{name: "given a pre-release version, then kubernetes_version is refused", given: func(s *Spec) { s.KubernetesVersion = "1.37.0-rc.1" }, wantPaths: []string{"kubernetes_version"}},
		{name: "given Kubernetes 1.33, then it is too old", given: func(s *Spec) { s.KubernetesVersion = "1.33.9" }, wantPaths: []string{"kubernetes_version"}, wantText: "1.34.6 to 1.34.11"},
		{name: "given Kubernetes 1.38, then it is too new", given: func(s *Spec) { s.KubernetesVersion = "1.38.0" }, wantPaths: []string{"kubernetes_version"}},
		{name: "given Kubernetes 2.0, then it is unsupported", given: func(s *Spec) { s.KubernetesVersion = "2.36.0" }, wantPaths: []string{"kubernetes_version"}},

		// Windows versions and CNI.
		{name: "given Windows Server 2019 on Kubernetes 1.36, then windows_version is refused", given: func(s *Spec) {
			setPool(s, "win", func(p *PoolSpec) { p.WindowsVersion = "2019" })
		}, wantPaths: []string{`node_pools["win"].windows_version`}, wantText: "2022 or 2025"},
		{name: "given Windows Server 2025 on Kubernetes 1.34, then windows_version is refused", given: func(s *Spec) {
			s.KubernetesVersion = "1.34.11"
			s.Network.CNI = CNIFlannel
			setPool(s, "win", func(p *PoolSpec) { p.WindowsVersion = "2025" })
		}, wantPaths: []string{`node_pools["win"].windows_version`}},
		{name: "given Windows Server 2016, then windows_version is refused", given: func(s *Spec) {
			setPool(s, "win", func(p *PoolSpec) { p.WindowsVersion = "2016" })
		}, wantPaths: []string{`node_pools["win"].windows_version`}},
		{name: "given Windows Server 2025 with Calico, then windows_version is refused with flannel as the fix", given: func(s *Spec) {
			s.Network.CNI = CNICalico
			setPool(s, "win", func(p *PoolSpec) { p.WindowsVersion = "2025" })
		}, wantPaths: []string{`node_pools["win"].windows_version`}, wantText: "flannel"},
		{name: "given windows_version and isolation on a Linux pool, then both are refused", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) { p.WindowsVersion = "2022"; p.Isolation = IsolationProcess })
		}, wantPaths: []string{`node_pools["lin"].isolation`, `node_pools["lin"].windows_version`}},
		{name: "given an unknown isolation, then isolation is refused", given: func(s *Spec) {
			setPool(s, "win", func(p *PoolSpec) { p.Isolation = "container" })
		}, wantPaths: []string{`node_pools["win"].isolation`}},
		{name: "given an unknown CNI, then cni is refused", given: func(s *Spec) { s.Network.CNI = "cilium" }, wantPaths: []string{"network.cni"}},

		// Pools.
		{name: "given os macos, then os is refused", given: func(s *Spec) { setPool(s, "lin", func(p *PoolSpec) { p.OS = "macos" }) },
			wantPaths: []string{"node_pools", `node_pools["lin"].os`}},
		{name: "given a negative pool count, then count is refused", given: func(s *Spec) { setPool(s, "lin", func(p *PoolSpec) { p.Count = -1 }) },
			wantPaths: []string{"node_pools", `node_pools["lin"].count`}},
		{name: "given a pool of 501 nodes, then count is refused", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) { p.Count = 501 })
			s.Network.PodCIDR = "10.244.0.0/14"
		}, wantPaths: []string{`node_pools["lin"].count`}},
		{name: "given a blank instance type, then instance_type is refused", given: func(s *Spec) { setPool(s, "lin", func(p *PoolSpec) { p.InstanceType = " " }) },
			wantPaths: []string{`node_pools["lin"].instance_type`}},
		{name: "given a Linux disk of 20 GB, then disk_gb is refused", given: func(s *Spec) { setPool(s, "lin", func(p *PoolSpec) { p.DiskGB = 20 }) },
			wantPaths: []string{`node_pools["lin"].disk_gb`}},
		{name: "given a Windows disk of 40 GB, then disk_gb is refused", given: func(s *Spec) { setPool(s, "win", func(p *PoolSpec) { p.DiskGB = 40 }) },
			wantPaths: []string{`node_pools["win"].disk_gb`}, wantText: "64"},
		{name: "given a pool named cp, then the name is reserved", given: func(s *Spec) { s.NodePools["cp"] = PoolSpec{Count: 1} },
			wantPaths: []string{`node_pools["cp"]`, `node_pools["cp"]`}},
		{name: "given a pool named control-plane, then the name is reserved", given: func(s *Spec) { s.NodePools["control-plane"] = PoolSpec{Count: 1} },
			wantPaths: []string{`node_pools["control-plane"]`}},
		{name: "given a pool name with an underscore, then the name is refused", given: func(s *Spec) { s.NodePools["win_b"] = PoolSpec{OS: Windows, Count: 1} },
			wantPaths: []string{`node_pools["win_b"]`}, wantText: `"win-b"`},
		{name: "given pools Lin and lin, then the uppercase name and the clash are refused", given: func(s *Spec) { s.NodePools["Lin"] = PoolSpec{Count: 1} },
			wantPaths: []string{`node_pools["Lin"]`, `node_pools["lin"]`}, wantText: "ignore case"},

		// Tags.
		{name: "given tags every cloud accepts on Azure, then it is valid", given: func(s *Spec) { s.Tags = map[string]string{"team": "payments", "env": "prod"} }},
		{name: "given lowercase tags on GCP, then it is valid", given: func(s *Spec) { onGCP(s); s.Tags = map[string]string{"cost-center": "platform_1"} }},
		{name: "given a tag key with mixedk8s's prefix, then it is reserved", given: func(s *Spec) { s.Tags = map[string]string{"MixedK8s_team": "x"} },
			wantPaths: []string{`tags["MixedK8s_team"]`}, wantText: "reserves"},
		{name: "given an uppercase tag on GCP, then key and value are refused with a label to use", given: func(s *Spec) { onGCP(s); s.Tags = map[string]string{"CostCenter": "Platform"} },
			wantPaths: []string{`tags["CostCenter"]`, `tags["CostCenter"]`}, wantText: `"costcenter"`},
		{name: "given a tag with the aws: prefix on AWS, then AWS's reserved prefix is refused", given: func(s *Spec) { onAWS(s); s.Tags = map[string]string{"aws:team": "a"} },
			wantPaths: []string{`tags["aws:team"]`}, wantText: "AWS reserves"},
		{name: "given a tag name with a slash on Azure, then it is refused", given: func(s *Spec) { s.Tags = map[string]string{"team/name": "a"} },
			wantPaths: []string{`tags["team/name"]`}, wantText: "replace them"},

		// Node names.
		{name: "given the cluster payments-prod with a 12-node Windows pool on Azure, then it is valid: computer names are derived", given: func(s *Spec) {
			s.Name = "payments-prod"
			s.NodePools["windows22"] = PoolSpec{OS: Windows, Count: 12}
		}},
		{name: "given a 20-character cluster name with a Windows pool on GCP, then it is valid", given: func(s *Spec) { onGCP(s); s.Name = "abcdefghijklmnopqrst" }},
		{name: "given a 20-character cluster name with a Windows pool on AWS, then it is valid", given: func(s *Spec) { onAWS(s); s.Name = "abcdefghijklmnopqrst" }},
		{name: "given two Windows pools whose shortened computer names collide, then the second pool is refused", given: func(s *Spec) {
			s.Name = "payments-prod"
			s.NodePools["win262"] = PoolSpec{OS: Windows, Count: 1}
			s.NodePools["win290"] = PoolSpec{OS: Windows, Count: 1}
		}, wantPaths: []string{`node_pools["win290"]`}, wantText: "rename this pool"},
		{name: "given a Linux pool name making 64-character node names, then the pool is refused", given: func(s *Spec) { s.NodePools[strings.Repeat("a", 57)] = PoolSpec{Count: 1} },
			wantPaths: []string{`node_pools["` + strings.Repeat("a", 57) + `"]`}},

		// Linux home and totals.
		{name: "given only Windows pools and an unschedulable control plane, then node_pools is refused", given: func(s *Spec) { delete(s.NodePools, "lin") },
			wantPaths: []string{"node_pools"}, wantText: "control_plane.schedulable"},
		{name: "given an empty Linux pool beside Windows pools, then node_pools is refused", given: func(s *Spec) { setPool(s, "lin", func(p *PoolSpec) { p.Count = 0 }) },
			wantPaths: []string{"node_pools"}},
		{name: "given 1203 nodes, then the total is refused once", given: func(s *Spec) {
			for _, n := range []string{"a", "b", "c"} {
				s.NodePools[n] = PoolSpec{Count: 400}
			}
		}, wantPaths: []string{"node_pools"}, wantText: "1205 nodes"},

		// Control plane.
		{name: "given two control-plane nodes, then count is refused", given: func(s *Spec) { s.ControlPlane.Count = 2 }, wantPaths: []string{"control_plane.count"}},
		{name: "given seven control-plane nodes, then count is refused", given: func(s *Spec) { s.ControlPlane.Count = 7 }, wantPaths: []string{"control_plane.count"}},
		{name: "given a control-plane disk of 10 GB, then disk_gb is refused", given: func(s *Spec) { s.ControlPlane.DiskGB = 10 }, wantPaths: []string{"control_plane.disk_gb"}},
		{name: "given a control-plane instance type with spaces, then instance_type is refused", given: func(s *Spec) { s.ControlPlane.InstanceType = "Standard D4s v5" },
			wantPaths: []string{"control_plane.instance_type"}},

		// Hyper-V.
		{name: "given Hyper-V isolation on Azure B-series, then instance_type is refused", given: func(s *Spec) {
			setPool(s, "win", func(p *PoolSpec) { p.Isolation = IsolationHyperV; p.InstanceType = "Standard_B4ms" })
		}, wantPaths: []string{`node_pools["win"].instance_type`}, wantText: "Standard_D4s_v5"},
		{name: "given Hyper-V isolation on Azure Dv2, then instance_type is refused", given: func(s *Spec) {
			setPool(s, "win", func(p *PoolSpec) { p.Isolation = IsolationHyperV; p.InstanceType = "Standard_DS3_v2" })
		}, wantPaths: []string{`node_pools["win"].instance_type`}},
		{name: "given Hyper-V isolation on AWS m6i, then instance_type is refused", given: func(s *Spec) {
			onAWS(s)
			setPool(s, "win", func(p *PoolSpec) { p.Isolation = IsolationHyperV })
		}, wantPaths: []string{`node_pools["win"].instance_type`}},
		{name: "given Hyper-V isolation on GCP, then isolation is refused with process as the fix", given: func(s *Spec) {
			onGCP(s)
			setPool(s, "win", func(p *PoolSpec) { p.Isolation = IsolationHyperV })
		}, wantPaths: []string{`node_pools["win"].isolation`}, wantText: `isolation = "process"`},

		// Network.
		{name: "given a node CIDR with host bits, then the fix gives the masked prefix", given: func(s *Spec) { s.Network.NodeCIDR = "10.0.0.1/16" },
			wantPaths: []string{"network.node_cidr"}, wantText: `"10.0.0.0/16"`},
		{name: "given a public pod CIDR, then pod_cidr is refused", given: func(s *Spec) { s.Network.PodCIDR = "8.8.0.0/16" }, wantPaths: []string{"network.pod_cidr"}},
		{name: "given a node CIDR in 100.64.0.0/10, then it is not private enough for nodes", given: func(s *Spec) { s.Network.NodeCIDR = "100.64.0.0/16" },
			wantPaths: []string{"network.node_cidr"}},
		{name: "given a service CIDR that does not parse, then service_cidr is refused", given: func(s *Spec) { s.Network.ServiceCIDR = "services" },
			wantPaths: []string{"network.service_cidr"}},
		{name: "given an IPv6 node CIDR, then node_cidr is refused", given: func(s *Spec) { s.Network.NodeCIDR = "fd00::/64" }, wantPaths: []string{"network.node_cidr"}},
		{name: "given a pod CIDR inside the node CIDR, then pod_cidr is refused for overlap", given: func(s *Spec) { s.Network.PodCIDR = "10.0.0.0/16" },
			wantPaths: []string{"network.pod_cidr"}, wantText: "overlaps"},
		{name: "given a service CIDR overlapping the pod CIDR, then service_cidr is refused", given: func(s *Spec) { s.Network.ServiceCIDR = "10.244.0.0/20" },
			wantPaths: []string{"network.service_cidr"}},
		{name: "given a /10 service CIDR, then it is wider than the API server takes", given: func(s *Spec) { s.Network.ServiceCIDR = "100.64.0.0/10"; s.Network.PodCIDR = "10.244.0.0/16" },
			wantPaths: []string{"network.service_cidr"}},
		{name: "given a /25 service CIDR, then it is too small", given: func(s *Spec) { s.Network.ServiceCIDR = "192.168.0.0/25" }, wantPaths: []string{"network.service_cidr"}},
		{name: "given a /20 pod CIDR, then it is narrower than /16", given: func(s *Spec) { s.Network.PodCIDR = "10.244.0.0/20" }, wantPaths: []string{"network.pod_cidr"}},
		{name: "given 300 nodes and a /16 pod CIDR, then the fix asks for a /15", given: func(s *Spec) { setPool(s, "lin", func(p *PoolSpec) { p.Count = 300 }) },
			wantPaths: []string{"network.pod_cidr"}, wantText: "/15"},
		{name: "given a /29 node CIDR, then node_cidr is refused", given: func(s *Spec) { s.Network.NodeCIDR = "10.0.0.0/29" }, wantPaths: []string{"network.node_cidr"}},
		{name: "given a /28 node CIDR for 20 nodes, then node_cidr is too small", given: func(s *Spec) {
			s.Network.NodeCIDR = "10.0.0.0/28"
			setPool(s, "lin", func(p *PoolSpec) { p.Count = 17 })
		}, wantPaths: []string{"network.node_cidr"}, wantText: "/27"},

		// Labels and taints.
		{name: "given a label key starting with a dash, then the label is refused", given: func(s *Spec) { setPool(s, "lin", func(p *PoolSpec) { p.Labels = map[string]string{"-bad": "x"} }) },
			wantPaths: []string{`node_pools["lin"].labels["-bad"]`}},
		{name: "given labels under kubernetes.io, k8s.io and mixedk8s.io, then each is refused", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) {
				p.Labels = map[string]string{"kubernetes.io/os": "linux", "node.kubernetes.io/role": "a", "k8s.io/x": "y", "mixedk8s.io/pool": "lin"}
			})
		}, wantPaths: []string{`node_pools["lin"].labels["k8s.io/x"]`, `node_pools["lin"].labels["kubernetes.io/os"]`, `node_pools["lin"].labels["mixedk8s.io/pool"]`, `node_pools["lin"].labels["node.kubernetes.io/role"]`}},
		{name: "given the control-plane node-role label on a worker, then it is refused", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) { p.Labels = map[string]string{"node-role.kubernetes.io/control-plane": ""} })
		}, wantPaths: []string{`node_pools["lin"].labels["node-role.kubernetes.io/control-plane"]`}},
		{name: "given a 64-character label value and one with a space, then both are refused", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) { p.Labels = map[string]string{"a": strings.Repeat("v", 64), "b": "two words"} })
		}, wantPaths: []string{`node_pools["lin"].labels["a"]`, `node_pools["lin"].labels["b"]`}},
		{name: "given a taint without effect and one with an unknown effect, then both are refused", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) { p.Taints = []string{"dedicated=gpu", "a=b:Sometimes"} })
		}, wantPaths: []string{`node_pools["lin"].taints[0]`, `node_pools["lin"].taints[1]`}},
		{name: "given a taint with an invalid key, then it is refused", given: func(s *Spec) { setPool(s, "lin", func(p *PoolSpec) { p.Taints = []string{"bad key:NoSchedule"} }) },
			wantPaths: []string{`node_pools["lin"].taints[0]`}},
		{name: "given the same taint key and effect twice, then the second is refused", given: func(s *Spec) {
			setPool(s, "win", func(p *PoolSpec) { p.Taints = append(p.Taints, "os=linux:NoSchedule") })
		}, wantPaths: []string{`node_pools["win"].taints[1]`}, wantText: "first at taints[0]"},
		{name: "given a taint the node controller owns, then it is refused", given: func(s *Spec) {
			setPool(s, "lin", func(p *PoolSpec) { p.Taints = []string{"node.kubernetes.io/unschedulable:NoSchedule"} })
		}, wantPaths: []string{`node_pools["lin"].taints[0]`}},

		// Access.
		{name: "given an admin address without prefix length, then it is refused", given: func(s *Spec) { s.Access.AdminCIDRs = []string{"203.0.113.0/24", "198.51.100.7"} },
			wantPaths: []string{"access.admin_cidrs[1]"}, wantText: "/32"},
		{name: "given an admin CIDR with host bits and a duplicate, then both are refused", given: func(s *Spec) {
			s.Access.AdminCIDRs = []string{"203.0.113.0/24", "198.51.100.7/24", "203.0.113.0/24"}
		}, wantPaths: []string{"access.admin_cidrs[1]", "access.admin_cidrs[2]"}},
		{name: "given an SSH key that does not parse, then it is refused", given: func(s *Spec) { s.Access.SSHPublicKeys = []string{"ssh-ed25519 not-base64"} },
			wantPaths: []string{"access.ssh_public_keys[0]"}},
		{name: "given a private key as SSH key, then it is refused without echoing it", given: func(s *Spec) {
			s.Access.SSHPublicKeys = []string{testPublicKey(1), "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"}
		}, wantPaths: []string{"access.ssh_public_keys[1]"}, notText: "b3BlbnNzaC1rZXktdjEAAAAA"},
		{name: "given two keys in one SSH item, then it is refused", given: func(s *Spec) { s.Access.SSHPublicKeys = []string{testPublicKey(1) + "\n" + testPublicKey(2)} },
			wantPaths: []string{"access.ssh_public_keys[0]"}},
		{name: "given a DSA SSH key, then it is refused", given: func(s *Spec) { s.Access.SSHPublicKeys = []string{testDSAKey()} },
			wantPaths: []string{"access.ssh_public_keys[0]"}, wantText: "ed25519"},
		{name: "given a bastion without port, user or host key, then each is refused", given: func(s *Spec) {
			s.Access.Bastion = &BastionSpec{Address: "bastion.example.com", User: " "}
		}, wantPaths: []string{"access.bastion.address", "access.bastion.host_key", "access.bastion.user"}},
		{name: "given a bastion on port 0 with a bad host key, then both are refused", given: func(s *Spec) {
			s.Access.Bastion = &BastionSpec{Address: "10.1.2.3:0", HostKey: "ssh-ed25519"}
		}, wantPaths: []string{"access.bastion.address", "access.bastion.host_key"}},

		// Artifacts.
		{name: "given an ftp mirror, then mirror_base_url is refused", given: func(s *Spec) { s.Artifacts.MirrorBaseURL = "ftp://mirror.example.com/k8s" },
			wantPaths: []string{"artifacts.mirror_base_url"}},
		{name: "given an http mirror on a public host, then mirror_base_url is refused", given: func(s *Spec) { s.Artifacts.MirrorBaseURL = "http://mirror.example.com/k8s" },
			wantPaths: []string{"artifacts.mirror_base_url"}, wantText: "https"},
		{name: "given a relative mirror URL, then mirror_base_url is refused", given: func(s *Spec) { s.Artifacts.MirrorBaseURL = "/srv/mirror" },
			wantPaths: []string{"artifacts.mirror_base_url"}},
		{name: "given a mirror URL with a query and credentials, then both are refused without the password", given: func(s *Spec) {
			s.Artifacts.MirrorBaseURL = "https://user:s3cret@mirror.example.com/k8s?token=1"
		}, wantPaths: []string{"artifacts.mirror_base_url", "artifacts.mirror_base_url"}, notText: "s3cret"},
		{name: "given trust in mirror checksums without a mirror, then trust_mirror_checksums is refused", given: func(s *Spec) { s.Artifacts.TrustMirrorChecksums = true },
			wantPaths: []string{"artifacts.trust_mirror_checksums"}, wantText: "mirror_base_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validSpec()
			tt.given(&s)
			err := Validate(s)
			if len(tt.wantPaths) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want no problems", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Validate() = %v (%T), want Problems", err, err)
			}
			var paths []string
			for _, p := range ps {
				paths = append(paths, p.Path)
				if p.Message == "" || p.Fix == "" {
					t.Errorf("problem %q has an empty message or fix", p)
				}
			}
			if !slices.Equal(paths, tt.wantPaths) {
				t.Errorf("paths = %q, want %q\n%v", paths, tt.wantPaths, err)
			}
			if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Validate() = %v, want it to mention %q", err, tt.wantText)
			}
			if tt.notText != "" && strings.Contains(err.Error(), tt.notText) {
				t.Errorf("Validate() = %v, must not reveal %q", err, tt.notText)
			}
		})
	}
}

func TestValidateReportsEveryProblemInOrder(t *testing.T) {
	t.Parallel()
	s := validSpec()
	s.Name = "Prod"
	s.KubernetesVersion = "v1.36.3"
	s.Network.PodCIDR = "10.0.0.0/16"
	setPool(&s, "win", func(p *PoolSpec) { p.Isolation = IsolationHyperV; p.InstanceType = "Standard_F4s_v2"; p.DiskGB = 32 })
	s.Access.AdminCIDRs = []string{"everyone"}

	err := Validate(s)

	want := []string{
		"access.admin_cidrs[0]",
		"kubernetes_version",
		"name",
		"network.pod_cidr",
		`node_pools["win"].disk_gb`,
		`node_pools["win"].instance_type`,
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Validate() = %v, want Problems", err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Path)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paths = %q, want %q\n%v", got, want, err)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("Error() has %d lines, want one per problem:\n%v", len(lines), err)
	}
	if again := Validate(s); again.Error() != err.Error() {
		t.Errorf("Validate() is not deterministic:\n%v\n---\n%v", err, again)
	}
}

func TestValidateDoesNotChangeTheSpec(t *testing.T) {
	t.Parallel()
	s := validSpec()
	s.NodePools["bare"] = PoolSpec{Count: 1}

	_ = Validate(s)

	if got := s.NodePools["bare"]; got.OS != "" || got.InstanceType != "" {
		t.Errorf("Validate() filled defaults into the caller's pool: %+v", got)
	}
}

func TestProblemString(t *testing.T) {
	t.Parallel()
	p := Problem{Path: `node_pools["win"].isolation`, Message: `isolation "x" is not supported`, Fix: `use "process" or "hyperv"`}
	want := `node_pools["win"].isolation: isolation "x" is not supported; fix: use "process" or "hyperv"`
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Problems{p, p}).Error(); got != want+"\n"+want {
		t.Errorf("Error() = %q, want two lines", got)
	}
}

func TestNestedVirtualization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cloud, instanceType string
		want                bool
	}{
		{"azure", "Standard_D4s_v5", true},
		// v3 and v4 run nested virtualisation, but not under Trusted Launch, which every Azure node is.
		{"azure", "Standard_D2_v3", false},
		{"azure", "Standard_E16ads_v5", true},
		{"azure", "standard_d4as_v4", false},
		{"azure", "Standard_E8-4s_v5", true},
		{"azure", "Standard_DS3_v2", false},
		{"azure", "Standard_B2s", false},
		{"azure", "Standard_F8s_v2", false},
		{"azure", "Standard_A4_v2", false},
		{"azure", "Standard_D4ps_v5", false},
		{"aws", "m5.metal", true},
		{"aws", "c7i.metal-48xl", true},
		{"aws", "c8i.large", true},
		{"aws", "r8i-flex.16xlarge", true},
		{"aws", "m8i.48xlarge", true},
		{"aws", "m8i.96xlarge", false},
		{"aws", "m6i.xlarge", false},
		{"aws", "m8i", false},
		{"gcp", "n2-standard-8", false},
		{"gcp", "c3-standard-8-metal", false},
		{"", "Standard_D4s_v5", false},
	}
	for _, tt := range tests {
		t.Run(tt.cloud+"/"+tt.instanceType, func(t *testing.T) {
			t.Parallel()
			if got := NestedVirtualization(tt.cloud, tt.instanceType); got != tt.want {
				t.Errorf("NestedVirtualization(%q, %q) = %v, want %v", tt.cloud, tt.instanceType, got, tt.want)
			}
		})
	}
}

func TestValidateTestdataSpecs(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "validate", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no specs in testdata/validate: %v", err)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			s, err := LoadSpec(name)
			if err != nil {
				t.Fatal(err)
			}
			err = Validate(s)
			switch valid := strings.HasPrefix(filepath.Base(name), "valid-"); {
			case valid && err != nil:
				t.Errorf("given %s, Validate() = %v, want no problems", name, err)
			case !valid && err == nil:
				t.Errorf("given %s, Validate() = nil, want problems", name)
			}
		})
	}
}

func ExampleValidate() {
	spec, err := ParseSpec([]byte(`
name: production
kubernetes_version: v1.36.3
gcp: {project: mixed-prod, region: europe-west4, zone: europe-west4-a}
network: {pod_cidr: 10.0.0.0/16}
node_pools:
  windows: {os: windows, isolation: hyperv, count: 3}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var problems Problems
	if errors.As(Validate(spec), &problems) {
		for _, p := range problems {
			fmt.Println(p)
		}
	}
	// Output:
	// kubernetes_version: kubernetes_version "v1.36.3" starts with 'v'; fix: drop the leading v: "1.36.3"
	// network.pod_cidr: "10.0.0.0/16" overlaps network.node_cidr "10.0.0.0/16"; fix: choose network.pod_cidr outside 10.0.0.0/16
	// node_pools: there are Windows pools but no Linux worker nodes, so Linux-only system pods (CoreDNS, CNI controllers) cannot be scheduled; fix: add a Linux pool with count >= 1, or set control_plane.schedulable = true
	// node_pools["windows"].isolation: Hyper-V isolation needs nested Hyper-V, which GCE does not offer (KVM is its only L1 hypervisor); fix: use isolation = "process" on GCP
}

// More than one control-plane node is valid exactly on the clouds whose
// package has load balancer support (Profile.LoadBalancer), and refused on
// the others with the field and the fix.
func TestValidateControlPlaneCountNeedsALoadBalancer(t *testing.T) {
	t.Parallel()
	on := map[string]func(*Spec){"azure": func(*Spec) {}, "aws": onAWS, "gcp": onGCP}
	for _, cloud := range []string{"aws", "azure", "gcp"} {
		prof, _ := clouds.ProfileOf(cloud)
		for _, count := range []int{3, 5} {
			t.Run(fmt.Sprintf("%s/%d", cloud, count), func(t *testing.T) {
				t.Parallel()
				s := validSpec()
				on[cloud](&s)
				s.ControlPlane.Count = count
				err := Validate(s)
				if prof.LoadBalancer {
					if err != nil {
						t.Fatalf("Validate() = %v, want no problems: %s has load balancer support", err, prof.Title)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), "control_plane.count") || !strings.Contains(err.Error(), "load balancer") || !strings.Contains(err.Error(), "fix:") {
					t.Fatalf("Validate() = %v, want control_plane.count refused for want of a load balancer, with a fix", err)
				}
			})
		}
	}
}

// A minor resolves to the newest release the build has pinned artifacts
// for, which is what a caller records; a release and the default stay.
func TestWithDefaultsResolvesAMinor(t *testing.T) {
	t.Parallel()
	for given, want := range map[string]string{"1.36": "1.36.4", "1.34": "1.34.11", "1.35.4": "1.35.4", "": DefaultKubernetesVersion, "1.37": "1.37", "v1.36": "v1.36"} {
		s := validSpec()
		s.KubernetesVersion = given
		if got := s.WithDefaults().KubernetesVersion; got != want {
			t.Errorf("WithDefaults() of kubernetes_version %q = %q, want %q", given, got, want)
		}
	}
	for minor := MinKubernetesMinor; minor <= MaxKubernetesMinor; minor++ {
		s := validSpec()
		s.KubernetesVersion = fmt.Sprintf("1.%d", minor)
		if err := Validate(s); err != nil {
			t.Errorf("minor 1.%d is supported but does not validate: %v", minor, err)
		}
	}
}
