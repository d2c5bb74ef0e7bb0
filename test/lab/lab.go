// Package lab runs the whole lab in one process, so the library's AWS code
// paths build a real-shaped mixed cluster without a cloud account:
//
//   - the EC2+SSM emulator (test/lab/ec2) on 127.0.0.1 with its own CA and
//     static credentials, driven by clouds/aws unchanged;
//   - an SSH bastion on 127.0.0.1 (test/lab/bastion) with a generated user
//     key and a pinned host key;
//   - an artifact mirror on 127.0.0.1 serving the stand-in files of every
//     supported Kubernetes version's manifest, with matching checksums;
//   - a virtual node (test/lab/node) for every running instance, made from
//     the identity in the instance's first-boot data and reached only through the
//     bastion, by the instance's private address;
//   - for every cluster, a real control plane (etcd, kube-apiserver,
//     kube-controller-manager) started by the agent's kubeadm init on its
//     first control-plane node and served on that node's port 6443, and a
//     hollow kubelet per node started by kubeadm join or the Windows kubelet
//     service (see kube.go; binaries from `make lab-bins`);
//   - an inspection and fault-injection API, in Go (Lab) and over HTTP on
//     127.0.0.1 for other processes.
//
// Start writes lab.env (KEY='value' lines a shell can source) and lab.json
// (the same, as JSON) into the lab folder; see Env. Nothing in the lab opens
// a socket to an address other than 127.0.0.1: node addresses, private
// (10.x) and virtual (127.x) alike, are resolved in process.
package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox/mirror"
	"github.com/mixedk8s/mixedk8s/test/lab/awslab"
	"github.com/mixedk8s/mixedk8s/test/lab/bastion"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/ec2"
	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/test/lab/node"
)

// Config configures a lab. The zero value is usable except for Dir.
type Config struct {
	// Dir holds the env files, the CA bundle, the bastion key and the nodes'
	// sandboxes. Required; created when missing. Sandboxes of an earlier lab
	// in the same folder are removed.
	Dir string
	// Region of the emulated EC2; default "us-east-1".
	Region string
	// AccessKeyID and SecretAccessKey are the only credentials the emulator
	// accepts; default a random pair.
	AccessKeyID, SecretAccessKey string
	// BastionUser is the bastion login; default "mixedk8s".
	BastionUser string
	// PendingDelay and ShuttingDownDelay: how long instances stay pending and
	// shutting-down; defaults as in ec2.Options.
	PendingDelay, ShuttingDownDelay time.Duration
	// Hooks, when set, returns the sandbox hooks of a new node (fault
	// injection on the node, a real control plane).
	Hooks func(name string) sandbox.Hooks
	// Logf receives the lab's own log lines (nodes started and stopped,
	// instances that could not become nodes); nil discards them.
	Logf func(format string, args ...any)
	// APILogf, when set, receives one line per emulated API request.
	APILogf func(format string, args ...any)
	// Clouds start emulators of other clouds beside the EC2 one (see
	// package cloudemu); their instances become nodes as EC2's do.
	Clouds []cloudemu.Starter
	// HealthCheckSpeedup divides the clouds' load balancer health-check
	// intervals (loadbalancer.go); default 10, 1 runs them as the cloud does.
	HealthCheckSpeedup int
}

// Lab is a running lab. Its fields are the parts, for tests that steer them
// directly; the methods cover what other processes reach over HTTP.
type Lab struct {
	// EC2 is the EC2+SSM emulator's server: fault injection (Inject,
	// SetLatency, NoCapacity, Deny, Fault) and call counts.
	EC2 *ec2.Server
	// Bastion is the jump host every node is reached through.
	Bastion *bastion.Bastion
	// Mirror serves the artifacts; its Hits show what nodes downloaded.
	Mirror *mirror.Mirror

	cfg       Config
	env       Env
	emulators []cloudemu.Emulator
	stopHTTP  []func()
	closeOnce sync.Once

	fmu         sync.Mutex
	rates       []*rate
	capacityOff []string
	denied      []string

	mu    sync.Mutex
	nodes map[string]*Node // by instance ID
	// terminations counts each instance ID's terminations, so a start that a
	// termination overtook is undone while a new instance under a reused ID
	// (an Azure VM's resource ID is its name's path) still starts.
	terminations map[string]int
	problems     []string
	starting     sync.WaitGroup

	kube *kube
	lbs  *balancers
	aws  *awslab.Emulator
}

// Node is a virtual node of the lab: the instance it stands for and the
// running node.Node.
type Node struct {
	*node.Node
	// Cloud is the emulator the instance runs in ("aws", ...).
	Cloud      string
	InstanceID string
	// Incarnation is the instance's cloudemu.Instance.Incarnation.
	Incarnation string
	// Name is the instance's node tag (its ID when untagged).
	Name string
	// Cluster is the instance's cluster tag.
	Cluster string
	// PrivateIP is the instance's address the bastion resolves.
	PrivateIP netip.Addr
	Tags      map[string]string
	// gone is set by the first teardown: the cloud's report and a later
	// instance under the same ID may both retire this one.
	gone bool
	// FirstBoot is the identity the instance's first-boot data carried, as
	// its emulator read it from the cloud's records: what a reader of the
	// instance's attributes or metadata holds (EC2 user data, Azure custom
	// data and extension settings, the GCE guest's keys and the password
	// on serial port 4). Secret.
	FirstBoot clouds.NodeIdentity
}

// Start starts every part of the lab and writes its env files. Close it
// (or cancel ctx) to stop it.
func Start(ctx context.Context, cfg Config) (_ *Lab, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("start lab: Config.Dir is empty; fix: pass the folder for the env files and the node sandboxes")
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		cfg.AccessKeyID, cfg.SecretAccessKey = "AKIALAB"+strings.ToUpper(randomHex(6)), randomHex(20)
	}
	if cfg.BastionUser == "" {
		cfg.BastionUser = "mixedk8s"
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	cfg.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start lab: create the lab folder: %w", err)
	}
	// Sandboxes and clusters of an earlier lab belong to instances that no longer exist.
	for _, d := range []string{"nodes", "clusters"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return nil, fmt.Errorf("start lab: remove the old %s: %w", d, err)
		}
	}
	l := &Lab{cfg: cfg, nodes: map[string]*Node{}, terminations: map[string]int{}, kube: newKube(dir), lbs: newBalancers()}
	l.kube.lbCluster = l.loadBalancerCluster
	defer func() {
		if err != nil {
			l.Close()
		}
	}()

	if err := l.startEmulators(); err != nil {
		return nil, err
	}

	mirrorURL, err := l.startMirror()
	if err != nil {
		return nil, err
	}
	bastionKeyFile, err := l.startBastion(ctx)
	if err != nil {
		return nil, err
	}
	apiURL, err := l.serveAPI()
	if err != nil {
		return nil, err
	}
	caFile := l.aws.CABundle
	l.env = Env{
		Dir:                   dir,
		AWSEndpoint:           l.EC2.URL(),
		AWSRegion:             l.EC2.Region(),
		AWSAccessKeyID:        cfg.AccessKeyID,
		AWSSecretAccessKey:    cfg.SecretAccessKey,
		AWSCABundle:           caFile,
		BastionAddress:        l.Bastion.Addr(),
		BastionUser:           cfg.BastionUser,
		BastionHostKey:        strings.TrimSpace(string(ssh.MarshalAuthorizedKey(l.Bastion.HostKey()))),
		BastionPrivateKeyFile: bastionKeyFile,
		MirrorBaseURL:         mirrorURL,
		API:                   apiURL,
	}
	others := map[string]map[string]string{}
	for _, e := range l.emulators {
		if e != cloudemu.Emulator(l.aws) {
			others[e.Cloud()] = e.Env() // the AWS ones are Env's own fields
		}
	}
	if err := l.env.write(dir, others); err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	l.stopHTTP = append(l.stopHTTP, func() { stop() })
	return l, nil
}

// startMirror serves the stand-in artifacts of every supported version, so a
// spec of any supported Kubernetes version downloads from the same mirror.
func (l *Lab) startMirror() (string, error) {
	all := &contract.Manifest{KubernetesVersion: "all"}
	seen := map[string]bool{}
	for _, v := range manifest.Versions() {
		m, err := manifest.Builtin(v)
		if err != nil {
			return "", fmt.Errorf("start lab mirror: %w", err)
		}
		for _, a := range m.Artifacts {
			if !seen[a.URL] {
				seen[a.URL] = true
				all.Artifacts = append(all.Artifacts, a)
			}
		}
	}
	mr, err := mirror.New(all)
	if err != nil {
		return "", fmt.Errorf("start lab mirror: %w", err)
	}
	base, stop, err := mirror.Serve(mr)
	if err != nil {
		return "", fmt.Errorf("start lab mirror: %w", err)
	}
	l.Mirror = mr
	l.stopHTTP = append(l.stopHTTP, stop)
	return base, nil
}

// startBastion generates the bastion user's key (written owner-only for
// clients in other processes) and starts the jump host.
func (l *Lab) startBastion(ctx context.Context) (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("start lab bastion: generate the user key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return "", fmt.Errorf("start lab bastion: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "mixedk8s lab bastion user")
	if err != nil {
		return "", fmt.Errorf("start lab bastion: encode the user key: %w", err)
	}
	keyFile := filepath.Join(l.cfg.Dir, "bastion_ed25519")
	// Remove first: WriteFile keeps the mode of a file that exists.
	_ = os.Remove(keyFile)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", fmt.Errorf("start lab bastion: write the user key: %w", err)
	}
	if err := os.WriteFile(keyFile+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		return "", fmt.Errorf("start lab bastion: write the user key: %w", err)
	}
	l.Bastion, err = bastion.Start(ctx, bastion.Config{User: l.cfg.BastionUser, AuthorizedKey: signer.PublicKey(), Resolve: l.resolve, Lookup: l.lookup})
	if err != nil {
		return "", err
	}
	return keyFile, nil
}

// Env is what other processes need to use the lab.
func (l *Lab) Env() Env { return l.env }

// EnvFile is the path of lab.env.
func (l *Lab) EnvFile() string { return filepath.Join(l.cfg.Dir, EnvFileName) }

// Close stops the nodes, the emulator, the bastion, the mirror and the API.
// The lab folder stays for inspection.
func (l *Lab) Close() {
	l.closeOnce.Do(func() {
		// First, so no instance becomes a node while the rest stops.
		for _, e := range l.emulators {
			e.Close()
		}
		l.starting.Wait()
		l.closeBalancers()
		l.kube.close()
		l.mu.Lock()
		nodes := slices.Collect(maps.Values(l.nodes))
		l.nodes = map[string]*Node{}
		l.mu.Unlock()
		for _, n := range nodes {
			n.Close()
		}
		if l.Bastion != nil {
			l.Bastion.Close()
		}
		for _, stop := range l.stopHTTP {
			stop()
		}
	})
}

// onEvent is the lab's side of the emulators' seam: a started instance
// becomes a virtual node, a stopped one loses its node, a rebooted one
// reboots its host, a terminated one loses node and disk.
func (l *Lab) onEvent(ev cloudemu.Event) {
	switch ev.Kind {
	case cloudemu.Started:
		l.onStarted(ev)
	case cloudemu.Stopped:
		l.onGone(ev.Instance, false)
	case cloudemu.Rebooted:
		if n := l.nodeByID(ev.Instance.ID); n != nil {
			n.Host.Reboot()
		}
	case cloudemu.Terminated:
		l.onGone(ev.Instance, true)
	}
}

// onStarted turns a running instance into a virtual node. An instance that
// cannot become one (its emulator says why) stays unreachable, as a real one
// whose first boot failed, and is recorded in Problems.
func (l *Lab) onStarted(ev cloudemu.Event) {
	l.starting.Add(1)
	defer l.starting.Done()
	in := ev.Instance
	l.mu.Lock()
	before := l.terminations[incarnationKey(in)]
	old := l.nodes[in.ID]
	l.mu.Unlock()
	if old != nil && old.Incarnation != in.Incarnation {
		// The cloud reused the ID for a new instance, so the old one is gone,
		// whenever its own report arrives.
		l.onGone(cloudemu.Instance{Cloud: in.Cloud, ID: in.ID, Incarnation: old.Incarnation}, true)
	}
	n, err := l.startNode(ev)
	if err != nil {
		l.problem("instance %s (%s): %v", in.ID, in.Name, err)
		return
	}
	l.mu.Lock()
	if l.terminations[incarnationKey(in)] != before {
		// Terminated while it booted.
		l.mu.Unlock()
		n.Close()
		return
	}
	l.nodes[in.ID] = n
	l.mu.Unlock()
	l.cfg.Logf("node %s up: %s instance %s, %s, private %s, virtual %s", n.Name, in.Cloud, in.ID, n.Host.OS, n.PrivateIP, n.Host.Addr)
}

func (l *Lab) startNode(ev cloudemu.Event) (*Node, error) {
	if ev.Err != nil {
		return nil, ev.Err
	}
	in := ev.Instance
	priv, err := netip.ParseAddr(in.PrivateIP)
	if err != nil || !priv.Is4() {
		return nil, fmt.Errorf("private address %q is not IPv4", in.PrivateIP)
	}
	name := in.Name
	l.mu.Lock()
	for _, other := range l.nodes {
		if other.PrivateIP == priv {
			l.mu.Unlock()
			return nil, fmt.Errorf("private address %s is taken by node %s (%s); fix: give clusters that share a lab distinct node_cidr", priv, other.Name, other.InstanceID)
		}
	}
	addr, err := l.virtualAddr(priv)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var hooks sandbox.Hooks
	if l.cfg.Hooks != nil {
		hooks = l.cfg.Hooks(name)
	}
	hooks = l.kube.hooks(l, name, hooks)
	vn, err := node.Start(node.Config{
		Name:                 name,
		OS:                   in.OS,
		WindowsVersion:       in.WindowsVersion,
		NestedVirtualization: in.NestedVirtualization,
		Addr:                 addr,
		// One folder per incarnation: a retired instance's disk goes while
		// the next one under its ID boots.
		Root:                 filepath.Join(l.cfg.Dir, "nodes", in.ID+"-"+name+"-"+shortIncarnation(in.Incarnation)),
		Identity:             in.Identity,
		ComputerName:         in.ComputerName,
		ComputerNameAtReboot: in.ComputerNameAtReboot,
		Hooks:                hooks,
	})
	if err != nil {
		return nil, err
	}
	if in.OS == host.Linux {
		// What the provisioner runs over SSH on a control-plane node
		// (`sudo kubeadm init phase upload-certs ...`, `sudo crictl ...`)
		// runs the node's installed program as the agent's commands do.
		vn.Host.Handle("kubeadm", installedProgram(vn.Sandbox, "/usr/bin/kubeadm"))
		vn.Host.Handle("crictl", installedProgram(vn.Sandbox, "/usr/local/bin/crictl"))
	}
	return &Node{Node: vn, Cloud: in.Cloud, InstanceID: in.ID, Name: name, Cluster: in.Cluster, PrivateIP: priv, Tags: maps.Clone(in.Tags), FirstBoot: in.Identity, Incarnation: in.Incarnation}, nil
}

// installedProgram runs a program through the node's sandbox, and only
// once the agent has installed it, as a shell would find it on the PATH.
func installedProgram(sb *sandbox.Sandbox, file string) host.Command {
	return func(ctx context.Context, _ *host.Host, p *host.Process) int {
		if _, err := sb.Stat(file); err != nil {
			fmt.Fprintf(p.Stderr, "sh: 1: %s: not found\n", p.Args[0])
			return 127
		}
		out, err := sb.Run(ctx, oslayer.Command{Path: file, Args: p.Args[1:]})
		_, _ = p.Stdout.Write(out)
		if err != nil {
			fmt.Fprintln(p.Stderr, err)
			return 1
		}
		return 0
	}
}

func (l *Lab) nodeByID(id string) *Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nodes[id]
}

// virtualAddr derives 127.10.x.y from a private address 10.a.x.y, moving to
// 127.11.x.y and on when another node holds it; load balancers have the
// addresses from 127.250.0.0. Called with l.mu held.
func (l *Lab) virtualAddr(priv netip.Addr) (netip.Addr, error) {
	b := priv.As4()
	for second := 10; second < lbVirtualBase; second++ {
		a := netip.AddrFrom4([4]byte{127, byte(second), b[2], b[3]})
		taken := false
		for _, n := range l.nodes {
			taken = taken || n.Host.Addr == a
		}
		if !taken {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free virtual address for %s", priv)
}

// incarnationKey names one instance, not a later one under its ID.
func incarnationKey(in cloudemu.Instance) string { return in.ID + "#" + in.Incarnation }

// shortIncarnation is a folder-safe part of an incarnation.
func shortIncarnation(inc string) string {
	inc = strings.NewReplacer("/", "", "-", "", ":", "").Replace(inc)
	if len(inc) > 12 {
		inc = inc[:12]
	}
	if inc == "" {
		return "0"
	}
	return inc
}

// onGone stops a stopped or terminated instance's node and forgets it; a
// terminated instance's sandbox goes with it, as the instance's disk does.
func (l *Lab) onGone(in cloudemu.Instance, terminated bool) {
	l.mu.Lock()
	if terminated {
		l.terminations[incarnationKey(in)]++
	}
	n := l.nodes[in.ID]
	if n == nil || n.Incarnation != in.Incarnation || n.gone {
		// A later instance holds the ID, or this one's teardown is under way.
		l.mu.Unlock()
		return
	}
	n.gone = true
	l.mu.Unlock()
	l.kube.nodeGone(n)
	n.Close()
	if terminated {
		if err := os.RemoveAll(n.Host.Root); err != nil {
			l.problem("node %s: remove its sandbox: %v", n.Name, err)
		}
	}
	// Forgotten last, so a node listed is never half gone; a later
	// instance that took the ID meanwhile stays.
	l.mu.Lock()
	if l.nodes[in.ID] == n {
		delete(l.nodes, in.ID)
	}
	l.mu.Unlock()
	l.cfg.Logf("node %s down: %s instance %s %s", n.Name, in.Cloud, in.ID, map[bool]string{true: "terminated", false: "stopped"}[terminated])
}

// resolve is the bastion's view of the node network: a node's private
// address (what the provisioner dials) or its virtual one, or a load
// balancer's.
func (l *Lab) resolve(addr netip.Addr) *host.Host {
	l.mu.Lock()
	for _, n := range l.nodes {
		if n.PrivateIP == addr || n.Host.Addr == addr {
			l.mu.Unlock()
			return n.Host
		}
	}
	l.mu.Unlock()
	return l.resolveLoadBalancer(addr)
}

func (l *Lab) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.problems = append(l.problems, msg)
	l.mu.Unlock()
	l.cfg.Logf("problem: %s", msg)
}

// Problems lists what went wrong inside the lab: instances that could not
// become nodes, sandboxes that could not be removed.
func (l *Lab) Problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.problems)
}

// Nodes lists the live nodes, by name. Filter by cluster with "" for all.
func (l *Lab) Nodes(cluster string) []*Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Node
	for _, n := range l.nodes {
		if cluster == "" || n.Cluster == cluster {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Node returns the live node with the name, or nil.
func (l *Lab) Node(name string) *Node {
	for _, n := range l.Nodes("") {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Objects lists everything of a cluster that exists: every emulator's
// objects by the cloud's cluster tag (network, instances, the secrets), the
// live nodes as "node/<name>", its control plane as
// "control-plane/<cluster>" and its hollow kubelets as "kubelet/<node>".
// Empty after a complete Destroy.
func (l *Lab) Objects(cluster string) []string {
	out := l.kube.objects(cluster)
	for _, e := range l.emulators {
		out = append(out, e.Objects(cluster)...)
	}
	for _, n := range l.Nodes(cluster) {
		out = append(out, "node/"+n.Name)
	}
	sort.Strings(out)
	return out
}

// ObjectsIn lists what one cloud's emulator holds of a cluster, and the
// cluster's live nodes on that cloud as "node/<name>".
func (l *Lab) ObjectsIn(cloud, cluster string) ([]string, error) {
	e := l.Emulator(cloud)
	if e == nil {
		return nil, fmt.Errorf("the lab runs no %s emulator; fix: ask for one of %q", cloud, l.CloudNames())
	}
	out := e.Objects(cluster)
	for _, n := range l.Nodes(cluster) {
		if n.Cloud == cloud {
			out = append(out, "node/"+n.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ObjectTagsIn maps each object of a cluster in one cloud's emulator that
// can carry tags to its tags, as the cloud spells them.
func (l *Lab) ObjectTagsIn(cloud, cluster string) (map[string]map[string]string, error) {
	e := l.Emulator(cloud)
	if e == nil {
		return nil, fmt.Errorf("the lab runs no %s emulator; fix: ask for one of %q", cloud, l.CloudNames())
	}
	t, ok := e.(cloudemu.Tagger)
	if !ok {
		return nil, fmt.Errorf("the lab's %s emulator does not report tags", cloud)
	}
	return t.ObjectTags(cluster), nil
}

// Emulator returns the running emulator of a cloud, or nil.
func (l *Lab) Emulator(cloud string) cloudemu.Emulator {
	for _, e := range l.emulators {
		if e.Cloud() == cloud {
			return e
		}
	}
	return nil
}

// CloudNames lists the clouds the lab emulates, in the order they started.
func (l *Lab) CloudNames() []string {
	var out []string
	for _, e := range l.emulators {
		out = append(out, e.Cloud())
	}
	return out
}

// APIEndpoint is the host:port on 127.0.0.1 where the cluster's API
// servers answer, for clients on this machine (kubectl, tests): any
// running control-plane member's. False until its first control-plane node
// has run kubeadm init. Every serving certificate holds 127.0.0.1. Inside
// the lab network the API is port 6443 of each control-plane node, and the
// cluster's load balancer.
func (l *Lab) APIEndpoint(cluster string) (string, bool) { return l.kube.apiEndpoint(cluster) }

// EtcdMembers lists the cluster's etcd members as etcd reports them, with
// whether the lab runs each one and whether it answers /health.
func (l *Lab) EtcdMembers(ctx context.Context, cluster string) ([]controlplane.EtcdMember, error) {
	cp, err := l.kube.controlPlane(cluster)
	if err != nil {
		return nil, err
	}
	return cp.EtcdMembers(ctx)
}

// ExpireUploadedCerts does to the cluster what the two hours after
// `kubeadm init phase upload-certs` do: the kubeadm-certs Secret and the
// token that owns it are gone, so a control-plane join needs a new upload.
func (l *Lab) ExpireUploadedCerts(ctx context.Context, cluster string) error {
	cp, err := l.kube.controlPlane(cluster)
	if err != nil {
		return err
	}
	return cp.ExpireUploadedCerts(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
