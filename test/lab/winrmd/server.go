// Package winrmd is the WinRM service of a virtual Windows host of the lab:
// WS-Management over HTTPS (MS-WSMV's remote shell: Create, Command, Send,
// Receive, Signal, Delete) with Basic and NTLM authentication, served over
// the host's in-process connections on port 5986 with the certificate that
// first-boot data installed, and optionally on a real 127.0.0.1 socket for clients
// that need one (winrmcp, benchmarks).
//
// Commands run through the host's interpreter (cmd.exe semantics unless the
// client asks WINRS_SKIP_CMD_SHELL), and the server keeps Windows' limits and
// faults so that clients meet them here first: MaxEnvelopeSizekb 500, the
// cmd.exe line limit, MaxShellsPerUser, MaxConcurrentOperationsPerUser, the
// shell idle timeout, the Receive OperationTimeout, and shells that vanish
// with a reboot.
package winrmd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
)

// Windows defaults (shared/REFERENCE-windows.md, "WinRM limits and faults").
const (
	DefaultMaxEnvelopeSize   = 500 * 1024
	DefaultMaxShellsPerUser  = 30
	DefaultMaxOperations     = 1500
	DefaultIdleTimeout       = 7200 * time.Second
	DefaultMaxTimeout        = 60 * time.Second
	DefaultPort              = 5986
	defaultOperationTimeout  = 60 * time.Second
	outputBufferLimit        = 4 << 20
	killGrace                = time.Second
	responseEnvelopeOverhead = 2048
)

// Config of one host's WinRM service. Zero limits take Windows' defaults.
type Config struct {
	// Certificate is the listener's certificate and key (the one first-boot data installed).
	Certificate tls.Certificate
	// Users maps account names (case-insensitive) to passwords.
	Users map[string]string
	// Current, when set, replaces Certificate and Users: what the machine's
	// listener and accounts hold now, read for every TLS handshake and
	// every logon, so a certificate or password changed on the machine
	// takes effect for new connections while open ones keep theirs.
	Current func() (tls.Certificate, map[string]string, error)
	// DisableBasic and DisableNTLM turn an authentication scheme off.
	DisableBasic, DisableNTLM bool

	MaxEnvelopeSize                int // bytes; MaxEnvelopeSizekb*1024
	MaxShellsPerUser               int
	MaxConcurrentOperationsPerUser int
	IdleTimeout                    time.Duration
	MaxTimeout                     time.Duration // caps a request's OperationTimeout
	Port                           int
}

// Server is the WinRM service of one virtual Windows host.
type Server struct {
	h    *host.Host
	cfg  Config
	tls  *tls.Config
	http *http.Server
	pipe *pipeListener

	wire atomic.Int64

	mu     sync.Mutex
	shells map[string]*shell
	ops    map[string]int // per user: requests in flight plus running commands
	tcp    []net.Listener
	done   chan struct{}
	closed bool
}

// New starts the WinRM service of h on its virtual port (5986 unless
// cfg.Port says otherwise). It also installs the Windows command shapes on h.
func New(h *host.Host, cfg Config) (*Server, error) {
	if h.OS != host.Windows {
		return nil, fmt.Errorf("start WinRM on lab host %s: it is a %s host; WinRM runs on Windows hosts only", h.Name, h.OS)
	}
	if len(cfg.Certificate.Certificate) == 0 && cfg.Current == nil {
		return nil, fmt.Errorf("start WinRM on lab host %s: no listener certificate; pass the one first-boot data installed", h.Name)
	}
	if cfg.MaxEnvelopeSize == 0 {
		cfg.MaxEnvelopeSize = DefaultMaxEnvelopeSize
	}
	if cfg.MaxShellsPerUser == 0 {
		cfg.MaxShellsPerUser = DefaultMaxShellsPerUser
	}
	if cfg.MaxConcurrentOperationsPerUser == 0 {
		cfg.MaxConcurrentOperationsPerUser = DefaultMaxOperations
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxTimeout == 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	host.InstallWindowsCommands(h)
	s := &Server{
		h:      h,
		cfg:    cfg,
		tls:    &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
		shells: map[string]*shell{},
		ops:    map[string]int{},
		done:   make(chan struct{}),
	}
	s.tls.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if cfg.Current == nil {
			return &cfg.Certificate, nil
		}
		c, _, err := cfg.Current()
		return &c, err
	}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &connState{})
		},
		// TLS handshakes that a pinning client aborts are expected here.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.pipe = &pipeListener{conns: make(chan net.Conn), done: s.done}
	go func() { _ = s.http.Serve(tls.NewListener(s.pipe, s.tls)) }()
	h.Listen(cfg.Port, s.serveConn)
	go s.reaper()
	return s, nil
}

// ListenLocal also serves on a real socket on 127.0.0.1 and returns its
// host:port, for clients that dial by address themselves.
func (s *Server) ListenLocal() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("WinRM of lab host %s: listen on 127.0.0.1: %w", s.h.Name, err)
	}
	s.mu.Lock()
	s.tcp = append(s.tcp, l)
	s.mu.Unlock()
	go func() { _ = s.http.Serve(tls.NewListener(&countingListener{Listener: l, n: &s.wire}, s.tls)) }()
	return l.Addr().String(), nil
}

// WireBytes is how many bytes (TLS records, both directions) crossed the
// server's connections since the last ResetWireBytes.
func (s *Server) WireBytes() int64 { return s.wire.Load() }

// ResetWireBytes sets the wire counter to zero.
func (s *Server) ResetWireBytes() { s.wire.Store(0) }

// Shells is how many shells are open.
func (s *Server) Shells() int {
	s.reap()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shells)
}

// Close stops the service and kills every shell.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	shells := s.shells
	s.shells = map[string]*shell{}
	s.mu.Unlock()
	for _, sh := range shells {
		sh.kill()
	}
	s.h.Listen(s.cfg.Port, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.http.Shutdown(ctx)
}

// serveConn hands an in-process connection to the HTTP server and blocks
// until the server is done with it, as host.Listen expects.
func (s *Server) serveConn(c net.Conn) {
	dc := &doneConn{Conn: &countingConn{Conn: c, n: &s.wire}, done: make(chan struct{})}
	select {
	case s.pipe.conns <- dc:
	case <-s.done:
		return
	}
	select {
	case <-dc.done:
	case <-s.done:
	}
}

type connKey struct{}

// connState is what NTLM binds to one TCP connection, as on Windows.
type connState struct {
	mu        sync.Mutex
	challenge []byte
	user      string
}

func (s *Server) password(user string) (string, bool) {
	if i := strings.LastIndexByte(user, '\\'); i >= 0 {
		user = user[i+1:]
	}
	users := s.cfg.Users
	if s.cfg.Current != nil {
		_, now, err := s.cfg.Current()
		if err != nil {
			return "", false
		}
		users = now
	}
	for u, p := range users {
		if strings.EqualFold(u, user) {
			return p, true
		}
	}
	return "", false
}

func (s *Server) challengeHeaders(w http.ResponseWriter) {
	if !s.cfg.DisableNTLM {
		w.Header().Add("WWW-Authenticate", "Negotiate")
	}
	if !s.cfg.DisableBasic {
		w.Header().Add("WWW-Authenticate", `Basic realm="WSMAN"`)
	}
}

func unauthorized(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body) // keep the connection: NTLM state lives on it.
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusUnauthorized)
}

// authenticate returns the request's user, or answers 401 and returns "".
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) string {
	st, _ := r.Context().Value(connKey{}).(*connState)
	if st == nil {
		st = &connState{}
	}
	auth := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(auth, " ")
	switch {
	case auth == "":
		st.mu.Lock()
		user := st.user
		st.mu.Unlock()
		if user != "" {
			return user
		}
	case strings.EqualFold(scheme, "Basic") && !s.cfg.DisableBasic:
		if u, p, ok := r.BasicAuth(); ok {
			if want, known := s.password(u); known && want == p {
				return u
			}
		}
	case (strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "NTLM")) && !s.cfg.DisableNTLM:
		msg, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
		if err != nil {
			break
		}
		switch ntlmMessageType(msg) {
		case 1:
			ch, sc, err := ntlmChallenge(s.h.Name)
			if err != nil {
				break
			}
			st.mu.Lock()
			st.challenge, st.user = sc, ""
			st.mu.Unlock()
			w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(ch))
			unauthorized(w, r)
			return ""
		case 3:
			st.mu.Lock()
			sc := st.challenge
			st.challenge = nil
			st.mu.Unlock()
			if sc == nil {
				break
			}
			user, err := ntlmVerify(msg, sc, s.password)
			if err != nil {
				break
			}
			st.mu.Lock()
			st.user = user
			st.mu.Unlock()
			return user
		}
	}
	s.challengeHeaders(w)
	unauthorized(w, r)
	return ""
}

// ServeHTTP answers one WS-Management request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/wsman" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	user := s.authenticate(w, r)
	if user == "" {
		return
	}
	body, err := readBody(r, s.cfg.MaxEnvelopeSize)
	if err != nil {
		return
	}
	if len(body) > s.cfg.MaxEnvelopeSize {
		n, _ := io.Copy(io.Discard, r.Body)
		faultEnvelope(len(body)+int(n), s.cfg.MaxEnvelopeSize).write(w, s.h.Name, "")
		return
	}
	env, err := parseEnvelope(body)
	if err != nil {
		faultInvalid("The request is not a well-formed SOAP envelope: "+err.Error()).write(w, s.h.Name, "")
		return
	}
	s.reap()
	if f := s.beginOperation(user); f != nil {
		f.write(w, s.h.Name, env.Header.MessageID)
		return
	}
	defer s.endOperation(user)
	ctx := host.WithUser(r.Context(), user)
	var f *Fault
	switch env.Header.Action {
	case actionCreate:
		f = s.create(w, r, user, env)
	case actionCommand:
		f = s.command(ctx, w, user, env)
	case actionSend:
		f = s.send(w, user, env)
	case actionReceive:
		f = s.receive(ctx, w, user, env)
	case actionSignal:
		f = s.signal(w, user, env)
	case actionDelete:
		f = s.delete(w, user, env)
	default:
		f = &Fault{Sender: true, Subcode: "a:ActionNotSupported", Reason: "The action is not supported by the service.",
			Code: CodeActionUnknown, Message: fmt.Sprintf("The WS-Management service does not support the action %q.", env.Header.Action)}
	}
	if f != nil {
		f.write(w, s.h.Name, env.Header.MessageID)
	}
}

// readBody reads at most max+1 bytes, in one allocation when the length is known.
func readBody(r *http.Request, max int) ([]byte, error) {
	if r.ContentLength >= 0 && r.ContentLength <= int64(max) {
		b := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
}

func (s *Server) beginOperation(user string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(user)
	if s.ops[key] >= s.cfg.MaxConcurrentOperationsPerUser {
		return faultMaxOperations(s.cfg.MaxConcurrentOperationsPerUser)
	}
	s.ops[key]++
	return nil
}

func (s *Server) endOperation(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops[strings.ToLower(user)]--
}

// shell is one remote shell.
type shell struct {
	id       string
	user     string
	epoch    int // host reboots when the shell opened
	mu       sync.Mutex
	lastUsed time.Time
	commands map[string]*command
}

func (sh *shell) touch() {
	sh.mu.Lock()
	sh.lastUsed = time.Now()
	sh.mu.Unlock()
}

func (sh *shell) kill() {
	sh.mu.Lock()
	cmds := make([]*command, 0, len(sh.commands))
	for _, c := range sh.commands {
		cmds = append(cmds, c)
	}
	sh.mu.Unlock()
	for _, c := range cmds {
		c.kill()
	}
}

// reaper ends shells that idled out or did not survive a reboot, so their
// processes stop even when no client comes back.
func (s *Server) reaper() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.reap()
		}
	}
}

func (s *Server) reap() {
	now := time.Now()
	reboots := s.h.Reboots()
	var dead []*shell
	s.mu.Lock()
	for id, sh := range s.shells {
		sh.mu.Lock()
		idle := now.Sub(sh.lastUsed) > s.cfg.IdleTimeout
		sh.mu.Unlock()
		if idle || sh.epoch != reboots {
			delete(s.shells, id)
			dead = append(dead, sh)
		}
	}
	s.mu.Unlock()
	for _, sh := range dead {
		sh.kill()
	}
}

func (s *Server) shell(user string, env *envelope) (*shell, *Fault) {
	id := env.selector("ShellId")
	s.mu.Lock()
	sh := s.shells[id]
	s.mu.Unlock()
	if sh == nil || !strings.EqualFold(sh.user, user) {
		return nil, faultShellNotFound(id)
	}
	sh.touch()
	return sh, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, user string, env *envelope) *Fault {
	if env.Header.ResourceURI != resourceCmd {
		return faultInvalid(fmt.Sprintf("The resource URI %q is not supported; this server offers %s.", env.Header.ResourceURI, resourceCmd))
	}
	s.mu.Lock()
	n := 0
	for _, sh := range s.shells {
		if strings.EqualFold(sh.user, user) {
			n++
		}
	}
	if n >= s.cfg.MaxShellsPerUser {
		s.mu.Unlock()
		return faultMaxShells(s.cfg.MaxShellsPerUser)
	}
	sh := &shell{id: newGUID(), user: user, epoch: s.h.Reboots(), lastUsed: time.Now(), commands: map[string]*command{}}
	s.shells[sh.id] = sh
	s.mu.Unlock()
	addr := "https://" + r.Host + "/wsman"
	respond(w, http.StatusOK, nsTransfer+"/CreateResponse", env.Header.MessageID, fmt.Sprintf(
		`<x:ResourceCreated><a:Address>%s</a:Address><a:ReferenceParameters><w:ResourceURI>%s</w:ResourceURI>`+
			`<w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`+
			`<rsp:Shell><rsp:ShellId>%s</rsp:ShellId><rsp:ResourceUri>%s</rsp:ResourceUri><rsp:Owner>%s</rsp:Owner>`+
			`<rsp:IdleTimeOut>PT%.3fS</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`,
		xmlText(addr), resourceCmd, sh.id, sh.id, resourceCmd, xmlText(user), s.cfg.IdleTimeout.Seconds()))
	return nil
}

func (s *Server) command(ctx context.Context, w http.ResponseWriter, user string, env *envelope) *Fault {
	sh, f := s.shell(user, env)
	if f != nil {
		return f
	}
	cl := env.Body.CommandLine
	if cl == nil {
		return faultInvalid("The Command request has no rsp:CommandLine.")
	}
	line := strings.TrimSpace(cl.Command)
	for _, a := range cl.Arguments {
		line += " " + a
	}
	skipCmd := strings.EqualFold(env.option("WINRS_SKIP_CMD_SHELL"), "TRUE")
	if skipCmd && len([]rune(line)) > host.CreateProcessMax {
		return &Fault{Subcode: "w:InternalError", Reason: "The filename or extension is too long.", Code: CodeFilenameTooLng,
			Message: "The filename or extension is too long."}
	}
	// A running command is an operation until it ends.
	if f := s.beginOperation(user); f != nil {
		return f
	}
	c := newCommand(newGUID())
	sh.mu.Lock()
	sh.commands[c.id] = c
	sh.mu.Unlock()
	pctx, cancel := context.WithCancel(host.WithUser(context.WithoutCancel(ctx), user))
	c.cancel = cancel
	go func() {
		defer s.endOperation(user)
		var code int
		if skipCmd {
			code = s.h.Exec(pctx, line, c.stdinR, c.writer("stdout"), c.writer("stderr"))
		} else {
			code = s.h.RunCmd(pctx, line, c.stdinR, c.writer("stdout"), c.writer("stderr"))
		}
		c.exit(code)
	}()
	respond(w, http.StatusOK, nsShell+"/CommandResponse", env.Header.MessageID,
		`<rsp:CommandResponse><rsp:CommandId>`+c.id+`</rsp:CommandId></rsp:CommandResponse>`)
	return nil
}

func (sh *shell) command(id string) (*command, *Fault) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.commands[id]
	if c == nil {
		return nil, faultInvalid(fmt.Sprintf("The command %s does not exist in shell %s.", id, sh.id))
	}
	return c, nil
}

func (s *Server) send(w http.ResponseWriter, user string, env *envelope) *Fault {
	sh, f := s.shell(user, env)
	if f != nil {
		return f
	}
	if env.Body.Send == nil {
		return faultInvalid("The Send request has no rsp:Send.")
	}
	for _, st := range env.Body.Send.Streams {
		if st.Name != "stdin" {
			return faultInvalid(fmt.Sprintf("The stream %q is not an input stream of this shell; use stdin.", st.Name))
		}
		c, f := sh.command(st.CommandID)
		if f != nil {
			return f
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Data))
		if err != nil {
			return faultInvalid("The stdin stream is not valid base64.")
		}
		if len(data) > 0 {
			// A process that ended or was killed discards its input, as on Windows.
			_, _ = c.stdinW.Write(data)
		}
		if st.End == "true" || st.End == "1" {
			c.stdinW.Close()
		}
		sh.touch()
	}
	respond(w, http.StatusOK, nsShell+"/SendResponse", env.Header.MessageID, `<rsp:SendResponse/>`)
	return nil
}

func (s *Server) receive(ctx context.Context, w http.ResponseWriter, user string, env *envelope) *Fault {
	sh, f := s.shell(user, env)
	if f != nil {
		return f
	}
	if env.Body.Receive == nil {
		return faultInvalid("The Receive request has no rsp:Receive.")
	}
	c, f := sh.command(env.Body.Receive.DesiredStream.CommandID)
	if f != nil {
		return f
	}
	timeout := defaultOperationTimeout
	if d, ok := parseDuration(env.Header.OperationTimeout); ok && d > 0 {
		timeout = d
	}
	timeout = min(timeout, s.cfg.MaxTimeout)
	limit := s.cfg.MaxEnvelopeSize
	if n, err := strconv.Atoi(strings.TrimSpace(env.Header.MaxEnvelopeSize)); err == nil && n > 0 && n < limit {
		limit = n
	}
	budget := (limit - responseEnvelopeOverhead) * 3 / 4
	chunks, done, code, ok := c.take(ctx, timeout, budget)
	defer sh.touch()
	if !ok {
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		alive := s.shells[sh.id] == sh
		s.mu.Unlock()
		if !alive {
			return faultShellNotFound(sh.id)
		}
		return faultTimedOut()
	}
	var b strings.Builder
	b.WriteString(`<rsp:ReceiveResponse>`)
	for _, ch := range chunks {
		fmt.Fprintf(&b, `<rsp:Stream Name="%s" CommandId="%s">`, ch.stream, c.id)
		b.WriteString(base64.StdEncoding.EncodeToString(ch.data))
		b.WriteString(`</rsp:Stream>`)
	}
	if done {
		fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream><rsp:Stream Name="stderr" CommandId="%s" End="true"></rsp:Stream>`, c.id, c.id)
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, c.id, stateDone, code)
	} else {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"/>`, c.id, stateRunning)
	}
	b.WriteString(`</rsp:ReceiveResponse>`)
	respond(w, http.StatusOK, nsShell+"/ReceiveResponse", env.Header.MessageID, b.String())
	return nil
}

func (s *Server) signal(w http.ResponseWriter, user string, env *envelope) *Fault {
	sh, f := s.shell(user, env)
	if f != nil {
		return f
	}
	if env.Body.Signal == nil {
		return faultInvalid("The Signal request has no rsp:Signal.")
	}
	c, f := sh.command(env.Body.Signal.CommandID)
	if f != nil {
		return f
	}
	switch strings.TrimSpace(env.Body.Signal.Code) {
	case signalTerm, signalCtrlC:
		c.kill()
		sh.mu.Lock()
		delete(sh.commands, c.id)
		sh.mu.Unlock()
	}
	respond(w, http.StatusOK, nsShell+"/SignalResponse", env.Header.MessageID, `<rsp:SignalResponse/>`)
	return nil
}

func (s *Server) delete(w http.ResponseWriter, user string, env *envelope) *Fault {
	sh, f := s.shell(user, env)
	if f != nil {
		return f
	}
	s.mu.Lock()
	delete(s.shells, sh.id)
	s.mu.Unlock()
	sh.kill()
	respond(w, http.StatusOK, nsTransfer+"/DeleteResponse", env.Header.MessageID, "")
	return nil
}

// command is one process in a shell with its buffered output.
type command struct {
	id     string
	stdinR *io.PipeReader
	stdinW *io.PipeWriter
	cancel context.CancelFunc
	exited chan struct{}

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	out      []chunk
	buffered int
	done     bool
	killed   bool
	code     int
}

type chunk struct {
	stream string
	data   []byte
}

var errKilled = errors.New("the process was terminated")

func newCommand(id string) *command {
	r, w := io.Pipe()
	return &command{id: id, stdinR: r, stdinW: w, exited: make(chan struct{}), changed: make(chan struct{}), cancel: func() {}}
}

func (c *command) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type streamWriter struct {
	c      *command
	stream string
}

func (c *command) writer(stream string) io.Writer { return &streamWriter{c: c, stream: stream} }

// Write buffers output for Receive, blocking while the buffer is full so a
// chatty process waits for its reader as on Windows.
func (w *streamWriter) Write(p []byte) (int, error) {
	c := w.c
	for {
		c.mu.Lock()
		if c.killed {
			c.mu.Unlock()
			return 0, errKilled
		}
		if c.buffered < outputBufferLimit {
			if n := len(c.out); n > 0 && c.out[n-1].stream == w.stream && len(c.out[n-1].data) < 64<<10 {
				c.out[n-1].data = append(c.out[n-1].data, p...)
			} else {
				c.out = append(c.out, chunk{stream: w.stream, data: append([]byte(nil), p...)})
			}
			c.buffered += len(p)
			c.notify()
			c.mu.Unlock()
			return len(p), nil
		}
		ch := c.changed
		c.mu.Unlock()
		<-ch
	}
}

func (c *command) exit(code int) {
	c.stdinR.CloseWithError(errKilled)
	c.mu.Lock()
	if !c.done {
		c.done, c.code = true, code
		if c.killed {
			c.code = -1073741510 // STATUS_CONTROL_C_EXIT, what a terminated process reports.
		}
	}
	c.notify()
	c.mu.Unlock()
	close(c.exited)
}

func (c *command) kill() {
	c.mu.Lock()
	c.killed = true
	c.notify()
	c.mu.Unlock()
	c.cancel()
	c.stdinR.CloseWithError(errKilled)
	c.stdinW.CloseWithError(errKilled)
	select {
	case <-c.exited:
	case <-time.After(killGrace):
	}
}

// take waits up to timeout for output or the end of the command and returns
// at most budget bytes of output; done only once all output is taken.
func (c *command) take(ctx context.Context, timeout time.Duration, budget int) (out []chunk, done bool, code int, ok bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if c.killed && !c.done {
			c.mu.Unlock()
			return nil, false, 0, false
		}
		if len(c.out) > 0 || c.done {
			for len(c.out) > 0 && budget > 0 {
				ch := &c.out[0]
				n := min(len(ch.data), budget)
				out = append(out, chunk{stream: ch.stream, data: ch.data[:n:n]})
				ch.data = ch.data[n:]
				budget -= n
				c.buffered -= n
				if len(ch.data) == 0 {
					c.out = c.out[1:]
				}
			}
			done = c.done && len(c.out) == 0
			code = c.code
			c.notify()
			c.mu.Unlock()
			return out, done, code, true
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return nil, false, 0, false
		case <-ctx.Done():
			return nil, false, 0, false
		}
	}
}

func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// pipeListener accepts the in-process connections host.Listen hands over.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// doneConn tells serveConn when the HTTP server closed the connection.
type doneConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *doneConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// countingConn counts the bytes on the wire (TLS records included).
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: l.n}, nil
}
