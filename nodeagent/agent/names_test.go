package agent

import "testing"

func TestLocalNameFollowsTheNodesOS(t *testing.T) {
	for _, tc := range []struct {
		name, goos string
		want       bool
	}{
		{"bin/containerd", "linux", true},
		{"bin/containerd.exe", "windows", true},
		{"../etc/passwd", "linux", false},
		{"/usr/bin/x", "linux", false},
		{"a/../../x", "linux", false},
		{`a\..\..\x`, "linux", true}, // one odd file name on Linux, no escape
		{`a\..\..\x`, "windows", false},
		{`..\x`, "windows", false},
		{`\Windows\x.exe`, "windows", false},
		{"C:x.exe", "windows", false},
		{"kubelet.exe:stream", "windows", false},
		{"", "linux", false},
	} {
		if got := localName(tc.name, tc.goos); got != tc.want {
			t.Errorf("localName(%q, %s) = %v, want %v", tc.name, tc.goos, got, tc.want)
		}
	}
}
