package ssh

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/test/lab/sshd"
)

// lab is one virtual Linux host with its sshd, reached in process.
type lab struct {
	h       *host.Host
	srv     *sshd.Server
	client  ssh.Signer
	hostKey ssh.Signer
}

var nextAddr = struct {
	sync.Mutex
	n byte
}{}

func newLab(t *testing.T, serve bool) *lab {
	t.Helper()
	nextAddr.Lock()
	nextAddr.n++
	addr := netip.AddrFrom4([4]byte{127, 10, 0, nextAddr.n})
	nextAddr.Unlock()
	h, err := host.New("node", host.Linux, addr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	host.InstallLinuxCommands(h)
	l := &lab{h: h, client: newKey(t), hostKey: newKey(t)}
	if serve {
		l.serve()
	}
	t.Cleanup(h.Reboot) // drops every connection, ending the server goroutines
	return l
}

func (l *lab) serve() {
	l.srv = sshd.Serve(l.h, sshd.Config{
		HostKey:        l.hostKey,
		AuthorizedKeys: map[string][]ssh.PublicKey{"root": {l.client.PublicKey()}, "ubuntu": {l.client.PublicKey()}},
	})
}

func (l *lab) config() Config {
	return Config{
		Addr:    net.JoinHostPort(l.h.Addr.String(), "22"),
		User:    "root",
		Signer:  l.client,
		HostKey: l.hostKey.PublicKey(),
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return l.h.Dial(ctx, 22)
		},
	}
}

func (l *lab) dial(t *testing.T, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	s, _, _, err := generateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncBuffer is a bytes.Buffer safe for the session's copy goroutines.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 100)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
