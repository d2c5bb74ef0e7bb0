package provider

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

// clusterModel is the mixedk8s_cluster resource. Nested values stay
// types.Object / types.Map so that unknown values (from other resources, or
// computed defaults) survive until ModifyPlan fills them in.
type clusterModel struct {
	ID                types.String `tfsdk:"id"`
	Name              types.String `tfsdk:"name"`
	KubernetesVersion types.String `tfsdk:"kubernetes_version"`
	// KubernetesRelease is the release kubernetes_version resolved to, recorded so a newer provider does not move the cluster.
	KubernetesRelease types.String `tfsdk:"kubernetes_release"`
	cloudAttrs
	Network      types.Object   `tfsdk:"network"`
	ControlPlane types.Object   `tfsdk:"control_plane"`
	NodePools    types.Map      `tfsdk:"node_pools"`
	Access       types.Object   `tfsdk:"access"`
	Artifacts    types.Object   `tfsdk:"artifacts"`
	Tags         types.Map      `tfsdk:"tags"`
	TagsAll      types.Map      `tfsdk:"tags_all"`
	SecretsEpoch types.Int64    `tfsdk:"secrets_epoch"`
	Timeouts     timeouts.Value `tfsdk:"timeouts"`
	endpointAttrs
	networkAttrs
	Kubeconfig         types.String `tfsdk:"kubeconfig"`
	KubeconfigValidity types.String `tfsdk:"kubeconfig_validity"`
	credentialAttrs
	Nodes types.List `tfsdk:"nodes"`
}

type networkModel struct {
	CNI         types.String `tfsdk:"cni"`
	NodeCIDR    types.String `tfsdk:"node_cidr"`
	PodCIDR     types.String `tfsdk:"pod_cidr"`
	ServiceCIDR types.String `tfsdk:"service_cidr"`
}

type controlPlaneModel struct {
	Count        types.Int64  `tfsdk:"count"`
	InstanceType types.String `tfsdk:"instance_type"`
	DiskGB       types.Int64  `tfsdk:"disk_gb"`
	Image        types.String `tfsdk:"image"`
	Schedulable  types.Bool   `tfsdk:"schedulable"`
}

type poolModel struct {
	OS             types.String `tfsdk:"os"`
	WindowsVersion types.String `tfsdk:"windows_version"`
	Isolation      types.String `tfsdk:"isolation"`
	Count          types.Int64  `tfsdk:"count"`
	InstanceType   types.String `tfsdk:"instance_type"`
	DiskGB         types.Int64  `tfsdk:"disk_gb"`
	Image          types.String `tfsdk:"image"`
	Labels         types.Map    `tfsdk:"labels"`
	Taints         types.List   `tfsdk:"taints"`
	MaxSurge       types.Int64  `tfsdk:"max_surge"`
	MaxUnavailable types.Int64  `tfsdk:"max_unavailable"`
	ReplaceAfter   types.String `tfsdk:"replace_not_ready_after"`
}

type accessModel struct {
	AdminCIDRs    types.List   `tfsdk:"admin_cidrs"`
	SSHPublicKeys types.List   `tfsdk:"ssh_public_keys"`
	Bastion       types.Object `tfsdk:"bastion"`
}

type bastionModel struct {
	Address        types.String `tfsdk:"address"`
	User           types.String `tfsdk:"user"`
	HostKey        types.String `tfsdk:"host_key"`
	PrivateKeyFile types.String `tfsdk:"private_key_file"`
}

type artifactsModel struct {
	MirrorBaseURL        types.String `tfsdk:"mirror_base_url"`
	TrustMirrorChecksums types.Bool   `tfsdk:"trust_mirror_checksums"`
}

// Attribute types of the nested objects, shared by the schema and the model.
var (
	stringList  = types.ListType{ElemType: types.StringType}
	stringMap   = types.MapType{ElemType: types.StringType}
	networkAttr = map[string]attr.Type{"cni": types.StringType, "node_cidr": types.StringType, "pod_cidr": types.StringType, "service_cidr": types.StringType}
	cpAttrs     = map[string]attr.Type{"count": types.Int64Type, "instance_type": types.StringType, "disk_gb": types.Int64Type, "image": types.StringType, "schedulable": types.BoolType}
	poolAttrs   = map[string]attr.Type{
		"os": types.StringType, "windows_version": types.StringType, "isolation": types.StringType, "count": types.Int64Type,
		"instance_type": types.StringType, "disk_gb": types.Int64Type, "image": types.StringType, "labels": stringMap, "taints": stringList,
		"max_surge": types.Int64Type, "max_unavailable": types.Int64Type, "replace_not_ready_after": types.StringType,
	}
	bastionAttrs   = map[string]attr.Type{"address": types.StringType, "user": types.StringType, "host_key": types.StringType, "private_key_file": types.StringType}
	accessAttrs    = map[string]attr.Type{"admin_cidrs": stringList, "ssh_public_keys": stringList, "bastion": types.ObjectType{AttrTypes: bastionAttrs}}
	artifactsAttrs = map[string]attr.Type{"mirror_base_url": types.StringType, "trust_mirror_checksums": types.BoolType}
	nodeAttrs      = map[string]attr.Type{
		"name": types.StringType, "pool": types.StringType, "os": types.StringType, "private_ip": types.StringType, "instance_id": types.StringType, "ready": types.BoolType,
		"instance_type": types.StringType, "kubelet_version": types.StringType, "windows_build": types.StringType,
	}
	nodeType = types.ObjectType{AttrTypes: nodeAttrs}
	poolType = types.ObjectType{AttrTypes: poolAttrs}
)

// specReader turns a model into a cluster.Spec. Unknown values become zero
// values, and their paths (in cluster.Problem notation) are recorded so
// that validation can ignore what it cannot judge yet.
type specReader struct {
	ctx     context.Context
	unknown []string
	diags   diag.Diagnostics
}

func (r *specReader) str(p string, v types.String) string {
	if v.IsUnknown() {
		r.unknown = append(r.unknown, p)
	}
	return v.ValueString()
}

func (r *specReader) integer(p string, v types.Int64) int {
	if v.IsUnknown() {
		r.unknown = append(r.unknown, p)
	}
	n := v.ValueInt64()
	// Clamp rather than wrap, so Validate reports the value as too large.
	return int(max(min(n, math.MaxInt32), math.MinInt32))
}

// optInteger is nil for a null value, so the library's default applies.
func (r *specReader) optInteger(p string, v types.Int64) *int {
	if v.IsNull() {
		return nil
	}
	n := r.integer(p, v)
	return &n
}

func (r *specReader) boolean(p string, v types.Bool) bool {
	if v.IsUnknown() {
		r.unknown = append(r.unknown, p)
	}
	return v.ValueBool()
}

func (r *specReader) list(p string, v types.List) []string {
	if v.IsUnknown() {
		r.unknown = append(r.unknown, p)
		return nil
	}
	if v.IsNull() {
		return nil
	}
	out := make([]string, 0, len(v.Elements()))
	for i, e := range v.Elements() {
		s, _ := e.(types.String)
		out = append(out, r.str(fmt.Sprintf("%s[%d]", p, i), s))
	}
	return out
}

func (r *specReader) strMap(p string, v types.Map) map[string]string {
	if v.IsUnknown() {
		r.unknown = append(r.unknown, p)
		return nil
	}
	if v.IsNull() {
		return nil
	}
	out := make(map[string]string, len(v.Elements()))
	for k, e := range v.Elements() {
		s, _ := e.(types.String)
		out[k] = r.str(p+"["+strconv.Quote(k)+"]", s)
	}
	return out
}

// object decodes a known, non-null object into target and reports whether it did.
func (r *specReader) object(p string, v types.Object, target any) bool {
	if v.IsUnknown() {
		r.unknown = append(r.unknown, p)
		return false
	}
	if v.IsNull() {
		return false
	}
	r.diags.Append(v.As(r.ctx, target, basetypes.ObjectAsOptions{})...)
	return !r.diags.HasError()
}

// toSpec maps the resource model to the library's spec, without defaults.
func (m clusterModel) toSpec(ctx context.Context) (cluster.Spec, []string, diag.Diagnostics) {
	r := &specReader{ctx: ctx}
	s := cluster.Spec{
		Name:              r.str("name", m.Name),
		KubernetesVersion: r.str("kubernetes_version", m.KubernetesVersion),
	}
	if rel := m.KubernetesRelease; !rel.IsNull() && !rel.IsUnknown() {
		s.KubernetesVersion = rel.ValueString() // the recorded release, not today's newest of a minor
	}
	m.cloudAttrs.toSpec(r, &s)
	var nw networkModel
	if r.object("network", m.Network, &nw) {
		s.Network = cluster.NetworkSpec{
			CNI:         cluster.CNI(r.str("network.cni", nw.CNI)),
			NodeCIDR:    r.str("network.node_cidr", nw.NodeCIDR),
			PodCIDR:     r.str("network.pod_cidr", nw.PodCIDR),
			ServiceCIDR: r.str("network.service_cidr", nw.ServiceCIDR),
		}
	}
	var cp controlPlaneModel
	if r.object("control_plane", m.ControlPlane, &cp) {
		s.ControlPlane = cluster.ControlPlaneSpec{
			Count:        r.integer("control_plane.count", cp.Count),
			InstanceType: r.str("control_plane.instance_type", cp.InstanceType),
			DiskGB:       r.integer("control_plane.disk_gb", cp.DiskGB),
			Image:        r.str("control_plane.image", cp.Image),
			Schedulable:  r.boolean("control_plane.schedulable", cp.Schedulable),
		}
	}
	switch {
	case m.NodePools.IsUnknown():
		r.unknown = append(r.unknown, "node_pools")
	case !m.NodePools.IsNull():
		s.NodePools = map[string]cluster.PoolSpec{}
		for name, v := range m.NodePools.Elements() {
			obj, _ := v.(types.Object)
			p := "node_pools[" + strconv.Quote(name) + "]"
			var pm poolModel
			if !r.object(p, obj, &pm) {
				s.NodePools[name] = cluster.PoolSpec{}
				continue
			}
			s.NodePools[name] = cluster.PoolSpec{
				OS:                   cluster.OS(r.str(p+".os", pm.OS)),
				WindowsVersion:       r.str(p+".windows_version", pm.WindowsVersion),
				Isolation:            cluster.Isolation(r.str(p+".isolation", pm.Isolation)),
				Count:                r.integer(p+".count", pm.Count),
				InstanceType:         r.str(p+".instance_type", pm.InstanceType),
				DiskGB:               r.integer(p+".disk_gb", pm.DiskGB),
				Image:                r.str(p+".image", pm.Image),
				Labels:               r.strMap(p+".labels", pm.Labels),
				Taints:               r.list(p+".taints", pm.Taints),
				MaxSurge:             r.optInteger(p+".max_surge", pm.MaxSurge),
				MaxUnavailable:       r.optInteger(p+".max_unavailable", pm.MaxUnavailable),
				ReplaceNotReadyAfter: r.str(p+".replace_not_ready_after", pm.ReplaceAfter),
			}
		}
	}
	var acc accessModel
	if r.object("access", m.Access, &acc) {
		s.Access = cluster.AccessSpec{AdminCIDRs: r.list("access.admin_cidrs", acc.AdminCIDRs), SSHPublicKeys: r.list("access.ssh_public_keys", acc.SSHPublicKeys)}
		var b bastionModel
		if r.object("access.bastion", acc.Bastion, &b) {
			s.Access.Bastion = &cluster.BastionSpec{
				Address:        r.str("access.bastion.address", b.Address),
				User:           r.str("access.bastion.user", b.User),
				HostKey:        r.str("access.bastion.host_key", b.HostKey),
				PrivateKeyFile: r.str("access.bastion.private_key_file", b.PrivateKeyFile),
			}
		}
	}
	var art artifactsModel
	if r.object("artifacts", m.Artifacts, &art) {
		s.Artifacts.MirrorBaseURL = r.str("artifacts.mirror_base_url", art.MirrorBaseURL)
		s.Artifacts.TrustMirrorChecksums = r.boolean("artifacts.trust_mirror_checksums", art.TrustMirrorChecksums)
	}
	s.Tags = r.strMap("tags", m.Tags)
	s.SecretsEpoch = r.integer("secrets_epoch", m.SecretsEpoch)
	return s, r.unknown, r.diags
}

// Helpers that map Go zero values to null, for optional attributes without a default.
func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func ptrInt(n *int) types.Int64 {
	if n == nil {
		return types.Int64Null()
	}
	return types.Int64Value(int64(*n))
}

func optInt(n int) types.Int64 {
	if n == 0 {
		return types.Int64Null()
	}
	return types.Int64Value(int64(n))
}

func optList(items []string) types.List {
	if items == nil {
		return types.ListNull(types.StringType)
	}
	vals := make([]attr.Value, len(items))
	for i, s := range items {
		vals[i] = types.StringValue(s)
	}
	return types.ListValueMust(types.StringType, vals)
}

func optMap(m map[string]string) types.Map {
	if m == nil {
		return types.MapNull(types.StringType)
	}
	vals := make(map[string]attr.Value, len(m))
	for k, v := range m {
		vals[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, vals)
}

func objectOf(attrs map[string]attr.Type, values map[string]attr.Value) types.Object {
	return types.ObjectValueMust(attrs, values)
}

// fromSpec sets the spec attributes of m from s (normally with defaults
// applied), leaving the computed attributes and timeouts alone.
func (m *clusterModel) fromSpec(s cluster.Spec) {
	m.Name = types.StringValue(s.Name)
	m.ID = types.StringValue(s.Name)
	m.KubernetesVersion = optString(s.KubernetesVersion)
	m.KubernetesRelease = optString(cluster.KubernetesRelease(s.KubernetesVersion))
	m.cloudAttrs.fromSpec(s)
	m.Network = objectOf(networkAttr, map[string]attr.Value{
		"cni":          optString(string(s.Network.CNI)),
		"node_cidr":    optString(s.Network.NodeCIDR),
		"pod_cidr":     optString(s.Network.PodCIDR),
		"service_cidr": optString(s.Network.ServiceCIDR),
	})
	m.ControlPlane = objectOf(cpAttrs, map[string]attr.Value{
		"count":         types.Int64Value(int64(s.ControlPlane.Count)),
		"instance_type": optString(s.ControlPlane.InstanceType),
		"disk_gb":       optInt(s.ControlPlane.DiskGB),
		"image":         optString(s.ControlPlane.Image),
		"schedulable":   types.BoolValue(s.ControlPlane.Schedulable),
	})
	m.NodePools = types.MapNull(poolType)
	if s.NodePools != nil {
		pools := make(map[string]attr.Value, len(s.NodePools))
		for _, name := range slices.Sorted(maps.Keys(s.NodePools)) {
			p := s.NodePools[name]
			pools[name] = objectOf(poolAttrs, map[string]attr.Value{
				"os":                      optString(string(p.OS)),
				"windows_version":         optString(p.WindowsVersion),
				"isolation":               optString(string(p.Isolation)),
				"count":                   types.Int64Value(int64(p.Count)),
				"instance_type":           optString(p.InstanceType),
				"disk_gb":                 optInt(p.DiskGB),
				"image":                   optString(p.Image),
				"labels":                  optMap(p.Labels),
				"taints":                  optList(p.Taints),
				"max_surge":               ptrInt(p.MaxSurge),
				"max_unavailable":         ptrInt(p.MaxUnavailable),
				"replace_not_ready_after": optString(p.ReplaceNotReadyAfter),
			})
		}
		m.NodePools = types.MapValueMust(poolType, pools)
	}
	bastion := types.ObjectNull(bastionAttrs)
	if b := s.Access.Bastion; b != nil {
		bastion = objectOf(bastionAttrs, map[string]attr.Value{
			"address": types.StringValue(b.Address), "user": optString(b.User),
			"host_key": types.StringValue(b.HostKey), "private_key_file": optString(b.PrivateKeyFile),
		})
	}
	m.Access = objectOf(accessAttrs, map[string]attr.Value{
		"admin_cidrs": optList(s.Access.AdminCIDRs), "ssh_public_keys": optList(s.Access.SSHPublicKeys), "bastion": bastion,
	})
	trust := types.BoolNull() // unset and false read the same
	if s.Artifacts.TrustMirrorChecksums {
		trust = types.BoolValue(true)
	}
	m.Artifacts = objectOf(artifactsAttrs, map[string]attr.Value{"mirror_base_url": optString(s.Artifacts.MirrorBaseURL), "trust_mirror_checksums": trust})
	m.SecretsEpoch = types.Int64Value(int64(s.SecretsEpoch))
}

// nodesValue lists the cluster's instances as Terraform's nodes attribute:
// what exists, sorted by name, whether or not the spec still wants it.
func nodesValue(o cluster.Observed) types.List {
	ins := slices.Clone(o.Instances)
	slices.SortFunc(ins, func(a, b clouds.Instance) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	vals := make([]attr.Value, 0, len(ins))
	for _, in := range ins {
		vals = append(vals, objectOf(nodeAttrs, map[string]attr.Value{
			"name":            types.StringValue(in.Name),
			"pool":            types.StringValue(in.Pool),
			"os":              types.StringValue(in.OS),
			"private_ip":      types.StringValue(in.PrivateIP),
			"instance_id":     types.StringValue(in.ID),
			"ready":           types.BoolValue(o.Nodes[in.Name].Ready),
			"instance_type":   types.StringValue(in.InstanceType),
			"kubelet_version": types.StringValue(o.Nodes[in.Name].KubeletVersion),
			"windows_build":   optString(o.Nodes[in.Name].WindowsBuild),
		}))
	}
	return types.ListValueMust(nodeType, vals)
}

// importedSpec recovers what the cloud's tags and instances tell about a
// cluster that Terraform imports: its pools, their OS, instance type and
// count, and the control plane's size. Versions, CIDRs, the CNI, disks and
// access settings are not recorded on the instances; the configuration
// supplies them and the first apply after the import reconciles them.
func importedSpec(name string, o cluster.Observed) cluster.Spec {
	s := cluster.Spec{Name: name}
	for _, in := range o.Instances {
		if in.Pool == clouds.ControlPlanePool || in.Role == clouds.RoleControlPlane {
			s.ControlPlane.Count++
			s.ControlPlane.InstanceType = in.InstanceType
			continue
		}
		if s.NodePools == nil {
			s.NodePools = map[string]cluster.PoolSpec{}
		}
		p := s.NodePools[in.Pool]
		if p.MaxSurge == nil {
			// The cloud keeps no roll settings: an imported pool rolls by the defaults.
			surge, unavailable := cluster.DefaultMaxSurge, cluster.DefaultMaxUnavailable
			p.MaxSurge, p.MaxUnavailable = &surge, &unavailable
		}
		p.OS = cluster.OS(in.OS)
		p.InstanceType = in.InstanceType
		p.Count++
		s.NodePools[in.Pool] = p
	}
	return s
}
