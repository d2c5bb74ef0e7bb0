package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// paths are where the agent keeps its own files on the node.
type paths struct {
	dir, state, log, config, downloads, agentBinary string
}

func pathsFor(goos string) paths {
	if goos == "windows" {
		d := `C:\ProgramData\mixedk8s\nodeagent`
		return paths{dir: d, state: d + `\state.json`, log: d + `\agent.log`, config: d + `\config.json`, downloads: d + `\downloads`, agentBinary: d + `\nodeagent.exe`}
	}
	d := "/var/lib/mixedk8s/nodeagent"
	return paths{dir: d, state: d + "/state.json", log: d + "/agent.log", config: d + "/config.json", downloads: d + "/downloads", agentBinary: "/usr/local/bin/nodeagent"}
}

// join builds a native path of the node's OS.
func (r *run) join(elem ...string) string {
	if r.id.GOOS == "windows" {
		return strings.Join(elem, `\`)
	}
	return path.Join(elem...)
}

// ensureFile plans writing a file unless it already holds data.
func (r *run) ensureFile(p string, data []byte, mode oslayer.FileMode, what string) []change {
	if cur, err := r.files.ReadFile(p); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	return []change{{what: "write " + what + " " + p + " (" + mode.String() + ")", do: func(ctx context.Context) error {
		return r.files.WriteFile(p, data, mode)
	}}}
}

// artifactArch is the manifest arch of this node.
func (r *run) artifactArch() string { return r.id.Arch }

// ensureArtifact plans downloading, verifying and installing one artifact
// unless the same version from the same origin is installed.
func (r *run) ensureArtifact(name, goos, arch string, install func(ctx context.Context, file string) error) ([]change, error) {
	m, err := manifest.For(r.cfg)
	if err != nil {
		return nil, err
	}
	a, err := manifest.Find(m, name, goos, arch)
	if err != nil {
		return nil, err
	}
	// The file name and version identify an artifact; a moved mirror does not reinstall it, a new pinned digest does.
	if cur, ok := r.state.Installed[name]; ok && cur.Version == a.Version && path.Base(cur.URL) == path.Base(a.URL) &&
		(a.SHA256 == "" || strings.EqualFold(a.SHA256, cur.SHA256)) {
		return nil, nil
	}
	base := path.Base(a.URL)
	if !localName(base, r.cfg.Node.OS) || strings.ContainsAny(base, `/\`) {
		return nil, fmt.Errorf("artifact %s %s: the URL %s ends in %q, which is no file name on this node; fix: correct the URL in artifacts.manifest", a.Name, a.Version, a.URL, base)
	}
	file := r.join(r.paths.downloads, base)
	return []change{{what: fmt.Sprintf("download %s %s from %s, verify its SHA-256 and install it", a.Name, a.Version, a.URL), do: func(ctx context.Context) error {
		sum, err := manifest.Download(ctx, r.fetcher, r.files, a, file)
		if err != nil {
			return err
		}
		if err := install(ctx, file); err != nil {
			return fmt.Errorf("failed to install %s from %s: %w", a.Name, file, err)
		}
		if err := r.files.Remove(file); err != nil {
			return err
		}
		r.state.Installed[name] = Installed{Version: a.Version, URL: a.URL, SHA256: sum}
		r.state.Versions[name] = a.Version
		return r.saveState()
	}}}, nil
}

// installFile copies a downloaded binary to dest.
func (r *run) installFile(dest string) func(ctx context.Context, file string) error {
	return func(ctx context.Context, file string) error {
		data, err := r.files.ReadFile(file)
		if err != nil {
			return err
		}
		return r.whileStopped(ctx, []string{dest}, func() error {
			return r.files.WriteFile(dest, data, oslayer.Executable)
		})
	}
}

// managedServices are the services the agent installs, in start order.
func (r *run) managedServices() []string {
	if r.id.GOOS == "windows" {
		return []string{"containerd", "flanneld", "kubelet", "kube-proxy", watchdogService}
	}
	return []string{"containerd", "kubelet"}
}

// stopWithDependants stops a running service after the running services
// that depend on it, deepest first, as Windows requires; it returns every
// service it stopped, in that order.
func (r *run) stopWithDependants(ctx context.Context, name string) ([]string, error) {
	var stopped []string
	for _, other := range r.managedServices() {
		st, err := r.services.Service(ctx, other)
		if err != nil {
			return stopped, err
		}
		if !st.Running || !containsFold(st.DependsOn, name) {
			continue
		}
		s, err := r.stopWithDependants(ctx, other)
		stopped = append(stopped, s...)
		if err != nil {
			return stopped, err
		}
	}
	st, err := r.services.Service(ctx, name)
	if err != nil || !st.Running {
		return stopped, err
	}
	if err := r.services.StopService(ctx, name); err != nil {
		return stopped, err
	}
	return append(stopped, name), nil
}

// restartService stops a service after its running dependants and starts
// them all again; one that was not running is started.
func (r *run) restartService(ctx context.Context, name string) error {
	stopped, err := r.stopWithDependants(ctx, name)
	if err == nil && len(stopped) == 0 {
		stopped = []string{name}
	}
	if serr := r.startAgain(ctx, stopped); err == nil {
		err = serr
	}
	return err
}

// startAgain starts services stopped by stopWithDependants, in reverse.
func (r *run) startAgain(ctx context.Context, stopped []string) error {
	for i := len(stopped) - 1; i >= 0; i-- {
		if err := r.services.StartService(ctx, stopped[i], false); err != nil {
			return err
		}
	}
	return nil
}

// whileStopped runs do with every service that runs one of files stopped:
// Windows denies replacing an executable a process runs.
func (r *run) whileStopped(ctx context.Context, files []string, do func() error) error {
	if r.id.GOOS != "windows" {
		return do()
	}
	var stopped []string
	for _, name := range r.managedServices() {
		st, err := r.services.Service(ctx, name)
		if err != nil {
			return err
		}
		if !st.Running || !runsAny(st.CommandLine, files) {
			continue
		}
		s, err := r.stopWithDependants(ctx, name)
		stopped = append(stopped, s...)
		if err != nil {
			_ = r.startAgain(ctx, stopped)
			return err
		}
	}
	if err := do(); err != nil {
		_ = r.startAgain(ctx, stopped)
		return err
	}
	return r.startAgain(ctx, stopped)
}

// runsAny reports whether a command line names one of files.
func runsAny(cmdline string, files []string) bool {
	for _, f := range files {
		if strings.Contains(strings.ToLower(cmdline), strings.ToLower(f)) {
			return true
		}
	}
	return false
}

// extractTarGz writes the regular files of a .tar.gz under dest, dropping strip from their names.
func (r *run) extractTarGz(dest, strip string) func(ctx context.Context, file string) error {
	return r.extractTarGzAs(dest, func(name string) string { return strings.TrimPrefix(name, strip) })
}

// extractTarGzAs writes the regular files of a .tar.gz under dest, each under the name rename gives it.
func (r *run) extractTarGzAs(dest string, rename func(string) string) func(ctx context.Context, file string) error {
	return func(ctx context.Context, file string) error {
		f, err := r.files.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s is not a .tar.gz: %w", file, err)
		}
		tr := tar.NewReader(gz)
		type entry struct {
			dest string
			data []byte
		}
		var entries []entry
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("failed to read %s: %w", file, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			name := rename(path.Clean(strings.TrimPrefix(h.Name, "./")))
			if !localName(name, r.cfg.Node.OS) {
				return fmt.Errorf("%s holds an unsafe path %q", file, h.Name)
			}
			data, err := io.ReadAll(io.LimitReader(tr, 512<<20))
			if err != nil {
				return fmt.Errorf("failed to read %s from %s: %w", h.Name, file, err)
			}
			elems := append([]string{dest}, strings.Split(name, "/")...)
			entries = append(entries, entry{r.join(elems...), data})
		}
		if len(entries) == 0 {
			return fmt.Errorf("%s holds no files", file)
		}
		var files []string
		for _, e := range entries {
			files = append(files, e.dest)
		}
		return r.whileStopped(ctx, files, func() error {
			for _, e := range entries {
				if err := r.files.WriteFile(e.dest, e.data, oslayer.Executable); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// ensureService plans installing a service whose command line differs and
// starting it; configChanged (files it reads change in this step) restarts it.
func (r *run) ensureService(ctx context.Context, spec oslayer.ServiceSpec, start, configChanged bool) ([]change, error) {
	st, err := r.services.Service(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	var out []change
	if spec.LogFolder != "" && !r.exists(spec.LogFolder) {
		out = append(out, change{what: "create the log folder " + spec.LogFolder + " of service " + spec.Name, do: func(ctx context.Context) error {
			return r.files.MkdirAll(spec.LogFolder)
		}})
	}
	installed := st.Installed && st.CommandLine == spec.CommandLine()
	if !installed {
		out = append(out, change{what: "install service " + spec.Name + " (auto start, restart on failure): " + spec.CommandLine(), do: func(ctx context.Context) error {
			return r.services.InstallService(ctx, spec)
		}})
	}
	switch {
	case !start:
	case !st.Running:
		out = append(out, change{what: "start service " + spec.Name, do: func(ctx context.Context) error {
			return r.services.StartService(ctx, spec.Name, false)
		}})
	case !installed || configChanged:
		out = append(out, change{what: "restart service " + spec.Name + " to load its new configuration (with the services that depend on it)", do: func(ctx context.Context) error {
			return r.restartService(ctx, spec.Name)
		}})
	}
	return out, nil
}

// marker plans running do once per distinct input fingerprint.
func (r *run) marker(key, fp, what string, do func(ctx context.Context) error) []change {
	if r.state.Markers[key] == fp {
		return nil
	}
	return []change{{what: what, do: func(ctx context.Context) error {
		if err := do(ctx); err != nil {
			return err
		}
		r.state.Markers[key] = fp
		return r.saveState()
	}}}
}

// command runs a program through the OS layer.
func (r *run) command(ctx context.Context, p string, args ...string) error {
	_, err := r.runCmd(ctx, oslayer.Command{Path: p, Args: args})
	return err
}

// runCmd runs a command; a failure's output is redacted whole before any
// wrapping formats it, since RunError cuts it to its tail and a secret the
// cut splits would no longer match.
func (r *run) runCmd(ctx context.Context, c oslayer.Command) ([]byte, error) {
	out, err := r.commands.Run(ctx, c)
	var re *oslayer.RunError
	if errors.As(err, &re) {
		re.Output, re.Command = r.redact(re.Output), r.redact(re.Command)
	}
	return out, err
}

// pauseImage is the sandbox image pinned for this Kubernetes version.
func (r *run) pauseImage() string {
	c, _ := manifest.ComponentsFor(r.cfg.Cluster.KubernetesVersion)
	return c.PauseImage
}

// resumeArgv is how the agent re-runs itself at boot.
func (r *run) resumeArgv() []string {
	return []string{r.self, "apply", "--config", r.paths.config, "--output", "json"}
}

// stepsFor returns the ordered steps of a node.
func stepsFor(cfg contract.Config) []step {
	if cfg.Node.OS == "windows" {
		return windowsSteps()
	}
	return linuxSteps(cfg)
}
