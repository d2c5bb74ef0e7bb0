// Package sshd is the SSH server of a virtual Linux lab host, built on the
// server side of golang.org/x/crypto/ssh. Serve registers it on the host's
// port 22; the lab bastion forwards to it, and host.Reboot drops its
// connections.
//
// It presents the host key that first-boot data installed, accepts the authorized
// client keys per user, runs `exec` requests through host.Exec (stdin, stdout
// and stderr streamed, exit-status sent), serves the `sftp` subsystem with
// pkg/sftp's request server over the host's sandbox, and answers
// keepalive@openssh.com. It refuses pty and shell requests: the provisioner
// never asks for them.
package sshd

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
)

// Config of one host's sshd.
type Config struct {
	// HostKey is the host's private key (the one first-boot data installed).
	HostKey ssh.Signer
	// LoadedHostKey, when set, replaces HostKey: it returns the key sshd
	// loaded at its last start or reload, read for every new connection as
	// sshd's re-executed child does; connections already open keep theirs.
	LoadedHostKey func() (ssh.Signer, error)
	// AuthorizedKeys maps a user name to the client keys it accepts.
	AuthorizedKeys map[string][]ssh.PublicKey
}

// Server is the sshd of one host.
type Server struct {
	h       *host.Host
	hostKey ssh.Signer
	loaded  func() (ssh.Signer, error)

	mu         sync.Mutex
	authorized map[string][]ssh.PublicKey
	execs      []Exec
	created    []Created
}

// Created is a file an SFTP client created, with the mode it was created
// with (before any later chmod), for inspection in tests.
type Created struct {
	Path string
	Mode os.FileMode
}

// Exec is one exec request the server received, for inspection in tests.
type Exec struct {
	User string
	Line string
}

// Serve starts the host's sshd on its port 22.
func Serve(h *host.Host, cfg Config) *Server {
	s := New(h, cfg)
	h.Listen(22, s.ServeConn)
	return s
}

// New makes the sshd without registering it, for a caller that serves
// connections itself.
func New(h *host.Host, cfg Config) *Server {
	s := &Server{h: h, hostKey: cfg.HostKey, loaded: cfg.LoadedHostKey, authorized: map[string][]ssh.PublicKey{}}
	for user, keys := range cfg.AuthorizedKeys {
		s.authorized[user] = slices.Clone(keys)
	}
	return s
}

// Authorize replaces the keys user may log in with, as a first-boot script
// writing authorized_keys does.
func (s *Server) Authorize(user string, keys ...ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorized[user] = slices.Clone(keys)
}

// Execs lists the exec requests received so far.
// Created lists the files SFTP clients created, in order.
func (s *Server) Created() []Created {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.created)
}

func (s *Server) Execs() []Exec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.execs)
}

func (s *Server) config() (*ssh.ServerConfig, error) {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			keys := s.authorized[meta.User()]
			s.mu.Unlock()
			for _, k := range keys {
				if string(k.Marshal()) == string(key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, fmt.Errorf("lab host %s: key %s is not authorized for %s", s.h.Name, ssh.FingerprintSHA256(key), meta.User())
		},
		ServerVersion: "SSH-2.0-mixedk8s-lab",
	}
	key := s.hostKey
	if s.loaded != nil {
		var err error
		if key, err = s.loaded(); err != nil {
			return nil, err
		}
	}
	cfg.AddHostKey(key)
	return cfg, nil
}

// ServeConn runs one SSH connection until it ends.
func (s *Server) ServeConn(nc net.Conn) {
	defer nc.Close()
	qc := newQueuedConn(nc)
	defer qc.Close()
	cfg, err := s.config()
	if err != nil {
		return
	}
	conn, chans, reqs, err := ssh.NewServerConn(qc, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for req := range reqs {
			// OpenSSH answers unknown global requests with a failure; any
			// answer proves liveness, keepalives get a success.
			_ = req.Reply(req.Type == "keepalive@openssh.com", nil)
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "this lab host accepts session channels only")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(ctx, conn.User(), ch, chReqs)
		}()
	}
}

// session serves one session channel: one exec or one sftp subsystem.
func (s *Server) session(ctx context.Context, user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := false
	done := make(chan struct{})
	for {
		var req *ssh.Request
		var ok bool
		select {
		case req, ok = <-reqs:
		case <-done:
			return
		}
		if !ok {
			// The client closed the channel: stop what runs in it.
			cancel()
			if started {
				<-done
			}
			return
		}
		switch req.Type {
		case "exec", "subsystem":
			var payload struct{ Value string }
			if started || ssh.Unmarshal(req.Payload, &payload) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			run := s.exec
			if req.Type == "subsystem" {
				if payload.Value != "sftp" {
					_ = req.Reply(false, nil)
					continue
				}
				run = s.sftpSubsystem
			} else if umask, ok := sftpServerUmask(payload.Value, s.h.OS); ok {
				s.record(user, payload.Value)
				run = func(ctx context.Context, user, line string, ch ssh.Channel) int {
					return s.sftpServer(ctx, umask, ch)
				}
			}
			started = true
			_ = req.Reply(true, nil)
			go func() {
				defer close(done)
				code := run(ctx, user, payload.Value, ch)
				_ = ch.CloseWrite()
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
			}()
		case "signal":
			// Only KILL-like semantics: the command is cancelled.
			cancel()
			_ = req.Reply(false, nil)
		case "env":
			_ = req.Reply(true, nil)
		case "pty-req", "shell":
			fmt.Fprintf(ch.Stderr(), "lab host %s: %s is not supported; run commands with exec\r\n", s.h.Name, req.Type)
			_ = req.Reply(false, nil)
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func (s *Server) record(user, line string) {
	s.mu.Lock()
	s.execs = append(s.execs, Exec{User: user, Line: line})
	s.mu.Unlock()
}

func (s *Server) exec(ctx context.Context, user, line string, ch ssh.Channel) int {
	s.record(user, line)
	return s.h.Exec(ctx, line, ch, ch, ch.Stderr())
}

// sftpServerUmask recognises `[sudo -n] /usr/lib/openssh/sftp-server [-u
// umask]`, which clients run instead of the subsystem to get root's file
// access, and returns the umask new files get: -u's octal value, else the
// usual 022 (sftp(8)-server's -u; openssh-portable sftp-server.c main()).
func sftpServerUmask(line, osName string) (os.FileMode, bool) {
	args, err := host.SplitWords(line, osName)
	if err != nil {
		return 0, false
	}
	if len(args) > 0 && args[0] == "sudo" {
		args = args[1:]
		for len(args) > 0 && strings.HasPrefix(args[0], "-") {
			args = args[1:]
		}
	}
	if len(args) == 0 || host.ProgramName(args[0]) != "sftp-server" {
		return 0, false
	}
	switch {
	case len(args) == 1:
		return 0o022, true
	case len(args) == 3 && args[1] == "-u":
		m, err := strconv.ParseUint(args[2], 8, 32)
		if err != nil || m > 0o777 {
			return 0, false
		}
		return os.FileMode(m), true
	}
	return 0, false
}

func (s *Server) sftpSubsystem(ctx context.Context, _ string, _ string, ch ssh.Channel) int {
	return s.sftpServer(ctx, 0o022, ch)
}

func (s *Server) sftpServer(ctx context.Context, umask os.FileMode, ch ssh.Channel) int {
	fsys := &sandboxFS{h: s.h, umask: umask, created: func(p string, m os.FileMode) {
		s.mu.Lock()
		s.created = append(s.created, Created{Path: p, Mode: m})
		s.mu.Unlock()
	}}
	g := &gatedChannel{Channel: ch}
	srv := sftp.NewRequestServer(g, sftp.Handlers{FileGet: fsys, FilePut: fsys, FileCmd: fsys, FileList: fsys},
		sftp.WithRSMaxTxPacket(128<<10))
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve()
	srv.Close()
	// pkg/sftp may still flush replies after Serve returns; none may race the session's CloseWrite.
	g.shut()
	if err != nil && err != io.EOF {
		return 1
	}
	return 0
}

// gatedChannel lets writes through until shut, then refuses them, so that
// nothing writes to the channel once the session starts closing it.
type gatedChannel struct {
	ssh.Channel
	mu     sync.Mutex
	closed bool
}

func (g *gatedChannel) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, io.ErrClosedPipe
	}
	return g.Channel.Write(p)
}

func (g *gatedChannel) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
