package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// A mirror's own checksum file cannot vouch for a file the build pins: the
// lab's stand-ins are refused unless the config opts in to trusting it.
func TestPinnedDigestsOutrankTheMirrorsChecksums(t *testing.T) {
	cfg := linuxConfig(t, contract.RoleWorker, "flannel")
	l := newLab(t, cfg, nil)
	l.cfg.Artifacts.TrustMirrorChecksums = false
	data, _ := json.Marshal(l.cfg)
	if err := l.sb.WriteFile(l.path, data, oslayer.Public); err != nil {
		t.Fatal(err)
	}
	res := l.apply(context.Background(), nil)
	if res.code != contract.ExitFailed {
		t.Fatalf("exit %d, want %d: the stand-ins do not match the pins", res.code, contract.ExitFailed)
	}
	m, err := manifest.Builtin(cfg.Cluster.KubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	runc, err := manifest.Find(m, manifest.Runc, "linux", "amd64")
	if err != nil || len(runc.SHA256) != 64 {
		t.Fatalf("runc for linux/amd64 has no pin in the built-in manifest: %+v %v", runc, err)
	}
	last := res.events[len(res.events)-1]
	if !strings.Contains(last.Error, "expected "+runc.SHA256) {
		t.Errorf("the first pinned download (runc %s amd64) should fail against its pin %s: %s", runc.Version, runc.SHA256, last.Error)
	}
}
