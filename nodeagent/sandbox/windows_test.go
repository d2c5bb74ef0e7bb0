package sandbox_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

func windowsMachine(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	id, err := sandbox.Emulate("windows-2022", "")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(t.TempDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func TestWindowsServiceWithoutItsLogFolderExits(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"-log-file=C:\\var\\log\\kubelet\\kubelet.log", "C:\\k\\kubelet.exe"},
		{"--run-service", "--log-file", "C:\\var\\log\\containerd\\containerd.log"},
	} {
		sb := windowsMachine(t)
		spec := oslayer.ServiceSpec{Name: "svc", Path: `C:\k\svc.exe`, Args: args}
		if err := sb.InstallService(ctx, spec); err != nil {
			t.Fatal(err)
		}
		err := sb.StartService(ctx, "svc", false)
		if err == nil || !strings.Contains(err.Error(), "cannot find the path") {
			t.Fatalf("start with a missing log folder: %v, want the service to exit", err)
		}
		if st, _ := sb.Service(ctx, "svc"); st.Running {
			t.Fatal("service runs without its log folder")
		}
		dir := args[len(args)-1]
		if strings.HasPrefix(args[0], "-log-file=") {
			dir = strings.TrimPrefix(args[0], "-log-file=")
		}
		if err := sb.MkdirAll(dir[:strings.LastIndex(dir, `\`)]); err != nil {
			t.Fatal(err)
		}
		if err := sb.StartService(ctx, "svc", false); err != nil {
			t.Fatalf("start with the log folder: %v", err)
		}
	}
}

func TestWindowsRefusesToStopAServiceItsDependantsNeed(t *testing.T) {
	ctx := context.Background()
	sb := windowsMachine(t)
	for _, spec := range []oslayer.ServiceSpec{
		{Name: "containerd", Path: `C:\Program Files\containerd\containerd.exe`},
		{Name: "kubelet", Path: `C:\k\kube-log-runner.exe`, Args: []string{`C:\k\kubelet.exe`}, DependsOn: []string{"containerd"}},
	} {
		if err := sb.InstallService(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if err := sb.StartService(ctx, spec.Name, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, stop := range []func() error{
		func() error { return sb.StopService(ctx, "containerd") },
		func() error { return sb.StartService(ctx, "containerd", true) },
	} {
		if err := stop(); err == nil || !strings.Contains(err.Error(), "ERROR_DEPENDENT_SERVICES_RUNNING") {
			t.Errorf("stopping containerd under the kubelet: %v", err)
		}
	}
	for _, exe := range []string{`C:\k\kubelet.exe`, `C:\k\kube-log-runner.exe`} {
		if err := sb.WriteFile(exe, []byte("new"), oslayer.Executable); err == nil || !strings.Contains(err.Error(), "Access is denied") {
			t.Errorf("overwriting running %s: %v", exe, err)
		}
	}
	if err := sb.StopService(ctx, "kubelet"); err != nil {
		t.Fatal(err)
	}
	if err := sb.WriteFile(`C:\k\kubelet.exe`, []byte("new"), oslayer.Executable); err != nil {
		t.Errorf("overwriting a stopped service's binary: %v", err)
	}
	if err := sb.StopService(ctx, "containerd"); err != nil {
		t.Errorf("stopping containerd once the kubelet stopped: %v", err)
	}
}

func TestMachineLockHasOneHolder(t *testing.T) {
	sb := windowsMachine(t)
	unlock, err := sb.Lock(`C:\ProgramData\x\apply.lock`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Lock(`C:\ProgramData\x\apply.lock`); err == nil {
		t.Fatal("a second holder got the lock")
	}
	unlock()
	unlock2, err := sb.Lock(`C:\ProgramData\x\apply.lock`)
	if err != nil {
		t.Fatalf("the lock after its release: %v", err)
	}
	unlock2()
}

// Windows keeps 15 characters of a longer computer name (NetBIOS), pending
// until the reboot, and refuses characters SetComputerNameEx refuses.
func TestWindowsRenameKeepsFifteenCharacters(t *testing.T) {
	ctx := context.Background()
	sb := windowsMachine(t)
	if err := sb.SetComputerName(ctx, "payments-prod-win-1"); err != nil {
		t.Fatal(err)
	}
	active, pending, _ := sb.ComputerName(ctx)
	if pending != "PAYMENTS-PROD-W" || active == pending {
		t.Errorf("after renaming to payments-prod-win-1: active %q, pending %q; want pending PAYMENTS-PROD-W until the reboot", active, pending)
	}
	if err := sb.SetComputerName(ctx, "win/1"); err == nil {
		t.Error("a name with '/' was accepted")
	}
}
