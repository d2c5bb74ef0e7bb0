// Package ec2 is the lab's Amazon EC2: an HTTPS server on 127.0.0.1 that
// speaks the subset of the EC2 Query API (Version 2016-11-15) and of the SSM
// GetParameter JSON API that clouds/aws uses, so that the unchanged
// aws-sdk-go-v2 clients drive it; only the endpoint, the CA and the
// credentials differ from a real account.
//
// It behaves like EC2 where the provisioner can notice: instances start
// pending and become running after a delay, terminate through
// shutting-down and stay visible while terminated, RunInstances honours
// ClientToken idempotency, Describe* calls filter by tag and state and page
// with MaxResults/NextToken, deleting a VPC, subnet or security group in use
// fails with DependencyViolation, and errors come back in EC2's XML shape
// with EC2's codes and HTTP statuses.
//
// Tests steer it with fault injection (Inject, SetLatency, NoCapacity, Deny,
// Fault) and read it through the inspection API (Objects, Calls,
// Instances). OnRunning and OnTerminated let the lab turn instances into
// virtual hosts from their user data.
package ec2

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// APIVersion is the EC2 Query API version the emulator answers.
const APIVersion = "2016-11-15"

// Namespace is the XML namespace of every EC2 reply.
const Namespace = "http://ec2.amazonaws.com/doc/" + APIVersion + "/"

// AccountID owns every object the emulator creates.
const AccountID = "123456789012"

// Options configure a Server. The zero value is usable.
type Options struct {
	// Region is the region the server stands for; default "us-east-1".
	Region string
	// Zones are the availability zones; default Region + "a", "b", "c".
	Zones []string
	// Credentials maps access key IDs to secret keys. When set, a request
	// signed with another key fails with AuthFailure and a request whose
	// SigV4 signature does not match fails too. Empty accepts any signer.
	Credentials map[string]string
	// PendingDelay is how long an instance stays pending; default 50ms.
	PendingDelay time.Duration
	// ShuttingDownDelay is how long an instance stays shutting-down; default 50ms.
	ShuttingDownDelay time.Duration
	// TerminatedVisible is how long a terminated instance stays listed; default 1 minute.
	TerminatedVisible time.Duration
	// OnRunning is called (without locks held) when an instance becomes running.
	OnRunning func(Instance)
	// OnTerminated is called (without locks held) when an instance becomes terminated.
	OnTerminated func(Instance)
	// LoadBalancerDelay is how long a load balancer stays provisioning; default 50ms.
	LoadBalancerDelay time.Duration
	// DrainDelay is how long a deregistered target stays draining; default 50ms
	// (ELB's deregistration delay, 300s by default, scaled down).
	DrainDelay time.Duration
	// ENIReleaseDelay is how long a deleted load balancer's network
	// interfaces keep its subnets and security groups in use; default 50ms.
	ENIReleaseDelay time.Duration
	// OnLoadBalancer is called (without locks held) with every active load
	// balancer when one becomes active or its listeners or targets change,
	// and once with Deleted set when one is deleted.
	OnLoadBalancer func(LoadBalancer)
	// TargetHealth, when set, says whether a target passes its health
	// check, for DescribeTargetHealth; nil counts running instances healthy.
	TargetHealth func(instanceID string, port int) bool
	// KMSKeys are the account's customer managed keys in the region, which
	// SSM parameters and EBS volumes may name; nil means LabKMSKey alone.
	KMSKeys []KMSKey
	// Logf, when set, receives one line per request (action and outcome, never parameters).
	Logf func(format string, args ...any)
}

// Error is an EC2 error reply: its HTTP status, code and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errors EC2 answers with, for fault injection.
var (
	ErrRequestLimitExceeded = Error{Status: http.StatusServiceUnavailable, Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
	ErrInternal             = Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "An internal error has occurred"}
	ErrUnavailable          = Error{Status: http.StatusServiceUnavailable, Code: "Unavailable", Message: "The server is overloaded and can't handle the request."}
)

func errf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidParam(format string, args ...any) *Error {
	return errf(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

func missingParam(name string) *Error {
	return errf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter %s", name)
}

// Fault is asked before every action; a non-nil error is the reply.
type Fault func(action string, params url.Values) *Error

// Server is one emulated EC2 region. Create it with New; Close it when done.
type Server struct {
	opts Options
	ca   *authority
	ln   net.Listener
	http *http.Server

	mu    sync.Mutex
	st    state
	calls map[string]int
	// hookMu orders the load balancer reports (elb.go).
	hookMu sync.Mutex

	fmu      sync.Mutex
	injected map[string][]injection // by action, "*" for every action
	seen     map[string]int         // calls per action, for "*" injections
	latency  map[string]time.Duration
	capacity map[string]bool // instance types without capacity
	denied   map[string]bool
	fault    Fault

	// stsMu guards the STS state (sts.go).
	stsMu    sync.Mutex
	roles    map[string]Role           // by ARN
	sessions map[string]session        // by access key ID
	callers  map[string]map[string]int // principal ARN -> action -> calls
	byPath   map[string]map[string]int // ServiceURL path -> service -> calls

	timers sync.WaitGroup
	closed chan struct{}
}

type injection struct {
	left int
	err  Error
}

// New starts a server on 127.0.0.1 with a fresh CA and server certificate.
func New(opts Options) (*Server, error) {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if len(opts.Zones) == 0 {
		opts.Zones = []string{opts.Region + "a", opts.Region + "b", opts.Region + "c"}
	}
	if opts.PendingDelay == 0 {
		opts.PendingDelay = 50 * time.Millisecond
	}
	if opts.ShuttingDownDelay == 0 {
		opts.ShuttingDownDelay = 50 * time.Millisecond
	}
	for _, d := range []*time.Duration{&opts.LoadBalancerDelay, &opts.DrainDelay, &opts.ENIReleaseDelay} {
		if *d == 0 {
			*d = 50 * time.Millisecond
		}
	}
	if opts.TerminatedVisible == 0 {
		opts.TerminatedVisible = time.Minute
	}
	if opts.KMSKeys == nil {
		opts.KMSKeys = []KMSKey{LabKMSKey}
	}
	ca, err := newAuthority()
	if err != nil {
		return nil, fmt.Errorf("failed to create the EC2 emulator's CA: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen for the EC2 emulator on 127.0.0.1: %w", err)
	}
	s := &Server{
		opts: opts, ca: ca, ln: ln,
		st:       newState(opts.Region),
		calls:    map[string]int{},
		injected: map[string][]injection{},
		seen:     map[string]int{},
		latency:  map[string]time.Duration{},
		capacity: map[string]bool{},
		denied:   map[string]bool{},
		closed:   make(chan struct{}),
	}
	s.http = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(discard{}, "", 0),
	}
	go s.http.ServeTLS(ln, "", "") //nolint:errcheck // ends with ErrServerClosed on Close
	return s, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// URL is the HTTPS endpoint of EC2, ELBv2, SSM and STS, e.g. https://127.0.0.1:40123.
func (s *Server) URL() string { return "https://" + s.ln.Addr().String() }

// Services are the services the emulator answers, by their SigV4 names.
var Services = []string{"ec2", "elasticloadbalancing", "ssm", "sts"}

// ServiceURL is an endpoint of one service alone (one of Services), as a
// VPC interface endpoint is: URL()/<service>. A request for another service
// there is refused as that service refuses an operation it does not have,
// so a client that sends a service to the wrong endpoint fails.
func (s *Server) ServiceURL(service string) string { return s.URL() + "/" + service }

// PathCalls returns, per ServiceURL path (the service named in it, "" for
// URL itself), how many requests of each service arrived there.
func (s *Server) PathCalls() map[string]map[string]int {
	s.stsMu.Lock()
	defer s.stsMu.Unlock()
	out := map[string]map[string]int{}
	for p, m := range s.byPath {
		out[p] = maps.Clone(m)
	}
	return out
}

// routed records where a request for service arrived and refuses it at
// another service's endpoint.
func (s *Server) routed(r *http.Request, service string) *Error {
	at, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	s.stsMu.Lock()
	if s.byPath == nil {
		s.byPath = map[string]map[string]int{}
	}
	if s.byPath[at] == nil {
		s.byPath[at] = map[string]int{}
	}
	s.byPath[at][service]++
	s.stsMu.Unlock()
	if at == "" || at == service {
		return nil
	}
	if slices.Contains(Services, at) {
		return errf(http.StatusBadRequest, "InvalidAction", "The %s endpoint does not answer %s requests", at, service)
	}
	return errf(http.StatusNotFound, "UnknownOperationException", "No service at path /%s", at)
}

// Region is the region the server stands for.
func (s *Server) Region() string { return s.opts.Region }

// Zones are the server's availability zones.
func (s *Server) Zones() []string { return slices.Clone(s.opts.Zones) }

// CACertPEM is the PEM certificate of the CA that signed the server certificate.
func (s *Server) CACertPEM() []byte { return slices.Clone(s.ca.certPEM) }

// Close stops the server; pending state changes stop with it.
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

// Inject makes the next n calls of action fail with e. Action "*" fails the
// first n calls of every action, counted per action from now on.
func (s *Server) Inject(action string, n int, e Error) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if action == "*" {
		s.seen = map[string]int{}
	}
	s.injected[action] = append(s.injected[action], injection{left: n, err: e})
}

// SetLatency delays every call of action ("*" for all) by d before it acts.
func (s *Server) SetLatency(action string, d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.latency[action] = d
}

// NoCapacity makes RunInstances of instanceType fail with
// InsufficientInstanceCapacity while on is true.
func (s *Server) NoCapacity(instanceType string, on bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.capacity[instanceType] = on
}

// Deny makes action fail with UnauthorizedOperation, as a missing IAM permission does.
func (s *Server) Deny(action string, on bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.denied[action] = on
}

// Fault installs a hook asked before every action (nil removes it).
func (s *Server) Fault(f Fault) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.fault = f
}

// faultFor applies latency and returns the injected error for a call, if any.
func (s *Server) faultFor(ctx context.Context, action string, params url.Values) *Error {
	s.fmu.Lock()
	d := s.latency[action] + s.latency["*"]
	var out *Error
	for _, key := range []string{action, "*"} {
		list := s.injected[key]
		if key == "*" {
			s.seen[action]++
		}
		for i := range list {
			if key == "*" && s.seen[action] > list[i].left {
				continue
			}
			if key != "*" && list[i].left <= 0 {
				continue
			}
			if key != "*" {
				list[i].left--
			}
			e := list[i].err
			out = &e
			break
		}
		if out != nil {
			break
		}
	}
	if out == nil && s.denied[action] && stsActions[action] {
		// STS answers a missing permission with AccessDenied (STS API reference, CommonErrors).
		out = errf(http.StatusForbidden, "AccessDenied", "User: %s is not authorized to perform: sts:%s", UserARN, action)
	}
	if out == nil && s.denied[action] && elbActions[action] != nil {
		// ELB answers a missing IAM permission with AccessDenied (ELB API reference, CommonErrors).
		out = errf(http.StatusForbidden, "AccessDenied", "User: arn:aws:iam::%s:user/lab is not authorized to perform: elasticloadbalancing:%s", AccountID, action)
	}
	if out == nil && s.denied[action] {
		out = errf(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation. User: arn:aws:iam::%s:user/lab is not authorized to perform: %s:%s", AccountID, serviceOf(action), action)
	}
	if out == nil && action == "RunInstances" && s.capacity[params.Get("InstanceType")] {
		out = errf(http.StatusInternalServerError, "InsufficientInstanceCapacity", "We currently do not have sufficient %s capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity.", params.Get("InstanceType"))
	}
	fault := s.fault
	s.fmu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if out == nil && fault != nil {
		out = fault(action, params)
	}
	return out
}

func serviceOf(action string) string {
	switch action {
	case "GetParameter", "PutParameter", "GetParametersByPath", "DeleteParameter", "DeleteParameters":
		return "ssm"
	}
	return "ec2"
}

// mutating lists the actions that change state; the rest only read.
var mutating = map[string]bool{
	"CreateVpc": true, "DeleteVpc": true, "CreateSubnet": true, "DeleteSubnet": true,
	"CreateInternetGateway": true, "AttachInternetGateway": true, "DetachInternetGateway": true, "DeleteInternetGateway": true,
	"CreateRouteTable": true, "CreateRoute": true, "AssociateRouteTable": true, "DisassociateRouteTable": true, "DeleteRouteTable": true,
	"CreateSecurityGroup": true, "AuthorizeSecurityGroupIngress": true, "RevokeSecurityGroupIngress": true, "DeleteSecurityGroup": true,
	"CreateTags": true, "DeleteTags": true, "RunInstances": true, "TerminateInstances": true,
	"PutParameter": true, "DeleteParameter": true, "DeleteParameters": true,
}

// Mutating reports whether an action changes the emulated cloud.
func Mutating(action string) bool { return mutating[action] }

// Calls returns how many requests each action received, failed ones included.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// MutatingCalls and ReadCalls split Calls by whether the action changes state.
func (s *Server) MutatingCalls() int { return s.countCalls(true) }

// ReadCalls counts calls of actions that only read.
func (s *Server) ReadCalls() int { return s.countCalls(false) }

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
}

// ServeHTTP dispatches EC2 Query requests (form posts with Action), ELBv2
// Query requests (the same, with ELB's Version) and SSM JSON requests
// (X-Amz-Target: AmazonSSM.*).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		if e := s.routed(r, "ssm"); e != nil {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(e.Status)
			_, _ = fmt.Fprintf(w, `{"__type":%q,"message":%q}`, e.Code, e.Message)
			return
		}
		s.serveSSM(w, r, target)
		return
	}
	reqID := newRequestID()
	body, err := readBody(r)
	if err != nil {
		writeError(w, reqID, errf(http.StatusBadRequest, "InvalidRequest", "The request body could not be read"))
		return
	}
	params, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeError(w, reqID, errf(http.StatusBadRequest, "InvalidRequest", "The request is not an EC2 Query API request"))
		return
	}
	if r.Method == http.MethodGet {
		params = r.URL.Query()
	}
	action := params.Get("Action")
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	switch params.Get("Version") {
	case ELBAPIVersion:
		if e := s.routed(r, "elasticloadbalancing"); e != nil {
			writeELBError(w, reqID, e)
			return
		}
		s.serveELB(w, r, body, reqID, action, params)
		return
	case STSAPIVersion:
		if e := s.routed(r, "sts"); e != nil {
			writeQueryError(w, STSNamespace, reqID, e)
			return
		}
		s.serveSTS(w, r, body, reqID, action, params)
		return
	}
	if e := s.routed(r, "ec2"); e != nil {
		writeError(w, reqID, e)
		return
	}
	out, apiErr := s.handleQuery(r, body, action, params)
	if apiErr != nil {
		s.logf("ec2 %s -> %d %s", action, apiErr.Status, apiErr.Code)
		writeError(w, reqID, apiErr)
		return
	}
	s.logf("ec2 %s -> 200", action)
	writeReply(w, action, reqID, out)
}

func (s *Server) handleQuery(r *http.Request, body []byte, action string, params url.Values) (any, *Error) {
	if e := s.authenticate(r, body, "ec2", action); e != nil {
		return nil, e
	}
	if action == "" {
		return nil, missingParam("Action")
	}
	if v := params.Get("Version"); v != APIVersion {
		return nil, errf(http.StatusBadRequest, "InvalidParameterValue", "Invalid API version %q; this endpoint answers %s", v, APIVersion)
	}
	h, ok := queryActions[action]
	if !ok {
		return nil, errf(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service.", action)
	}
	if e := s.faultFor(r.Context(), action, params); e != nil {
		return nil, e
	}
	if params.Get("DryRun") == "true" {
		return nil, errf(http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	}
	s.mu.Lock()
	out, e, after := h(s, params)
	s.mu.Unlock()
	if after != nil {
		after()
	}
	return out, e
}

// handler runs with s.mu held; after, when set, runs once the lock is released.
type handler func(s *Server, p url.Values) (out any, e *Error, after func())

var queryActions map[string]handler

func init() {
	queryActions = map[string]handler{
		"CreateVpc": (*Server).createVpc, "DescribeVpcs": (*Server).describeVpcs, "DeleteVpc": (*Server).deleteVpc,
		"CreateSubnet": (*Server).createSubnet, "DescribeSubnets": (*Server).describeSubnets, "DeleteSubnet": (*Server).deleteSubnet,
		"CreateInternetGateway": (*Server).createInternetGateway, "AttachInternetGateway": (*Server).attachInternetGateway,
		"DetachInternetGateway": (*Server).detachInternetGateway, "DeleteInternetGateway": (*Server).deleteInternetGateway,
		"DescribeInternetGateways": (*Server).describeInternetGateways,
		"CreateRouteTable":         (*Server).createRouteTable, "CreateRoute": (*Server).createRoute,
		"AssociateRouteTable": (*Server).associateRouteTable, "DisassociateRouteTable": (*Server).disassociateRouteTable,
		"DescribeRouteTables": (*Server).describeRouteTables, "DeleteRouteTable": (*Server).deleteRouteTable,
		"CreateSecurityGroup": (*Server).createSecurityGroup, "AuthorizeSecurityGroupIngress": (*Server).authorizeIngress, "RevokeSecurityGroupIngress": (*Server).revokeIngress,
		"DescribeSecurityGroups": (*Server).describeSecurityGroups, "DeleteSecurityGroup": (*Server).deleteSecurityGroup,
		"CreateTags": (*Server).createTags, "DeleteTags": (*Server).deleteTags,
		"RunInstances": (*Server).runInstances, "DescribeInstances": (*Server).describeInstances,
		"TerminateInstances": (*Server).terminateInstances,
		"DescribeImages":     (*Server).describeImages, "DescribeInstanceTypes": (*Server).describeInstanceTypes,
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 4<<20))
}
