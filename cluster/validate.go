package cluster

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster/internal/validation"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/api/validate/content"
)

// Problem is one thing wrong with a spec.
type Problem struct {
	// Path is the field in Terraform/JSON names, e.g. `node_pools["win"].isolation`.
	Path string
	// Message says what is wrong, naming the value.
	Message string
	// Fix says what to change.
	Fix string
}

// String renders the problem as one line: path, message and fix.
func (p Problem) String() string {
	return p.Path + ": " + p.Message + "; fix: " + p.Fix
}

// Problems is every problem found in a spec; it is an error.
type Problems []Problem

// Error renders one line per problem.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Supported Kubernetes minors (major is always 1): those with releases in
// the agent's built-in manifest, whose binaries have pinned digests
// (nodeagent/manifest). Upstream patches 1.37, 1.36 and 1.35; 1.34 reached
// its end of life on 2026-10-27 (kubernetes.io/releases/1.34) and stays so a
// cluster on it can move on. 1.37 has no pinned Linux binaries yet.
const (
	MinKubernetesMinor = 34
	MaxKubernetesMinor = 36
)

// Size limits of a cluster.
const (
	// MaxClusterNameLength keeps node names, which start with it, readable in
	// lists; Windows computer names are derived to fit NetBIOS (ComputerName).
	MaxClusterNameLength = 20
	// MaxWindowsComputerName is the NetBIOS limit Windows enforces on computer names.
	MaxWindowsComputerName = 15
	// MaxPoolCount bounds one pool; larger pools make one failure domain too big to roll.
	MaxPoolCount = 500
	// MaxNodes bounds the whole cluster, control plane included.
	MaxNodes = 1000
	// MinLinuxDiskGB fits Ubuntu, containerd images and logs.
	MinLinuxDiskGB = 30
	// MinWindowsDiskGB fits Windows Server (the cloud images start at 30-127 GB) plus servercore images.
	MinWindowsDiskGB = 64
)

// Validate checks s after applying its defaults and returns every problem at
// once as Problems, sorted by path then message, or nil when s is valid.
func Validate(s Spec) error {
	v := &validator{s: s.WithDefaults()}
	v.name()
	v.cloud()
	v.kubernetesVersion()
	v.network()
	v.controlPlane()
	v.pools()
	v.nodeNames()
	v.linuxHome()
	v.totalNodes()
	v.access()
	v.artifacts()
	v.tags()
	v.secretsEpoch()
	if len(v.ps) == 0 {
		return nil
	}
	slices.SortStableFunc(v.ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
	return v.ps
}

// validator collects problems of one defaulted spec.
type validator struct {
	s  Spec
	ps Problems
}

func (v *validator) add(path, message, fix string) {
	v.ps = append(v.ps, Problem{Path: path, Message: message, Fix: fix})
}

func (v *validator) poolPath(name string) string { return "node_pools[" + strconv.Quote(name) + "]" }

// sortedPools returns pool names in order, so checks that compare pools are deterministic.
func (v *validator) sortedPools() []string {
	names := make([]string, 0, len(v.s.NodePools))
	for name := range v.s.NodePools {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (v *validator) name() {
	name := v.s.Name
	switch {
	case name == "":
		v.add("name", "the cluster name is empty", `set name to a short DNS-1123 label such as "prod"`)
	case len(content.IsDNS1123Label(name)) > 0:
		v.add("name", fmt.Sprintf("cluster name %q is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)", name),
			fmt.Sprintf("use a name such as %q", validation.SuggestLabel(name, MaxClusterNameLength)))
	case name[0] < 'a' || name[0] > 'z':
		// GCE instance names, which start with the cluster name, must start with a letter.
		v.add("name", fmt.Sprintf("cluster name %q starts with a digit; instance names on GCP must start with a letter", name),
			fmt.Sprintf("start the name with a letter, e.g. %q", validation.SuggestLabel("k"+name, MaxClusterNameLength)))
	}
	if len(name) > MaxClusterNameLength {
		v.add("name", fmt.Sprintf("cluster name %q is %d characters, more than %d", name, len(name), MaxClusterNameLength),
			fmt.Sprintf("shorten the name to at most %d characters", MaxClusterNameLength))
	}
}

// specPatterns are the formats of cloud identifiers and versions, in one value to keep the package namespace small.
var specPatterns = struct {
	uuid, azureLocation, azureGroup, awsRegion, awsZoneTail, awsVPCID, awsSubnetID, gcpProject, gcpRegion, gcpName, kubernetesVersion, kubernetesMinor *regexp.Regexp
}{
	uuid:              regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`),
	azureLocation:     regexp.MustCompile(`^[a-z][a-z0-9]*$`),
	azureGroup:        regexp.MustCompile(`^[-\p{L}\p{N}_.()]{1,90}$`),
	awsRegion:         regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`),
	awsZoneTail:       regexp.MustCompile(`^([a-z]|-[a-z0-9]+(-[a-z0-9]+)*)$`),
	awsVPCID:          regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`),
	awsSubnetID:       regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`),
	gcpProject:        regexp.MustCompile(`^([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$`),
	gcpRegion:         regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`),
	gcpName:           regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`),
	kubernetesVersion: regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`),
	kubernetesMinor:   regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`),
}

// MaxSecretsEpoch bounds secrets_epoch: finding the epoch a node holds reads
// one record per epoch below the spec's, so epochs count rotations, one a time.
const MaxSecretsEpoch = 100

func (v *validator) secretsEpoch() {
	switch e := v.s.SecretsEpoch; {
	case e < 0:
		v.add("secrets_epoch", fmt.Sprintf("secrets_epoch is %d, below 0", e), "set secrets_epoch to 0, or to the epoch the cluster holds plus 1 to rotate its node identities")
	case e > MaxSecretsEpoch:
		v.add("secrets_epoch", fmt.Sprintf("secrets_epoch is %d, above %d", e, MaxSecretsEpoch), "raise secrets_epoch by 1 for each rotation (it counts rotations; it is not a date or a random number)")
	}
}

// tags refuses the project's own keys and what the cloud's rules refuse.
func (v *validator) tags() {
	for _, k := range slices.Sorted(maps.Keys(v.s.Tags)) {
		if strings.HasPrefix(strings.ToLower(k), clouds.ReservedTagPrefix) {
			v.add(fmt.Sprintf("tags[%q]", k), fmt.Sprintf("tag key %q starts with %q, which mixedk8s reserves for its own tags (cluster, pool, role, node)", k, clouds.ReservedTagPrefix),
				"rename the key, e.g. without the prefix")
		}
	}
	if p, ok := clouds.ProfileOf(v.s.CloudName()); ok && p.CheckTags != nil && len(v.s.Tags) > 0 {
		for _, pr := range p.CheckTags(v.s.Tags) {
			v.add(fmt.Sprintf("tags[%q]", pr.Key), pr.Problem, pr.Fix)
		}
	}
}

func (v *validator) cloud() {
	var set []string
	if v.s.Azure != nil {
		set = append(set, "azure")
		v.azure(*v.s.Azure)
	}
	if v.s.AWS != nil {
		set = append(set, "aws")
		v.aws(*v.s.AWS)
	}
	if v.s.GCP != nil {
		set = append(set, "gcp")
		v.gcp(*v.s.GCP)
	}
	switch {
	case len(set) == 0:
		v.add("cloud", "no cloud block is set", "add exactly one of the azure, aws or gcp blocks")
	case len(set) > 1:
		for _, extra := range set[1:] {
			v.add(extra, fmt.Sprintf("%s is set together with %s; a cluster lives on exactly one cloud", extra, set[0]),
				fmt.Sprintf("remove the %s block or the %s block", extra, set[0]))
		}
	default:
		if _, ok := clouds.ProfileOf(set[0]); !ok {
			v.add(set[0], fmt.Sprintf("the %s cloud is not linked into this program, so its defaults and rules are unknown", set[0]),
				fmt.Sprintf("import github.com/mixedk8s/mixedk8s/clouds/%s (it registers the cloud's profile)", set[0]))
		}
	}
}

func (v *validator) azure(a AzureSpec) {
	switch {
	case a.SubscriptionID == "":
		v.add("azure.subscription_id", "the Azure subscription ID is empty", "set subscription_id to the subscription's UUID (az account show --query id)")
	case !specPatterns.uuid.MatchString(a.SubscriptionID):
		v.add("azure.subscription_id", fmt.Sprintf("subscription ID %q is not a UUID", a.SubscriptionID),
			"use the subscription's ID, not its name: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (az account show --query id)")
	}
	switch {
	case a.Location == "":
		v.add("azure.location", "the Azure location is empty", `set location to a region name such as "westeurope"`)
	case !specPatterns.azureLocation.MatchString(a.Location):
		v.add("azure.location", fmt.Sprintf("location %q is not an Azure region name", a.Location),
			fmt.Sprintf("use the region's programmatic name such as %q (az account list-locations -o table)", strings.ToLower(strings.ReplaceAll(a.Location, " ", ""))))
	}
	switch {
	case a.ResourceGroup == "":
		v.add("azure.resource_group", "the Azure resource group is empty", "set resource_group to the group the cluster's resources go in")
	case !specPatterns.azureGroup.MatchString(a.ResourceGroup) || strings.HasSuffix(a.ResourceGroup, "."):
		v.add("azure.resource_group", fmt.Sprintf("resource group name %q is not valid in Azure", a.ResourceGroup),
			"use 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'")
	}
	if a.DiskEncryptionSetID != "" {
		v.diskEncryptionSet(a)
	}
	if a.SubnetID != "" {
		v.azureSubnet(a)
	}
}

// azureSubnet checks an existing subnet's ID: a NIC joins a subnet of its
// own subscription only
// (https://learn.microsoft.com/azure/virtual-network/virtual-network-network-interface#constraints).
func (v *validator) azureSubnet(a AzureSpec) {
	const path = "azure.subnet_id"
	m := keyPatterns.azureSubnet.FindStringSubmatch(a.SubnetID)
	switch {
	case m == nil:
		v.add(path, fmt.Sprintf("%q is not a subnet's resource ID", a.SubnetID),
			"use the ID az network vnet subnet show --query id prints: /subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>")
	case specPatterns.uuid.MatchString(a.SubscriptionID) && !strings.EqualFold(m[1], a.SubscriptionID):
		v.add(path, fmt.Sprintf("the subnet is in subscription %s, the cluster in %s; a network interface joins a subnet of its own subscription only", m[1], a.SubscriptionID),
			fmt.Sprintf("use a subnet of subscription %s, or peer the networks", a.SubscriptionID))
	}
}

// keyPatterns are the shapes of customer-managed key references.
var keyPatterns = struct {
	awsKeyID, awsAlias, awsARN, azureDES, azureSubnet, gcpKey *regexp.Regexp
}{
	// A KMS key ID is a UUID, or mrk- and 32 hex digits for a multi-Region
	// key; an alias is alias/ and 1-250 of [a-zA-Z0-9:/_-]
	// (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id,
	// https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html).
	awsKeyID: regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`),
	awsAlias: regexp.MustCompile(`^alias/[a-zA-Z0-9:/_-]{1,250}$`),
	awsARN:   regexp.MustCompile(`^arn:aws(-[a-z]+)*:kms:([a-z0-9-]+):(\d{12}):(key/.+|alias/.+)$`),
	// /subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/diskEncryptionSets/N, N 1-80 of
	// [a-zA-Z0-9_-] (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftcompute).
	azureSubnet: regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Network/virtualNetworks/([^/]+)/subnets/([^/]+)$`),
	azureDES:    regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/diskEncryptionSets/([a-zA-Z0-9_-]{1,80})$`),
	// projects/P/locations/L/keyRings/R/cryptoKeys/K, R and K 1-63 of [a-zA-Z0-9_-]
	// (https://cloud.google.com/kms/docs/resource-hierarchy#retrieve_resource_id).
	gcpKey: regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)/keyRings/([a-zA-Z0-9_-]{1,63})/cryptoKeys/([a-zA-Z0-9_-]{1,63})$`),
}

func (v *validator) diskEncryptionSet(a AzureSpec) {
	const path = "azure.disk_encryption_set_id"
	m := keyPatterns.azureDES.FindStringSubmatch(a.DiskEncryptionSetID)
	switch {
	case m == nil:
		v.add(path, fmt.Sprintf("%q is not a disk encryption set's resource ID", a.DiskEncryptionSetID),
			"use the ID az disk-encryption-set show --query id prints: /subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Compute/diskEncryptionSets/<name>")
	case specPatterns.uuid.MatchString(a.SubscriptionID) && !strings.EqualFold(m[1], a.SubscriptionID):
		// "Your Azure Key Vault, disk encryption sets, VMs, disks, and snapshots must all be
		// in the same subscription and region" (https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions).
		v.add(path, fmt.Sprintf("the disk encryption set is in subscription %s, the cluster in %s; Azure encrypts disks only with a set of their own subscription", m[1], a.SubscriptionID),
			fmt.Sprintf("create the disk encryption set in subscription %s and location %s", a.SubscriptionID, cmp.Or(a.Location, "the cluster's")))
	}
}

func (v *validator) aws(a AWSSpec) {
	v.awsNetwork(a)
	switch {
	case a.Region == "":
		v.add("aws.region", "the AWS region is empty", `set region such as "eu-west-1"`)
		return
	case !specPatterns.awsRegion.MatchString(a.Region):
		v.add("aws.region", fmt.Sprintf("region %q is not an AWS region code", a.Region), `use a region code such as "eu-west-1", not a zone or display name`)
		return
	}
	seen := map[string]int{}
	for i, z := range a.Zones {
		path := fmt.Sprintf("aws.zones[%d]", i)
		tail, inRegion := strings.CutPrefix(z, a.Region)
		switch {
		case !inRegion || !specPatterns.awsZoneTail.MatchString(tail):
			v.add(path, fmt.Sprintf("zone %q is not a zone of region %q", z, a.Region),
				fmt.Sprintf("use zone names of %s such as %q (zone names, not zone IDs)", a.Region, a.Region+"a"))
		case seen[z] > 0:
			v.add(path, fmt.Sprintf("zone %q is listed twice (first at aws.zones[%d])", z, seen[z]-1), "remove the duplicate zone")
		}
		if seen[z] == 0 {
			seen[z] = i + 1
		}
	}
	if a.KMSKeyID != "" {
		v.kmsKey(a)
	}
}

// kmsKey checks aws.kms_key_id by its form: EC2 checks a volume's key only
// after RunInstances has answered, so a mistake would surface as an
// instance that terminates at launch.
func (v *validator) kmsKey(a AWSSpec) {
	const path = "aws.kms_key_id"
	const forms = "a key ID (1234abcd-12ab-34cd-56ef-1234567890ab), a key ARN (arn:aws:kms:<region>:<account>:key/<key ID>), an alias (alias/<name>) or an alias ARN (arn:aws:kms:<region>:<account>:alias/<name>)"
	k := a.KMSKeyID
	name := k // the key ID or alias part
	if m := keyPatterns.awsARN.FindStringSubmatch(k); m != nil {
		if m[2] != a.Region {
			// KMS keys are regional: SSM and EBS use a key of their own region.
			v.add(path, fmt.Sprintf("key %q is in region %s, the cluster in %s; KMS keys are regional", k, m[2], a.Region),
				fmt.Sprintf("use a key of %s (a multi-Region key's replica there has its own ARN)", a.Region))
			return
		}
		name = m[4]
	} else if strings.HasPrefix(k, "arn:") {
		v.add(path, fmt.Sprintf("%q is not a KMS key or alias ARN", k), "use "+forms)
		return
	}
	id, isKey := strings.CutPrefix(name, "key/")
	switch {
	case strings.HasPrefix(name, "alias/aws/"):
		// AWS managed keys serve one service each and take no grants for another
		// (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk).
		v.add(path, fmt.Sprintf("%q is an AWS managed key, which serves only its own service; one key encrypts both the SSM parameters and the EBS volumes", k),
			"name a customer managed key, or leave kms_key_id empty for aws/ssm and aws/ebs")
	case strings.HasPrefix(name, "alias/"):
		if !keyPatterns.awsAlias.MatchString(name) {
			v.add(path, fmt.Sprintf("alias %q is not a KMS alias name", name), "use alias/ and 1-250 letters, digits, '/', '_', '-' or ':'")
		}
	case isKey || name == k:
		if !keyPatterns.awsKeyID.MatchString(id) {
			v.add(path, fmt.Sprintf("%q is not a KMS key ID", id), "use "+forms)
		}
	default:
		v.add(path, fmt.Sprintf("%q is not a KMS key reference", k), "use "+forms)
	}
}

// awsNetwork checks an existing network's IDs by their form; the cloud's
// preflight checks at plan time that they exist, that the subnets are in
// the VPC and that each is in a zone of its own (clouds/aws preflight.go).
// EC2 IDs are the type's prefix and 8 or 17 hexadecimal digits
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html).
func (v *validator) awsNetwork(a AWSSpec) {
	switch {
	case a.VPCID != "" && len(a.SubnetIDs) == 0:
		v.add("aws.subnet_ids", fmt.Sprintf("aws.vpc_id is %q but no subnet is listed; the nodes need subnets of that VPC", a.VPCID),
			"list the subnets of the VPC the nodes go in, one per zone (subnet_ids = [\"subnet-...\"]), or remove vpc_id to let the cluster create its own VPC")
	case a.VPCID == "" && len(a.SubnetIDs) > 0:
		v.add("aws.vpc_id", "aws.subnet_ids is set without the VPC they belong to",
			"set vpc_id to the subnets' VPC (aws ec2 describe-subnets --subnet-ids ... --query 'Subnets[].VpcId'), or remove subnet_ids to let the cluster create its own VPC")
	}
	if a.VPCID != "" && !specPatterns.awsVPCID.MatchString(a.VPCID) {
		v.add("aws.vpc_id", fmt.Sprintf("%q is not a VPC ID (vpc- and 8 or 17 hexadecimal digits)", a.VPCID),
			"use the VPC's ID, such as \"vpc-0a1b2c3d4e5f67890\" (aws ec2 describe-vpcs), not its name or CIDR")
	}
	seen := map[string]int{}
	for i, id := range a.SubnetIDs {
		path := fmt.Sprintf("aws.subnet_ids[%d]", i)
		switch {
		case !specPatterns.awsSubnetID.MatchString(id):
			v.add(path, fmt.Sprintf("%q is not a subnet ID (subnet- and 8 or 17 hexadecimal digits)", id),
				"use the subnet's ID, such as \"subnet-0a1b2c3d4e5f67890\" (aws ec2 describe-subnets), not its name or CIDR")
		case seen[id] > 0:
			v.add(path, fmt.Sprintf("subnet %q is listed twice (first at aws.subnet_ids[%d])", id, seen[id]-1), "remove the duplicate subnet")
		}
		if seen[id] == 0 {
			seen[id] = i + 1
		}
	}
	if len(a.SubnetIDs) > 0 && len(a.Zones) > 0 {
		v.add("aws.zones", "aws.zones and aws.subnet_ids are both set; with existing subnets the nodes go in the subnets' zones",
			"remove zones (each subnet's zone is used)")
	}
}

func (v *validator) gcp(g GCPSpec) {
	switch {
	case g.Project == "":
		v.add("gcp.project", "the GCP project is empty", "set project to the project ID (gcloud config get project)")
	case !specPatterns.gcpProject.MatchString(g.Project):
		v.add("gcp.project", fmt.Sprintf("project %q is not a GCP project ID", g.Project),
			"use the project ID (6-30 lowercase letters, digits and '-', starting with a letter), not its display name or number")
	}
	regionOK := false
	switch {
	case g.Region == "":
		v.add("gcp.region", "the GCP region is empty", `set region such as "europe-west4"`)
	case !specPatterns.gcpRegion.MatchString(g.Region):
		v.add("gcp.region", fmt.Sprintf("region %q is not a GCP region name", g.Region), `use a region name such as "europe-west4", not a zone`)
	default:
		regionOK = true
	}
	tail, inRegion := strings.CutPrefix(g.Zone, g.Region+"-")
	switch {
	case g.Zone == "":
		v.add("gcp.zone", "the GCP zone is empty", fmt.Sprintf("set zone to a zone of the region such as %q", cmp.Or(g.Region, "europe-west4")+"-a"))
	case regionOK && (!inRegion || len(tail) != 1 || tail[0] < 'a' || tail[0] > 'z'):
		v.add("gcp.zone", fmt.Sprintf("zone %q is not a zone of region %q", g.Zone, g.Region),
			fmt.Sprintf("use a zone of %s such as %q, or change region", g.Region, g.Region+"-a"))
	}
	if g.KMSKeyName != "" && regionOK {
		v.cloudKMSKey(g)
	}
	v.gcpNetwork(g)
}

// gcpNetwork checks an existing network's names: both or neither, each a
// Compute name (RFC 1035, at most 63 characters,
// https://cloud.google.com/compute/docs/naming-resources).
func (v *validator) gcpNetwork(g GCPSpec) {
	switch {
	case g.Network != "" && g.Subnetwork == "":
		v.add("gcp.subnetwork", fmt.Sprintf("gcp.network is %q but no subnetwork is named; the nodes need a subnetwork of that network in the region", g.Network),
			"set subnetwork to the name of the network's subnetwork in the cluster's region, or remove network to let the cluster create its own")
	case g.Network == "" && g.Subnetwork != "":
		v.add("gcp.network", "gcp.subnetwork is set without the network it belongs to",
			"set network to the subnetwork's network name, or remove subnetwork to let the cluster create its own network")
	}
	// A Shared VPC host is a project ID
	// (https://cloud.google.com/vpc/docs/shared-vpc), another than the
	// cluster's, of the network named beside it.
	switch {
	case g.NetworkProject != "" && g.Network == "":
		v.add("gcp.network_project", fmt.Sprintf("gcp.network_project is %q but no network is named", g.NetworkProject),
			"set network and subnetwork to the host project's network and subnetwork, or remove network_project")
	case g.NetworkProject != "" && !specPatterns.gcpProject.MatchString(g.NetworkProject):
		v.add("gcp.network_project", fmt.Sprintf("%q is not a GCP project ID", g.NetworkProject),
			"use the Shared VPC host project's ID (gcloud compute shared-vpc get-host-project <the cluster's project>), not its name or number")
	case g.NetworkProject != "" && g.NetworkProject == g.Project:
		v.add("gcp.network_project", "gcp.network_project is the cluster's own project",
			"remove network_project: a network of the cluster's project needs none")
	}
	for _, f := range []struct{ path, name string }{{"gcp.network", g.Network}, {"gcp.subnetwork", g.Subnetwork}} {
		if f.name != "" && !specPatterns.gcpName.MatchString(f.name) {
			v.add(f.path, fmt.Sprintf("%q is not a Compute resource name", f.name),
				"use the name, not the URL: 1-63 lowercase letters, digits and '-', starting with a letter (gcloud compute networks list)")
		}
	}
}

// cloudKMSKey checks gcp.kms_key_name: its form, and that it lives in the
// cluster's region, where the secrets are replicated.
func (v *validator) cloudKMSKey(g GCPSpec) {
	const path = "gcp.kms_key_name"
	k := g.KMSKeyName
	m := keyPatterns.gcpKey.FindStringSubmatch(k)
	switch {
	case strings.Contains(k, "/cryptoKeyVersions/"):
		v.add(path, fmt.Sprintf("%q names a key version", k), "name the key itself, without /cryptoKeyVersions/...: new versions are used as the key rotates")
	case m == nil:
		v.add(path, fmt.Sprintf("%q is not a Cloud KMS key name", k),
			"use projects/<project>/locations/"+g.Region+"/keyRings/<key ring>/cryptoKeys/<key> (gcloud kms keys describe <key> --keyring <key ring> --location "+g.Region+" --format 'value(name)')")
	case m[2] != g.Region:
		// A user-managed replica's key "must reside in the same location as the replica location"
		// (secretmanagerpb CustomerManagedEncryption.kms_key_name); the secrets have one replica, in gcp.region.
		v.add(path, fmt.Sprintf("key %q is in location %s; the cluster's secrets are kept in %s and Secret Manager encrypts a replica only with a key of its location", k, m[2], g.Region),
			fmt.Sprintf("use a key from a key ring in %s", g.Region))
	}
}

// keyAlgoDSA is spelt out: the library constant is deprecated, and we only name DSA to refuse it.
const keyAlgoDSA = "ssh-dss"

// kubernetesMinor returns the minor of a supported release, or -1.
func (v *validator) kubernetesMinor() int {
	m := specPatterns.kubernetesVersion.FindStringSubmatch(v.s.KubernetesVersion)
	if m == nil {
		return -1
	}
	if _, ok := manifest.ComponentsFor(v.s.KubernetesVersion); !ok {
		return -1
	}
	minor, err := strconv.Atoi(m[2])
	if err != nil {
		return -1
	}
	return minor
}

func (v *validator) kubernetesVersion() {
	ver := v.s.KubernetesVersion
	releases := validation.ReleaseRanges(manifest.Versions())
	minors := fmt.Sprintf(`"1.%d" to "1.%d"`, MinKubernetesMinor, MaxKubernetesMinor)
	switch {
	case strings.HasPrefix(ver, "v") && specPatterns.kubernetesVersion.MatchString(ver[1:]):
		v.add("kubernetes_version", fmt.Sprintf("kubernetes_version %q starts with 'v'", ver), fmt.Sprintf("drop the leading v: %q", ver[1:]))
	case specPatterns.kubernetesMinor.MatchString(ver):
		v.add("kubernetes_version", fmt.Sprintf("kubernetes_version %q names a minor this build has no release of", ver),
			fmt.Sprintf("use a minor from %s, or one of the releases %s", minors, releases))
	case !specPatterns.kubernetesVersion.MatchString(ver):
		v.add("kubernetes_version", fmt.Sprintf("kubernetes_version %q is neither MAJOR.MINOR.PATCH nor MAJOR.MINOR", ver),
			fmt.Sprintf("give a release such as %q, or a minor such as \"1.%d\" for its newest release (no pre-releases)", DefaultKubernetesVersion, MaxKubernetesMinor))
	case v.kubernetesMinor() < 0:
		v.add("kubernetes_version", fmt.Sprintf("kubernetes_version %q has no built-in artifacts: this build pins the digests of %s only", ver, releases),
			fmt.Sprintf("use one of those releases, or a minor from %s for its newest release", minors))
	}
}

// Calico's support matrix, for the release the node agent applies
// (nodeagent/manifest.CalicoVersion; a test keeps the two equal):
//   - Kubernetes: Calico 3.32 is tested against 1.34, 1.35 and 1.36
//     (docs.tigera.io/calico/3.32/getting-started/kubernetes/requirements,
//     "Kubernetes requirements", "Supported versions");
//   - Windows: Calico for Windows 3.32 supports Windows Server 1809 (2019)
//     and 2022 (docs.tigera.io/calico/3.32/getting-started/kubernetes/
//     windows-calico/requirements, "Windows platform requirements"); 2025
//     is not listed.
const calicoRelease = "3.32"

var (
	calicoKubernetesMinors = []int{34, 35, 36}
	calicoWindowsServers   = []string{"2019", "2022"}
)

// supportedWindowsServers lists the Windows Server releases upstream Kubernetes supports
// for nodes at a minor: the 1.34 and older docs list 2019 and 2022, the 1.35+
// docs 2022 and 2025 (kubernetes/website concepts/windows/intro.md, PRs 53724 and 55103).
func supportedWindowsServers(minor int) []string {
	if minor <= 34 {
		return []string{"2019", "2022"}
	}
	return []string{"2022", "2025"}
}

// parseCIDR checks one network CIDR and returns it when usable for the overlap and size checks.
func (v *validator) parseCIDR(path, value string, ranges ...netip.Prefix) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(value)
	switch {
	case err != nil:
		v.add(path, fmt.Sprintf("%q is not a CIDR prefix: %v", value, err), `write an IPv4 prefix such as "10.0.0.0/16"`)
		return p, false
	case !p.Addr().Is4():
		v.add(path, fmt.Sprintf("%q is not IPv4; the cluster network is IPv4 only (Windows overlay networking has no IPv6)", value), `use an IPv4 prefix such as "10.0.0.0/16"`)
		return p, false
	case p.Masked() != p:
		v.add(path, fmt.Sprintf("%q has host bits set", value), fmt.Sprintf("use %q", p.Masked().String()))
		return p, false
	}
	if !validation.Within(p, ranges...) {
		names := make([]string, len(ranges))
		for i, r := range ranges {
			names[i] = r.String()
		}
		v.add(path, fmt.Sprintf("%q is not a private range", value), "use a prefix inside "+strings.Join(names, ", "))
		return p, false
	}
	return p, true
}

func (v *validator) network() {
	n := v.s.Network
	switch n.CNI {
	case CNIFlannel:
	case CNICalico:
		if minor := v.kubernetesMinor(); minor >= 0 && !slices.Contains(calicoKubernetesMinors, minor) {
			v.add("network.cni", fmt.Sprintf("Calico %s is not tested with Kubernetes 1.%d (Calico's docs list 1.%d to 1.%d)", calicoRelease, minor, calicoKubernetesMinors[0], calicoKubernetesMinors[len(calicoKubernetesMinors)-1]),
				fmt.Sprintf(`use kubernetes_version 1.%d.x, or network.cni = "flannel"`, calicoKubernetesMinors[len(calicoKubernetesMinors)-1]))
		}
	default:
		v.add("network.cni", fmt.Sprintf("CNI %q is not supported", n.CNI), `use "flannel" (the default)`)
	}
	nodes, nodeOK := v.parseCIDR("network.node_cidr", n.NodeCIDR, validation.RFC1918...)
	pods, podOK := v.parseCIDR("network.pod_cidr", n.PodCIDR, append(slices.Clone(validation.RFC1918), validation.RFC6598)...)
	svcs, svcOK := v.parseCIDR("network.service_cidr", n.ServiceCIDR, append(slices.Clone(validation.RFC1918), validation.RFC6598)...)

	total := v.nodeCount()
	fits := total <= MaxNodes // above that, totalNodes reports it; fit checks would only repeat it
	if nodeOK {
		// 16..28: the VPC/subnet sizes all three clouds accept (AWS allows /16 to /28).
		switch {
		case nodes.Bits() < 16 || nodes.Bits() > 28:
			v.add("network.node_cidr", fmt.Sprintf("node CIDR %q is a /%d; clouds accept /16 to /28 for the node network", n.NodeCIDR, nodes.Bits()),
				`use a prefix length from /16 to /28, such as "10.0.0.0/16"`)
		case fits && (1<<(32-nodes.Bits())-5) < total:
			// Each cloud reserves up to 5 addresses per subnet (AWS and Azure 5, GCP 4).
			v.add("network.node_cidr", fmt.Sprintf("node CIDR %q holds %d usable addresses, fewer than the %d nodes", n.NodeCIDR, (1<<(32-nodes.Bits())-5), total),
				fmt.Sprintf("use a prefix of /%d or wider", validation.LongestPrefixFor(total+5, 32)))
		}
	}
	if podOK {
		// Pods get a /24 per node (kube-controller-manager --node-cidr-mask-size default).
		switch {
		case pods.Bits() > 16:
			v.add("network.pod_cidr", fmt.Sprintf("pod CIDR %q is a /%d, narrower than /16", n.PodCIDR, pods.Bits()), `use a /16 or wider, such as "10.244.0.0/16"`)
		case fits && 1<<(24-pods.Bits()) < total:
			v.add("network.pod_cidr", fmt.Sprintf("pod CIDR %q holds %d node ranges (/24 each), fewer than the %d nodes", n.PodCIDR, 1<<(24-pods.Bits()), total),
				fmt.Sprintf("use a prefix of /%d or wider", validation.LongestPrefixFor(total, 24)))
		}
	}
	if svcOK && (svcs.Bits() < 12 || svcs.Bits() > 24) {
		// kube-apiserver refuses IPv4 service ranges wider than /12; below /24 leaves too few Service IPs.
		v.add("network.service_cidr", fmt.Sprintf("service CIDR %q is a /%d; the API server takes /12 to /24", n.ServiceCIDR, svcs.Bits()),
			`use a prefix length from /12 to /24, such as "10.96.0.0/12"`)
	}
	overlap := func(aOK, bOK bool, a, b netip.Prefix, aPath, bPath string) {
		if aOK && bOK && a.Overlaps(b) {
			v.add(bPath, fmt.Sprintf("%q overlaps %s %q", b, aPath, a), fmt.Sprintf("choose %s outside %s", bPath, a))
		}
	}
	overlap(nodeOK, podOK, nodes, pods, "network.node_cidr", "network.pod_cidr")
	overlap(nodeOK, svcOK, nodes, svcs, "network.node_cidr", "network.service_cidr")
	overlap(podOK, svcOK, pods, svcs, "network.pod_cidr", "network.service_cidr")
}

// nodeCount is the number of nodes the spec asks for, saturating instead of overflowing.
func (v *validator) nodeCount() int {
	total := max(v.s.ControlPlane.Count, 0)
	for _, p := range v.s.NodePools {
		c := max(p.Count, 0)
		if total > math.MaxInt-c {
			return math.MaxInt
		}
		total += c
	}
	return total
}

func (v *validator) controlPlane() {
	cp := v.s.ControlPlane
	switch cp.Count {
	case 1:
	case 3, 5:
		// More than one API server needs one address in front of them all:
		// the cloud's load balancer, which not every cloud package provides.
		if prof, ok := clouds.ProfileOf(v.s.CloudName()); ok && !prof.LoadBalancer {
			v.add("control_plane.count", fmt.Sprintf("%d control-plane nodes need an API load balancer in front of them, and the %s cloud package has no load balancer support yet", cp.Count, prof.Title),
				"set count to 1, or use a cloud whose package implements clouds.LoadBalancers")
		}
	default:
		v.add("control_plane.count", fmt.Sprintf("control-plane count %d is not 1, 3 or 5; etcd needs an odd quorum", cp.Count), "use 1 (lab), 3 or 5")
	}
	v.instanceType("control_plane.instance_type", cp.InstanceType, Linux)
	if cp.DiskGB < MinLinuxDiskGB {
		v.add("control_plane.disk_gb", fmt.Sprintf("control-plane disk of %d GB is under %d GB", cp.DiskGB, MinLinuxDiskGB), fmt.Sprintf("set disk_gb to %d or more", MinLinuxDiskGB))
	}
}

// instanceType checks a machine size; defaults fill it whenever a cloud is set, so only blanks and typos reach here.
func (v *validator) instanceType(path, t string, os OS) {
	if _, ok := clouds.ProfileOf(v.s.CloudName()); !ok {
		return // without one known cloud there is no default to suggest; the cloud problem comes first
	}
	if strings.TrimSpace(t) == "" || strings.ContainsAny(t, " \t\r\n") {
		v.add(path, fmt.Sprintf("instance type %q is blank or contains spaces", t), "set instance_type to the cloud's size name, e.g. "+v.s.defaultInstanceType(os))
	}
}

// reservedPoolNames would make pool node names look like control-plane nodes.
var reservedPoolNames = []string{"cp", "control-plane"}

func (v *validator) pools() {
	cloud := v.s.CloudName()
	minor := v.kubernetesMinor()
	for _, name := range v.sortedPools() {
		p := v.s.NodePools[name]
		path := v.poolPath(name)
		switch {
		case len(content.IsDNS1123Label(name)) > 0:
			v.add(path, fmt.Sprintf("pool name %q is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)", name),
				fmt.Sprintf("rename the pool, e.g. to %q", validation.SuggestLabel(name, 10)))
		case slices.Contains(reservedPoolNames, name):
			v.add(path, fmt.Sprintf("pool name %q is reserved for the control plane", name), `rename the pool, e.g. to "workers"`)
		}
		switch {
		case p.Count < 0 || p.Count > MaxPoolCount:
			v.add(path+".count", fmt.Sprintf("count %d is outside 0..%d", p.Count, MaxPoolCount), fmt.Sprintf("set count from 0 to %d; split bigger pools", MaxPoolCount))
		}
		v.instanceType(path+".instance_type", p.InstanceType, p.OS)
		switch p.OS {
		case Linux:
			v.linuxPool(path, p)
		case Windows:
			v.windowsPool(path, p, cloud, minor)
		default:
			v.add(path+".os", fmt.Sprintf("os %q is not supported", p.OS), `use "linux" or "windows"`)
		}
		v.labels(path, p.Labels)
		v.taints(path, p.Taints)
		v.rolling(path, p)
	}
}

// MinReplaceNotReadyAfter keeps a node that is NotReady for an ordinary
// reason from being replaced: a Windows node's join reboots it once, and a
// kubelet restart or a CNI restart takes a minute or two.
const MinReplaceNotReadyAfter = 5 * time.Minute

// rolling checks how a pool's nodes are replaced: a surge and an
// unavailability that are both 0 could replace nothing (Kubernetes'
// Deployment refuses the same, apps/validation ValidateRollingUpdateDeployment).
func (v *validator) rolling(path string, p PoolSpec) {
	surge, unavailable := p.Surge()
	if surge < 0 {
		v.add(path+".max_surge", fmt.Sprintf("max_surge %d is negative", surge), "set max_surge to 0 or more (default 1)")
	}
	if unavailable < 0 {
		v.add(path+".max_unavailable", fmt.Sprintf("max_unavailable %d is negative", unavailable), "set max_unavailable to 0 or more (default 0)")
	}
	if surge == 0 && unavailable == 0 {
		v.add(path+".max_surge", "max_surge and max_unavailable are both 0, so no node could ever be replaced",
			"set max_surge to 1 (a new node Ready before each old one is drained), or max_unavailable to 1 (drain first, for a quota with no room)")
	}
	if p.ReplaceNotReadyAfter != "" {
		d, err := time.ParseDuration(p.ReplaceNotReadyAfter)
		switch {
		case err != nil:
			v.add(path+".replace_not_ready_after", fmt.Sprintf("%q is not a duration", p.ReplaceNotReadyAfter), `write it as "15m" or "1h30m", or leave it empty to never replace a node for being NotReady`)
		case d < MinReplaceNotReadyAfter:
			v.add(path+".replace_not_ready_after", fmt.Sprintf("%s is under %s; a node that reboots or restarts its kubelet would be replaced", d, MinReplaceNotReadyAfter),
				fmt.Sprintf("set it to %s or more, or leave it empty", MinReplaceNotReadyAfter))
		}
	}
}

func (v *validator) linuxPool(path string, p PoolSpec) {
	if p.WindowsVersion != "" {
		v.add(path+".windows_version", fmt.Sprintf("windows_version %q is set on a Linux pool", p.WindowsVersion), `remove windows_version, or set os = "windows"`)
	}
	if p.Isolation != "" {
		v.add(path+".isolation", fmt.Sprintf("isolation %q is set on a Linux pool; it applies to Windows containers only", p.Isolation), `remove isolation, or set os = "windows"`)
	}
	if p.DiskGB < MinLinuxDiskGB {
		v.add(path+".disk_gb", fmt.Sprintf("disk of %d GB is under %d GB", p.DiskGB, MinLinuxDiskGB), fmt.Sprintf("set disk_gb to %d or more", MinLinuxDiskGB))
	}
}

func (v *validator) windowsPool(path string, p PoolSpec, cloud string, minor int) {
	switch {
	case !slices.Contains([]string{"2019", "2022", "2025"}, p.WindowsVersion):
		v.add(path+".windows_version", fmt.Sprintf("windows_version %q is not a supported Windows Server release", p.WindowsVersion), `use "2022" or "2025"`)
	case minor >= 0 && !slices.Contains(supportedWindowsServers(minor), p.WindowsVersion):
		ok := supportedWindowsServers(minor)
		v.add(path+".windows_version", fmt.Sprintf("Windows Server %s is not supported by Kubernetes 1.%d (supported: %s)", p.WindowsVersion, minor, strings.Join(ok, ", ")),
			fmt.Sprintf("use windows_version %s, or a kubernetes_version that supports %s", strings.Join(ok, " or "), p.WindowsVersion))
	case v.s.Network.CNI == CNICalico && !slices.Contains(calicoWindowsServers, p.WindowsVersion):
		v.add(path+".windows_version", fmt.Sprintf("Calico for Windows %s does not support Windows Server %s (it supports %s)", calicoRelease, p.WindowsVersion, strings.Join(calicoWindowsServers, " and ")),
			`use network.cni = "flannel", or windows_version "2022"`)
	}
	switch p.Isolation {
	case IsolationProcess:
	case IsolationHyperV:
		prof, known := clouds.ProfileOf(cloud)
		switch {
		case known && prof.RefuseHyperV != "":
			v.add(path+".isolation", prof.RefuseHyperV, fmt.Sprintf(`use isolation = "process" on %s`, prof.Title))
		case known && p.InstanceType != "" && !prof.Nested(p.InstanceType):
			v.add(path+".instance_type", fmt.Sprintf("instance type %q has no nested virtualisation, which Hyper-V isolation needs", p.InstanceType),
				fmt.Sprintf("use an instance type with nested virtualisation (%s), or isolation = \"process\"", prof.NestedExamples))
		}
	default:
		v.add(path+".isolation", fmt.Sprintf("isolation %q is not supported", p.Isolation), `use "process" or "hyperv"`)
	}
	if p.DiskGB < MinWindowsDiskGB {
		v.add(path+".disk_gb", fmt.Sprintf("disk of %d GB is under %d GB, too small for Windows Server and its container images", p.DiskGB, MinWindowsDiskGB),
			fmt.Sprintf("set disk_gb to %d or more (default %d)", MinWindowsDiskGB, DefaultWindowsDiskGB))
	}
}

// NestedVirtualization reports whether instances of instanceType on cloud
// ("azure", "aws" or "gcp") can run Hyper-V inside, as Hyper-V isolated
// Windows containers need: the cloud's registered profile decides (its
// package cites the cloud's documentation); an unlinked cloud says no.
func NestedVirtualization(cloud, instanceType string) bool {
	p, ok := clouds.ProfileOf(cloud)
	return ok && p.Nested(instanceType)
}

// nodeNames checks the names nodes get: <cluster>-cp-<i> and <cluster>-<pool>-<i>.
func (v *validator) nodeNames() {
	cluster := v.s.Name
	owner := map[string]string{"cp": "control_plane"} // lowercased pool name -> path of its first owner
	for _, name := range v.sortedPools() {
		p := v.s.NodePools[name]
		path := v.poolPath(name)
		// An empty pool is checked as if it had one node; a rolling
		// replacement names its surge nodes after the pool's last ordinal.
		surge, _ := p.Surge()
		last := max(min(p.Count, MaxPoolCount)-1, 0) + max(min(surge, MaxPoolCount), 0)
		longest := fmt.Sprintf("%s-%s-%d", cluster, name, last)
		if first, dup := owner[strings.ToLower(name)]; dup {
			v.add(path, fmt.Sprintf("pool %q gives nodes the same names as %s when case is ignored (e.g. %q)", name, first, longest),
				"rename one of the pools; Windows computer names and DNS names ignore case")
		} else {
			owner[strings.ToLower(name)] = path
		}
		if len(longest) > 63 {
			v.add(path, fmt.Sprintf("node name %q is %d characters; host and instance names allow 63", longest, len(longest)),
				fmt.Sprintf("shorten the pool name to at most %d characters", 63-len(cluster)-len(strconv.Itoa(last))-2))
		}
	}
	v.computerNames()
}

// computerNames refuses two Windows nodes whose computer names are the same
// when case is ignored, as NetBIOS compares them: shortened names keep 20
// bits of a hash, so two pools can collide, rarely.
func (v *validator) computerNames() {
	type owner struct{ path, node string }
	seen := map[string]owner{}
	for _, name := range v.sortedPools() {
		p := v.s.NodePools[name]
		if p.OS != Windows {
			continue
		}
		// A rolling replacement's surge nodes take ordinals up to count-1+max_surge.
		surge, _ := p.Surge()
		for i := range max(min(p.Count, MaxPoolCount), 1) + max(min(surge, MaxPoolCount), 0) {
			node := NodeName(v.s.Name, name, i)
			cn := strings.ToLower(ComputerName(node))
			first, dup := seen[cn]
			if !dup {
				seen[cn] = owner{v.poolPath(name), node}
				continue
			}
			v.add(v.poolPath(name), fmt.Sprintf("Windows node %q would get the computer name %q, as %s's node %q does", node, cn, first.path, first.node),
				"rename this pool (another name gives other computer names)")
			break
		}
	}
}

// linuxHome makes sure system pods (CoreDNS, the CNI's controllers) have a Linux node to run on.
func (v *validator) linuxHome() {
	windows, linux := false, v.s.ControlPlane.Schedulable
	for _, p := range v.s.NodePools {
		windows = windows || p.OS == Windows
		linux = linux || (p.OS == Linux && p.Count >= 1)
	}
	if windows && !linux {
		v.add("node_pools", "there are Windows pools but no Linux worker nodes, so Linux-only system pods (CoreDNS, CNI controllers) cannot be scheduled",
			"add a Linux pool with count >= 1, or set control_plane.schedulable = true")
	}
}

func (v *validator) totalNodes() {
	if total := v.nodeCount(); total > MaxNodes {
		v.add("node_pools", fmt.Sprintf("the cluster has %d nodes (control plane included), more than %d", total, MaxNodes),
			fmt.Sprintf("reduce pool counts to at most %d nodes in total, or split the workload over several clusters", MaxNodes))
	}
}

func (v *validator) labels(pool string, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := fmt.Sprintf("%s.labels[%s]", pool, strconv.Quote(k))
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			v.add(path, fmt.Sprintf("label key %q is not valid: %s", k, validation.Brief(msgs)),
				"use [prefix/]name: an optional DNS subdomain prefix and a name of at most 63 letters, digits, '-', '_' or '.'")
		} else if why := validation.ReservedKey(k); why != "" {
			v.add(path, fmt.Sprintf("label key %q %s", k, why), "use a key under your own domain, e.g. example.com/"+k[strings.Index(k, "/")+1:])
		}
		if msgs := content.IsLabelValue(labels[k]); len(msgs) > 0 {
			v.add(path, fmt.Sprintf("label value %q is not valid: %s", labels[k], validation.Brief(msgs)),
				"use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, or an empty value")
		}
	}
}

func (v *validator) taints(pool string, taints []string) {
	seen := map[[2]string]int{}
	for i, raw := range taints {
		path := fmt.Sprintf("%s.taints[%d]", pool, i)
		t, err := validation.ParseTaint(raw)
		if err != nil {
			v.add(path, err.Error(), `write key=value:Effect or key:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute, e.g. "os=windows:NoSchedule"`)
			continue
		}
		if why := validation.ReservedKey(t.Key); why != "" {
			v.add(path, fmt.Sprintf("taint key %q %s", t.Key, why), "use a key under your own domain or without a prefix, e.g. "+t.Key[strings.Index(t.Key, "/")+1:])
			continue
		}
		id := [2]string{t.Key, t.Effect}
		if first, dup := seen[id]; dup {
			v.add(path, fmt.Sprintf("taint %q repeats key %q with effect %s (first at taints[%d])", raw, t.Key, t.Effect, first),
				"keep one taint per key and effect")
			continue
		}
		seen[id] = i
	}
}

func (v *validator) access() {
	a := v.s.Access
	seen := map[netip.Prefix]int{}
	for i, c := range a.AdminCIDRs {
		// 0.0.0.0/0 is allowed: the API server, SSH and WinRM all authenticate, and labs need it.
		path := fmt.Sprintf("access.admin_cidrs[%d]", i)
		p, err := netip.ParsePrefix(c)
		switch {
		case err != nil:
			v.add(path, fmt.Sprintf("%q is not a CIDR prefix: %v", c, err), `write an IPv4 or IPv6 prefix such as "203.0.113.0/24" or "2001:db8::/48"; a single address is /32 or /128`)
			continue
		case p.Masked() != p:
			v.add(path, fmt.Sprintf("%q has host bits set", c), fmt.Sprintf("use %q", p.Masked().String()))
			continue
		}
		if first, dup := seen[p]; dup {
			v.add(path, fmt.Sprintf("%q is listed twice (first at admin_cidrs[%d])", c, first), "remove the duplicate")
			continue
		}
		seen[p] = i
	}
	for i, k := range a.SSHPublicKeys {
		v.publicKey(fmt.Sprintf("access.ssh_public_keys[%d]", i), k, "the SSH public key")
	}
	if b := a.Bastion; b != nil {
		host, port, err := net.SplitHostPort(b.Address)
		n, perr := strconv.Atoi(port)
		switch {
		case b.Address == "":
			v.add("access.bastion.address", "the bastion address is empty", `set address to host:port, e.g. "bastion.example.com:22"`)
		case err != nil || host == "" || perr != nil || n < 1 || n > 65535:
			v.add("access.bastion.address", fmt.Sprintf("bastion address %q is not host:port", b.Address), `write host:port, e.g. "bastion.example.com:22" or "[2001:db8::1]:22"`)
		}
		if strings.TrimSpace(b.User) == "" {
			v.add("access.bastion.user", "the bastion user is empty", fmt.Sprintf("set user, or remove it for the default %q", DefaultBastionUser))
		}
		if b.HostKey == "" {
			v.add("access.bastion.host_key", "the bastion host key is empty; connecting would trust whatever key the bastion presents",
				"pin the key: ssh-keyscan -t ed25519 <host> prints it (check it out of band)")
		} else {
			v.publicKey("access.bastion.host_key", b.HostKey, "the bastion host key")
		}
	}
}

// publicKey checks one authorized_keys line; messages never repeat the value, in case a private key was pasted.
func (v *validator) publicKey(path, line, what string) {
	if strings.Contains(line, "PRIVATE KEY") {
		v.add(path, what+" is a private key (value withheld)", "paste the public key (the .pub file) and keep the private key secret; rotate it if it was shared")
		return
	}
	key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	switch {
	case err != nil:
		v.add(path, fmt.Sprintf("%s is not an authorized_keys line: %v", what, err), `use one line such as "ssh-ed25519 AAAAC3Nza... comment"`)
	case len(strings.TrimSpace(string(rest))) > 0:
		v.add(path, what+" holds more than one key", "give one key per list item")
	case key.Type() == keyAlgoDSA:
		v.add(path, what+" is a DSA key, which OpenSSH no longer accepts", "use an ed25519 or RSA (>= 3072 bits) key")
	}
}

func (v *validator) artifacts() {
	raw := v.s.Artifacts.MirrorBaseURL
	if raw == "" {
		if v.s.Artifacts.TrustMirrorChecksums {
			v.add("artifacts.trust_mirror_checksums", "trusts the checksums of a mirror, but artifacts.mirror_base_url is empty", "set artifacts.mirror_base_url, or remove trust_mirror_checksums")
		}
		return
	}
	const path = "artifacts.mirror_base_url"
	u, err := url.Parse(raw)
	if err != nil {
		v.add(path, fmt.Sprintf("mirror URL is not a URL: %v", err), `write an absolute https URL such as "https://mirror.example.com/k8s"`)
		return
	}
	shown := u.Redacted()
	switch {
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		v.add(path, fmt.Sprintf("mirror URL %q is not absolute", shown), `write an absolute https URL such as "https://mirror.example.com/k8s"`)
	case u.Scheme == "http" && !validation.LoopbackHost(u.Hostname()):
		v.add(path, fmt.Sprintf("mirror URL %q uses plain http to a non-loopback host", shown), "use https; plain http is allowed only for 127.0.0.0/8 and localhost")
	case u.Scheme != "https" && u.Scheme != "http":
		v.add(path, fmt.Sprintf("mirror URL %q has scheme %q", shown, u.Scheme), "use an https URL")
	}
	if u.User != nil {
		v.add(path, fmt.Sprintf("mirror URL %q holds credentials, which would be written to nodes and logs", shown), "remove user:password from the URL and give the mirror read access by network")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		v.add(path, fmt.Sprintf("mirror URL %q has a query or fragment; file paths are appended to it", shown), "remove the ?query and #fragment")
	}
}
