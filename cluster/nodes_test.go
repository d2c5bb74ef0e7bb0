package cluster

import (
	"regexp"
	"strings"
	"testing"
)

// netbios is what a Windows computer name may be here: letters, digits and
// '-', 1-15 characters, starting with a letter and not ending with '-'.
var netbios = regexp.MustCompile(`^[a-z][a-z0-9-]{0,13}[a-z0-9]$`)

func TestComputerName(t *testing.T) {
	t.Parallel()
	tests := []struct{ node, want string }{
		{"demo-win-1", "demo-win-1"},                // fits: the node name itself
		{"abcdefghij-w-10", "abcdefghij-w-10"},      // 15 characters still fit
		{"payments-prod-win-1", "payments-bmgb-1"},  // the cluster
		{"payments-prod-win-12", "payment-bmgb-12"}, // same pool and hash, a shorter prefix
		{"abcdefghijklmnopqrst-windows22-499", "abcdef-6atf-499"},
	}
	for _, tt := range tests {
		got := ComputerName(tt.node)
		if got != tt.want {
			t.Errorf("ComputerName(%q) = %q; want %q (a change renames every existing Windows node)", tt.node, got, tt.want)
		}
		if !netbios.MatchString(got) {
			t.Errorf("ComputerName(%q) = %q is not a NetBIOS and DNS host name", tt.node, got)
		}
	}
}

func TestNodesGiveWindowsNodesDistinctComputerNames(t *testing.T) {
	t.Parallel()
	s := Spec{Name: "payments-prod", NodePools: map[string]PoolSpec{
		"lin": {OS: Linux, Count: 2},
		"win": {OS: Windows, WindowsVersion: "2022", Count: MaxPoolCount},
	}}
	seen := map[string]string{}
	for _, n := range s.Nodes() {
		if n.OS != Windows {
			if n.ComputerName != "" {
				t.Errorf("Linux node %s has computer name %q", n.Name, n.ComputerName)
			}
			continue
		}
		if !netbios.MatchString(n.ComputerName) {
			t.Errorf("node %s: computer name %q is not a NetBIOS name", n.Name, n.ComputerName)
		}
		key := strings.ToLower(n.ComputerName)
		if other, dup := seen[key]; dup {
			t.Errorf("nodes %s and %s share the computer name %q", other, n.Name, n.ComputerName)
		}
		seen[key] = n.Name
	}
	if len(seen) != MaxPoolCount {
		t.Errorf("%d Windows computer names; want %d", len(seen), MaxPoolCount)
	}
}
