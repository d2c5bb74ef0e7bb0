package agent_test

import (
	"context"
	"path"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// A failed command's output is cut to its tail for the error; a secret the
// cut splits must be redacted whole first, or its tail leaks.
func TestASecretSplitByTheOutputCutIsRedacted(t *testing.T) {
	cfg := linuxConfig(t, contract.RoleWorker, "flannel")
	l := newLab(t, cfg, nil)
	token := cfg.Join.BootstrapToken
	l.sb.SetHooks(sandbox.Hooks{OnCommand: func(ctx context.Context, c oslayer.Command) ([]byte, bool, error) {
		if path.Base(c.Path) != "kubeadm" || len(c.Args) == 0 || c.Args[0] != "join" {
			return nil, false, nil
		}
		// The cut keeps the last 2000 bytes: it falls 10 bytes into the token, inside its secret half.
		out := strings.Repeat("a", 100) + token + strings.Repeat("b", 2000-len(token)+10)
		return []byte(out), true, errExit
	}})
	res := l.apply(context.Background(), nil)
	if res.code != contract.ExitFailed {
		t.Fatalf("exit %d, want %d", res.code, contract.ExitFailed)
	}
	for _, e := range res.events {
		if tail := token[10:]; strings.Contains(e.Error, tail) {
			t.Fatalf("event of step %s leaks the token's tail %q: %s", e.Step, tail, e.Error)
		}
	}
}

var errExit = exitError("exit status 1")

type exitError string

func (e exitError) Error() string { return string(e) }
