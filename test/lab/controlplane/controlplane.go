// Package controlplane runs a real Kubernetes control plane for one lab
// cluster on 127.0.0.1: per control-plane node one member, stacked as
// kubeadm stacks them (an etcd member, a kube-apiserver on that local etcd,
// a kube-controller-manager), built from the sources pinned in
// test/lab/k8s (hack/k8s-bins.sh), each on its node's PKI.
//
// Start takes what the node agent left in the first control-plane node's
// sandbox when it ran `kubeadm init --config FILE`: the provisioner's
// cluster CA in /etc/kubernetes/pki/ca.{crt,key} and the kubeadm
// configuration FILE. It then runs the real kubeadm on a copy of that
// configuration whose certificatesDir is the sandbox's /etc/kubernetes/pki
// and whose controlPlaneEndpoint is the cluster's endpoint on 127.0.0.1
// (see front):
//
//   - `kubeadm init phase certs all` writes the rest of the PKI into the
//     sandbox, as on a real node: API server serving certificate (the
//     node's names and addresses, certSANs, the original controlPlaneEndpoint
//     host and 127.0.0.1), apiserver-kubelet-client, front-proxy CA and
//     client, service-account key pair, etcd CA, server, peer and clients.
//     Certificates already there are reused.
//   - `kubeadm init phase kubeconfig all` writes admin.conf (group
//     kubeadm:cluster-admins), super-admin.conf (system:masters),
//     controller-manager.conf, scheduler.conf and kubelet.conf into the
//     work folder. kubeadm points the last three at the node's own address
//     (localAPIEndpoint, which it refuses to set to a loopback address);
//     Start then points them at the member's API server on 127.0.0.1, and
//     admin.conf and super-admin.conf at the cluster's endpoint.
//   - `kubeadm init phase etcd local` and `control-plane apiserver` /
//     `controller-manager` with --dry-run render the static Pod manifests
//     into the work folder; their command lines are what the processes run,
//     with the lab's addresses, ports and paths substituted (see
//     etcdArgs, apiserverArgs, controllerManagerArgs).
//   - once the API server is ready, `kubeadm init phase bootstrap-token`
//     creates the bootstrap tokens of the InitConfiguration as Secrets, the
//     TLS-bootstrap RBAC (kubeadm:kubelet-bootstrap,
//     kubeadm:node-autoapprove-bootstrap,
//     kubeadm:node-autoapprove-certificate-rotation, kubeadm:get-nodes) and
//     the cluster-info ConfigMap in kube-public; with a certificate key,
//     `kubeadm init phase upload-certs --upload-certs` stores the shared
//     certificates, encrypted, in the kubeadm-certs Secret, owned by a
//     two-hour token. The one object kubeadm init makes outside those
//     phases, the kubeadm:cluster-admins ClusterRoleBinding that admin.conf
//     relies on, is created here with one POST as super-admin, as kubeadm's
//     EnsureAdminClusterRoleBinding does.
//
// Join adds a member as `kubeadm join --control-plane` does (see Join):
// the certificate download with the join's token and key, the node's own
// certificates from the same kubeadm phases, an etcd learner announced,
// started with the whole cluster and promoted, then the node's API server
// and controller manager. StopMember stops a member as a vanished machine
// stops (its etcd membership stays); RemoveMember and RemoveMemberID remove
// an etcd member as etcdctl does.
//
// Upgrade upgrades a member in place, as `kubeadm upgrade apply` and
// `kubeadm upgrade node` do on its node: the new version's kubeadm renders
// its kube-apiserver and kube-controller-manager again, and each process is
// replaced by the new version's binary in turn (see Upgrade). Each member
// runs the binaries of its own folder (Member.BinDir), so members of two
// versions run side by side, as during a rolling upgrade; all run one etcd.
//
// kube-controller-manager runs kubeadm's controller set
// (*,bootstrapsigner,tokencleaner) and signs kubelet CSRs with the cluster
// CA, so kubelets join through the real TLS bootstrap.
//
// Everything listens on 127.0.0.1 only. Each API server still advertises
// its node's private address (the kubernetes Service's endpoints), as on a
// real node: no lab process dials it. etcd is reached through its v3 JSON
// gateway (etcd.go). kube-controller-manager serves no HTTPS
// (--secure-port=0); its readiness is its leader lease.
//
// Requests to the API server in this package are plain net/http with the
// super-admin client certificate: kubeadm makes every object but one, and
// the rest is readiness polling, so neither client-go in the root module nor
// a kubectl build is worth it here.
//
// Processes run in their own process groups with Pdeathsig (package proc):
// Close stops them; a killed test leaves none behind. Logs go to
// WORK/logs/<process>.log, an upgraded process's to <process>-<version>.log.
package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// Binaries are what Start runs, from Config.BinDir.
var Binaries = []string{"kubeadm", "etcd", "kube-apiserver", "kube-controller-manager"}

// VersionBinaries are what a folder of one Kubernetes version must hold for
// Start, Join and Upgrade: Binaries but etcd, which may come from <repo>/bin.
var VersionBinaries = []string{"kubeadm", "kube-apiserver", "kube-controller-manager"}

// Config says which cluster to run.
type Config struct {
	// SandboxRoot is the sandbox folder of the first control-plane node. Its
	// CA (certificatesDir/ca.crt and ca.key, mapped into the sandbox) must be
	// there; the rest of the PKI is written next to it.
	SandboxRoot string
	// KubeadmConfig is the content of the file the agent passed to
	// `kubeadm init --config` (InitConfiguration, ClusterConfiguration, ...).
	// The agent removes that file after kubeadm returns, so read it while the
	// command runs.
	KubeadmConfig []byte
	// WorkDir holds the processes' data, logs, kubeconfigs and manifests. The
	// caller owns it (e.g. t.TempDir()); Close leaves it in place.
	WorkDir string
	// BinDir holds the binaries; empty: <repo>/bin (proc.BinDir). Without
	// etcd (a folder of another version, bin/k8s-<version>), etcd comes
	// from <repo>/bin.
	BinDir string
	// StartTimeout bounds each process's wait for readiness; 0 means 90s.
	StartTimeout time.Duration
	// CertificateKey, when set, uploads the control-plane certificates
	// encrypted with it, as `kubeadm init --upload-certs` does; without it
	// no node can join the control plane. A secret.
	CertificateKey string
}

// ControlPlane is a cluster's running control plane: one member (etcd,
// kube-apiserver, kube-controller-manager) per control-plane node, stacked
// as kubeadm stacks them, behind one endpoint on 127.0.0.1 (see front).
type ControlPlane struct {
	// etcdBin holds the etcd every member runs, whatever its version:
	// kubeadm upgrade would also move etcd to the image of the new version;
	// the lab keeps one etcd release.
	etcdBin    string
	caPEM      []byte
	admin      []byte
	superAdmin *client
	adminCl    *client
	work       string
	front      *front
	timeout    time.Duration

	mu sync.Mutex
	// docs is the init node's configuration, as the agent wrote it, with
	// the kubernetesVersion of the last `kubeadm upgrade apply` (Upgrade
	// with Cluster): what kubeadm keeps in the kubeadm-config ConfigMap.
	docs kubeadmDocs
	// bin and version are the cluster's: Config.BinDir and the configured
	// kubernetesVersion, then those of the last Upgrade with Cluster.
	bin, version string
	// versions caches what each binary folder's kube-apiserver reports.
	versions map[string]string
	members  []*Member
	// peers keeps each node's etcd peer port by its address: a real node's
	// peer URL is its IP:2380, so a retried join finds the member it announced.
	peers map[string]int
}

// Version is the cluster's Kubernetes version, e.g. "v1.36.3": the
// kubernetesVersion Start ran with, then that of the last Upgrade with
// Cluster set, as kubeadm keeps it in the kubeadm-config ConfigMap.
func (c *ControlPlane) Version() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// BinDir is the folder of the cluster's version: Config.BinDir, then that
// of the last Upgrade with Cluster set. Join runs a node's binaries from
// it unless told otherwise.
func (c *ControlPlane) BinDir() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bin
}

// clusterDocs is a copy of the cluster's kubeadm configuration.
func (c *ControlPlane) clusterDocs() kubeadmDocs {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneDocs(c.docs)
}

// Endpoint is the cluster's endpoint on 127.0.0.1: any running member's API server.
func (c *ControlPlane) Endpoint() string { return c.front.addr() }

// URL is the cluster endpoint's https URL.
func (c *ControlPlane) URL() string { return "https://" + c.Endpoint() }

// CACertPEM is the cluster CA certificate the API server's certificate chains to.
func (c *ControlPlane) CACertPEM() []byte { return slices.Clone(c.caPEM) }

// AdminKubeconfig is kubeadm's admin.conf: group kubeadm:cluster-admins
// (through RBAC), server https://127.0.0.1:PORT (Endpoint). It is a secret.
func (c *ControlPlane) AdminKubeconfig() []byte { return slices.Clone(c.admin) }

// AdminKubeconfigPath is the file AdminKubeconfig was read from.
func (c *ControlPlane) AdminKubeconfigPath() string {
	return filepath.Join(c.work, "kubeconfig", "admin.conf")
}

// KubeletKubeconfig is the kubelet.conf kubeadm wrote for the init node
// (user system:node:<name>, server its own API server). A secret.
func (c *ControlPlane) KubeletKubeconfig() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(c.work, "kubeconfig", "kubelet.conf"))
	if err != nil {
		return nil, fmt.Errorf("control plane: kubeadm wrote no kubelet.conf: %w", err)
	}
	return b, nil
}

// MarkControlPlane labels the node's Node as kubeadm's mark-control-plane
// phase does (init and join --control-plane alike):
// node-role.kubernetes.io/control-plane and
// node.kubernetes.io/exclude-from-external-load-balancers, once the Node
// has registered, within ctx. The taints of the node's nodeRegistration
// come from its kubelet, which registers with them. (That kubeadm phase
// cannot run here: it reads /etc/kubernetes/admin.conf, with no flag to
// point it elsewhere.)
func (c *ControlPlane) MarkControlPlane(ctx context.Context, node string) error {
	patch := []byte(`{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":"","node.kubernetes.io/exclude-from-external-load-balancers":""}}}`)
	for {
		code, body, err := c.superAdmin.doContent(ctx, http.MethodPatch, "/api/v1/nodes/"+node, patch, "application/merge-patch+json")
		switch {
		case err == nil && code == http.StatusOK:
			return nil
		case err == nil && code != http.StatusNotFound:
			return fmt.Errorf("control plane: label Node %s as control plane: HTTP %d: %s", node, code, bytes.TrimSpace(body))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("control plane: Node %s never registered to be labelled control plane: %w", node, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Processes are every running member's etcd, kube-apiserver and kube-controller-manager.
func (c *ControlPlane) Processes() []*proc.Process {
	var out []*proc.Process
	for _, m := range c.Members() {
		out = append(out, m.Processes()...)
	}
	return out
}

// Members are the running members, the init node's first.
func (c *ControlPlane) Members() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

// Member is the running member of the named node, or nil.
func (c *ControlPlane) Member(node string) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m.Name == node {
			return m
		}
	}
	return nil
}

// Do sends one request to the API server as the admin user (RBAC applies)
// and returns the status and body. path is e.g. "/api/v1/nodes".
func (c *ControlPlane) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return c.adminCl.do(ctx, method, path, body)
}

// Close stops every member's processes (SIGTERM, then SIGKILL after 5s)
// and waits for them. It removes no file.
func (c *ControlPlane) Close() error {
	c.mu.Lock()
	ms := c.members
	c.members = nil
	c.mu.Unlock()
	for _, m := range slices.Backward(ms) {
		m.stop()
	}
	if c.front != nil {
		c.front.close()
	}
	for _, cl := range []*client{c.superAdmin, c.adminCl} {
		if cl != nil {
			cl.hc.CloseIdleConnections()
		}
	}
	return nil
}

// kubeadm's certificate directory on the node, unless the configuration sets another.
const defaultCertificatesDir = "/etc/kubernetes/pki"

// errPortTaken marks a start that lost one of its ports to another
// process between choosing and binding it.
var errPortTaken = errors.New("a port was taken before the process could listen on it")

// Start runs the control plane's first member and returns when its API
// server is ready, the bootstrap objects exist (and the uploaded
// certificates, with Config.CertificateKey) and kube-controller-manager
// holds its lease. A start that loses a port to another process is made
// again on new ports.
func Start(ctx context.Context, cfg Config) (*ControlPlane, error) {
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, cfg)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 3 {
			return c, err
		}
	}
}

func start(ctx context.Context, cfg Config) (_ *ControlPlane, err error) {
	if cfg.SandboxRoot == "" || cfg.WorkDir == "" || len(cfg.KubeadmConfig) == 0 {
		return nil, errors.New("control plane: SandboxRoot, WorkDir and KubeadmConfig are required; fix: pass the init node's sandbox folder, a work folder and the kubeadm init configuration")
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 90 * time.Second
	}
	if cfg.BinDir == "" {
		if cfg.BinDir, err = proc.BinDir(VersionBinaries...); err != nil {
			return nil, fmt.Errorf("control plane: %w", err)
		}
	} else if err := proc.CheckBins(cfg.BinDir, VersionBinaries...); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	etcdBin := cfg.BinDir
	if proc.CheckBins(etcdBin, "etcd") != nil {
		// A folder of another version may lack etcd (test/lab/k8s/prev builds none).
		if etcdBin, err = proc.BinDir("etcd"); err != nil {
			return nil, fmt.Errorf("control plane: %w", err)
		}
	}
	c := &ControlPlane{work: cfg.WorkDir, bin: cfg.BinDir, etcdBin: etcdBin, timeout: cfg.StartTimeout, peers: map[string]int{}, versions: map[string]string{}}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()

	if c.docs, err = parseKubeadmConfig(cfg.KubeadmConfig); err != nil {
		return nil, err
	}
	binVersion, err := c.binVersion(ctx, cfg.BinDir)
	if err != nil {
		return nil, err
	}
	c.version = binVersion
	if v, _ := c.docs.kind("ClusterConfiguration")["kubernetesVersion"].(string); v != "" {
		c.version = normalVersion(v)
	}
	certDir := filepath.Join(cfg.SandboxRoot, filepath.FromSlash(path.Clean(c.docs.certificatesDir())))
	if c.caPEM, err = os.ReadFile(filepath.Join(certDir, "ca.crt")); err != nil {
		return nil, fmt.Errorf("control plane: read the cluster CA: %w; fix: the agent writes ca.crt and ca.key into the sandbox's %s before it runs kubeadm init", err, c.docs.certificatesDir())
	}
	if _, err := os.Stat(filepath.Join(certDir, "ca.key")); err != nil {
		return nil, fmt.Errorf("control plane: the cluster CA key: %w; fix: the agent writes ca.key next to ca.crt before it runs kubeadm init", err)
	}
	if c.front, err = newFront(c.apiServers); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}

	m, err := c.newMember(c.docs.nodeName(), c.docs.advertiseAddress(), certDir, cfg.WorkDir, cfg.BinDir, binVersion)
	if err != nil {
		return nil, err
	}
	// Start runs only where no control plane runs, so whatever an earlier,
	// cut start left is stale: a key without its certificate stops kubeadm,
	// the kubeconfigs name that run's port, etcd's data its members. Only the
	// agent's CA is kept.
	if err := clearLeftovers(certDir, []string{"ca.crt", "ca.key"}, m.dirs["kubeconfig"], m.dirs["manifests"], m.dirs["etcd"]); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	cmds, err := m.prepare(ctx, c.docs)
	if err != nil {
		return nil, err
	}
	if c.admin, err = os.ReadFile(filepath.Join(m.dirs["kubeconfig"], "admin.conf")); err != nil {
		return nil, fmt.Errorf("control plane: kubeadm wrote no admin.conf: %w", err)
	}
	if c.adminCl, err = newClient(c.admin); err != nil {
		return nil, err
	}
	superAdminConf := filepath.Join(m.dirs["kubeconfig"], "super-admin.conf")
	sa, err := os.ReadFile(superAdminConf)
	if err != nil {
		return nil, fmt.Errorf("control plane: kubeadm wrote no super-admin.conf: %w", err)
	}
	if c.superAdmin, err = newClient(sa); err != nil {
		return nil, err
	}

	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	if err := m.startEtcd(ctx, cmds["etcd"], nil); err != nil {
		return nil, err
	}
	if err := m.startAPIServer(ctx, cmds["kube-apiserver"]); err != nil {
		return nil, err
	}
	if err := m.kubeadm(ctx, "init", "phase", "bootstrap-token", "--config", m.config(), "--kubeconfig", superAdminConf); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	if cfg.CertificateKey != "" {
		// kubeadm init --upload-certs: the kubeadm-certs Secret, owned by a
		// two-hour token (kubernetes/cmd/kubeadm/app/phases/copycerts).
		if err := m.uploadCerts(ctx, cfg.CertificateKey, superAdminConf); err != nil {
			return nil, fmt.Errorf("control plane: %w", err)
		}
	}
	if err := c.superAdmin.expect(ctx, http.MethodPost, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", clusterAdminsBinding, http.StatusCreated, http.StatusConflict); err != nil {
		return nil, fmt.Errorf("control plane: create ClusterRoleBinding kubeadm:cluster-admins: %w", err)
	}
	kcm, err := m.startControllerManager(cmds["kube-controller-manager"])
	if err != nil {
		return nil, err
	}
	lease := "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"
	if err := waitFor(ctx, kcm, cfg.StartTimeout, "its leader lease kube-system/kube-controller-manager", func(ctx context.Context) error {
		return c.superAdmin.expect(ctx, http.MethodGet, lease, nil, http.StatusOK)
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// binVersion is the version dir's kube-apiserver reports (`--version`
// prints "Kubernetes v1.36.3"), asked once per folder.
func (c *ControlPlane) binVersion(ctx context.Context, dir string) (string, error) {
	c.mu.Lock()
	v, ok := c.versions[dir]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bin := filepath.Join(dir, "kube-apiserver")
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	v, ok = strings.CutPrefix(strings.TrimSpace(string(out)), "Kubernetes ")
	if err != nil || !ok || !strings.HasPrefix(v, "v") {
		return "", fmt.Errorf("control plane: read the version of %s: `--version` printed %q (%v); fix: rebuild it with hack/k8s-bins.sh", bin, out, err)
	}
	c.mu.Lock()
	c.versions[dir] = v
	c.mu.Unlock()
	return v, nil
}

// normalVersion is v with the leading "v" kubeadm writes ("1.36.3" -> "v1.36.3").
func normalVersion(v string) string {
	if v == "" || strings.HasPrefix(v, "v") {
		return v
	}
	return "v" + v
}

// apiServers are the running members' API servers, for the front.
func (c *ControlPlane) apiServers() []string {
	var out []string
	for _, m := range c.Members() {
		out = append(out, m.Endpoint())
	}
	return out
}

// clearLeftovers removes everything in certDir but the files to keep, and
// the given folders.
func clearLeftovers(certDir string, keep []string, dirs ...string) error {
	entries, err := os.ReadDir(certDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear %s: %w", certDir, err)
	}
	for _, e := range entries {
		if n := e.Name(); !slices.Contains(keep, n) {
			dirs = append(dirs, filepath.Join(certDir, n))
		}
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("clear %s: %w", d, err)
		}
	}
	return nil
}

// clusterAdminsBinding is what kubeadm's EnsureAdminClusterRoleBinding creates.
var clusterAdminsBinding = []byte(`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
"metadata":{"name":"kubeadm:cluster-admins"},
"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"kubeadm:cluster-admins"}]}`)

// waitFor polls ready until it succeeds, p exits, or timeout passes; errors
// name the process, what was awaited and the end of its log.
func waitFor(ctx context.Context, p *proc.Process, timeout time.Duration, what string, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if exited, _ := p.Exited(); exited {
			if p.PortTaken() {
				return fmt.Errorf("control plane: %w: %w", errPortTaken, p.ExitError())
			}
			return fmt.Errorf("control plane: %w", p.ExitError())
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		last = ready(rctx)
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("control plane: %s is not ready after %s (waited for %s: %v); fix: read its log %s, which ends:\n%s", p.Name, timeout, what, last, p.Log, p.Tail(20))
		case <-p.Done():
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// kubeadmDocs is the kubeadm configuration, one map per YAML document.
type kubeadmDocs []map[string]any

func parseKubeadmConfig(data []byte) (kubeadmDocs, error) {
	var docs kubeadmDocs
	for i, part := range splitYAML(data) {
		var m map[string]any
		if err := yaml.Unmarshal(part, &m); err != nil {
			return nil, fmt.Errorf("control plane: kubeadm configuration document %d does not parse: %w; fix: pass the file the agent gave `kubeadm init --config`", i+1, err)
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
	if docs.kind("InitConfiguration") == nil || docs.kind("ClusterConfiguration") == nil {
		return nil, errors.New("control plane: the kubeadm configuration lacks an InitConfiguration or a ClusterConfiguration; fix: pass the file the agent gave `kubeadm init --config` (nodeagent/kubeadm.InitConfig)")
	}
	return docs, nil
}

// splitYAML splits a multi-document YAML stream at "---" lines.
func splitYAML(data []byte) [][]byte {
	var out [][]byte
	var cur bytes.Buffer
	for line := range bytes.Lines(data) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) {
			out = append(out, slices.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(out, cur.Bytes())
}

func (d kubeadmDocs) kind(k string) map[string]any {
	for _, m := range d {
		if m["kind"] == k {
			return m
		}
	}
	return nil
}

// nodeName is the init node's name (nodeRegistration.name).
func (d kubeadmDocs) nodeName() string {
	nr, _ := d.kind("InitConfiguration")["nodeRegistration"].(map[string]any)
	if s, _ := nr["name"].(string); s != "" {
		return s
	}
	return "default"
}

// advertiseAddress is the init node's address (localAPIEndpoint).
func (d kubeadmDocs) advertiseAddress() string {
	le, _ := d.kind("InitConfiguration")["localAPIEndpoint"].(map[string]any)
	s, _ := le["advertiseAddress"].(string)
	return s
}

func (d kubeadmDocs) certificatesDir() string {
	if s, _ := d.kind("ClusterConfiguration")["certificatesDir"].(string); s != "" {
		return s
	}
	return defaultCertificatesDir
}

// rewrite returns the configuration with certificatesDir in the sandbox
// and controlPlaneEndpoint the cluster's endpoint on 127.0.0.1. The original controlPlaneEndpoint
// host and 127.0.0.1 join certSANs, so the serving certificate holds every
// name a real node's would plus the address the lab dials. The node's
// localAPIEndpoint stays: kubeadm refuses a loopback advertise address.
func (d kubeadmDocs) rewrite(certDir, endpoint string) ([]byte, error) {
	d = cloneDocs(d)
	cc := d.kind("ClusterConfiguration")
	cc["certificatesDir"] = certDir
	sans := []string{"127.0.0.1"}
	if ep, _ := cc["controlPlaneEndpoint"].(string); ep != "" {
		host, _, err := net.SplitHostPort(ep)
		if err != nil {
			host = ep
		}
		sans = append(sans, host)
	}
	api, _ := cc["apiServer"].(map[string]any)
	if api == nil {
		api = map[string]any{}
		cc["apiServer"] = api
	}
	list, _ := api["certSANs"].([]any)
	for _, s := range sans {
		if !slices.Contains(list, any(s)) {
			list = append(list, s)
		}
	}
	api["certSANs"] = list
	cc["controlPlaneEndpoint"] = endpoint
	return d.marshal()
}

// marshal writes the documents as one YAML stream.
func (d kubeadmDocs) marshal() ([]byte, error) {
	var b bytes.Buffer
	for i, m := range d {
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("control plane: write the kubeadm configuration: %w", err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// pointKubeconfigs sets the server of every kubeconfig in dir: admin.conf
// and super-admin.conf name the cluster's endpoint (kubeadm writes
// controlPlaneEndpoint there), the components' and the kubelet's the
// member's own API server (localAPIEndpoint).
func pointKubeconfigs(dir, cluster, own string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("control plane: %w", err)
		}
		server := own
		if b := filepath.Base(f); b == "admin.conf" || b == "super-admin.conf" {
			server = cluster
		}
		out, err := SetServer(data, server)
		if err != nil {
			return fmt.Errorf("control plane: kubeconfig %s: %w", f, err)
		}
		if err := os.WriteFile(f, out, 0o600); err != nil {
			return fmt.Errorf("control plane: %w", err)
		}
	}
	return nil
}

// SetServer returns kubeconfig with every cluster's server set to server.
func SetServer(kubeconfig []byte, server string) ([]byte, error) {
	var kc map[string]any
	if err := yaml.Unmarshal(kubeconfig, &kc); err != nil {
		return nil, fmt.Errorf("the kubeconfig does not parse: %w", err)
	}
	clusters, _ := kc["clusters"].([]any)
	if len(clusters) == 0 {
		return nil, errors.New("the kubeconfig has no cluster")
	}
	for _, c := range clusters {
		m, _ := c.(map[string]any)
		cl, _ := m["cluster"].(map[string]any)
		if cl == nil {
			return nil, errors.New("the kubeconfig has a cluster entry without cluster")
		}
		cl["server"] = server
	}
	return yaml.Marshal(kc)
}

// cloneDocs deep-copies the documents through JSON.
func cloneDocs(d kubeadmDocs) kubeadmDocs {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // maps that came from YAML always marshal
	}
	var out kubeadmDocs
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// manifestCommand reads the command line of a static Pod manifest kubeadm rendered.
func manifestCommand(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("control plane: kubeadm's dry run wrote no manifest: %w; fix: read WORK/logs/kubeadm.log", err)
	}
	var pod struct {
		Spec struct {
			Containers []struct {
				Command []string `json:"command"`
			} `json:"containers"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &pod); err != nil || len(pod.Spec.Containers) == 0 || len(pod.Spec.Containers[0].Command) == 0 {
		return nil, fmt.Errorf("control plane: manifest %s has no container command (%v); fix: report this with the file", file, err)
	}
	return pod.Spec.Containers[0].Command, nil
}

// withFlags returns cmd's flags (cmd[0] is the program) with set applied:
// a flag in set replaces the manifest's value, "" removes it, a new one is
// appended. Output is sorted, as kubeadm writes it.
func withFlags(cmd []string, set map[string]string) []string {
	flags := map[string]string{}
	for _, a := range cmd[1:] {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		flags[k] = v
	}
	for k, v := range set {
		if v == "" {
			delete(flags, k)
			continue
		}
		flags[k] = v
	}
	out := make([]string, 0, len(flags))
	for k, v := range flags {
		out = append(out, "--"+k+"="+v)
	}
	sort.Strings(out)
	return out
}

// etcdArgs are the command line of kubeadm's etcd manifest with the lab's
// addresses. A joining member (initial holds the members etcd listed when
// it was announced) starts with the whole cluster and
// --initial-cluster-state=existing, as kubeadm's getEtcdCommand writes it
// for a join (kubernetes/cmd/kubeadm/app/phases/etcd/local.go).
func etcdArgs(cmd []string, ports map[string]int, dataDir string, initial []etcdMember) []string {
	client := fmt.Sprintf("https://127.0.0.1:%d", ports["etcd-client"])
	peer := fmt.Sprintf("https://127.0.0.1:%d", ports["etcd-peer"])
	name := "default"
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--name="); ok {
			name = v
		}
	}
	set := map[string]string{
		"advertise-client-urls":       client,
		"listen-client-urls":          client,
		"initial-advertise-peer-urls": peer,
		"listen-peer-urls":            peer,
		"initial-cluster":             name + "=" + peer,
		"listen-metrics-urls":         fmt.Sprintf("http://127.0.0.1:%d", ports["etcd-metrics"]),
		"data-dir":                    dataDir,
		// The lab's data dies with the test; fsync only slows a shared disk.
		"unsafe-no-fsync": "true",
	}
	if len(initial) > 0 {
		var cluster []string
		for _, m := range initial {
			n := m.Name
			if len(m.PeerURLs) > 0 && m.PeerURLs[0] == peer {
				n = name
			}
			if n != "" && len(m.PeerURLs) > 0 {
				cluster = append(cluster, n+"="+m.PeerURLs[0])
			}
		}
		set["initial-cluster"] = strings.Join(cluster, ",")
		set["initial-cluster-state"] = "existing"
	}
	return withFlags(cmd, set)
}

func apiserverArgs(cmd []string, ports map[string]int) []string {
	return withFlags(cmd, map[string]string{
		"bind-address": "127.0.0.1",
		"secure-port":  strconv.Itoa(ports["apiserver"]),
		"etcd-servers": fmt.Sprintf("https://127.0.0.1:%d", ports["etcd-client"]),
	})
}

func controllerManagerArgs(cmd []string, kubeconfig string) []string {
	return withFlags(cmd, map[string]string{
		"kubeconfig":                kubeconfig,
		"authentication-kubeconfig": kubeconfig,
		"authorization-kubeconfig":  kubeconfig,
		// No HTTPS endpoint: one socket fewer, and no port to collide with
		// another lab cluster's; readiness is the leader lease instead.
		"secure-port": "0",
	})
}

// client talks to the API server with a kubeconfig's client certificate,
// trusting only the kubeconfig's CA.
type client struct {
	server string
	hc     *http.Client
}

func newClient(kubeconfig []byte) (*client, error) {
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CA     string `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Cert string `json:"client-certificate-data"`
				Key  string `json:"client-key-data"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(kubeconfig, &kc); err != nil || len(kc.Clusters) == 0 || len(kc.Users) == 0 {
		return nil, fmt.Errorf("control plane: a kubeconfig kubeadm wrote does not parse (%v); fix: read WORK/kubeconfig", err)
	}
	dec := func(s string) []byte { b, _ := base64.StdEncoding.DecodeString(s); return b }
	pair, err := tls.X509KeyPair(dec(kc.Users[0].User.Cert), dec(kc.Users[0].User.Key))
	if err != nil {
		return nil, fmt.Errorf("control plane: the client certificate in a kubeconfig kubeadm wrote: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(dec(kc.Clusters[0].Cluster.CA)) {
		return nil, errors.New("control plane: a kubeconfig kubeadm wrote has no CA certificate")
	}
	return &client{server: kc.Clusters[0].Cluster.Server, hc: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}},
	}}, nil
}

// at is the client with the same credentials for another server.
func (c *client) at(server string) *client { return &client{server: server, hc: c.hc} }

func (c *client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return c.doContent(ctx, method, path, body, "application/json")
}

// doContent is do with the body's content type (a patch's).
func (c *client) doContent(ctx context.Context, method, path string, body []byte, contentType string) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// expect sends a request and wants one of the statuses.
func (c *client) expect(ctx context.Context, method, path string, body []byte, want ...int) error {
	code, data, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if !slices.Contains(want, code) {
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &st) != nil || st.Message == "" {
			st.Message = string(bytes.TrimSpace(data))
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, code, st.Message)
	}
	return nil
}

// CAPool is a cert pool holding the cluster CA, for callers that verify
// certificates the cluster issued.
func (c *ControlPlane) CAPool() (*x509.CertPool, error) {
	block, _ := pem.Decode(c.caPEM)
	if block == nil {
		return nil, errors.New("control plane: the cluster CA is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("control plane: the cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}
