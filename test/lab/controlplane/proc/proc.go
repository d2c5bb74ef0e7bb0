// Package proc runs the lab's Kubernetes binaries (etcd, kube-apiserver,
// kube-controller-manager, hollow-kubelet) as child processes that cannot outlive
// the lab: each runs in its own process group, which Stop signals as a
// whole, and on Linux the kernel kills it when the lab process dies
// (Pdeathsig), so a test killed by a timeout leaves no orphan listening on
// 127.0.0.1.
//
// A process's stdout and stderr go to one log file; errors quote its tail.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process is one running binary.
type Process struct {
	// Name is what errors call the process, e.g. "kube-apiserver".
	Name string
	// Log is the file that holds its stdout and stderr.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes

	stopOnce sync.Once
}

// Start runs bin with args, its output appended to logPath. env is added to
// the lab's environment.
func Start(name, bin string, args []string, logPath string, env ...string) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("start %s: create the log folder: %w", name, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: open its log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w; fix: run `make lab-bins` (or `hack/k8s-bins.sh %s`)", name, bin, err, filepath.Base(bin))
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited says whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// ExitError describes an exit for an error message: the status and the log's tail.
func (p *Process) ExitError() error {
	_, err := p.Exited()
	status := "exited"
	if err != nil {
		status = err.Error()
	}
	if causes := p.causes(5); causes != "" {
		return fmt.Errorf("%s stopped (%s); its log %s says why:\n%s\nand ends:\n%s", p.Name, status, p.Log, causes, p.Tail(10))
	}
	return fmt.Errorf("%s stopped (%s); the end of its log %s:\n%s", p.Name, status, p.Log, p.Tail(20))
}

// fatalLine matches what a Kubernetes program or etcd prints when it gives
// up: a klog fatal line, cobra's "Error:", or etcd's fatal level. The lines
// a stopping program prints after it can bury them.
var fatalLine = regexp.MustCompile(`^(F\d{4} |Error: |\{"level":"fatal")|address already in use`)

// causes is up to n of the log's lines that say why the process gave up.
func (p *Process) causes(n int) string {
	data, err := os.ReadFile(p.Log)
	if err != nil {
		return ""
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		if fatalLine.MatchString(line) && len(out) < n {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}

// Stop asks the process group to end (SIGTERM), kills it after grace, and
// waits for the process to be reaped. It is safe to call more than once.
func (p *Process) Stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		signalGroup(p.cmd.Process, false)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
		// The group may hold children that outlived the leader.
		signalGroup(p.cmd.Process, true)
		<-p.done
	})
}

// Tail is the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	data, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.Log, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogContains says whether the log holds s.
func (p *Process) LogContains(s string) bool {
	data, err := os.ReadFile(p.Log)
	return err == nil && bytes.Contains(data, []byte(s))
}

// RSS is the process's resident memory in bytes, from /proc/PID/status (Linux only).
func (p *Process) RSS() (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(p.Pid()), "status"))
	if err != nil {
		return 0, fmt.Errorf("read the memory of %s: %w", p.Name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read the memory of %s: VmRSS %q: %w", p.Name, v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("read the memory of %s: no VmRSS in /proc/%d/status", p.Name, p.Pid())
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// below the kernel's ephemeral range when there is room: a port from that
// range can be taken by any outgoing connection before the caller binds it.
// Another process may still take it first; the caller's start then fails
// with "address already in use" (see PortTaken).
func FreePort() (int, error) {
	if lo := ephemeralLow(); lo > minPort+1000 {
		for range 100 {
			port := minPort + rand.IntN(lo-minPort)
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// minPort is the lowest port FreePort picks, above the usual fixed services.
const minPort = 10000

// ephemeralLow is the start of the kernel's ephemeral port range (Linux), or 0.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	lo, _ := strconv.Atoi(f[0])
	return lo
}

// PortTaken says whether the process's log shows it could not bind a port:
// another took it between FreePort and the bind.
func (p *Process) PortTaken() bool { return p.LogContains("address already in use") }

// ErrMissing is wrapped by BinDir's error when a binary is not built.
var ErrMissing = errors.New("the lab's Kubernetes binaries are missing")

// BinDir finds <repo>/bin, the folder hack/k8s-bins.sh links the binaries
// into, by walking up from the working directory to the module root, and
// checks that every named binary is there.
func BinDir(names ...string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(data, []byte("module github.com/mixedk8s/mixedk8s\n")) {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find the mixedk8s repository from the working directory: no go.mod of module github.com/mixedk8s/mixedk8s above it; fix: run from inside the clone or set the BinDir explicitly")
		}
		dir = parent
	}
	bin := filepath.Join(dir, "bin")
	return bin, CheckBins(bin, names...)
}

// CheckBins checks that every named binary is an executable in dir.
func CheckBins(dir string, names ...string) error {
	var missing []string
	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w from %s: %s; fix: run `make lab-bins` (or `hack/k8s-bins.sh %s`)", ErrMissing, dir, strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	return nil
}

// Run runs a short-lived command to its end, or stops it when ctx ends.
func Run(ctx context.Context, name, bin string, args []string, logPath string, env ...string) error {
	p, err := Start(name, bin, args, logPath, env...)
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Stop(time.Second)
		return fmt.Errorf("%s: %w; the end of its log %s:\n%s", name, ctx.Err(), logPath, p.Tail(20))
	}
	if _, err := p.Exited(); err != nil {
		return p.ExitError()
	}
	return nil
}
