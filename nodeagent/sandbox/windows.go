package sandbox

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// The rules below are how real Windows Server treats what the agent does;
// each cites the upstream code or documentation it follows. A rule the
// sandbox does not enforce is a defect the lab cannot catch.

// logFileFlags are the flags whose file a service opens before anything else.
var logFileFlags = []string{"--log-file", "-log-file"}

// missingLogFolder returns the log file of a service whose folder does not
// exist. kube-log-runner opens -log-file with os.OpenFile(O_APPEND|O_CREATE)
// and exits on error without creating its folder
// (kubernetes/kubernetes staging/src/k8s.io/component-base/logs/kube-log-runner/kube-log-runner.go,
// configureAndRun); containerd --run-service does the same with --log-file
// (containerd/containerd cmd/containerd/command/service_windows.go,
// registerUnregisterService).
func (s *Sandbox) missingLogFolder(spec oslayer.ServiceSpec) string {
	if s.m.Identity.GOOS != "windows" {
		return ""
	}
	args := spec.Args
	for i, a := range args {
		for _, f := range logFileFlags {
			file := ""
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				file = v
			} else if a == f && i+1 < len(args) {
				file = args[i+1]
			}
			if file == "" {
				continue
			}
			dir := file[:max(strings.LastIndex(file, `\`), 0)]
			if dir == "" {
				continue
			}
			if st, err := s.Stat(dir); err != nil || !st.IsDir() {
				return file
			}
		}
	}
	return ""
}

// serviceExited is the error a start returns for a service whose process
// exits before it reports running: the Service Control Manager answers
// ERROR_SERVICE_REQUEST_TIMEOUT (1053) or the process's own exit, and the
// service is left stopped.
func serviceExited(name, why string) error {
	return fmt.Errorf("service %s stopped right after its start: %s", name, why)
}

// dependantsRunning refuses to stop a service while a running service
// depends on it: ControlService(SERVICE_CONTROL_STOP) fails with
// ERROR_DEPENDENT_SERVICES_RUNNING (1051)
// (learn.microsoft.com/windows/win32/api/winsvc/nf-winsvc-controlservice).
// systemd stops dependants itself, so the rule is Windows-only. Callers hold s.mu.
func (s *Sandbox) dependantsRunning(name string) error {
	if s.m.Identity.GOOS != "windows" {
		return nil
	}
	var running []string
	for other, sv := range s.m.Services {
		if !sv.Running {
			continue
		}
		for _, d := range sv.Spec.DependsOn {
			if strings.EqualFold(d, name) {
				running = append(running, other)
			}
		}
	}
	if len(running) == 0 {
		return nil
	}
	sort.Strings(running)
	return fmt.Errorf("failed to stop service %s: ERROR_DEPENDENT_SERVICES_RUNNING (1051): A stop control has been sent to a service that other running services (%s) are dependent on", name, strings.Join(running, ", "))
}

// imageInUse refuses to replace an executable a running service runs: the
// loader maps the image and NTFS denies writing or replacing a mapped file
// (ERROR_ACCESS_DENIED from MoveFileEx, ERROR_SHARING_VIOLATION from
// CreateFile; installers schedule such files with MOVEFILE_DELAY_UNTIL_REBOOT,
// learn.microsoft.com/windows/win32/api/winbase/nf-winbase-movefileexa).
// A service's images are its binary and every .exe on its command line
// (kube-log-runner runs the kubelet it names). Callers hold s.mu.
func (s *Sandbox) imageInUse(path string) error {
	if s.m.Identity.GOOS != "windows" {
		return nil
	}
	for name, sv := range s.m.Services {
		if !sv.Running {
			continue
		}
		for _, img := range append([]string{sv.Spec.Path}, sv.Spec.Args...) {
			if strings.HasSuffix(strings.ToLower(img), ".exe") && strings.EqualFold(img, path) {
				return fmt.Errorf("cannot replace %s: Access is denied (ERROR_ACCESS_DENIED): service %s runs it", path, name)
			}
		}
	}
	return nil
}

// locks are the machine locks held in this process, by host path.
var locks sync.Map

// Lock takes a machine-wide lock, as an unshared open file does on Windows
// and flock does on Linux: a second holder fails at once.
func (s *Sandbox) Lock(path string) (func(), error) {
	hp, err := s.HostPath(path)
	if err != nil {
		return nil, err
	}
	if _, loaded := locks.LoadOrStore(hp, true); loaded {
		return nil, fmt.Errorf("lock %s is held by another process: The process cannot access the file because it is being used by another process", path)
	}
	return func() { locks.Delete(hp) }, nil
}

// rootACL is what C:\ of Windows Server passes down to a new folder:
// Authenticated Users may modify it (icacls C:\ on Windows Server 2022 and
// 2025 lists NT AUTHORITY\Authenticated Users:(OI)(CI)(IO)(M)), and new
// objects inherit their parent's inheritable ACEs unless their DACL is
// protected (learn.microsoft.com/windows/win32/secauthz/dacl-for-a-new-object).
const rootACL = "inherited from C:\\: SYSTEM full, Administrators full, Users read and execute, Authenticated Users modify"

// programDataACL is C:\ProgramData's own DACL, which its new children
// inherit: Users may read and execute, and create files and folders
// (icacls C:\ProgramData on Windows Server 2022 lists
// BUILTIN\Users:(OI)(CI)(RX) and BUILTIN\Users:(CI)(WD,AD,WEA,WA); the
// folder's DACL is protected, so nothing comes from C:\).
const programDataACL = "inherited from C:\\ProgramData: SYSTEM full, Administrators full, CREATOR OWNER full, Users read and execute, Users create files and folders"

// The protected DACLs, as SDDL, a file or folder can be created with
// (an upload of a secret); the model knows these and no others.
const (
	secretFolderSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	secretFileSDDL   = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
)

// CreatedWithACL records that a file or folder was created with its own
// protected DACL (sddl), or, with sddl empty, that it was created (or
// replaced by a new file) inheriting its folder's.
func (s *Sandbox) CreatedWithACL(path, sddl string) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := aclKey(path)
	if s.m.SecretFiles == nil {
		s.m.SecretFiles = map[string]bool{}
	}
	if s.m.SecretFolders == nil {
		s.m.SecretFolders = map[string]bool{}
	}
	switch sddl {
	case "":
		delete(s.m.SecretFiles, k)
	case secretFileSDDL:
		s.m.SecretFiles[k] = true
	case secretFolderSDDL:
		s.m.SecretFolders[k] = true
	default:
		return fmt.Errorf("the lab's Windows model knows no DACL %q; it knows %q (a folder) and %q (a file)", sddl, secretFolderSDDL, secretFileSDDL)
	}
	return s.save()
}

// securedACL and secretACL are the protected DACLs SecureFolder sets.
const (
	securedACL = "protected: SYSTEM full, Administrators full, Users read and execute"
	secretACL  = "protected: SYSTEM full, Administrators full"
)

func aclKey(path string) string { return strings.ToLower(strings.TrimRight(path, `\/`)) }

// FolderACL is the DACL a file or folder has: its own protected one, or the
// nearest protected ancestor's, or C:\'s.
func (s *Sandbox) FolderACL(path string) string {
	m := s.Machine()
	p := aclKey(path)
	if m.SecretFiles[p] {
		return secretACL
	}
	for {
		if m.SecretFolders[p] {
			return secretACL
		}
		if m.SecuredFolders[p] {
			return securedACL
		}
		i := strings.LastIndexAny(p, `\/`)
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	if m.Identity.GOOS == "windows" {
		if k := aclKey(path); k == `c:\programdata` || strings.HasPrefix(k, `c:\programdata\`) {
			return programDataACL
		}
		return rootACL
	}
	return "0755"
}

func (s *Sandbox) SecureFolder(path string, mode oslayer.FileMode) error {
	if err := s.MkdirAll(path); err != nil {
		return err
	}
	acl := securedACL
	if mode == oslayer.Secret {
		acl = secretACL
	}
	return s.record(KindFolderSecure, path, acl, func() error {
		k := aclKey(path)
		s.m.SecuredFolders[k] = mode != oslayer.Secret
		if mode == oslayer.Secret {
			if s.m.SecretFolders == nil {
				s.m.SecretFolders = map[string]bool{}
			}
			s.m.SecretFolders[k] = true
		} else {
			delete(s.m.SecretFolders, k)
		}
		return nil
	})
}

func (s *Sandbox) FolderSecured(path string, mode oslayer.FileMode) (bool, error) {
	if st, err := s.Stat(path); err != nil || !st.IsDir() {
		return false, nil
	}
	m := s.Machine()
	if mode == oslayer.Secret {
		return m.SecretFolders[aclKey(path)], nil
	}
	return m.SecuredFolders[aclKey(path)], nil
}

// firstBootRoutes are the routes a fresh EC2 Windows instance has on its
// adapter: the default route and EC2Launch's routes to the instance metadata
// service, time sync and KMS endpoints
// (docs.aws.amazon.com/AWSEC2/latest/WindowsGuide/ec2launch-v2-settings.html).
var firstBootRoutes = []string{"0.0.0.0/0", "169.254.169.254/32", "169.254.169.250/32", "169.254.169.251/32", "169.254.169.123/32"}

// vSwitchGap is how long the management address is gone after the first HNS
// network creates its vSwitch: the address moves from the adapter to
// "vEthernet (<adapter>)" and open connections drop (microsoft/SDN
// Kubernetes/windows/start.ps1 creates the External network first and
// sleeps for this reason; flannel-io/flannel pkg/backend/vxlan
// ensureNetwork waits for the management IP after creating one).
const vSwitchGap = 2 * time.Second

// NetAdapter finds the adapter holding ip. The emulated machine's first
// adapter, "Ethernet", takes the first address asked for: the lease its
// DHCP gave at first boot, which the sandbox cannot know in advance.
func (s *Sandbox) NetAdapter(ctx context.Context, ip string) (*oslayer.NetAdapter, error) {
	if err := s.windowsOnly(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m.Adapters) == 0 {
		s.m.Adapters = map[string]*oslayer.NetAdapter{"Ethernet": {Name: "Ethernet", IP: ip, Routes: append([]string(nil), firstBootRoutes...)}}
		if err := s.save(); err != nil {
			return nil, err
		}
	}
	if s.now().Before(s.m.VSwitchGapUntil) {
		return nil, nil
	}
	for _, a := range s.m.Adapters {
		if a.IP == ip {
			c := *a
			c.Routes = append([]string(nil), a.Routes...)
			return &c, nil
		}
	}
	return nil, nil
}

func (s *Sandbox) AddRoute(ctx context.Context, adapter, prefix string) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	return s.record(KindRouteAdd, prefix, "via "+adapter, func() error {
		a, ok := s.m.Adapters[adapter]
		if !ok {
			return fmt.Errorf("New-NetRoute: no adapter %q", adapter)
		}
		if !slices.Contains(a.Routes, prefix) {
			a.Routes = append(a.Routes, prefix)
		}
		return nil
	})
}

// attachVSwitch is what creating an HNS network does to the host's adapter:
// the first network on an adapter creates the vSwitch, which takes the
// adapter's address after a gap and keeps only the default route; later
// networks on the same adapter change nothing. Callers hold s.mu.
func (s *Sandbox) attachVSwitch(adapterName string) error {
	if len(s.m.Adapters) == 0 {
		s.m.Adapters = map[string]*oslayer.NetAdapter{"Ethernet": {Name: "Ethernet", Routes: append([]string(nil), firstBootRoutes...)}}
	}
	name := adapterName
	if name == "" {
		name = "Ethernet"
	}
	if strings.HasPrefix(name, "vEthernet (") {
		return nil
	}
	if _, ok := s.m.Adapters["vEthernet ("+name+")"]; ok {
		return nil
	}
	a, ok := s.m.Adapters[name]
	if !ok {
		return fmt.Errorf("HNS: adapter %q does not exist", name)
	}
	delete(s.m.Adapters, name)
	s.m.Adapters["vEthernet ("+name+")"] = &oslayer.NetAdapter{Name: "vEthernet (" + name + ")", IP: a.IP, Routes: []string{"0.0.0.0/0"}}
	s.m.VSwitchGapUntil = s.now().Add(vSwitchGap)
	return nil
}
