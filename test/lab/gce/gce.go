// Package gce is the lab's Google Compute Engine: an HTTPS server on
// 127.0.0.1 that speaks the subset of the Compute Engine v1 REST API and of
// the Secret Manager v1 REST API that clouds/gcp uses, so that the
// unchanged cloud.google.com/go clients drive it; only the endpoint, the CA
// and the credentials differ from a real project.
//
// It behaves like Compute Engine where the client can notice: bodies are
// protojson of the computepb and secretmanagerpb types (int64 and uint64
// as strings, as the real API sends them); inserts and deletes return
// operations that start PENDING, run, and finish DONE, with failures in the
// operation's error field; a repeated requestId returns the first
// operation; a duplicate name is 409 alreadyExists; lists page with
// maxResults and nextPageToken; instances boot PROVISIONING, STAGING,
// RUNNING, and on first boot a modelled guest agent publishes host keys as
// guest attributes and answers windows-keys on serial port 4 with a real
// RSA-OAEP-encrypted password; errors have Compute's JSON shape, reasons
// and statuses. For the API load balancer it serves regional addresses,
// health checks, backend services and forwarding rules and zonal unmanaged
// instance groups (lb.go), and reports each forwarding rule with its
// members through OnLoadBalancer.
//
// Tests steer it with fault injection (Inject, Drop, Stockout, Deny, Fault)
// and read it through the inspection API (Calls, Objects, Instances,
// Guest). OnRunning and OnDeleted let the lab turn instances into virtual
// hosts.
package gce

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// ProjectNumber is the number of the emulated project; Secret Manager
// names resources by number in its replies, as the real service does.
const ProjectNumber = "123456789012"

// Options configure a Server. The zero value is usable.
type Options struct {
	// Project is the project ID; default "mixedk8s-lab".
	Project string
	// Region is the region the server stands for; default "us-central1".
	Region string
	// Zones are the region's zones; default Region + "-a", "-b", "-c".
	Zones []string
	// Token, when set, is the only OAuth bearer token accepted besides
	// the ones the server issues (iam.go); others get 401.
	Token string
	// Principal is the IAM member Token stands for, who calls the APIs and
	// may be granted roles on service accounts (GrantTokenCreator);
	// default "user:lab-owner@example.com".
	Principal string
	// Now is the clock issued tokens expire by; default time.Now.
	Now func() time.Time
	// OperationDelay is how long an operation stays PENDING and RUNNING; default 20ms.
	OperationDelay time.Duration
	// BootDelay is how long an instance stays PROVISIONING and STAGING; default 50ms.
	BootDelay time.Duration
	// OnRunning is called (without locks held) when an instance becomes RUNNING.
	OnRunning func(Instance)
	// OnDeleted is called (without locks held) when an instance is gone.
	OnDeleted func(Instance)
	// OnStopped is called (without locks held) when an instance stops (StopInstance).
	OnStopped func(Instance)
	// OnLoadBalancer is called (without locks held) with every forwarding
	// rule and its backends after any change to load balancing, and once
	// with Deleted set when a forwarding rule is gone (lb.go).
	OnLoadBalancer func(LoadBalancer)
	// Logf, when set, receives one line per request (method and outcome, never bodies).
	Logf func(format string, args ...any)
}

// Error is a Compute or Secret Manager error reply.
type Error struct {
	Status  int
	Reason  string
	Message string
	// Details, when set, are google.rpc details (ErrorInfo) in the reply.
	Details []map[string]any
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Reason, e.Message) }

// Errors Compute answers with, for fault injection. Rate limits: 403
// rateLimitExceeded (https://cloud.google.com/compute/api-quota) and 429
// for API request quotas (https://cloud.google.com/docs/quota_detail/troubleshoot).
var (
	ErrRateLimit = Error{Status: http.StatusForbidden, Reason: "rateLimitExceeded", Message: "Rate Limit Exceeded"}
	ErrTooMany   = Error{Status: http.StatusTooManyRequests, Reason: "rateLimitExceeded", Message: "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com'"}
	ErrBackend   = Error{Status: http.StatusServiceUnavailable, Reason: "backendError", Message: "Internal error. Please try again or contact Google Support."}
	ErrInternal  = Error{Status: http.StatusInternalServerError, Reason: "internalError", Message: "Internal error. Please try again or contact Google Support."}
	ErrQuotaCPUs = Error{Status: http.StatusForbidden, Reason: "quotaExceeded", Message: "Quota 'CPUS' exceeded.  Limit: 24.0 in region us-central1."}
	// ErrSecretsRateLimit is Secret Manager's reply past a per-minute
	// request quota: 429 RESOURCE_EXHAUSTED
	// (https://cloud.google.com/secret-manager/quotas).
	ErrSecretsRateLimit = Error{Status: http.StatusTooManyRequests, Reason: "RESOURCE_EXHAUSTED",
		Message: "Quota exceeded for quota metric 'Access requests' and limit 'Access requests per minute per project' of service 'secretmanager.googleapis.com'."}
	ErrStockoutNow = Error{Status: http.StatusServiceUnavailable, Reason: "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
		Message: "The zone does not have enough resources available to fulfill the request. '(resource type:compute)'."}
)

// Fault is asked before every call; a non-nil error is the reply.
type Fault func(method string, r *http.Request) *Error

// Server is one emulated project and region. Create it with New; Close it when done.
type Server struct {
	opts Options
	ca   *authority
	ln   net.Listener
	http *http.Server

	mu    sync.Mutex
	st    *state
	calls map[string]int

	fmu       sync.Mutex
	injected  map[string][]*injection
	drops     map[string]int
	stockouts map[string]bool // machine type, or "zone/<zone>"
	denied    map[string]bool // IAM permissions
	fault     Fault

	// hookMu orders the load balancer reports; reported is the last set (lb.go).
	hookMu   sync.Mutex
	reported map[string]LoadBalancer

	timers sync.WaitGroup
	closed chan struct{}
}

type injection struct {
	left int
	err  Error
}

// New starts a server on 127.0.0.1 with a fresh CA and server certificate.
func New(opts Options) (*Server, error) {
	if opts.Project == "" {
		opts.Project = "mixedk8s-lab"
	}
	if opts.Region == "" {
		opts.Region = "us-central1"
	}
	if opts.Principal == "" {
		opts.Principal = "user:lab-owner@example.com"
	}
	if len(opts.Zones) == 0 {
		opts.Zones = []string{opts.Region + "-a", opts.Region + "-b", opts.Region + "-c"}
	}
	if opts.OperationDelay == 0 {
		opts.OperationDelay = 20 * time.Millisecond
	}
	if opts.BootDelay == 0 {
		opts.BootDelay = 50 * time.Millisecond
	}
	ca, err := newAuthority()
	if err != nil {
		return nil, fmt.Errorf("failed to create the Compute Engine emulator's CA: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen for the Compute Engine emulator on 127.0.0.1: %w", err)
	}
	s := &Server{
		opts: opts, ca: ca, ln: ln,
		st:        newState(),
		calls:     map[string]int{},
		injected:  map[string][]*injection{},
		drops:     map[string]int{},
		stockouts: map[string]bool{},
		denied:    map[string]bool{},
		closed:    make(chan struct{}),
	}
	s.http = &http.Server{
		Handler:           s.routes(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(discard{}, "", 0),
	}
	go s.http.ServeTLS(ln, "", "") //nolint:errcheck // ends with ErrServerClosed on Close
	return s, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// URL is the HTTPS endpoint of Compute and Secret Manager, e.g. https://127.0.0.1:40123 (no trailing slash).
func (s *Server) URL() string { return "https://" + s.ln.Addr().String() }

// Project is the emulated project ID.
func (s *Server) Project() string { return s.opts.Project }

// Region is the region the server stands for.
func (s *Server) Region() string { return s.opts.Region }

// Zones are the region's zones.
func (s *Server) Zones() []string { return slices.Clone(s.opts.Zones) }

// CACertPEM is the PEM certificate of the CA that signed the server certificate.
func (s *Server) CACertPEM() []byte { return slices.Clone(s.ca.certPEM) }

// Close stops the server; pending operations stop with it.
func (s *Server) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Close()
	_ = ctx
	s.timers.Wait()
	return err
}

// Inject makes the next n calls of method (e.g. "instances.insert", "*"
// for every method) fail with e.
func (s *Server) Inject(method string, n int, e Error) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.injected[method] = append(s.injected[method], &injection{left: n, err: e})
}

// Drop makes the next n calls of method act and then lose their reply: the
// connection closes before a byte of the response is written.
func (s *Server) Drop(method string, n int) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.drops[method] += n
}

// Stockout makes inserts of a machine type (or of any type in a zone, with
// "zone/<zone>") finish as a DONE operation with ZONE_RESOURCE_POOL_EXHAUSTED
// while on is true.
func (s *Server) Stockout(key string, on bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.stockouts[key] = on
}

// Deny makes every call that needs an IAM permission (e.g.
// "compute.instances.create") fail with 403, as a missing role does.
func (s *Server) Deny(permission string, on bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.denied[permission] = on
}

// Fault installs a hook asked before every call (nil removes it).
func (s *Server) Fault(f Fault) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.fault = f
}

// ClearFaults removes every injection, drop, stockout, denial and hook.
func (s *Server) ClearFaults() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.injected, s.drops, s.stockouts, s.denied, s.fault = map[string][]*injection{}, map[string]int{}, map[string]bool{}, map[string]bool{}, nil
}

func (s *Server) faultFor(method, permission, resource string, r *http.Request) *Error {
	s.fmu.Lock()
	var out *Error
	for _, key := range []string{method, "*"} {
		for _, in := range s.injected[key] {
			if in.left > 0 {
				in.left--
				e := in.err
				out = &e
				break
			}
		}
		if out != nil {
			break
		}
	}
	if out == nil && permission != "" && s.denied[permission] {
		out = denied(permission, resource)
	}
	fault := s.fault
	s.fmu.Unlock()
	if out == nil && fault != nil {
		out = fault(method, r)
	}
	return out
}

// denied is the 403 of a missing permission. Compute words it "Required
// '<permission>' permission for '<resource>'" with reason forbidden;
// Secret Manager "Permission '<permission>' denied for resource" with
// status PERMISSION_DENIED and an ErrorInfo (https://cloud.google.com/apis/design/errors#error_info).
func denied(permission, resource string) *Error {
	if strings.HasPrefix(permission, "iam.") {
		// IAM names no resource and sets only the permission in its ErrorInfo
		// (gh:google-github-actions/auth#340).
		return &Error{Status: http.StatusForbidden, Reason: "PERMISSION_DENIED",
			Message: fmt.Sprintf("Permission '%s' denied on resource (or it may not exist).", permission),
			Details: []map[string]any{{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
				"metadata": map[string]string{"permission": permission}}}}
	}
	if strings.HasPrefix(permission, "secretmanager.") {
		return &Error{Status: http.StatusForbidden, Reason: "PERMISSION_DENIED",
			Message: fmt.Sprintf("Permission '%s' denied for resource '%s' (or it may not exist).", permission, resource),
			Details: []map[string]any{{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "secretmanager.googleapis.com",
				"metadata": map[string]string{"permission": permission, "resource": resource}}}}
	}
	return &Error{Status: http.StatusForbidden, Reason: "forbidden", Message: fmt.Sprintf("Required '%s' permission for '%s'", permission, resource)}
}

func (s *Server) dropReply(method string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.drops[method] > 0 {
		s.drops[method]--
		return true
	}
	return false
}

func (s *Server) stockout(machineType, zone string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.stockouts[machineType] || s.stockouts["zone/"+zone]
}

// mutating lists the methods that change state; the rest only read.
var mutating = map[string]bool{
	"instances.insert": true, "instances.delete": true, "instances.start": true, "instances.stop": true,
	"networks.insert": true, "networks.delete": true, "subnetworks.insert": true, "subnetworks.delete": true,
	"firewalls.insert": true, "firewalls.delete": true, "firewalls.patch": true,
	"addresses.insert": true, "addresses.delete": true, "addresses.setLabels": true,
	"forwardingRules.insert": true, "forwardingRules.delete": true, "forwardingRules.setLabels": true,
	"regionHealthChecks.insert": true, "regionHealthChecks.delete": true,
	"regionBackendServices.insert": true, "regionBackendServices.delete": true, "regionBackendServices.patch": true,
	"instanceGroups.insert": true, "instanceGroups.delete": true, "instanceGroups.addInstances": true, "instanceGroups.removeInstances": true,
	"secrets.create": true, "secrets.addVersion": true, "secrets.delete": true,
}

// Mutating reports whether a method changes the emulated cloud.
func Mutating(method string) bool { return mutating[method] }

// Calls returns how many requests each method received, failed ones included.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// MutatingCalls counts calls of methods that change state.
func (s *Server) MutatingCalls() int { return s.countCalls(true) }

// ReadCalls counts calls of methods that only read.
func (s *Server) ReadCalls() int { return s.countCalls(false) }

// ComputeCalls counts calls to the Compute API (Secret Manager and IAM excluded).
func (s *Server) ComputeCalls() int {
	n := 0
	for m, k := range s.Calls() {
		if !strings.HasPrefix(m, "secrets.") && !strings.HasPrefix(m, "versions.") && !strings.HasPrefix(m, "serviceAccounts.") {
			n += k
		}
	}
	return n
}

func (s *Server) countCalls(m bool) int {
	n := 0
	for a, k := range s.Calls() {
		if Mutating(a) == m {
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
	s.st.iam.byCaller = map[string]map[string]int{}
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// after runs f after d unless the server closes first.
func (s *Server) after(d time.Duration, f func()) {
	s.timers.Add(1)
	go func() {
		defer s.timers.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.closed:
		case <-t.C:
			f()
		}
	}()
}
