package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// Member is one control-plane node's etcd member, kube-apiserver and
// kube-controller-manager, on that node's PKI.
type Member struct {
	// Name is the node's name, and its etcd member's.
	Name      string
	advertise string // the node's address (localAPIEndpoint)
	cp        *ControlPlane
	certDir   string
	dirs      map[string]string
	ports     map[string]int
	// upgrading lets one Upgrade of the member run at a time.
	upgrading sync.Mutex

	// Guarded by cp.mu: an upgrade or a stop changes them.
	conf     string // the kubeadm configuration its phases ran with
	bin      string // the folder of its kubeadm, kube-apiserver and kube-controller-manager
	version  string // what that folder's kube-apiserver reports, e.g. v1.36.3
	procs    []*proc.Process
	launched map[string]launch // by process name: what runs, to run it again
	stopped  bool
}

// launch is one of the member's processes: its binary's folder, its
// arguments and its log file (empty: WORK/logs/<name>.log).
type launch struct {
	bin  string
	args []string
	log  string
}

// Endpoint is the member's API server on 127.0.0.1.
func (m *Member) Endpoint() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.ports["apiserver"]))
}

// Processes are the member's etcd, kube-apiserver and kube-controller-manager.
func (m *Member) Processes() []*proc.Process {
	m.cp.mu.Lock()
	defer m.cp.mu.Unlock()
	return slices.Clone(m.procs)
}

// Version is the version of the member's kube-apiserver and
// kube-controller-manager, as the binaries report it (e.g. "v1.36.3").
func (m *Member) Version() string {
	m.cp.mu.Lock()
	defer m.cp.mu.Unlock()
	return m.version
}

// BinDir is the folder the member's kubeadm, kube-apiserver and
// kube-controller-manager run from (its etcd: see Config.BinDir).
func (m *Member) BinDir() string {
	m.cp.mu.Lock()
	defer m.cp.mu.Unlock()
	return m.bin
}

// Do sends one request to the member's own API server as the admin user
// (RBAC applies), as ControlPlane.Do does through the cluster's endpoint.
func (m *Member) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return m.cp.adminCl.at("https://"+m.Endpoint()).do(ctx, method, path, body)
}

// config is the kubeadm configuration file the member's phases run with.
func (m *Member) config() string {
	m.cp.mu.Lock()
	defer m.cp.mu.Unlock()
	return m.conf
}

func (m *Member) peerURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", m.ports["etcd-peer"])
}

func (m *Member) clientURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", m.ports["etcd-client"])
}

// stop stops the member's processes, and those an upgrade starts after it.
func (m *Member) stop() {
	m.cp.mu.Lock()
	m.stopped = true
	procs := slices.Clone(m.procs)
	m.cp.mu.Unlock()
	for _, p := range slices.Backward(procs) {
		p.Stop(5 * time.Second)
	}
}

// newMember chooses the member's ports and folders under work; bin and
// version are its binaries' folder and their version.
func (c *ControlPlane) newMember(name, advertise, certDir, work, bin, version string) (*Member, error) {
	m := &Member{
		Name: name, advertise: advertise, cp: c, certDir: certDir, bin: bin, version: version,
		ports: map[string]int{}, dirs: map[string]string{}, launched: map[string]launch{},
	}
	for _, p := range []string{"apiserver", "etcd-client", "etcd-metrics"} {
		port, err := proc.FreePort()
		if err != nil {
			return nil, fmt.Errorf("control plane: %w", err)
		}
		m.ports[p] = port
	}
	c.mu.Lock()
	peer, ok := c.peers[advertise]
	c.mu.Unlock()
	if !ok {
		var err error
		if peer, err = proc.FreePort(); err != nil {
			return nil, fmt.Errorf("control plane: %w", err)
		}
		c.mu.Lock()
		c.peers[advertise] = peer
		c.mu.Unlock()
	}
	m.ports["etcd-peer"] = peer
	for _, d := range []string{"kubeadm", "kubeconfig", "manifests", "etcd", "logs"} {
		m.dirs[d] = filepath.Join(work, d)
	}
	return m, nil
}

// kubeadm runs one kubeadm command of the member's version; dry runs
// write their manifests into its manifests folder instead of under
// /etc/kubernetes.
func (m *Member) kubeadm(ctx context.Context, args ...string) error {
	return m.kubeadmFrom(ctx, m.BinDir(), m.dirs["manifests"], args...)
}

// kubeadmFrom runs bin's kubeadm, its dry runs writing into dryRunDir.
func (m *Member) kubeadmFrom(ctx context.Context, bin, dryRunDir string, args ...string) error {
	return proc.Run(ctx, "kubeadm "+strings.Join(args[:3], " "), filepath.Join(bin, "kubeadm"), args,
		filepath.Join(m.dirs["logs"], "kubeadm.log"), "KUBEADM_INIT_DRYRUN_DIR="+dryRunDir)
}

// prepare writes the member's PKI and kubeconfigs with the real kubeadm
// and reads the command lines of the static Pods it renders:
//
//   - `kubeadm init phase certs all` writes what the node lacks into its
//     sandbox (for a joining node, next to the certificates it downloaded,
//     as kubeadm join's control-plane-prepare certs phase does);
//   - `kubeadm init phase kubeconfig all` writes admin.conf, super-admin.conf,
//     controller-manager.conf, scheduler.conf and kubelet.conf into the
//     work folder; admin.conf and super-admin.conf then name the cluster's
//     endpoint, the others the member's own API server, as kubeadm points
//     them (controlPlaneEndpoint, localAPIEndpoint);
//   - `kubeadm init phase etcd local`, `control-plane apiserver` and
//     `controller-manager` with --dry-run render the manifests.
func (m *Member) prepare(ctx context.Context, docs kubeadmDocs) (map[string][]string, error) {
	for _, d := range m.dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("control plane: create the work folder: %w", err)
		}
	}
	file := filepath.Join(m.dirs["kubeadm"], "init.yaml")
	conf, err := docs.rewrite(m.certDir, m.cp.Endpoint())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, conf, 0o600); err != nil {
		return nil, fmt.Errorf("control plane: write %s: %w", file, err)
	}
	m.cp.mu.Lock()
	m.conf = file
	m.cp.mu.Unlock()
	for _, args := range [][]string{
		{"init", "phase", "certs", "all", "--config", file},
		{"init", "phase", "kubeconfig", "all", "--config", file, "--kubeconfig-dir", m.dirs["kubeconfig"]},
		{"init", "phase", "etcd", "local", "--config", file, "--dry-run"},
		{"init", "phase", "control-plane", "apiserver", "--config", file, "--dry-run"},
		{"init", "phase", "control-plane", "controller-manager", "--config", file, "--dry-run"},
	} {
		if err := m.kubeadm(ctx, args...); err != nil {
			return nil, fmt.Errorf("control plane: %w", err)
		}
	}
	if err := pointKubeconfigs(m.dirs["kubeconfig"], m.cp.URL(), "https://"+m.Endpoint()); err != nil {
		return nil, err
	}
	cmds := map[string][]string{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if cmds[name], err = manifestCommand(filepath.Join(m.dirs["manifests"], name+".yaml")); err != nil {
			return nil, err
		}
	}
	return cmds, nil
}

// start runs the program name as l says, as one of the member's
// processes; a member stopped meanwhile gets none.
func (m *Member) start(name string, l launch) (*proc.Process, error) {
	if l.log == "" {
		l.log = filepath.Join(m.dirs["logs"], name+".log")
	}
	p, err := proc.Start(name, filepath.Join(l.bin, name), l.args, l.log)
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	m.cp.mu.Lock()
	stopped := m.stopped
	if !stopped {
		m.procs = append(m.procs, p)
		m.launched[name] = l
	}
	m.cp.mu.Unlock()
	if stopped {
		p.Stop(5 * time.Second)
		return nil, fmt.Errorf("control plane: member %s was stopped while %s started", m.Name, name)
	}
	return p, nil
}

// forget removes p from the member's processes once it has been stopped.
func (m *Member) forget(p *proc.Process) {
	m.cp.mu.Lock()
	defer m.cp.mu.Unlock()
	m.procs = slices.DeleteFunc(m.procs, func(x *proc.Process) bool { return x == p })
}

// startEtcd starts the member's etcd and waits for its /health; a joining
// member (initial set) is promoted from learner first (startLearner).
func (m *Member) startEtcd(ctx context.Context, cmd []string, initial []etcdMember) error {
	etcd, err := m.start("etcd", launch{bin: m.cp.etcdBin, args: etcdArgs(cmd, m.ports, m.dirs["etcd"], initial)})
	if err != nil {
		return err
	}
	if len(initial) > 0 {
		if err := m.promote(ctx, etcd); err != nil {
			return err
		}
	}
	health := fmt.Sprintf("http://127.0.0.1:%d/health", m.ports["etcd-metrics"])
	return waitFor(ctx, etcd, m.cp.timeout, "GET "+health, func(ctx context.Context) error {
		return httpOK(ctx, &http.Client{Timeout: 2 * time.Second}, health)
	})
}

func (m *Member) startAPIServer(ctx context.Context, cmd []string) error {
	_, err := m.runAPIServer(ctx, launch{bin: m.BinDir(), args: apiserverArgs(cmd, m.ports)})
	return err
}

// runAPIServer starts l as the member's kube-apiserver and waits for its /readyz.
func (m *Member) runAPIServer(ctx context.Context, l launch) (*proc.Process, error) {
	api, err := m.start("kube-apiserver", l)
	if err != nil {
		return nil, err
	}
	own := m.cp.superAdmin.at("https://" + m.Endpoint())
	return api, waitFor(ctx, api, m.cp.timeout, "GET https://"+m.Endpoint()+"/readyz", func(ctx context.Context) error {
		return own.expect(ctx, http.MethodGet, "/readyz", nil, http.StatusOK)
	})
}

func (m *Member) startControllerManager(cmd []string) (*proc.Process, error) {
	return m.start("kube-controller-manager", launch{bin: m.BinDir(), args: controllerManagerArgs(cmd, filepath.Join(m.dirs["kubeconfig"], "controller-manager.conf"))})
}

// promote waits for the learner to start and promotes it to a voting
// member, retrying while etcd refuses a learner not yet in sync with the
// leader, as kubeadm's MemberPromote does
// (kubernetes/cmd/kubeadm/app/util/etcd/etcd.go).
func (m *Member) promote(ctx context.Context, etcd *proc.Process) error {
	ec, err := m.cp.etcdClient()
	if err != nil {
		return err
	}
	defer ec.close()
	return waitFor(ctx, etcd, m.cp.timeout, "its promotion from learner to voting member", func(ctx context.Context) error {
		ms, err := ec.members(ctx)
		if err != nil {
			return err
		}
		for _, em := range ms {
			if len(em.PeerURLs) == 0 || em.PeerURLs[0] != m.peerURL() {
				continue
			}
			switch {
			case !em.IsLearner:
				return nil
			case em.Name == "":
				return fmt.Errorf("the etcd member %s is not started", em.ID)
			}
			return ec.promote(ctx, em.ID)
		}
		return fmt.Errorf("etcd lists no member with peer URL %s", m.peerURL())
	})
}

// etcdClient reaches the running members' etcd.
func (c *ControlPlane) etcdClient() (*etcdClient, error) {
	ms := c.Members()
	if len(ms) == 0 {
		return nil, errors.New("control plane: no member runs")
	}
	var eps []string
	for _, m := range ms {
		if len(m.Processes()) > 0 {
			eps = append(eps, m.clientURL())
		}
	}
	return newEtcdClient(ms[0].certDir, eps)
}

// JoinConfig is a node that joins the control plane.
type JoinConfig struct {
	// SandboxRoot is the joining node's sandbox folder: its PKI is written
	// there, as kubeadm writes it on the node.
	SandboxRoot string
	// KubeadmConfig is the content of the file the agent passed to
	// `kubeadm join --config` (a JoinConfiguration with a controlPlane section).
	KubeadmConfig []byte
	// WorkDir holds the member's data, logs, kubeconfigs and manifests.
	WorkDir string
	// BinDir holds the node's kubeadm, kube-apiserver and
	// kube-controller-manager (VersionBinaries); empty: the cluster's
	// (BinDir). Its etcd runs from Config.BinDir, as every member's.
	BinDir string
}

// Join does what `kubeadm join --control-plane` does after discovery
// (kubernetes/cmd/kubeadm/app/cmd/phases/join): it refuses a cluster
// without a controlPlaneEndpoint (preflight.go,
// checkIfReadyForAdditionalControlPlane); downloads the kubeadm-certs
// Secret with the join's bootstrap token and decrypts it with the
// certificate key (phases/copycerts, DownloadCerts); writes the node's
// own certificates and kubeconfigs; announces the node's etcd member as a
// learner, starts it with the whole cluster, promotes it and waits for it
// to be healthy (phases/etcd/local.go, CreateStackedEtcdStaticPodManifestFile);
// then starts the node's kube-apiserver on its local etcd and its
// kube-controller-manager. Discovery itself (the token's signature on
// cluster-info, the CA pin) is the caller's.
func (c *ControlPlane) Join(ctx context.Context, cfg JoinConfig) (_ *Member, err error) {
	jc, err := parseJoin(cfg.KubeadmConfig)
	if err != nil {
		return nil, err
	}
	// What kubeadm join reads from the kubeadm-config ConfigMap: the
	// ClusterConfiguration of the last `kubeadm upgrade apply`.
	docs := c.clusterDocs()
	if ep, _ := docs.kind("ClusterConfiguration")["controlPlaneEndpoint"].(string); ep == "" {
		return nil, errors.New("error execution phase preflight: unable to add a new control plane instance to a cluster that doesn't have a stable controlPlaneEndpoint address")
	}
	if c.Member(jc.name) != nil {
		return nil, fmt.Errorf("error execution phase preflight: a control-plane member %s already runs; fix: kubeadm reset it first", jc.name)
	}
	bin := cfg.BinDir
	if bin == "" {
		bin = c.BinDir()
	}
	if err := proc.CheckBins(bin, VersionBinaries...); err != nil {
		return nil, fmt.Errorf("control plane: join %s: %w", jc.name, err)
	}
	version, err := c.binVersion(ctx, bin)
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(cfg.SandboxRoot, filepath.FromSlash(docs.certificatesDir()))
	m, err := c.newMember(jc.name, jc.advertise, certDir, cfg.WorkDir, bin, version)
	if err != nil {
		return nil, err
	}
	// What a cut join left on the node is replaced, as the agent's
	// `kubeadm reset` before a new join would.
	if err := clearLeftovers(certDir, nil, m.dirs["kubeconfig"], m.dirs["manifests"], m.dirs["etcd"]); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	if jc.certificateKey == "" {
		return nil, errors.New("error execution phase control-plane-prepare/download-certs: no certificate key: the node has no shared certificates of its own; fix: join with the key the certificates were uploaded with (controlPlane.certificateKey)")
	}
	if err := c.downloadCerts(ctx, jc.token, jc.certificateKey, certDir); err != nil {
		return nil, fmt.Errorf("error execution phase control-plane-prepare/download-certs: %w", err)
	}
	ic := docs.kind("InitConfiguration")
	nr, _ := ic["nodeRegistration"].(map[string]any)
	if nr == nil {
		nr = map[string]any{}
		ic["nodeRegistration"] = nr
	}
	nr["name"] = jc.name
	ic["localAPIEndpoint"] = map[string]any{"advertiseAddress": jc.advertise, "bindPort": apiBindPort}
	delete(ic, "certificateKey")
	delete(ic, "bootstrapTokens")
	cmds, err := m.prepare(ctx, docs)
	if err != nil {
		return nil, err
	}

	ec, err := c.etcdClient()
	if err != nil {
		return nil, err
	}
	defer ec.close()
	initial, err := ec.addLearner(ctx, m.peerURL())
	if err != nil {
		return nil, fmt.Errorf("error execution phase control-plane-join/etcd: announce etcd member %s: %w", jc.name, err)
	}
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	defer func() {
		if err != nil {
			c.StopMember(jc.name)
		}
	}()
	if err := m.startEtcd(ctx, cmds["etcd"], initial); err != nil {
		return nil, fmt.Errorf("error execution phase control-plane-join/etcd: %w", err)
	}
	if err := c.waitEtcdHealthy(ctx); err != nil {
		return nil, fmt.Errorf("error execution phase control-plane-join/etcd: %w", err)
	}
	if err := m.startAPIServer(ctx, cmds["kube-apiserver"]); err != nil {
		return nil, err
	}
	if _, err := m.startControllerManager(cmds["kube-controller-manager"]); err != nil {
		return nil, err
	}
	return m, nil
}

// apiBindPort is the port kubeadm writes in localAPIEndpoint; the lab binds 127.0.0.1 elsewhere.
const apiBindPort = 6443

// joinDoc is what Join reads from the JoinConfiguration.
type joinDoc struct {
	name, advertise, certificateKey, token string
}

func parseJoin(data []byte) (joinDoc, error) {
	var docs kubeadmDocs
	for _, part := range splitYAML(data) {
		var m map[string]any
		if err := yaml.Unmarshal(part, &m); err != nil {
			return joinDoc{}, fmt.Errorf("control plane: the join configuration does not parse: %w", err)
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
	jc := docs.kind("JoinConfiguration")
	if jc == nil {
		return joinDoc{}, errors.New("control plane: no JoinConfiguration; fix: pass the file the agent gave `kubeadm join --config`")
	}
	var out joinDoc
	nr, _ := jc["nodeRegistration"].(map[string]any)
	out.name, _ = nr["name"].(string)
	cpSec, _ := jc["controlPlane"].(map[string]any)
	if cpSec == nil {
		return joinDoc{}, errors.New("control plane: the JoinConfiguration has no controlPlane section: it joins a worker")
	}
	out.certificateKey, _ = cpSec["certificateKey"].(string)
	local, _ := cpSec["localAPIEndpoint"].(map[string]any)
	out.advertise, _ = local["advertiseAddress"].(string)
	disc, _ := jc["discovery"].(map[string]any)
	bt, _ := disc["bootstrapToken"].(map[string]any)
	out.token, _ = bt["token"].(string)
	if out.name == "" || out.advertise == "" || out.token == "" {
		return joinDoc{}, fmt.Errorf("control plane: the JoinConfiguration lacks nodeRegistration.name (%q), controlPlane.localAPIEndpoint.advertiseAddress (%q) or a bootstrap token", out.name, out.advertise)
	}
	return out, nil
}

// waitEtcdHealthy waits until etcd answers as a whole, as kubeadm's
// WaitForClusterAvailable does after a join: every running member healthy.
func (c *ControlPlane) waitEtcdHealthy(ctx context.Context) error {
	deadline := time.Now().Add(c.timeout)
	for {
		ms, err := c.EtcdMembers(ctx)
		bad := ""
		if err == nil {
			for _, em := range ms {
				if em.Running && !em.Healthy {
					bad = em.Name
				}
			}
			if bad == "" {
				return nil
			}
			err = fmt.Errorf("etcd member %s is not healthy", bad)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd is not available after %s: %w", c.timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// EtcdMember is one etcd member as the cluster lists it.
type EtcdMember struct {
	Name    string // empty while a learner has not started
	ID      string // hex, as etcdctl prints it
	Learner bool
	// Running: the lab runs this member's etcd. Healthy: it answers /health.
	Running, Healthy bool
}

// EtcdMembers lists etcd's members, through any running member.
func (c *ControlPlane) EtcdMembers(ctx context.Context) ([]EtcdMember, error) {
	ec, err := c.etcdClient()
	if err != nil {
		return nil, err
	}
	defer ec.close()
	ms, err := ec.members(ctx)
	if err != nil {
		return nil, err
	}
	byPeer := map[string]*Member{}
	for _, m := range c.Members() {
		byPeer[m.peerURL()] = m
	}
	var out []EtcdMember
	for _, em := range ms {
		e := EtcdMember{Name: em.Name, ID: em.ID.String(), Learner: em.IsLearner}
		if len(em.PeerURLs) > 0 {
			if m := byPeer[em.PeerURLs[0]]; m != nil {
				e.Running = true
				hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				e.Healthy = httpOK(hctx, &http.Client{}, fmt.Sprintf("http://127.0.0.1:%d/health", m.ports["etcd-metrics"])) == nil
				cancel()
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// StopMember stops the node's processes, as when its machine is gone: its
// etcd membership stays until someone removes it.
func (c *ControlPlane) StopMember(node string) {
	c.mu.Lock()
	var m *Member
	c.members = slices.DeleteFunc(c.members, func(x *Member) bool {
		if x.Name == node {
			m = x
			return true
		}
		return false
	})
	c.mu.Unlock()
	if m != nil {
		m.stop()
	}
}

// RemoveMember removes the named node's etcd member through a running
// member (`etcdctl member remove`); a name etcd does not list is removed
// already. It refuses to remove the last voting member.
func (c *ControlPlane) RemoveMember(ctx context.Context, node string) error {
	ec, err := c.etcdClient()
	if err != nil {
		return err
	}
	defer ec.close()
	ms, err := ec.members(ctx)
	if err != nil {
		return err
	}
	var peer string
	if m := c.Member(node); m != nil {
		peer = m.peerURL()
	}
	for _, em := range ms {
		if em.Name == node || (peer != "" && len(em.PeerURLs) > 0 && em.PeerURLs[0] == peer) {
			if len(ms) == 1 {
				return fmt.Errorf("etcd member %s is the cluster's last member; removing it would end the cluster", node)
			}
			return ec.remove(ctx, em.ID)
		}
	}
	return nil
}

// RemoveMemberID removes the etcd member with the hex ID etcdctl prints,
// through a running member, as `etcdctl member remove ID` does.
func (c *ControlPlane) RemoveMemberID(ctx context.Context, hexID string) error {
	id, err := strconv.ParseUint(hexID, 16, 64)
	if err != nil {
		return fmt.Errorf("bad member ID arg (%w), expecting ID in Hex", err)
	}
	ec, err := c.etcdClient()
	if err != nil {
		return err
	}
	defer ec.close()
	return ec.remove(ctx, etcdID(id))
}
