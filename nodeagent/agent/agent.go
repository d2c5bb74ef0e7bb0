// Package agent is the mixedk8s node agent: one program that turns a fresh
// Windows Server or Linux VM into a Kubernetes node, driven by a
// contract.Config the provisioner pushes next to it.
//
// Main is the whole program; nodeagent/cmd/nodeagent only calls it, and the
// lab calls it in-process with a sandbox as the OS layer. Commands:
//
//	apply --config FILE [--dry-run] [--output text|json]
//	access --file FILE
//	status
//	watch --config FILE [--once] [--every DURATION]
//	diagnose --out FILE
//	version
//	help
//
// apply runs an ordered list of steps. Each step first plans by observing the
// machine (through oslayer.OS) and does only what is missing, so apply is
// idempotent and resumable: after a crash, a kill or a reboot the next apply
// continues where the machine is, and a second apply on a configured node
// skips every step. Progress is one JSON line (contract.Event) per step and
// phase with --output json. On Windows at most one reboot happens (computer
// name and features); the agent registers itself to run `apply` again at boot
// and exits with ExitRebooting.
//
// Exit codes (contract.Exit*): 0 done; 1 a step failed (the last event and
// `status` say which and why); 2 bad arguments or config (stderr names each
// field and the fix); 3 the node is rebooting and the agent resumes by itself.
//
// Secrets (bootstrap tokens, CA key, certificate key) are never printed: the
// events carry descriptions written without them and are redacted again
// before printing; files holding secrets are written owner-only, and the
// config file is made owner-only when apply reads it.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox/mirror"
)

// Version is set at build time with -ldflags "-X github.com/mixedk8s/mixedk8s/nodeagent/agent.Version=...".
var Version = "dev"

// Env is what Main runs against.
type Env struct {
	// OS is the machine; nil means the real layer of this GOOS.
	OS     oslayer.OS
	Stdout io.Writer
	Stderr io.Writer
	// Now is the clock for events and state; nil means time.Now.
	Now func() time.Time
	// Executable is the agent binary registered to run at boot; empty means
	// os.Executable() on a real machine and the agent's install path in a sandbox.
	Executable string
}

const usage = `nodeagent turns this machine into a Kubernetes node (mixedk8s).

Usage:
  nodeagent apply --config FILE [--dry-run] [--output text|json]
  nodeagent access --file FILE     install the login identity in FILE (a contract.Access), then delete FILE
  nodeagent status                 print the node's contract.Status as JSON
  nodeagent watch --config FILE [--once] [--every 30s]
                                   Windows: put back the HNS networks and services a reboot or an HNS reset took away
  nodeagent diagnose --out FILE    write logs and state to FILE (.tar.gz)
  nodeagent version
  nodeagent help

Exit codes:
  0  done (apply: the node is configured)
  1  a step failed; the last event and 'nodeagent status' say which and why
  2  bad arguments or config; stderr names each field and the fix
  3  the node reboots now; the agent resumes 'apply' at boot by itself
`

// Main runs the agent with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return contract.ExitUsage
	}
	switch args[0] {
	case "apply":
		return cmdApply(ctx, args[1:], env)
	case "access":
		return cmdAccess(ctx, args[1:], env)
	case "status":
		return cmdStatus(ctx, args[1:], env)
	case "watch":
		return cmdWatch(ctx, args[1:], env)
	case "diagnose":
		return cmdDiagnose(ctx, args[1:], env)
	case "version", "--version":
		fmt.Fprintf(env.Stdout, "nodeagent %s %s/%s contract %s\n", Version, runtime.GOOS, runtime.GOARCH, contract.APIVersion)
		return contract.ExitOK
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return contract.ExitOK
	}
	fmt.Fprintf(env.Stderr, "unknown command %q; fix: use apply, access, status, watch, diagnose, version or help\n", args[0])
	return contract.ExitUsage
}

// common flags of every command that touches the machine; --sandbox and --emulate are hidden.
type machineFlags struct {
	sandboxRoot, emulate, hostname string
}

func (m *machineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.sandboxRoot, "sandbox", "", "")
	fs.StringVar(&m.emulate, "emulate", "", "")
	fs.StringVar(&m.hostname, "hostname", "", "")
}

// machine returns the OS layer: the Env's, a sandbox from --sandbox, or the real one.
func (m *machineFlags) machine(env Env, fallback string) (oslayer.OS, bool, error) {
	if m.sandboxRoot == "" {
		if env.OS != nil {
			return env.OS, false, nil
		}
		return oslayer.Native(), false, nil
	}
	spec := m.emulate
	if spec == "" {
		spec = fallback
	}
	id, err := sandbox.Emulate(spec, m.hostname)
	if err != nil {
		return nil, false, err
	}
	sb, err := sandbox.New(m.sandboxRoot, id)
	return sb, true, err
}

func newFlagSet(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { fmt.Fprint(env.Stderr, usage) }
	return fs
}

func usageError(env Env, format string, a ...any) int {
	fmt.Fprintf(env.Stderr, format+"\n", a...)
	return contract.ExitUsage
}

func emulationFor(cfg contract.Config) string {
	if cfg.Node.OS == "windows" {
		s := "windows-" + cfg.Node.WindowsVersion
		if cfg.Node.Isolation == "hyperv" {
			s += "+nested"
		}
		return s
	}
	return "linux"
}

func cmdApply(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("apply", env)
	var mf machineFlags
	mf.register(fs)
	configPath := fs.String("config", "", "")
	dryRun := fs.Bool("dry-run", false, "")
	output := fs.String("output", "text", "")
	if err := fs.Parse(args); err != nil {
		return contract.ExitUsage
	}
	if *configPath == "" {
		return usageError(env, "apply: --config is required; fix: pass the config file the provisioner wrote")
	}
	if *output != "text" && *output != "json" {
		return usageError(env, "apply: --output %q is not supported; fix: use text or json", *output)
	}
	raw, err := mf.readConfig(env, *configPath)
	if err != nil {
		return usageError(env, "config: cannot read %s: %v; fix: pass the path of the config file", *configPath, err)
	}
	var cfg contract.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return usageError(env, "config: %s is not valid JSON: %v", *configPath, err)
	}
	o, fromFlag, err := mf.machine(env, emulationFor(cfg))
	if err != nil {
		return usageError(env, "%v", err)
	}
	given := raw
	if fromFlag && !*dryRun {
		// An emulated machine downloads from a local stand-in mirror, never the internet.
		var stopMirror func()
		if raw, stopMirror, err = withLocalMirror(raw, cfg, env); err != nil {
			fmt.Fprintf(env.Stderr, "%v\n", err)
			return contract.ExitFailed
		}
		defer stopMirror()
	}
	if cfg, err = ParseConfig(raw); err != nil {
		if !*dryRun && !fromFlag {
			// It holds tokens and keys, and no run will read it again.
			if rerr := o.Remove(*configPath); rerr != nil {
				fmt.Fprintf(env.Stderr, "failed to remove the refused config: %v\n", rerr)
			}
		}
		return configProblems(env, err)
	}
	if *dryRun && !fromFlag && env.OS == nil && cfg.Node.OS != runtime.GOOS {
		emulated, cleanup, err := emulatedForDryRun(env, cfg)
		if err != nil {
			return usageError(env, "dry-run: %v", err)
		}
		defer cleanup()
		o = emulated
	}
	if *dryRun {
		o = readOnly{o}
	}
	id, err := o.Identity(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "failed to identify the machine: %v\n", err)
		return contract.ExitFailed
	}
	// The copy kept for resume is the config as given, without a per-run stand-in mirror.
	keep, _ := ParseConfig(given)
	r := newRun(cfg, keep, o, id, env, fromFlag)
	r.json, r.dryRun = *output == "json", *dryRun
	if !*dryRun {
		// One apply at a time: a dropped session may leave the first running while the provisioner retries.
		unlock, err := o.Lock(r.join(r.paths.dir, "apply.lock"))
		if err != nil {
			fmt.Fprintf(env.Stderr, "another nodeagent apply is running on this machine (%v); fix: wait for it to finish (`nodeagent status` shows its progress) and apply again\n", err)
			return contract.ExitFailed
		}
		defer unlock()
	}
	r.loadState()
	if cfg.Node.OS != "windows" {
		r.before = r.setUpAt()
	}
	if !*dryRun && !fromFlag {
		// The provisioner's copy holds secrets too: owner-only from now on.
		if err := o.Protect(*configPath); err != nil && !oslayer.NotExist(err) {
			fmt.Fprintf(env.Stderr, "failed to make the config file owner-only: %v\n", err)
			return contract.ExitFailed
		}
	}
	return r.execute(ctx, stepsFor(cfg))
}

// newRun is a run of cfg on machine o, every OS role of it o's.
func newRun(cfg, keep contract.Config, o oslayer.OS, id oslayer.Identity, env Env, fromFlag bool) *run {
	r := &run{cfg: cfg, keep: keep, files: o, fetcher: o, commands: o, services: o, windows: o, linux: o, boot: o, id: id,
		paths: pathsFor(cfg.Node.OS), out: env.Stdout, now: env.Now, secrets: secrets(cfg)}
	r.self = selfPath(env, o, fromFlag, r.paths)
	return r
}

// readConfig reads the config file from the host when it is not on the
// (sandboxed) machine.
func (m *machineFlags) readConfig(env Env, path string) ([]byte, error) {
	switch {
	case env.OS != nil && m.sandboxRoot == "":
		return env.OS.ReadFile(path)
	case m.sandboxRoot != "":
		// A resume passes the copy inside the sandbox; a first run passes a host file.
		if sb, err := sandbox.Open(m.sandboxRoot); err == nil {
			if raw, err := sb.ReadFile(path); raw != nil {
				return raw, err
			}
		}
	}
	return os.ReadFile(path)
}

// configProblems prints what is wrong with a config, one problem a line.
func configProblems(env Env, err error) int {
	var ce *ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintln(env.Stderr, p)
		}
		return contract.ExitUsage
	}
	return usageError(env, "%v", err)
}

// emulatedForDryRun is a fresh emulated machine of the config's kind, for
// planning on a machine of another OS; cleanup removes it.
func emulatedForDryRun(env Env, cfg contract.Config) (oslayer.OS, func(), error) {
	tmp, err := os.MkdirTemp("", "nodeagent-dry-run-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	id, _ := sandbox.Emulate(emulationFor(cfg), "")
	sb, err := sandbox.New(tmp, id)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	fmt.Fprintf(env.Stderr, "dry-run: this machine is %s; planning against a fresh emulated %s machine\n", runtime.GOOS, emulationFor(cfg))
	return sb, cleanup, nil
}

// selfPath is the agent binary the node runs again at boot: the running
// executable on a real machine, the install path on an emulated one.
func selfPath(env Env, o oslayer.OS, fromFlag bool, p paths) string {
	if env.Executable != "" {
		return env.Executable
	}
	if _, isSandbox := o.(*sandbox.Sandbox); isSandbox || fromFlag || env.OS != nil {
		return p.agentBinary
	}
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return p.agentBinary
}

// withLocalMirror serves stand-ins of the config's artifacts on 127.0.0.1 and points the config at them.
func withLocalMirror(raw []byte, cfg contract.Config, env Env) ([]byte, func(), error) {
	m := cfg.Artifacts.Manifest
	if m == nil {
		var err error
		if m, err = manifest.Builtin(cfg.Cluster.KubernetesVersion); err != nil {
			return raw, func() {}, nil
		}
	}
	mr, err := mirror.New(m)
	if err != nil {
		return nil, nil, err
	}
	base, stop, err := mirror.Serve(mr)
	if err != nil {
		return nil, nil, err
	}
	pinned := *m
	pinned.Artifacts = append([]contract.Artifact(nil), m.Artifacts...)
	// Sandbox mode asked for stand-ins, so their digests replace the pins.
	for i, a := range pinned.Artifacts {
		pinned.Artifacts[i].SHA256 = mr.Digest(a.URL)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		stop()
		return nil, nil, err
	}
	arts, _ := generic["artifacts"].(map[string]any)
	if arts == nil {
		arts = map[string]any{}
	}
	arts["mirrorBaseURL"] = base
	arts["manifest"] = pinned
	generic["artifacts"] = arts
	out, err := json.Marshal(generic)
	fmt.Fprintf(env.Stderr, "sandbox: artifacts come from a local stand-in mirror at %s\n", base)
	return out, stop, err
}

// jsonConfig is the config as the agent keeps it for resume.
func jsonConfig(cfg contract.Config) ([]byte, error) {
	return json.MarshalIndent(cfg, "", "  ")
}

func cmdStatus(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("status", env)
	var mf machineFlags
	mf.register(fs)
	if err := fs.Parse(args); err != nil {
		return contract.ExitUsage
	}
	o, _, err := mf.machine(env, "linux")
	if err != nil {
		return usageError(env, "%v", err)
	}
	id, err := o.Identity(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "failed to identify the machine: %v\n", err)
		return contract.ExitFailed
	}
	st := State{Status: contract.Status{APIVersion: contract.APIVersion, Phase: contract.NodeNew, StepsDone: []string{}}}
	if data, err := o.ReadFile(pathsFor(id.GOOS).state); err == nil {
		if err := json.Unmarshal(data, &st); err != nil {
			fmt.Fprintf(env.Stderr, "failed to read the agent state: %v; fix: run apply again\n", err)
			return contract.ExitFailed
		}
	}
	if st.StepsDone == nil {
		st.StepsDone = []string{}
	}
	out, _ := json.MarshalIndent(st.Status, "", "  ")
	fmt.Fprintf(env.Stdout, "%s\n", out)
	return contract.ExitOK
}

// readOnly refuses every change, so --dry-run cannot alter the machine even through a bug.
type readOnly struct{ oslayer.OS }

var errDryRun = errors.New("dry-run: the machine is not changed")

func (readOnly) WriteFile(string, []byte, oslayer.FileMode) error { return errDryRun }
func (readOnly) Create(string, oslayer.FileMode) (io.WriteCloser, error) {
	return nil, errDryRun
}
func (readOnly) Rename(string, string) error                                 { return errDryRun }
func (readOnly) Remove(string) error                                         { return errDryRun }
func (readOnly) MkdirAll(string) error                                       { return errDryRun }
func (readOnly) Protect(string) error                                        { return errDryRun }
func (readOnly) SecureFolder(string, oslayer.FileMode) error                 { return errDryRun }
func (readOnly) Fetch(context.Context, string) (io.ReadCloser, error)        { return nil, errDryRun }
func (readOnly) Run(context.Context, oslayer.Command) ([]byte, error)        { return nil, errDryRun }
func (readOnly) InstallService(context.Context, oslayer.ServiceSpec) error   { return errDryRun }
func (readOnly) StartService(context.Context, string, bool) error            { return errDryRun }
func (readOnly) StopService(context.Context, string) error                   { return errDryRun }
func (readOnly) AddRoute(context.Context, string, string) error              { return errDryRun }
func (readOnly) EnableFeature(context.Context, string) error                 { return errDryRun }
func (readOnly) SetComputerName(context.Context, string) error               { return errDryRun }
func (readOnly) CreateHNSNetwork(context.Context, oslayer.HNSNetwork) error  { return errDryRun }
func (readOnly) AddFirewallRule(context.Context, oslayer.FirewallRule) error { return errDryRun }
func (readOnly) AddDefenderExclusion(context.Context, string) error          { return errDryRun }
func (readOnly) LoadKernelModule(context.Context, string) error              { return errDryRun }
func (readOnly) SetSysctl(context.Context, string, string) error             { return errDryRun }
func (readOnly) DisableSwap(context.Context) error                           { return errDryRun }
func (readOnly) RegisterResume(context.Context, []string) error              { return errDryRun }
func (readOnly) UnregisterResume(context.Context) error                      { return errDryRun }
func (readOnly) Reboot(context.Context) error                                { return errDryRun }
func (readOnly) InstallSSHHostKey(context.Context, []byte) error             { return errDryRun }
func (readOnly) InstallWinRMCertificate(context.Context, []byte, []byte) error {
	return errDryRun
}
func (readOnly) SetPassword(context.Context, string, string) error { return errDryRun }
