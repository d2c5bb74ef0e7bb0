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
