// Package oslayer is the one seam between the node agent's steps and the
// machine: files, downloads, commands, services, Windows features, computer
// name, HNS networks, firewall rules, Defender exclusions, kernel modules,
// sysctls, swap, reboot and resume-at-boot, and the machine's identity.
//
// Three implementations exist: Native() returns the real layer for this
// GOOS (Windows on golang.org/x/sys/windows and hcsshim/hcn, Linux on
// systemd and /proc), and package nodeagent/sandbox records every effect in
// a journal instead of changing the machine. Steps only ever talk to OS,
// each through the roles it needs (Files, Fetcher, Commands, Services,
// WindowsHost, LinuxHost, Boot), so the same steps run on a VM, in the lab
// and under --dry-run.
//
// Paths are native paths of the target OS (`C:\k\kubelet.exe` on Windows,
// `/usr/bin/kubelet` on Linux); the sandbox maps them under its root.
//
// It is public, not under nodeagent/internal, only because the lab (test/lab)
// and cluster/provision import it, which Go's internal rule would forbid.
package oslayer

import (
	"context"
	"errors"
	"io"
	"io/fs"
)

// ErrNotSupported is returned by a method that has no meaning on this OS
// (HNS on Linux, swap on Windows); steps never call them there.
var ErrNotSupported = errors.New("not supported on this operating system")

// OS is everything a step may observe or change on the machine, composed
// of the roles below; a step or helper takes the narrowest role it needs.
// Methods that only observe never change anything, so --dry-run can call
// them safely.
type OS interface {
	Files
	Fetcher
	Commands
	Services
	WindowsHost
	LinuxHost
	Boot
	Access

	// Identity describes the machine: GOOS, arch, build, hostname, nested virtualisation.
	Identity(ctx context.Context) (Identity, error)
	// Diagnostics returns OS-specific material for `nodeagent diagnose`: service
	// states, HNS networks and endpoints, event logs or journals.
	Diagnostics(ctx context.Context) []DiagnosticFile
}

// Files are the machine's files and folders, with the protection each needs.
type Files interface {
	// ReadFile returns a file's content; fs.ErrNotExist when absent.
	ReadFile(path string) ([]byte, error)
	// Stat reports whether a file exists and its size; fs.ErrNotExist when absent.
	Stat(path string) (fs.FileInfo, error)
	// WriteFile writes atomically, creating parent folders; secret files are owner-only (0600 / owner-only ACL).
	WriteFile(path string, data []byte, perm FileMode) error
	// Create opens a new file for streaming writes (downloads); parents are created.
	Create(path string, perm FileMode) (io.WriteCloser, error)
	// Open streams a file's content.
	Open(path string) (io.ReadCloser, error)
	// Rename moves a file into place, replacing the target.
	Rename(from, to string) error
	// Remove deletes a file; absent is not an error.
	Remove(path string) error
	// MkdirAll creates a folder and its parents.
	MkdirAll(path string) error
	// Protect makes an existing file owner-only (the config file the provisioner pushed).
	Protect(path string) error
	// SecureFolder creates a folder whose binaries run as SYSTEM or root: on
	// Windows a protected DACL (SYSTEM and Administrators full control, Users
	// read and execute; with mode Secret, nobody else at all) that its
	// contents inherit, instead of what C:\ passes down; on Linux mode 0755
	// (0700 for Secret).
	SecureFolder(path string, mode FileMode) error
	// FolderSecured reports whether SecureFolder's protection of that mode is in place.
	FolderSecured(path string, mode FileMode) (bool, error)
	// Lock takes the machine-wide lock at path for this process, or fails at
	// once when another process holds it; the lock ends with the process.
	Lock(path string) (unlock func(), err error)
}

// Fetcher downloads over HTTP.
type Fetcher interface {
	// Fetch starts an HTTP GET; the caller verifies the digest (see Download).
	Fetch(ctx context.Context, url string) (io.ReadCloser, error)
}

// Commands run programs.
type Commands interface {
	// Run runs a command to completion; a failure is a *RunError carrying its output.
	Run(ctx context.Context, cmd Command) ([]byte, error)
}

// Services are the machine's services (Windows services, systemd units).
type Services interface {
	// Service reports an installed service; Installed is false when absent.
	Service(ctx context.Context, name string) (ServiceStatus, error)
	// InstallService creates or updates a service (auto start, restart on failure).
	InstallService(ctx context.Context, spec ServiceSpec) error
	// StartService starts a service, or restarts it when restart is true.
	StartService(ctx context.Context, name string, restart bool) error
	// StopService stops a running service; Windows refuses while services
	// that depend on it run (ERROR_DEPENDENT_SERVICES_RUNNING).
	StopService(ctx context.Context, name string) error
}

// WindowsHost is what only a Windows node has: features, the computer name,
// HNS networking, the firewall and Microsoft Defender. Linux returns
// ErrNotSupported.
type WindowsHost interface {
	// Feature reports a Windows feature's install state.
	Feature(ctx context.Context, name string) (FeatureState, error)
	// EnableFeature installs a Windows feature; it may need a reboot to finish.
	EnableFeature(ctx context.Context, name string) error
	// ComputerName returns the active name and the one pending a reboot (equal when none is pending).
	ComputerName(ctx context.Context) (active, pending string, err error)
	// SetComputerName sets the name that becomes active at the next reboot.
	SetComputerName(ctx context.Context, name string) error
	// HNSNetwork returns the HNS network of that name, or nil when absent.
	HNSNetwork(ctx context.Context, name string) (*HNSNetwork, error)
	// CreateHNSNetwork creates an HNS network.
	CreateHNSNetwork(ctx context.Context, spec HNSNetwork) error
	// NetAdapter returns the network adapter that holds ip, or nil while none does
	// (the seconds after the first HNS network moves it onto its vSwitch).
	NetAdapter(ctx context.Context, ip string) (*NetAdapter, error)
	// AddRoute adds a persistent route to prefix through adapter's default gateway.
	AddRoute(ctx context.Context, adapter, prefix string) error
	// FirewallRule reports whether an inbound rule of that name exists.
	FirewallRule(ctx context.Context, name string) (bool, error)
	// AddFirewallRule adds an inbound allow rule.
	AddFirewallRule(ctx context.Context, rule FirewallRule) error
	// DefenderExclusions lists the paths Microsoft Defender skips.
	DefenderExclusions(ctx context.Context) ([]string, error)
	// AddDefenderExclusion makes Microsoft Defender skip a path.
	AddDefenderExclusion(ctx context.Context, path string) error
}

// LinuxHost is what only a Linux node has: kernel modules, sysctls and
// swap. Windows returns ErrNotSupported.
type LinuxHost interface {
	// KernelModuleLoaded reports whether a Linux kernel module is loaded.
	KernelModuleLoaded(ctx context.Context, name string) (bool, error)
	// LoadKernelModule loads a Linux kernel module now (persistence is a file the step writes).
	LoadKernelModule(ctx context.Context, name string) error
	// Sysctl reads a kernel parameter such as net.ipv4.ip_forward.
	Sysctl(ctx context.Context, key string) (string, error)
	// SetSysctl sets a kernel parameter now (persistence is a file the step writes).
	SetSysctl(ctx context.Context, key, value string) error
	// SwapActive reports whether any swap is in use or configured in /etc/fstab.
	SwapActive(ctx context.Context) (bool, error)
	// DisableSwap turns swap off now and for later boots.
	DisableSwap(ctx context.Context) error
}

// Access is how the provisioner logs in to the machine. First boot installs
// it from data that readers of the instance's attributes can see (EC2 user
// data, Azure custom data, GCE serial port output), so the provisioner
// replaces it right after its first pinned connection and pins the new one.
type Access interface {
	// InstallSSHHostKey makes sshd present this ed25519 key (OpenSSH PEM)
	// from now on, and for later boots. Windows returns ErrNotSupported.
	InstallSSHHostKey(ctx context.Context, privatePEM []byte) error
	// InstallWinRMCertificate makes the WinRM HTTPS listener present this
	// certificate and key (PEM) from now on, and removes the certificate it
	// presented before from the machine's store. Linux returns ErrNotSupported.
	InstallWinRMCertificate(ctx context.Context, certPEM, keyPEM []byte) error
	// SetPassword sets a local account's password. Linux returns ErrNotSupported.
	SetPassword(ctx context.Context, user, password string) error
}

// Boot is rebooting and running the agent again once the machine is back.
type Boot interface {
	// ResumeRegistered reports whether the agent is registered to run at boot.
	ResumeRegistered(ctx context.Context) (bool, error)
	// RegisterResume makes the machine run argv once at the next boot (scheduled task / systemd unit).
	RegisterResume(ctx context.Context, argv []string) error
	// UnregisterResume removes the boot registration; absent is not an error.
	UnregisterResume(ctx context.Context) error
	// Reboot schedules a reboot a few seconds from now so the agent can exit first.
	Reboot(ctx context.Context) error
}

// FileMode is how a written file is protected.
type FileMode int

const (
	// Public files: 0644, readable by everyone (binaries get Executable).
	Public FileMode = iota
	// Executable files: 0755.
	Executable
	// Secret files: 0600 / owner-only ACL (tokens, keys, kubeconfigs, the agent config).
	Secret
)

// Perm is the Unix permission bits of a FileMode.
func (m FileMode) Perm() fs.FileMode {
	switch m {
	case Executable:
		return 0o755
	case Secret:
		return 0o600
	default:
		return 0o644
	}
}

func (m FileMode) String() string {
	switch m {
	case Executable:
		return "executable"
	case Secret:
		return "owner-only"
	default:
		return "public"
	}
}

// Identity is what the machine is.
type Identity struct {
	GOOS string `json:"goos"`
	Arch string `json:"arch"`
	// Build is the Windows build "10.0.20348"; empty on Linux.
	Build    string `json:"build,omitempty"`
	Hostname string `json:"hostname"`
	// NestedVirtualization: the CPU exposes virtualisation extensions to this VM.
	NestedVirtualization bool `json:"nestedVirtualization"`
}

// Command is one program run.
type Command struct {
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
	// Env is added to the agent's environment, "KEY=value".
	Env []string `json:"env,omitempty"`
	// Stdin is fed to the program; never recorded by the sandbox.
	Stdin []byte `json:"-"`
}

// String is the command line for messages; it never includes Stdin or Env values.
func (c Command) String() string { return JoinCommandLine(c.Path, c.Args) }

// RunError is a failed command with what it printed.
type RunError struct {
	Command  string
	ExitCode int
	Output   string
	Err      error
}

func (e *RunError) Error() string {
	out := e.Output
	if len(out) > 2000 {
		out = "..." + out[len(out)-2000:]
	}
	return "command " + e.Command + " failed: " + e.Err.Error() + "; output: " + out
}

func (e *RunError) Unwrap() error { return e.Err }

// ServiceSpec is a long-running service the agent installs.
type ServiceSpec struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName,omitempty"`
	Description string   `json:"description,omitempty"`
	Path        string   `json:"path"`
	Args        []string `json:"args,omitempty"`
	// DependsOn names services that must run first.
	DependsOn []string `json:"dependsOn,omitempty"`
	// EnvironmentFiles are systemd EnvironmentFile= entries (Linux only, "-" prefix: optional).
	EnvironmentFiles []string `json:"environmentFiles,omitempty"`
	// Env is "KEY=value" for the service's environment.
	Env []string `json:"env,omitempty"`
	// Notify: the service tells systemd when it is ready (Type=notify), and
	// the unit lifts the task limit and protects it from the OOM killer, as
	// containerd's own unit does (containerd/containerd containerd.service).
	Notify bool `json:"notify,omitempty"`
	// OOMScoreAdjust is the unit's OOMScoreAdjust (Linux only, 0: unset).
	OOMScoreAdjust int `json:"oomScoreAdjust,omitempty"`
	// LogFolder is where the service writes its log file; the agent creates
	// it first because the binaries exit when it is missing.
	LogFolder string `json:"logFolder,omitempty"`
}

// CommandLine is the service's command line, as compared to ServiceStatus.CommandLine.
func (s ServiceSpec) CommandLine() string { return JoinCommandLine(s.Path, s.Args) }

// ServiceStatus is an installed service as the OS reports it.
type ServiceStatus struct {
	Installed bool `json:"installed"`
	Running   bool `json:"running"`
	// CommandLine is what the service runs; steps compare it with ServiceSpec.CommandLine.
	CommandLine string `json:"commandLine,omitempty"`
	// DependsOn names the services this one needs running.
	DependsOn []string `json:"dependsOn,omitempty"`
}

// FeatureState is a Windows feature's install state.
type FeatureState struct {
	Installed bool `json:"installed"`
	// PendingReboot: installed, but only active after the next reboot.
	PendingReboot bool `json:"pendingReboot"`
}

// HNSNetwork is an HNS overlay network for a CNI.
type HNSNetwork struct {
	Name string `json:"name"`
	// Type is "Overlay" for VXLAN.
	Type          string `json:"type"`
	AddressPrefix string `json:"addressPrefix"`
	Gateway       string `json:"gateway"`
	// VNI is the VXLAN network identifier (4096 for Flannel and Calico on Windows).
	VNI int `json:"vni"`
	// UDPPort is the VXLAN port (4789 on Windows).
	UDPPort int `json:"udpPort"`
	// AdapterName binds the network's vSwitch to that adapter (multi-NIC VMs); empty: HNS picks one.
	AdapterName string `json:"adapterName,omitempty"`
	// ManagementIP is the host address HNS gives the network once its
	// vSwitch is up (its ProviderAddress policy); flannel waits for it.
	ManagementIP string `json:"managementIP,omitempty"`
}

// NetAdapter is a network adapter with one IPv4 address and its routes.
type NetAdapter struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
	// Routes are the destination prefixes routed through this adapter.
	Routes []string `json:"routes,omitempty"`
}

// FirewallRule is an inbound allow rule.
type FirewallRule struct {
	Name string `json:"name"`
	// Protocol is "TCP" or "UDP".
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
}

// DiagnosticFile is one file of a diagnose archive.
type DiagnosticFile struct {
	Name string
	Data []byte
}

// NotExist reports whether err says a file is absent.
func NotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
