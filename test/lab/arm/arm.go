// Package arm is the lab's Azure: one HTTPS server on 127.0.0.1 that
// speaks the Entra ID token endpoint, the subset of Azure Resource Manager
// that clouds/azure uses (resource groups, virtual networks, network
// security groups, NICs, VMs, their extensions and managed disks, load
// balancers and public IP addresses) and the
// Key Vault secrets data plane, so that the unchanged Azure SDK for Go
// drives it; only the cloud endpoints, the CA and the credential differ
// from a real subscription.
//
// It behaves like ARM where the backend can notice: PUT answers 201 with
// provisioningState Creating (Updating on Microsoft.Network) and an
// absolute Azure-AsyncOperation URL the SDK's poller follows; DELETE
// answers 202 (204 for what does not exist); api-version must be the one
// the SDK sends; errors have ARM's JSON shape and codes; lists page with
// nextLink; tokens are checked per audience; Key Vault answers its 401
// challenge first. Each modelled rule names its source beside it.
//
// Tests steer it with role grants at a scope (Permit, PermitAt), fault
// injection (Inject, FailAsync, Drop, Deny, NoCapacity, Fault) and read it
// through the inspection API (Objects, Calls, VMs, Boot, Secrets).
package arm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// API versions the emulator answers: the ones armcompute/v8 v8.4.0,
// armnetwork/v9 v9.0.0, armresources/v4 v4.0.0 and azsecrets v1.5.1 send
// (mod: each module's *_client.go, reqQP.Set("api-version", ...)).
const (
	ComputeAPIVersion   = "2026-04-01"
	DisksAPIVersion     = "2026-03-02"
	NetworkAPIVersion   = "2025-05-01"
	ResourcesAPIVersion = "2025-04-01"
	KeyVaultAPIVersion  = "2026-04-01"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// SubscriptionID is the one subscription; default a fixed UUID.
	SubscriptionID string
	// TenantID is the Entra ID tenant; default a fixed UUID.
	TenantID string
	// Location is the one region; default "westeurope".
	Location string
	// Clients maps service principal client IDs to secrets. With
	// Clients, Certificates and Federated all empty, any client signs in
	// with any secret or assertion.
	Clients map[string]string
	// Certificates maps client IDs to the certificate each signs its
	// client assertions with.
	Certificates map[string]*x509.Certificate
	// Federated maps client IDs to the federated identity credential
	// whose tokens each accepts (workload identity federation).
	Federated map[string]Federation
	// Vault is the one Key Vault's name; default "mixedk8s".
	Vault string
	// OperationDelay is how long a long-running operation stays InProgress; default 20ms.
	OperationDelay time.Duration
	// PageSize bounds list pages; default 1000. ARM picks its page sizes
	// (https://learn.microsoft.com/rest/api/azure/#async-operations-throttling-and-paging).
	PageSize int
	// OnRunning is called (without locks held) when a VM's creation succeeds.
	OnRunning func(VM)
	// OnDeleted is called (without locks held) when a VM is deleted.
	OnDeleted func(VM)
	// OnLoadBalancer is called (without locks held, in order) with each
	// provisioned load balancer whose frontends, rules, probes or backends
	// changed, and once more with Deleted set when it is gone.
	OnLoadBalancer func(LoadBalancer)
	// DiskEncryptionSets are the names of the disk encryption sets that
	// exist in LabKeysGroup; nil means LabDiskEncryptionSet alone.
	DiskEncryptionSets []string
	// Logf, when set, receives one line per request (operation and status, never bodies).
	Logf func(format string, args ...any)
}

// Error is an ARM error reply: status, code and message
// (https://github.com/Azure/azure-resource-manager-rpc/blob/master/v1.0/common-api-details.md#error-response-content).
type Error struct {
	Status     int
	Code       string
	Message    string
	Target     string
	RetryAfter string // Retry-After header, seconds
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func errf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Errors ARM answers with, for fault injection.
var (
	// ErrThrottled: ARM's throttling reply, 429 with Retry-After
	// (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
	ErrThrottled = Error{Status: http.StatusTooManyRequests, Code: "TooManyRequests", RetryAfter: "1",
		Message: "The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:05:00."}
	ErrInternal    = Error{Status: http.StatusInternalServerError, Code: "InternalServerError", Message: "Encountered internal server error."}
	ErrUnavailable = Error{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Message: "The service is temporarily unavailable."}
	// ErrQuota is the compute RP's core quota error
	// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-resource-quota).
	ErrQuota = Error{Status: http.StatusConflict, Code: "OperationNotAllowed",
		Message: "Operation could not be completed as it results in exceeding approved Total Regional Cores quota."}
)

// Server is one emulated subscription and region. Create it with New; Close it when done.
type Server struct {
	opts Options
	ca   *authority
	ln   net.Listener
	http *http.Server

	mu        sync.Mutex
	resources map[string]*resource // by lower-case ID
	groups    map[string]*group    // by lower-case name
	ops       map[string]*operation
	tokens    map[string]token
	vault     *vault
	desets    map[string]bool // lower-case IDs of the disk encryption sets that exist
	calls     map[string]int
	nextIP    map[string]int // subnet ID -> next host offset
	nextPIP   int            // public addresses handed out
	// reported is the last report of each load balancer, by lower-case ID.
	reported map[string]LoadBalancer
	hookMu   sync.Mutex // orders load balancer reports

	fmu      sync.Mutex
	injected map[string][]*injection
	async    map[string][]*injection
	drops    map[string][]*drop
	denied   map[string]bool
	noCap    map[string]bool
	fault    Fault
	authz    authz

	timers sync.WaitGroup
	closed chan struct{}
}

type injection struct {
	left int
	err  Error
}

type drop struct {
	left  int
	after bool
}

// New starts a server on 127.0.0.1 with a fresh CA whose certificate names
// 127.0.0.1 and *.vault.emu.test.
func New(opts Options) (*Server, error) {
	if opts.SubscriptionID == "" {
		opts.SubscriptionID = "00000000-0000-4000-8000-000000000001"
	}
	if opts.TenantID == "" {
		opts.TenantID = "00000000-0000-4000-8000-0000000000aa"
	}
	if opts.Location == "" {
		opts.Location = "westeurope"
	}
	if opts.Vault == "" {
		opts.Vault = "mixedk8s"
	}
	if opts.OperationDelay == 0 {
		opts.OperationDelay = 20 * time.Millisecond
	}
	if opts.PageSize == 0 {
		opts.PageSize = 1000
	}
	ca, err := newAuthority()
	if err != nil {
		return nil, fmt.Errorf("failed to create the ARM emulator's CA: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen for the ARM emulator on 127.0.0.1: %w", err)
	}
	s := &Server{
		opts: opts, ca: ca, ln: ln,
		resources: map[string]*resource{}, groups: map[string]*group{}, ops: map[string]*operation{},
		tokens: map[string]token{}, vault: newVault(), calls: map[string]int{}, nextIP: map[string]int{}, reported: map[string]LoadBalancer{},
		injected: map[string][]*injection{}, async: map[string][]*injection{}, drops: map[string][]*drop{},
		denied: map[string]bool{}, noCap: map[string]bool{},
		closed: make(chan struct{}), desets: map[string]bool{},
	}
	if opts.DiskEncryptionSets == nil {
		opts.DiskEncryptionSets = []string{LabDiskEncryptionSet}
	}
	for _, name := range opts.DiskEncryptionSets {
		s.desets[strings.ToLower(s.DiskEncryptionSetID(name))] = true
	}
	s.http = &http.Server{
		Handler:   s,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12},
		// HTTP/1.1 only, so that Drop can cut a connection (HTTP/2 has no Hijack).
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go s.http.ServeTLS(ln, "", "") //nolint:errcheck // ends with ErrServerClosed on Close
	return s, nil
}

// URL is the ARM endpoint and the Entra ID authority host, e.g. https://127.0.0.1:40123.
func (s *Server) URL() string { return "https://" + s.ln.Addr().String() }

// VaultURL is the Key Vault's URI: https://<vault>.vault.emu.test:<port>.
func (s *Server) VaultURL() string {
	return "https://" + s.opts.Vault + ".vault.emu.test:" + s.port()
}

func (s *Server) port() string {
	_, p, _ := net.SplitHostPort(s.ln.Addr().String())
	return p
}

// SubscriptionID is the emulated subscription.
func (s *Server) SubscriptionID() string { return s.opts.SubscriptionID }

// TenantID is the emulated tenant.
func (s *Server) TenantID() string { return s.opts.TenantID }

// Location is the emulated region.
func (s *Server) Location() string { return s.opts.Location }

// CACertPEM is the PEM certificate of the CA that signed the server certificate.
func (s *Server) CACertPEM() []byte { return slices.Clone(s.ca.certPEM) }

// DialContext connects names under emu.test (the vault's) and 127.0.0.1 to
// the server; any other address is refused, so nothing leaves the machine.
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return Dial(ctx, network, addr)
}

// Dial is DialContext for a client in another process, which knows the
// server only by its URLs: the port in the address is the server's.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host != "127.0.0.1" && host != "emu.test" && !strings.HasSuffix(host, ".emu.test") {
		return nil, fmt.Errorf("the lab resolves only *.emu.test and 127.0.0.1, not %q", host)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

// Close stops the server.
func (s *Server) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	s.timers.Wait()
	return err
}

// Inject makes the next n requests of op fail with e. Op names are
// "<type>.<verb>", e.g. "virtualMachines.Put", "networkInterfaces.Get",
// "virtualNetworks.List", "secrets.Set"; "*" counts every op.
func (s *Server) Inject(op string, n int, e Error) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.injected[op] = append(s.injected[op], &injection{left: n, err: e})
}

// FailAsync makes the next n long-running operations started by op end
// Failed with e's code and message, as AllocationFailed does
// (https://learn.microsoft.com/azure/virtual-machines/troubleshooting/allocation-failure).
func (s *Server) FailAsync(op string, n int, e Error) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.async[op] = append(s.async[op], &injection{left: n, err: e})
}

// Drop cuts the connection of the next n requests of op without a reply:
// before acting, or after acting (a lost reply) when after is true.
func (s *Server) Drop(op string, n int, after bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.drops[op] = append(s.drops[op], &drop{left: n, after: after})
}

// Deny makes every request needing action (an RBAC action such as
// "Microsoft.Compute/virtualMachines/write") fail with 403, as a missing
// role assignment does.
func (s *Server) Deny(action string, on bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.denied[strings.ToLower(action)] = on
}

// NoCapacity makes VM creation of size fail with SkuNotAvailable while on.
func (s *Server) NoCapacity(size string, on bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.noCap[strings.ToLower(size)] = on
}

// Fault is asked before every ARM and Key Vault request that passed
// authentication and the api-version check; a non-nil error is the reply.
type Fault func(op string) *Error

// Fault installs a hook asked before every request (nil removes it), for
// faults that follow a rule rather than a count (every n-th call).
func (s *Server) Fault(f Fault) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.fault = f
}

func (s *Server) injectedFor(op string) *Error {
	s.fmu.Lock()
	for _, key := range []string{op, "*"} {
		for _, in := range s.injected[key] {
			if in.left > 0 {
				in.left--
				e := in.err
				s.fmu.Unlock()
				return &e
			}
		}
	}
	fault := s.fault
	s.fmu.Unlock()
	if fault != nil {
		return fault(op)
	}
	return nil
}

func (s *Server) asyncFailure(op string) *Error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for _, in := range s.async[op] {
		if in.left > 0 {
			in.left--
			e := in.err
			return &e
		}
	}
	return nil
}

// dropFor returns whether to drop op's request, and whether after acting.
func (s *Server) dropFor(op string) (bool, bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for _, key := range []string{op, "*"} {
		for _, d := range s.drops[key] {
			if d.left > 0 {
				d.left--
				return true, d.after
			}
		}
	}
	return false, false
}

func (s *Server) isDenied(action string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.denied[strings.ToLower(action)]
}

func (s *Server) noCapacity(size string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.noCap[strings.ToLower(size)]
}

// Mutating reports whether an op changes the emulated cloud.
func Mutating(op string) bool {
	_, verb, _ := strings.Cut(op, ".")
	return verb == "Put" || verb == "Delete" || verb == "Set" || verb == "Purge"
}

// Calls returns how many requests each op received, failed ones included
// (polls of long-running operations are "operations.Get").
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// MutatingCalls counts calls of ops that change state.
func (s *Server) MutatingCalls() int {
	n := 0
	for op, k := range s.Calls() {
		if Mutating(op) {
			n += k
		}
	}
	return n
}

// ResetCalls zeroes the call log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
}

func (s *Server) count(op string) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// ServeHTTP routes by host (the vault's names) and path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.Host)
	switch {
	case strings.HasSuffix(host, ".vault.emu.test"):
		s.serveVault(w, r, strings.TrimSuffix(host, ".vault.emu.test"))
	case strings.HasPrefix(strings.ToLower(r.URL.Path), "/subscriptions/"):
		s.serveARM(w, r)
	default:
		s.serveLogin(w, r)
	}
}

// cut closes the client's connection without a reply.
func cut(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// writeError writes ARM's error shape; x-ms-error-code carries the code
// too, as ARM does (mod: sdk/azcore/internal/exported/response_error.go reads either).
func writeError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	w.Header().Set("x-ms-error-code", e.Code)
	body := map[string]any{"code": e.Code, "message": e.Message}
	if e.Target != "" {
		body["target"] = e.Target
	}
	writeJSON(w, e.Status, map[string]any{"error": body})
}
