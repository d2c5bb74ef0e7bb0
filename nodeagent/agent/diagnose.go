package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// diagnosticFiles are the logs and configs worth reading on a broken node (none holds a secret).
func diagnosticFiles(goos string) []string {
	if goos == "windows" {
		return []string{
			winLogs + `\kubelet\kubelet.log`, winLogs + `\kube-proxy\kube-proxy.log`, winLogs + `\containerd\containerd.log`,
			winContainerd + `\config.toml`, winK + `\kubelet-config.yaml`, winK + `\kube-proxy-config.yaml`,
		}
	}
	return []string{"/etc/containerd/config.toml", "/var/lib/kubelet/config.yaml", "/var/lib/kubelet/kubeadm-flags.env", "/etc/sysctl.d/99-mixedk8s.conf"}
}

func cmdDiagnose(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("diagnose", env)
	var mf machineFlags
	mf.register(fs)
	out := fs.String("out", "", "")
	if err := fs.Parse(args); err != nil {
		return contract.ExitUsage
	}
	if *out == "" {
		return usageError(env, "diagnose: --out is required; fix: pass the path of the .tar.gz to write")
	}
	o, _, err := mf.machine(env, "linux")
	if err != nil {
		return usageError(env, "%v", err)
	}
	data, names, err := diagnose(ctx, o, env.Now())
	if err != nil {
		fmt.Fprintf(env.Stderr, "diagnose: %v\n", err)
		return contract.ExitFailed
	}
	if err := o.WriteFile(*out, data, oslayer.Secret); err != nil {
		fmt.Fprintf(env.Stderr, "diagnose: failed to write %s: %v\n", *out, err)
		return contract.ExitFailed
	}
	fmt.Fprintf(env.Stdout, "wrote %s (%d files, %d bytes)\n", *out, len(names), len(data))
	return contract.ExitOK
}

// diagnose builds a .tar.gz of the agent's state and log, the components'
// logs and configs, and what the OS layer adds (services, HNS, event logs).
func diagnose(ctx context.Context, o oslayer.OS, now time.Time) ([]byte, []string, error) {
	id, err := o.Identity(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to identify the machine: %w", err)
	}
	p := pathsFor(id.GOOS)
	var files []oslayer.DiagnosticFile
	idJSON, _ := json.MarshalIndent(id, "", "  ")
	files = append(files, oslayer.DiagnosticFile{Name: "identity.json", Data: idJSON})
	var secretValues []string
	if raw, err := o.ReadFile(p.config); err == nil {
		var cfg contract.Config
		if json.Unmarshal(raw, &cfg) == nil {
			secretValues = secrets(cfg)
		}
	}
	add := func(name, path string) {
		data, err := o.ReadFile(path)
		if err != nil {
			data = []byte("not available: " + err.Error() + "\n")
		}
		files = append(files, oslayer.DiagnosticFile{Name: name, Data: data})
	}
	add("agent/state.json", p.state)
	add("agent/agent.log", p.log)
	for _, f := range diagnosticFiles(id.GOOS) {
		add("files/"+sanitize(f), f)
	}
	files = append(files, o.Diagnostics(ctx)...)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	var names []string
	for _, f := range files {
		data := f.Data
		for _, s := range secretValues {
			data = bytes.ReplaceAll(data, []byte(s), []byte("[redacted]"))
		}
		name := "nodeagent-diagnose/" + f.Name
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, nil, err
		}
		names = append(names, name)
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), names, nil
}

// sanitize turns a native path into an archive name.
func sanitize(p string) string {
	s := strings.ReplaceAll(strings.ReplaceAll(p, ":", ""), `\`, "/")
	for len(s) > 0 && s[0] == '/' {
		s = s[1:]
	}
	return s
}
