package provider

import (
	"errors"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/mixedk8s/mixedk8s/cluster"
)

// problemPath maps a cluster.Problem path, such as `node_pools["win"].isolation`
// or `access.admin_cidrs[2]`, to the framework path of the same attribute. A
// quoted index is a map key, a bare one a list index. It reports false for
// paths that name no attribute of the resource (such as "cloud", which stands
// for the choice between the aws, azure and gcp attributes).
func problemPath(p string) (path.Path, bool) {
	var out path.Path
	rest := p
	first := true
	for rest != "" {
		switch {
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if rest[1] == '"' {
				// A quoted key may contain ']': find the closing quote first.
				q, err := strconv.QuotedPrefix(rest[1:])
				if err != nil || len(rest) < len(q)+2 || rest[1+len(q)] != ']' {
					return path.Empty(), false
				}
				key, _ := strconv.Unquote(q)
				out = out.AtMapKey(key)
				rest = rest[len(q)+2:]
				continue
			}
			if end < 0 {
				return path.Empty(), false
			}
			i, err := strconv.Atoi(rest[1:end])
			if err != nil || i < 0 {
				return path.Empty(), false
			}
			out = out.AtListIndex(i)
			rest = rest[end+1:]
		case rest[0] == '.' && !first:
			rest = rest[1:]
			fallthrough
		default:
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			name := rest[:end]
			if name == "" {
				return path.Empty(), false
			}
			if first {
				if !topLevelAttributes[name] {
					return path.Empty(), false
				}
				out = path.Root(name)
			} else {
				out = out.AtName(name)
			}
			rest = rest[end:]
		}
		first = false
	}
	return out, !first
}

// topLevelAttributes are the resource attributes a Problem path can start with.
var topLevelAttributes = map[string]bool{
	"name": true, "kubernetes_version": true, "aws": true, "azure": true, "gcp": true, "network": true,
	"control_plane": true, "node_pools": true, "access": true, "artifacts": true, "tags": true,
}

// problemDetail is what Terraform prints under the error: what is wrong, then the fix.
func problemDetail(p cluster.Problem) string {
	return p.Message + ".\n\nFix: " + p.Fix + "."
}

// problemSummary names the attribute, so the error says where even when
// Terraform cannot point at a line (a value from a variable or a default).
func problemSummary(p cluster.Problem) string {
	return "Invalid " + p.Path
}

// addProblems adds one diagnostic per problem when err is cluster.Problems,
// at the attribute the problem names, and reports whether it did. skip,
// when set, drops problems the caller cannot judge yet.
func addProblems(diags *diag.Diagnostics, err error, skip func(cluster.Problem) bool) bool {
	var ps cluster.Problems
	if !errors.As(err, &ps) {
		return false
	}
	for _, p := range ps {
		if skip != nil && skip(p) {
			continue
		}
		if at, ok := problemPath(p.Path); ok {
			diags.AddAttributeError(at, problemSummary(p), problemDetail(p))
			continue
		}
		diags.AddError(problemSummary(p), problemDetail(p))
	}
	return true
}

// related reports whether one problem path is the other or inside it.
func related(a, b string) bool {
	inside := func(outer, inner string) bool {
		return inner == outer || strings.HasPrefix(inner, outer+".") || strings.HasPrefix(inner, outer+"[")
	}
	return inside(a, b) || inside(b, a)
}

// dependsOn lists, for a value that may be unknown at plan time, the other
// paths whose checks use it: a problem there cannot be judged either.
var dependsOn = map[string][]string{
	"kubernetes_version": {"node_pools"},
	"aws":                {"node_pools", "control_plane", "name", "tags"},
	"azure":              {"node_pools", "control_plane", "name", "tags"},
	"gcp":                {"node_pools", "control_plane", "name", "tags"},
	"network":            {"network"},
	"node_pools":         {"node_pools", "name"},
	"control_plane":      {"node_pools", "control_plane"},
	"name":               {"node_pools", "name"},
	// trust_mirror_checksums is judged against mirror_base_url.
	"artifacts": {"artifacts"},
}

// unknownFilter returns a skip function for addProblems that drops every
// problem that an unknown value could explain.
func unknownFilter(unknown []string) func(cluster.Problem) bool {
	if len(unknown) == 0 {
		return nil
	}
	return func(p cluster.Problem) bool {
		if p.Path == "cloud" {
			return true
		}
		for _, u := range unknown {
			if related(u, p.Path) {
				return true
			}
			root := u
			if i := strings.IndexAny(u, ".["); i >= 0 {
				root = u[:i]
			}
			for _, d := range dependsOn[root] {
				if related(d, p.Path) {
					return true
				}
			}
		}
		return false
	}
}
