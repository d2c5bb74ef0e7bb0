package main

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mixedk8s/mixedk8s/nodeagent/bundle"
)

func TestCheckAgentsComparesEachPlatformWithItsNamedDigest(t *testing.T) {
	good := fstest.MapFS{}
	for _, p := range bundle.Platforms {
		a, err := bundle.Agent(p.GOOS, p.GOARCH)
		if err != nil {
			t.Fatal(err)
		}
		good["b/"+bundle.DigestFile(p.GOOS, p.GOARCH)] = &fstest.MapFile{Data: []byte(a.SHA256 + "  " + a.Name + "\n")}
	}
	if err := checkAgents(good, "b"); err != nil {
		t.Fatalf("the build's own digests: %v", err)
	}
	if err := checkAgents(agentDigests, "nodeagent/bundle"); err != nil {
		t.Fatalf("the digests this binary embeds: %v", err)
	}

	stale := fstest.MapFS{}
	for k, v := range good {
		stale[k] = v
	}
	linux := "b/" + bundle.DigestFile("linux", "arm64")
	stale[linux] = &fstest.MapFile{Data: []byte(strings.Repeat("0", 64) + "  nodeagent\n")}
	if err := checkAgents(stale, "b"); err == nil || !strings.Contains(err.Error(), "linux/arm64") || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("a stale digest: got %v, want an error naming linux/arm64 and the fix", err)
	}

	missing := fstest.MapFS{}
	for k, v := range good {
		missing[k] = v
	}
	delete(missing, linux)
	if err := checkAgents(missing, "b"); err == nil || !strings.Contains(err.Error(), "not in this build") {
		t.Fatalf("a missing digest: got %v", err)
	}
}
