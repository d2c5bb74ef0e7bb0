// Package host is one virtual machine of the lab: a sandbox root on the real
// disk that stands for the machine's file system, a small command interpreter
// that understands the command shapes the provisioner (and conformant
// third-party clients) send, network services reached through in-process
// connections (never a socket of their own), and reboots that drop every
// connection.
//
// The protocol servers (SSH in test/lab/sshd, WinRM in test/lab/winrmd) turn
// sessions into Host.Exec calls and file transfers into sandbox writes. A
// command that runs a pushed node agent goes to the Host's AgentRunner, which
// runs the agent in its sandbox mode.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// OS of a virtual host.
const (
	Linux   = "linux"
	Windows = "windows"
)

// Process is one command the host runs.
type Process struct {
	// Line is the command line as received.
	Line string
	// Args are the parsed words; Args[0] is the program as written.
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Command runs one program on the host and returns its exit code.
type Command func(ctx context.Context, h *Host, p *Process) int

// AgentRunner runs a pushed node agent binary (agentPath is its sandbox path
// on the real disk) with args, in the agent's sandbox mode for this host.
type AgentRunner func(ctx context.Context, h *Host, agentPath string, p *Process) int

// ACLs is a Windows machine's model of who may read what.
type ACLs interface {
	// Created records that path was created with its own protected DACL
	// (an SDDL string), or, with sddl empty, with the DACL it inherits.
	CreatedWithACL(path, sddl string) error
}

// Host is one virtual machine.
type Host struct {
	Name string
	OS   string
	// Addr is the virtual address inside 127.0.0.0/8 that the bastion forwards to.
	Addr netip.Addr
	// Root is the sandbox folder on the real disk that stands for the host's file system.
	Root string
	// Agent runs pushed node agents; nil means agent commands fail.
	Agent AgentRunner
	// ACLs, when set, is the machine's model of Windows ACLs, which uploads
	// that set a security descriptor report to.
	ACLs ACLs

	mu       sync.Mutex
	commands map[string]Command
	services map[int]func(net.Conn)
	conns    map[net.Conn]struct{}
	reboots  int
}

// New makes a host whose sandbox is root (created if missing).
func New(name, osName string, addr netip.Addr, root string) (*Host, error) {
	if osName != Linux && osName != Windows {
		return nil, fmt.Errorf("new lab host %q: os %q is neither %q nor %q", name, osName, Linux, Windows)
	}
	if !addr.Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(addr) {
		return nil, fmt.Errorf("new lab host %q: address %s is outside 127.0.0.0/8; lab hosts never use other addresses", name, addr)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("new lab host %q: create sandbox: %w", name, err)
	}
	h := &Host{
		Name:     name,
		OS:       osName,
		Addr:     addr,
		Root:     root,
		commands: map[string]Command{},
		services: map[int]func(net.Conn){},
		conns:    map[net.Conn]struct{}{},
	}
	// A host speaks its OS's commands whichever protocol server fronts it.
	if osName == Linux {
		InstallLinuxCommands(h)
	} else {
		InstallWindowsCommands(h)
	}
	return h, nil
}

// Path maps a path on the virtual host to the sandbox on the real disk:
// `C:\k\kubelet.exe` becomes Root/C/k/kubelet.exe and `/etc/x` Root/etc/x.
// A path that would leave the sandbox is refused.
func (h *Host) Path(p string) (string, error) {
	orig := p
	drive := ""
	if h.OS == Windows {
		p = strings.ReplaceAll(p, `\`, "/")
		switch {
		case len(p) >= 2 && p[1] == ':':
			drive, p = strings.ToUpper(p[:1]), p[2:]
		case strings.HasPrefix(p, "/"):
			drive = "C"
		default:
			return "", fmt.Errorf("lab host %s: path %q is not absolute", h.Name, orig)
		}
	} else if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("lab host %s: path %q is not absolute", h.Name, orig)
	}
	// Clean below the drive letter, so `C:\..\x` stays on drive C as on Windows.
	clean := path.Clean("/" + p)
	if drive != "" {
		clean = "/" + drive + clean
	}
	full := filepath.Join(h.Root, filepath.FromSlash(clean))
	if full != h.Root && !strings.HasPrefix(full, h.Root+string(filepath.Separator)) {
		return "", fmt.Errorf("lab host %s: path %q leaves the sandbox", h.Name, orig)
	}
	return full, nil
}

// Handle registers a program. name is matched case-insensitively against the
// base name of Args[0] without ".exe".
func (h *Host) Handle(name string, c Command) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commands[strings.ToLower(name)] = c
}

// Exec runs a command line the way the host's shell would: the first word
// picks a registered program, a pushed agent, or fails as "not found".
func (h *Host) Exec(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer) int {
	args, err := SplitWords(line, h.OS)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	if h.OS == Linux && len(args) > 0 && args[0] == "sudo" {
		args = args[1:]
		for len(args) > 0 && strings.HasPrefix(args[0], "-") {
			args = args[1:]
		}
	}
	if len(args) == 0 {
		return 0
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	p := &Process{Line: line, Args: args, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	return h.Run(ctx, p)
}

// Run runs an already-parsed process.
func (h *Host) Run(ctx context.Context, p *Process) int {
	prog := ProgramName(p.Args[0])
	if prog == "nodeagent" && h.Agent != nil {
		if real, err := h.Path(p.Args[0]); err == nil {
			if _, err := os.Stat(real); err == nil {
				return h.Agent(ctx, h, real, p)
			}
		}
	}
	h.mu.Lock()
	c := h.commands[prog]
	h.mu.Unlock()
	if c == nil {
		if h.OS == Windows {
			fmt.Fprintf(p.Stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", p.Args[0])
			return 9009
		}
		fmt.Fprintf(p.Stderr, "sh: 1: %s: not found\n", p.Args[0])
		return 127
	}
	return c(ctx, h, p)
}

// ProgramName is the lower-case base name of a program path without ".exe".
func ProgramName(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	p = strings.ToLower(path.Base(p))
	return strings.TrimSuffix(p, ".exe")
}

// Listen registers the service behind a port of the host's virtual address.
func (h *Host) Listen(port int, serve func(net.Conn)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.services[port] = serve
}

// ErrConnRefused is what dialling a port with no service returns.
var ErrConnRefused = errors.New("connection refused")

// Dial connects to a port of the host in process. The connection is dropped
// when the host reboots.
func (h *Host) Dial(ctx context.Context, port int) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	serve := h.services[port]
	if serve == nil {
		h.mu.Unlock()
		return nil, fmt.Errorf("dial %s:%d: %w", h.Addr, port, ErrConnRefused)
	}
	client, server := net.Pipe()
	h.conns[server] = struct{}{}
	h.mu.Unlock()
	go func() {
		defer func() {
			h.mu.Lock()
			delete(h.conns, server)
			h.mu.Unlock()
			server.Close()
		}()
		serve(server)
	}()
	return client, nil
}

// Reboot drops every open connection, as a real reboot does, and counts it.
func (h *Host) Reboot() {
	h.mu.Lock()
	h.reboots++
	conns := make([]net.Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Reboots is how many times the host rebooted.
func (h *Host) Reboots() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reboots
}
