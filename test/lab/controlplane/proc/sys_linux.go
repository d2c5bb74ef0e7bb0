//go:build linux

package proc

import (
	"os"
	"syscall"
)

// sysProcAttr starts the child in its own process group and has the kernel
// kill it when the thread that started it (and so the lab process) dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(p *os.Process, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	// The group id is the leader's pid (Setpgid); a group already gone is fine.
	_ = syscall.Kill(-p.Pid, sig)
}
