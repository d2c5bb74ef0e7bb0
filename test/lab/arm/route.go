package arm

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Resource types the emulator serves, with their api-version and the
// name fault injection and Calls use.
type kind struct {
	namespace, typ, child string // child: "extensions" under virtualMachines
	apiVersion            string
	op                    string
}

var kinds = []kind{
	{"Microsoft.Compute", "virtualMachines", "", ComputeAPIVersion, "virtualMachines"},
	{"Microsoft.Compute", "virtualMachines", "extensions", ComputeAPIVersion, "extensions"},
	{"Microsoft.Compute", "disks", "", DisksAPIVersion, "disks"},
	{"Microsoft.Network", "virtualNetworks", "", NetworkAPIVersion, "virtualNetworks"},
	{"Microsoft.Network", "networkSecurityGroups", "", NetworkAPIVersion, "networkSecurityGroups"},
	{"Microsoft.Network", "networkInterfaces", "", NetworkAPIVersion, "networkInterfaces"},
	{"Microsoft.Network", "loadBalancers", "", NetworkAPIVersion, "loadBalancers"},
	{"Microsoft.Network", "publicIPAddresses", "", NetworkAPIVersion, "publicIPAddresses"},
	{"Microsoft.Network", "applicationSecurityGroups", "", NetworkAPIVersion, "applicationSecurityGroups"},
}

// fullType is the ARM resource type, e.g. "Microsoft.Compute/virtualMachines/extensions".
func (k kind) fullType() string {
	t := k.namespace + "/" + k.typ
	if k.child != "" {
		t += "/" + k.child
	}
	return t
}

// route is one parsed ARM request path. ARM matches names and types case-insensitively
// (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
type route struct {
	sub       string
	group     string // "" for subscription-level routes
	kind      *kind  // nil for the group itself
	name      string // "" for a list
	childName string
	opID      string // long-running operation polls
	opResult  bool   // Location-style poll
	special   string // a read about the subscription (authorization.go)
}

func parseRoute(path string) (route, bool) {
	p := strings.Split(strings.Trim(path, "/"), "/")
	eq := strings.EqualFold
	if len(p) < 2 || !eq(p[0], "subscriptions") {
		return route{}, false
	}
	rt := route{sub: p[1]}
	rest := p[2:]
	switch {
	case len(rest) == 2 && eq(rest[0], "operationresults"):
		rt.opID, rt.opResult = rest[1], true
		return rt, true
	case len(rest) == 6 && eq(rest[0], "providers") && eq(rest[2], "locations") && eq(rest[4], "operations"):
		rt.opID = rest[5]
		return rt, true
	case len(rest) >= 2 && eq(rest[0], "resourceGroups"):
		rt.group = rest[1]
		rest = rest[2:]
	default:
		return parseSpecial(rt, rest)
	}
	if len(rest) == 0 {
		return rt, true
	}
	if sp, ok := parseSpecial(rt, rest); ok {
		return sp, true
	}
	if len(rest) < 3 || !eq(rest[0], "providers") {
		return route{}, false
	}
	ns, typ := rest[1], rest[2]
	rest = rest[3:]
	child := ""
	if len(rest) >= 1 {
		rt.name = rest[0]
	}
	if len(rest) >= 2 {
		child = rest[1]
	}
	if len(rest) >= 3 {
		rt.childName = rest[2]
	}
	if len(rest) > 3 {
		return route{}, false
	}
	for i := range kinds {
		k := &kinds[i]
		if eq(k.namespace, ns) && eq(k.typ, typ) && eq(k.child, child) {
			rt.kind = k
			return rt, true
		}
	}
	return route{}, false
}

func (rt route) op(method string) string {
	verb := map[string]string{http.MethodPut: "Put", http.MethodGet: "Get", http.MethodDelete: "Delete"}[method]
	if verb == "" {
		verb = method
	}
	switch {
	case rt.opID != "":
		return "operations.Get"
	case rt.special != "":
		return specialOp(rt)
	case rt.kind == nil:
		return "resourceGroups." + verb
	case verb == "Get" && (rt.name == "" || rt.kind.child != "" && rt.childName == ""):
		return rt.kind.op + ".List"
	}
	return rt.kind.op + "." + verb
}

// action is the RBAC action a request needs
// (https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations).
func (rt route) action(method string) string {
	t := "Microsoft.Resources/subscriptions/resourceGroups"
	if rt.kind != nil {
		t = rt.kind.fullType()
	}
	switch method {
	case http.MethodPut:
		return t + "/write"
	case http.MethodDelete:
		return t + "/delete"
	}
	return t + "/read"
}

func (s *Server) resourceID(group string, k *kind, name, childName string) string {
	id := "/subscriptions/" + s.opts.SubscriptionID + "/resourceGroups/" + group + "/providers/" + k.namespace + "/" + k.typ + "/" + name
	if k.child != "" {
		id += "/" + k.child + "/" + childName
	}
	return id
}

func (s *Server) serveARM(w http.ResponseWriter, r *http.Request) {
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		s.count("unknown")
		// ARM's reply for a path no provider serves.
		writeError(w, errf(http.StatusNotFound, "InvalidResourceType", "The resource type could not be found in the namespace for api version '%s'.", r.URL.Query().Get("api-version")))
		return
	}
	op := rt.op(r.Method)
	s.count(op)
	status, e := s.serveARMRoute(w, r, rt, op)
	if e != nil {
		s.logf("arm %s -> %d %s", op, e.Status, e.Code)
		writeError(w, e)
		return
	}
	s.logf("arm %s -> %d", op, status)
}

// serveARMRoute authenticates, checks, injects faults and acts; it writes
// successful replies itself and returns the error reply, if any.
func (s *Server) serveARMRoute(w http.ResponseWriter, r *http.Request, rt route, op string) (int, *Error) {
	if r.Header.Get("Authorization") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+s.URL()+"/"+s.opts.TenantID+`", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`)
		return 0, errf(http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
	}
	tok, ok := s.authenticate(r, s.URL())
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+s.URL()+"/"+s.opts.TenantID+`", error="invalid_token", error_description="The access token is invalid."`)
		return 0, errf(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
	}
	if e := invalidSubscription(rt.sub); e != nil {
		return 0, e
	}
	if !strings.EqualFold(rt.sub, s.opts.SubscriptionID) {
		// https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found
		return 0, errf(http.StatusNotFound, "SubscriptionNotFound", "The subscription '%s' could not be found.", rt.sub)
	}
	want := ResourcesAPIVersion
	switch {
	case rt.kind != nil:
		want = rt.kind.apiVersion
	case rt.special != "":
		want = specialAPIVersion(rt.special)
	}
	got := r.URL.Query().Get("api-version")
	switch {
	case rt.opID != "":
	case got == "":
		return 0, errf(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
	case got != want && rt.kind != nil:
		// https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-register-resource-provider
		return 0, errf(http.StatusBadRequest, "NoRegisteredProviderFound", "No registered resource provider found for location '%s' and API version '%s' for type '%s'. The supported api-versions are '%s'.",
			s.opts.Location, got, rt.kind.typ, want)
	case got != want:
		return 0, errf(http.StatusBadRequest, "InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported versions are '%s'.", got, want)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return 0, errf(http.StatusBadRequest, "InvalidRequestContent", "The request content could not be read.")
	}
	if rt.opID == "" {
		if e := s.authorize(tok.clientID, rt, r.Method, body); e != nil {
			return 0, e
		}
	}
	if e := s.injectedFor(op); e != nil {
		return 0, e
	}
	drop, after := s.dropFor(op)
	if drop && !after {
		cut(w)
		return 0, nil
	}
	status, out, hdr, e := s.act(r, rt, op, body)
	if drop {
		cut(w)
		return 0, nil
	}
	if e != nil {
		return 0, e
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	writeJSON(w, status, out)
	return status, nil
}

func (s *Server) act(r *http.Request, rt route, op string, body []byte) (int, any, http.Header, *Error) {
	if rt.opID != "" {
		return s.pollOperation(rt)
	}
	if rt.special != "" {
		return s.actSpecial(r, rt)
	}
	if rt.kind == nil {
		switch r.Method {
		case http.MethodPut:
			return s.putGroup(rt, body)
		case http.MethodGet:
			return s.getGroup(rt)
		case http.MethodDelete:
			return s.deleteGroup(rt)
		}
		return 0, nil, nil, errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method %s is not allowed.", r.Method)
	}
	if strings.HasSuffix(op, ".List") {
		return s.list(r, rt)
	}
	switch r.Method {
	case http.MethodPut:
		return s.put(rt, op, body)
	case http.MethodGet:
		return s.get(rt)
	case http.MethodDelete:
		return s.delete(rt)
	}
	return 0, nil, nil, errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method %s is not allowed.", r.Method)
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// operation is one long-running operation.
type operation struct {
	id     string
	status string // InProgress, Succeeded, Failed
	err    *Error
	done   func() (*Error, []func()) // applies the outcome under s.mu; returns hooks to run after
}

// startOperation records an operation that finishes after OperationDelay
// and returns the headers that point the SDK's poller at it: an absolute
// Azure-AsyncOperation URL under the provider's location (the real Compute
// and Network RP shape; mod: sdk/azcore/internal/pollers/async/async.go),
// and for DELETE a Location too.
func (s *Server) startOperation(namespace string, withLocation bool, done func() (*Error, []func())) http.Header {
	o := &operation{id: newID(), status: "InProgress", done: done}
	s.ops[o.id] = o
	s.timers.Add(1)
	time.AfterFunc(s.opts.OperationDelay, func() {
		defer s.timers.Done()
		s.finish(o)
	})
	h := http.Header{}
	h.Set("Azure-AsyncOperation", fmt.Sprintf("%s/subscriptions/%s/providers/%s/locations/%s/operations/%s?api-version=%s",
		s.URL(), s.opts.SubscriptionID, namespace, s.opts.Location, o.id, ComputeAPIVersion))
	if withLocation {
		h.Set("Location", fmt.Sprintf("%s/subscriptions/%s/operationresults/%s?api-version=%s", s.URL(), s.opts.SubscriptionID, o.id, ResourcesAPIVersion))
	}
	h.Set("Retry-After", "0")
	return h
}

func (s *Server) finish(o *operation) {
	s.mu.Lock()
	if o.status != "InProgress" {
		s.mu.Unlock()
		return
	}
	e, hooks := o.done()
	if e != nil {
		o.status, o.err = "Failed", e
	} else {
		o.status = "Succeeded"
	}
	s.mu.Unlock()
	for _, h := range hooks {
		h()
	}
	// Any finished operation may change what a load balancer forwards to
	// (its own PUT, a NIC joining or leaving a pool, a VM going).
	s.reportLoadBalancers()
}

// pollOperation answers the async-operation document
// (https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations):
// {"status": ...} with ARM's error on failure; a Location poll answers 202
// while in progress and 200 when done.
func (s *Server) pollOperation(rt route) (int, any, http.Header, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.ops[rt.opID]
	if !ok {
		return 0, nil, nil, errf(http.StatusNotFound, "NotFound", "The operation '%s' was not found.", rt.opID)
	}
	if rt.opResult {
		switch o.status {
		case "InProgress":
			return http.StatusAccepted, nil, http.Header{"Retry-After": {"0"}}, nil
		case "Failed":
			return 0, nil, nil, o.err
		}
		return http.StatusOK, nil, nil, nil
	}
	doc := map[string]any{"name": o.id, "status": o.status}
	if o.err != nil {
		doc["error"] = map[string]any{"code": o.err.Code, "message": o.err.Message}
	}
	return http.StatusOK, doc, nil, nil
}

// page returns one page of items and the nextLink for the rest.
func (s *Server) page(r *http.Request, items []any) (map[string]any, *Error) {
	skip := 0
	if t := r.URL.Query().Get("$skiptoken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, errf(http.StatusBadRequest, "InvalidSkipToken", "The skip token '%s' is invalid.", t)
		}
		skip = n
	}
	skip = min(skip, len(items))
	end := min(skip+s.opts.PageSize, len(items))
	out := map[string]any{"value": items[skip:end]}
	if end < len(items) {
		q := url.Values{"api-version": {r.URL.Query().Get("api-version")}, "$skiptoken": {strconv.Itoa(end)}}
		out["nextLink"] = s.URL() + r.URL.Path + "?" + q.Encode()
	}
	return out, nil
}

// sortedKeys returns a map's keys in order, for deterministic lists.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// clone deep-copies an SDK model through its JSON form.
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}
