// Package validation holds the field-level checks behind cluster.Validate:
// taints, reserved label keys, address ranges and the nested-virtualisation
// table. It knows nothing of the Spec; cluster.Validate walks the spec and
// turns these answers into problems with paths and fixes.
package validation

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// TaintEffects are the effects Kubernetes accepts on a node taint.
var TaintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

// Taint is a parsed node taint.
type Taint struct {
	Key, Value, Effect string
}

// ParseTaint reads "key=value:Effect" or "key:Effect" and checks key and
// value by the Kubernetes label rules, as the API server does for taints.
func ParseTaint(s string) (Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return Taint{}, fmt.Errorf("taint %q has no effect", s)
	}
	key, value, _ := strings.Cut(kv, "=")
	t := Taint{Key: key, Value: value, Effect: effect}
	if !slices.Contains(TaintEffects, effect) {
		return t, fmt.Errorf("taint %q has effect %q, not one of %s", s, effect, strings.Join(TaintEffects, ", "))
	}
	if msgs := content.IsLabelKey(key); len(msgs) > 0 {
		return t, fmt.Errorf("taint %q has an invalid key: %s", s, Brief(msgs))
	}
	if msgs := content.IsLabelValue(value); len(msgs) > 0 {
		return t, fmt.Errorf("taint %q has an invalid value: %s", s, Brief(msgs))
	}
	return t, nil
}

// Brief joins apimachinery's validation messages without their examples and
// regexps, which the fix already spells out in words.
func Brief(msgs []string) string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i], _, _ = strings.Cut(m, " (e.g. ")
	}
	return strings.Join(out, "; ")
}

// Label and taint keys under these domains are refused: kubelet refuses to
// set most kubernetes.io/k8s.io labels (NodeRestriction) and the node
// controllers own those taints; mixedk8s.io/ carries our own bookkeeping.
var reservedKeyDomains = []string{"kubernetes.io", "k8s.io", "mixedk8s.io"}

// ReservedKey says why a label or taint key may not be used on a pool, or "".
// node-role.kubernetes.io/<role> is allowed because `kubectl get nodes` shows
// it as the role; kubelet refuses it in --node-labels, so it must be set
// through the API after the node joins. Its control-plane and master roles
// are refused on workers.
func ReservedKey(key string) string {
	prefix, name, ok := strings.Cut(key, "/")
	if !ok {
		return ""
	}
	if prefix == "node-role.kubernetes.io" {
		if name == "control-plane" || name == "master" {
			return "marks a worker as a control-plane node"
		}
		return ""
	}
	for _, d := range reservedKeyDomains {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			if d == "mixedk8s.io" {
				return "uses the mixedk8s.io/ prefix reserved for mixedk8s"
			}
			return "uses the " + d + "/ prefix reserved for Kubernetes"
		}
	}
	return ""
}

// Address ranges: RFC 1918 for nodes; pods and services may also use RFC 6598
// shared address space, which many clusters use to avoid clashing with networks.
var (
	RFC1918  = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16")}
	RFC6598  = netip.MustParsePrefix("100.64.0.0/10")
	loopback = netip.MustParsePrefix("127.0.0.0/8")
)

// Within reports whether p lies entirely inside one of ranges.
func Within(p netip.Prefix, ranges ...netip.Prefix) bool {
	for _, r := range ranges {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// LoopbackHost reports whether host is localhost or in 127.0.0.0/8 (the lab's addresses).
func LoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Is4() && loopback.Contains(a)
}

// LongestPrefixFor returns the longest prefix length whose block holds n
// blocks of size /unit, e.g. LongestPrefixFor(300, 24) is 15.
func LongestPrefixFor(n, unit int) int {
	bits := unit
	for bits > 0 && 1<<(unit-bits) < n {
		bits--
	}
	return bits
}

// SuggestLabel turns s into a DNS-1123 label of at most n characters, for fixes.
func SuggestLabel(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > n {
		out = out[:n]
	}
	out = strings.Trim(out, "-")
	if out == "" {
		return "prod"
	}
	return out
}

// ReleaseRanges renders releases (oldest first) as runs of one minor, e.g.
// "1.35.3 to 1.35.8, 1.36.0 to 1.36.4", for fixes that list them.
func ReleaseRanges(releases []string) string {
	var runs []string
	for i := 0; i < len(releases); {
		minor := releases[i][:strings.LastIndex(releases[i], ".")+1]
		j := i
		for j+1 < len(releases) && strings.HasPrefix(releases[j+1], minor) {
			j++
		}
		if i == j {
			runs = append(runs, releases[i])
		} else {
			runs = append(runs, releases[i]+" to "+releases[j])
		}
		i = j + 1
	}
	return strings.Join(runs, ", ")
}
