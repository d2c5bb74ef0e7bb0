package agent_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/agent"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox/mirror"
	"github.com/mixedk8s/mixedk8s/test/lab/kubeadmstub"
)

const (
	initToken = "abcdef.0123456789abcdef"
	joinToken = "uvwxyz.fedcba9876543210"
	certKey   = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
)

var (
	caOnce          sync.Once
	caCert, caKey   string
	caHash          string
	tokenSecretPart = "0123456789abcdef"
)

func testCA(t testing.TB) (string, string, string) {
	t.Helper()
	caOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		caCert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		caKey = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
		cert, _ := x509.ParseCertificate(der)
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		caHash = "sha256:" + hex.EncodeToString(sum[:])
	})
	return caCert, caKey, caHash
}

// lab is one emulated machine with a stand-in artifact mirror on 127.0.0.1.
type lab struct {
	t      testing.TB
	sb     *sandbox.Sandbox
	mirror *mirror.Mirror
	url    string
	cfg    contract.Config
	path   string
}

// agentStandIn is where the in-process agent finds itself on a Windows sandbox.
const agentStandIn = `C:\ProgramData\mixedk8s\nodeagent\nodeagent.exe`

func baseConfig(t testing.TB) contract.Config {
	cert, key, hash := testCA(t)
	_ = key
	return contract.Config{
		APIVersion: contract.APIVersion,
		Cluster: contract.Cluster{Name: "demo", KubernetesVersion: "1.36.3", APIEndpoint: "10.0.0.4:6443", CNI: "flannel",
			NodeCIDR: "10.0.0.0/24", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"},
		Join: &contract.Join{BootstrapToken: joinToken, CACertHashes: []string{hash}, CACertPEM: cert},
	}
}

func windowsConfig(t testing.TB, version, cni, isolation string) contract.Config {
	c := baseConfig(t)
	c.Cluster.CNI = cni
	c.Node = contract.Node{Name: "win-" + version + "-" + isolation[:1], Role: contract.RoleWorker, OS: "windows", WindowsVersion: version, Isolation: isolation, Pool: "win", PrivateIP: "10.0.0.21", Labels: map[string]string{"team": "a"}}
	return c
}

func linuxConfig(t *testing.T, role contract.Role, cni string) contract.Config {
	cert, key, _ := testCA(t)
	c := baseConfig(t)
	c.Cluster.CNI = cni
	c.Node = contract.Node{Name: "cp-0", Role: role, OS: "linux", Pool: "control-plane", PrivateIP: "10.0.0.4"}
	if role == contract.RoleInit {
		c.Join = nil
		c.Init = &contract.Init{CACertPEM: cert, CAKeyPEM: key, BootstrapToken: initToken, BootstrapTokenTTL: "1h", CertificateKey: certKey}
	}
	if role == contract.RoleWorker {
		c.Node.Name, c.Node.Pool = "lin-0", "lin"
	}
	return c
}

func emulation(c contract.Config) string {
	if c.Node.OS == "windows" {
		s := "windows-" + c.Node.WindowsVersion
		if c.Node.Isolation == "hyperv" {
			s += "+nested"
		}
		return s
	}
	return "linux"
}

// newLab makes a fresh machine matching the config, with the config pushed to it.
func newLab(t testing.TB, cfg contract.Config, handler func(http.Handler) http.Handler) *lab {
	t.Helper()
	m, err := manifest.Builtin(cfg.Cluster.KubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := mirror.New(m)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = mr
	if handler != nil {
		h = handler(mr)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.Artifacts.MirrorBaseURL = srv.URL
	cfg.Artifacts.TrustMirrorChecksums = true // the mirror serves stand-ins, not the pinned files
	id, err := sandbox.Emulate(emulation(cfg), "")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(t.TempDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	kubeadmstub.Install(sb)
	l := &lab{t: t, sb: sb, mirror: mr, url: srv.URL, cfg: cfg, path: "/tmp/mixedk8s/config.json"}
	if cfg.Node.OS == "windows" {
		l.path = `C:\mixedk8s\config.json`
		// The agent the watchdog service runs a copy of: the in-process agent's stand-in.
		if err := sb.WriteFile(agentStandIn, []byte("stand-in nodeagent.exe\n"), oslayer.Executable); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(cfg)
	if err := sb.WriteFile(l.path, data, oslayer.Public); err != nil {
		t.Fatal(err)
	}
	return l
}

type result struct {
	code   int
	events []contract.Event
	stdout string
	stderr string
}

// cancelAfter cancels the run once n step events (done or skipped) went by.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.buf.Write(p)
	for _, line := range bytes.Split(p, []byte("\n")) {
		var e contract.Event
		if json.Unmarshal(line, &e) == nil && (e.Phase == contract.PhaseDone || e.Phase == contract.PhaseSkipped) {
			c.n--
			if c.n == 0 {
				c.cancel()
			}
		}
	}
	return len(p), nil
}

func (l *lab) run(ctx context.Context, stdout io.Writer, args ...string) result {
	var out, errb bytes.Buffer
	w := io.Writer(&out)
	if stdout != nil {
		w = io.MultiWriter(&out, stdout)
	}
	code := agent.Main(ctx, args, agent.Env{OS: l.sb, Stdout: w, Stderr: &errb})
	res := result{code: code, stdout: out.String(), stderr: errb.String()}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var e contract.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err == nil && e.Step != "" {
			res.events = append(res.events, e)
		}
	}
	return res
}

func (l *lab) apply(ctx context.Context, stdout io.Writer) result {
	return l.run(ctx, stdout, "apply", "--config", l.path, "--output", "json")
}

// boot runs what the machine registered to run at boot, as a reboot would.
func (l *lab) boot(ctx context.Context) result {
	argv := l.sb.ResumeCommand()
	if len(argv) == 0 {
		l.t.Fatal("reboot without a resume registration")
	}
	return l.run(ctx, nil, argv[1:]...)
}

// converge applies until the node is configured, following at most one reboot.
func (l *lab) converge(ctx context.Context) []result {
	l.t.Helper()
	var out []result
	res := l.apply(ctx, nil)
	out = append(out, res)
	if res.code == contract.ExitRebooting {
		res = l.boot(ctx)
		out = append(out, res)
	}
	if res.code != contract.ExitOK {
		l.t.Fatalf("apply exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	return out
}

func (l *lab) effects() []sandbox.Effect {
	l.t.Helper()
	e, err := l.sb.Effects()
	if err != nil {
		l.t.Fatal(err)
	}
	return e
}

// nodeEffects drops the agent's own bookkeeping (state and log), which every run rewrites.
func nodeEffects(effects []sandbox.Effect) []sandbox.Effect {
	var out []sandbox.Effect
	for _, e := range effects {
		if e.Target == agentStandIn && e.Seq == 1 {
			continue // the test's own setup, before the first apply
		}
		if strings.Contains(e.Target, `mixedk8s\nodeagent\state.json`) || strings.Contains(e.Target, `mixedk8s\nodeagent\agent.log`) ||
			strings.HasSuffix(e.Target, "/nodeagent/state.json") || strings.HasSuffix(e.Target, "/nodeagent/agent.log") {
			continue
		}
		out = append(out, e)
	}
	return out
}

func assertNoDuplicates(t *testing.T, effects []sandbox.Effect) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range nodeEffects(effects) {
		k := e.Kind + " " + e.Target + " " + e.Detail
		seen[k]++
		if seen[k] == 2 {
			t.Errorf("effect done twice: %s", k)
		}
	}
}

func count(effects []sandbox.Effect, kind string) int {
	n := 0
	for _, e := range effects {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func find(effects []sandbox.Effect, kind, target string) *sandbox.Effect {
	for i, e := range effects {
		if e.Kind == kind && e.Target == target {
			return &effects[i]
		}
	}
	return nil
}

func assertAllSkipped(t *testing.T, res result) {
	t.Helper()
	if res.code != contract.ExitOK {
		t.Fatalf("second apply exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if len(res.events) == 0 {
		t.Fatal("second apply printed no events")
	}
	for _, e := range res.events {
		if e.Phase != contract.PhaseSkipped {
			t.Errorf("second apply ran step %s (%s): %v", e.Step, e.Phase, e.Changes)
		}
	}
}

func assertNoSecrets(t *testing.T, text string) {
	t.Helper()
	_, key, _ := testCA(t)
	for _, s := range []string{tokenSecretPart, "fedcba9876543210", certKey, key} {
		if strings.Contains(text, s) {
			t.Errorf("output contains a secret (%.12s...)", s)
		}
	}
}

func TestApplyConvergesAndIsIdempotent(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(t *testing.T) contract.Config
	}{
		{"windows-2022-flannel-process", func(t *testing.T) contract.Config { return windowsConfig(t, "2022", "flannel", "process") }},
		{"windows-2022-flannel-hyperv", func(t *testing.T) contract.Config { return windowsConfig(t, "2022", "flannel", "hyperv") }},
		{"windows-2019-flannel-process", func(t *testing.T) contract.Config { return windowsConfig(t, "2019", "flannel", "process") }},
		{"windows-2025-flannel-hyperv", func(t *testing.T) contract.Config { return windowsConfig(t, "2025", "flannel", "hyperv") }},
		{"windows-long-node-name", func(t *testing.T) contract.Config {
			c := windowsConfig(t, "2022", "flannel", "process")
			c.Node.Name, c.Node.ComputerName = "payments-prod-win-1", "payments-bmgb-1"
			return c
		}},
		{"linux-init-flannel", func(t *testing.T) contract.Config { return linuxConfig(t, contract.RoleInit, "flannel") }},
		{"linux-init-calico", func(t *testing.T) contract.Config { return linuxConfig(t, contract.RoleInit, "calico") }},
		{"linux-control-plane", func(t *testing.T) contract.Config {
			c := linuxConfig(t, contract.RoleControlPlane, "flannel")
			c.Join.CertificateKey = certKey
			return c
		}},
		{"linux-worker-calico", func(t *testing.T) contract.Config { return linuxConfig(t, contract.RoleWorker, "calico") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg(t)
			l := newLab(t, cfg, nil)
			ctx := context.Background()
			runs := l.converge(ctx)
			effects := l.effects()
			assertNoDuplicates(t, effects)
			m := l.sb.Machine()
			if cfg.Node.OS == "windows" {
				if len(runs) != 2 || runs[0].code != contract.ExitRebooting {
					t.Fatalf("want one reboot then done, got %d runs (first exit %d)", len(runs), runs[0].code)
				}
				if m.Reboots != 1 || count(effects, sandbox.KindReboot) != 1 {
					t.Errorf("reboots = %d, want 1", m.Reboots)
				}
				if want := cmp.Or(cfg.Node.ComputerName, cfg.Node.Name); !strings.EqualFold(m.ComputerName, want) {
					t.Errorf("computer name %q, want %q", m.ComputerName, want)
				}
				// The kubelet keeps the node name whatever the computer is called.
				if kl := m.Services["kubelet"]; kl == nil || !slices.Contains(kl.Spec.Args, "--hostname-override="+cfg.Node.Name) {
					t.Errorf("kubelet service %+v does not override the hostname with %q", kl, cfg.Node.Name)
				}
				if !m.Features["Containers"].Installed || m.Features["Containers"].PendingReboot {
					t.Errorf("Containers feature not active: %+v", m.Features)
				}
				_, hv := m.Features["Hyper-V"]
				if hv != (cfg.Node.Isolation == "hyperv") {
					t.Errorf("Hyper-V feature installed = %v for isolation %s", hv, cfg.Node.Isolation)
				}
				net := "flannel.4096"
				n, ok := m.HNSNetworks[net]
				if !ok || n.Type != "Overlay" || n.VNI != 4096 || n.UDPPort != 4789 {
					t.Errorf("HNS network %s = %+v, want Overlay VNI 4096 UDP 4789", net, n)
				}
				for _, s := range []string{"containerd", "kubelet", "flanneld", "kube-proxy"} {
					if sv := m.Services[s]; sv == nil || !sv.Running {
						t.Errorf("service %s not running", s)
					}
				}
				kl := m.Services["kubelet"].Spec.CommandLine()
				for _, want := range []string{"--windows-service", "node.kubernetes.io/windows-build=" + contract.WindowsBuilds[cfg.Node.WindowsVersion], "mixedk8s.io/pool=win", "team=a", "kube-log-runner.exe", "-log-file-size="} {
					if !strings.Contains(kl, want) {
						t.Errorf("kubelet command line lacks %q: %s", want, kl)
					}
				}
				if !strings.Contains(strings.Join(m.Services["kube-proxy"].Spec.Env, " "), "KUBE_NETWORK="+net) {
					t.Errorf("kube-proxy env lacks KUBE_NETWORK=%s", net)
				}
				kcfg, _ := l.sb.ReadFile(`C:\k\kubelet-config.yaml`)
				if !strings.Contains(string(kcfg), "os") || !strings.Contains(string(kcfg), "windows") {
					t.Errorf("kubelet config lacks the os=windows taint:\n%s", kcfg)
				}
				pcfg, _ := l.sb.ReadFile(`C:\k\kube-proxy-config.yaml`)
				// The first /24 of the pod network: the emulated control plane's podCIDR for the node.
				if n.AddressPrefix != "10.244.0.0/24" {
					t.Errorf("%s has prefix %s, want flannel's lease 10.244.0.0/24", net, n.AddressPrefix)
				}
				for _, want := range []string{"kernelspace", net, "sourceVip: 10.244.0.2"} {
					if !strings.Contains(string(pcfg), want) {
						t.Errorf("kube-proxy config lacks %q:\n%s", want, pcfg)
					}
				}
				ctrd, _ := l.sb.ReadFile(`C:\Program Files\containerd\config.toml`)
				for _, want := range []string{"version = 3", "runhcs-wcow-process", "runhcs-wcow-hypervisor", "SandboxIsolation = 1", "io.containerd.runhcs.v1", "sandbox = \"registry.k8s.io/pause:"} {
					if !strings.Contains(string(ctrd), want) {
						t.Errorf("containerd config lacks %q", want)
					}
				}
				if len(m.FirewallRules) < 3 || len(m.DefenderExclusions) == 0 {
					t.Errorf("firewall %v defender %v", m.FirewallRules, m.DefenderExclusions)
				}
				if len(m.Resume) != 0 {
					t.Errorf("resume registration left behind: %v", m.Resume)
				}
				st, err := os.Stat(filepath.Join(l.sb.Root(), "C", "k", "bootstrap-kubelet.conf"))
				if err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("bootstrap kubeconfig not owner-only: %v %v", st, err)
				}
			} else {
				if m.Reboots != 0 {
					t.Errorf("Linux node rebooted %d times", m.Reboots)
				}
				if !m.KernelModules["overlay"] || !m.KernelModules["br_netfilter"] || m.Sysctls["net.ipv4.ip_forward"] != "1" || m.Swap {
					t.Errorf("kernel prerequisites missing: %+v %+v swap=%v", m.KernelModules, m.Sysctls, m.Swap)
				}
				var cmds []string
				for _, e := range effects {
					if e.Kind == sandbox.KindCommand {
						cmds = append(cmds, e.Target)
					}
				}
				all := strings.Join(cmds, "\n")
				if cfg.Node.Role == contract.RoleInit {
					for _, want := range []string{"kubeadm init --config /etc/kubernetes/mixedk8s/kubeadm-init.yaml --upload-certs", "apply -f /etc/kubernetes/mixedk8s/addons/" + cfg.Cluster.CNI + ".yaml", "addons/windows.yaml"} {
						if !strings.Contains(all, want) {
							t.Errorf("commands lack %q:\n%s", want, all)
						}
					}
					if e := find(effects, sandbox.KindFileWrite, "/etc/kubernetes/pki/ca.key"); e == nil || !strings.HasPrefix(e.Detail, "owner-only") {
						t.Errorf("CA key not written owner-only: %+v", e)
					}
					win, _ := l.sb.ReadFile("/etc/kubernetes/mixedk8s/addons/windows.yaml")
					if !strings.Contains(string(win), "name: system:node-proxier") {
						t.Errorf("windows add-ons lack the node-proxier binding:\n%s", win)
					}
					// The provisioner applies the RuntimeClasses through the API server.
					if strings.Contains(string(win), "RuntimeClass") {
						t.Errorf("windows add-ons still make RuntimeClasses:\n%s", win)
					}
				} else if !strings.Contains(all, "kubeadm join --config") {
					t.Errorf("no kubeadm join:\n%s", all)
				}
				if _, err := l.sb.ReadFile("/etc/kubernetes/mixedk8s/kubeadm-init.yaml"); err == nil {
					t.Error("kubeadm config with the token left on disk")
				}
			}
			for _, r := range runs {
				assertNoSecrets(t, r.stdout+r.stderr)
			}
			before := len(nodeEffects(effects))
			assertAllSkipped(t, l.apply(ctx, nil))
			if after := len(nodeEffects(l.effects())); after != before {
				t.Errorf("second apply changed the machine: %d effects, then %d", before, after)
			}
		})
	}
}

func stepNames(t *testing.T, cfg contract.Config) int {
	t.Helper()
	l := newLab(t, cfg, nil)
	n := 0
	for _, r := range l.converge(context.Background()) {
		for _, e := range r.events {
			if e.Phase == contract.PhaseDone || e.Phase == contract.PhaseSkipped {
				n++
			}
		}
	}
	return n
}

// TestInterruptAtEveryStepBoundary cancels the run after step k, reruns, and
// compares with an uninterrupted run: same end state, no effect twice, one reboot.
func TestInterruptAtEveryStepBoundary(t *testing.T) {
	for _, mk := range []func(t *testing.T) contract.Config{
		func(t *testing.T) contract.Config { return windowsConfig(t, "2022", "flannel", "hyperv") },
		func(t *testing.T) contract.Config { return linuxConfig(t, contract.RoleInit, "calico") },
	} {
		cfg := mk(t)
		total := stepNames(t, cfg)
		ref := newLab(t, cfg, nil)
		ref.converge(context.Background())
		want := ref.sb.Machine()
		for k := 1; k < total; k++ {
			t.Run(cfg.Node.Name+"/after-"+itoa(k), func(t *testing.T) {
				t.Parallel()
				l := newLab(t, cfg, nil)
				ctx, cancel := context.WithCancel(context.Background())
				res := l.apply(ctx, &cancelAfter{n: k, cancel: cancel})
				cancel()
				if res.code == contract.ExitRebooting {
					ctx2, cancel2 := context.WithCancel(context.Background())
					// Count the steps of the first run toward k.
					done := 0
					for _, e := range res.events {
						if e.Phase == contract.PhaseDone || e.Phase == contract.PhaseSkipped {
							done++
						}
					}
					if k > done {
						res = l.run(ctx2, &cancelAfter{n: k - done, cancel: cancel2}, l.sb.ResumeCommand()[1:]...)
					}
					cancel2()
				}
				if res.code == contract.ExitOK {
					t.Fatalf("run was not interrupted after %d steps", k)
				}
				if res.code == contract.ExitFailed && !strings.Contains(res.stdout, "interrupted") {
					t.Fatalf("failed for another reason: %s", res.stdout)
				}
				l.converge(context.Background())
				got := l.sb.Machine()
				assertNoDuplicates(t, l.effects())
				if got.Reboots > 1 {
					t.Errorf("%d reboots", got.Reboots)
				}
				if len(got.Services) != len(want.Services) || len(got.HNSNetworks) != len(want.HNSNetworks) || len(got.Features) != len(want.Features) ||
					len(got.FirewallRules) != len(want.FirewallRules) || got.ComputerName != want.ComputerName || len(got.KernelModules) != len(want.KernelModules) {
					t.Errorf("end state differs from an uninterrupted run:\n got %+v\nwant %+v", got, want)
				}
				for name, s := range want.Services {
					if g := got.Services[name]; g == nil || g.Running != s.Running || g.Spec.CommandLine() != s.Spec.CommandLine() {
						t.Errorf("service %s differs", name)
					}
				}
				assertAllSkipped(t, l.apply(context.Background(), nil))
			})
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestBadConfigsExitUsageNamingTheField(t *testing.T) {
	cases := []struct {
		name, field string
		mutate      func(c *contract.Config)
	}{
		{"windows 2016", `node.windowsVersion: "2016" is not supported; fix: use 2019, 2022 or 2025`, func(c *contract.Config) { c.Node.WindowsVersion = "2016" }},
		{"long computer name", "node.computerName", func(c *contract.Config) { c.Node.ComputerName = "a-very-long-windows-name" }},
		{"isolation", "node.isolation", func(c *contract.Config) { c.Node.Isolation = "vm" }},
		{"cni", "cluster.cni", func(c *contract.Config) { c.Cluster.CNI = "cilium" }},
		{"calico 2025", "cluster.cni: calico does not support Windows Server 2025", func(c *contract.Config) { c.Cluster.CNI = "calico"; c.Node.WindowsVersion = "2025" }},
		{"token", "join.bootstrapToken", func(c *contract.Config) { c.Join.BootstrapToken = "nope" }},
		{"no join", "join: missing", func(c *contract.Config) { c.Join = nil }},
		{"endpoint", "cluster.apiEndpoint", func(c *contract.Config) { c.Cluster.APIEndpoint = "10.0.0.4" }},
		{"version", "cluster.kubernetesVersion", func(c *contract.Config) { c.Cluster.KubernetesVersion = "1.20.0" }},
		{"apiVersion", "apiVersion", func(c *contract.Config) { c.APIVersion = "v0" }},
		{"pod cidr", "cluster.podCIDR", func(c *contract.Config) { c.Cluster.PodCIDR = "x" }},
		{"taint", "node.taints[0]", func(c *contract.Config) { c.Node.Taints = []string{"os=windows"} }},
		{"mirror", "artifacts.mirrorBaseURL", func(c *contract.Config) { c.Artifacts.MirrorBaseURL = "ftp://x" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t, windowsConfig(t, "2022", "flannel", "process"), nil)
			cfg := l.cfg
			tc.mutate(&cfg)
			data, _ := json.Marshal(cfg)
			if err := l.sb.WriteFile(l.path, data, oslayer.Public); err != nil {
				t.Fatal(err)
			}
			res := l.apply(context.Background(), nil)
			if res.code != contract.ExitUsage {
				t.Fatalf("exit %d, want %d; stderr %s", res.code, contract.ExitUsage, res.stderr)
			}
			if !strings.Contains(res.stderr, tc.field) {
				t.Errorf("stderr does not name %q:\n%s", tc.field, res.stderr)
			}
			assertNoSecrets(t, res.stderr)
			// The two writes of the config, then its removal: nothing else.
			effects := nodeEffects(l.effects())
			if n := len(effects); n != 3 || effects[2].Kind != sandbox.KindFileRemove || effects[2].Target != l.path {
				t.Errorf("a rejected config changed the machine or stayed (%d effects: %+v)", n, effects)
			}
		})
	}
	t.Run("missing --config", func(t *testing.T) {
		var errb bytes.Buffer
		if code := agent.Main(context.Background(), []string{"apply"}, agent.Env{Stderr: &errb}); code != contract.ExitUsage || !strings.Contains(errb.String(), "--config") {
			t.Errorf("exit %d stderr %q", code, errb.String())
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		misspelt := "nm" + "ae" // a misspelt field name is what the case checks
		_, err := agent.ParseConfig([]byte(`{"apiVersion":"` + contract.APIVersion + `","node":{"` + misspelt + `":"x"}}`))
		if err == nil || !strings.Contains(err.Error(), misspelt) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestDigestMismatchStopsTheStep(t *testing.T) {
	cfg := linuxConfig(t, contract.RoleWorker, "flannel")
	l := newLab(t, cfg, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/linux/amd64/kubelet") {
				_, _ = w.Write([]byte("tampered"))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	res := l.apply(context.Background(), nil)
	if res.code != contract.ExitFailed {
		t.Fatalf("exit %d, want %d", res.code, contract.ExitFailed)
	}
	last := res.events[len(res.events)-1]
	sum := sha256.Sum256([]byte("tampered"))
	for _, want := range []string{"kubelet 1.36.3", l.url + "/release/v1.36.3/bin/linux/amd64/kubelet", hex.EncodeToString(sum[:]), l.mirror.Digest("https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet")} {
		if !strings.Contains(last.Error, want) {
			t.Errorf("error lacks %q: %s", want, last.Error)
		}
	}
	if last.Step != "kubernetes-binaries" || last.Phase != contract.PhaseFailed {
		t.Errorf("last event %s/%s", last.Step, last.Phase)
	}
	if _, err := l.sb.ReadFile("/usr/bin/kubelet"); err == nil {
		t.Error("tampered kubelet was installed")
	}
	st := l.run(context.Background(), nil, "status")
	var status contract.Status
	if err := json.Unmarshal([]byte(st.stdout), &status); err != nil || status.Phase != contract.NodeFailed || !strings.Contains(status.LastError, "SHA-256") {
		t.Errorf("status %+v %v", status, err)
	}
}

func TestDryRun(t *testing.T) {
	cases := []struct {
		name  string
		cfg   contract.Config
		wants []string
	}{
		{"windows", windowsConfig(t, "2022", "flannel", "hyperv"), []string{
			"planned  computer-name", "rename the computer", "install Windows feature Containers", "install Windows feature Hyper-V",
			"planned  reboot", "reboot to activate", "wait for flanneld to create HNS network flannel.4096 (VXLAN, VNI 4096)",
			"reserve kube-proxy's source VIP", "install service flanneld",
			"allow inbound UDP/4789", "install service kubelet", "--windows-service", "pull the sandbox image registry.k8s.io/pause",
		}},
		{"linux", linuxConfig(t, contract.RoleInit, "flannel"), []string{
			"planned  kernel-modules", "load kernel module br_netfilter", "set net.ipv4.ip_forward = 1", "turn swap off",
			"run kubeadm init --config /etc/kubernetes/mixedk8s/kubeadm-init.yaml --upload-certs", "planned  cluster-addons", "addons/windows.yaml",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, tc.cfg, nil)
			before := len(l.effects())
			res := l.run(context.Background(), nil, "apply", "--config", l.path, "--dry-run")
			if res.code != contract.ExitOK {
				t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
			}
			for _, w := range tc.wants {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("dry-run output lacks %q", w)
				}
			}
			assertNoSecrets(t, res.stdout)
			if after := len(l.effects()); after != before {
				t.Errorf("dry-run changed the machine: %d -> %d effects", before, after)
			}
		})
	}
}

func TestDiagnoseArchive(t *testing.T) {
	l := newLab(t, windowsConfig(t, "2022", "flannel", "process"), nil)
	l.converge(context.Background())
	res := l.run(context.Background(), nil, "diagnose", "--out", `C:\diag\node.tar.gz`)
	if res.code != contract.ExitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	data, err := l.sb.ReadFile(`C:\diag\node.tar.gz`)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[strings.TrimPrefix(h.Name, "nodeagent-diagnose/")] = string(b)
	}
	for _, want := range []string{"identity.json", "agent/state.json", "agent/agent.log", "hns/networks.json", "services.txt", "eventlog/system.txt", "files/C/Program Files/containerd/config.toml"} {
		if _, ok := got[want]; !ok {
			t.Errorf("archive lacks %s (has %v)", want, keys(got))
		}
	}
	if !strings.Contains(got["hns/networks.json"], "flannel.4096") || !strings.Contains(got["services.txt"], "kubelet running=true") {
		t.Errorf("archive content: %s / %s", got["hns/networks.json"], got["services.txt"])
	}
	for name, body := range got {
		if strings.Contains(body, "fedcba9876543210") {
			t.Errorf("%s holds the bootstrap token", name)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPreflightRefusesWrongMachine(t *testing.T) {
	cases := []struct {
		name, emulate, want string
		cfg                 contract.Config
	}{
		{"build mismatch", "windows-2019", "build 10.0.17763", windowsConfig(t, "2022", "flannel", "process")},
		{"no nested virtualisation", "windows-2022", "no nested virtualisation", windowsConfig(t, "2022", "flannel", "hyperv")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, tc.cfg, nil)
			id, _ := sandbox.Emulate(tc.emulate, "")
			sb, err := sandbox.New(t.TempDir(), id)
			if err != nil {
				t.Fatal(err)
			}
			kubeadmstub.Install(sb)
			data, _ := l.sb.ReadFile(l.path)
			_ = sb.WriteFile(l.path, data, oslayer.Public)
			l.sb = sb
			res := l.apply(context.Background(), nil)
			if res.code != contract.ExitFailed || !strings.Contains(res.stdout, tc.want) {
				t.Errorf("exit %d, output lacks %q:\n%s", res.code, tc.want, res.stdout)
			}
			if len(sb.Machine().Features) != 0 {
				t.Error("preflight failure still changed features")
			}
		})
	}
}

// TestACutKubeadmIsResetBeforeItRunsAgain: a kubeadm init or join cut
// part-way leaves files its preflight refuses (and a key without its
// certificate); the next apply runs kubeadm reset first, then kubeadm, and
// the apply after that runs neither. A kubeadm init that got as far as
// admin.conf is not taken for a finished one.
func TestACutKubeadmIsResetBeforeItRunsAgain(t *testing.T) {
	for _, tc := range []struct {
		role  contract.Role
		verb  string
		left  []string
		reset bool
	}{
		{contract.RoleInit, "init", []string{"/etc/kubernetes/admin.conf", "/etc/kubernetes/pki/apiserver.key", "/etc/kubernetes/manifests/etcd.yaml"}, true},
		// The agent's own CA, written before kubeadm init ran, is no leftover.
		{contract.RoleInit, "init", []string{"/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.key"}, false},
		{contract.RoleWorker, "join", []string{"/etc/kubernetes/pki/ca.crt"}, true},
		{contract.RoleWorker, "join", []string{"/etc/kubernetes/bootstrap-kubelet.conf", "/var/lib/kubelet/config.yaml"}, true},
	} {
		t.Run(tc.verb+tc.left[0], func(t *testing.T) {
			l := newLab(t, linuxConfig(t, tc.role, "flannel"), nil)
			for _, p := range tc.left {
				if err := l.sb.WriteFile(p, []byte("left by a cut kubeadm "+tc.verb+"\n"), oslayer.Secret); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			l.converge(ctx)
			var cmds []string
			for _, e := range l.effects() {
				if e.Kind == sandbox.KindCommand && strings.Contains(e.Target, "kubeadm") {
					cmds = append(cmds, e.Target)
				}
			}
			want := []string{"kubeadm " + tc.verb + " --config"}
			if tc.reset {
				want = append([]string{"kubeadm reset --force"}, want...)
			}
			if len(cmds) != len(want) || !strings.Contains(cmds[0], want[0]) || !strings.Contains(cmds[len(cmds)-1], want[len(want)-1]) {
				t.Fatalf("kubeadm commands %q, want %q", cmds, want)
			}
			if _, err := l.sb.ReadFile("/etc/kubernetes/pki/apiserver.key"); err == nil {
				t.Error("the half key pair outlived the reset")
			}
			if _, err := l.sb.ReadFile("/etc/kubernetes/mixedk8s/kubeadm-" + tc.verb + ".yaml"); err == nil {
				t.Error("kubeadm config with the token left on disk")
			}
			assertAllSkipped(t, l.apply(ctx, nil))
		})
	}
}

// TestWindowsKubeletThatNeverJoinsFailsItsStep: a kubelet whose TLS
// bootstrap never finishes (here it lost its bootstrap kubeconfig, and its
// log shows the API server's 401s) fails the kubelet-bootstrap step with
// the reason and the fix, and kube-proxy, which needs the kubelet's
// kubeconfig, is not started.
func TestWindowsKubeletThatNeverJoinsFailsItsStep(t *testing.T) {
	l := newLab(t, windowsConfig(t, "2022", "flannel", "process"), nil)
	l.sb.SetHooks(sandbox.Hooks{OnServiceStart: func(ctx context.Context, s oslayer.ServiceSpec) error {
		if s.Name != "kubelet" {
			return nil
		}
		if err := l.sb.Remove(`C:\k\bootstrap-kubelet.conf`); err != nil {
			return err
		}
		return l.sb.WriteFile(`C:\var\log\kubelet\kubelet.log`, []byte(`E1122 bootstrap.go:266] "Unhandled Error" err="Unauthorized"`+"\n"), oslayer.Public)
	}})
	// A clock that runs three minutes per reading: the wait's deadline passes in seconds.
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(3 * time.Minute)
		return now
	}
	var res result
	for _, args := range [][]string{{"apply", "--config", l.path, "--output", "json"}, nil} {
		if args == nil {
			args = l.sb.ResumeCommand()[1:]
		}
		var out, errb bytes.Buffer
		code := agent.Main(context.Background(), args, agent.Env{OS: l.sb, Stdout: &out, Stderr: &errb, Now: clock})
		res = result{code: code, stdout: out.String(), stderr: errb.String()}
		if code != contract.ExitRebooting {
			break
		}
	}
	if res.code != contract.ExitFailed {
		t.Fatalf("exit %d, want %d (failed)\n%s%s", res.code, contract.ExitFailed, res.stdout, res.stderr)
	}
	for _, want := range []string{`"step":"kubelet-bootstrap"`, "rejects the kubelet's bootstrap token", "fix: apply again"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
	if s := l.sb.Machine().Services["kube-proxy"]; s != nil && s.Running {
		t.Error("kube-proxy started without the kubelet's kubeconfig")
	}
}
