// Package bastion is the lab's SSH jump host: the only real socket of the
// lab's node network, on 127.0.0.1. It authenticates the lab's bastion user
// by its pinned key and forwards direct-tcpip channels to virtual hosts by
// their virtual address (inside 127.0.0.0/8), dialling them in process with
// host.Dial. Nodes are reachable only through it, as in a private subnet.
package bastion

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
)

// Resolver finds the virtual host behind a virtual address; nil means none.
type Resolver func(addr netip.Addr) *host.Host

// Config of the bastion.
type Config struct {
	// User is the bastion login name.
	User string
	// AuthorizedKey is the pinned key User logs in with.
	AuthorizedKey ssh.PublicKey
	// HostKey is the bastion's own key; nil generates an ed25519 one.
	HostKey ssh.Signer
	// Resolve maps forwarded addresses to virtual hosts.
	Resolve Resolver
	// Lookup, when set, resolves a host name to a lab address, as the
	// bastion's DNS resolver would (load balancers have DNS names).
	Lookup func(name string) (netip.Addr, bool)
}

// Bastion is a running jump host.
type Bastion struct {
	ln      net.Listener
	hostKey ssh.Signer
	cfg     Config

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	stop   func() bool
}

// Start listens on 127.0.0.1 (a free port) and serves until Close or the
// end of ctx.
func Start(ctx context.Context, cfg Config) (*Bastion, error) {
	if cfg.User == "" || cfg.AuthorizedKey == nil || cfg.Resolve == nil {
		return nil, errors.New("start lab bastion: User, AuthorizedKey and Resolve are required")
	}
	if cfg.HostKey == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("start lab bastion: generate host key: %w", err)
		}
		if cfg.HostKey, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, fmt.Errorf("start lab bastion: host key: %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start lab bastion: listen on 127.0.0.1: %w", err)
	}
	b := &Bastion{ln: ln, hostKey: cfg.HostKey, cfg: cfg, conns: map[net.Conn]struct{}{}}
	b.stop = context.AfterFunc(ctx, func() { b.Close() })
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

// Addr is the bastion's host:port on 127.0.0.1.
func (b *Bastion) Addr() string { return b.ln.Addr().String() }

// HostKey is the bastion's public host key, to pin.
func (b *Bastion) HostKey() ssh.PublicKey { return b.hostKey.PublicKey() }

// Close stops listening, drops every connection and waits for them to end.
func (b *Bastion) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	err := b.ln.Close()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.stop()
	b.wg.Wait()
	return err
}

// DropConnections closes every client connection, as a bastion restart
// does, and keeps listening.
func (b *Bastion) DropConnections() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
}

func (b *Bastion) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			b.serve(c)
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

func (b *Bastion) config() *ssh.ServerConfig {
	want := b.cfg.AuthorizedKey.Marshal()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() == b.cfg.User && string(key.Marshal()) == string(want) {
				return &ssh.Permissions{}, nil
			}
			return nil, fmt.Errorf("lab bastion: key %s is not authorized for %s", ssh.FingerprintSHA256(key), meta.User())
		},
		ServerVersion: "SSH-2.0-mixedk8s-lab-bastion",
	}
	cfg.AddHostKey(b.hostKey)
	return cfg
}

func (b *Bastion) serve(nc net.Conn) {
	defer nc.Close()
	conn, chans, reqs, err := ssh.NewServerConn(nc, b.config())
	if err != nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for req := range reqs {
			_ = req.Reply(req.Type == "keepalive@openssh.com", nil)
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for nch := range chans {
		if nch.ChannelType() != "direct-tcpip" {
			_ = nch.Reject(ssh.Prohibited, "the lab bastion only forwards TCP (direct-tcpip)")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.forward(ctx, nch)
		}()
	}
}

// forward connects one direct-tcpip channel to a virtual host's port.
func (b *Bastion) forward(ctx context.Context, nch ssh.NewChannel) {
	var to struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &to); err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	addr, err := netip.ParseAddr(to.Host)
	if err != nil && b.cfg.Lookup != nil {
		if a, ok := b.cfg.Lookup(to.Host); ok {
			addr, err = a, nil
		}
	}
	if err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, fmt.Sprintf("%s is not a lab address (virtual hosts have IPv4 addresses in 127.0.0.0/8)", to.Host))
		return
	}
	h := b.cfg.Resolve(addr)
	if h == nil {
		_ = nch.Reject(ssh.ConnectionFailed, fmt.Sprintf("no lab host at %s", addr))
		return
	}
	hc, err := h.Dial(ctx, int(to.Port))
	if err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, fmt.Sprintf("lab host %s: %v", h.Name, err))
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		hc.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	stop := context.AfterFunc(ctx, func() { ch.Close(); hc.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(hc, ch)
		// net.Pipe has no half close: the client ending its side ends both.
		hc.Close()
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(ch, hc)
		_ = ch.CloseWrite()
		ch.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
	ch.Close()
	hc.Close()
}
