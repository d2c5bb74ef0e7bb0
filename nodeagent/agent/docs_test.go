package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
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

// The guide's numbered steps name the agent's Windows steps, in the order it runs them.
func TestWindowsGuideListsTheStepsInOrder(t *testing.T) {
	g := windowsGuide(t)
	i := strings.Index(g, "## What the node agent does")
	if i < 0 {
		t.Fatal("the Windows guide has no section on the agent's steps")
	}
	var documented []string
	for _, line := range strings.Split(g[i:], "\n") {
		m := regexp.MustCompile("^[0-9]+\\. `([a-z-]+)`").FindStringSubmatch(line)
		if m != nil {
			documented = append(documented, m[1])
		}
	}
	l := newLab(t, windowsConfig(t, "2022", "flannel", "process"), nil)
	res := l.run(context.Background(), nil, "apply", "--config", l.path, "--output", "json", "--dry-run")
	var ran []string
	for _, e := range res.events {
		ran = append(ran, e.Step)
	}
	if strings.Join(documented, " ") != strings.Join(ran, " ") {
		t.Errorf("the guide lists\n  %v\nthe agent runs\n  %v", documented, ran)
	}
}
