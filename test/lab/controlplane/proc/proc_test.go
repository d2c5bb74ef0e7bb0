package proc

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:0050":                         "0.0.0.0:80",
		"00000000000000000000000001000000:0016": "[::1]:22",
		"0000000000000000FFFF00000100007F:0016": "127.0.0.1:22",
	} {
		got, err := parseProcAddr(in)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseProcAddr("zz:1"); err == nil {
		t.Error("parseProcAddr accepted garbage")
	}
}

// TestStopKillsGroup checks that Stop also ends what the process started.
func TestStopKillsGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process groups and /proc are Linux here")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The shell ignores SIGTERM, so only the group SIGKILL ends it and its child.
	p, err := Start("sh", "/bin/sh", []string{"-c", "trap '' TERM; sleep 300 & echo $! > " + pidFile + "; wait"}, filepath.Join(dir, "sh.log"))
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for deadline := time.Now().Add(5 * time.Second); child == 0; {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		} else if time.Now().After(deadline) {
			t.Fatal("the shell did not start its child")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop(200 * time.Millisecond)
	if exited, _ := p.Exited(); !exited {
		t.Fatal("Stop returned before the process exited")
	}
	// Dead means gone or a zombie waiting for init to reap it.
	alive := func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		if err != nil {
			return false
		}
		_, rest, _ := strings.Cut(string(b), ") ")
		return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
	}
	for deadline := time.Now().Add(2 * time.Second); alive(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the child %d outlived Stop", child)
		}
	}
	if !strings.Contains(p.ExitError().Error(), "killed") {
		t.Errorf("ExitError = %v, want the kill named", p.ExitError())
	}
}

func TestCheckBins(t *testing.T) {
	err := CheckBins(t.TempDir(), "etcd", "hollow-kubelet")
	if err == nil || !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "make lab-bins") || !strings.Contains(err.Error(), "hack/k8s-bins.sh etcd hollow-kubelet") {
		t.Errorf("CheckBins on an empty folder: %v, want ErrMissing and the build commands", err)
	}
}

// TestExitErrorQuotesTheCause: a program that gives up and then logs on
// while it stops; the error quotes the line that says why.
func TestExitErrorQuotesTheCause(t *testing.T) {
	script := `echo 'I1122 starting'; echo 'Error: failed to listen on 127.0.0.1:6443: bind: address already in use'; ` +
		`for i in $(seq 30); do echo "E1122 unable to reconcile role $i: connection refused"; done; exit 1`
	p, err := Start("kube-apiserver", "/bin/sh", []string{"-c", script}, filepath.Join(t.TempDir(), "apiserver.log"))
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	msg := p.ExitError().Error()
	if !strings.Contains(msg, "Error: failed to listen on 127.0.0.1:6443: bind: address already in use") || !strings.Contains(msg, "role 30") {
		t.Errorf("ExitError does not quote the cause and the end of the log:\n%s", msg)
	}
}

// TestFreePortIsBelowTheEphemeralRange: ports outgoing connections take
// are never handed out, so a chosen port is not lost to one of those.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	if lo <= minPort+1000 {
		t.Skipf("the ephemeral range starts at %d: no room below it, FreePort asks the kernel", lo)
	}
	for range 20 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < minPort || port >= lo {
			t.Fatalf("FreePort() = %d, want one in [%d, %d)", port, minPort, lo)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d from FreePort cannot be bound: %v", port, err)
		}
		l.Close()
	}
}
