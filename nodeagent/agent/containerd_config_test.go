package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
)

// containerdBinary finds the containerd the loader test runs:
// $MIXEDK8S_CONTAINERD, else <repo>/bin/containerd (hack/containerd-bin.sh,
// `make containerd-bin`). Without one the test skips, unless
// MIXEDK8S_REQUIRE_CONTAINERD=1 (make test), where it fails.
func containerdBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("MIXEDK8S_CONTAINERD")
	if path == "" {
		dir, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(dir, "..", "..", "bin", "containerd")
	}
	if _, err := os.Stat(path); err != nil {
		msg := "containerd not built: run `make containerd-bin` (or set MIXEDK8S_CONTAINERD): " + err.Error()
		if os.Getenv("MIXEDK8S_REQUIRE_CONTAINERD") == "1" {
			t.Fatal(msg + " (MIXEDK8S_REQUIRE_CONTAINERD=1)")
		}
		t.Skip(msg)
	}
	return path
}

// tomlSection returns the key = value lines of one [table] of containerd's
// dump, by its header as containerd prints it.
func tomlSection(dump []byte, header string) map[string]string {
	out := map[string]string{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(dump))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			in = line == header
			continue
		}
		if k, v, ok := strings.Cut(line, " = "); in && ok {
			out[k] = v
		}
	}
	return out
}

// The containerd configs the agent writes, Linux and Windows, run through
// containerd's own loader: `containerd --config <file> config dump`
// (cmd/containerd/command/config.go dumpConfig) loads the file with
// cmd/containerd/server/config LoadConfig (version check, v1/v2 migration),
// then decodes each registered plugin's section into that plugin's config
// type (Config.Decode), the CRI plugins' into internal/cri/config's
// ImageConfig and RuntimeConfig. containerd only warns about a key no type
// has (loadConfigFile, Config.Decode: "Ignoring unknown key in TOML"), so
// any warning fails here. The dump shows each field as decoded: the
// deprecated cni.bin_dir must stay empty and bin_dirs hold the agent's
// folder (issue 11, defect 9; internal/cri/config/config.go
// ValidateRuntimeConfig warns on bin_dir).
//
// Not checked here: the runtimes' options tables (runc's SystemdCgroup,
// runhcs' SandboxIsolation) are decoded by the shims when a sandbox starts,
// not by the loader; and this containerd is the Linux build, so plugins that
// exist only on Windows (the windows snapshotter, the runhcs shim) are not
// registered to decode theirs (the Windows config sets none of their sections).
func TestContainerdLoadsTheConfigsTheAgentWrites(t *testing.T) {
	bin := containerdBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	c, _ := manifest.ComponentsFor("1.36.3")
	if !strings.Contains(string(out), " v"+c.Containerd+" ") {
		t.Fatalf("%s is %s; the agent installs containerd %s: run `make containerd-bin`", bin, strings.TrimSpace(string(out)), c.Containerd)
	}
	for _, cfg := range []contract.Config{linuxConfig(t, contract.RoleWorker, "flannel"), windowsConfig(t, "2022", "flannel", "process")} {
		t.Run(cfg.Node.OS, func(t *testing.T) {
			l := newLab(t, cfg, nil)
			l.converge(ctx)
			conf, binDir, runtime := "/etc/containerd/config.toml", "/opt/cni/bin", "runc"
			if cfg.Node.OS == "windows" {
				conf, binDir, runtime = `C:\Program Files\containerd\config.toml`, `C:\opt\cni\bin`, "runhcs-wcow-process"
			}
			data, err := l.sb.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, bin, "--config", file, "config", "dump")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			dump, err := cmd.Output()
			if err != nil {
				t.Fatalf("containerd refuses the config the agent writes: %v\n%s\n%s", err, stderr.Bytes(), data)
			}
			if bytes.Contains(stderr.Bytes(), []byte("level=warning")) || bytes.Contains(stderr.Bytes(), []byte("level=error")) {
				t.Fatalf("containerd warns about the config the agent writes:\n%s\n%s", stderr.Bytes(), data)
			}
			cni := tomlSection(dump, "[plugins.'io.containerd.cri.v1.runtime'.cni]")
			if cni["bin_dir"] != "''" {
				t.Errorf("containerd decoded cni.bin_dir = %s (deprecated; want it unset and bin_dirs used)", cni["bin_dir"])
			}
			if want := "['" + binDir + "']"; cni["bin_dirs"] != want {
				t.Errorf("containerd decoded cni.bin_dirs = %s, want %s", cni["bin_dirs"], want)
			}
			if got := tomlSection(dump, "[plugins.'io.containerd.cri.v1.runtime'.containerd]")["default_runtime_name"]; got != "'"+runtime+"'" {
				t.Errorf("containerd decoded default_runtime_name = %s, want '%s'", got, runtime)
			}
			if got := tomlSection(dump, "[plugins.'io.containerd.cri.v1.images'.pinned_images]")["sandbox"]; got != "'"+c.PauseImage+"'" {
				t.Errorf("containerd decoded pinned_images.sandbox = %s, want '%s'", got, c.PauseImage)
			}
		})
	}
	if ctx.Err() != nil {
		t.Fatal(errors.New("containerd config dump did not finish in 2 minutes"))
	}
}
