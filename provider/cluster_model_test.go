package provider

import (
	"context"
	"reflect"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

type attrValue = attr.Value

// A spec survives the trip through the Terraform model both ways, for every
// cloud and every optional field.
func TestSpecRoundTripsThroughTheModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	full := cluster.Spec{
		Name: "demo", KubernetesVersion: "1.35.2",
		Network:      cluster.NetworkSpec{CNI: cluster.CNIFlannel, NodeCIDR: "10.1.0.0/16", PodCIDR: "10.245.0.0/16", ServiceCIDR: "10.97.0.0/16"},
		ControlPlane: cluster.ControlPlaneSpec{Count: 3, InstanceType: "m6i.xlarge", DiskGB: 80, Image: "image-123", Schedulable: true},
		NodePools: map[string]cluster.PoolSpec{
			"linux": {OS: cluster.Linux, Count: 2, InstanceType: "m6i.large", DiskGB: 50, Labels: map[string]string{"example.com/tier": "web"}},
			"win": {OS: cluster.Windows, WindowsVersion: "2022", Isolation: cluster.IsolationHyperV, Count: 0, InstanceType: "m6i.metal", DiskGB: 128,
				Image: "image-win", Taints: []string{"os=windows:NoSchedule"}},
		},
		Access: cluster.AccessSpec{
			AdminCIDRs: []string{"203.0.113.0/24"}, SSHPublicKeys: []string{"ssh-ed25519 AAAA x"},
			Bastion: &cluster.BastionSpec{Address: "bastion:22", User: "ops", HostKey: "ssh-ed25519 AAAA", PrivateKeyFile: "/k"},
		},
		Artifacts: cluster.ArtifactsSpec{MirrorBaseURL: "https://mirror.example.com/k8s"},
	}
	clouds := map[string]func(*cluster.Spec){
		"aws": func(s *cluster.Spec) {
			s.AWS = &cluster.AWSSpec{Region: "eu-west-1", Zones: []string{"eu-west-1a", "eu-west-1b"}}
		},
		"aws in an existing VPC": func(s *cluster.Spec) {
			s.AWS = &cluster.AWSSpec{Region: "eu-west-1", VPCID: "vpc-0a1b2c3d4e5f67890", SubnetIDs: []string{"subnet-0a1b2c3d4e5f67890", "subnet-1a2b3c4d"}}
		},
		"aws with a key": func(s *cluster.Spec) {
			s.AWS = &cluster.AWSSpec{Region: "eu-west-1", KMSKeyID: "alias/mixedk8s"}
		},
		"azure with a disk encryption set": func(s *cluster.Spec) {
			s.Azure = &cluster.AzureSpec{SubscriptionID: "x", Location: "westeurope", ResourceGroup: "rg",
				DiskEncryptionSetID: "/subscriptions/x/resourceGroups/keys/providers/Microsoft.Compute/diskEncryptionSets/des"}
		},
		"gcp with a key": func(s *cluster.Spec) {
			s.GCP = &cluster.GCPSpec{Project: "p", Region: "europe-west4", Zone: "europe-west4-a",
				KMSKeyName: "projects/p/locations/europe-west4/keyRings/r/cryptoKeys/k"}
		},
		"azure": func(s *cluster.Spec) {
			s.Azure = &cluster.AzureSpec{SubscriptionID: "x", Location: "westeurope", ResourceGroup: "rg"}
		},
		"gcp": func(s *cluster.Spec) {
			s.GCP = &cluster.GCPSpec{Project: "p", Region: "europe-west4", Zone: "europe-west4-a"}
		},
		"bare": func(s *cluster.Spec) {},
	}
	for name, set := range clouds {
		for _, base := range []cluster.Spec{full, {Name: "min", ControlPlane: cluster.ControlPlaneSpec{Count: 1}}} {
			want := base
			set(&want)
			var m clusterModel
			m.fromSpec(want)
			got, unknown, diags := m.toSpec(ctx)
			if diags.HasError() {
				t.Fatalf("%s: %v", name, diags)
			}
			if len(unknown) > 0 {
				t.Errorf("%s: unknown paths %v in a known model", name, unknown)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, want)
			}
			if m.ID.ValueString() != want.Name {
				t.Errorf("%s: id %q, want the name", name, m.ID.ValueString())
			}
		}
	}
}

func TestUnknownValuesAreReportedByPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var m clusterModel
	m.fromSpec(cluster.Spec{Name: "demo", NodePools: map[string]cluster.PoolSpec{"win": {OS: cluster.Windows, Count: 1}}})
	m.KubernetesVersion = types.StringUnknown()
	m.Access = types.ObjectUnknown(accessAttrs)
	_, unknown, diags := m.toSpec(ctx)
	if diags.HasError() {
		t.Fatal(diags)
	}
	want := []string{"kubernetes_version", "access"}
	if !reflect.DeepEqual(unknown, want) {
		t.Errorf("unknown = %v, want %v", unknown, want)
	}
}

// Defaults fill only what the configuration left out; values from the
// configuration, known or not, are kept.
func TestResolvePlanShowsLibraryDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	config := clusterModel{
		Name: types.StringValue("demo"),
		cloudAttrs: cloudAttrs{AWS: objectOf(awsBlock.attrTypes(), map[string]attrValue{"region": types.StringValue("eu-west-1"), "zones": types.ListNull(types.StringType), "kms_key_id": types.StringNull(),
			"vpc_id": types.StringNull(), "subnet_ids": types.ListNull(types.StringType)})},
		Network:      types.ObjectNull(networkAttr),
		ControlPlane: types.ObjectNull(cpAttrs),
		NodePools: types.MapValueMust(poolType, map[string]attrValue{"win": objectOf(poolAttrs, map[string]attrValue{
			"os": types.StringValue("windows"), "windows_version": types.StringNull(), "isolation": types.StringNull(), "count": types.Int64Value(2),
			"instance_type": types.StringNull(), "disk_gb": types.Int64Null(), "image": types.StringNull(),
			"labels": types.MapNull(types.StringType), "taints": types.ListNull(types.StringType),
			"max_surge": types.Int64Null(), "max_unavailable": types.Int64Null(), "replace_not_ready_after": types.StringNull(),
		})}),
		Access:    types.ObjectNull(accessAttrs),
		Artifacts: types.ObjectNull(artifactsAttrs),
	}
	// What the framework plans: computed attributes left out are unknown.
	plan := config
	plan.KubernetesVersion = types.StringUnknown()
	plan.Network = types.ObjectUnknown(networkAttr)
	plan.ControlPlane = types.ObjectUnknown(cpAttrs)
	win := config.NodePools.Elements()["win"].(types.Object).Attributes()
	pw := map[string]attrValue{}
	for k, v := range win {
		pw[k] = v
	}
	pw["windows_version"], pw["isolation"], pw["instance_type"], pw["disk_gb"] = types.StringUnknown(), types.StringUnknown(), types.StringUnknown(), types.Int64Unknown()
	pw["max_surge"], pw["max_unavailable"] = types.Int64Unknown(), types.Int64Unknown()
	plan.NodePools = types.MapValueMust(poolType, map[string]attrValue{"win": objectOf(poolAttrs, pw)})

	got, spec, known, diags := resolvePlan(ctx, config, plan, nil)
	if diags.HasError() || !known {
		t.Fatalf("known=%v diags=%v", known, diags)
	}
	if spec.NodePools["win"].WindowsVersion != cluster.DefaultWindowsVersion {
		t.Errorf("spec not defaulted: %+v", spec.NodePools["win"])
	}
	back, unknown, _ := got.toSpec(ctx)
	if len(unknown) > 0 {
		t.Fatalf("plan still has unknown values at %v", unknown)
	}
	if !reflect.DeepEqual(back, spec) {
		t.Errorf("plan does not show the defaults:\n got %+v\nwant %+v", back, spec)
	}
	if got.KubernetesVersion.ValueString() != cluster.DefaultKubernetesVersion || got.ID.ValueString() != "demo" {
		t.Errorf("kubernetes_version %s, id %s", got.KubernetesVersion, got.ID)
	}
	if !got.Access.IsNull() {
		t.Errorf("access was not configured and is not computed, but the plan sets it: %s", got.Access)
	}

	// An unknown value in the configuration leaves the plan alone.
	config.KubernetesVersion = types.StringUnknown()
	got, _, known, _ = resolvePlan(ctx, config, plan, nil)
	if known || !got.Network.IsUnknown() {
		t.Errorf("defaults filled in although the configuration has unknown values")
	}

	// A provider whose defaults moved plans no change for what the
	// configuration leaves out: the state's values stay, in the plan and in
	// the spec Apply runs.
	config.KubernetesVersion = types.StringNull()
	var state clusterModel
	old := spec
	old.KubernetesVersion = "1.36.1"
	w := old.NodePools["win"]
	w.InstanceType = "m5.xlarge"
	old.NodePools = map[string]cluster.PoolSpec{"win": w}
	state.fromSpec(old)
	got, spec, known, diags = resolvePlan(ctx, config, plan, &state)
	if diags.HasError() || !known {
		t.Fatalf("known=%v diags=%v", known, diags)
	}
	if got.KubernetesVersion.ValueString() != "1.36.1" || spec.KubernetesVersion != "1.36.1" {
		t.Errorf("kubernetes_version left out moved from the state's 1.36.1 to %s (spec %s)", got.KubernetesVersion, spec.KubernetesVersion)
	}
	if it := spec.NodePools["win"].InstanceType; it != "m5.xlarge" {
		t.Errorf("node_pools.win.instance_type left out moved from the state's m5.xlarge to %s", it)
	}
	if !reflect.DeepEqual(spec, old.WithDefaults()) {
		t.Errorf("spec from a plan over the state\n got %+v\nwant %+v", spec, old.WithDefaults())
	}
}

func TestImportRecoversPoolsFromInstances(t *testing.T) {
	t.Parallel()
	o := cluster.Observed{Instances: []clouds.Instance{
		{Name: "demo-cp-0", Pool: clouds.ControlPlanePool, Role: clouds.RoleControlPlane, OS: "linux", InstanceType: "m6i.large"},
		{Name: "demo-win-0", Pool: "win", Role: clouds.RoleWorker, OS: "windows", InstanceType: "m6i.xlarge"},
		{Name: "demo-win-1", Pool: "win", Role: clouds.RoleWorker, OS: "windows", InstanceType: "m6i.xlarge"},
		{Name: "demo-linux-0", Pool: "linux", Role: clouds.RoleWorker, OS: "linux", InstanceType: "m6i.large"},
	}}
	got := importedSpec("demo", o)
	surge, unavailable := cluster.DefaultMaxSurge, cluster.DefaultMaxUnavailable // the cloud keeps no roll settings
	want := cluster.Spec{
		Name:         "demo",
		ControlPlane: cluster.ControlPlaneSpec{Count: 1, InstanceType: "m6i.large"},
		NodePools: map[string]cluster.PoolSpec{
			"win":   {OS: cluster.Windows, Count: 2, InstanceType: "m6i.xlarge", MaxSurge: &surge, MaxUnavailable: &unavailable},
			"linux": {OS: cluster.Linux, Count: 1, InstanceType: "m6i.large", MaxSurge: &surge, MaxUnavailable: &unavailable},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("importedSpec:\n got %+v\nwant %+v", got, want)
	}
}
