// Package node is one virtual machine of the lab as the provisioner meets
// it: a lab host whose SSH (Linux) or WinRM-over-HTTPS (Windows) server is
// set up from the identity first boot installs, and whose pushed node agents
// run in process against a sandbox that records every effect instead of
// changing this machine. A reboot the agent asks for drops every connection
// and runs the agent's registered resume command afterwards, as a real
// boot-time task would.
//
// Until the lab runs a real control plane, Linux nodes answer the few
// kubeadm and kubectl commands the provisioner sends to the first
// control-plane node with a stand-in: `kubeadm token create` prints a fresh
// token, `kubectl drain` and `kubectl delete node` report success.
package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/nodeagent/agent"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/test/lab/sshd"
	"github.com/mixedk8s/mixedk8s/test/lab/winrmd"
)

// Config describes one virtual node.
type Config struct {
	Name string
	// OS is host.Linux or host.Windows.
	OS string
	// WindowsVersion is "2019", "2022" or "2025": the build the machine emulates.
	WindowsVersion string
	// NestedVirtualization says whether the instance type offers it.
	NestedVirtualization bool
	Addr                 netip.Addr
	// Root is the node's sandbox folder.
	Root string
	// Identity is what first boot installed: host key or certificate, admin login.
	Identity clouds.NodeIdentity
	// Hooks, when set, extend the sandbox's (fault injection, a real control plane).
	Hooks sandbox.Hooks
}

// Node is a running virtual node.
type Node struct {
	Host    *host.Host
	Sandbox *sandbox.Sandbox

	ssh *sshd.Server
	win *winrmd.Server

	applying sync.Mutex // one `apply` at a time, as on a real node

	mu            sync.Mutex
	digests       []string
	rebootPending bool
	resumes       sync.WaitGroup
	bootLog       bytes.Buffer
	closed        bool
}

// Start makes the node and its protocol server.
func Start(cfg Config) (*Node, error) {
	h, err := host.New(cfg.Name, cfg.OS, cfg.Addr, cfg.Root)
	if err != nil {
		return nil, err
	}
	emulate := "linux"
	if cfg.OS == host.Windows {
		emulate = "windows-" + cfg.WindowsVersion
		if cfg.NestedVirtualization {
			emulate += "+nested"
		}
	}
	id, err := sandbox.Emulate(emulate, fresh(cfg))
	if err != nil {
		return nil, fmt.Errorf("lab node %s: %w", cfg.Name, err)
	}
	sb, err := sandbox.New(cfg.Root, id)
	if err != nil {
		return nil, fmt.Errorf("lab node %s: %w", cfg.Name, err)
	}
	n := &Node{Host: h, Sandbox: sb}
	hooks := cfg.Hooks
	userReboot := hooks.OnReboot
	hooks.OnReboot = func(ctx context.Context) {
		n.mu.Lock()
		n.rebootPending = true
		n.mu.Unlock()
		if userReboot != nil {
			userReboot(ctx)
		}
	}
	sb.SetHooks(hooks)
	h.Agent = n.runAgent

	switch cfg.OS {
	case host.Linux:
		if err := n.serveSSH(cfg.Identity); err != nil {
			return nil, fmt.Errorf("lab node %s: %w", cfg.Name, err)
		}
		h.Handle("kubeadm", standInKubeadm)
		h.Handle("kubectl", standInKubectl)
	case host.Windows:
		if err := n.serveWinRM(cfg.Identity); err != nil {
			return nil, fmt.Errorf("lab node %s: %w", cfg.Name, err)
		}
	}
	return n, nil
}

// fresh is the hostname of a freshly booted image, before the agent renames it.
func fresh(cfg Config) string {
	if cfg.OS == host.Windows {
		return "EC2AMAZ-" + strings.ToUpper(hex.EncodeToString([]byte(cfg.Name))[:7])
	}
	return "ip-" + strings.ReplaceAll(cfg.Addr.String(), ".", "-")
}

func (n *Node) serveSSH(id clouds.NodeIdentity) error {
	signer, err := ssh.ParsePrivateKey([]byte(id.SSHHostKeyPEM))
	if err != nil {
		return fmt.Errorf("first boot: the SSH host key does not parse: %w", err)
	}
	var keys []ssh.PublicKey
	for _, line := range id.SSHAuthorizedKeys {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return fmt.Errorf("first boot: an authorized key does not parse: %w", err)
		}
		keys = append(keys, k)
	}
	n.ssh = sshd.Serve(n.Host, sshd.Config{HostKey: signer, AuthorizedKeys: map[string][]ssh.PublicKey{id.AdminUser: keys}})
	return nil
}

func (n *Node) serveWinRM(id clouds.NodeIdentity) error {
	pair, err := tls.X509KeyPair([]byte(id.WinRMCertPEM), []byte(id.WinRMKeyPEM))
	if err != nil {
		return fmt.Errorf("first boot: the WinRM certificate does not load: %w", err)
	}
	srv, err := winrmd.New(n.Host, winrmd.Config{Certificate: pair, Users: map[string]string{id.AdminUser: id.AdminPassword}})
	if err != nil {
		return err
	}
	n.win = srv
	return nil
}

// runAgent runs a pushed agent binary in process against the sandbox.
func (n *Node) runAgent(ctx context.Context, h *host.Host, agentPath string, p *host.Process) int {
	data, err := os.ReadFile(agentPath)
	if err != nil {
		fmt.Fprintf(p.Stderr, "%s: %v\n", p.Args[0], err)
		return 126
	}
	sum := sha256.Sum256(data)
	n.mu.Lock()
	n.digests = append(n.digests, hex.EncodeToString(sum[:]))
	n.mu.Unlock()
	args := p.Args[1:]
	if len(args) > 0 && args[0] == "apply" {
		n.applying.Lock()
		defer n.applying.Unlock()
	}
	code := agent.Main(ctx, args, agent.Env{OS: n.Sandbox, Stdout: p.Stdout, Stderr: p.Stderr, Executable: p.Args[0]})
	n.mu.Lock()
	reboot := n.rebootPending && !n.closed
	n.rebootPending = false
	if reboot {
		n.resumes.Add(1)
	}
	n.mu.Unlock()
	if reboot {
		// After the agent has exited, as a real `shutdown /r /t 10` lets it.
		go n.boot()
	}
	return code
}

// boot drops every connection, then runs what the machine registered to run at boot.
func (n *Node) boot() {
	defer n.resumes.Done()
	n.Host.Reboot()
	argv := n.Sandbox.ResumeCommand()
	if len(argv) == 0 {
		return
	}
	n.applying.Lock()
	defer n.applying.Unlock()
	var out bytes.Buffer
	code := agent.Main(context.Background(), argv[1:], agent.Env{OS: n.Sandbox, Stdout: &out, Stderr: &out, Executable: argv[0]})
	n.mu.Lock()
	fmt.Fprintf(&n.bootLog, "%s boot: %s exited %d\n%s", time.Now().Format(time.RFC3339), strings.Join(argv, " "), code, out.String())
	n.mu.Unlock()
}

// AgentDigests lists the SHA-256 of every agent binary the node ran, in order.
func (n *Node) AgentDigests() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.digests)
}

// BootLog is what the agents run at boot printed.
func (n *Node) BootLog() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bootLog.String()
}

// Close stops the node's server and waits for a running boot to finish.
func (n *Node) Close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.resumes.Wait()
	if n.win != nil {
		n.win.Close()
	}
	n.Host.Reboot()
}

// standInKubeadm answers `kubeadm token create` with a fresh token.
func standInKubeadm(_ context.Context, _ *host.Host, p *host.Process) int {
	if len(p.Args) >= 3 && p.Args[1] == "token" && p.Args[2] == "create" {
		fmt.Fprintln(p.Stdout, token())
		return 0
	}
	fmt.Fprintf(p.Stderr, "kubeadm: the lab's stand-in control plane answers `token create` only, not %q\n", strings.Join(p.Args[1:], " "))
	return 1
}

// standInKubectl answers drain and node deletion as a cluster without pods would.
func standInKubectl(_ context.Context, _ *host.Host, p *host.Process) int {
	args := slices.DeleteFunc(slices.Clone(p.Args[1:]), func(a string) bool { return strings.HasPrefix(a, "-") })
	// `--kubeconfig FILE` leaves FILE behind once flags are dropped.
	if len(args) > 0 && strings.HasSuffix(args[0], ".conf") {
		args = args[1:]
	}
	switch {
	case len(args) >= 2 && args[0] == "drain":
		fmt.Fprintf(p.Stdout, "node/%s cordoned\nnode/%s drained\n", args[1], args[1])
		return 0
	case len(args) >= 3 && args[0] == "delete" && args[1] == "node":
		fmt.Fprintf(p.Stdout, "node %q deleted\n", args[2])
		return 0
	}
	fmt.Fprintf(p.Stderr, "kubectl: the lab's stand-in control plane answers drain and delete node only, not %q\n", strings.Join(p.Args[1:], " "))
	return 1
}

func token() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 22)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b[:6]) + "." + string(b[6:])
}
