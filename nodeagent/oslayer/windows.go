//go:build windows

package oslayer

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/Microsoft/hcsshim/hcn"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/mixedk8s/mixedk8s/internal/powershell"
)

// Windows is the real layer for Windows Server: services through the Service
// Control Manager, HNS through hcn, features, firewall and Defender through
// PowerShell cmdlets (they have no stable Win32 API).
type Windows struct {
	realFiles
}

// NewWindows returns the real Windows layer.
func NewWindows() *Windows { return &Windows{realFiles: newRealFiles()} }

func native() OS { return NewWindows() }

const resumeTask = "mixedk8s-nodeagent-resume"

// ownerOnlySDDL grants SYSTEM and Administrators full control and nothing to anyone else, without inheritance.
const ownerOnlySDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"

func protect(path string) error {
	sd, err := windows.SecurityDescriptorFromString(ownerOnlySDDL)
	if err != nil {
		return fmt.Errorf("failed to build the owner-only ACL for %s: %w", path, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("failed to read the owner-only ACL for %s: %w", path, err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("failed to make %s owner-only: %w; fix: run the agent as SYSTEM or an administrator", path, err)
	}
	return nil
}

// securedSDDL: SYSTEM and Administrators full control, Users read and
// execute, inherited by subfolders and files; P blocks what the parent passes
// down. secretSDDL leaves Users out: folders of keys.
const (
	securedSDDL = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"
	secretSDDL  = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
)

func folderSDDL(mode FileMode) string {
	if mode == Secret {
		return secretSDDL
	}
	return securedSDDL
}

func (w *Windows) SecureFolder(path string, mode FileMode) error {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("failed to create folder %s: %w", path, err)
	}
	sd, err := windows.SecurityDescriptorFromString(folderSDDL(mode))
	if err != nil {
		return fmt.Errorf("failed to build the ACL for %s: %w", path, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("failed to read the ACL for %s: %w", path, err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("failed to set the ACL of %s: %w; fix: run the agent as SYSTEM or an administrator", path, err)
	}
	return nil
}

func (w *Windows) FolderSecured(path string, mode FileMode) (bool, error) {
	if _, err := os.Stat(path); err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, err
	}
	got, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return false, fmt.Errorf("failed to read the ACL of %s: %w", path, err)
	}
	want, err := windows.SecurityDescriptorFromString(folderSDDL(mode))
	if err != nil {
		return false, err
	}
	// Both go through the same API, so their SDDL forms compare.
	return got.String() == want.String(), nil
}

// ps runs a PowerShell script without profile and returns its trimmed output.
func (w *Windows) ps(ctx context.Context, script string) (string, error) {
	return w.runOutput(ctx, "powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command",
		"$ErrorActionPreference='Stop'; $ProgressPreference='SilentlyContinue'; "+script)
}

func psQuote(s string) string { return powershell.Quote(s) }

func (w *Windows) Identity(ctx context.Context) (Identity, error) {
	v := windows.RtlGetVersion()
	host, err := os.Hostname()
	if err != nil {
		return Identity{}, fmt.Errorf("failed to read the computer name: %w", err)
	}
	// Firmware flags read false once Hyper-V runs, so a running hypervisor with vmms counts too.
	out, err := w.ps(ctx, `$p = Get-CimInstance Win32_Processor | Select-Object -First 1; `+
		`$cs = Get-CimInstance Win32_ComputerSystem; `+
		`[bool]($p.VirtualizationFirmwareEnabled -or ($cs.HypervisorPresent -and (Get-Service vmms -ErrorAction SilentlyContinue)))`)
	if err != nil {
		return Identity{}, fmt.Errorf("failed to detect nested virtualisation: %w", err)
	}
	return Identity{
		GOOS:                 "windows",
		Arch:                 runtime.GOARCH,
		Build:                fmt.Sprintf("%d.%d.%d", v.MajorVersion, v.MinorVersion, v.BuildNumber),
		Hostname:             host,
		NestedVirtualization: strings.EqualFold(out, "True"),
	}, nil
}

func (w *Windows) Service(ctx context.Context, name string) (ServiceStatus, error) {
	m, err := mgr.Connect()
	if err != nil {
		return ServiceStatus{}, fmt.Errorf("failed to connect to the service manager: %w", err)
	}
	defer func() { _ = m.Disconnect() }()
	s, err := m.OpenService(name)
	if err != nil {
		if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
			return ServiceStatus{}, nil
		}
		return ServiceStatus{}, fmt.Errorf("failed to open service %s: %w", name, err)
	}
	defer s.Close()
	cfg, err := s.Config()
	if err != nil {
		return ServiceStatus{}, fmt.Errorf("failed to read service %s: %w", name, err)
	}
	st, err := s.Query()
	if err != nil {
		return ServiceStatus{}, fmt.Errorf("failed to query service %s: %w", name, err)
	}
	return ServiceStatus{Installed: true, Running: st.State == svc.Running, CommandLine: cfg.BinaryPathName, DependsOn: cfg.Dependencies}, nil
}

func (w *Windows) InstallService(ctx context.Context, spec ServiceSpec) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("failed to connect to the service manager: %w", err)
	}
	defer func() { _ = m.Disconnect() }()
	s, err := m.OpenService(spec.Name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		s, err = m.CreateService(spec.Name, spec.Path, mgr.Config{
			StartType:    mgr.StartAutomatic,
			DisplayName:  cmp.Or(spec.DisplayName, spec.Name),
			Description:  spec.Description,
			Dependencies: spec.DependsOn,
		}, spec.Args...)
	}
	if err != nil {
		return fmt.Errorf("failed to create service %s: %w", spec.Name, err)
	}
	defer s.Close()
	cfg, err := s.Config()
	if err != nil {
		return fmt.Errorf("failed to read service %s: %w", spec.Name, err)
	}
	cfg.BinaryPathName = spec.CommandLine()
	cfg.StartType = mgr.StartAutomatic
	cfg.DisplayName = cmp.Or(spec.DisplayName, spec.Name)
	cfg.Description = spec.Description
	cfg.Dependencies = spec.DependsOn
	if err := s.UpdateConfig(cfg); err != nil {
		return fmt.Errorf("failed to update service %s: %w", spec.Name, err)
	}
	// Restart after 5s, 10s, then every 30s; the failure count resets after a day.
	actions := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 10 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
	}
	if err := s.SetRecoveryActions(actions, 86400); err != nil {
		return fmt.Errorf("failed to set recovery actions of service %s: %w", spec.Name, err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("failed to set recovery on non-crash failures of service %s: %w", spec.Name, err)
	}
	if len(spec.Env) > 0 {
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\`+spec.Name, registry.SET_VALUE)
		if err != nil {
			return fmt.Errorf("failed to open the registry key of service %s: %w", spec.Name, err)
		}
		defer k.Close()
		if err := k.SetStringsValue("Environment", spec.Env); err != nil {
			return fmt.Errorf("failed to set the environment of service %s: %w", spec.Name, err)
		}
	}
	return nil
}

func (w *Windows) StartService(ctx context.Context, name string, restart bool) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("failed to connect to the service manager: %w", err)
	}
	defer func() { _ = m.Disconnect() }()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("failed to open service %s: %w", name, err)
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return fmt.Errorf("failed to query service %s: %w", name, err)
	}
	if st.State == svc.Running {
		if !restart {
			return nil
		}
		if err := stopAndWait(ctx, s, name, st); err != nil {
			return err
		}
	}
	if err := s.Start(); err != nil {
		return fmt.Errorf("service %s: %w; fix: read the service's log and `sc.exe qc %s`", name, err, name)
	}
	return nil
}

func (w *Windows) StopService(ctx context.Context, name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("failed to connect to the service manager: %w", err)
	}
	defer func() { _ = m.Disconnect() }()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("failed to open service %s: %w", name, err)
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return fmt.Errorf("failed to query service %s: %w", name, err)
	}
	if st.State == svc.Stopped {
		return nil
	}
	return stopAndWait(ctx, s, name, st)
}

// stopAndWait asks a service to stop and polls until the service manager says it has.
func stopAndWait(ctx context.Context, s *mgr.Service, name string, st svc.Status) error {
	if _, err := s.Control(svc.Stop); err != nil {
		return fmt.Errorf("failed to stop service %s: %w", name, err)
	}
	for st.State != svc.Stopped {
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to stop service %s: %w", name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		var err error
		if st, err = s.Query(); err != nil {
			return fmt.Errorf("failed to query service %s: %w", name, err)
		}
	}
	return nil
}

// Lock opens path without sharing: a second opener gets ERROR_SHARING_VIOLATION
// until this process closes it or exits.
func (w *Windows) Lock(path string) (func(), error) {
	if err := os.MkdirAll(path[:strings.LastIndex(path, `\`)], 0o755); err != nil {
		return nil, fmt.Errorf("failed to create the folder of lock %s: %w", path, err)
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_ALWAYS, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s is held by another process: %w", path, err)
	}
	return func() { _ = windows.CloseHandle(h) }, nil
}

func (w *Windows) Feature(ctx context.Context, name string) (FeatureState, error) {
	out, err := w.ps(ctx, "(Get-WindowsFeature -Name "+psQuote(name)+").InstallState")
	if err != nil {
		return FeatureState{}, fmt.Errorf("failed to read Windows feature %s: %w", name, err)
	}
	switch out {
	case "Installed":
		return FeatureState{Installed: true}, nil
	case "InstallPending":
		return FeatureState{Installed: true, PendingReboot: true}, nil
	}
	return FeatureState{}, nil
}

func (w *Windows) EnableFeature(ctx context.Context, name string) error {
	if _, err := w.ps(ctx, "Install-WindowsFeature -Name "+psQuote(name)+" -IncludeManagementTools | Out-Null"); err != nil {
		return fmt.Errorf("failed to install Windows feature %s: %w", name, err)
	}
	return nil
}

func (w *Windows) ComputerName(ctx context.Context) (string, string, error) {
	read := func(key string) (string, error) {
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, key, registry.QUERY_VALUE)
		if err != nil {
			return "", err
		}
		defer k.Close()
		v, _, err := k.GetStringValue("ComputerName")
		return v, err
	}
	active, err := read(`SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName`)
	if err != nil {
		return "", "", fmt.Errorf("failed to read the active computer name: %w", err)
	}
	pending, err := read(`SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName`)
	if err != nil {
		return "", "", fmt.Errorf("failed to read the pending computer name: %w", err)
	}
	return active, pending, nil
}

func (w *Windows) SetComputerName(ctx context.Context, name string) error {
	if _, err := w.ps(ctx, "Rename-Computer -NewName "+psQuote(name)+" -Force -WarningAction SilentlyContinue"); err != nil {
		return fmt.Errorf("failed to rename the computer to %s: %w", name, err)
	}
	return nil
}

func (w *Windows) HNSNetwork(ctx context.Context, name string) (*HNSNetwork, error) {
	n, err := hcn.GetNetworkByName(name)
	if err != nil {
		if hcn.IsNotFoundError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to read HNS network %s: %w", name, err)
	}
	out := &HNSNetwork{Name: n.Name, Type: string(n.Type)}
	for _, ipam := range n.Ipams {
		for _, s := range ipam.Subnets {
			out.AddressPrefix = s.IpAddressPrefix
			for _, r := range s.Routes {
				out.Gateway = r.NextHop
			}
			for _, p := range s.Policies {
				var sp struct {
					Type     string
					Settings hcn.VsidPolicySetting
				}
				if json.Unmarshal(p, &sp) == nil && sp.Type == string(hcn.VSID) {
					out.VNI = int(sp.Settings.IsolationId)
				}
			}
		}
	}
	for _, p := range n.Policies {
		// The management IP as flannel reads it (flannel-io/flannel pkg/backend/vxlan/device_windows.go, getManagementIP).
		if p.Type == hcn.ProviderAddress {
			var pa hcn.ProviderAddressEndpointPolicySetting
			if json.Unmarshal(p.Settings, &pa) == nil {
				out.ManagementIP = pa.ProviderAddress
			}
		}
		if p.Type == hcn.VxlanPort {
			var vp hcn.VxlanPortPolicySetting
			if json.Unmarshal(p.Settings, &vp) == nil {
				out.UDPPort = int(vp.Port)
			}
		}
	}
	if out.UDPPort == 0 {
		out.UDPPort = 4789
	}
	return out, nil
}

func (w *Windows) CreateHNSNetwork(ctx context.Context, spec HNSNetwork) error {
	vsid, _ := json.Marshal(hcn.SubnetPolicy{Type: hcn.VSID, Settings: mustJSON(hcn.VsidPolicySetting{IsolationId: uint32(spec.VNI)})})
	n := &hcn.HostComputeNetwork{
		Name: spec.Name,
		Type: hcn.NetworkType(spec.Type),
		Ipams: []hcn.Ipam{{
			Type: "Static",
			Subnets: []hcn.Subnet{{
				IpAddressPrefix: spec.AddressPrefix,
				Policies:        []json.RawMessage{vsid},
				Routes:          []hcn.Route{{NextHop: spec.Gateway, DestinationPrefix: "0.0.0.0/0"}},
			}},
		}},
		SchemaVersion: hcn.V2SchemaVersion(),
	}
	if spec.AdapterName != "" {
		n.Policies = append(n.Policies, hcn.NetworkPolicy{Type: hcn.NetAdapterName, Settings: mustJSON(hcn.NetAdapterNameNetworkPolicySetting{NetworkAdapterName: spec.AdapterName})})
	}
	if spec.UDPPort != 0 && spec.UDPPort != 4789 {
		n.Policies = append(n.Policies, hcn.NetworkPolicy{Type: hcn.VxlanPort, Settings: mustJSON(hcn.VxlanPortPolicySetting{Port: uint16(spec.UDPPort)})})
	}
	if _, err := n.Create(); err != nil {
		return fmt.Errorf("failed to create HNS network %s: %w; fix: check the Containers feature is installed and the host rebooted", spec.Name, err)
	}
	return nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (w *Windows) NetAdapter(ctx context.Context, ip string) (*NetAdapter, error) {
	out, err := w.ps(ctx, "$a = Get-NetIPAddress -AddressFamily IPv4 -IPAddress "+psQuote(ip)+" -ErrorAction SilentlyContinue | Select-Object -First 1; "+
		"if ($a) { $a.InterfaceAlias; Get-NetRoute -AddressFamily IPv4 -InterfaceIndex $a.InterfaceIndex | ForEach-Object { $_.DestinationPrefix } }")
	if err != nil {
		return nil, fmt.Errorf("failed to find the adapter of %s: %w", ip, err)
	}
	lines := strings.Split(strings.ReplaceAll(out, "\r", ""), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return nil, nil
	}
	a := &NetAdapter{Name: strings.TrimSpace(lines[0]), IP: ip}
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); l != "" {
			a.Routes = append(a.Routes, l)
		}
	}
	return a, nil
}

func (w *Windows) AddRoute(ctx context.Context, adapter, prefix string) error {
	_, err := w.ps(ctx, "$gw = (Get-NetRoute -AddressFamily IPv4 -InterfaceAlias "+psQuote(adapter)+" -DestinationPrefix '0.0.0.0/0' | Select-Object -First 1).NextHop; "+
		"New-NetRoute -DestinationPrefix "+psQuote(prefix)+" -InterfaceAlias "+psQuote(adapter)+" -NextHop $gw -PolicyStore PersistentStore | Out-Null")
	if err != nil {
		return fmt.Errorf("failed to add the route to %s through %s: %w", prefix, adapter, err)
	}
	return nil
}

func (w *Windows) FirewallRule(ctx context.Context, name string) (bool, error) {
	out, err := w.ps(ctx, "[bool](Get-NetFirewallRule -Name "+psQuote(name)+" -ErrorAction SilentlyContinue)")
	if err != nil {
		return false, fmt.Errorf("failed to read firewall rule %s: %w", name, err)
	}
	return strings.EqualFold(out, "True"), nil
}

func (w *Windows) AddFirewallRule(ctx context.Context, r FirewallRule) error {
	_, err := w.ps(ctx, "New-NetFirewallRule -Name "+psQuote(r.Name)+" -DisplayName "+psQuote(r.Name)+
		" -Group 'mixedk8s' -Direction Inbound -Action Allow -Protocol "+r.Protocol+" -LocalPort "+strconv.Itoa(r.Port)+" | Out-Null")
	if err != nil {
		return fmt.Errorf("failed to add firewall rule %s: %w", r.Name, err)
	}
	return nil
}

func (w *Windows) DefenderExclusions(ctx context.Context) ([]string, error) {
	out, err := w.ps(ctx, "if (-not (Get-Command Get-MpPreference -ErrorAction SilentlyContinue)) { 'NO-DEFENDER'; exit 0 }; (Get-MpPreference).ExclusionPath")
	if err != nil {
		return nil, fmt.Errorf("failed to read Defender exclusions: %w", err)
	}
	if out == "NO-DEFENDER" {
		return nil, ErrNotSupported
	}
	var paths []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			paths = append(paths, l)
		}
	}
	return paths, nil
}

func (w *Windows) AddDefenderExclusion(ctx context.Context, path string) error {
	if _, err := w.ps(ctx, "Add-MpPreference -ExclusionPath "+psQuote(path)); err != nil {
		return fmt.Errorf("failed to add Defender exclusion %s: %w", path, err)
	}
	return nil
}

func (w *Windows) InstallSSHHostKey(context.Context, []byte) error { return ErrNotSupported }

// winrmPFX is where the new WinRM certificate waits for its import, owner-only.
const winrmPFX = `C:\ProgramData\mixedk8s\winrm.pfx`

// httpsListener selects the WinRM HTTPS listener first boot made
// (https://learn.microsoft.com/powershell/module/microsoft.wsman.management/set-wsmaninstance).
const httpsListener = `-ResourceURI winrm/config/Listener -SelectorSet @{Address='*';Transport='HTTPS'}`

func (w *Windows) InstallWinRMCertificate(ctx context.Context, certPEM, keyPEM []byte) error {
	pfx, password, err := pfxOf(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if err := w.WriteFile(winrmPFX, pfx, Secret); err != nil {
		return err
	}
	defer func() { _ = w.Remove(winrmPFX) }() // best effort: the key is imported or the step fails
	// The PFX password comes on stdin, so no command line or script log holds it.
	script := `$c = Import-PfxCertificate -FilePath ` + psQuote(winrmPFX) + ` -CertStoreLocation Cert:\LocalMachine\My -Password (ConvertTo-SecureString -String ([Console]::In.ReadLine()) -AsPlainText -Force); ` +
		`$old = (Get-WSManInstance ` + httpsListener + `).CertificateThumbprint; ` +
		`Set-WSManInstance ` + httpsListener + ` -ValueSet @{CertificateThumbprint=$c.Thumbprint} | Out-Null; ` +
		`if ($old -and $old -ne $c.Thumbprint) { Remove-Item -LiteralPath ('Cert:\LocalMachine\My\' + $old) -DeleteKey }`
	if _, err := w.psStdin(ctx, script, password+"\n"); err != nil {
		return fmt.Errorf("failed to install the WinRM certificate: %w", err)
	}
	return nil
}

func (w *Windows) SetPassword(ctx context.Context, user, password string) error {
	script := `Set-LocalUser -Name ` + psQuote(user) + ` -Password (ConvertTo-SecureString -String ([Console]::In.ReadLine()) -AsPlainText -Force)`
	if _, err := w.psStdin(ctx, script, password+"\n"); err != nil {
		return fmt.Errorf("failed to set the password of %s: %w", user, err)
	}
	return nil
}

// psStdin runs a PowerShell script that reads its secrets from stdin.
func (w *Windows) psStdin(ctx context.Context, script, stdin string) ([]byte, error) {
	return w.Run(ctx, Command{Path: "powershell.exe", Args: []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command",
		"$ErrorActionPreference='Stop'; $ProgressPreference='SilentlyContinue'; " + script}, Stdin: []byte(stdin)})
}

func (w *Windows) KernelModuleLoaded(context.Context, string) (bool, error) {
	return false, ErrNotSupported
}
func (w *Windows) LoadKernelModule(context.Context, string) error  { return ErrNotSupported }
func (w *Windows) Sysctl(context.Context, string) (string, error)  { return "", ErrNotSupported }
func (w *Windows) SetSysctl(context.Context, string, string) error { return ErrNotSupported }
func (w *Windows) SwapActive(context.Context) (bool, error)        { return false, ErrNotSupported }
func (w *Windows) DisableSwap(context.Context) error               { return ErrNotSupported }

func (w *Windows) ResumeRegistered(ctx context.Context) (bool, error) {
	_, err := w.Run(ctx, Command{Path: "schtasks.exe", Args: []string{"/Query", "/TN", resumeTask}})
	return err == nil, nil
}

func (w *Windows) RegisterResume(ctx context.Context, argv []string) error {
	_, err := w.Run(ctx, Command{Path: "schtasks.exe", Args: []string{
		"/Create", "/F", "/TN", resumeTask, "/SC", "ONSTART", "/RU", "SYSTEM", "/RL", "HIGHEST",
		"/TR", JoinCommandLine(argv[0], argv[1:]),
	}})
	if err != nil {
		return fmt.Errorf("failed to register the agent to resume at boot: %w", err)
	}
	return nil
}

func (w *Windows) UnregisterResume(ctx context.Context) error {
	if ok, _ := w.ResumeRegistered(ctx); !ok {
		return nil
	}
	if _, err := w.Run(ctx, Command{Path: "schtasks.exe", Args: []string{"/Delete", "/F", "/TN", resumeTask}}); err != nil {
		return fmt.Errorf("failed to remove the resume-at-boot task: %w", err)
	}
	return nil
}

func (w *Windows) Reboot(ctx context.Context) error {
	_, err := w.Run(ctx, Command{Path: "shutdown.exe", Args: []string{"/r", "/t", "10", "/d", "p:4:2", "/c", "mixedk8s node agent: finish renaming and installing features"}})
	if err != nil {
		return fmt.Errorf("failed to schedule the reboot: %w", err)
	}
	return nil
}

func (w *Windows) Diagnostics(ctx context.Context) []DiagnosticFile {
	var files []DiagnosticFile
	addJSON := func(name string, v any, err error) {
		data, _ := json.MarshalIndent(v, "", "  ")
		if err != nil {
			data = []byte("error: " + err.Error())
		}
		files = append(files, DiagnosticFile{Name: name, Data: data})
	}
	nets, err := hcn.ListNetworks()
	addJSON("hns/networks.json", nets, err)
	eps, err := hcn.ListEndpoints()
	addJSON("hns/endpoints.json", eps, err)
	run := func(name, path string, args ...string) {
		out, err := w.Run(ctx, Command{Path: path, Args: args})
		if err != nil {
			out = append(out, []byte("\nerror: "+err.Error())...)
		}
		files = append(files, DiagnosticFile{Name: name, Data: out})
	}
	for _, s := range []string{"containerd", "kubelet", "kube-proxy"} {
		run("services/"+s+".txt", "sc.exe", "qc", s)
		run("services/"+s+"-state.txt", "sc.exe", "queryex", s)
	}
	run("eventlog/system.txt", "wevtutil.exe", "qe", "System", "/c:500", "/rd:true", "/f:text")
	run("eventlog/application.txt", "wevtutil.exe", "qe", "Application", "/c:500", "/rd:true", "/f:text")
	run("eventlog/hyper-v-compute.txt", "wevtutil.exe", "qe", "Microsoft-Windows-Hyper-V-Compute-Operational", "/c:300", "/rd:true", "/f:text")
	run("ipconfig.txt", "ipconfig.exe", "/all")
	run("firewall.txt", "powershell.exe", "-NoProfile", "-Command", "Get-NetFirewallRule -Group mixedk8s | Format-List Name,Enabled,Direction,Action")
	return files
}

// pfxOf bundles a certificate and its key as PKCS#12 under a fresh random
// password, the form Import-PfxCertificate takes. 3DES/SHA-1 is what every
// supported Windows Server imports; the bundle lives owner-only for the
// seconds of its import.
func pfxOf(certPEM, keyPEM []byte) (pfx []byte, password string, err error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("the WinRM certificate does not load: %w", err)
	}
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return nil, "", err
	}
	password = hex.EncodeToString(pw)
	pfx, err = pkcs12.LegacyDES.Encode(pair.PrivateKey, pair.Leaf, nil, password)
	if err != nil {
		return nil, "", fmt.Errorf("failed to bundle the WinRM certificate as PFX: %w", err)
	}
	return pfx, password, nil
}
