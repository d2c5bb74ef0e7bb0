// Package sandbox is an oslayer.OS that changes nothing outside one folder:
// it emulates a fresh machine of a given identity (Linux, or Windows Server
// 2019/2022/2025 with its build number, hostname, nested virtualisation) and
// records every effect — files, downloads, commands, services, Windows
// features, computer name, HNS networks and endpoints, firewall rules,
// Defender exclusions, kernel modules, sysctls, swap, resume registration,
// reboots — in a journal.
//
// Layout under ROOT: the machine's files at their native paths (C:\k\x is
// ROOT/C/k/x, /etc/x is ROOT/etc/x); ROOT/.sandbox/machine.json holds the
// emulated machine state; ROOT/.sandbox/effects.jsonl holds one Effect per
// line, in order. Open(ROOT).Effects() reads it back, so tests and the lab
// can inspect a run that happened in another process.
//
// A reboot is recorded and applies what a real one would: the pending
// computer name becomes active and features pending a reboot become
// installed. Hooks let the lab react to commands (kubeadm init), service
// starts (kubelet) and reboots, and inject faults before any effect.
//
// Downloads only reach loopback addresses (an artifact mirror such as
// package sandbox/mirror serves); anything else is refused.
//
// It is public, not under nodeagent/internal, only because the lab (test/lab)
// and cluster/provision import it, which Go's internal rule would forbid.
package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// Effect is one change the agent made to the emulated machine.
type Effect struct {
	Seq int `json:"seq"`
	// Kind is e.g. "file.write", "service.install", "reboot" (see the Kind* constants).
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
	Time   time.Time `json:"time"`
}

// Effect kinds.
const (
	KindFileWrite        = "file.write"
	KindFileRename       = "file.rename"
	KindFileRemove       = "file.remove"
	KindFileProtect      = "file.protect"
	KindDownload         = "download"
	KindCommand          = "command"
	KindServiceInstall   = "service.install"
	KindServiceStart     = "service.start"
	KindServiceRestart   = "service.restart"
	KindServiceStop      = "service.stop"
	KindFolderSecure     = "folder.secure"
	KindRouteAdd         = "route.add"
	KindFeatureEnable    = "feature.enable"
	KindComputerRename   = "computer.rename"
	KindHNSNetwork       = "hns.network.create"
	KindHNSReset         = "hns.reset"
	KindHNSNetworkDelete = "hns.network.delete"
	KindFirewallRule     = "firewall.add"
	KindDefenderExclude  = "defender.exclude"
	KindModuleLoad       = "kernel.module.load"
	KindSysctl           = "sysctl.set"
	KindSwapOff          = "swap.disable"
	KindResumeRegister   = "resume.register"
	KindResumeUnregister = "resume.unregister"
	KindReboot           = "reboot"
	KindSSHDReload       = "sshd.reload"
	KindWinRMCertificate = "winrm.certificate"
	KindPassword         = "account.password"
)

// Hooks let the lab and tests react to what the agent does. Every field is optional.
type Hooks struct {
	// OnCommand runs instead of the built-in emulation when it returns handled.
	OnCommand func(ctx context.Context, cmd oslayer.Command) (out []byte, handled bool, err error)
	// OnServiceStart is called when a service starts or restarts; an error fails the start.
	OnServiceStart func(ctx context.Context, spec oslayer.ServiceSpec) error
	// OnReboot is called after a reboot was applied.
	OnReboot func(ctx context.Context)
	// Fault is called before every effect; an error aborts it (fault injection).
	Fault func(e Effect) error
	// PodSubnet is the pod subnet the control plane gave a node (its
	// spec.podCIDR), which flanneld reads; nil: the first /24 of flannel's
	// Network, what kube-controller-manager gives the first node.
	PodSubnet func(ctx context.Context, node string) (string, error)
}

// Service is an emulated service.
type Service struct {
	Spec    oslayer.ServiceSpec `json:"spec"`
	Running bool                `json:"running"`
}

// Machine is the emulated machine's state.
type Machine struct {
	Identity            oslayer.Identity                `json:"identity"`
	ComputerName        string                          `json:"computerName"`
	PendingComputerName string                          `json:"pendingComputerName"`
	Services            map[string]*Service             `json:"services"`
	Features            map[string]oslayer.FeatureState `json:"features"`
	HNSNetworks         map[string]oslayer.HNSNetwork   `json:"hnsNetworks"`
	FirewallRules       map[string]oslayer.FirewallRule `json:"firewallRules"`
	DefenderExclusions  []string                        `json:"defenderExclusions"`
	KernelModules       map[string]bool                 `json:"kernelModules"`
	Sysctls             map[string]string               `json:"sysctls"`
	Swap                bool                            `json:"swap"`
	Resume              []string                        `json:"resume,omitempty"`
	Reboots             int                             `json:"reboots"`
	// SecuredFolders are folders with a protected DACL, by lower-case path;
	// SecretFolders those whose DACL leaves Users out.
	SecuredFolders map[string]bool `json:"securedFolders,omitempty"`
	SecretFolders  map[string]bool `json:"secretFolders,omitempty"`
	// SecretFiles are files created with a protected owner-only DACL, by lower-case path.
	SecretFiles map[string]bool `json:"secretFiles,omitempty"`
	// Adapters are the network adapters by name; VSwitchGapUntil ends the
	// gap in which the first vSwitch holds the management address.
	Adapters        map[string]*oslayer.NetAdapter `json:"adapters,omitempty"`
	VSwitchGapUntil time.Time                      `json:"vSwitchGapUntil,omitempty"`
	// Access is what the machine's sshd or WinRM listener presents and the
	// local accounts' passwords: first boot's, until the agent replaces them.
	Access *Access `json:"access,omitempty"`
	// HNSEndpoints are host endpoints by name (Calico_ep), with their address.
	HNSEndpoints map[string]string `json:"hnsEndpoints,omitempty"`
	// CalicoBoot is Reboots+1 when calico-node-windows last ran its
	// first-run-since-boot cleanup (node-service.ps1 keeps the boot time).
	CalicoBoot int `json:"calicoBoot,omitempty"`
}

// Sandbox is the recording OS layer.
type Sandbox struct {
	root  string
	mu    sync.Mutex
	m     Machine
	seq   int
	hooks Hooks
	now   func() time.Time
	// programs stand for programs by name (the lab's kubeadm), kept across SetHooks.
	programs map[string]Program
}

// Program stands for a program the machine runs: it returns what the
// program prints, and makes the effects on the sandbox that later steps
// look for. The lab provides them; the sandbox itself knows only the
// Windows CNI plugins and flanneld.
type Program func(ctx context.Context, c oslayer.Command) ([]byte, error)

var _ oslayer.OS = (*Sandbox)(nil)

// Emulate parses an identity such as "windows-2022", "windows-2025+nested",
// "linux" or "linux-arm64" into a fresh machine's identity.
func Emulate(spec, hostname string) (oslayer.Identity, error) {
	s, nested := strings.CutSuffix(spec, "+nested")
	id := oslayer.Identity{Arch: "amd64", Hostname: hostname, NestedVirtualization: nested}
	switch {
	case strings.HasPrefix(s, "windows-"):
		build, ok := contract.WindowsBuilds[strings.TrimPrefix(s, "windows-")]
		if !ok {
			return id, fmt.Errorf("--emulate %q: unknown Windows version; fix: use windows-2019, windows-2022 or windows-2025 (optionally +nested)", spec)
		}
		id.GOOS, id.Build = "windows", build
		if id.Hostname == "" {
			id.Hostname = "WIN-7Q2K9D4F1AB"
		}
	case s == "linux" || s == "linux-amd64" || s == "linux-arm64":
		id.GOOS = "linux"
		if s == "linux-arm64" {
			id.Arch = "arm64"
		}
		if id.Hostname == "" {
			id.Hostname = "ip-10-0-0-10"
		}
	default:
		return id, fmt.Errorf("--emulate %q: unknown machine; fix: use linux, linux-arm64, windows-2019, windows-2022 or windows-2025", spec)
	}
	return id, nil
}

// New opens the sandbox at root, creating a fresh machine of identity id when none exists there.
func New(root string, id oslayer.Identity) (*Sandbox, error) {
	s := &Sandbox{root: root, now: time.Now}
	if err := os.MkdirAll(s.meta(), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create sandbox %s: %w", root, err)
	}
	data, err := os.ReadFile(filepath.Join(s.meta(), "machine.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &s.m); err != nil {
			return nil, fmt.Errorf("failed to read sandbox machine %s: %w; fix: remove the folder to start a fresh machine", root, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		s.m = Machine{
			Identity:            id,
			ComputerName:        id.Hostname,
			PendingComputerName: id.Hostname,
			Swap:                id.GOOS == "linux",
		}
		if err := s.save(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("failed to read sandbox %s: %w", root, err)
	}
	s.init()
	effects, err := s.Effects()
	if err != nil {
		return nil, err
	}
	s.seq = len(effects)
	return s, nil
}

// Open opens an existing sandbox.
func Open(root string) (*Sandbox, error) {
	if _, err := os.Stat(filepath.Join(root, ".sandbox", "machine.json")); err != nil {
		return nil, fmt.Errorf("no sandbox at %s: %w; fix: create it with New or `nodeagent apply --sandbox %s --emulate ...`", root, err, root)
	}
	return New(root, oslayer.Identity{})
}

func (s *Sandbox) init() {
	if s.m.Services == nil {
		s.m.Services = map[string]*Service{}
	}
	if s.m.Features == nil {
		s.m.Features = map[string]oslayer.FeatureState{}
	}
	if s.m.HNSNetworks == nil {
		s.m.HNSNetworks = map[string]oslayer.HNSNetwork{}
	}
	if s.m.FirewallRules == nil {
		s.m.FirewallRules = map[string]oslayer.FirewallRule{}
	}
	if s.m.KernelModules == nil {
		s.m.KernelModules = map[string]bool{}
	}
	if s.m.Sysctls == nil {
		s.m.Sysctls = map[string]string{}
	}
	if s.m.SecuredFolders == nil {
		s.m.SecuredFolders = map[string]bool{}
		if s.m.Identity.GOOS == "windows" {
			// Windows ships these without C:\'s Authenticated Users: Modify.
			s.m.SecuredFolders[aclKey(`C:\Program Files`)] = true
			s.m.SecuredFolders[aclKey(`C:\Windows`)] = true
		}
	}
}

// SetProgram makes run stand for the program of that name (its file name
// without .exe) whenever a command hook does not handle it.
func (s *Sandbox) SetProgram(name string, run Program) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.programs == nil {
		s.programs = map[string]Program{}
	}
	s.programs[name] = run
}

// SetHooks replaces the hooks.
func (s *Sandbox) SetHooks(h Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = h
}

// Root is the sandbox's folder.
func (s *Sandbox) Root() string { return s.root }

func (s *Sandbox) meta() string { return filepath.Join(s.root, ".sandbox") }

// Machine returns a copy of the emulated machine's state.
func (s *Sandbox) Machine() Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, _ := json.Marshal(s.m)
	var m Machine
	_ = json.Unmarshal(data, &m)
	return m
}

// ResumeCommand is what the machine runs at its next boot, if anything.
func (s *Sandbox) ResumeCommand() []string { return s.Machine().Resume }

// Effects reads the journal.
func (s *Sandbox) Effects() ([]Effect, error) {
	f, err := os.Open(filepath.Join(s.meta(), "effects.jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the sandbox journal: %w", err)
	}
	defer f.Close()
	var out []Effect
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e Effect
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("failed to read the sandbox journal line %d: %w", len(out)+1, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

func (s *Sandbox) save() error {
	data, err := json.MarshalIndent(s.m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.meta(), "machine.json.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("failed to save the sandbox machine: %w", err)
	}
	return os.Rename(tmp, filepath.Join(s.meta(), "machine.json"))
}

// record asks the fault hook, applies change under the lock, then journals the effect.
func (s *Sandbox) record(kind, target, detail string, change func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := Effect{Seq: s.seq + 1, Kind: kind, Target: target, Detail: detail, Time: s.now().UTC()}
	if s.hooks.Fault != nil {
		if err := s.hooks.Fault(e); err != nil {
			return err
		}
	}
	if change != nil {
		if err := change(); err != nil {
			return err
		}
	}
	if err := s.save(); err != nil {
		return err
	}
	line, _ := json.Marshal(e)
	f, err := os.OpenFile(filepath.Join(s.meta(), "effects.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("failed to write the sandbox journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("failed to write the sandbox journal: %w", err)
	}
	s.seq++
	return nil
}

// HostPath maps a native path of the emulated machine to its place under the root.
func (s *Sandbox) HostPath(native string) (string, error) {
	p := strings.ReplaceAll(native, `\`, "/")
	if len(p) >= 2 && p[1] == ':' {
		p = strings.ToUpper(p[:1]) + p[2:]
	}
	clean := filepath.Clean("/" + p)
	if strings.Contains(p, "..") || clean == "/" {
		return "", fmt.Errorf("sandbox: path %q leaves the sandbox", native)
	}
	if strings.HasPrefix(clean, "/.sandbox") {
		return "", fmt.Errorf("sandbox: path %q is the sandbox's own state", native)
	}
	return filepath.Join(s.root, filepath.FromSlash(clean)), nil
}

// ReadFile reads a file of the emulated machine.
func (s *Sandbox) ReadFile(path string) ([]byte, error) {
	hp, err := s.HostPath(path)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(hp)
}

func (s *Sandbox) Stat(path string) (fs.FileInfo, error) {
	hp, err := s.HostPath(path)
	if err != nil {
		return nil, err
	}
	return os.Stat(hp)
}

func digest(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func (s *Sandbox) WriteFile(path string, data []byte, perm oslayer.FileMode) error {
	hp, err := s.HostPath(path)
	if err != nil {
		return err
	}
	return s.record(KindFileWrite, path, perm.String()+" sha256:"+digest(data), func() error {
		if err := s.imageInUse(path); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			return err
		}
		tmp := hp + ".sandbox-tmp"
		if err := os.WriteFile(tmp, data, perm.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(tmp, perm.Perm()); err != nil {
			return err
		}
		return os.Rename(tmp, hp)
	})
}

// sandboxWriter buffers a streamed file and writes it, journaled, on Close.
type sandboxWriter struct {
	s    *Sandbox
	path string
	perm oslayer.FileMode
	buf  bytes.Buffer
}

func (w *sandboxWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *sandboxWriter) Close() error                { return w.s.WriteFile(w.path, w.buf.Bytes(), w.perm) }

func (s *Sandbox) Create(path string, perm oslayer.FileMode) (io.WriteCloser, error) {
	if _, err := s.HostPath(path); err != nil {
		return nil, err
	}
	return &sandboxWriter{s: s, path: path, perm: perm}, nil
}

func (s *Sandbox) Open(path string) (io.ReadCloser, error) {
	hp, err := s.HostPath(path)
	if err != nil {
		return nil, err
	}
	return os.Open(hp)
}

func (s *Sandbox) Rename(from, to string) error {
	hf, err := s.HostPath(from)
	if err != nil {
		return err
	}
	ht, err := s.HostPath(to)
	if err != nil {
		return err
	}
	return s.record(KindFileRename, to, "from "+from, func() error {
		if err := s.imageInUse(to); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(ht), 0o755); err != nil {
			return err
		}
		return os.Rename(hf, ht)
	})
}

func (s *Sandbox) Remove(path string) error {
	hp, err := s.HostPath(path)
	if err != nil {
		return err
	}
	if _, err := os.Stat(hp); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return s.record(KindFileRemove, path, "", func() error { return os.Remove(hp) })
}

// MkdirAll creates folders without journaling: a folder alone changes nothing a node depends on.
func (s *Sandbox) MkdirAll(path string) error {
	hp, err := s.HostPath(path)
	if err != nil {
		return err
	}
	return os.MkdirAll(hp, 0o755)
}

func (s *Sandbox) Protect(path string) error {
	hp, err := s.HostPath(path)
	if err != nil {
		return err
	}
	if st, err := os.Stat(hp); err == nil && st.Mode().Perm() == 0o600 {
		return nil
	}
	return s.record(KindFileProtect, path, "owner-only", func() error { return os.Chmod(hp, 0o600) })
}

// Fetch downloads from loopback addresses only: the sandbox never reaches the internet.
func (s *Sandbox) Fetch(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("sandbox: download %q: %w", rawURL, err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("sandbox: download of %s refused: the sandbox only reaches 127.0.0.1; fix: set artifacts.mirrorBaseURL to a local mirror", rawURL)
	}
	var body io.ReadCloser
	err = s.record(KindDownload, rawURL, "", func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("failed to download %s: %w", rawURL, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("failed to download %s: HTTP %s", rawURL, resp.Status)
		}
		body = resp.Body
		return nil
	})
	return body, err
}

func (s *Sandbox) Run(ctx context.Context, c oslayer.Command) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := s.record(KindCommand, c.String(), "", func() error {
		s.mu.Unlock()
		defer s.mu.Lock()
		if s.hooks.OnCommand != nil {
			o, handled, err := s.hooks.OnCommand(ctx, c)
			if handled {
				out = o
				if err != nil {
					return &oslayer.RunError{Command: c.String(), ExitCode: 1, Output: string(o), Err: err}
				}
				return nil
			}
		}
		var err error
		out, err = s.emulateCommand(ctx, c)
		return err
	})
	return out, err
}

// emulateCommand gives the few commands whose files later steps look for their effect.
func (s *Sandbox) emulateCommand(ctx context.Context, c oslayer.Command) ([]byte, error) {
	base := strings.TrimSuffix(filepath.Base(strings.ReplaceAll(c.Path, `\`, "/")), ".exe")
	if base == "host-local" && s.m.Identity.GOOS == "windows" {
		return s.hostLocal(c)
	}
	s.mu.Lock()
	run := s.programs[base]
	s.mu.Unlock()
	if run != nil {
		return run(ctx, c)
	}
	return nil, nil
}

func (s *Sandbox) Identity(ctx context.Context) (oslayer.Identity, error) {
	m := s.Machine()
	id := m.Identity
	id.Hostname = m.ComputerName
	return id, nil
}

func (s *Sandbox) Service(ctx context.Context, name string) (oslayer.ServiceStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.m.Services[name]
	if !ok {
		return oslayer.ServiceStatus{}, nil
	}
	return oslayer.ServiceStatus{Installed: true, Running: sv.Running, CommandLine: sv.Spec.CommandLine(), DependsOn: sv.Spec.DependsOn}, nil
}

func (s *Sandbox) InstallService(ctx context.Context, spec oslayer.ServiceSpec) error {
	detail := spec.CommandLine()
	if s.m.Identity.GOOS == "windows" {
		detail += " (auto start; recovery: restart after 5s, 10s, 30s)"
	}
	return s.record(KindServiceInstall, spec.Name, detail, func() error {
		if sv, ok := s.m.Services[spec.Name]; ok {
			sv.Spec = spec
			return nil
		}
		s.m.Services[spec.Name] = &Service{Spec: spec}
		return nil
	})
}

func (s *Sandbox) StartService(ctx context.Context, name string, restart bool) error {
	s.mu.Lock()
	sv, ok := s.m.Services[name]
	var spec oslayer.ServiceSpec
	running := false
	if ok {
		spec, running = sv.Spec, sv.Running
	}
	hook := s.hooks.OnServiceStart
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("service %s is not installed", name)
	}
	if running && !restart {
		return nil
	}
	s.mu.Lock()
	missing := s.missingLogFolder(spec)
	var deps error
	if running {
		deps = s.dependantsRunning(name)
	}
	s.mu.Unlock()
	if deps != nil {
		return deps
	}
	if missing != "" {
		if running {
			s.mu.Lock()
			s.m.Services[name].Running = false
			_ = s.save()
			s.mu.Unlock()
		}
		return serviceExited(name, "open "+missing+": The system cannot find the path specified.")
	}
	kind := KindServiceStart
	if running {
		kind = KindServiceRestart
	}
	if hook != nil {
		// The hook's error is the service's own; the agent names the action.
		if err := hook(ctx, spec); err != nil {
			return err
		}
	}
	if err := s.emulateBootstrap(spec); err != nil {
		return err
	}
	if err := s.record(kind, name, "", func() error {
		s.m.Services[name].Running = true
		return nil
	}); err != nil {
		return err
	}
	// What the started process does first; when it gives up, the service stops.
	if err := s.emulateNetworkService(ctx, spec); err != nil {
		s.mu.Lock()
		s.m.Services[name].Running = false
		_ = s.save()
		s.mu.Unlock()
		return err
	}
	return nil
}

// emulateBootstrap gives a kubelet service started with a bootstrap
// kubeconfig the kubeconfig its TLS bootstrap writes, unless a hook (the
// lab's real kubelet) wrote it already. A kubelet whose bootstrap
// kubeconfig is missing never gets one.
func (s *Sandbox) emulateBootstrap(spec oslayer.ServiceSpec) error {
	var kubeconfig, bootstrap, certDir string
	for _, a := range spec.Args {
		if v, ok := strings.CutPrefix(a, "--kubeconfig="); ok {
			kubeconfig = v
		}
		if v, ok := strings.CutPrefix(a, "--bootstrap-kubeconfig="); ok {
			bootstrap = v
		}
		if v, ok := strings.CutPrefix(a, "--cert-dir="); ok {
			certDir = v
		}
	}
	if kubeconfig == "" || bootstrap == "" {
		return nil
	}
	write := func(p, content string) error {
		hp, err := s.HostPath(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			return err
		}
		return os.WriteFile(hp, []byte(content), 0o600)
	}
	if _, err := s.Stat(kubeconfig); err != nil {
		if _, err := s.Stat(bootstrap); err != nil {
			return nil
		}
		if err := write(kubeconfig, "# written by the emulated kubelet's TLS bootstrap\n"); err != nil {
			return err
		}
	}
	// The bootstrap stores the signed certificate and key under --cert-dir
	// (kubernetes/kubernetes pkg/kubelet/certificate/bootstrap/bootstrap.go,
	// kubelet-client-current.pem); the lab's kubelet keeps its own on the lab host.
	if certDir == "" || s.m.Identity.GOOS != "windows" {
		return nil
	}
	cert := certDir + `\` + KubeletClientCert
	if _, err := s.Stat(cert); err == nil {
		return nil
	}
	return write(cert, "# certificate and key from the emulated kubelet's TLS bootstrap\n")
}

// KubeletClientCert is the file the kubelet's TLS bootstrap keeps its
// current client certificate and key in, under --cert-dir.
const KubeletClientCert = "kubelet-client-current.pem"

// StopService stops a running service, as the Service Control Manager does.
func (s *Sandbox) StopService(ctx context.Context, name string) error {
	s.mu.Lock()
	sv, ok := s.m.Services[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("service %s is not installed", name)
	}
	if !sv.Running {
		s.mu.Unlock()
		return nil
	}
	err := s.dependantsRunning(name)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.record(KindServiceStop, name, "", func() error {
		s.m.Services[name].Running = false
		return nil
	})
}

func (s *Sandbox) windowsOnly() error {
	if s.m.Identity.GOOS != "windows" {
		return oslayer.ErrNotSupported
	}
	return nil
}

func (s *Sandbox) linuxOnly() error {
	if s.m.Identity.GOOS != "linux" {
		return oslayer.ErrNotSupported
	}
	return nil
}

func (s *Sandbox) Feature(ctx context.Context, name string) (oslayer.FeatureState, error) {
	if err := s.windowsOnly(); err != nil {
		return oslayer.FeatureState{}, err
	}
	return s.Machine().Features[name], nil
}

func (s *Sandbox) EnableFeature(ctx context.Context, name string) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	return s.record(KindFeatureEnable, name, "pending reboot", func() error {
		s.m.Features[name] = oslayer.FeatureState{Installed: true, PendingReboot: true}
		return nil
	})
}

func (s *Sandbox) ComputerName(ctx context.Context) (string, string, error) {
	m := s.Machine()
	return m.ComputerName, m.PendingComputerName, nil
}

// SetComputerName models Rename-Computer: on Windows the name is the DNS
// host name, refused with characters SetComputerNameEx refuses, and the
// computer's (NetBIOS) name is its first 15 characters, upper-cased
// (https://learn.microsoft.com/windows/win32/api/sysinfoapi/nf-sysinfoapi-setcomputernameexw,
// https://learn.microsoft.com/windows/win32/sysinfo/computer-names).
func (s *Sandbox) SetComputerName(ctx context.Context, name string) error {
	windows := s.Machine().Identity.GOOS != "linux"
	if windows && (name == "" || strings.TrimSpace(name) != name || strings.ContainsAny(name, `"/\[]:|<>+=;,?*`) || strings.IndexFunc(name, unicode.IsControl) >= 0) {
		return fmt.Errorf("rename the computer to %q: not a valid computer name (ERROR_INVALID_PARAMETER)", name)
	}
	return s.record(KindComputerRename, name, "pending reboot", func() error {
		if !windows {
			s.m.ComputerName, s.m.PendingComputerName = name, name
			return nil
		}
		s.m.PendingComputerName = NetBIOSName(name)
		return nil
	})
}

// NetBIOSName is the computer name Windows keeps of a host name: its first
// 15 characters, upper-cased (SetComputerNameEx, ComputerNamePhysicalDnsHostname).
func NetBIOSName(host string) string {
	return strings.ToUpper(host[:min(len(host), 15)])
}

func (s *Sandbox) HNSNetwork(ctx context.Context, name string) (*oslayer.HNSNetwork, error) {
	if err := s.windowsOnly(); err != nil {
		return nil, err
	}
	n, ok := s.Machine().HNSNetworks[name]
	if !ok {
		return nil, nil
	}
	return &n, nil
}

func (s *Sandbox) CreateHNSNetwork(ctx context.Context, spec oslayer.HNSNetwork) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	if st := s.Machine().Features["Containers"]; !st.Installed || st.PendingReboot {
		return fmt.Errorf("failed to create HNS network %s: the Containers feature is not active; fix: install it and reboot", spec.Name)
	}
	detail := fmt.Sprintf("type=%s prefix=%s gateway=%s vni=%d udp=%d", spec.Type, spec.AddressPrefix, spec.Gateway, spec.VNI, spec.UDPPort)
	if spec.AdapterName != "" {
		detail += " adapter=" + spec.AdapterName
	}
	return s.record(KindHNSNetwork, spec.Name, detail, func() error {
		if err := s.attachVSwitch(spec.AdapterName); err != nil {
			return err
		}
		s.m.HNSNetworks[spec.Name] = spec
		return nil
	})
}

// ResetHNS drops every HNS network, as the Host Network Service losing its
// state does: after a reboot "Network flannel.4096 not found"
// (kubernetes-sigs/sig-windows-tools#89; Azure/azure-container-networking#283),
// after a restart of the hns service its endpoints gone
// (projectcalico/calico#5164). flanneld and kube-proxy keep running without
// their networks. Not modelled: the vSwitch going with the last network
// (the adapter keeps its vEthernet name and address here).
func (s *Sandbox) ResetHNS() error {
	return s.record(KindHNSReset, "networks", "", func() error {
		s.m.HNSNetworks = map[string]oslayer.HNSNetwork{}
		return nil
	})
}

func (s *Sandbox) FirewallRule(ctx context.Context, name string) (bool, error) {
	if err := s.windowsOnly(); err != nil {
		return false, err
	}
	_, ok := s.Machine().FirewallRules[name]
	return ok, nil
}

func (s *Sandbox) AddFirewallRule(ctx context.Context, r oslayer.FirewallRule) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	return s.record(KindFirewallRule, r.Name, fmt.Sprintf("inbound allow %s/%d", r.Protocol, r.Port), func() error {
		s.m.FirewallRules[r.Name] = r
		return nil
	})
}

func (s *Sandbox) DefenderExclusions(ctx context.Context) ([]string, error) {
	if err := s.windowsOnly(); err != nil {
		return nil, err
	}
	return s.Machine().DefenderExclusions, nil
}

func (s *Sandbox) AddDefenderExclusion(ctx context.Context, path string) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	return s.record(KindDefenderExclude, path, "", func() error {
		s.m.DefenderExclusions = append(s.m.DefenderExclusions, path)
		return nil
	})
}

func (s *Sandbox) KernelModuleLoaded(ctx context.Context, name string) (bool, error) {
	if err := s.linuxOnly(); err != nil {
		return false, err
	}
	return s.Machine().KernelModules[name], nil
}

func (s *Sandbox) LoadKernelModule(ctx context.Context, name string) error {
	if err := s.linuxOnly(); err != nil {
		return err
	}
	return s.record(KindModuleLoad, name, "", func() error {
		s.m.KernelModules[name] = true
		return nil
	})
}

// sysctlDefaults are a fresh Ubuntu's values for the keys the agent sets.
var sysctlDefaults = map[string]string{"net.ipv4.ip_forward": "0"}

func (s *Sandbox) Sysctl(ctx context.Context, key string) (string, error) {
	if err := s.linuxOnly(); err != nil {
		return "", err
	}
	if v, ok := s.Machine().Sysctls[key]; ok {
		return v, nil
	}
	return sysctlDefaults[key], nil
}

func (s *Sandbox) SetSysctl(ctx context.Context, key, value string) error {
	if err := s.linuxOnly(); err != nil {
		return err
	}
	return s.record(KindSysctl, key, value, func() error {
		s.m.Sysctls[key] = value
		return nil
	})
}

func (s *Sandbox) SwapActive(ctx context.Context) (bool, error) {
	if err := s.linuxOnly(); err != nil {
		return false, err
	}
	return s.Machine().Swap, nil
}

func (s *Sandbox) DisableSwap(ctx context.Context) error {
	if err := s.linuxOnly(); err != nil {
		return err
	}
	return s.record(KindSwapOff, "swap", "", func() error {
		s.m.Swap = false
		return nil
	})
}

func (s *Sandbox) ResumeRegistered(ctx context.Context) (bool, error) {
	return len(s.Machine().Resume) > 0, nil
}

func (s *Sandbox) RegisterResume(ctx context.Context, argv []string) error {
	return s.record(KindResumeRegister, "boot", oslayer.JoinCommandLine(argv[0], argv[1:]), func() error {
		s.m.Resume = append([]string(nil), argv...)
		return nil
	})
}

func (s *Sandbox) UnregisterResume(ctx context.Context) error {
	if ok, _ := s.ResumeRegistered(ctx); !ok {
		return nil
	}
	return s.record(KindResumeUnregister, "boot", "", func() error {
		s.m.Resume = nil
		return nil
	})
}

// Reboot applies what a real reboot would, at once: the agent then exits and
// whoever drives the sandbox runs ResumeCommand, as the boot would.
func (s *Sandbox) Reboot(ctx context.Context) error {
	err := s.record(KindReboot, s.m.PendingComputerName, "", func() error {
		s.m.Reboots++
		s.m.ComputerName = s.m.PendingComputerName
		for name, st := range s.m.Features {
			st.PendingReboot = false
			s.m.Features[name] = st
		}
		return nil
	})
	if err == nil && s.hooks.OnReboot != nil {
		s.hooks.OnReboot(ctx)
	}
	return err
}

func (s *Sandbox) Diagnostics(ctx context.Context) []oslayer.DiagnosticFile {
	m := s.Machine()
	js := func(v any) []byte { b, _ := json.MarshalIndent(v, "", "  "); return b }
	files := []oslayer.DiagnosticFile{{Name: "sandbox/machine.json", Data: js(m)}}
	names := make([]string, 0, len(m.Services))
	for n := range m.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	var svc bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&svc, "%s running=%v %s\n", n, m.Services[n].Running, m.Services[n].Spec.CommandLine())
	}
	files = append(files, oslayer.DiagnosticFile{Name: "services.txt", Data: svc.Bytes()})
	if m.Identity.GOOS == "windows" {
		files = append(files,
			oslayer.DiagnosticFile{Name: "hns/networks.json", Data: js(m.HNSNetworks)})
	}
	effects, _ := s.Effects()
	var events bytes.Buffer
	for _, e := range effects {
		if strings.HasPrefix(e.Kind, "service.") || e.Kind == KindReboot || e.Kind == KindFeatureEnable {
			fmt.Fprintf(&events, "%s %s %s %s\n", e.Time.Format(time.RFC3339), e.Kind, e.Target, e.Detail)
		}
	}
	name := "journal/system.log"
	if m.Identity.GOOS == "windows" {
		name = "eventlog/system.txt"
	}
	files = append(files, oslayer.DiagnosticFile{Name: name, Data: events.Bytes()})
	return files
}
