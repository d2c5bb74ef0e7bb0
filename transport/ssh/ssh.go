// Package ssh reaches Linux nodes (and bastions) over SSH with
// golang.org/x/crypto/ssh; Conn implements transport.Conn.
//
// Dial authenticates with the provisioner's ed25519 key and accepts only the
// host key the provisioner generated and injected through first-boot data: there is
// no trust-on-first-use and no way to skip the check. Dial retries what a
// booting host does (refused connections, resets, a closed port behind a
// bastion) until its context ends, retries credential refusals only for
// Config.RetryAuthFor, and never retries a host key mismatch.
//
// Run streams a command's output and returns its exit code; Upload writes a
// file over SFTP next to its target and renames it into place, so the target
// is either the old file or the whole new one. A bastion is just another
// Conn: Bastion (or Conn.DialContext) yields a transport.DialFunc that this
// package and transport/winrm use to reach nodes behind it.
package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/transport"
)

// Config says where a node is and how to prove both sides' identities.
type Config struct {
	// Addr is host:port of the node's sshd (as seen from the bastion, if any).
	Addr string
	// User is the login user; "root" needs no sudo.
	User string
	// Signer is the provisioner's private key (ed25519).
	Signer ssh.Signer
	// HostKey is the node's pinned host key, the public half of the key the
	// provisioner injected. Required: a node is never trusted on first use.
	HostKey ssh.PublicKey
	// Dial opens the TCP connection; nil uses a net.Dialer, a bastion's
	// DialContext goes through the bastion.
	Dial transport.DialFunc
	// Sudo runs commands and uploads through `sudo -n` when User is not root.
	Sudo bool
	// SFTPServer is the sftp-server program started through sudo for uploads
	// when Sudo applies; empty means /usr/lib/openssh/sftp-server (Debian,
	// Ubuntu). RHEL-like images use /usr/libexec/openssh/sftp-server.
	SFTPServer string
	// KeepAlive is how often a keepalive@openssh.com request checks that the
	// peer is alive; a peer that does not answer within one interval is
	// declared dead and the connection closed. Zero means 15s, negative
	// disables keepalives.
	KeepAlive time.Duration
	// RetryAuthFor is how long credential refusals are retried, counted from
	// the first refusal: first-boot scripts install keys after sshd starts.
	// Zero means the first refusal is final.
	RetryAuthFor time.Duration
	// SkipChecksum skips the remote `sha256sum` of every upload before it
	// replaces its target (the size is always checked). Only for hosts
	// without coreutils.
	SkipChecksum bool
}

const (
	defaultKeepAlive  = 15 * time.Second
	defaultSFTPServer = "/usr/lib/openssh/sftp-server"
	// handshakeTimeout bounds one attempt on a port that accepts but never
	// speaks SSH (a host still booting behind a load balancer or NAT).
	handshakeTimeout = 30 * time.Second
)

// Backoff between attempts; variables so tests can shorten them.
var (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 3 * time.Second
)

// Conn is one authenticated SSH connection to a node. It is safe for
// concurrent use: every Run and Upload opens its own channel.
type Conn struct {
	cfg    Config
	client *ssh.Client
	// dead is closed once the SSH connection is gone (peer closed, network
	// dropped, keepalive unanswered or Close).
	dead      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ transport.Conn = (*Conn)(nil)

// Dial connects and authenticates to cfg.Addr, retrying as the package doc
// says until ctx ends.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	var authFailedSince time.Time
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		c, err := dialOnce(ctx, cfg)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (attempt %d; gave up: %w)", err, attempt, ctx.Err())
		}
		switch {
		case errors.Is(err, transport.ErrNotReady):
			authFailedSince = time.Time{}
		case errors.Is(err, transport.ErrAuth):
			if authFailedSince.IsZero() {
				authFailedSince = time.Now()
			}
			if time.Since(authFailedSince) >= cfg.RetryAuthFor {
				return nil, fmt.Errorf("%w (attempt %d, refused for %s)", err, attempt, time.Since(authFailedSince).Round(time.Millisecond))
			}
		default:
			return nil, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (attempt %d; gave up: %w)", err, attempt, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (cfg *Config) check() error {
	var missing []string
	if cfg.Addr == "" {
		missing = append(missing, "Addr (host:port)")
	}
	if cfg.User == "" {
		missing = append(missing, "User")
	}
	if cfg.Signer == nil {
		missing = append(missing, "Signer (the provisioner's private key)")
	}
	if cfg.HostKey == nil {
		missing = append(missing, "HostKey (the node's pinned host key; nodes are never trusted on first use)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("ssh to %q: config is missing %s; fix: set them", cfg.Addr, strings.Join(missing, ", "))
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return fmt.Errorf("ssh to %q: address is not host:port: %v; fix: add the port, e.g. %s:22", cfg.Addr, err, cfg.Addr)
	}
	return nil
}

// dialOnce makes one attempt and classifies its failure with the sentinels.
func dialOnce(ctx context.Context, cfg Config) (*Conn, error) {
	dial := cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", cfg.Addr)
	if err != nil {
		if ctx.Err() != nil {
			// The host never answered before ctx ended: still not ready, whatever the last attempt saw.
			return nil, fmt.Errorf("ssh to %s: %w: dial: %w", cfg.Addr, transport.ErrNotReady, ctx.Err())
		}
		if errors.Is(err, transport.ErrNotReady) || !isPermanentDialError(err) {
			return nil, fmt.Errorf("ssh to %s: %w: %w", cfg.Addr, transport.ErrNotReady, err)
		}
		return nil, fmt.Errorf("ssh to %s: dial: %w", cfg.Addr, err)
	}

	// Close the half-open connection when ctx ends or the handshake hangs:
	// NewClientConn has no context of its own.
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	stop := context.AfterFunc(hctx, func() { nc.Close() })
	sshc, chans, reqs, err := ssh.NewClientConn(nc, cfg.Addr, &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)},
		HostKeyCallback:   pinned(cfg.Addr, cfg.HostKey),
		HostKeyAlgorithms: hostKeyAlgorithms(cfg.HostKey),
	})
	closedByCtx := !stop()
	handshakeTimedOut := hctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil {
		switch {
		case errors.Is(err, transport.ErrIdentityMismatch):
			return nil, err
		case closedByCtx && ctx.Err() != nil:
			return nil, fmt.Errorf("ssh to %s: %w: handshake: %w", cfg.Addr, transport.ErrNotReady, ctx.Err())
		case handshakeTimedOut:
			return nil, fmt.Errorf("ssh to %s: %w: no SSH handshake within %s", cfg.Addr, transport.ErrNotReady, handshakeTimeout)
		case isAuthError(err):
			return nil, fmt.Errorf("ssh to %s as %s: %w with key %s: %w; fix: put the provisioner's public key in ~%s/.ssh/authorized_keys through the node's first-boot data, or check Config.User",
				cfg.Addr, cfg.User, transport.ErrAuth, ssh.FingerprintSHA256(cfg.Signer.PublicKey()), err, cfg.User)
		case noCommonHostKeyAlgorithm(err):
			return nil, fmt.Errorf("ssh to %s: %w: the node offers no %s host key, so it cannot show the pinned %s: %w; fix: inject the pinned host key through first-boot data, or pin the key the node really has",
				cfg.Addr, transport.ErrIdentityMismatch, cfg.HostKey.Type(), ssh.FingerprintSHA256(cfg.HostKey), err)
		case isDropped(err):
			return nil, fmt.Errorf("ssh to %s: %w: connection dropped during the handshake: %w", cfg.Addr, transport.ErrNotReady, err)
		default:
			return nil, fmt.Errorf("ssh to %s: handshake: %w", cfg.Addr, err)
		}
	}
	c := &Conn{
		cfg:    cfg,
		client: ssh.NewClient(sshc, chans, reqs),
		dead:   make(chan struct{}),
	}
	go func() {
		_ = c.client.Wait()
		close(c.dead)
	}()
	if ka := cfg.keepAlive(); ka > 0 {
		go c.keepAlive(ka)
	}
	return c, nil
}

func (cfg *Config) keepAlive() time.Duration {
	if cfg.KeepAlive == 0 {
		return defaultKeepAlive
	}
	return cfg.KeepAlive
}

// pinned accepts exactly want. A mismatch is either a wrong address or an
// attack, so the error says both fingerprints and how to tell which.
func pinned(addr string, want ssh.PublicKey) ssh.HostKeyCallback {
	wantBytes := want.Marshal()
	return func(_ string, _ net.Addr, got ssh.PublicKey) error {
		if string(got.Marshal()) != string(wantBytes) {
			return fmt.Errorf("ssh to %s: %w: host key mismatch: got %s %s, pinned %s %s; fix: check that the address belongs to this node and that its first-boot data installed the generated host key (a reused address or a rebuilt node shows this too); never disable the check",
				addr, transport.ErrIdentityMismatch, got.Type(), ssh.FingerprintSHA256(got), want.Type(), ssh.FingerprintSHA256(want))
		}
		return nil
	}
}

// hostKeyAlgorithms asks the server for the pinned key's type only, so a
// server with several host keys shows the one we pinned.
func hostKeyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{k.Type()}
}

// isAuthError recognises x/crypto's exhausted-authentication error, which
// has no type of its own.
func isAuthError(err error) bool {
	return strings.Contains(err.Error(), "ssh: unable to authenticate")
}

func noCommonHostKeyAlgorithm(err error) bool {
	var ae *ssh.AlgorithmNegotiationError
	return errors.As(err, &ae) || strings.Contains(err.Error(), "no common algorithm for host key")
}

// isDropped reports a connection that ended under us: what a host that is
// booting, rebooting or restarting sshd looks like.
func isDropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrClosedPipe) ||
		// pkg/sftp's word for the channel dying under an open request.
		errors.Is(err, sftp.ErrSSHFxConnectionLost)
}

// isPermanentDialError is a dial failure that waiting cannot fix: a bastion
// that forbids the forward, or an address that cannot be parsed. Everything
// else (refused, unreachable, timed out, bastion cannot connect yet) is a
// host that is not up yet.
func isPermanentDialError(err error) bool {
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) {
		return oce.Reason == ssh.Prohibited || oce.Reason == ssh.UnknownChannelType
	}
	var ae *net.AddrError
	return errors.As(err, &ae) || errors.Is(err, ErrBastionClosed)
}

// keepAlive declares the peer dead, and closes the connection, when a
// keepalive gets no answer within one interval. Any answer counts:
// OpenSSH answers keepalive@openssh.com with a failure.
func (c *Conn) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-t.C:
		}
		answered := make(chan struct{})
		go func() {
			_, _, _ = c.client.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		timeout := time.NewTimer(every)
		select {
		case <-answered:
			timeout.Stop()
		case <-c.dead:
			timeout.Stop()
			return
		case <-timeout.C:
			c.client.Close()
			return
		}
	}
}

// Close closes the connection; it is safe to call twice.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		err := c.client.Close()
		if err != nil && !errors.Is(err, net.ErrClosed) && !isDropped(err) {
			c.closeErr = fmt.Errorf("close ssh connection to %s: %w", c.cfg.Addr, err)
		}
	})
	return c.closeErr
}

// Alive reports whether the connection is still up.
func (c *Conn) Alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

// diedWithin waits up to d for the connection to be declared dead: a
// session that lost its exit status races the connection's own teardown.
func (c *Conn) diedWithin(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.dead:
		return true
	case <-t.C:
		return false
	}
}

// useSudo reports whether commands need the `sudo -n` prefix.
func (c *Conn) useSudo() bool { return c.cfg.Sudo && c.cfg.User != "root" }

// newSession opens a session channel, giving up when ctx ends.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.client.NewSession()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		// A channel open that fails as the connection goes down races its teardown.
		if r.err != nil && (!c.Alive() || c.diedWithin(time.Second)) {
			return nil, fmt.Errorf("%w: connection is closed: %w", transport.ErrRebooting, r.err)
		}
		return r.s, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				r.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		safe := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)
		return !safe
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// generateHostKey makes an ed25519 key pair for a node's sshd (or for the
// provisioner itself): the signer, the public key in authorized_keys form
// ("ssh-ed25519 AAAA...") and the private key in OpenSSH PEM form for user
// data. The PEM is a secret: keep it out of logs and errors.
func generateHostKey() (ssh.Signer, string, []byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, "", nil, fmt.Errorf("generate ed25519 key: make signer: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, "", nil, fmt.Errorf("generate ed25519 key: encode private key: %w", err)
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	return signer, authorized, pem.EncodeToMemory(block), nil
}
