package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

const windowsState = `C:\ProgramData\mixedk8s\nodeagent\state.json`

// forgetInstalled makes the next apply reinstall artifacts, as a version upgrade does.
func forgetInstalled(t *testing.T, l *lab, names ...string) {
	t.Helper()
	data, err := l.sb.ReadFile(windowsState)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	inst := st["installed"].(map[string]any)
	for _, n := range names {
		delete(inst, n)
	}
	data, _ = json.Marshal(st)
	if err := l.sb.WriteFile(windowsState, data, oslayer.Public); err != nil {
		t.Fatal(err)
	}
}

// An upgrade on a running Windows node replaces binaries that services run
// and restarts containerd while the kubelet depends on it; real Windows
// refuses both unless the agent stops the dependants first.
func TestReapplyUpgradesARunningWindowsNode(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, windowsConfig(t, "2022", "flannel", "process"), nil)
	l.converge(ctx)
	forgetInstalled(t, l, "containerd", "kubelet", "kube-proxy", "kube-log-runner")
	// A changed containerd config restarts containerd under the running kubelet.
	if err := l.sb.WriteFile(`C:\Program Files\containerd\config.toml`, []byte("version = 3\n"), oslayer.Public); err != nil {
		t.Fatal(err)
	}
	res := l.apply(ctx, nil)
	if res.code != contract.ExitOK {
		t.Fatalf("re-apply exit %d:\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	for name, sv := range l.sb.Machine().Services {
		if !sv.Running {
			t.Errorf("service %s is stopped after the upgrade", name)
		}
	}
	assertAllSkipped(t, l.apply(ctx, nil))
}

// A second apply while one runs (a WinRM session dropped, the provisioner
// retried) must stop at once instead of racing the first.
func TestSecondApplyWaitsForTheFirst(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, windowsConfig(t, "2022", "flannel", "process"), nil)
	unlock, err := l.sb.Lock(`C:\ProgramData\mixedk8s\nodeagent\apply.lock`)
	if err != nil {
		t.Fatal(err)
	}
	res := l.apply(ctx, nil)
	if res.code != contract.ExitFailed || !strings.Contains(res.stdout+res.stderr, "another nodeagent apply") {
		t.Fatalf("apply beside a running one: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if n := len(nodeEffects(l.effects())); n > 1 {
		t.Errorf("the refused apply changed the machine: %d effects", n)
	}
	unlock()
	l.converge(ctx)
}

// Binaries that run as SYSTEM must not inherit C:\'s "Authenticated Users:
// Modify": any local logon could replace them.
func TestWindowsBinaryFoldersAreNotWritableByUsers(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, windowsConfig(t, "2022", "flannel", "process"), nil)
	l.converge(ctx)
	for _, p := range []string{`C:\k\kubelet.exe`, `C:\k\kube-proxy.exe`, `C:\opt\cni\bin`, `C:\etc\cni\net.d`, `C:\var\lib\kubelet`,
		`C:\var\log\kubelet`, `C:\Program Files\containerd\containerd.exe`, `C:\ProgramData\containerd`, `C:\ProgramData\mixedk8s\nodeagent\state.json`} {
		if acl := l.sb.FolderACL(p); !strings.HasPrefix(acl, "protected") {
			t.Errorf("%s: %s", p, acl)
		}
	}
	// The kubelet's key, which flanneld authenticates with, is not for Users to read.
	if acl := l.sb.FolderACL(`C:\var\lib\kubelet\pki\kubelet-client-current.pem`); strings.Contains(acl, "Users") {
		t.Errorf("the kubelet's client key: %s", acl)
	}
}
