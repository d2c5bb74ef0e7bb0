// Package hollow runs lab nodes as hollow kubelets: the real kubelet code on
// a fake container runtime and a fake cAdvisor, one process per node. The
// program is hollow-kubelet (test/lab/k8s/cmd/hollow-kubelet, built with
// `make lab-bins`): what `kubemark --morph=kubelet` runs, bound to 127.0.0.1.
//
// A hollow kubelet joins the way a real one does: with a bootstrap
// kubeconfig (bootstrap token, cluster CA, server) it creates a
// CertificateSigningRequest as system:bootstrap:<token id>;
// kube-controller-manager approves it (the kubeadm:node-autoapprove-bootstrap
// binding) and signs it with the cluster CA; the kubelet writes its client
// certificate and kubeconfig, then registers its Node with the labels and
// taints it was given and reports it Ready.
//
// Its kubelet API listens on 127.0.0.1:PORT only (PORT a free port; URL),
// over HTTPS with a self-signed certificate for the node name and 127.0.0.1
// (ServingCertificate). Like a real kubelet's, it takes client certificates
// signed by the cluster CA and bearer tokens, and asks the API server
// whether each request is allowed. The read-only port is off. The fake
// runtime's socket and the kubelet's own sockets are Unix sockets under
// Config.WorkDir.
//
// What it reports that a real node of the lab would not:
//
//   - kubernetes.io/os=linux and kubernetes.io/arch=<the lab's GOARCH> on
//     every node, Windows ones included: the kubelet sets them from the
//     platform it runs on, and the hollow kubelet runs on Linux. A Windows
//     node is recognisable by the labels and taints the agent set (e.g.
//     node.kubernetes.io/windows-build, an os=windows taint), not by
//     kubernetes.io/os. ReportedLabels says what a node will carry.
//   - no pods run for real, no container images, no networking.
//   - the node's InternalIP is the lab machine's address, where nothing of
//     the kubelet listens (the kubelet refuses a loopback node IP), so the
//     API server cannot reach the kubelet API (kubectl logs, exec).
//
// The process runs in its own process group with Pdeathsig (package
// test/lab/controlplane/proc); Close stops it. Its files (certificates,
// kubeconfig, kubelet root, runtime socket, log) live under Config.WorkDir.
package hollow

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// ReportedOS is the kubernetes.io/os every hollow kubelet reports.
const ReportedOS = "linux"

// ErrTokenRejected is wrapped by StartKubelet's error when the API server
// answered the bootstrap token with 401 Unauthorized.
var ErrTokenRejected = errors.New("the API server rejected the bootstrap token (HTTP 401 Unauthorized)")

// Config describes one node.
type Config struct {
	// Name is the Node name (and the CSR's system:node:<name>).
	Name string
	// BootstrapKubeconfig holds the bootstrap token, the cluster CA and the
	// server: e.g. what the agent wrote to the node's bootstrap-kubelet.conf.
	// A secret.
	BootstrapKubeconfig []byte
	// Server, when set, replaces the kubeconfig's server (the node's file
	// names the API endpoint as nodes see it; the hollow kubelet dials
	// https://127.0.0.1:PORT).
	Server string
	// Labels and Taints ("key=value:Effect" or "key:Effect") the node registers with.
	Labels map[string]string
	Taints []string
	// MaxPods is the node's pod capacity; 0 means the kubelet's 110.
	MaxPods int
	// WorkDir holds the node's files; the caller owns it.
	WorkDir string
	// BinDir holds hollow-kubelet; empty: <repo>/bin.
	BinDir string
	// JoinTimeout bounds the TLS bootstrap; 0 means 60s.
	JoinTimeout time.Duration
	// CheckToken, when set, is asked once, at the first 401: nil means the
	// token is good and the API server's cache had not yet seen its Secret,
	// so the wait goes on (the kubelet retries); an error says why the
	// token is bad. Unset, the first 401 ends the wait.
	CheckToken func(context.Context) error
}

// Kubelet is a running hollow kubelet.
type Kubelet struct {
	name    string
	labels  map[string]string
	certDir string
	// kubeconfig is the kubelet.conf the kubelet writes after its TLS bootstrap.
	kubeconfig string
	port       int
	p          *proc.Process
	shortRoot  string // the temporary root folder, when WorkDir's was too long
	// bin, args, env and log are how p was started, for Restart.
	bin       string
	args, env []string
	log       string
}

// Binary is the program StartKubelet runs, from Config.BinDir.
const Binary = "hollow-kubelet"

// Files under WorkDir.
const (
	bootstrapFile  = "bootstrap-kubelet.conf"
	kubeconfigFile = "kubelet.conf"
	certDirName    = "pki"
	rootDirName    = "root"
	logFile        = "hollow-kubelet.log"
	// clientCertFile is where the kubelet's certificate store keeps the issued pair.
	clientCertFile = "kubelet-client-current.pem"
	// servingCertFile is the kubelet API's self-signed certificate.
	servingCertFile = "kubelet.crt"
)

// StartKubelet starts the node and returns once its TLS bootstrap is done:
// its client certificate has been issued. Registration and Ready follow
// within seconds; watch the Node through the API server for them. A rejected
// token ends the wait at once with ErrTokenRejected.
func StartKubelet(ctx context.Context, cfg Config) (_ *Kubelet, err error) {
	if cfg.Name == "" || cfg.WorkDir == "" || len(cfg.BootstrapKubeconfig) == 0 {
		return nil, errors.New("hollow kubelet: Name, WorkDir and BootstrapKubeconfig are required; fix: pass the node name, a work folder and the node's bootstrap kubeconfig")
	}
	if cfg.JoinTimeout == 0 {
		cfg.JoinTimeout = 60 * time.Second
	}
	if cfg.BinDir == "" {
		if cfg.BinDir, err = proc.BinDir(Binary); err != nil {
			return nil, fmt.Errorf("hollow kubelet %s: %w", cfg.Name, err)
		}
	} else if err := proc.CheckBins(cfg.BinDir, Binary); err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: %w", cfg.Name, err)
	}
	taints, err := checkTaints(cfg.Taints)
	if err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: %w", cfg.Name, err)
	}
	labels, err := labelFlag(cfg.Labels)
	if err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: %w", cfg.Name, err)
	}

	boot := cfg.BootstrapKubeconfig
	if cfg.Server != "" {
		if boot, err = controlplane.SetServer(boot, cfg.Server); err != nil {
			return nil, fmt.Errorf("hollow kubelet %s: bootstrap kubeconfig: %w; fix: pass a kubeconfig with a cluster, its CA and a token", cfg.Name, err)
		}
	}
	tmp := filepath.Join(cfg.WorkDir, "tmp")
	root := filepath.Join(cfg.WorkDir, rootDirName)
	k := &Kubelet{name: cfg.Name, certDir: filepath.Join(cfg.WorkDir, certDirName), kubeconfig: filepath.Join(cfg.WorkDir, kubeconfigFile)}
	for _, d := range []string{k.certDir, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("hollow kubelet %s: create its work folder: %w", cfg.Name, err)
		}
	}
	if root, err = k.makeRoot(root); err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: create its root folder: %w", cfg.Name, err)
	}
	bootPath := filepath.Join(cfg.WorkDir, bootstrapFile)
	if err := os.WriteFile(bootPath, boot, 0o600); err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: write its bootstrap kubeconfig: %w", cfg.Name, err)
	}
	if k.port, err = proc.FreePort(); err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: %w", cfg.Name, err)
	}
	k.labels = ReportedLabels(cfg.Name, cfg.Labels)

	args := []string{
		"--node-name=" + cfg.Name,
		"--bootstrap-kubeconfig=" + bootPath,
		"--kubeconfig=" + k.kubeconfig,
		"--cert-dir=" + k.certDir,
		"--root-dir=" + root,
		portFlag + strconv.Itoa(k.port),
	}
	if labels != "" {
		args = append(args, "--node-labels="+labels)
	}
	if len(taints) > 0 {
		args = append(args, "--register-with-taints="+strings.Join(taints, ","))
	}
	if cfg.MaxPods > 0 {
		args = append(args, "--max-pods="+strconv.Itoa(cfg.MaxPods))
	}
	// TMPDIR keeps any temporary file of the kubelet's under WorkDir too.
	k.bin, k.args, k.env, k.log = cfg.BinDir, args, []string{"TMPDIR=" + tmp}, filepath.Join(cfg.WorkDir, logFile)
	if err := k.run(); err != nil {
		_ = k.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = k.Close()
		}
	}()
	return k, k.waitJoined(ctx, cfg.JoinTimeout, cfg.CheckToken)
}

// portFlag is the kubelet API's port flag, which Restart may change.
const portFlag = "--port="

// run starts the kubelet's process as bin, args and env say.
func (k *Kubelet) run() (err error) {
	k.p, err = proc.Start("hollow kubelet "+k.name, filepath.Join(k.bin, Binary), k.args, k.log, k.env...)
	return err
}

// waitJoined waits for the issued client certificate, a 401 in the log, the
// process's exit, or the timeout.
func (k *Kubelet) waitJoined(ctx context.Context, timeout time.Duration, checkToken func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	vouched := false
	for {
		if k.joined() {
			return nil
		}
		if exited, _ := k.p.Exited(); exited {
			return fmt.Errorf("hollow kubelet %s: its TLS bootstrap failed: %w", k.name, k.p.ExitError())
		}
		// The kubelet retries a rejected token for a minute before it gives up;
		// the first 401 is already the answer, unless checkToken vouches for the token.
		if !vouched && k.rejected() {
			why := ""
			if checkToken != nil {
				err := checkToken(ctx)
				vouched = err == nil
				if err != nil {
					why = ": " + err.Error()
				}
			}
			if !vouched {
				return fmt.Errorf("hollow kubelet %s: %w%s; fix: use a token that exists as Secret kube-system/bootstrap-token-<id>, has not expired and has usage-bootstrap-authentication; the end of its log %s:\n%s", k.name, ErrTokenRejected, why, k.p.Log, k.p.Tail(5))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hollow kubelet %s: no client certificate after %s (is kube-controller-manager approving and signing CSRs?); fix: read its log %s, which ends:\n%s", k.name, timeout, k.p.Log, k.p.Tail(10))
		case <-tick.C:
		}
	}
}

// joined says whether the TLS bootstrap is over: the kubelet stores its
// certificate, then writes kubelet.conf naming it, in two steps.
func (k *Kubelet) joined() bool {
	if _, err := os.Stat(filepath.Join(k.certDir, clientCertFile)); err != nil {
		return false
	}
	data, err := os.ReadFile(k.kubeconfig)
	if err != nil {
		return false
	}
	var kc struct {
		Users []struct {
			User struct {
				Cert string `json:"client-certificate"`
			} `json:"user"`
		} `json:"users"`
	}
	return yaml.Unmarshal(data, &kc) == nil && len(kc.Users) > 0 && kc.Users[0].User.Cert != ""
}

// rejected says whether the log shows a 401, as client-go words it.
func (k *Kubelet) rejected() bool {
	return k.p.LogContains(`err="Unauthorized"`) || k.p.LogContains("the server has asked for the client to provide credentials")
}

// Name is the node name.
func (k *Kubelet) Name() string { return k.name }

// Labels are the labels the Node carries: the ones given plus what the
// kubelet sets itself, kubernetes.io/os=linux included.
func (k *Kubelet) Labels() map[string]string { return maps.Clone(k.labels) }

// Port is the kubelet API's port on 127.0.0.1.
func (k *Kubelet) Port() int { return k.port }

// URL is the kubelet API's base URL, https://127.0.0.1:PORT.
func (k *Kubelet) URL() string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port))
}

// Process is the hollow-kubelet process (log, memory, sockets).
func (k *Kubelet) Process() *proc.Process { return k.p }

// BinDir is the folder of the hollow-kubelet the process runs: its version
// is the Node's kubeletVersion.
func (k *Kubelet) BinDir() string { return k.bin }

// ClientCertificate is the certificate the cluster issued in the TLS bootstrap.
func (k *Kubelet) ClientCertificate() (*x509.Certificate, error) {
	return k.certificate(clientCertFile, "client certificate")
}

// ServingCertificate is the kubelet API's self-signed certificate, for the
// node name and 127.0.0.1: a client of URL trusts it alone.
func (k *Kubelet) ServingCertificate() (*x509.Certificate, error) {
	return k.certificate(servingCertFile, "serving certificate")
}

// certificate is the first certificate in the PEM file name of the cert folder.
func (k *Kubelet) certificate(name, what string) (*x509.Certificate, error) {
	data, err := os.ReadFile(filepath.Join(k.certDir, name))
	if err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: read its %s: %w", k.name, what, err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("hollow kubelet %s: %s holds no certificate", k.name, name)
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// Close stops the kubelet (SIGTERM: it removes its runtime socket and
// exits; SIGKILL after 2s) and waits for it. Its files stay in WorkDir,
// which the caller owns. Its Node stays registered (and turns NotReady), as
// when a machine is switched off.
func (k *Kubelet) Close() error {
	if k.p != nil {
		k.p.Stop(2 * time.Second)
	}
	if k.shortRoot != "" {
		return os.RemoveAll(k.shortRoot)
	}
	return nil
}

// maxSocketPath leaves room under the kubelet root for its deepest Unix
// socket (pod-resources/kubelet.sock) within the 107 bytes Linux allows.
const maxSocketPath = 107 - len("/pod-resources/kubelet.sock")

// makeRoot creates the kubelet's root folder at want, or, when want is too
// long for the Unix sockets the kubelet and its runtime make in it (deep
// test folders), in a short temporary folder that want links to.
func (k *Kubelet) makeRoot(want string) (string, error) {
	if len(want) <= maxSocketPath {
		return want, os.MkdirAll(want, 0o700)
	}
	short, err := os.MkdirTemp("", "hollow-")
	if err != nil {
		return "", err
	}
	k.shortRoot = short
	_ = os.Remove(want)
	if err := os.Symlink(short, want); err != nil {
		return "", err
	}
	return short, nil
}

// ReportedLabels are the labels a hollow kubelet named name registers with
// when given labels: those plus the kubelet's own kubernetes.io/hostname,
// kubernetes.io/os (always linux) and kubernetes.io/arch, and their beta twins.
func ReportedLabels(name string, labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out["kubernetes.io/hostname"] = name
	out["kubernetes.io/os"] = ReportedOS
	out["kubernetes.io/arch"] = runtime.GOARCH
	out["beta.kubernetes.io/os"] = ReportedOS
	out["beta.kubernetes.io/arch"] = runtime.GOARCH
	return out
}

// labelFlag is --node-labels: "k=v" sorted by key. kubernetes.io/os may not
// be overridden: the kubelet would replace it anyway, and a caller who tries
// expects a Windows node this cannot be.
func labelFlag(labels map[string]string) (string, error) {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if k == "kubernetes.io/os" || k == "beta.kubernetes.io/os" {
			return "", fmt.Errorf("label %s=%s: a hollow kubelet always reports %s=%s; fix: mark Windows nodes with their own labels and taints (node.kubernetes.io/windows-build, an os=windows taint)", k, labels[k], k, ReportedOS)
		}
		if strings.ContainsAny(k+labels[k], ",= ") {
			return "", fmt.Errorf("label %q=%q contains ',', '=' or a space; fix: use a valid label", k, labels[k])
		}
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ","), nil
}

// checkTaints accepts "key=value:Effect" and "key:Effect".
func checkTaints(taints []string) ([]string, error) {
	for _, t := range taints {
		kv, effect, ok := strings.Cut(t, ":")
		if !ok || kv == "" || strings.Contains(t, ",") || (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
			return nil, fmt.Errorf("taint %q: fix: write \"key=value:Effect\" or \"key:Effect\" with NoSchedule, PreferNoSchedule or NoExecute", t)
		}
	}
	return taints, nil
}
