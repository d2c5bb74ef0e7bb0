package gce

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Regional passthrough load balancing as clouds/gcp builds it: regional
// addresses, regional TCP health checks, regional backend services
// (INTERNAL or EXTERNAL) whose backends are zonal unmanaged instance groups,
// and regional forwarding rules. Each rule below names its source: the
// Compute v1 REST reference
// (https://cloud.google.com/compute/docs/reference/rest/v1/<collection>) or
// the page cited beside it.

// LoadBalancer is a forwarding rule and what it forwards to, as the hook
// and the inspection API see it.
type LoadBalancer struct {
	// Name and SelfLink (projects/...) of the forwarding rule.
	Name, SelfLink string
	// Scheme is INTERNAL or EXTERNAL.
	Scheme string
	// Address is the IPv4 address the rule serves.
	Address string
	// Ports are the TCP ports it forwards (a passthrough rule keeps the port).
	Ports []int
	// Labels and Description of the forwarding rule.
	Labels      map[string]string
	Description string
	// BackendService is the name of the backend service it forwards to.
	BackendService string
	// Targets are the decimal IDs of the instances in the backend
	// service's groups, sorted.
	Targets []string
	// Health is the backend service's health check.
	Health HealthCheck
	// Deleted is set in the hook's last call for a forwarding rule.
	Deleted bool
}

// HealthCheck is a TCP health check as Compute runs it.
type HealthCheck struct {
	Port               int
	Interval, Timeout  time.Duration
	Healthy, Unhealthy int
}

// group is an unmanaged instance group: its members by instance selfLink (projects/...).
type group struct {
	pb      *computepb.InstanceGroup
	zone    string
	members []string
}

func (st *state) lbInit() {
	st.addresses, st.forwardingRules = map[string]*computepb.Address{}, map[string]*computepb.ForwardingRule{}
	st.backendServices, st.healthChecks = map[string]*computepb.BackendService{}, map[string]*computepb.HealthCheck{}
	st.groups = map[string]*group{}
}

// inUseSync is the synchronous refusal to delete an object another still
// references: 400 resourceInUseByAnotherResource, "The health_check resource
// '...' is already being used by '...'"
// (gh:terraform-google-modules/terraform-google-lb-internal#19).
func inUseSync(kind, what, by string) *Error {
	return &Error{Status: http.StatusBadRequest, Reason: "resourceInUseByAnotherResource",
		Message: fmt.Sprintf("The %s resource '%s' is already being used by '%s'", kind, what, by)}
}

// conditionNotMet is a stale fingerprint: "the request will fail with
// error 412 conditionNotMet" (labelFingerprint and fingerprint fields).
func conditionNotMet(msg string) *Error {
	return &Error{Status: http.StatusPreconditionFailed, Reason: "conditionNotMet", Message: msg}
}

func (s *Server) regionKnown(c *call) *Error {
	if c.region != s.opts.Region {
		return notFound("projects/" + c.project + "/regions/" + c.region)
	}
	return nil
}

// regionalRef resolves a reference to a regional object of kind in this
// region: its name, or "" when it names another scope.
func (s *Server) regionalRef(project, ref, kind string) string {
	rel := relative(project, ref)
	prefix := "projects/" + project + "/regions/" + s.opts.Region + "/" + kind + "/"
	if !strings.HasPrefix(rel, prefix) || strings.Contains(rel[len(prefix):], "/") {
		return ""
	}
	return rel[len(prefix):]
}

// zonalRef resolves projects/p/zones/z/<kind>/n to zone and name.
func zonalRef(project, ref, kind string) (string, string, bool) {
	parts := strings.Split(relative(project, ref), "/")
	if len(parts) != 6 || parts[0] != "projects" || parts[1] != project || parts[2] != "zones" || parts[4] != kind {
		return "", "", false
	}
	return parts[3], parts[5], true
}

// ----- addresses -----

// insertAddress reserves a regional address. INTERNAL takes a free address
// of its subnetwork; EXTERNAL (the default) a public one and no
// subnetwork. Labels are not taken on insert: "These can only be added or
// modified by the setLabels method" (Address.labels).
func (s *Server) insertAddress(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if e := s.regionKnown(c); e != nil {
		return nil, e, nil
	}
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	a := &computepb.Address{}
	if e := readProto(r, a); e != nil {
		return nil, e, nil
	}
	if !nameRE.MatchString(a.GetName()) {
		return nil, invalidField("resource.name", a.GetName()), nil
	}
	typ := a.GetAddressType()
	if typ == "" {
		typ = "EXTERNAL"
	}
	var sub *computepb.Subnetwork
	switch typ {
	case "INTERNAL":
		p, key := s.subnetRef(c.project, a.GetSubnetwork())
		if sub = s.st.subnetworks[key]; sub == nil {
			return nil, notFound(relative(c.project, a.GetSubnetwork())), nil
		}
		if !s.mayUse(c.project, p) {
			return nil, crossProject("resource.subnetwork", a.GetSubnetwork()), nil
		}
	case "EXTERNAL":
		if a.GetSubnetwork() != "" {
			return nil, badRequest("invalid", "Invalid value for field 'resource.subnetwork': '"+a.GetSubnetwork()+"'. An external address cannot have a subnetwork."), nil
		}
	default:
		return nil, invalidField("resource.addressType", typ), nil
	}
	res := "projects/" + c.project + "/regions/" + c.region + "/addresses/" + a.GetName()
	if s.st.addresses[a.GetName()] != nil || s.st.reserved["address/"+a.GetName()] {
		return nil, alreadyExists(res), nil
	}
	s.st.reserved["address/"+a.GetName()] = true
	id := s.st.id()
	return s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "address/"+a.GetName())
		out := &computepb.Address{Kind: proto.String("compute#address"), Id: proto.Uint64(id), Name: a.Name, Description: a.Description,
			SelfLink: proto.String(selfLinkBase + res), Region: proto.String(selfLinkBase + "projects/" + c.project + "/regions/" + c.region),
			AddressType: proto.String(typ), Status: proto.String("RESERVED"), LabelFingerprint: proto.String(fingerprint(map[string]string{})),
			CreationTimestamp: proto.String(time.Now().Format(time.RFC3339Nano)), Purpose: a.Purpose}
		if typ == "INTERNAL" {
			out.Address = proto.String(s.nextAddress(sub.GetSelfLink(), sub.GetIpCidrRange()).String())
			out.Subnetwork = proto.String(sub.GetSelfLink())
			out.Network = proto.String(sub.GetNetwork())
		} else {
			pub := s.st.nextPublic
			s.st.nextPublic = pub.Next()
			out.Address, out.NetworkTier = proto.String(pub.String()), proto.String("PREMIUM")
		}
		s.st.addresses[a.GetName()] = out
		return nil, nil
	}), nil, nil
}

func (s *Server) getAddress(r *http.Request, c *call) (proto.Message, *Error, func()) {
	a := s.st.addresses[c.name]
	if c.region != s.opts.Region || a == nil {
		return nil, notFound(c.resource), nil
	}
	return clone(a), nil, nil
}

func (s *Server) deleteAddress(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	a := s.st.addresses[c.name]
	if c.region != s.opts.Region || a == nil {
		return nil, notFound(c.resource), nil
	}
	if users := a.GetUsers(); len(users) > 0 {
		return nil, inUseSync("address", c.resource, strings.TrimPrefix(users[0], selfLinkBase)), nil
	}
	return s.startOperation(c, reqID, "delete", c.resource, a.GetId(), func() (*opFailure, func()) {
		delete(s.st.addresses, c.name)
		return nil, nil
	}), nil, nil
}

// setLabels replaces an object's labels when the request carries its
// current labelFingerprint (RegionSetLabelsRequest.labelFingerprint: "Make
// sure that you provide an up-to-date fingerprint hash in order to update
// or change labels").
func (s *Server) setLabels(r *http.Request, c *call, current func() (string, bool), set func(map[string]string)) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	fp, ok := current()
	if c.region != s.opts.Region || !ok {
		return nil, notFound(c.resource), nil
	}
	req := &computepb.RegionSetLabelsRequest{}
	if e := readProto(r, req); e != nil {
		return nil, e, nil
	}
	if e := validateLabels("labels", req.GetLabels()); e != nil {
		return nil, e, nil
	}
	if req.GetLabelFingerprint() != fp {
		return nil, conditionNotMet(fmt.Sprintf("Labels fingerprint either invalid or resource labels have changed (have %q)", fp)), nil
	}
	want := maps.Clone(req.GetLabels())
	id := s.st.id()
	return s.startOperation(c, reqID, "setLabels", c.resource, id, func() (*opFailure, func()) {
		if _, ok := current(); ok {
			set(want)
		}
		return nil, s.lbNotify
	}), nil, nil
}

func (s *Server) setAddressLabels(r *http.Request, c *call) (proto.Message, *Error, func()) {
	return s.setLabels(r, c, func() (string, bool) {
		a := s.st.addresses[c.name]
		return a.GetLabelFingerprint(), a != nil
	}, func(l map[string]string) {
		a := s.st.addresses[c.name]
		a.Labels, a.LabelFingerprint = l, proto.String(fingerprint(l))
	})
}

// ----- health checks -----

// insertHealthCheck: a TCP check needs tcpHealthCheck with a port; the
// interval is 1-300s (default 5), the timeout (default 5) "invalid ... to
// have greater value than checkIntervalSec", thresholds 1-10 (default 2)
// (HealthCheck fields).
func (s *Server) insertHealthCheck(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if e := s.regionKnown(c); e != nil {
		return nil, e, nil
	}
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	hc := &computepb.HealthCheck{}
	if e := readProto(r, hc); e != nil {
		return nil, e, nil
	}
	if !nameRE.MatchString(hc.GetName()) {
		return nil, invalidField("resource.name", hc.GetName()), nil
	}
	if hc.GetType() != "TCP" {
		return nil, invalidField("resource.type", hc.GetType()), nil // the emulator serves TCP checks only
	}
	if hc.TcpHealthCheck == nil || hc.GetTcpHealthCheck().GetPort() < 1 || hc.GetTcpHealthCheck().GetPort() > 65535 {
		return nil, invalidField("resource.tcpHealthCheck.port", strconv.Itoa(int(hc.GetTcpHealthCheck().GetPort()))), nil
	}
	def := func(p **int32, v int32) {
		if *p == nil {
			*p = proto.Int32(v)
		}
	}
	def(&hc.CheckIntervalSec, 5)
	def(&hc.TimeoutSec, 5)
	def(&hc.HealthyThreshold, 2)
	def(&hc.UnhealthyThreshold, 2)
	switch {
	case hc.GetCheckIntervalSec() < 1 || hc.GetCheckIntervalSec() > 300:
		return nil, invalidField("resource.checkIntervalSec", strconv.Itoa(int(hc.GetCheckIntervalSec()))), nil
	case hc.GetTimeoutSec() < 1 || hc.GetTimeoutSec() > hc.GetCheckIntervalSec():
		return nil, badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.timeoutSec': '%d'. TimeoutSec should be less than or equal to checkIntervalSec.", hc.GetTimeoutSec())), nil
	case hc.GetHealthyThreshold() < 1 || hc.GetHealthyThreshold() > 10:
		return nil, invalidField("resource.healthyThreshold", strconv.Itoa(int(hc.GetHealthyThreshold()))), nil
	case hc.GetUnhealthyThreshold() < 1 || hc.GetUnhealthyThreshold() > 10:
		return nil, invalidField("resource.unhealthyThreshold", strconv.Itoa(int(hc.GetUnhealthyThreshold()))), nil
	}
	res := "projects/" + c.project + "/regions/" + c.region + "/healthChecks/" + hc.GetName()
	if s.st.healthChecks[hc.GetName()] != nil || s.st.reserved["healthCheck/"+hc.GetName()] {
		return nil, alreadyExists(res), nil
	}
	s.st.reserved["healthCheck/"+hc.GetName()] = true
	id := s.st.id()
	return s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "healthCheck/"+hc.GetName())
		out := clone(hc)
		out.Kind, out.Id, out.SelfLink = proto.String("compute#healthCheck"), proto.Uint64(id), proto.String(selfLinkBase+res)
		out.Region = proto.String(selfLinkBase + "projects/" + c.project + "/regions/" + c.region)
		out.CreationTimestamp = proto.String(time.Now().Format(time.RFC3339Nano))
		s.st.healthChecks[hc.GetName()] = out
		return nil, nil
	}), nil, nil
}

func (s *Server) getHealthCheck(r *http.Request, c *call) (proto.Message, *Error, func()) {
	hc := s.st.healthChecks[c.name]
	if c.region != s.opts.Region || hc == nil {
		return nil, notFound(c.resource), nil
	}
	return clone(hc), nil, nil
}

func (s *Server) deleteHealthCheck(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	hc := s.st.healthChecks[c.name]
	if c.region != s.opts.Region || hc == nil {
		return nil, notFound(c.resource), nil
	}
	for _, name := range slices.Sorted(maps.Keys(s.st.backendServices)) {
		bs := s.st.backendServices[name]
		for _, ref := range bs.GetHealthChecks() {
			if s.regionalRef(c.project, ref, "healthChecks") == c.name {
				return nil, inUseSync("health_check", c.resource, strings.TrimPrefix(bs.GetSelfLink(), selfLinkBase)), nil
			}
		}
	}
	return s.startOperation(c, reqID, "delete", c.resource, hc.GetId(), func() (*opFailure, func()) {
		delete(s.st.healthChecks, c.name)
		return nil, nil
	}), nil, nil
}

// ----- instance groups -----

func (s *Server) insertGroup(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if !s.zoneKnown(c.zone) {
		return nil, notFound("projects/" + c.project + "/zones/" + c.zone), nil
	}
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	g := &computepb.InstanceGroup{}
	if e := readProto(r, g); e != nil {
		return nil, e, nil
	}
	if !nameRE.MatchString(g.GetName()) {
		return nil, invalidField("resource.name", g.GetName()), nil
	}
	if p, key := s.netRef(c.project, g.GetNetwork()); g.GetNetwork() != "" && (s.st.networks[key] == nil || !s.mayUse(c.project, p)) {
		return nil, notFound(relative(c.project, g.GetNetwork())), nil
	}
	key := c.zone + "/" + g.GetName()
	res := "projects/" + c.project + "/zones/" + c.zone + "/instanceGroups/" + g.GetName()
	if s.st.groups[key] != nil || s.st.reserved["group/"+key] {
		return nil, alreadyExists(res), nil
	}
	s.st.reserved["group/"+key] = true
	id := s.st.id()
	return s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "group/"+key)
		out := &computepb.InstanceGroup{Kind: proto.String("compute#instanceGroup"), Id: proto.Uint64(id), Name: g.Name, Description: g.Description,
			SelfLink: proto.String(selfLinkBase + res), Zone: proto.String(selfLinkBase + "projects/" + c.project + "/zones/" + c.zone),
			NamedPorts: g.NamedPorts, Size: proto.Int32(0), Fingerprint: proto.String(fingerprint(id)),
			CreationTimestamp: proto.String(time.Now().Format(time.RFC3339Nano))}
		if g.GetNetwork() != "" {
			out.Network = proto.String(selfLinkBase + relative(c.project, g.GetNetwork()))
		}
		s.st.groups[key] = &group{pb: out, zone: c.zone}
		return nil, nil
	}), nil, nil
}

func (s *Server) findGroup(c *call) (*group, *Error) {
	if !s.zoneKnown(c.zone) {
		return nil, notFound("projects/" + c.project + "/zones/" + c.zone)
	}
	g := s.st.groups[c.zone+"/"+c.name]
	if g == nil {
		return nil, notFound("projects/" + c.project + "/zones/" + c.zone + "/instanceGroups/" + c.name)
	}
	return g, nil
}

func (s *Server) groupView(g *group) *computepb.InstanceGroup {
	out := clone(g.pb)
	out.Size = proto.Int32(int32(len(g.members)))
	return out
}

func (s *Server) getGroup(r *http.Request, c *call) (proto.Message, *Error, func()) {
	g, e := s.findGroup(c)
	if e != nil {
		return nil, e, nil
	}
	return s.groupView(g), nil, nil
}

// usersOfGroup are the backend services that name the group.
func (s *Server) usersOfGroup(project string, g *group) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(s.st.backendServices)) {
		bs := s.st.backendServices[name]
		for _, b := range bs.GetBackends() {
			if z, n, ok := zonalRef(project, b.GetGroup(), "instanceGroups"); ok && z == g.zone && n == g.pb.GetName() {
				out = append(out, strings.TrimPrefix(bs.GetSelfLink(), selfLinkBase))
			}
		}
	}
	return out
}

// deleteGroup refuses a group a backend service uses; its instances stay
// ("Deleting an unmanaged instance group doesn't delete its VMs",
// https://cloud.google.com/compute/docs/instance-groups/create-uig).
func (s *Server) deleteGroup(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	g, e := s.findGroup(c)
	if e != nil {
		return nil, e, nil
	}
	if users := s.usersOfGroup(c.project, g); len(users) > 0 {
		return nil, inUseSync("instance_group", c.resource, users[0]), nil
	}
	key := c.zone + "/" + c.name
	return s.startOperation(c, reqID, "delete", c.resource, g.pb.GetId(), func() (*opFailure, func()) {
		if s.st.groups[key] == g {
			delete(s.st.groups, key)
		}
		return nil, s.lbNotify
	}), nil, nil
}

// addInstances: every VM of an unmanaged group is in the group's zone and
// VPC network (https://cloud.google.com/compute/docs/instance-groups/create-uig),
// the first member sets the network of a group made without one, a VM
// is in at most one load-balanced unmanaged group (same page), and adding
// a member again is 400 memberAlreadyExists
// (gh:ansible-collections/google.cloud#349).
func (s *Server) addInstances(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	g, e := s.findGroup(c)
	if e != nil {
		return nil, e, nil
	}
	req := &computepb.InstanceGroupsAddInstancesRequest{}
	if e := readProto(r, req); e != nil {
		return nil, e, nil
	}
	if len(req.GetInstances()) == 0 {
		return nil, badRequest("required", "Required field 'resource.instances' not specified"), nil
	}
	network := ""
	if g.pb.GetNetwork() != "" {
		network = relative(c.project, g.pb.GetNetwork())
	}
	var add []string
	for i, ref := range req.GetInstances() {
		field := fmt.Sprintf("resource.instances[%d].instance", i)
		zone, name, ok := zonalRef(c.project, ref.GetInstance(), "instances")
		if !ok {
			return nil, invalidField(field, ref.GetInstance()), nil
		}
		link := "projects/" + c.project + "/zones/" + zone + "/instances/" + name
		in := s.st.instances[zone+"/"+name]
		if in == nil {
			return nil, notFound(link), nil
		}
		if zone != c.zone {
			return nil, badRequest("invalid", fmt.Sprintf("Invalid value for field '%s': '%s'. Instance is in zone '%s', the instance group in zone '%s'.", field, ref.GetInstance(), zone, c.zone)), nil
		}
		nw := relative(c.project, in.pb.GetNetworkInterfaces()[0].GetNetwork())
		if network != "" && nw != network {
			return nil, badRequest("invalid", fmt.Sprintf("Invalid value for field '%s': '%s'. Instance is in network '%s', the instance group in network '%s'.", field, ref.GetInstance(), nw, network)), nil
		}
		network = nw
		if slices.Contains(g.members, link) || slices.Contains(add, link) {
			return nil, &Error{Status: http.StatusBadRequest, Reason: "memberAlreadyExists",
				Message: fmt.Sprintf("Resource '%s' is already a member of '%s'.", link, c.resource)}, nil
		}
		for _, other := range s.st.groups {
			if other != g && slices.Contains(other.members, link) && len(s.usersOfGroup(c.project, other)) > 0 && len(s.usersOfGroup(c.project, g)) > 0 {
				return nil, badRequest("invalid", fmt.Sprintf("Resource '%s' is already a member of load-balanced instance group '%s'.", link, strings.TrimPrefix(other.pb.GetSelfLink(), selfLinkBase))), nil
			}
		}
		add = append(add, link)
	}
	return s.startOperation(c, reqID, "addInstances", c.resource, g.pb.GetId(), func() (*opFailure, func()) {
		for _, link := range add {
			if !slices.Contains(g.members, link) && s.st.instances[instanceKey(link)] != nil {
				g.members = append(g.members, link)
			}
		}
		if g.pb.GetNetwork() == "" && network != "" {
			g.pb.Network = proto.String(selfLinkBase + network)
		}
		return nil, s.lbNotify
	}), nil, nil
}

// instanceKey is the state key zone/name of an instance link.
func instanceKey(link string) string {
	parts := strings.Split(link, "/")
	return parts[3] + "/" + parts[5]
}

// removeInstances drops members. What Compute answers for an instance
// that is not a member is not documented; the emulator ignores it.
func (s *Server) removeInstances(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	g, e := s.findGroup(c)
	if e != nil {
		return nil, e, nil
	}
	req := &computepb.InstanceGroupsRemoveInstancesRequest{}
	if e := readProto(r, req); e != nil {
		return nil, e, nil
	}
	var drop []string
	for i, ref := range req.GetInstances() {
		zone, name, ok := zonalRef(c.project, ref.GetInstance(), "instances")
		if !ok {
			return nil, invalidField(fmt.Sprintf("resource.instances[%d].instance", i), ref.GetInstance()), nil
		}
		drop = append(drop, "projects/"+c.project+"/zones/"+zone+"/instances/"+name)
	}
	return s.startOperation(c, reqID, "removeInstances", c.resource, g.pb.GetId(), func() (*opFailure, func()) {
		g.members = slices.DeleteFunc(g.members, func(m string) bool { return slices.Contains(drop, m) })
		return nil, s.lbNotify
	}), nil, nil
}

// listGroupInstances is instanceGroups.listInstances (a POST that only
// reads): the members with their status, paged.
func (s *Server) listGroupInstances(r *http.Request, c *call) (proto.Message, *Error, func()) {
	g, e := s.findGroup(c)
	if e != nil {
		return nil, e, nil
	}
	// The Go client's ListInstances posts its whole request message, path
	// fields and page size included, with the body resource nested in it
	// (compute apiv1 instance_groups_client.go, ListInstances: m.Marshal(req));
	// Compute serves that client (gh:googleapis/google-cloud-go#9623 uses it),
	// so both shapes are read.
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, badRequest("invalid", "The request body could not be read"), nil
	}
	var state string
	whole, bare := &computepb.ListInstancesInstanceGroupsRequest{}, &computepb.InstanceGroupsListInstancesRequest{}
	switch {
	case protojson.Unmarshal(b, bare) == nil:
		state = bare.GetInstanceState()
	case protojson.Unmarshal(b, whole) == nil:
		state = whole.GetInstanceGroupsListInstancesRequestResource().GetInstanceState()
	default:
		return nil, badRequest("invalid", "Invalid JSON payload received."), nil
	}
	if state != "" && state != "ALL" && state != "RUNNING" {
		return nil, invalidField("resource.instanceState", state), nil
	}
	var all []*computepb.InstanceWithNamedPorts
	for _, m := range g.members {
		in := s.st.instances[instanceKey(m)]
		if in == nil || state == "RUNNING" && in.pb.GetStatus() != "RUNNING" {
			continue
		}
		all = append(all, &computepb.InstanceWithNamedPorts{Instance: proto.String(selfLinkBase + m), Status: proto.String(in.pb.GetStatus()), NamedPorts: g.pb.GetNamedPorts()})
	}
	page, next, e := pageOf(r, all)
	if e != nil {
		return nil, e, nil
	}
	out := &computepb.InstanceGroupsListInstances{Kind: proto.String("compute#instanceGroupsListInstances"), Id: proto.String(c.resource), Items: page}
	if next != "" {
		out.NextPageToken = proto.String(next)
	}
	return out, nil, nil
}

// dropMember removes a deleted instance from every group, as Compute
// lists only existing VMs in a group. Called with s.mu held.
func (s *Server) dropMember(link string) bool {
	changed := false
	for _, g := range s.st.groups {
		n := len(g.members)
		g.members = slices.DeleteFunc(g.members, func(m string) bool { return m == link })
		changed = changed || len(g.members) != n
	}
	return changed
}

// ----- backend services -----

// passthroughSchemes are the regional backend service schemes of
// passthrough load balancers: INTERNAL (internal passthrough) and EXTERNAL
// (backend service-based external passthrough), both TCP, both checked by
// a regional health check only for EXTERNAL
// (https://cloud.google.com/load-balancing/docs/health-check-concepts, "Load balancer guide").
var passthroughSchemes = map[string]bool{"INTERNAL": true, "EXTERNAL": true}

// validateBackendService: one health check of this region, groups of this
// region's zones that exist, CONNECTION balancing ("passthrough Network
// Load Balancers ... support only CONNECTION",
// https://cloud.google.com/load-balancing/docs/backend-service#balancing-mode),
// and for INTERNAL every group in the backend service's network.
func (s *Server) validateBackendService(project string, bs *computepb.BackendService) *Error {
	if !passthroughSchemes[bs.GetLoadBalancingScheme()] {
		return invalidField("resource.loadBalancingScheme", bs.GetLoadBalancingScheme())
	}
	if p := bs.GetProtocol(); p != "" && p != "TCP" && p != "UDP" && p != "UNSPECIFIED" {
		return invalidField("resource.protocol", p)
	}
	if len(bs.GetHealthChecks()) != 1 {
		return badRequest("invalid", "Invalid value for field 'resource.healthChecks': ''. A backend service of a passthrough load balancer needs exactly one health check.")
	}
	if name := s.regionalRef(project, bs.GetHealthChecks()[0], "healthChecks"); s.st.healthChecks[name] == nil {
		return invalidField("resource.healthChecks[0]", bs.GetHealthChecks()[0])
	}
	network := ""
	if bs.GetNetwork() != "" {
		if p, key := s.netRef(project, bs.GetNetwork()); s.st.networks[key] == nil || !s.mayUse(project, p) {
			return notFound(relative(project, bs.GetNetwork()))
		}
		network = relative(project, bs.GetNetwork())
	}
	for i, b := range bs.GetBackends() {
		zone, name, ok := zonalRef(project, b.GetGroup(), "instanceGroups")
		if !ok || !s.zoneKnown(zone) {
			return invalidField(fmt.Sprintf("resource.backends[%d].group", i), b.GetGroup())
		}
		g := s.st.groups[zone+"/"+name]
		if g == nil {
			return notFound(relative(project, b.GetGroup()))
		}
		if m := b.GetBalancingMode(); m != "" && m != "CONNECTION" {
			return badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.backends[%d].balancingMode': '%s'. Balancing mode must be CONNECTION for a passthrough load balancer.", i, m))
		}
		if bs.GetLoadBalancingScheme() == "INTERNAL" && network != "" && g.pb.GetNetwork() != "" && relative(project, g.pb.GetNetwork()) != network {
			return badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.backends[%d].group': '%s'. The instance group's network is not the backend service's network.", i, b.GetGroup()))
		}
	}
	return nil
}

func (s *Server) insertBackendService(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if e := s.regionKnown(c); e != nil {
		return nil, e, nil
	}
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	bs := &computepb.BackendService{}
	if e := readProto(r, bs); e != nil {
		return nil, e, nil
	}
	if !nameRE.MatchString(bs.GetName()) {
		return nil, invalidField("resource.name", bs.GetName()), nil
	}
	if e := s.validateBackendService(c.project, bs); e != nil {
		return nil, e, nil
	}
	res := "projects/" + c.project + "/regions/" + c.region + "/backendServices/" + bs.GetName()
	if s.st.backendServices[bs.GetName()] != nil || s.st.reserved["backendService/"+bs.GetName()] {
		return nil, alreadyExists(res), nil
	}
	s.st.reserved["backendService/"+bs.GetName()] = true
	id := s.st.id()
	return s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "backendService/"+bs.GetName())
		out := clone(bs)
		out.Kind, out.Id, out.SelfLink = proto.String("compute#backendService"), proto.Uint64(id), proto.String(selfLinkBase+res)
		out.Region = proto.String(selfLinkBase + "projects/" + c.project + "/regions/" + c.region)
		out.CreationTimestamp = proto.String(time.Now().Format(time.RFC3339Nano))
		out.Fingerprint = proto.String(fingerprint(id))
		s.links(c.project, out)
		s.st.backendServices[bs.GetName()] = out
		return nil, s.lbNotify
	}), nil, nil
}

// links spells a backend service's references as full URLs, as replies do.
func (s *Server) links(project string, bs *computepb.BackendService) {
	for i, hc := range bs.HealthChecks {
		bs.HealthChecks[i] = selfLinkBase + relative(project, hc)
	}
	for _, b := range bs.Backends {
		b.Group = proto.String(selfLinkBase + relative(project, b.GetGroup()))
		if b.BalancingMode == nil {
			b.BalancingMode = proto.String("CONNECTION")
		}
	}
	if bs.Network != nil {
		bs.Network = proto.String(selfLinkBase + relative(project, bs.GetNetwork()))
	}
}

func (s *Server) getBackendService(r *http.Request, c *call) (proto.Message, *Error, func()) {
	bs := s.st.backendServices[c.name]
	if c.region != s.opts.Region || bs == nil {
		return nil, notFound(c.resource), nil
	}
	return clone(bs), nil, nil
}

// patchBackendService merges the fields the body sets (lists whole); a
// fingerprint, when sent, must be the current one (BackendService.fingerprint:
// "An up-to-date fingerprint must be provided in order to update the
// BackendService, otherwise the request will fail with error 412 conditionNotMet").
func (s *Server) patchBackendService(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	bs := s.st.backendServices[c.name]
	if c.region != s.opts.Region || bs == nil {
		return nil, notFound(c.resource), nil
	}
	patch := &computepb.BackendService{}
	if e := readProto(r, patch); e != nil {
		return nil, e, nil
	}
	if patch.Fingerprint != nil && patch.GetFingerprint() != bs.GetFingerprint() {
		return nil, conditionNotMet("Invalid fingerprint."), nil
	}
	if patch.LoadBalancingScheme != nil && patch.GetLoadBalancingScheme() != bs.GetLoadBalancingScheme() {
		return nil, badRequest("invalid", "Invalid value for field 'resource.loadBalancingScheme': '"+patch.GetLoadBalancingScheme()+"'. The load balancing scheme of a backend service cannot change."), nil
	}
	next := clone(bs)
	if patch.Backends != nil {
		next.Backends = patch.Backends
	}
	if patch.HealthChecks != nil {
		next.HealthChecks = patch.HealthChecks
	}
	if patch.Description != nil {
		next.Description = patch.Description
	}
	if e := s.validateBackendService(c.project, next); e != nil {
		return nil, e, nil
	}
	s.links(c.project, next)
	id := s.st.id()
	return s.startOperation(c, reqID, "patch", c.resource, bs.GetId(), func() (*opFailure, func()) {
		if s.st.backendServices[c.name] == bs {
			next.Fingerprint = proto.String(fingerprint(id))
			s.st.backendServices[c.name] = next
		}
		return nil, s.lbNotify
	}), nil, nil
}

func (s *Server) deleteBackendService(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	bs := s.st.backendServices[c.name]
	if c.region != s.opts.Region || bs == nil {
		return nil, notFound(c.resource), nil
	}
	for _, name := range slices.Sorted(maps.Keys(s.st.forwardingRules)) {
		fr := s.st.forwardingRules[name]
		if s.regionalRef(c.project, fr.GetBackendService(), "backendServices") == c.name {
			return nil, inUseSync("backend_service", c.resource, strings.TrimPrefix(fr.GetSelfLink(), selfLinkBase)), nil
		}
	}
	return s.startOperation(c, reqID, "delete", c.resource, bs.GetId(), func() (*opFailure, func()) {
		delete(s.st.backendServices, c.name)
		return nil, s.lbNotify
	}), nil, nil
}

// ----- forwarding rules -----

// insertForwardingRule: a passthrough rule forwards to a backend service of
// the same scheme; ports is a list of at most five ports, exclusive with
// portRange (ForwardingRule.ports); an INTERNAL rule lives in a
// subnetwork and takes its address from it, an EXTERNAL rule names no
// network (https://cloud.google.com/load-balancing/docs/forwarding-rule-concepts);
// IPAddress names a reserved address of the same type, which one rule at a
// time may use, or is empty for an ephemeral one. Labels are not taken on
// insert (ForwardingRule.labels: only setLabels).
func (s *Server) insertForwardingRule(r *http.Request, c *call) (proto.Message, *Error, func()) {
	if e := s.regionKnown(c); e != nil {
		return nil, e, nil
	}
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	fr := &computepb.ForwardingRule{}
	if e := readProto(r, fr); e != nil {
		return nil, e, nil
	}
	if !nameRE.MatchString(fr.GetName()) {
		return nil, invalidField("resource.name", fr.GetName()), nil
	}
	scheme := fr.GetLoadBalancingScheme()
	if scheme == "" {
		scheme = "EXTERNAL"
	}
	if !passthroughSchemes[scheme] {
		return nil, invalidField("resource.loadBalancingScheme", scheme), nil
	}
	if p := fr.GetIPProtocol(); p != "TCP" && p != "UDP" && p != "L3_DEFAULT" {
		return nil, invalidField("resource.IPProtocol", p), nil
	}
	if fr.GetPortRange() != "" && len(fr.GetPorts()) > 0 {
		return nil, badRequest("invalid", "Invalid value for field 'resource.portRange': '"+fr.GetPortRange()+"'. portRange and ports are mutually exclusive."), nil
	}
	if len(fr.GetPorts()) > 5 {
		return nil, badRequest("invalid", "Invalid value for field 'resource.ports': at most 5 ports are allowed."), nil
	}
	for i, p := range fr.GetPorts() {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, invalidField(fmt.Sprintf("resource.ports[%d]", i), p), nil
		}
	}
	bsName := s.regionalRef(c.project, fr.GetBackendService(), "backendServices")
	bs := s.st.backendServices[bsName]
	if bs == nil {
		return nil, notFound(relative(c.project, fr.GetBackendService())), nil
	}
	if bs.GetLoadBalancingScheme() != scheme {
		return nil, badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.backendService': '%s'. The backend service's load balancing scheme %s does not match the forwarding rule's %s.", fr.GetBackendService(), bs.GetLoadBalancingScheme(), scheme)), nil
	}
	var sub *computepb.Subnetwork
	if scheme == "INTERNAL" {
		p, key := s.subnetRef(c.project, fr.GetSubnetwork())
		if sub = s.st.subnetworks[key]; sub == nil || !s.mayUse(c.project, p) {
			return nil, badRequest("invalid", "Invalid value for field 'resource.subnetwork': '"+fr.GetSubnetwork()+"'. An internal forwarding rule needs a subnetwork of its region."), nil
		}
		if fr.GetNetwork() != "" && relative(c.project, fr.GetNetwork()) != relative(c.project, sub.GetNetwork()) {
			return nil, invalidField("resource.network", fr.GetNetwork()), nil
		}
	} else if fr.GetNetwork() != "" || fr.GetSubnetwork() != "" {
		return nil, badRequest("invalid", "Invalid value for field 'resource.network': '"+fr.GetNetwork()+fr.GetSubnetwork()+"'. An external passthrough forwarding rule names no network."), nil
	}
	var addr *computepb.Address
	if ref := fr.GetIPAddress(); ref != "" {
		if ip, err := netip.ParseAddr(ref); err == nil {
			for _, a := range s.st.addresses {
				if a.GetAddress() == ip.String() {
					addr = a
				}
			}
		} else {
			addr = s.st.addresses[s.regionalRef(c.project, ref, "addresses")]
		}
		if addr == nil {
			return nil, notFound(relative(c.project, ref)), nil
		}
		if addr.GetAddressType() != scheme {
			return nil, badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.IPAddress': '%s'. The address is %s, the forwarding rule %s.", ref, addr.GetAddressType(), scheme)), nil
		}
		if scheme == "INTERNAL" && addr.GetSubnetwork() != sub.GetSelfLink() {
			return nil, badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.IPAddress': '%s'. The address is not in the forwarding rule's subnetwork.", ref)), nil
		}
		if len(addr.GetUsers()) > 0 {
			return nil, badRequest("invalid", fmt.Sprintf("Invalid value for field 'resource.IPAddress': '%s'. Specified IP address is in-use and would result in a conflict.", ref)), nil
		}
	}
	res := "projects/" + c.project + "/regions/" + c.region + "/forwardingRules/" + fr.GetName()
	if s.st.forwardingRules[fr.GetName()] != nil || s.st.reserved["forwardingRule/"+fr.GetName()] {
		return nil, alreadyExists(res), nil
	}
	s.st.reserved["forwardingRule/"+fr.GetName()] = true
	if addr != nil {
		addr.Users = []string{selfLinkBase + res} // held from now: a second rule is refused at once
		addr.Status = proto.String("IN_USE")
	}
	id := s.st.id()
	return s.startOperation(c, reqID, "insert", res, id, func() (*opFailure, func()) {
		delete(s.st.reserved, "forwardingRule/"+fr.GetName())
		out := clone(fr)
		out.Kind, out.Id, out.SelfLink = proto.String("compute#forwardingRule"), proto.Uint64(id), proto.String(selfLinkBase+res)
		out.Region = proto.String(selfLinkBase + "projects/" + c.project + "/regions/" + c.region)
		out.CreationTimestamp = proto.String(time.Now().Format(time.RFC3339Nano))
		out.LoadBalancingScheme = proto.String(scheme)
		out.BackendService = proto.String(selfLinkBase + relative(c.project, fr.GetBackendService()))
		out.Labels, out.LabelFingerprint = nil, proto.String(fingerprint(map[string]string{}))
		switch {
		case addr != nil:
			out.IPAddress = addr.Address
		case sub != nil:
			out.IPAddress = proto.String(s.nextAddress(sub.GetSelfLink(), sub.GetIpCidrRange()).String())
		default:
			pub := s.st.nextPublic
			s.st.nextPublic = pub.Next()
			out.IPAddress = proto.String(pub.String())
		}
		if sub != nil {
			out.Subnetwork, out.Network = proto.String(sub.GetSelfLink()), proto.String(sub.GetNetwork())
		} else if out.NetworkTier == nil {
			out.NetworkTier = proto.String("PREMIUM")
		}
		s.st.forwardingRules[fr.GetName()] = out
		return nil, s.lbNotify
	}), nil, nil
}

func (s *Server) getForwardingRule(r *http.Request, c *call) (proto.Message, *Error, func()) {
	fr := s.st.forwardingRules[c.name]
	if c.region != s.opts.Region || fr == nil {
		return nil, notFound(c.resource), nil
	}
	return clone(fr), nil, nil
}

func (s *Server) deleteForwardingRule(r *http.Request, c *call) (proto.Message, *Error, func()) {
	prev, reqID, e := s.dedupe(r)
	if e != nil || prev != nil {
		return prev, e, nil
	}
	fr := s.st.forwardingRules[c.name]
	if c.region != s.opts.Region || fr == nil {
		return nil, notFound(c.resource), nil
	}
	return s.startOperation(c, reqID, "delete", c.resource, fr.GetId(), func() (*opFailure, func()) {
		delete(s.st.forwardingRules, c.name)
		for _, a := range s.st.addresses {
			if slices.Contains(a.GetUsers(), fr.GetSelfLink()) {
				a.Users, a.Status = nil, proto.String("RESERVED")
			}
		}
		return nil, s.lbNotify
	}), nil, nil
}

func (s *Server) setForwardingRuleLabels(r *http.Request, c *call) (proto.Message, *Error, func()) {
	return s.setLabels(r, c, func() (string, bool) {
		fr := s.st.forwardingRules[c.name]
		return fr.GetLabelFingerprint(), fr != nil
	}, func(l map[string]string) {
		fr := s.st.forwardingRules[c.name]
		fr.Labels, fr.LabelFingerprint = l, proto.String(fingerprint(l))
	})
}

// ----- reports -----

// snapshotLB is a forwarding rule with its backends. Called with s.mu held.
func (s *Server) snapshotLB(project string, fr *computepb.ForwardingRule) LoadBalancer {
	out := LoadBalancer{Name: fr.GetName(), SelfLink: strings.TrimPrefix(fr.GetSelfLink(), selfLinkBase), Scheme: fr.GetLoadBalancingScheme(),
		Address: fr.GetIPAddress(), Labels: maps.Clone(fr.GetLabels()), Description: fr.GetDescription()}
	for _, p := range fr.GetPorts() {
		n, _ := strconv.Atoi(p)
		out.Ports = append(out.Ports, n)
	}
	bs := s.st.backendServices[s.regionalRef(project, fr.GetBackendService(), "backendServices")]
	if bs == nil {
		return out
	}
	out.BackendService = bs.GetName()
	if hcs := bs.GetHealthChecks(); len(hcs) > 0 {
		if hc := s.st.healthChecks[s.regionalRef(project, hcs[0], "healthChecks")]; hc != nil {
			out.Health = HealthCheck{Port: int(hc.GetTcpHealthCheck().GetPort()), Interval: time.Duration(hc.GetCheckIntervalSec()) * time.Second,
				Timeout: time.Duration(hc.GetTimeoutSec()) * time.Second, Healthy: int(hc.GetHealthyThreshold()), Unhealthy: int(hc.GetUnhealthyThreshold())}
		}
	}
	for _, b := range bs.GetBackends() {
		zone, name, _ := zonalRef(project, b.GetGroup(), "instanceGroups")
		if g := s.st.groups[zone+"/"+name]; g != nil {
			for _, m := range g.members {
				if in := s.st.instances[instanceKey(m)]; in != nil {
					out.Targets = append(out.Targets, strconv.FormatUint(in.pb.GetId(), 10))
				}
			}
		}
	}
	sort.Strings(out.Targets)
	out.Targets = slices.Compact(out.Targets)
	return out
}

// LoadBalancers returns every forwarding rule with its backends, by name.
func (s *Server) LoadBalancers() []LoadBalancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LoadBalancer
	for _, name := range slices.Sorted(maps.Keys(s.st.forwardingRules)) {
		out = append(out, s.snapshotLB(s.opts.Project, s.st.forwardingRules[name]))
	}
	return out
}

// lbNotify reports every forwarding rule to OnLoadBalancer, and those
// reported before that are gone as deleted. Called without s.mu held;
// reports are taken and delivered under one lock, so a slower report
// never overtakes a newer state.
func (s *Server) lbNotify() {
	hook := s.opts.OnLoadBalancer
	if hook == nil {
		return
	}
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	snaps := s.LoadBalancers()
	now := map[string]LoadBalancer{}
	for _, lb := range snaps {
		now[lb.SelfLink] = lb
	}
	for _, link := range slices.Sorted(maps.Keys(s.reported)) {
		if _, ok := now[link]; !ok {
			gone := s.reported[link]
			gone.Deleted = true
			hook(gone)
		}
	}
	s.reported = now
	for _, lb := range snaps {
		hook(lb)
	}
}
