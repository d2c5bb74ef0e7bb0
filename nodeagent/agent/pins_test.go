package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
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
	last := res.events[len(res.events)-1]
	if !strings.Contains(last.Error, "expected 028986516ab5646370edce981df2d8e8a8d12188deaf837142a02097000ae2f2") {
		t.Errorf("the first pinned download (runc 1.3.0 amd64) should fail against its pin: %s", last.Error)
	}
}
