package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox/mirror"
)

// TestAControlPlaneNodeIsUpgradedInPlace: a control-plane node set up at
// 1.35.4 and applied again at 1.36.3 runs the new kubeadm's upgrade (apply
// on the first node, node on the others) after the new binaries are in
// place, then restarts the kubelet; an apply after that changes nothing,
// and a worker is never upgraded in place.
func TestAControlPlaneNodeIsUpgradedInPlace(t *testing.T) {
	newer, err := manifest.Builtin("1.36.3")
	if err != nil {
		t.Fatal(err)
	}
	second, err := mirror.New(newer)
	if err != nil {
		t.Fatal(err)
	}
	// One mirror for both releases: the first's files, else the second's.
	both := func(first http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			first.ServeHTTP(rec, r)
			if rec.Code == http.StatusNotFound {
				second.ServeHTTP(w, r)
				return
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	for _, tc := range []struct {
		role contract.Role
		want string // the kubeadm command of the upgrade; "" for none
	}{
		{contract.RoleInit, "kubeadm upgrade apply v1.36.3 --yes"},
		{contract.RoleControlPlane, "kubeadm upgrade node"},
		{contract.RoleWorker, ""},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			cfg := linuxConfig(t, tc.role, "flannel")
			cfg.Cluster.KubernetesVersion = "1.35.4"
			if tc.role == contract.RoleControlPlane {
				cfg.Join.CertificateKey = certKey
			}
			l := newLab(t, cfg, both)
			ctx := context.Background()
			l.converge(ctx)
			if got := kubeadmCommands(l.effects()); strings.Contains(got, "upgrade") {
				t.Fatalf("a node set up at its release was upgraded:\n%s", got)
			}
			before := len(l.effects())

			l.cfg.Cluster.KubernetesVersion = "1.36.3"
			l.push(t)
			res := l.converge(ctx)[0]
			after := l.effects()[before:]
			got := kubeadmCommands(after)
			if tc.want == "" {
				if strings.Contains(got, "upgrade") {
					t.Fatalf("a worker was upgraded in place:\n%s", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("kubeadm commands after the version change:\n%s\nwant %q", got, tc.want)
			}
			// The new kubeadm first, then the upgrade, then the kubelet on its new binary.
			kubeadmAt, upgradeAt, restartAt := -1, -1, -1
			for i, e := range after {
				switch {
				case e.Kind == sandbox.KindFileWrite && e.Target == "/usr/bin/kubeadm" && kubeadmAt < 0:
					kubeadmAt = i
				case e.Kind == sandbox.KindCommand && strings.Contains(e.Target, tc.want):
					upgradeAt = i
				case e.Kind == sandbox.KindServiceStart && e.Target == "kubelet" && upgradeAt >= 0:
					restartAt = i
				}
			}
			if kubeadmAt < 0 || upgradeAt < kubeadmAt || restartAt < upgradeAt {
				t.Errorf("order: new kubeadm at %d, upgrade at %d, kubelet start at %d; effects:\n%v", kubeadmAt, upgradeAt, restartAt, after)
			}
			if !hasStep(res, "kubeadm-upgrade", contract.PhaseDone) {
				t.Errorf("no kubeadm-upgrade step done: %s", res.stdout)
			}
			assertAllSkipped(t, l.apply(ctx, nil))
		})
	}
}

func kubeadmCommands(effects []sandbox.Effect) string {
	var out []string
	for _, e := range effects {
		if e.Kind == sandbox.KindCommand && strings.Contains(e.Target, "kubeadm") {
			out = append(out, e.Target)
		}
	}
	return strings.Join(out, "\n")
}

func hasStep(res result, step string, phase contract.Phase) bool {
	for _, e := range res.events {
		if e.Step == step && e.Phase == phase {
			return true
		}
	}
	return false
}

// push writes l.cfg to the machine again, as the provisioner does before each apply.
func (l *lab) push(t *testing.T) {
	t.Helper()
	data, err := json.Marshal(l.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.sb.WriteFile(l.path, data, oslayer.Public); err != nil {
		t.Fatal(err)
	}
}
