package clouds

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// TagKeys are one cloud's spelling of the bookkeeping tags every object
// carries. Each cloud picks keys its tag or label rules accept: AWS allows
// "/" in keys, Azure does not, GCE labels allow only [a-z0-9_-].
type TagKeys struct {
	Cluster, Pool, Role, Node string
}

// For returns the tags of an object of cluster; empty values are left out,
// so a network gets only the cluster tag.
func (k TagKeys) For(cluster, pool, role, node string) map[string]string {
	out := map[string]string{}
	for _, kv := range [][2]string{{k.Cluster, cluster}, {k.Pool, pool}, {k.Role, role}, {k.Node, node}} {
		if kv[1] != "" {
			out[kv[0]] = kv[1]
		}
	}
	return out
}

// TagProblem is one user tag a cloud refuses: its key, why, and the fix.
type TagProblem struct {
	Key, Problem, Fix string
}

// ReservedTagPrefix starts every key of the project's own tags, in each
// cloud's spelling; user tags may not use it.
const ReservedTagPrefix = "mixedk8s"

// SecretName is a cloud-neutral secret name: parts joined by "/", each a
// DNS-1123 label (lowercase letters, digits and '-'). A cloud maps it to
// what its store allows with Profile.SecretName.
type SecretName string

// NewSecretName joins the parts of a logical secret name.
func NewSecretName(parts ...string) SecretName { return SecretName(strings.Join(parts, "/")) }

// Parts returns the name's parts.
func (n SecretName) Parts() []string { return strings.Split(string(n), "/") }

// Join spells the name with sep between its parts, for stores that do not allow "/".
func (n SecretName) Join(sep string) string { return strings.Join(n.Parts(), sep) }

// Profile is what the library knows about a cloud before calling it: the
// defaults and rules the validator applies at plan time, and the cloud's
// spelling of tags and secret names. Each cloud defines its profile once,
// in its own package, and registers it with Register from an init function.
type Profile struct {
	// Name is the cloud's name, as Cloud.Name returns it and as the spec's
	// cloud block is named: "aws", "azure", "gcp".
	Name string
	// Title is the cloud's name in messages: "AWS", "Azure", "GCP".
	Title string
	// Tags are the cloud's tag keys.
	Tags TagKeys
	// DefaultInstanceTypes are the instance types by OS ("linux",
	// "windows") when the spec sets none.
	DefaultInstanceTypes map[string]string
	// NestedVirtualization reports whether an instance type can run
	// Hyper-V inside, as Hyper-V isolated Windows containers need. Nil
	// means no type can.
	NestedVirtualization func(instanceType string) bool
	// NestedExamples names instance types that can, for error fixes.
	NestedExamples string
	// RefuseHyperV, when set, is why the cloud cannot run Hyper-V
	// isolation on any instance type.
	RefuseHyperV string
	// Image names the cloud's default image for an OS and Windows version
	// (the image table), as the cloud resolves it.
	Image func(os, windowsVersion string) (string, error)
	// SecretName spells a logical secret name of a cluster as the cloud's
	// secret store allows.
	SecretName func(cluster string, name SecretName) string
	// CheckTags returns the user tags (the spec's tags, which the cloud puts
	// on every object it creates beside its own) that the cloud's tag or
	// label rules refuse, sorted by key; nil means all pass.
	CheckTags func(tags map[string]string) []TagProblem
	// LoadBalancer reports that the cloud's package implements
	// LoadBalancers, so it can serve more than one control-plane node
	// behind one API address.
	LoadBalancer bool
}

// DefaultInstanceType is the instance type for os when the spec sets none.
func (p Profile) DefaultInstanceType(os string) string {
	if t, ok := p.DefaultInstanceTypes[os]; ok {
		return t
	}
	return p.DefaultInstanceTypes["linux"]
}

// Nested reports whether instanceType can run Hyper-V isolation.
func (p Profile) Nested(instanceType string) bool {
	return p.RefuseHyperV == "" && p.NestedVirtualization != nil && p.NestedVirtualization(instanceType)
}

var (
	profilesMu sync.RWMutex
	profiles   = map[string]Profile{}
)

// Register makes a cloud's profile known to the validator. Each cloud
// package calls it from init; registering a name twice panics, as
// database/sql does for drivers.
func Register(p Profile) {
	profilesMu.Lock()
	defer profilesMu.Unlock()
	if p.Name == "" {
		panic("clouds: Register of a profile without a name")
	}
	if _, dup := profiles[p.Name]; dup {
		panic(fmt.Sprintf("clouds: Register called twice for cloud %q", p.Name))
	}
	profiles[p.Name] = p
}

// ProfileOf returns the registered profile of a cloud, and false when no
// package registered one: the program does not import that cloud.
func ProfileOf(name string) (Profile, bool) {
	profilesMu.RLock()
	defer profilesMu.RUnlock()
	p, ok := profiles[name]
	return p, ok
}

// Profiles lists the registered clouds' names, sorted.
func Profiles() []string {
	profilesMu.RLock()
	defer profilesMu.RUnlock()
	var out []string
	for name := range profiles {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
