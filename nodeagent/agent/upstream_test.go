package agent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// containerd 2.x deprecates the CRI plugin's cni.bin_dir for bin_dirs
// (containerd/containerd internal/cri/config/config.go, ValidateRuntimeConfig),
// and its own systemd unit is Type=notify with TasksMax=infinity and
// OOMScoreAdjust=-999 (containerd/containerd containerd.service).
func TestContainerdConfigAndUnitFollowUpstream(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []contract.Config{linuxConfig(t, contract.RoleWorker, "flannel"), windowsConfig(t, "2022", "flannel", "process")} {
		l := newLab(t, cfg, nil)
		l.converge(ctx)
		conf := "/etc/containerd/config.toml"
		if cfg.Node.OS == "windows" {
			conf = `C:\Program Files\containerd\config.toml`
		}
		data, err := l.sb.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "bin_dir =") || !strings.Contains(string(data), "bin_dirs = [") {
			t.Errorf("%s: containerd config uses the deprecated cni.bin_dir instead of bin_dirs:\n%s", cfg.Node.OS, data)
		}
		if cfg.Node.OS != "linux" {
			continue
		}
		unit := string(oslayer.SystemdUnit(l.sb.Machine().Services["containerd"].Spec))
		for _, want := range []string{"Type=notify", "TasksMax=infinity", "OOMScoreAdjust=-999"} {
			if !strings.Contains(unit, want) {
				t.Errorf("containerd unit lacks %s:\n%s", want, unit)
			}
		}
	}
}
