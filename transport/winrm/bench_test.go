package winrm

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/packer-community/winrmcp/winrmcp"
)

// BenchmarkWinRMUpload uploads 20 MB to one lab host over a real 127.0.0.1
// socket, with this transport and with winrmcp (cmd `echo` of ~8 KB of base64
// per command), and reports how many times faster ours is and how many bytes
// crossed the wire (TLS records, both directions) per payload byte of our
// upload (the first of its three runs: all three move the same bytes).
func BenchmarkWinRMUpload(b *testing.B) {
	const size = 20 << 20
	l := newLab(b, nil)
	addr, err := l.srv.ListenLocal()
	if err != nil {
		b.Fatal(err)
	}
	data := randomBytes(size, 42)
	cfg := l.config(NTLM)
	cfg.Addr, cfg.Dial = addr, nil
	c := l.connect(b, cfg)

	var ours, theirs time.Duration
	var wire int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Ours takes a fraction of a second, so one load spike on a shared
		// machine skews it; take the median of three. winrmcp runs for
		// seconds over thousands of requests and averages itself.
		var runs []time.Duration
		for j := 0; j < 3; j++ {
			l.srv.ResetWireBytes()
			start := time.Now()
			if err := c.Upload(context.Background(), `C:\k\ours.bin`, bytes.NewReader(data), size, 0o644); err != nil {
				b.Fatalf("our Upload: %v", err)
			}
			runs = append(runs, time.Since(start))
			if j == 0 {
				wire += l.srv.WireBytes()
			}
		}
		slices.Sort(runs)
		ours += runs[1]

		d, err := winrmcpUpload(l, `C:\k\winrmcp.bin`, data)
		if err != nil {
			b.Fatalf("winrmcp: %v", err)
		}
		theirs += d
	}
	b.StopTimer()
	assertFile(b, l, `C:\k\ours.bin`, data)
	assertFile(b, l, `C:\k\winrmcp.bin`, data)
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x-vs-winrmcp")
	b.ReportMetric(float64(wire)/float64(size*b.N), "wire/payload")
	b.ReportMetric(ours.Seconds()/float64(b.N), "ours-s/op")
	b.ReportMetric(theirs.Seconds()/float64(b.N), "winrmcp-s/op")
}

// winrmcpUpload copies data with winrmcp over the lab's real socket, with
// packer's default of 15 commands per shell, and Basic auth (its default).
func winrmcpUpload(l *lab, path string, data []byte) (time.Duration, error) {
	addr, err := l.srv.ListenLocal()
	if err != nil {
		return 0, err
	}
	cp, err := winrmcp.New(addr, &winrmcp.Config{
		Auth:                  winrmcp.Auth{User: labUser, Password: labPassword},
		Https:                 true,
		CACertBytes:           l.cert.certPEM,
		TLSServerName:         labHostName,
		ConnectTimeout:        30 * time.Second,
		OperationTimeout:      60 * time.Second,
		MaxOperationsPerShell: 15,
	})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = cp.Write(path, bytes.NewReader(data))
	return time.Since(start), err
}

func splitAddr(t testing.TB, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, port
}
