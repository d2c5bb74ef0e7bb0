//go:build !linux

package proc

import (
	"os"
	"syscall"
)

// sysProcAttr: outside Linux there is no Pdeathsig, and the lab's binaries
// are built for Linux anyway; Stop kills the process itself.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(p *os.Process, kill bool) {
	if kill {
		_ = p.Kill()
		return
	}
	_ = p.Signal(os.Interrupt)
}
