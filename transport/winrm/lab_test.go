package winrm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/test/lab/winrmd"
)

const (
	labUser     = "Administrator"
	labPassword = "Lab-Pa55word!"
	labHostName = "win-node-1"
	labAddr     = "127.0.0.21:5986"
)

// One RSA key per test binary: key generation is the slow part of a lab.
var labCert = sync.OnceValues(func() (*testCert, error) {
	certPEM, keyPEM, cert, err := GenerateCertificate(labHostName, []string{"127.0.0.21"})
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &testCert{certPEM: certPEM, cert: cert, pair: pair}, nil
})

type testCert struct {
	certPEM []byte
	cert    *x509.Certificate
	pair    tls.Certificate
}

// lab is one virtual Windows host with its WinRM service.
type lab struct {
	h    *host.Host
	srv  *winrmd.Server
	cert *testCert
}

func newLab(t testing.TB, tune func(*winrmd.Config)) *lab {
	t.Helper()
	tc, err := labCert()
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(labHostName, host.Windows, netip.MustParseAddr("127.0.0.21"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := winrmd.Config{Certificate: tc.pair, Users: map[string]string{labUser: labPassword}}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := winrmd.New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &lab{h: h, srv: srv, cert: tc}
}

// dial reaches the virtual host in process, as the bastion would.
func (l *lab) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != labAddr {
		return nil, fmt.Errorf("lab dial: unexpected address %s", addr)
	}
	return l.h.Dial(ctx, 5986)
}

func (l *lab) config(auth Auth) Config {
	return Config{Addr: labAddr, User: labUser, Password: labPassword, Auth: auth, Certificate: l.cert.cert, Dial: l.dial}
}

func (l *lab) connect(t testing.TB, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
