package proc

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Socket is one TCP socket a process holds.
type Socket struct {
	Local, Remote netip.AddrPort
	// Listen says whether the socket is listening (Remote is then unspecified).
	Listen bool
}

// Sockets lists the TCP sockets the process holds, from /proc (Linux only),
// so tests can check that the lab listens and dials on 127.0.0.1 only.
func (p *Process) Sockets() ([]Socket, error) {
	pid := strconv.Itoa(p.Pid())
	fds, err := os.ReadDir(filepath.Join("/proc", pid, "fd"))
	if err != nil {
		return nil, fmt.Errorf("list the sockets of %s: %w", p.Name, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join("/proc", pid, "fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []Socket
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join("/proc", pid, "net", table))
		if err != nil {
			return nil, fmt.Errorf("list the sockets of %s: %w", p.Name, err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			local, err1 := parseProcAddr(fields[1])
			remote, err2 := parseProcAddr(fields[2])
			if err1 != nil || err2 != nil {
				f.Close()
				return nil, fmt.Errorf("list the sockets of %s: /proc/%s/net/%s: %v %v", p.Name, pid, table, err1, err2)
			}
			out = append(out, Socket{Local: local, Remote: remote, Listen: fields[3] == "0A"})
		}
		f.Close()
	}
	return out, nil
}

// parseProcAddr reads "0100007F:1F90": the address as little-endian 32-bit
// words in hex, then the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(a)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// OffLoopback lists the sockets that listen or are connected anywhere but
// the loopback addresses.
func OffLoopback(socks []Socket) []Socket {
	var out []Socket
	for _, s := range socks {
		if !s.Local.Addr().IsLoopback() || (!s.Listen && !s.Remote.Addr().IsLoopback()) {
			out = append(out, s)
		}
	}
	return out
}
