// Package node is one virtual machine of the lab as the provisioner meets
// it: a lab host whose SSH (Linux) or WinRM-over-HTTPS (Windows) server is
// set up from the identity first boot installs, and whose pushed node agents
// run in process against a sandbox that records every effect instead of
// changing this machine. A reboot the agent asks for drops every connection
// and runs the agent's registered resume command afterwards, as a real
// boot-time task would.
//
// The Kubernetes side (the kubeadm and kubectl the agent runs, the kubelet
// service it starts) reaches the lab through Config.Hooks.
package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
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
	"github.com/mixedk8s/mixedk8s/test/lab/kubeadmstub"
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
	// ComputerName is the Windows computer name first boot set, active at
	// once or, with ComputerNameAtReboot, pending until the next reboot.
	// Empty: the image's own name.
	ComputerName         string
	ComputerNameAtReboot bool
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
	hostname := fresh(cfg)
	if cfg.OS == host.Windows && cfg.ComputerName != "" && !cfg.ComputerNameAtReboot {
		hostname = sandbox.NetBIOSName(cfg.ComputerName)
	}
	id, err := sandbox.Emulate(emulate, hostname)
	if err != nil {
		return nil, fmt.Errorf("lab node %s: %w", cfg.Name, err)
	}
	sb, err := sandbox.New(cfg.Root, id)
	if err != nil {
		return nil, fmt.Errorf("lab node %s: %w", cfg.Name, err)
	}
	if cfg.OS == host.Windows && cfg.ComputerName != "" && cfg.ComputerNameAtReboot {
		if _, pending, _ := sb.ComputerName(context.Background()); !strings.EqualFold(pending, sandbox.NetBIOSName(cfg.ComputerName)) {
			if err := sb.SetComputerName(context.Background(), cfg.ComputerName); err != nil {
				return nil, fmt.Errorf("lab node %s: first boot: %w", cfg.Name, err)
			}
		}
	}
	// kubeadm leaves its files on a node whose hooks do not run a control plane.
	kubeadmstub.Install(sb)
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
	if cfg.OS == host.Windows {
		h.ACLs = sb
	}

	// First boot installs the identity; later boots keep what the disk holds.
	if _, err := sb.Boot(bootAccess(cfg.Identity)); err != nil {
		return nil, fmt.Errorf("lab node %s: first boot: %w", cfg.Name, err)
	}
	switch cfg.OS {
	case host.Linux:
		if err := n.serveSSH(cfg.Identity); err != nil {
			return nil, fmt.Errorf("lab node %s: %w", cfg.Name, err)
		}
	case host.Windows:
		if err := n.serveWinRM(); err != nil {
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

// bootAccess is what first boot installs of an identity.
func bootAccess(id clouds.NodeIdentity) sandbox.Access {
	a := sandbox.Access{SSHHostKeyPEM: id.SSHHostKeyPEM, WinRMCertPEM: id.WinRMCertPEM, WinRMKeyPEM: id.WinRMKeyPEM}
	if id.AdminPassword != "" {
		a.Passwords = map[string]string{id.AdminUser: id.AdminPassword}
	}
	return a
}

// serveSSH serves the host key sshd loaded last (first boot's, or the one
// the agent installed and reloaded sshd with) and first boot's authorized keys.
func (n *Node) serveSSH(id clouds.NodeIdentity) error {
	loaded := func() (ssh.Signer, error) {
		signer, err := ssh.ParsePrivateKey([]byte(n.Sandbox.Access().SSHHostKeyPEM))
		if err != nil {
			return nil, fmt.Errorf("sshd: no hostkeys available: %w", err)
		}
		return signer, nil
	}
	if _, err := loaded(); err != nil {
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
	n.ssh = sshd.Serve(n.Host, sshd.Config{LoadedHostKey: loaded, AuthorizedKeys: map[string][]ssh.PublicKey{id.AdminUser: keys}})
	return nil
}

// serveWinRM serves the certificate the listener presents now and the
// accounts' passwords now, as the machine holds them.
func (n *Node) serveWinRM() error {
	current := func() (tls.Certificate, map[string]string, error) {
		a := n.Sandbox.Access()
		pair, err := tls.X509KeyPair([]byte(a.WinRMCertPEM), []byte(a.WinRMKeyPEM))
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("the WinRM listener's certificate does not load: %w", err)
		}
		return pair, a.Passwords, nil
	}
	if _, _, err := current(); err != nil {
		return fmt.Errorf("first boot: %w", err)
	}
	srv, err := winrmd.New(n.Host, winrmd.Config{Current: current})
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
