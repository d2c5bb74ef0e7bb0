package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func windowsGuide(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "guides", "windows-node-pools.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The guide must not promise what the code cannot do: the Hyper-V
// RuntimeClasses select nodes of the image's own build, and kube-log-runner
// wraps the kubelet and kube-proxy services.
func TestWindowsGuideClaimsMatchTheCode(t *testing.T) {
	g := windowsGuide(t)
	for _, wrong := range []string{"images of older builds", "no service wrapper"} {
		if strings.Contains(g, wrong) {
			t.Errorf("the Windows guide claims %q", wrong)
		}
	}
	if !strings.Contains(g, "kube-log-runner") {
		t.Error("the Windows guide does not say kube-log-runner wraps the kubelet and kube-proxy")
	}
}
