package ec2

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Elastic Load Balancing (v2) Query API, version 2015-12-01, as the
// aws-sdk-go-v2 elasticloadbalancingv2 client speaks it: form posts with
// Action and Version, lists as Name.member.N, replies and errors in the
// awsquery XML shapes. Requests are told from EC2's by their Version, so the
// same endpoint serves both, as a client with one BaseEndpoint per service
// pointed at the lab expects. Only Network Load Balancers with TCP
// listeners and instance targets are served: what clouds/aws creates.
//
// API reference: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/Welcome.html

// ELBAPIVersion is the Elastic Load Balancing v2 API version the emulator answers.
const ELBAPIVersion = "2015-12-01"

// ELBNamespace is the XML namespace of every ELBv2 reply.
const ELBNamespace = "http://elasticloadbalancing.amazonaws.com/doc/" + ELBAPIVersion + "/"

// ErrThrottling is ELBv2's throttling reply, for fault injection
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/CommonErrors.html).
var ErrThrottling = Error{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded"}

// LoadBalancer is an emulated load balancer as hooks and the inspection API see it.
type LoadBalancer struct {
	ARN, Name, DNSName string
	// Scheme is internal or internet-facing.
	Scheme string
	// State is provisioning, then active.
	State   string
	VpcID   string
	Subnets []string
	// Addresses are the load balancer's private addresses, one per subnet,
	// taken from the subnets as its network interfaces are.
	Addresses      []string
	SecurityGroups []string
	Listeners      []Listener
	Tags           map[string]string
	// Deleted is set in the hook's last call for a load balancer.
	Deleted bool
}

// Listener is one listener of a load balancer and what it forwards to.
type Listener struct {
	ARN      string
	Port     int
	Protocol string
	// TargetGroup is the name of the target group of its forward action.
	TargetGroup string
	// TargetPort is the port the targets are dialled on.
	TargetPort int
	// Targets are the instance IDs registered and not draining, sorted.
	Targets []string
	// Health is the target group's health check.
	Health HealthCheck
}

// HealthCheck is a target group's health check as the load balancer runs it.
type HealthCheck struct {
	Protocol           string
	Port               int
	Interval, Timeout  time.Duration
	Healthy, Unhealthy int
}

type loadBalancer struct {
	LoadBalancer
	params  string // canonical create parameters, for idempotency
	created time.Time
}

type elbTarget struct {
	id       string
	port     int
	draining bool
}

type targetGroup struct {
	arn, name, protocol, vpc, targetType string
	port                                 int
	health                               HealthCheck
	healthPort                           string // "traffic-port" or a number
	attrs                                map[string]string
	targets                              map[string]*elbTarget // by instance ID
	tags                                 map[string]string
	params                               string
}

type listener struct {
	arn, lb, protocol, tg string
	port                  int
	tags                  map[string]string
	params                string
}

// elbState is the ELBv2 part of the emulator's state.
type elbState struct {
	lbs       map[string]*loadBalancer // by ARN
	tgs       map[string]*targetGroup  // by ARN
	listeners map[string]*listener     // by ARN
	// enis are the subnets and security groups a deleted load balancer's
	// network interfaces still hold, until when: ELB releases them
	// asynchronously, so deleting the subnet at once fails with DependencyViolation.
	enis []eniHold
}

type eniHold struct {
	subnets, groups []string
	until           time.Time
}

var elbActions map[string]handler

func init() {
	elbActions = map[string]handler{
		"CreateLoadBalancer": (*Server).createLoadBalancer, "DescribeLoadBalancers": (*Server).describeLoadBalancers,
		"DeleteLoadBalancer": (*Server).deleteLoadBalancer,
		"CreateTargetGroup":  (*Server).createTargetGroup, "DescribeTargetGroups": (*Server).describeTargetGroups,
		"DeleteTargetGroup":           (*Server).deleteTargetGroup,
		"ModifyTargetGroupAttributes": (*Server).modifyTargetGroupAttributes, "DescribeTargetGroupAttributes": (*Server).describeTargetGroupAttributes,
		"CreateListener": (*Server).createListener, "DescribeListeners": (*Server).describeListeners, "DeleteListener": (*Server).deleteListener,
		"RegisterTargets": (*Server).registerTargets, "DeregisterTargets": (*Server).deregisterTargets,
		"DescribeTargetHealth": (*Server).describeTargetHealth, "DescribeTags": (*Server).describeELBTags,
	}
	for _, a := range []string{"CreateLoadBalancer", "DeleteLoadBalancer", "CreateTargetGroup", "DeleteTargetGroup", "ModifyTargetGroupAttributes",
		"CreateListener", "DeleteListener", "RegisterTargets", "DeregisterTargets"} {
		mutating[a] = true
	}
}

func elbErr(code, format string, args ...any) *Error {
	return errf(http.StatusBadRequest, code, format, args...)
}

func validationErr(format string, args ...any) *Error {
	return elbErr("ValidationError", format, args...)
}

// serveELB answers one ELBv2 Query request.
func (s *Server) serveELB(w http.ResponseWriter, r *http.Request, body []byte, reqID, action string, params url.Values) {
	out, apiErr := s.handleELB(r, body, action, params)
	if apiErr != nil {
		s.logf("elasticloadbalancing %s -> %d %s", action, apiErr.Status, apiErr.Code)
		writeELBError(w, reqID, apiErr)
		return
	}
	s.logf("elasticloadbalancing %s -> 200", action)
	writeELBReply(w, action, reqID, out)
}

func (s *Server) handleELB(r *http.Request, body []byte, action string, params url.Values) (any, *Error) {
	if e := s.authenticate(r, body, "elasticloadbalancing", action); e != nil {
		return nil, e
	}
	h, ok := elbActions[action]
	if !ok {
		return nil, errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, ELBAPIVersion)
	}
	if e := s.faultFor(r.Context(), action, params); e != nil {
		return nil, e
	}
	s.mu.Lock()
	out, e, after := h(s, params)
	s.mu.Unlock()
	if after != nil {
		after()
	}
	return out, e
}

// writeELBReply writes <ActionResponse><ActionResult>fields</ActionResult>
// <ResponseMetadata><RequestId/></ResponseMetadata></ActionResponse>, the awsquery shape.
func writeELBReply(w http.ResponseWriter, action, reqID string, out any) {
	writeQueryReply(w, ELBNamespace, action, reqID, out)
}

// writeQueryReply writes an awsquery reply (ELBv2, STS) in namespace ns.
func writeQueryReply(w http.ResponseWriter, ns, action, reqID string, out any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	fmt.Fprintf(&buf, "<%sResponse xmlns=\"%s\">", action, ns)
	if out == nil {
		out = struct{}{}
	}
	if err := xml.NewEncoder(&buf).EncodeElement(out, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
		writeQueryError(w, ns, reqID, errf(http.StatusInternalServerError, "InternalFailure", "An internal error has occurred"))
		return
	}
	fmt.Fprintf(&buf, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>", reqID, action)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// writeELBError writes the awsquery error document:
// <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>.
func writeELBError(w http.ResponseWriter, reqID string, e *Error) {
	writeQueryError(w, ELBNamespace, reqID, e)
}

// writeQueryError writes the awsquery error document in namespace ns.
func writeQueryError(w http.ResponseWriter, ns, reqID string, e *Error) {
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	fmt.Fprintf(&buf, "<ErrorResponse xmlns=\"%s\"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>",
		ns, typ, escapeText(e.Code), escapeText(e.Message), reqID)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.WriteHeader(e.Status)
	_, _ = w.Write(buf.Bytes())
}

// members returns the values of prefix.member.1, prefix.member.2, ...
func members(p url.Values, prefix string) []string { return list(p, prefix+".member") }

// elbTags reads Tags.member.N.Key/Value. ELBv2 allows 50 tags per resource
// and refuses a key given twice (API_AddTags.html).
func elbTags(p url.Values) (map[string]string, *Error) {
	tags := map[string]string{}
	n := count(p, "Tags.member")
	if n > 50 {
		return nil, elbErr("TooManyTags", "You've reached the limit on the number of tags for this resource.")
	}
	for i := range n {
		pre := member("Tags.member", i)
		k := p.Get(pre + ".Key")
		if k == "" {
			return nil, validationErr("Tag key cannot be empty")
		}
		if _, dup := tags[k]; dup {
			return nil, elbErr("DuplicateTagKeys", "Tag key '%s' is duplicated", k)
		}
		tags[k] = p.Get(pre + ".Value")
	}
	return tags, nil
}

// elbName checks a load balancer or target group name: at most 32
// characters, alphanumerics and hyphens, not beginning or ending with a
// hyphen; a load balancer's may not begin with "internal-"
// (API_CreateLoadBalancer.html, API_CreateTargetGroup.html, "Name").
var elbNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

func elbName(kind, name string) *Error {
	if name == "" {
		return validationErr("%s name is required", kind)
	}
	if !elbNameRE.MatchString(name) || kind == "Load balancer" && strings.HasPrefix(name, "internal-") {
		return validationErr("%s name '%s' cannot be longer than '32' characters, must contain only alphanumeric characters or hyphens, and must not begin or end with a hyphen", kind, name)
	}
	return nil
}

// elbARN makes an ARN shaped like ELB's: ...:<kind>/<name>/<16 hex digits>.
func (s *Server) elbARN(kind, name string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", kind, name, s.st.next)))
	s.st.next++
	return "arn:aws:elasticloadbalancing:" + s.opts.Region + ":" + AccountID + ":" + kind + "/" + name + "/" + hex.EncodeToString(sum[:8])
}

func canonicalExcept(p url.Values, skip ...string) string {
	c := url.Values{}
	for k, v := range p {
		if k == "Action" || k == "Version" || slices.Contains(skip, k) {
			continue
		}
		c[k] = v
	}
	return c.Encode()
}

// ---- load balancers ----

type xLBAddress struct {
	IPAddress string `xml:"IpAddress,omitempty"`
}

type xAZ struct {
	ZoneName              string       `xml:"ZoneName"`
	SubnetID              string       `xml:"SubnetId"`
	LoadBalancerAddresses []xLBAddress `xml:"LoadBalancerAddresses>member"`
}

type xLBState struct {
	Code string `xml:"Code"`
}

type xLoadBalancer struct {
	LoadBalancerArn       string   `xml:"LoadBalancerArn"`
	DNSName               string   `xml:"DNSName"`
	CanonicalHostedZoneID string   `xml:"CanonicalHostedZoneId"`
	CreatedTime           string   `xml:"CreatedTime"`
	LoadBalancerName      string   `xml:"LoadBalancerName"`
	Scheme                string   `xml:"Scheme"`
	VpcID                 string   `xml:"VpcId"`
	State                 xLBState `xml:"State"`
	Type                  string   `xml:"Type"`
	AvailabilityZones     []xAZ    `xml:"AvailabilityZones>member"`
	SecurityGroups        []string `xml:"SecurityGroups>member"`
	IPAddressType         string   `xml:"IpAddressType"`
}

func (s *Server) xLB(lb *loadBalancer) xLoadBalancer {
	out := xLoadBalancer{LoadBalancerArn: lb.ARN, DNSName: lb.DNSName, CanonicalHostedZoneID: "Z26RNL4JYFTOTI",
		CreatedTime: lb.created.UTC().Format("2006-01-02T15:04:05.000Z"), LoadBalancerName: lb.Name, Scheme: lb.Scheme, VpcID: lb.VpcID,
		State: xLBState{lb.State}, Type: "network", SecurityGroups: lb.SecurityGroups, IPAddressType: "ipv4"}
	for _, sid := range lb.Subnets {
		zone := ""
		if sn := s.st.subnets[sid]; sn != nil {
			zone = sn.zone
		}
		out.AvailabilityZones = append(out.AvailabilityZones, xAZ{ZoneName: zone, SubnetID: sid})
	}
	return out
}

// createLoadBalancer creates a Network Load Balancer. The call is
// idempotent: the same name with the same settings answers the existing
// load balancer, other settings fail with DuplicateLoadBalancerName
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html).
func (s *Server) createLoadBalancer(p url.Values) (any, *Error, func()) {
	name := p.Get("Name")
	if e := elbName("Load balancer", name); e != nil {
		return nil, e, nil
	}
	params := canonicalExcept(p)
	for _, lb := range s.st.lbs {
		if lb.Name == name {
			if lb.params != params {
				return nil, elbErr("DuplicateLoadBalancerName", "A load balancer with the same name '%s' exists, but with different settings", name), nil
			}
			return struct {
				LoadBalancers []xLoadBalancer `xml:"LoadBalancers>member"`
			}{[]xLoadBalancer{s.xLB(lb)}}, nil, nil
		}
	}
	if t := p.Get("Type"); t != "network" {
		// Only what clouds/aws asks for is emulated; an ALB or GWLB would need its own rules.
		return nil, validationErr("the lab's Elastic Load Balancing serves Type 'network' only, not '%s'", t), nil
	}
	scheme := p.Get("Scheme")
	switch scheme {
	case "":
		scheme = "internet-facing"
	case "internal", "internet-facing":
	default:
		return nil, validationErr("Value '%s' at 'scheme' failed to satisfy constraint: Member must satisfy enum value set: [internet-facing, internal]", scheme), nil
	}
	if t := p.Get("IpAddressType"); t != "" && t != "ipv4" {
		return nil, validationErr("the lab's Elastic Load Balancing serves IpAddressType 'ipv4' only"), nil
	}
	subnetIDs := members(p, "Subnets")
	if count(p, "SubnetMappings.member") > 0 {
		return nil, validationErr("the lab's Elastic Load Balancing takes Subnets, not SubnetMappings"), nil
	}
	if len(subnetIDs) == 0 {
		return nil, validationErr("At least one subnet must be specified"), nil
	}
	var vpcID string
	zones := map[string]bool{}
	for _, sid := range subnetIDs {
		sn := s.st.subnets[sid]
		if sn == nil {
			return nil, elbErr("SubnetNotFound", "The subnet ID '%s' is not valid", sid), nil
		}
		if vpcID != "" && sn.vpc != vpcID {
			return nil, elbErr("InvalidConfigurationRequest", "All subnets must belong to the same VPC: '%s' is in '%s', not '%s'", sid, sn.vpc, vpcID), nil
		}
		vpcID = sn.vpc
		// One subnet per Availability Zone (API_CreateLoadBalancer.html, "Subnets").
		if zones[sn.zone] {
			return nil, elbErr("InvalidConfigurationRequest", "A load balancer cannot be attached to multiple subnets in the same Availability Zone '%s'", sn.zone), nil
		}
		zones[sn.zone] = true
		// An internet-facing load balancer needs subnets routed to an
		// internet gateway ("Internet-facing load balancers", ELB user guide
		// https://docs.aws.amazon.com/elasticloadbalancing/latest/network/network-load-balancers.html#load-balancer-scheme).
		if scheme == "internet-facing" && !s.routedToIGW(sn) {
			return nil, elbErr("InvalidSubnet", "VPC %s has no internet gateway", sn.vpc), nil
		}
	}
	groups := members(p, "SecurityGroups")
	for _, g := range groups {
		sg := s.st.groups[g]
		if sg == nil || sg.vpc != vpcID {
			return nil, elbErr("InvalidSecurityGroup", "Security group '%s' does not exist in VPC '%s'", g, vpcID), nil
		}
	}
	tags, e := elbTags(p)
	if e != nil {
		return nil, e, nil
	}
	var addrs []string
	for _, sid := range subnetIDs {
		sn := s.st.subnets[sid]
		pfx := netip.MustParsePrefix(sn.cidr)
		if !pfx.Contains(sn.next.Next()) {
			return nil, elbErr("InvalidSubnet", "Not enough IP space available in %s. ELB requires at least 8 free IP addresses in each subnet.", sid), nil
		}
		addrs = append(addrs, sn.next.String())
		sn.next = sn.next.Next()
	}
	arn := s.elbARN("loadbalancer/net", name)
	lb := &loadBalancer{LoadBalancer: LoadBalancer{ARN: arn, Name: name, Scheme: scheme, State: "provisioning", VpcID: vpcID,
		Subnets: subnetIDs, Addresses: addrs, SecurityGroups: groups, Tags: tags,
		DNSName: fmt.Sprintf("%s-%s.elb.%s.amazonaws.com", name, arn[len(arn)-16:], s.opts.Region)},
		params: params, created: time.Now()}
	s.st.lbs[arn] = lb
	s.elbLater(s.opts.LoadBalancerDelay, func() {
		if lb := s.st.lbs[arn]; lb != nil && lb.State == "provisioning" {
			lb.State = "active"
		}
	})
	return struct {
		LoadBalancers []xLoadBalancer `xml:"LoadBalancers>member"`
	}{[]xLoadBalancer{s.xLB(lb)}}, nil, nil
}

// routedToIGW reports whether a subnet's route table (its own or the
// VPC's main one) sends 0.0.0.0/0 to an attached internet gateway.
func (s *Server) routedToIGW(sn *subnet) bool {
	var table *routeTable
	for _, rt := range s.st.routeTables {
		if rt.vpc == sn.vpc && slices.ContainsFunc(rt.assocs, func(a rtAssoc) bool { return a.subnet == sn.id }) {
			table = rt
		}
	}
	if table == nil {
		for _, rt := range s.st.routeTables {
			if rt.vpc == sn.vpc && rt.main {
				table = rt
			}
		}
	}
	if table == nil {
		return false
	}
	for _, r := range table.routes {
		if r.dest == "0.0.0.0/0" && s.st.igws[r.gateway] != nil && s.st.igws[r.gateway].vpc == sn.vpc {
			return true
		}
	}
	return false
}

// elbLater runs change with the lock held after d, then reports the
// load balancers to the hook.
func (s *Server) elbLater(d time.Duration, change func()) {
	s.timers.Add(1)
	go func() {
		defer s.timers.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		s.mu.Lock()
		change()
		notify := s.lbChanged()
		s.mu.Unlock()
		notify()
	}()
}

// lbChanged returns the func that reports every active load balancer
// (and the deleted ones in gone) to the hook; the caller runs it once s.mu
// is released. The reports are taken and delivered under one lock, each
// when it is delivered, so a slower report never overtakes a newer state.
func (s *Server) lbChanged(gone ...LoadBalancer) func() {
	hook := s.opts.OnLoadBalancer
	if hook == nil {
		return func() {}
	}
	return func() {
		s.hookMu.Lock()
		defer s.hookMu.Unlock()
		s.mu.Lock()
		var snaps []LoadBalancer
		for _, arn := range sortedKeys(s.st.lbs) {
			if lb := s.st.lbs[arn]; lb.State == "active" {
				snaps = append(snaps, s.snapshotLB(lb))
			}
		}
		s.mu.Unlock()
		for _, lb := range append(snaps, gone...) {
			hook(lb)
		}
	}
}

// snapshotLB is a load balancer with its listeners and their targets. Called with s.mu held.
func (s *Server) snapshotLB(lb *loadBalancer) LoadBalancer {
	out := lb.LoadBalancer
	out.Subnets, out.Addresses, out.SecurityGroups = slices.Clone(lb.Subnets), slices.Clone(lb.Addresses), slices.Clone(lb.SecurityGroups)
	out.Tags = maps.Clone(lb.Tags)
	out.Listeners = nil
	for _, arn := range sortedKeys(s.st.listeners) {
		l := s.st.listeners[arn]
		if l.lb != lb.ARN {
			continue
		}
		ls := Listener{ARN: l.arn, Port: l.port, Protocol: l.protocol}
		if tg := s.st.tgs[l.tg]; tg != nil {
			ls.TargetGroup, ls.TargetPort, ls.Health = tg.name, tg.port, tg.health
			if tg.healthPort != "traffic-port" {
				ls.Health.Port, _ = strconv.Atoi(tg.healthPort)
			} else {
				ls.Health.Port = tg.port
			}
			for _, id := range sortedKeys(tg.targets) {
				if t := tg.targets[id]; !t.draining {
					ls.Targets = append(ls.Targets, id)
				}
			}
		}
		out.Listeners = append(out.Listeners, ls)
	}
	return out
}

// LoadBalancers returns every load balancer, by ARN, with its listeners and targets.
func (s *Server) LoadBalancers() []LoadBalancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LoadBalancer
	for _, arn := range sortedKeys(s.st.lbs) {
		out = append(out, s.snapshotLB(s.st.lbs[arn]))
	}
	return out
}

// pageELB cuts a sorted list by PageSize (1-400) and Marker (the item to start at).
func pageELB(p url.Values, ids []string) ([]string, string, *Error) {
	start := 0
	if m := p.Get("Marker"); m != "" {
		i := slices.Index(ids, m)
		if i < 0 {
			return nil, "", validationErr("Invalid marker '%s'", m)
		}
		start = i
	}
	ids = ids[start:]
	if ps := p.Get("PageSize"); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 400 {
			return nil, "", validationErr("Value '%s' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 400", ps)
		}
		if len(ids) > n {
			return ids[:n], ids[n], nil
		}
	}
	return ids, "", nil
}

// pick selects objects by ARN or by name (nameOf maps every ARN to its
// name), each of which must exist, or all of them, sorted by ARN.
func pick(arns, names []string, nameOf map[string]string, notFound func(id string) *Error) ([]string, *Error) {
	var ids []string
	switch {
	case len(arns) > 0:
		for _, a := range arns {
			if _, ok := nameOf[a]; !ok {
				return nil, notFound(a)
			}
			ids = append(ids, a)
		}
	case len(names) > 0:
		for _, n := range names {
			found := ""
			for arn, name := range nameOf {
				if name == n {
					found = arn
				}
			}
			if found == "" {
				return nil, notFound(n)
			}
			ids = append(ids, found)
		}
	default:
		ids = sortedKeys(nameOf)
	}
	return ids, nil
}

// describeLoadBalancers answers by ARN or name; a name or ARN that does
// not exist fails the call with LoadBalancerNotFound (API_DescribeLoadBalancers.html).
func (s *Server) describeLoadBalancers(p url.Values) (any, *Error, func()) {
	arns, names := members(p, "LoadBalancerArns"), members(p, "Names")
	if len(arns) > 0 && len(names) > 0 {
		return nil, validationErr("Load balancer names and load balancer ARNs cannot be specified at the same time"), nil
	}
	nameOf := map[string]string{}
	for arn, lb := range s.st.lbs {
		nameOf[arn] = lb.Name
	}
	ids, e := pick(arns, names, nameOf, func(id string) *Error { return elbErr("LoadBalancerNotFound", "Load balancers '[%s]' not found", id) })
	if e != nil {
		return nil, e, nil
	}
	ids, next, e := pageELB(p, ids)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		LoadBalancers []xLoadBalancer `xml:"LoadBalancers>member"`
		NextMarker    string          `xml:"NextMarker,omitempty"`
	}{NextMarker: next}
	for _, id := range ids {
		out.LoadBalancers = append(out.LoadBalancers, s.xLB(s.st.lbs[id]))
	}
	return out, nil, nil
}

// deleteLoadBalancer deletes a load balancer and its listeners; one that
// does not exist is not an error (API_DeleteLoadBalancer.html: "If the
// load balancer does not exist or has already been deleted, the call
// succeeds"). Its network interfaces are released a little later.
func (s *Server) deleteLoadBalancer(p url.Values) (any, *Error, func()) {
	arn := p.Get("LoadBalancerArn")
	if arn == "" {
		return nil, validationErr("LoadBalancerArn is required"), nil
	}
	lb := s.st.lbs[arn]
	if lb == nil {
		return struct{}{}, nil, nil
	}
	gone := s.snapshotLB(lb)
	gone.Deleted = true
	for la, l := range s.st.listeners {
		if l.lb == arn {
			delete(s.st.listeners, la)
		}
	}
	delete(s.st.lbs, arn)
	s.st.enis = append(s.st.enis, eniHold{subnets: slices.Clone(lb.Subnets), groups: slices.Clone(lb.SecurityGroups), until: time.Now().Add(s.opts.ENIReleaseDelay)})
	return struct{}{}, nil, s.lbChanged(gone)
}

// lbUses reports a load balancer (or the interfaces of a deleted one) that
// still holds a subnet or security group. Called with s.mu held.
func (s *Server) lbUses(subnet, group string) string {
	for _, arn := range sortedKeys(s.st.lbs) {
		lb := s.st.lbs[arn]
		if subnet != "" && slices.Contains(lb.Subnets, subnet) || group != "" && slices.Contains(lb.SecurityGroups, group) {
			return "load balancer " + lb.Name
		}
	}
	now := time.Now()
	for _, h := range s.st.enis {
		if now.Before(h.until) && (subnet != "" && slices.Contains(h.subnets, subnet) || group != "" && slices.Contains(h.groups, group)) {
			return "a network interface of a deleted load balancer"
		}
	}
	return ""
}

// ---- target groups ----

type xTargetGroup struct {
	TargetGroupArn             string   `xml:"TargetGroupArn"`
	TargetGroupName            string   `xml:"TargetGroupName"`
	Protocol                   string   `xml:"Protocol"`
	Port                       int      `xml:"Port"`
	VpcID                      string   `xml:"VpcId"`
	HealthCheckProtocol        string   `xml:"HealthCheckProtocol"`
	HealthCheckPort            string   `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool     `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int      `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int      `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int      `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int      `xml:"UnhealthyThresholdCount"`
	LoadBalancerArns           []string `xml:"LoadBalancerArns>member"`
	TargetType                 string   `xml:"TargetType"`
	IPAddressType              string   `xml:"IpAddressType"`
}

func (s *Server) xTG(tg *targetGroup) xTargetGroup {
	out := xTargetGroup{TargetGroupArn: tg.arn, TargetGroupName: tg.name, Protocol: tg.protocol, Port: tg.port, VpcID: tg.vpc,
		HealthCheckProtocol: tg.health.Protocol, HealthCheckPort: tg.healthPort, HealthCheckEnabled: true,
		HealthCheckIntervalSeconds: int(tg.health.Interval / time.Second), HealthCheckTimeoutSeconds: int(tg.health.Timeout / time.Second),
		HealthyThresholdCount: tg.health.Healthy, UnhealthyThresholdCount: tg.health.Unhealthy, TargetType: tg.targetType, IPAddressType: "ipv4"}
	for _, arn := range sortedKeys(s.st.listeners) {
		if l := s.st.listeners[arn]; l.tg == tg.arn && !slices.Contains(out.LoadBalancerArns, l.lb) {
			out.LoadBalancerArns = append(out.LoadBalancerArns, l.lb)
		}
	}
	return out
}

// intParam reads an optional integer parameter within [lo, hi].
func intParam(p url.Values, name string, def, lo, hi int) (int, *Error) {
	v := p.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, validationErr("Value '%s' at '%s' failed to satisfy constraint: Member must have value between %d and %d", v, strings.ToLower(name[:1])+name[1:], lo, hi)
	}
	return n, nil
}

// createTargetGroup creates a TCP target group of instances. Idempotent as
// CreateLoadBalancer is; the health check's ranges and TCP defaults
// (interval 30s, timeout 10s, healthy 5, unhealthy 2) are those of
// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
// and https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-health-checks.html.
func (s *Server) createTargetGroup(p url.Values) (any, *Error, func()) {
	name := p.Get("Name")
	if e := elbName("Target group", name); e != nil {
		return nil, e, nil
	}
	params := canonicalExcept(p)
	for _, tg := range s.st.tgs {
		if tg.name == name {
			if tg.params != params {
				return nil, elbErr("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name), nil
			}
			return struct {
				TargetGroups []xTargetGroup `xml:"TargetGroups>member"`
			}{[]xTargetGroup{s.xTG(tg)}}, nil, nil
		}
	}
	proto := p.Get("Protocol")
	if proto != "TCP" {
		return nil, validationErr("the lab's Elastic Load Balancing serves Protocol 'TCP' target groups only, not '%s'", proto), nil
	}
	port, e := intParam(p, "Port", 0, 1, 65535)
	if e != nil || port == 0 {
		return nil, validationErr("A port must be specified"), nil
	}
	tt := p.Get("TargetType")
	if tt == "" {
		tt = "instance"
	}
	if tt != "instance" {
		return nil, validationErr("the lab's Elastic Load Balancing serves TargetType 'instance' only, not '%s'", tt), nil
	}
	vpcID := p.Get("VpcId")
	if s.st.vpcs[vpcID] == nil {
		return nil, validationErr("The VPC ID '%s' is not found", vpcID), nil
	}
	hc := HealthCheck{Protocol: p.Get("HealthCheckProtocol")}
	switch hc.Protocol {
	case "":
		hc.Protocol = "TCP"
	case "TCP", "HTTP", "HTTPS":
	default:
		return nil, validationErr("Health check protocol '%s' is not supported for target groups with the TCP protocol", hc.Protocol), nil
	}
	if hc.Protocol != "TCP" {
		return nil, validationErr("the lab's Elastic Load Balancing runs TCP health checks only, not '%s'", hc.Protocol), nil
	}
	healthPort := p.Get("HealthCheckPort")
	if healthPort == "" {
		healthPort = "traffic-port"
	} else if healthPort != "traffic-port" {
		if _, err := strconv.Atoi(healthPort); err != nil {
			return nil, validationErr("Health check port '%s' must be 'traffic-port' or a port number", healthPort), nil
		}
	}
	if en := p.Get("HealthCheckEnabled"); en == "false" {
		return nil, validationErr("Health checks cannot be disabled for target groups with the TCP protocol"), nil
	}
	interval, e := intParam(p, "HealthCheckIntervalSeconds", 30, 5, 300)
	if e != nil {
		return nil, e, nil
	}
	timeout, e := intParam(p, "HealthCheckTimeoutSeconds", 10, 2, 120)
	if e != nil {
		return nil, e, nil
	}
	if timeout >= interval {
		return nil, validationErr("Health check timeout '%d' must be smaller than the interval '%d'", timeout, interval), nil
	}
	healthy, e := intParam(p, "HealthyThresholdCount", 5, 2, 10)
	if e != nil {
		return nil, e, nil
	}
	unhealthy, e := intParam(p, "UnhealthyThresholdCount", 2, 2, 10)
	if e != nil {
		return nil, e, nil
	}
	hc.Interval, hc.Timeout, hc.Healthy, hc.Unhealthy = time.Duration(interval)*time.Second, time.Duration(timeout)*time.Second, healthy, unhealthy
	tags, e := elbTags(p)
	if e != nil {
		return nil, e, nil
	}
	tg := &targetGroup{arn: s.elbARN("targetgroup", name), name: name, protocol: proto, vpc: vpcID, targetType: tt, port: port,
		health: hc, healthPort: healthPort, targets: map[string]*elbTarget{}, tags: tags, params: params,
		// Defaults of a TCP target group of instances (API_TargetGroupAttribute.html).
		attrs: map[string]string{"deregistration_delay.timeout_seconds": "300", "preserve_client_ip.enabled": "true",
			"proxy_protocol_v2.enabled": "false", "stickiness.enabled": "false", "stickiness.type": "source_ip",
			"deregistration_delay.connection_termination.enabled": "false"}}
	s.st.tgs[tg.arn] = tg
	return struct {
		TargetGroups []xTargetGroup `xml:"TargetGroups>member"`
	}{[]xTargetGroup{s.xTG(tg)}}, nil, nil
}

func (s *Server) tgByARN(arn string) (*targetGroup, *Error) {
	if arn == "" {
		return nil, validationErr("TargetGroupArn is required")
	}
	tg := s.st.tgs[arn]
	if tg == nil {
		return nil, elbErr("TargetGroupNotFound", "Target groups '[%s]' not found", arn)
	}
	return tg, nil
}

func (s *Server) describeTargetGroups(p url.Values) (any, *Error, func()) {
	arns, names, lbArn := members(p, "TargetGroupArns"), members(p, "Names"), p.Get("LoadBalancerArn")
	nameOf := map[string]string{}
	for arn, tg := range s.st.tgs {
		nameOf[arn] = tg.name
	}
	ids, e := pick(arns, names, nameOf, func(id string) *Error {
		if strings.HasPrefix(id, "arn:") {
			return elbErr("TargetGroupNotFound", "Target groups '[%s]' not found", id)
		}
		return elbErr("TargetGroupNotFound", "One or more target groups not found")
	})
	if e != nil {
		return nil, e, nil
	}
	if lbArn != "" && len(arns) == 0 && len(names) == 0 {
		if s.st.lbs[lbArn] == nil {
			return nil, elbErr("LoadBalancerNotFound", "Load balancers '[%s]' not found", lbArn), nil
		}
		ids = slices.DeleteFunc(ids, func(arn string) bool { return !slices.Contains(s.xTG(s.st.tgs[arn]).LoadBalancerArns, lbArn) })
	}
	ids, next, e := pageELB(p, ids)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		TargetGroups []xTargetGroup `xml:"TargetGroups>member"`
		NextMarker   string         `xml:"NextMarker,omitempty"`
	}{NextMarker: next}
	for _, id := range ids {
		out.TargetGroups = append(out.TargetGroups, s.xTG(s.st.tgs[id]))
	}
	return out, nil, nil
}

// deleteTargetGroup fails with ResourceInUse while a listener forwards to
// the group ("You can delete a target group if it is not referenced by
// any actions", API_DeleteTargetGroup.html); one already gone succeeds.
func (s *Server) deleteTargetGroup(p url.Values) (any, *Error, func()) {
	arn := p.Get("TargetGroupArn")
	if arn == "" {
		return nil, validationErr("TargetGroupArn is required"), nil
	}
	tg := s.st.tgs[arn]
	if tg == nil {
		return struct{}{}, nil, nil
	}
	for _, la := range sortedKeys(s.st.listeners) {
		if s.st.listeners[la].tg == arn {
			return nil, elbErr("ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn), nil
		}
	}
	delete(s.st.tgs, arn)
	return struct{}{}, nil, nil
}

type xAttr struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func xAttrs(m map[string]string) []xAttr {
	var out []xAttr
	for _, k := range sortedKeys(m) {
		out = append(out, xAttr{k, m[k]})
	}
	return out
}

// modifyTargetGroupAttributes sets known attributes of a TCP target group
// (API_TargetGroupAttribute.html); an unknown key is a ValidationError.
func (s *Server) modifyTargetGroupAttributes(p url.Values) (any, *Error, func()) {
	tg, e := s.tgByARN(p.Get("TargetGroupArn"))
	if e != nil {
		return nil, e, nil
	}
	set := map[string]string{}
	for i := range count(p, "Attributes.member") {
		pre := member("Attributes.member", i)
		k, v := p.Get(pre+".Key"), p.Get(pre+".Value")
		if _, known := tg.attrs[k]; !known {
			return nil, validationErr("Target group attribute key '%s' is not recognized", k), nil
		}
		switch {
		case strings.HasSuffix(k, ".enabled"):
			if v != "true" && v != "false" {
				return nil, validationErr("Target group attribute '%s' must be 'true' or 'false', not '%s'", k, v), nil
			}
		case k == "deregistration_delay.timeout_seconds":
			if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 3600 {
				return nil, validationErr("Target group attribute '%s' must be between 0 and 3600, not '%s'", k, v), nil
			}
		}
		set[k] = v
	}
	if len(set) == 0 {
		return nil, validationErr("Attributes must contain at least one attribute"), nil
	}
	maps.Copy(tg.attrs, set)
	return struct {
		Attributes []xAttr `xml:"Attributes>member"`
	}{xAttrs(tg.attrs)}, nil, nil
}

func (s *Server) describeTargetGroupAttributes(p url.Values) (any, *Error, func()) {
	tg, e := s.tgByARN(p.Get("TargetGroupArn"))
	if e != nil {
		return nil, e, nil
	}
	return struct {
		Attributes []xAttr `xml:"Attributes>member"`
	}{xAttrs(tg.attrs)}, nil, nil
}

// TargetGroupAttributes returns a target group's attributes by name, for tests.
func (s *Server) TargetGroupAttributes(name string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tg := range s.st.tgs {
		if tg.name == name {
			return maps.Clone(tg.attrs), true
		}
	}
	return nil, false
}

// ---- listeners ----

type xAction struct {
	Type           string `xml:"Type"`
	TargetGroupArn string `xml:"TargetGroupArn"`
}

type xListener struct {
	ListenerArn     string    `xml:"ListenerArn"`
	LoadBalancerArn string    `xml:"LoadBalancerArn"`
	Port            int       `xml:"Port"`
	Protocol        string    `xml:"Protocol"`
	DefaultActions  []xAction `xml:"DefaultActions>member"`
}

func (l *listener) x() xListener {
	return xListener{ListenerArn: l.arn, LoadBalancerArn: l.lb, Port: l.port, Protocol: l.protocol, DefaultActions: []xAction{{"forward", l.tg}}}
}

// createListener adds a TCP listener that forwards to one target group. A
// second listener on the same port with the same settings answers the
// first (idempotent); other settings fail with DuplicateListener; a target
// group of another VPC or another load balancer's type fails
// (API_CreateListener.html).
func (s *Server) createListener(p url.Values) (any, *Error, func()) {
	lbArn := p.Get("LoadBalancerArn")
	lb := s.st.lbs[lbArn]
	if lb == nil {
		return nil, elbErr("LoadBalancerNotFound", "Load balancers '[%s]' not found", lbArn), nil
	}
	proto := p.Get("Protocol")
	if proto != "TCP" {
		return nil, validationErr("the lab's Elastic Load Balancing serves TCP listeners only, not '%s'", proto), nil
	}
	port, e := intParam(p, "Port", 0, 1, 65535)
	if e != nil || port == 0 {
		return nil, validationErr("A listener port must be specified"), nil
	}
	if n := count(p, "DefaultActions.member"); n != 1 {
		return nil, validationErr("A listener of a Network Load Balancer needs exactly one default action, not %d", n), nil
	}
	if t := p.Get("DefaultActions.member.1.Type"); t != "forward" {
		return nil, validationErr("The action type '%s' is not valid for a Network Load Balancer listener", t), nil
	}
	tg := s.st.tgs[p.Get("DefaultActions.member.1.TargetGroupArn")]
	if tg == nil {
		return nil, elbErr("TargetGroupNotFound", "Target groups '[%s]' not found", p.Get("DefaultActions.member.1.TargetGroupArn")), nil
	}
	if tg.vpc != lb.VpcID {
		return nil, elbErr("InvalidConfigurationRequest", "The target group '%s' is in VPC '%s', not in the load balancer's VPC '%s'", tg.name, tg.vpc, lb.VpcID), nil
	}
	for _, la := range sortedKeys(s.st.listeners) {
		if l := s.st.listeners[la]; l.tg == tg.arn && l.lb != lbArn {
			// A target group of instances serves one load balancer (ELB user guide "Target groups").
			return nil, elbErr("TargetGroupAssociationLimit", "The target group '%s' is already associated with a different load balancer", tg.name), nil
		}
	}
	params := canonicalExcept(p)
	for _, la := range sortedKeys(s.st.listeners) {
		l := s.st.listeners[la]
		if l.lb == lbArn && l.port == port {
			if l.params != params {
				return nil, elbErr("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", lbArn), nil
			}
			return struct {
				Listeners []xListener `xml:"Listeners>member"`
			}{[]xListener{l.x()}}, nil, nil
		}
	}
	tags, e := elbTags(p)
	if e != nil {
		return nil, e, nil
	}
	l := &listener{arn: s.elbARN("listener/net", lb.Name+"/"+lb.ARN[len(lb.ARN)-16:]), lb: lbArn, protocol: proto, tg: tg.arn, port: port, tags: tags, params: params}
	s.st.listeners[l.arn] = l
	return struct {
		Listeners []xListener `xml:"Listeners>member"`
	}{[]xListener{l.x()}}, nil, s.lbChanged()
}

func (s *Server) describeListeners(p url.Values) (any, *Error, func()) {
	lbArn, arns := p.Get("LoadBalancerArn"), members(p, "ListenerArns")
	var ids []string
	switch {
	case lbArn != "" && len(arns) > 0:
		return nil, validationErr("Listener ARNs and a load balancer ARN cannot be specified at the same time"), nil
	case lbArn != "":
		if s.st.lbs[lbArn] == nil {
			return nil, elbErr("LoadBalancerNotFound", "Load balancers '[%s]' not found", lbArn), nil
		}
		for _, la := range sortedKeys(s.st.listeners) {
			if s.st.listeners[la].lb == lbArn {
				ids = append(ids, la)
			}
		}
	case len(arns) > 0:
		for _, a := range arns {
			if s.st.listeners[a] == nil {
				return nil, elbErr("ListenerNotFound", "One or more listeners not found"), nil
			}
			ids = append(ids, a)
		}
	default:
		return nil, validationErr("You must specify either listener ARNs or a load balancer ARN"), nil
	}
	ids, next, e := pageELB(p, ids)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		Listeners  []xListener `xml:"Listeners>member"`
		NextMarker string      `xml:"NextMarker,omitempty"`
	}{NextMarker: next}
	for _, id := range ids {
		out.Listeners = append(out.Listeners, s.st.listeners[id].x())
	}
	return out, nil, nil
}

func (s *Server) deleteListener(p url.Values) (any, *Error, func()) {
	arn := p.Get("ListenerArn")
	if s.st.listeners[arn] == nil {
		return nil, elbErr("ListenerNotFound", "One or more listeners not found"), nil
	}
	delete(s.st.listeners, arn)
	return struct{}{}, nil, s.lbChanged()
}

// ---- targets ----

type elbTargetParam struct {
	id   string
	port int
}

func targetsParam(p url.Values, tg *targetGroup) ([]elbTargetParam, *Error) {
	n := count(p, "Targets.member")
	if n == 0 {
		return nil, validationErr("Targets must contain at least one target")
	}
	var out []elbTargetParam
	for i := range n {
		pre := member("Targets.member", i)
		t := elbTargetParam{id: p.Get(pre + ".Id"), port: tg.port}
		if t.id == "" {
			return nil, validationErr("A target ID must be specified")
		}
		if v := p.Get(pre + ".Port"); v != "" {
			port, err := strconv.Atoi(v)
			if err != nil || port < 1 || port > 65535 {
				return nil, validationErr("Target port '%s' is not valid", v)
			}
			t.port = port
		}
		out = append(out, t)
	}
	return out, nil
}

// registerTargets registers instances; each must be a running instance of
// the target group's VPC ("InvalidTarget: The following targets are not in
// a running state and cannot be registered", API_RegisterTargets.html).
// Registering a registered target again changes nothing; a draining one
// comes back.
func (s *Server) registerTargets(p url.Values) (any, *Error, func()) {
	tg, e := s.tgByARN(p.Get("TargetGroupArn"))
	if e != nil {
		return nil, e, nil
	}
	ts, e := targetsParam(p, tg)
	if e != nil {
		return nil, e, nil
	}
	for _, t := range ts {
		in := s.st.instances[t.id]
		if in == nil || in.State == "terminated" || in.State == "shutting-down" {
			return nil, elbErr("InvalidTarget", "The following targets are not valid instances: '%s'", t.id), nil
		}
		if in.State != "running" {
			return nil, elbErr("InvalidTarget", "The following targets are not in a running state and cannot be registered: '%s'", t.id), nil
		}
		if in.VpcID != tg.vpc {
			return nil, elbErr("InvalidTarget", "The following targets are not in the target group VPC '%s': '%s'", tg.vpc, t.id), nil
		}
	}
	for _, t := range ts {
		tg.targets[t.id] = &elbTarget{id: t.id, port: t.port}
	}
	return struct{}{}, nil, s.lbChanged()
}

// deregisterTargets starts draining registered targets; they leave the
// group after the deregistration delay. A target that is not registered
// fails the call with InvalidTarget (API_DeregisterTargets.html).
func (s *Server) deregisterTargets(p url.Values) (any, *Error, func()) {
	tg, e := s.tgByARN(p.Get("TargetGroupArn"))
	if e != nil {
		return nil, e, nil
	}
	ts, e := targetsParam(p, tg)
	if e != nil {
		return nil, e, nil
	}
	for _, t := range ts {
		if tg.targets[t.id] == nil {
			return nil, elbErr("InvalidTarget", "The following targets are not registered in target group '%s': '%s'", tg.name, t.id), nil
		}
	}
	arn := tg.arn
	for _, t := range ts {
		tg.targets[t.id].draining = true
		id := t.id
		s.elbLater(s.opts.DrainDelay, func() {
			if g := s.st.tgs[arn]; g != nil && g.targets[id] != nil && g.targets[id].draining {
				delete(g.targets, id)
			}
		})
	}
	return struct{}{}, nil, s.lbChanged()
}

type xTargetHealthDescription struct {
	Target struct {
		ID   string `xml:"Id"`
		Port int    `xml:"Port"`
	} `xml:"Target"`
	HealthCheckPort string `xml:"HealthCheckPort"`
	TargetHealth    struct {
		State       string `xml:"State"`
		Reason      string `xml:"Reason,omitempty"`
		Description string `xml:"Description,omitempty"`
	} `xml:"TargetHealth"`
}

// describeTargetHealth reports each registered target with the states and
// reason codes of https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html.
// Health itself comes from Options.TargetHealth (the lab's own checks);
// without it a running instance counts as healthy.
func (s *Server) describeTargetHealth(p url.Values) (any, *Error, func()) {
	tg, e := s.tgByARN(p.Get("TargetGroupArn"))
	if e != nil {
		return nil, e, nil
	}
	inUse := len(s.xTG(tg).LoadBalancerArns) > 0
	out := struct {
		Descriptions []xTargetHealthDescription `xml:"TargetHealthDescriptions>member"`
	}{}
	for _, id := range sortedKeys(tg.targets) {
		t := tg.targets[id]
		var d xTargetHealthDescription
		d.Target.ID, d.Target.Port, d.HealthCheckPort = t.id, t.port, strconv.Itoa(t.port)
		in := s.st.instances[t.id]
		switch {
		case t.draining:
			d.TargetHealth.State, d.TargetHealth.Reason = "draining", "Target.DeregistrationInProgress"
		case !inUse:
			d.TargetHealth.State, d.TargetHealth.Reason = "unused", "Target.NotInUse"
		case in == nil || in.State != "running":
			d.TargetHealth.State, d.TargetHealth.Reason = "unused", "Target.InvalidState"
		case s.opts.TargetHealth != nil && !s.opts.TargetHealth(t.id, t.port):
			d.TargetHealth.State, d.TargetHealth.Reason = "unhealthy", "Target.FailedHealthChecks"
		default:
			d.TargetHealth.State = "healthy"
		}
		out.Descriptions = append(out.Descriptions, d)
	}
	return out, nil, nil
}

// ---- tags ----

type xTagDescription struct {
	ResourceArn string `xml:"ResourceArn"`
	Tags        []struct {
		Key   string `xml:"Key"`
		Value string `xml:"Value"`
	} `xml:"Tags>member"`
}

// describeELBTags answers the tags of up to 20 load balancers, target
// groups or listeners (API_DescribeTags.html).
func (s *Server) describeELBTags(p url.Values) (any, *Error, func()) {
	arns := members(p, "ResourceArns")
	if len(arns) == 0 || len(arns) > 20 {
		return nil, validationErr("Between 1 and 20 resource ARNs must be specified, not %d", len(arns)), nil
	}
	out := struct {
		TagDescriptions []xTagDescription `xml:"TagDescriptions>member"`
	}{}
	for _, arn := range arns {
		var tags map[string]string
		switch {
		case s.st.lbs[arn] != nil:
			tags = s.st.lbs[arn].Tags
		case s.st.tgs[arn] != nil:
			tags = s.st.tgs[arn].tags
		case s.st.listeners[arn] != nil:
			tags = s.st.listeners[arn].tags
		case strings.Contains(arn, ":loadbalancer/"):
			return nil, elbErr("LoadBalancerNotFound", "Load balancers '[%s]' not found", arn), nil
		case strings.Contains(arn, ":targetgroup/"):
			return nil, elbErr("TargetGroupNotFound", "Target groups '[%s]' not found", arn), nil
		default:
			return nil, elbErr("ListenerNotFound", "One or more listeners not found"), nil
		}
		d := xTagDescription{ResourceArn: arn}
		for _, k := range sortedKeys(tags) {
			d.Tags = append(d.Tags, struct {
				Key   string `xml:"Key"`
				Value string `xml:"Value"`
			}{k, tags[k]})
		}
		out.TagDescriptions = append(out.TagDescriptions, d)
	}
	return out, nil, nil
}
