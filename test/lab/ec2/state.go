package ec2

import (
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TagCluster is the tag the inspection API groups objects by.
const TagCluster = "mixedk8s.io/cluster"

// Instance is an emulated instance as hooks and the inspection API see it.
type Instance struct {
	ID            string
	ReservationID string
	ImageID       string
	InstanceType  string
	// State is pending, running, shutting-down or terminated.
	State       string
	VpcID       string
	SubnetID    string
	Zone        string
	PrivateIP   string
	SecurityIDs []string
	// UserData is the decoded first-boot payload; it carries secrets.
	UserData []byte
	// Platform is "windows" for Windows images, empty otherwise.
	Platform             string
	NestedVirtualization bool
	DiskGB               int
	// RootEncrypted: the root volume was asked encrypted (the account's
	// default encryption is off in the lab, as it is on a new account).
	RootEncrypted bool
	// RootKMSKeyID is the ARN of the KMS key that encrypts the root
	// volume, DefaultEBSKey for the account's aws/ebs key, empty when it
	// is not encrypted.
	RootKMSKeyID string
	// StateReason is why the instance left pending for terminated, as
	// DescribeInstances reports it: Client.InternalError when its volume's
	// KMS key could not be used.
	StateReason StateReason
	Metadata    MetadataOptions
	ClientToken string
	LaunchTime  time.Time
	Tags        map[string]string

	changed time.Time // when State last changed
}

// StateReason is EC2's StateReason: a code and its message.
type StateReason struct{ Code, Message string }

// MetadataOptions is the instance metadata service's configuration.
type MetadataOptions struct {
	HTTPTokens   string // optional (IMDSv1 allowed) or required (IMDSv2 only)
	HopLimit     int    // 1: a container behind the node's bridge cannot reach it
	HTTPEndpoint string // enabled or disabled
}

func (in *Instance) clone() Instance {
	out := *in
	out.Tags = maps.Clone(in.Tags)
	out.SecurityIDs = slices.Clone(in.SecurityIDs)
	out.UserData = slices.Clone(in.UserData)
	return out
}

type vpc struct {
	id, cidr string
	tags     map[string]string
}

type subnet struct {
	id, vpc, cidr, zone string
	tags                map[string]string
	next                netip.Addr // next private address to hand out
}

type igw struct {
	id, vpc string // vpc is "" when detached
	tags    map[string]string
}

type route struct{ dest, gateway string }

type rtAssoc struct{ id, subnet string }

type routeTable struct {
	id, vpc string
	main    bool
	routes  []route
	assocs  []rtAssoc
	tags    map[string]string
}

type perm struct {
	proto          string
	from, to       int
	cidrs, groups  []string
	descriptionFor map[string]string
}

type securityGroup struct {
	id, vpc, name, desc string
	ingress             []perm
	tags                map[string]string
}

type reservation struct {
	id        string
	params    string // canonical RunInstances parameters, for IdempotentParameterMismatch
	instances []string
}

type image struct {
	id, name, platform, description, ssm string
}

type state struct {
	next         int
	vpcs         map[string]*vpc
	subnets      map[string]*subnet
	igws         map[string]*igw
	routeTables  map[string]*routeTable
	groups       map[string]*securityGroup
	instances    map[string]*Instance
	reservations map[string]*reservation
	tokens       map[string]*reservation // ClientToken -> reservation; kept for the server's life (EC2: at least 24h after termination)
	images       map[string]*image
	params       map[string]*parameter // SSM parameters clients stored, by name
	elbState
}

func newState(region string) state {
	st := state{
		vpcs: map[string]*vpc{}, subnets: map[string]*subnet{}, igws: map[string]*igw{},
		routeTables: map[string]*routeTable{}, groups: map[string]*securityGroup{},
		instances: map[string]*Instance{}, reservations: map[string]*reservation{},
		tokens: map[string]*reservation{}, images: map[string]*image{},
		params:   map[string]*parameter{},
		elbState: elbState{lbs: map[string]*loadBalancer{}, tgs: map[string]*targetGroup{}, listeners: map[string]*listener{}},
	}
	for _, im := range publicImages {
		im := im
		im.id = st.newID("ami")
		st.images[im.id] = &im
	}
	return st
}

// publicImages are the images the SSM public parameters point to.
var publicImages = func() []image {
	var out []image
	for _, v := range []string{"2019", "2022", "2025"} {
		for _, ed := range []string{"Core", "Full"} {
			name := "Windows_Server-" + v + "-English-" + ed + "-Base"
			out = append(out, image{name: name + "-2026.09.10", platform: "windows", description: "Microsoft Windows Server " + v + " " + ed,
				ssm: "/aws/service/ami-windows-latest/" + name})
		}
	}
	out = append(out, image{name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260901", description: "Canonical, Ubuntu, 24.04, amd64 noble image",
		ssm: "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"})
	out = append(out, image{name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260901", description: "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image",
		ssm: "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"})
	return out
}()

// newID makes IDs shaped like EC2's: prefix, dash, 17 hex digits.
func (st *state) newID(prefix string) string {
	st.next++
	return fmt.Sprintf("%s-%017x", prefix, 0x0a1b2c3d000+st.next)
}

// tagsOf returns the tag map of any taggable object, or nil.
func (st *state) tagsOf(id string) map[string]string {
	switch {
	case st.vpcs[id] != nil:
		return st.vpcs[id].tags
	case st.subnets[id] != nil:
		return st.subnets[id].tags
	case st.igws[id] != nil:
		return st.igws[id].tags
	case st.routeTables[id] != nil:
		return st.routeTables[id].tags
	case st.groups[id] != nil:
		return st.groups[id].tags
	case st.instances[id] != nil:
		return st.instances[id].Tags
	}
	return nil
}

// Objects lists every object tagged with cluster that still exists, as
// "vpc/<id>", "subnet/<id>", "internet-gateway/<id>", "route-table/<id>",
// "security-group/<id>", "instance/<id>" (terminated instances are
// gone), "load-balancer/<name>", "target-group/<name>" and
// "listener/<id>", sorted: what a leak check compares with nothing.
func (s *Server) Objects(cluster string) []string {
	return slices.Sorted(maps.Keys(s.ObjectTags(cluster)))
}

// ObjectTags maps each object Objects lists to its tags.
func (s *Server) ObjectTags(cluster string) map[string]map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]string{}
	add := func(kind, id string, tags map[string]string) {
		if tags[TagCluster] == cluster {
			out[kind+"/"+id] = maps.Clone(tags)
		}
	}
	for id, o := range s.st.vpcs {
		add("vpc", id, o.tags)
	}
	for id, o := range s.st.subnets {
		add("subnet", id, o.tags)
	}
	for id, o := range s.st.igws {
		add("internet-gateway", id, o.tags)
	}
	for id, o := range s.st.routeTables {
		add("route-table", id, o.tags)
	}
	for id, o := range s.st.groups {
		add("security-group", id, o.tags)
	}
	for id, o := range s.st.instances {
		if o.State != "terminated" {
			add("instance", id, o.Tags)
		}
	}
	for _, lb := range s.st.lbs {
		add("load-balancer", lb.Name, lb.Tags)
	}
	for _, tg := range s.st.tgs {
		add("target-group", tg.name, tg.tags)
	}
	for _, l := range s.st.listeners {
		add("listener", l.arn[strings.LastIndexByte(l.arn, '/')+1:], l.tags)
	}
	for name, p := range s.st.params {
		add("parameter", strings.TrimPrefix(name, "/"), p.tags)
	}
	return out
}

// Instances returns every instance still visible, terminated ones included, by ID.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Instance
	for _, in := range s.st.instances {
		out = append(out, in.clone())
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ---- request parsing ----

// list returns the values of prefix.1, prefix.2, ... in order.
func list(p url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := p[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// count returns how many prefix.N.* members exist (N from 1, contiguous).
func count(p url.Values, prefix string) int {
	n := 0
	for i := 1; ; i++ {
		pre := prefix + "." + strconv.Itoa(i) + "."
		found := false
		for k := range p {
			if strings.HasPrefix(k, pre) {
				found = true
				break
			}
		}
		if !found {
			return n
		}
		n++
	}
}

func member(prefix string, i int) string { return prefix + "." + strconv.Itoa(i+1) }

// tagSpecs reads TagSpecification.N for resourceType.
func tagSpecs(p url.Values, resourceType string) map[string]string {
	tags := map[string]string{}
	for i := range count(p, "TagSpecification") {
		pre := member("TagSpecification", i)
		if p.Get(pre+".ResourceType") != resourceType {
			continue
		}
		for j := range count(p, pre+".Tag") {
			t := member(pre+".Tag", j)
			tags[p.Get(t+".Key")] = p.Get(t + ".Value")
		}
	}
	return tags
}

func badTagSpecs(p url.Values, allowed ...string) *Error {
	for i := range count(p, "TagSpecification") {
		rt := p.Get(member("TagSpecification", i) + ".ResourceType")
		if !slices.Contains(allowed, rt) {
			return invalidParam("'%s' is not a valid taggable resource type for this operation.", rt)
		}
	}
	return nil
}

type filter struct {
	name   string
	values []string
}

func filters(p url.Values) []filter {
	var out []filter
	for i := range count(p, "Filter") {
		pre := member("Filter", i)
		out = append(out, filter{name: p.Get(pre + ".Name"), values: list(p, pre+".Value")})
	}
	return out
}

// matchWildcard matches EC2 filter values, where * and ? are wildcards.
func matchWildcard(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if matchWildcard(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && matchWildcard(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && matchWildcard(pattern[1:], s[1:])
}

// matches applies filters to one object; attr returns the object's values
// for a filter name and false for a name the object kind does not know.
func matches(fs []filter, tags map[string]string, attr func(name string) ([]string, bool)) (bool, *Error) {
	for _, f := range fs {
		var have []string
		switch {
		case strings.HasPrefix(f.name, "tag:"):
			if v, ok := tags[strings.TrimPrefix(f.name, "tag:")]; ok {
				have = []string{v}
			}
		case f.name == "tag-key":
			have = slices.Collect(maps.Keys(tags))
		default:
			v, ok := attr(f.name)
			if !ok {
				return false, invalidParam("The filter '%s' is invalid", f.name)
			}
			have = v
		}
		hit := false
		for _, want := range f.values {
			for _, h := range have {
				if matchWildcard(want, h) {
					hit = true
				}
			}
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}

// page cuts a sorted list of IDs by MaxResults and NextToken (the ID to start at).
func page(p url.Values, ids []string, minMax, maxMax int) ([]string, string, *Error) {
	start := 0
	if tok := p.Get("NextToken"); tok != "" {
		i := slices.Index(ids, tok)
		if i < 0 {
			// the object the token points at is gone: start at the next one by order
			i = sort.SearchStrings(ids, tok)
		}
		start = i
	}
	ids = ids[start:]
	if m := p.Get("MaxResults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < minMax || n > maxMax {
			return nil, "", invalidParam("Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.", m, minMax, maxMax)
		}
		if len(ids) > n {
			return ids[:n], ids[n], nil
		}
	}
	return ids, "", nil
}

func notFound(code, what, id string) *Error {
	return errf(http.StatusBadRequest, code, "The %s '%s' does not exist", what, id)
}

func sortedKeys[V any](m map[string]V) []string {
	out := slices.Collect(maps.Keys(m))
	sort.Strings(out)
	return out
}

// ---- reply shapes ----

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func xTags(tags map[string]string) []xTag {
	var out []xTag
	for _, k := range sortedKeys(tags) {
		out = append(out, xTag{k, tags[k]})
	}
	return out
}

type xReturn struct {
	Return bool `xml:"return"`
}
