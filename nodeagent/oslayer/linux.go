//go:build !windows

package oslayer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// Linux is the real layer for a systemd-based Linux distribution.
type Linux struct {
	realFiles
}

// NewLinux returns the real Linux layer.
func NewLinux() *Linux { return &Linux{realFiles: newRealFiles()} }

func native() OS { return NewLinux() }

func protect(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("failed to make %s owner-only: %w", path, err)
	}
	return nil
}

const resumeUnit = "mixedk8s-nodeagent-resume.service"

func (l *Linux) Identity(ctx context.Context) (Identity, error) {
	host, err := os.Hostname()
	if err != nil {
		return Identity{}, fmt.Errorf("failed to read the hostname: %w", err)
	}
	cpu, _ := os.ReadFile("/proc/cpuinfo")
	nested := bytes.Contains(cpu, []byte(" vmx")) || bytes.Contains(cpu, []byte(" svm"))
	return Identity{GOOS: "linux", Arch: runtime.GOARCH, Hostname: host, NestedVirtualization: nested}, nil
}

func (l *Linux) Service(ctx context.Context, name string) (ServiceStatus, error) {
	unit, err := os.ReadFile("/etc/systemd/system/" + name + ".service")
	if err != nil {
		if NotExist(err) {
			return ServiceStatus{}, nil
		}
		return ServiceStatus{}, fmt.Errorf("failed to read service %s: %w", name, err)
	}
	st := ServiceStatus{Installed: true}
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok && v != "" {
			st.CommandLine = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "Wants="); ok && v != "" {
			st.DependsOn = append(st.DependsOn, strings.TrimSuffix(v, ".service"))
		}
	}
	state, _ := l.runOutput(ctx, "systemctl", "is-active", name+".service")
	st.Running = state == "active"
	return st, nil
}

func (l *Linux) InstallService(ctx context.Context, s ServiceSpec) error {
	if err := l.WriteFile("/etc/systemd/system/"+s.Name+".service", SystemdUnit(s), Public); err != nil {
		return err
	}
	if _, err := l.Run(ctx, Command{Path: "systemctl", Args: []string{"daemon-reload"}}); err != nil {
		return fmt.Errorf("failed to reload systemd for service %s: %w", s.Name, err)
	}
	if _, err := l.Run(ctx, Command{Path: "systemctl", Args: []string{"enable", s.Name + ".service"}}); err != nil {
		return fmt.Errorf("failed to enable service %s: %w", s.Name, err)
	}
	return nil
}

func (l *Linux) StartService(ctx context.Context, name string, restart bool) error {
	verb := "start"
	if restart {
		verb = "restart"
	}
	if _, err := l.Run(ctx, Command{Path: "systemctl", Args: []string{verb, name + ".service"}}); err != nil {
		return fmt.Errorf("failed to %s service %s: %w; fix: read `journalctl -u %s`", verb, name, err, name)
	}
	return nil
}

func folderPerm(mode FileMode) os.FileMode {
	if mode == Secret {
		return 0o700
	}
	return 0o755
}

func (l *Linux) SecureFolder(path string, mode FileMode) error {
	if err := os.MkdirAll(path, folderPerm(mode)); err != nil {
		return fmt.Errorf("failed to create folder %s: %w", path, err)
	}
	return os.Chmod(path, folderPerm(mode))
}

func (l *Linux) FolderSecured(path string, mode FileMode) (bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, err
	}
	return st.IsDir() && st.Mode().Perm()&^folderPerm(mode) == 0, nil
}

func (l *Linux) NetAdapter(context.Context, string) (*NetAdapter, error) {
	return nil, ErrNotSupported
}
func (l *Linux) AddRoute(context.Context, string, string) error { return ErrNotSupported }

func (l *Linux) StopService(ctx context.Context, name string) error {
	if _, err := l.Run(ctx, Command{Path: "systemctl", Args: []string{"stop", name + ".service"}}); err != nil {
		return fmt.Errorf("failed to stop service %s: %w", name, err)
	}
	return nil
}

// Lock takes an exclusive flock on path; the kernel drops it when the process exits.
func (l *Linux) Lock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create the folder of lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s is held by another process: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func (l *Linux) Feature(context.Context, string) (FeatureState, error) {
	return FeatureState{}, ErrNotSupported
}
func (l *Linux) EnableFeature(context.Context, string) error { return ErrNotSupported }
func (l *Linux) ComputerName(ctx context.Context) (string, string, error) {
	h, err := os.Hostname()
	return h, h, err
}
func (l *Linux) SetComputerName(ctx context.Context, name string) error {
	_, err := l.Run(ctx, Command{Path: "hostnamectl", Args: []string{"set-hostname", name}})
	return err
}
func (l *Linux) HNSNetwork(context.Context, string) (*HNSNetwork, error) { return nil, ErrNotSupported }
func (l *Linux) CreateHNSNetwork(context.Context, HNSNetwork) error      { return ErrNotSupported }
func (l *Linux) FirewallRule(context.Context, string) (bool, error)      { return false, ErrNotSupported }
func (l *Linux) AddFirewallRule(context.Context, FirewallRule) error     { return ErrNotSupported }
func (l *Linux) DefenderExclusions(context.Context) ([]string, error)    { return nil, ErrNotSupported }
func (l *Linux) AddDefenderExclusion(context.Context, string) error      { return ErrNotSupported }

func (l *Linux) KernelModuleLoaded(ctx context.Context, name string) (bool, error) {
	if _, err := os.Stat("/sys/module/" + name); err == nil {
		return true, nil
	}
	mods, err := os.ReadFile("/proc/modules")
	if errors.Is(err, fs.ErrNotExist) {
		// A kernel built without loadable modules has no /proc/modules: nothing is loaded.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to read /proc/modules: %w", err)
	}
	return bytes.Contains(mods, []byte(name+" ")), nil
}

func (l *Linux) LoadKernelModule(ctx context.Context, name string) error {
	if _, err := l.Run(ctx, Command{Path: "modprobe", Args: []string{name}}); err != nil {
		return fmt.Errorf("failed to load kernel module %s: %w; fix: install the kernel's extra modules package", name, err)
	}
	return nil
}

func sysctlPath(key string) string { return "/proc/sys/" + strings.ReplaceAll(key, ".", "/") }

func (l *Linux) Sysctl(ctx context.Context, key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	if err != nil {
		return "", fmt.Errorf("failed to read sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (l *Linux) SetSysctl(ctx context.Context, key, value string) error {
	if err := os.WriteFile(sysctlPath(key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("failed to set sysctl %s: %w", key, err)
	}
	return nil
}

func (l *Linux) SwapActive(ctx context.Context) (bool, error) {
	swaps, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return false, fmt.Errorf("failed to read /proc/swaps: %w", err)
	}
	if len(bytes.Split(bytes.TrimSpace(swaps), []byte("\n"))) > 1 {
		return true, nil
	}
	fstab, _ := os.ReadFile("/etc/fstab")
	return len(fstabSwapLines(fstab)) > 0, nil
}

func fstabSwapLines(fstab []byte) []int {
	var idx []int
	for i, line := range strings.Split(string(fstab), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "#") && f[2] == "swap" {
			idx = append(idx, i)
		}
	}
	return idx
}

func (l *Linux) DisableSwap(ctx context.Context) error {
	if _, err := l.Run(ctx, Command{Path: "swapoff", Args: []string{"-a"}}); err != nil {
		return fmt.Errorf("failed to turn swap off: %w", err)
	}
	fstab, err := os.ReadFile("/etc/fstab")
	if err != nil {
		return nil
	}
	lines := strings.Split(string(fstab), "\n")
	for _, i := range fstabSwapLines(fstab) {
		lines[i] = "# disabled by mixedk8s (kubelet needs swap off): " + lines[i]
	}
	return l.WriteFile("/etc/fstab", []byte(strings.Join(lines, "\n")), Public)
}

// sshHostKey is where OpenSSH's default configuration reads the ed25519
// host key (HostKey in sshd_config(5)).
const sshHostKey = "/etc/ssh/ssh_host_ed25519_key"

func (l *Linux) InstallSSHHostKey(ctx context.Context, privatePEM []byte) error {
	pub, err := sshPublicLine(privatePEM)
	if err != nil {
		return err
	}
	// sshd skips a private key file others can read (OpenSSH authfile.c sshkey_perm_ok).
	if err := l.WriteFile(sshHostKey, privatePEM, Secret); err != nil {
		return err
	}
	if err := l.WriteFile(sshHostKey+".pub", []byte(pub+"\n"), Public); err != nil {
		return err
	}
	// SIGHUP makes sshd re-execute itself and read its host keys again;
	// sessions already open stay up. Debian and Ubuntu name the unit ssh,
	// Red Hat-like systems sshd.
	var last error
	for _, unit := range []string{"ssh.service", "sshd.service"} {
		if _, last = l.Run(ctx, Command{Path: "systemctl", Args: []string{"reload", unit}}); last == nil {
			return nil
		}
	}
	return fmt.Errorf("failed to reload sshd with its new host key: %w", last)
}

func (l *Linux) InstallWinRMCertificate(context.Context, []byte, []byte) error {
	return ErrNotSupported
}

func (l *Linux) SetPassword(context.Context, string, string) error { return ErrNotSupported }

func (l *Linux) ResumeRegistered(ctx context.Context) (bool, error) {
	_, err := os.Stat("/etc/systemd/system/" + resumeUnit)
	return err == nil, nil
}

func (l *Linux) RegisterResume(ctx context.Context, argv []string) error {
	unit := "[Unit]\nDescription=Resume the mixedk8s node agent after a reboot\nAfter=network-online.target\nWants=network-online.target\n\n" +
		"[Service]\nType=oneshot\nExecStart=" + JoinCommandLine(argv[0], argv[1:]) + "\n\n[Install]\nWantedBy=multi-user.target\n"
	if err := l.WriteFile("/etc/systemd/system/"+resumeUnit, []byte(unit), Public); err != nil {
		return err
	}
	_, err := l.Run(ctx, Command{Path: "systemctl", Args: []string{"enable", resumeUnit}})
	return err
}

func (l *Linux) UnregisterResume(ctx context.Context) error {
	_, _ = l.Run(ctx, Command{Path: "systemctl", Args: []string{"disable", resumeUnit}})
	return l.Remove("/etc/systemd/system/" + resumeUnit)
}

func (l *Linux) Reboot(ctx context.Context) error {
	_, err := l.Run(ctx, Command{Path: "systemd-run", Args: []string{"--on-active=5", "systemctl", "reboot"}})
	return err
}

func (l *Linux) Diagnostics(ctx context.Context) []DiagnosticFile {
	var files []DiagnosticFile
	add := func(name, path string, args ...string) {
		out, err := l.Run(ctx, Command{Path: path, Args: args})
		if err != nil {
			out = append(out, []byte("\nerror: "+err.Error())...)
		}
		files = append(files, DiagnosticFile{Name: name, Data: out})
	}
	for _, u := range []string{"kubelet", "containerd", resumeUnit} {
		add("journal/"+u+".log", "journalctl", "-u", u, "--no-pager", "-n", "5000")
	}
	add("services.txt", "systemctl", "list-units", "--type=service", "--all", "--no-pager")
	add("ip-addr.txt", "ip", "addr")
	add("ip-route.txt", "ip", "route")
	return files
}
