package controlplane_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// TestUpgrade starts a two-member control plane of the previous minor and
// upgrades it in place as kubeadm does: an upgrade whose new API server
// does not start leaves the member on its old one; then the first member
// is upgraded as by `kubeadm upgrade apply` (the cluster's version moves),
// and the other runs the old version until `kubeadm upgrade node`. etcd
// keeps running and keeps its data throughout.
func TestUpgrade(t *testing.T) {
	prev, from := cptest.ReleaseBins(t, cptest.PrevModule, controlplane.VersionBinaries...)
	next, to := cptest.ReleaseBins(t, cptest.Module, controlplane.VersionBinaries...)
	cptest.Bins(t, "etcd") // the previous minor's folder has none
	cl := cptest.Sandbox(t)
	cl.SetVersion(t, from)
	cp := cptest.StartFrom(t, cl, prev)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	if _, err := cp.Join(ctx, cl.ControlPlaneNode(t, "demo-cp-1", "10.0.1.5", cptest.CertificateKey)); err != nil {
		t.Fatalf("join demo-cp-1: %v", err)
	}
	first, second := cp.Member("demo-cp-0"), cp.Member("demo-cp-1")
	wantVersions(t, ctx, cp, from, map[*controlplane.Member]string{first: from, second: from})
	if code, body, err := cp.Do(ctx, http.MethodPost, "/api/v1/namespaces/default/configmaps", []byte(`{"metadata":{"name":"before-upgrade"},"data":{"k":"v"}}`)); err != nil || code != http.StatusCreated {
		t.Fatalf("create ConfigMap before-upgrade: HTTP %d %v: %s", code, err, body)
	}
	etcdPid := pidOf(t, first, "etcd")

	t.Run("version mismatch", func(t *testing.T) {
		err := cp.Upgrade(ctx, controlplane.UpgradeConfig{Node: "demo-cp-1", BinDir: prev, Version: to})
		if err == nil || !strings.Contains(err.Error(), "are "+from) {
			t.Fatalf("upgrade to %s with the binaries of %s: %v, want an error naming %s", to, from, err, from)
		}
	})

	t.Run("new API server fails", func(t *testing.T) {
		bad := brokenAPIServer(t, next, to)
		oldPid := pidOf(t, second, "kube-apiserver")
		err := cp.Upgrade(ctx, controlplane.UpgradeConfig{Node: "demo-cp-1", BinDir: bad, Version: to})
		if err == nil {
			t.Fatal("an upgrade whose kube-apiserver exits at once succeeded")
		}
		for _, want := range []string{"demo-cp-1", "kube-apiserver", filepath.Join("logs", "kube-apiserver-"+to+".log"), "runs its old kube-apiserver again"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q: %v", want, err)
			}
		}
		if pid := pidOf(t, second, "kube-apiserver"); pid == oldPid {
			t.Errorf("kube-apiserver of demo-cp-1 kept pid %d: it was never replaced", pid)
		}
		if second.BinDir() != prev {
			t.Errorf("demo-cp-1 runs from %s after the failed upgrade, want %s", second.BinDir(), prev)
		}
		wantVersions(t, ctx, cp, from, map[*controlplane.Member]string{first: from, second: from})
	})

	if err := cp.Upgrade(ctx, controlplane.UpgradeConfig{Node: "demo-cp-0", BinDir: next, Version: to, Cluster: true}); err != nil {
		t.Fatalf("upgrade demo-cp-0: %v", err)
	}
	wantVersions(t, ctx, cp, to, map[*controlplane.Member]string{first: to, second: from})
	if first.BinDir() != next || cp.BinDir() != next {
		t.Errorf("after the upgrade: demo-cp-0 runs from %s, the cluster's folder is %s; want %s", first.BinDir(), cp.BinDir(), next)
	}
	if pid := pidOf(t, first, "etcd"); pid != etcdPid {
		t.Errorf("etcd of demo-cp-0 was restarted (pid %d, was %d)", pid, etcdPid)
	}
	// Through the upgraded member, from the etcd it kept.
	code, body, err := getAt(ctx, first, "/api/v1/namespaces/default/configmaps/before-upgrade")
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"k":"v"`) {
		t.Errorf("ConfigMap before-upgrade through demo-cp-0 after the upgrade: HTTP %d %v: %s", code, err, body)
	}
	// `kubeadm upgrade node` on demo-cp-1: to the cluster's version, from its folder.
	if err := cp.Upgrade(ctx, controlplane.UpgradeConfig{Node: "demo-cp-1", BinDir: cp.BinDir(), Version: cp.Version()}); err != nil {
		t.Fatalf("upgrade demo-cp-1: %v", err)
	}
	wantVersions(t, ctx, cp, to, map[*controlplane.Member]string{first: to, second: to})
	wantMembers(t, ctx, cp, []string{"demo-cp-0", "demo-cp-1"}, nil)
	// StopMember and Close must reach the new processes.
	procs := first.Processes()
	if len(procs) != 3 {
		t.Fatalf("demo-cp-0 has %d processes after the upgrade, want etcd, kube-apiserver and kube-controller-manager", len(procs))
	}
	cp.StopMember("demo-cp-0")
	for _, p := range procs {
		if exited, _ := p.Exited(); !exited {
			t.Errorf("%s (pid %d) still runs after StopMember", p.Name, p.Pid())
		}
	}
}

// wantVersions checks the cluster's version and each member's, as the
// member says and as its API server's /version says.
func wantVersions(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, cluster string, members map[*controlplane.Member]string) {
	t.Helper()
	if got := cp.Version(); got != cluster {
		t.Errorf("cluster version %s, want %s", got, cluster)
	}
	for m, want := range members {
		code, body, err := getAt(ctx, m, "/version")
		var v struct {
			GitVersion string `json:"gitVersion"`
		}
		if err != nil || code != http.StatusOK || json.Unmarshal(body, &v) != nil {
			t.Errorf("GET /version of %s: HTTP %d %v: %s", m.Name, code, err, body)
		}
		if v.GitVersion != want || m.Version() != want {
			t.Errorf("%s: /version says %q, Version() %q; want %s", m.Name, v.GitVersion, m.Version(), want)
		}
	}
}

// getAt sends a GET to the member's own API server as the cluster admin.
func getAt(ctx context.Context, m *controlplane.Member, path string) (int, []byte, error) {
	return m.Do(ctx, http.MethodGet, path, nil)
}

func pidOf(t *testing.T, m *controlplane.Member, name string) int {
	t.Helper()
	for _, p := range m.Processes() {
		if p.Name == name {
			return p.Pid()
		}
	}
	t.Fatalf("%s runs no %s", m.Name, name)
	return 0
}

// brokenAPIServer is a folder of version's binaries whose kube-apiserver
// reports version but exits at once when run.
func brokenAPIServer(t *testing.T, bins, version string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"kubeadm", "kube-controller-manager"} {
		if err := os.Symlink(filepath.Join(bins, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Kubernetes " + version + "'; exit 0; fi\necho 'E0101 00:00:00.000000 1 run.go:1] a broken build' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "kube-apiserver"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := proc.CheckBins(dir, controlplane.VersionBinaries...); err != nil {
		t.Fatal(err)
	}
	return dir
}
