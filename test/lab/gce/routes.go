package gce

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"google.golang.org/protobuf/proto"
)

// call is one parsed request: the API method, the IAM permission it needs
// and the resource it names, with the path's parts.
type call struct {
	method     string
	permission string
	resource   string
	project    string
	zone       string
	region     string
	name       string
	version    string
	secrets    bool
	// iam is an IAM Service Account Credentials call (iam.go).
	iam bool
	// principal is the IAM member the request's token stands for.
	principal string
	handle    func(s *Server, r *http.Request, c *call) (proto.Message, *Error, func())
}

// routes dispatches the Compute paths
// /compute/v1/projects/{project}/{zones/{zone}|regions/{region}|global|aggregated}/...
// (compute apiv1 *_client.go, baseUrl.Path) and the Secret Manager paths
// /v1/projects/{project}/secrets[/{secret}[:addVersion|/versions/{v}:access]]
// (secretmanager apiv1 secret_manager_client.go), and IAM Credentials'
// /v1/projects/-/serviceAccounts/{account}:generateAccessToken (iam.go).
func (s *Server) routes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, e := parse(r)
		secrets := c != nil && c.secrets || strings.HasPrefix(r.URL.Path, "/v1/")
		principal, ae := s.authenticate(r, c)
		if c != nil {
			c.principal = principal
			s.mu.Lock()
			s.calls[c.method]++
			if principal != "" {
				if s.st.iam.byCaller[principal] == nil {
					s.st.iam.byCaller[principal] = map[string]int{}
				}
				s.st.iam.byCaller[principal][c.method]++
			}
			s.mu.Unlock()
		}
		if e == nil {
			e = ae
		}
		if e == nil {
			e = s.projectKnown(c)
		}
		if e == nil {
			e = s.faultFor(c.method, c.permission, c.resource, r)
		}
		if e != nil {
			name := "?"
			if c != nil {
				name = c.method
			}
			s.logf("gce %s -> %d %s", name, e.Status, e.Reason)
			writeError(w, e, secrets)
			return
		}
		out, e, after := s.serve(r, c)
		if after != nil {
			after()
		}
		if e != nil {
			s.logf("gce %s -> %d %s", c.method, e.Status, e.Reason)
			writeError(w, e, secrets)
			return
		}
		if s.dropReply(c.method) {
			s.logf("gce %s -> dropped", c.method)
			dropConnection()
		}
		s.logf("gce %s -> 200", c.method)
		writeProto(w, r, out)
	})
}

func parse(r *http.Request) (*call, *Error) {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/compute/v1/projects/"); ok {
		return parseCompute(r.Method, rest)
	}
	if rest, ok := strings.CutPrefix(p, "/v1/projects/"); ok {
		if strings.Contains(rest, "/serviceAccounts/") {
			return parseIAM(r.Method, rest)
		}
		return parseSecrets(r.Method, rest)
	}
	return nil, notFound(p)
}

func parseCompute(verb, rest string) (*call, *Error) {
	seg := strings.Split(rest, "/")
	c := &call{project: seg[0]}
	base := "projects/" + seg[0]
	seg = seg[1:]
	unknown := &Error{Status: http.StatusNotFound, Reason: "notFound", Message: "The requested URL was not found on this server."}
	if len(seg) < 2 {
		return nil, unknown
	}
	switch seg[0] {
	case "zones":
		c.zone = seg[1]
		base += "/zones/" + c.zone
		seg = seg[2:]
	case "regions":
		c.region = seg[1]
		base += "/regions/" + c.region
		seg = seg[2:]
	case "global", "aggregated":
		if seg[0] == "aggregated" && len(seg) == 2 && seg[1] == "instances" && verb == http.MethodGet {
			c.method, c.permission, c.resource, c.handle = "instances.aggregatedList", "compute.instances.list", base, (*Server).aggregatedList
			return c, nil
		}
		base += "/global"
		seg = seg[1:]
	default:
		return nil, unknown
	}
	if len(seg) == 0 {
		return nil, unknown
	}
	kind := seg[0]
	if len(seg) > 1 {
		c.name = seg[1]
	}
	c.resource = base + "/" + strings.Join(seg, "/")
	sub := ""
	if len(seg) > 2 {
		sub = strings.Join(seg[2:], "/")
	}
	type key struct{ kind, verb, sub string }
	type route struct {
		method, perm string
		named        bool
		h            func(s *Server, r *http.Request, c *call) (proto.Message, *Error, func())
	}
	routes := map[key]route{
		{"instances", "GET", ""}:                      {"instances.list", "compute.instances.list", false, (*Server).listInstances},
		{"instances", "POST", ""}:                     {"instances.insert", "compute.instances.create", false, (*Server).insertInstance},
		{"instances", "GET", "."}:                     {"instances.get", "compute.instances.get", true, (*Server).getInstance},
		{"instances", "DELETE", "."}:                  {"instances.delete", "compute.instances.delete", true, (*Server).deleteInstance},
		{"instances", "POST", "start"}:                {"instances.start", "compute.instances.start", true, (*Server).startInstance},
		{"instances", "GET", "getGuestAttributes"}:    {"instances.getGuestAttributes", "compute.instances.getGuestAttributes", true, (*Server).guestAttributes},
		{"instances", "GET", "serialPort"}:            {"instances.getSerialPortOutput", "compute.instances.getSerialPortOutput", true, (*Server).serialPort},
		{"networks", "POST", ""}:                      {"networks.insert", "compute.networks.create", false, (*Server).insertNetwork},
		{"networks", "GET", "."}:                      {"networks.get", "compute.networks.get", true, (*Server).getNetwork},
		{"networks", "DELETE", "."}:                   {"networks.delete", "compute.networks.delete", true, (*Server).deleteNetwork},
		{"subnetworks", "POST", ""}:                   {"subnetworks.insert", "compute.subnetworks.create", false, (*Server).insertSubnetwork},
		{"subnetworks", "GET", "."}:                   {"subnetworks.get", "compute.subnetworks.get", true, (*Server).getSubnetwork},
		{"subnetworks", "DELETE", "."}:                {"subnetworks.delete", "compute.subnetworks.delete", true, (*Server).deleteSubnetwork},
		{"firewalls", "POST", ""}:                     {"firewalls.insert", "compute.firewalls.create", false, (*Server).insertFirewall},
		{"firewalls", "GET", "."}:                     {"firewalls.get", "compute.firewalls.get", true, (*Server).getFirewall},
		{"firewalls", "DELETE", "."}:                  {"firewalls.delete", "compute.firewalls.delete", true, (*Server).deleteFirewall},
		{"firewalls", "PATCH", "."}:                   {"firewalls.patch", "compute.firewalls.update", true, (*Server).patchFirewall},
		{"addresses", "POST", ""}:                     {"addresses.insert", "compute.addresses.create", false, (*Server).insertAddress},
		{"addresses", "GET", "."}:                     {"addresses.get", "compute.addresses.get", true, (*Server).getAddress},
		{"addresses", "DELETE", "."}:                  {"addresses.delete", "compute.addresses.delete", true, (*Server).deleteAddress},
		{"addresses", "POST", "setLabels"}:            {"addresses.setLabels", "compute.addresses.setLabels", true, (*Server).setAddressLabels},
		{"forwardingRules", "POST", ""}:               {"forwardingRules.insert", "compute.forwardingRules.create", false, (*Server).insertForwardingRule},
		{"forwardingRules", "GET", "."}:               {"forwardingRules.get", "compute.forwardingRules.get", true, (*Server).getForwardingRule},
		{"forwardingRules", "DELETE", "."}:            {"forwardingRules.delete", "compute.forwardingRules.delete", true, (*Server).deleteForwardingRule},
		{"forwardingRules", "POST", "setLabels"}:      {"forwardingRules.setLabels", "compute.forwardingRules.setLabels", true, (*Server).setForwardingRuleLabels},
		{"healthChecks", "POST", ""}:                  {"regionHealthChecks.insert", "compute.regionHealthChecks.create", false, (*Server).insertHealthCheck},
		{"healthChecks", "GET", "."}:                  {"regionHealthChecks.get", "compute.regionHealthChecks.get", true, (*Server).getHealthCheck},
		{"healthChecks", "DELETE", "."}:               {"regionHealthChecks.delete", "compute.regionHealthChecks.delete", true, (*Server).deleteHealthCheck},
		{"backendServices", "POST", ""}:               {"regionBackendServices.insert", "compute.regionBackendServices.create", false, (*Server).insertBackendService},
		{"backendServices", "GET", "."}:               {"regionBackendServices.get", "compute.regionBackendServices.get", true, (*Server).getBackendService},
		{"backendServices", "DELETE", "."}:            {"regionBackendServices.delete", "compute.regionBackendServices.delete", true, (*Server).deleteBackendService},
		{"backendServices", "PATCH", "."}:             {"regionBackendServices.patch", "compute.regionBackendServices.update", true, (*Server).patchBackendService},
		{"instanceGroups", "POST", ""}:                {"instanceGroups.insert", "compute.instanceGroups.create", false, (*Server).insertGroup},
		{"instanceGroups", "GET", "."}:                {"instanceGroups.get", "compute.instanceGroups.get", true, (*Server).getGroup},
		{"instanceGroups", "DELETE", "."}:             {"instanceGroups.delete", "compute.instanceGroups.delete", true, (*Server).deleteGroup},
		{"instanceGroups", "POST", "addInstances"}:    {"instanceGroups.addInstances", "compute.instanceGroups.update", true, (*Server).addInstances},
		{"instanceGroups", "POST", "removeInstances"}: {"instanceGroups.removeInstances", "compute.instanceGroups.update", true, (*Server).removeInstances},
		{"instanceGroups", "POST", "listInstances"}:   {"instanceGroups.listInstances", "compute.instanceGroups.list", true, (*Server).listGroupInstances},
		{"operations", "GET", "."}:                    {"operations.get", "", true, (*Server).getOperation},
		{"operations", "POST", "wait"}:                {"operations.wait", "", true, (*Server).waitOperation},
	}
	k := key{kind, verb, sub}
	if c.name != "" && sub == "" {
		k.sub = "."
	}
	rt, ok := routes[k]
	if !ok || rt.named != (c.name != "") {
		return nil, unknown
	}
	// Each collection lives in one scope: instances in zones, subnetworks
	// in regions, networks and firewalls in global; operations in all three.
	scopeOK := map[string]bool{"instances": c.zone != "", "subnetworks": c.region != "", "networks": c.zone == "" && c.region == "",
		"firewalls": c.zone == "" && c.region == "", "operations": true,
		"addresses": c.region != "", "forwardingRules": c.region != "", "healthChecks": c.region != "", "backendServices": c.region != "",
		"instanceGroups": c.zone != ""}
	if !scopeOK[kind] {
		return nil, unknown
	}
	if kind == "operations" {
		scope := "global"
		switch {
		case c.zone != "":
			scope = "zone"
		case c.region != "":
			scope = "region"
		}
		rt.method = scope + "Operations." + strings.TrimPrefix(rt.method, "operations.")
		rt.perm = "compute." + scope + "Operations.get"
	}
	c.method, c.permission, c.handle = rt.method, rt.perm, rt.h
	return c, nil
}

func parseSecrets(verb, rest string) (*call, *Error) {
	c := &call{secrets: true}
	project, rest, _ := strings.Cut(rest, "/")
	c.project = project
	unknown := &Error{Status: http.StatusNotFound, Reason: "NOT_FOUND", Message: "The requested URL was not found on this server."}
	rest, ok := strings.CutPrefix(rest, "secrets")
	if !ok {
		return nil, unknown
	}
	c.resource = "projects/" + project
	switch {
	case rest == "" && verb == http.MethodPost:
		c.method, c.permission, c.handle = "secrets.create", "secretmanager.secrets.create", (*Server).createSecret
	case rest == "" && verb == http.MethodGet:
		c.method, c.permission, c.handle = "secrets.list", "secretmanager.secrets.list", (*Server).listSecrets
	case strings.HasPrefix(rest, "/"):
		rest = rest[1:]
		if id, ok := strings.CutSuffix(rest, ":addVersion"); ok && verb == http.MethodPost {
			c.name = id
			c.method, c.permission, c.handle = "secrets.addVersion", "secretmanager.versions.add", (*Server).addVersion
		} else if id, v, ok := strings.Cut(rest, "/versions/"); ok && verb == http.MethodGet && strings.HasSuffix(v, ":access") {
			c.name = id
			c.version = strings.TrimSuffix(v, ":access")
			c.method, c.permission, c.handle = "versions.access", "secretmanager.versions.access", (*Server).accessVersion
		} else if !strings.ContainsAny(rest, "/:") && verb == http.MethodDelete {
			c.name = rest
			c.method, c.permission, c.handle = "secrets.delete", "secretmanager.secrets.delete", (*Server).deleteSecret
		} else if !strings.ContainsAny(rest, "/:") && verb == http.MethodGet {
			c.name = rest
			c.method, c.permission, c.handle = "secrets.get", "secretmanager.secrets.get", (*Server).getSecret
		} else {
			return nil, unknown
		}
		c.resource += "/secrets/" + c.name
	default:
		return nil, unknown
	}
	return c, nil
}

// serve runs a handler with the state locked; a handler that panics is a
// bug in the emulator, answered as a 500 naming it.
func (s *Server) serve(r *http.Request, c *call) (out proto.Message, e *Error, after func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			out, after = nil, nil
			s.logf("gce %s panicked: %v\n%s", c.method, p, debug.Stack())
			e = &Error{Status: http.StatusInternalServerError, Reason: "internalError", Message: fmt.Sprintf("emulator bug in %s: %v", c.method, p)}
		}
	}()
	return c.handle(s, r, c)
}
