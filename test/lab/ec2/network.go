package ec2

import (
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

type xVpc struct {
	VpcID           string `xml:"vpcId"`
	OwnerID         string `xml:"ownerId"`
	State           string `xml:"state"`
	CidrBlock       string `xml:"cidrBlock"`
	DhcpOptionsID   string `xml:"dhcpOptionsId"`
	InstanceTenancy string `xml:"instanceTenancy"`
	IsDefault       bool   `xml:"isDefault"`
	TagSet          []xTag `xml:"tagSet>item"`
}

func (v *vpc) x() xVpc {
	return xVpc{VpcID: v.id, OwnerID: AccountID, State: "available", CidrBlock: v.cidr, DhcpOptionsID: "dopt-0a1b2c3d4e5f60718",
		InstanceTenancy: "default", TagSet: xTags(v.tags)}
}

func (s *Server) createVpc(p url.Values) (any, *Error, func()) {
	cidr := p.Get("CidrBlock")
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil || !pfx.Addr().Is4() || pfx.Masked() != pfx {
		return nil, invalidParam("Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", cidr), nil
	}
	if pfx.Bits() < 16 || pfx.Bits() > 28 {
		return nil, errf(http.StatusBadRequest, "InvalidVpc.Range", "The CIDR '%s' is invalid.", cidr), nil
	}
	if e := badTagSpecs(p, "vpc"); e != nil {
		return nil, e, nil
	}
	v := &vpc{id: s.st.newID("vpc"), cidr: cidr, tags: tagSpecs(p, "vpc")}
	s.st.vpcs[v.id] = v
	// EC2 gives every VPC a main route table and a default security group.
	rt := &routeTable{id: s.st.newID("rtb"), vpc: v.id, main: true, routes: []route{{dest: cidr, gateway: "local"}}, tags: map[string]string{}}
	s.st.routeTables[rt.id] = rt
	sg := &securityGroup{id: s.st.newID("sg"), vpc: v.id, name: "default", desc: "default VPC security group", tags: map[string]string{}}
	s.st.groups[sg.id] = sg
	return struct {
		Vpc xVpc `xml:"vpc"`
	}{v.x()}, nil, nil
}

// malformedID refuses an ID list entry that is not of the type's form:
// its prefix, a dash and 8 or 17 hexadecimal digits
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html).
// EC2 answers <Type>ID.Malformed for it before it looks anything up
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html:
// InvalidVpcID.Malformed, InvalidSubnetID.Malformed); the message is the
// one EC2 was seen to give, "The vpc ID vpc-012345678 is malformed"
// (ansible-collections/community.aws#1475).
func malformedID(p url.Values, idParam, prefix, code, what string) *Error {
	for _, id := range list(p, idParam) {
		hex, ok := strings.CutPrefix(id, prefix+"-")
		if !ok || (len(hex) != 8 && len(hex) != 17) || strings.Trim(hex, "0123456789abcdef") != "" {
			return errf(http.StatusBadRequest, code, "The %s %s is malformed", what, id)
		}
	}
	return nil
}

func (s *Server) describeVpcs(p url.Values) (any, *Error, func()) {
	if e := malformedID(p, "VpcId", "vpc", "InvalidVpcID.Malformed", "vpc ID"); e != nil {
		return nil, e, nil
	}
	ids, e := s.selectIDs(p, "VpcId", "InvalidVpcID.NotFound", "vpc ID", sortedKeys(s.st.vpcs), func(id string) (map[string]string, func(string) ([]string, bool)) {
		v := s.st.vpcs[id]
		return v.tags, func(name string) ([]string, bool) {
			switch name {
			case "vpc-id":
				return []string{v.id}, true
			case "cidr", "cidr-block-association.cidr-block":
				return []string{v.cidr}, true
			case "state":
				return []string{"available"}, true
			case "is-default":
				return []string{"false"}, true
			}
			return nil, false
		}
	})
	if e != nil {
		return nil, e, nil
	}
	ids, next, e := page(p, ids, 5, 1000)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		VpcSet    []xVpc `xml:"vpcSet>item"`
		NextToken string `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, id := range ids {
		out.VpcSet = append(out.VpcSet, s.st.vpcs[id].x())
	}
	return out, nil, nil
}

// selectIDs applies an ID list parameter (unknown IDs fail with code) and
// the filters to all, returning the matching IDs in order.
func (s *Server) selectIDs(p url.Values, idParam, code, what string, all []string, obj func(id string) (map[string]string, func(string) ([]string, bool))) ([]string, *Error) {
	if want := list(p, idParam); len(want) > 0 {
		if p.Get("MaxResults") != "" {
			return nil, errf(http.StatusBadRequest, "InvalidParameterCombination", "The parameter %ss cannot be used with the parameter maxResults", strings.ToLower(idParam[:1])+idParam[1:])
		}
		for _, id := range want {
			if !slices.Contains(all, id) {
				return nil, notFound(code, what, id)
			}
		}
		all = slices.DeleteFunc(slices.Clone(all), func(id string) bool { return !slices.Contains(want, id) })
	}
	fs := filters(p)
	var out []string
	for _, id := range all {
		tags, attr := obj(id)
		ok, e := matches(fs, tags, attr)
		if e != nil {
			return nil, e
		}
		if ok {
			out = append(out, id)
		}
	}
	return out, nil
}

func (s *Server) deleteVpc(p url.Values) (any, *Error, func()) {
	id := p.Get("VpcId")
	if s.st.vpcs[id] == nil {
		return nil, notFound("InvalidVpcID.NotFound", "vpc ID", id), nil
	}
	dep := func(what, oid string) (any, *Error, func()) {
		return nil, errf(http.StatusBadRequest, "DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted. (%s %s)", id, what, oid), nil
	}
	for _, sn := range sortedKeys(s.st.subnets) {
		if s.st.subnets[sn].vpc == id {
			return dep("subnet", sn)
		}
	}
	for _, g := range sortedKeys(s.st.igws) {
		if s.st.igws[g].vpc == id {
			return dep("internet gateway", g)
		}
	}
	for _, rt := range sortedKeys(s.st.routeTables) {
		if r := s.st.routeTables[rt]; r.vpc == id && !r.main {
			return dep("route table", rt)
		}
	}
	for _, g := range sortedKeys(s.st.groups) {
		if sg := s.st.groups[g]; sg.vpc == id && sg.name != "default" {
			return dep("security group", g)
		}
	}
	for _, in := range s.st.instances {
		if in.VpcID == id && in.State != "terminated" {
			return dep("instance", in.ID)
		}
	}
	for _, rt := range sortedKeys(s.st.routeTables) {
		if s.st.routeTables[rt].vpc == id {
			delete(s.st.routeTables, rt)
		}
	}
	for _, g := range sortedKeys(s.st.groups) {
		if s.st.groups[g].vpc == id {
			delete(s.st.groups, g)
		}
	}
	delete(s.st.vpcs, id)
	return xReturn{true}, nil, nil
}

type xSubnet struct {
	SubnetID                string `xml:"subnetId"`
	SubnetArn               string `xml:"subnetArn"`
	State                   string `xml:"state"`
	OwnerID                 string `xml:"ownerId"`
	VpcID                   string `xml:"vpcId"`
	CidrBlock               string `xml:"cidrBlock"`
	AvailableIPAddressCount int    `xml:"availableIpAddressCount"`
	AvailabilityZone        string `xml:"availabilityZone"`
	DefaultForAz            bool   `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool   `xml:"mapPublicIpOnLaunch"`
	TagSet                  []xTag `xml:"tagSet>item"`
}

func (s *Server) xSubnet(sn *subnet) xSubnet {
	pfx := netip.MustParsePrefix(sn.cidr)
	used := 5 // EC2 reserves the first four addresses and the last one
	for _, in := range s.st.instances {
		if in.SubnetID == sn.id && in.State != "terminated" {
			used++
		}
	}
	return xSubnet{SubnetID: sn.id, SubnetArn: "arn:aws:ec2:" + s.opts.Region + ":" + AccountID + ":subnet/" + sn.id, State: "available",
		OwnerID: AccountID, VpcID: sn.vpc, CidrBlock: sn.cidr, AvailableIPAddressCount: 1<<(32-pfx.Bits()) - used,
		AvailabilityZone: sn.zone, TagSet: xTags(sn.tags)}
}

func (s *Server) createSubnet(p url.Values) (any, *Error, func()) {
	v := s.st.vpcs[p.Get("VpcId")]
	if v == nil {
		return nil, notFound("InvalidVpcID.NotFound", "vpc ID", p.Get("VpcId")), nil
	}
	cidr := p.Get("CidrBlock")
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil || pfx.Masked() != pfx {
		return nil, invalidParam("Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", cidr), nil
	}
	vp := netip.MustParsePrefix(v.cidr)
	if !vp.Contains(pfx.Addr()) || pfx.Bits() < vp.Bits() || pfx.Bits() > 28 {
		return nil, errf(http.StatusBadRequest, "InvalidSubnet.Range", "The CIDR '%s' is invalid.", cidr), nil
	}
	for _, o := range s.st.subnets {
		if o.vpc == v.id && netip.MustParsePrefix(o.cidr).Overlaps(pfx) {
			return nil, errf(http.StatusBadRequest, "InvalidSubnet.Conflict", "The CIDR '%s' conflicts with another subnet", cidr), nil
		}
	}
	zone := p.Get("AvailabilityZone")
	if zone == "" {
		zone = s.opts.Zones[len(s.st.subnets)%len(s.opts.Zones)]
	} else if !slices.Contains(s.opts.Zones, zone) {
		return nil, invalidParam("Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: %s.", zone, strings.Join(s.opts.Zones, ", ")), nil
	}
	if e := badTagSpecs(p, "subnet"); e != nil {
		return nil, e, nil
	}
	first := pfx.Addr()
	for range 4 {
		first = first.Next()
	}
	sn := &subnet{id: s.st.newID("subnet"), vpc: v.id, cidr: cidr, zone: zone, tags: tagSpecs(p, "subnet"), next: first}
	s.st.subnets[sn.id] = sn
	return struct {
		Subnet xSubnet `xml:"subnet"`
	}{s.xSubnet(sn)}, nil, nil
}

func (s *Server) describeSubnets(p url.Values) (any, *Error, func()) {
	if e := malformedID(p, "SubnetId", "subnet", "InvalidSubnetID.Malformed", "subnet ID"); e != nil {
		return nil, e, nil
	}
	ids, e := s.selectIDs(p, "SubnetId", "InvalidSubnetID.NotFound", "subnet ID", sortedKeys(s.st.subnets), func(id string) (map[string]string, func(string) ([]string, bool)) {
		sn := s.st.subnets[id]
		return sn.tags, func(name string) ([]string, bool) {
			switch name {
			case "subnet-id":
				return []string{sn.id}, true
			case "vpc-id":
				return []string{sn.vpc}, true
			case "availability-zone":
				return []string{sn.zone}, true
			case "cidr-block":
				return []string{sn.cidr}, true
			case "state":
				return []string{"available"}, true
			}
			return nil, false
		}
	})
	if e != nil {
		return nil, e, nil
	}
	ids, next, e := page(p, ids, 5, 1000)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		SubnetSet []xSubnet `xml:"subnetSet>item"`
		NextToken string    `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, id := range ids {
		out.SubnetSet = append(out.SubnetSet, s.xSubnet(s.st.subnets[id]))
	}
	return out, nil, nil
}

func (s *Server) deleteSubnet(p url.Values) (any, *Error, func()) {
	id := p.Get("SubnetId")
	if s.st.subnets[id] == nil {
		return nil, notFound("InvalidSubnetID.NotFound", "subnet ID", id), nil
	}
	for _, iid := range sortedKeys(s.st.instances) {
		if in := s.st.instances[iid]; in.SubnetID == id && in.State != "terminated" {
			return nil, errf(http.StatusBadRequest, "DependencyViolation", "The subnet '%s' has dependencies and cannot be deleted.", id), nil
		}
	}
	if by := s.lbUses(id, ""); by != "" {
		return nil, errf(http.StatusBadRequest, "DependencyViolation", "The subnet '%s' has dependencies and cannot be deleted. (%s)", id, by), nil
	}
	for _, rt := range s.st.routeTables {
		rt.assocs = slices.DeleteFunc(rt.assocs, func(a rtAssoc) bool { return a.subnet == id })
	}
	delete(s.st.subnets, id)
	return xReturn{true}, nil, nil
}

type xAttachment struct {
	VpcID string `xml:"vpcId"`
	State string `xml:"state"`
}

type xIgw struct {
	InternetGatewayID string        `xml:"internetGatewayId"`
	OwnerID           string        `xml:"ownerId"`
	AttachmentSet     []xAttachment `xml:"attachmentSet>item"`
	TagSet            []xTag        `xml:"tagSet>item"`
}

func (g *igw) x() xIgw {
	out := xIgw{InternetGatewayID: g.id, OwnerID: AccountID, TagSet: xTags(g.tags)}
	if g.vpc != "" {
		out.AttachmentSet = []xAttachment{{VpcID: g.vpc, State: "available"}}
	}
	return out
}

func (s *Server) createInternetGateway(p url.Values) (any, *Error, func()) {
	if e := badTagSpecs(p, "internet-gateway"); e != nil {
		return nil, e, nil
	}
	g := &igw{id: s.st.newID("igw"), tags: tagSpecs(p, "internet-gateway")}
	s.st.igws[g.id] = g
	return struct {
		InternetGateway xIgw `xml:"internetGateway"`
	}{g.x()}, nil, nil
}

func (s *Server) attachInternetGateway(p url.Values) (any, *Error, func()) {
	g := s.st.igws[p.Get("InternetGatewayId")]
	if g == nil {
		return nil, notFound("InvalidInternetGatewayID.NotFound", "internetGateway ID", p.Get("InternetGatewayId")), nil
	}
	vid := p.Get("VpcId")
	if s.st.vpcs[vid] == nil {
		return nil, notFound("InvalidVpcID.NotFound", "vpc ID", vid), nil
	}
	if g.vpc != "" {
		return nil, errf(http.StatusBadRequest, "Resource.AlreadyAssociated", "resource %s is already attached to network %s", g.id, g.vpc), nil
	}
	g.vpc = vid
	return xReturn{true}, nil, nil
}

func (s *Server) detachInternetGateway(p url.Values) (any, *Error, func()) {
	g := s.st.igws[p.Get("InternetGatewayId")]
	if g == nil {
		return nil, notFound("InvalidInternetGatewayID.NotFound", "internetGateway ID", p.Get("InternetGatewayId")), nil
	}
	if g.vpc == "" || g.vpc != p.Get("VpcId") {
		return nil, errf(http.StatusBadRequest, "Gateway.NotAttached", "resource %s is not attached to network %s", g.id, p.Get("VpcId")), nil
	}
	g.vpc = ""
	return xReturn{true}, nil, nil
}

func (s *Server) deleteInternetGateway(p url.Values) (any, *Error, func()) {
	g := s.st.igws[p.Get("InternetGatewayId")]
	if g == nil {
		return nil, notFound("InvalidInternetGatewayID.NotFound", "internetGateway ID", p.Get("InternetGatewayId")), nil
	}
	if g.vpc != "" {
		return nil, errf(http.StatusBadRequest, "DependencyViolation", "The internetGateway '%s' has dependencies and cannot be deleted.", g.id), nil
	}
	delete(s.st.igws, g.id)
	return xReturn{true}, nil, nil
}

func (s *Server) describeInternetGateways(p url.Values) (any, *Error, func()) {
	ids, e := s.selectIDs(p, "InternetGatewayId", "InvalidInternetGatewayID.NotFound", "internetGateway ID", sortedKeys(s.st.igws), func(id string) (map[string]string, func(string) ([]string, bool)) {
		g := s.st.igws[id]
		return g.tags, func(name string) ([]string, bool) {
			switch name {
			case "internet-gateway-id":
				return []string{g.id}, true
			case "attachment.vpc-id":
				return []string{g.vpc}, true
			}
			return nil, false
		}
	})
	if e != nil {
		return nil, e, nil
	}
	ids, next, e := page(p, ids, 5, 1000)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		Set       []xIgw `xml:"internetGatewaySet>item"`
		NextToken string `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, id := range ids {
		out.Set = append(out.Set, s.st.igws[id].x())
	}
	return out, nil, nil
}

type xRoute struct {
	DestinationCidrBlock string `xml:"destinationCidrBlock"`
	GatewayID            string `xml:"gatewayId"`
	State                string `xml:"state"`
	Origin               string `xml:"origin"`
}

type xAssocState struct {
	State string `xml:"state"`
}

type xAssoc struct {
	Main                    bool        `xml:"main"`
	RouteTableAssociationID string      `xml:"routeTableAssociationId"`
	RouteTableID            string      `xml:"routeTableId"`
	SubnetID                string      `xml:"subnetId,omitempty"`
	AssociationState        xAssocState `xml:"associationState"`
}

type xRouteTable struct {
	RouteTableID   string   `xml:"routeTableId"`
	VpcID          string   `xml:"vpcId"`
	OwnerID        string   `xml:"ownerId"`
	RouteSet       []xRoute `xml:"routeSet>item"`
	AssociationSet []xAssoc `xml:"associationSet>item"`
	TagSet         []xTag   `xml:"tagSet>item"`
}

func (rt *routeTable) x() xRouteTable {
	out := xRouteTable{RouteTableID: rt.id, VpcID: rt.vpc, OwnerID: AccountID, TagSet: xTags(rt.tags)}
	for _, r := range rt.routes {
		origin := "CreateRoute"
		if r.gateway == "local" {
			origin = "CreateRouteTable"
		}
		out.RouteSet = append(out.RouteSet, xRoute{DestinationCidrBlock: r.dest, GatewayID: r.gateway, State: "active", Origin: origin})
	}
	if rt.main {
		out.AssociationSet = append(out.AssociationSet, xAssoc{Main: true, RouteTableAssociationID: "rtbassoc-main" + rt.id[4:], RouteTableID: rt.id, AssociationState: xAssocState{"associated"}})
	}
	for _, a := range rt.assocs {
		out.AssociationSet = append(out.AssociationSet, xAssoc{RouteTableAssociationID: a.id, RouteTableID: rt.id, SubnetID: a.subnet, AssociationState: xAssocState{"associated"}})
	}
	return out
}

func (s *Server) createRouteTable(p url.Values) (any, *Error, func()) {
	v := s.st.vpcs[p.Get("VpcId")]
	if v == nil {
		return nil, notFound("InvalidVpcID.NotFound", "vpc ID", p.Get("VpcId")), nil
	}
	if e := badTagSpecs(p, "route-table"); e != nil {
		return nil, e, nil
	}
	rt := &routeTable{id: s.st.newID("rtb"), vpc: v.id, routes: []route{{dest: v.cidr, gateway: "local"}}, tags: tagSpecs(p, "route-table")}
	s.st.routeTables[rt.id] = rt
	return struct {
		RouteTable xRouteTable `xml:"routeTable"`
	}{rt.x()}, nil, nil
}

func (s *Server) createRoute(p url.Values) (any, *Error, func()) {
	rt := s.st.routeTables[p.Get("RouteTableId")]
	if rt == nil {
		return nil, notFound("InvalidRouteTableID.NotFound", "routeTable ID", p.Get("RouteTableId")), nil
	}
	dest, gw := p.Get("DestinationCidrBlock"), p.Get("GatewayId")
	if _, err := netip.ParsePrefix(dest); err != nil {
		return nil, invalidParam("Value (%s) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block.", dest), nil
	}
	if g := s.st.igws[gw]; g == nil || g.vpc != rt.vpc {
		return nil, notFound("InvalidGatewayID.NotFound", "gateway ID", gw), nil
	}
	for _, r := range rt.routes {
		if r.dest == dest {
			if r.gateway == gw {
				return xReturn{true}, nil, nil
			}
			return nil, errf(http.StatusBadRequest, "RouteAlreadyExists", "The route identified by %s already exists.", dest), nil
		}
	}
	rt.routes = append(rt.routes, route{dest: dest, gateway: gw})
	return xReturn{true}, nil, nil
}

func (s *Server) associateRouteTable(p url.Values) (any, *Error, func()) {
	rt := s.st.routeTables[p.Get("RouteTableId")]
	if rt == nil {
		return nil, notFound("InvalidRouteTableID.NotFound", "routeTable ID", p.Get("RouteTableId")), nil
	}
	sn := s.st.subnets[p.Get("SubnetId")]
	if sn == nil {
		return nil, notFound("InvalidSubnetID.NotFound", "subnet ID", p.Get("SubnetId")), nil
	}
	for _, o := range s.st.routeTables {
		for _, a := range o.assocs {
			if a.subnet == sn.id {
				return nil, errf(http.StatusBadRequest, "Resource.AlreadyAssociated", "the specified association for route table %s conflicts with an existing association", o.id), nil
			}
		}
	}
	a := rtAssoc{id: s.st.newID("rtbassoc"), subnet: sn.id}
	rt.assocs = append(rt.assocs, a)
	return struct {
		AssociationID    string      `xml:"associationId"`
		AssociationState xAssocState `xml:"associationState"`
	}{a.id, xAssocState{"associated"}}, nil, nil
}

func (s *Server) disassociateRouteTable(p url.Values) (any, *Error, func()) {
	id := p.Get("AssociationId")
	for _, rt := range s.st.routeTables {
		for i, a := range rt.assocs {
			if a.id == id {
				rt.assocs = slices.Delete(rt.assocs, i, i+1)
				return xReturn{true}, nil, nil
			}
		}
	}
	return nil, notFound("InvalidAssociationID.NotFound", "association ID", id), nil
}

func (s *Server) describeRouteTables(p url.Values) (any, *Error, func()) {
	ids, e := s.selectIDs(p, "RouteTableId", "InvalidRouteTableID.NotFound", "routeTable ID", sortedKeys(s.st.routeTables), func(id string) (map[string]string, func(string) ([]string, bool)) {
		rt := s.st.routeTables[id]
		return rt.tags, func(name string) ([]string, bool) {
			switch name {
			case "route-table-id":
				return []string{rt.id}, true
			case "vpc-id":
				return []string{rt.vpc}, true
			case "association.main":
				return []string{strconv.FormatBool(rt.main)}, true
			case "association.subnet-id":
				var out []string
				for _, a := range rt.assocs {
					out = append(out, a.subnet)
				}
				return out, true
			}
			return nil, false
		}
	})
	if e != nil {
		return nil, e, nil
	}
	ids, next, e := page(p, ids, 5, 100)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		Set       []xRouteTable `xml:"routeTableSet>item"`
		NextToken string        `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, id := range ids {
		out.Set = append(out.Set, s.st.routeTables[id].x())
	}
	return out, nil, nil
}

func (s *Server) deleteRouteTable(p url.Values) (any, *Error, func()) {
	rt := s.st.routeTables[p.Get("RouteTableId")]
	if rt == nil {
		return nil, notFound("InvalidRouteTableID.NotFound", "routeTable ID", p.Get("RouteTableId")), nil
	}
	if rt.main || len(rt.assocs) > 0 {
		return nil, errf(http.StatusBadRequest, "DependencyViolation", "The routeTable '%s' has dependencies and cannot be deleted.", rt.id), nil
	}
	delete(s.st.routeTables, rt.id)
	return xReturn{true}, nil, nil
}

type xIPRange struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type xGroupPair struct {
	UserID  string `xml:"userId"`
	GroupID string `xml:"groupId"`
}

type xPerm struct {
	IPProtocol string       `xml:"ipProtocol"`
	FromPort   *int         `xml:"fromPort"`
	ToPort     *int         `xml:"toPort"`
	Groups     []xGroupPair `xml:"groups>item"`
	IPRanges   []xIPRange   `xml:"ipRanges>item"`
}

type xGroup struct {
	OwnerID             string  `xml:"ownerId"`
	GroupID             string  `xml:"groupId"`
	GroupName           string  `xml:"groupName"`
	GroupDescription    string  `xml:"groupDescription"`
	VpcID               string  `xml:"vpcId"`
	IPPermissions       []xPerm `xml:"ipPermissions>item"`
	IPPermissionsEgress []xPerm `xml:"ipPermissionsEgress>item"`
	TagSet              []xTag  `xml:"tagSet>item"`
}

func (pm perm) x() xPerm {
	out := xPerm{IPProtocol: pm.proto}
	if pm.proto != "-1" {
		out.FromPort, out.ToPort = &pm.from, &pm.to
	}
	for _, c := range pm.cidrs {
		out.IPRanges = append(out.IPRanges, xIPRange{CidrIP: c, Description: pm.descriptionFor[c]})
	}
	for _, g := range pm.groups {
		out.Groups = append(out.Groups, xGroupPair{UserID: AccountID, GroupID: g})
	}
	return out
}

func (g *securityGroup) x() xGroup {
	out := xGroup{OwnerID: AccountID, GroupID: g.id, GroupName: g.name, GroupDescription: g.desc, VpcID: g.vpc, TagSet: xTags(g.tags),
		IPPermissionsEgress: []xPerm{{IPProtocol: "-1", IPRanges: []xIPRange{{CidrIP: "0.0.0.0/0"}}}}}
	for _, pm := range g.ingress {
		out.IPPermissions = append(out.IPPermissions, pm.x())
	}
	return out
}

func (s *Server) createSecurityGroup(p url.Values) (any, *Error, func()) {
	name, desc, vid := p.Get("GroupName"), p.Get("GroupDescription"), p.Get("VpcId")
	if name == "" {
		return nil, missingParam("GroupName"), nil
	}
	if desc == "" {
		return nil, missingParam("GroupDescription"), nil
	}
	if s.st.vpcs[vid] == nil {
		return nil, notFound("InvalidVpcID.NotFound", "vpc ID", vid), nil
	}
	for _, g := range s.st.groups {
		if g.vpc == vid && g.name == name {
			return nil, errf(http.StatusBadRequest, "InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vid), nil
		}
	}
	if e := badTagSpecs(p, "security-group"); e != nil {
		return nil, e, nil
	}
	g := &securityGroup{id: s.st.newID("sg"), vpc: vid, name: name, desc: desc, tags: tagSpecs(p, "security-group")}
	s.st.groups[g.id] = g
	return struct {
		Return           bool   `xml:"return"`
		GroupID          string `xml:"groupId"`
		SecurityGroupArn string `xml:"securityGroupArn"`
		TagSet           []xTag `xml:"tagSet>item"`
	}{true, g.id, "arn:aws:ec2:" + s.opts.Region + ":" + AccountID + ":security-group/" + g.id, xTags(g.tags)}, nil, nil
}

func (s *Server) authorizeIngress(p url.Values) (any, *Error, func()) {
	g := s.st.groups[p.Get("GroupId")]
	if g == nil {
		return nil, notFound("InvalidGroup.NotFound", "security group", p.Get("GroupId")), nil
	}
	add, e := s.readPerms(p)
	if e != nil {
		return nil, e, nil
	}

	// EC2 rejects the whole call when any single rule already exists.
	for _, pm := range add {
		for _, have := range g.ingress {
			if have.proto != pm.proto || have.from != pm.from || have.to != pm.to {
				continue
			}
			for _, c := range pm.cidrs {
				if slices.Contains(have.cidrs, c) {
					return nil, errf(http.StatusBadRequest, "InvalidPermission.Duplicate", "the specified rule \"peer: %s, %s, from port: %d, to port: %d, ALLOW\" already exists", c, strings.ToUpper(pm.proto), pm.from, pm.to), nil
				}
			}
			for _, gid := range pm.groups {
				if slices.Contains(have.groups, gid) {
					return nil, errf(http.StatusBadRequest, "InvalidPermission.Duplicate", "the specified rule \"peer: %s, %s, from port: %d, to port: %d, ALLOW\" already exists", gid, strings.ToUpper(pm.proto), pm.from, pm.to), nil
				}
			}
		}
	}
	for _, pm := range add {
		merged := false
		for i := range g.ingress {
			h := &g.ingress[i]
			if h.proto == pm.proto && h.from == pm.from && h.to == pm.to {
				h.cidrs = append(h.cidrs, pm.cidrs...)
				h.groups = append(h.groups, pm.groups...)
				for c, d := range pm.descriptionFor {
					h.descriptionFor[c] = d
				}
				merged = true
			}
		}
		if !merged {
			g.ingress = append(g.ingress, pm)
		}
	}
	return xReturn{true}, nil, nil
}

func (s *Server) describeSecurityGroups(p url.Values) (any, *Error, func()) {
	ids, e := s.selectIDs(p, "GroupId", "InvalidGroup.NotFound", "security group", sortedKeys(s.st.groups), func(id string) (map[string]string, func(string) ([]string, bool)) {
		g := s.st.groups[id]
		return g.tags, func(name string) ([]string, bool) {
			switch name {
			case "group-id":
				return []string{g.id}, true
			case "group-name":
				return []string{g.name}, true
			case "vpc-id":
				return []string{g.vpc}, true
			}
			return nil, false
		}
	})
	if e != nil {
		return nil, e, nil
	}
	ids, next, e := page(p, ids, 5, 1000)
	if e != nil {
		return nil, e, nil
	}
	out := struct {
		Set       []xGroup `xml:"securityGroupInfo>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, id := range ids {
		out.Set = append(out.Set, s.st.groups[id].x())
	}
	return out, nil, nil
}

func (s *Server) deleteSecurityGroup(p url.Values) (any, *Error, func()) {
	g := s.st.groups[p.Get("GroupId")]
	if g == nil {
		return nil, notFound("InvalidGroup.NotFound", "security group", p.Get("GroupId")), nil
	}
	if g.name == "default" {
		return nil, errf(http.StatusBadRequest, "CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", g.id), nil
	}
	for _, in := range s.st.instances {
		if in.State != "terminated" && slices.Contains(in.SecurityIDs, g.id) {
			return nil, errf(http.StatusBadRequest, "DependencyViolation", "resource %s has a dependent object", g.id), nil
		}
	}
	if by := s.lbUses("", g.id); by != "" {
		return nil, errf(http.StatusBadRequest, "DependencyViolation", "resource %s has a dependent object", g.id), nil
	}
	for _, o := range s.st.groups {
		for _, pm := range o.ingress {
			if o.id != g.id && slices.Contains(pm.groups, g.id) {
				return nil, errf(http.StatusBadRequest, "DependencyViolation", "resource %s has a dependent object", g.id), nil
			}
		}
	}
	delete(s.st.groups, g.id)
	return xReturn{true}, nil, nil
}

func (s *Server) createTags(p url.Values) (any, *Error, func()) {
	ids := list(p, "ResourceId")
	if len(ids) == 0 {
		return nil, missingParam("ResourceId"), nil
	}
	for _, id := range ids {
		if s.st.tagsOf(id) == nil {
			return nil, errf(http.StatusBadRequest, notFoundCode(id), "The ID '%s' does not exist", id), nil
		}
	}
	for _, id := range ids {
		tags := s.st.tagsOf(id)
		for j := range count(p, "Tag") {
			t := member("Tag", j)
			tags[p.Get(t+".Key")] = p.Get(t + ".Value")
		}
	}
	return xReturn{true}, nil, nil
}

func (s *Server) deleteTags(p url.Values) (any, *Error, func()) {
	for _, id := range list(p, "ResourceId") {
		tags := s.st.tagsOf(id)
		if tags == nil {
			return nil, errf(http.StatusBadRequest, notFoundCode(id), "The ID '%s' does not exist", id), nil
		}
		for j := range count(p, "Tag") {
			delete(tags, p.Get(member("Tag", j)+".Key"))
		}
	}
	return xReturn{true}, nil, nil
}

func notFoundCode(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "i":
		return "InvalidInstanceID.NotFound"
	case "vpc":
		return "InvalidVpcID.NotFound"
	case "subnet":
		return "InvalidSubnetID.NotFound"
	case "sg":
		return "InvalidGroup.NotFound"
	case "igw":
		return "InvalidInternetGatewayID.NotFound"
	case "rtb":
		return "InvalidRouteTableID.NotFound"
	}
	return "InvalidID"
}

// revokeIngress removes rules that match exactly; in a VPC that is not the
// default one, any rule that does not exist fails the whole call and none
// is revoked (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RevokeSecurityGroupIngress.html).
func (s *Server) revokeIngress(p url.Values) (any, *Error, func()) {
	g := s.st.groups[p.Get("GroupId")]
	if g == nil {
		return nil, notFound("InvalidGroup.NotFound", "security group", p.Get("GroupId")), nil
	}
	drop, e := s.readPerms(p)
	if e != nil {
		return nil, e, nil
	}
	kept := slices.Clone(g.ingress)
	for _, pm := range drop {
		i := slices.IndexFunc(kept, func(h perm) bool { return h.proto == pm.proto && h.from == pm.from && h.to == pm.to })
		if i < 0 {
			return nil, errf(http.StatusBadRequest, "InvalidPermission.NotFound", "The specified rule does not exist in this security group."), nil
		}
		h := kept[i]
		for _, c := range pm.cidrs {
			if !slices.Contains(h.cidrs, c) {
				return nil, errf(http.StatusBadRequest, "InvalidPermission.NotFound", "The specified rule does not exist in this security group."), nil
			}
			h.cidrs = slices.DeleteFunc(slices.Clone(h.cidrs), func(x string) bool { return x == c })
		}
		for _, gid := range pm.groups {
			if !slices.Contains(h.groups, gid) {
				return nil, errf(http.StatusBadRequest, "InvalidPermission.NotFound", "The specified rule does not exist in this security group."), nil
			}
			h.groups = slices.DeleteFunc(slices.Clone(h.groups), func(x string) bool { return x == gid })
		}
		if len(h.cidrs) == 0 && len(h.groups) == 0 {
			kept = slices.Delete(kept, i, i+1)
		} else {
			kept[i] = h
		}
	}
	g.ingress = kept
	return xReturn{true}, nil, nil
}

// readPerms reads a call's IpPermissions.
func (s *Server) readPerms(p url.Values) ([]perm, *Error) {
	var add []perm
	for i := range count(p, "IpPermissions") {
		pre := member("IpPermissions", i)
		pm := perm{proto: p.Get(pre + ".IpProtocol"), descriptionFor: map[string]string{}}
		switch pm.proto {
		case "tcp", "udp", "icmp", "6", "17", "1":
			var err1, err2 error
			pm.from, err1 = strconv.Atoi(p.Get(pre + ".FromPort"))
			pm.to, err2 = strconv.Atoi(p.Get(pre + ".ToPort"))
			if err1 != nil || err2 != nil || pm.from > pm.to || pm.to > 65535 {
				return nil, invalidParam("Invalid port range (%s-%s) for protocol %s", p.Get(pre+".FromPort"), p.Get(pre+".ToPort"), pm.proto)
			}
		case "-1":
		default:
			return nil, invalidParam("Invalid value '%s' for IP protocol. Unknown protocol.", pm.proto)
		}
		for j := range count(p, pre+".IpRanges") {
			r := member(pre+".IpRanges", j)
			c := p.Get(r + ".CidrIp")
			if _, err := netip.ParsePrefix(c); err != nil {
				return nil, invalidParam("CIDR block %s is malformed", c)
			}
			pm.cidrs = append(pm.cidrs, c)
			pm.descriptionFor[c] = p.Get(r + ".Description")
		}
		for j := range count(p, pre+".Groups") {
			gid := p.Get(member(pre+".Groups", j) + ".GroupId")
			if s.st.groups[gid] == nil {
				return nil, notFound("InvalidGroup.NotFound", "security group", gid)
			}
			pm.groups = append(pm.groups, gid)
		}
		add = append(add, pm)
	}
	if len(add) == 0 {
		return nil, missingParam("IpPermissions")
	}
	return add, nil
}

// OwnerNetwork makes, as a network's owner would through EC2, a VPC over
// cidr and one subnet over subnetCIDR, untagged by any cluster, through the
// same actions CreateVpc and CreateSubnet serve, and returns their IDs: the
// existing network a cluster is then placed in.
func (s *Server) OwnerNetwork(cidr, subnetCIDR string) (vpcID, subnetID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := maps.Clone(s.st.vpcs)
	if _, e, _ := s.createVpc(url.Values{"CidrBlock": {cidr}}); e != nil {
		return "", "", fmt.Errorf("CreateVpc %s: %s: %s", cidr, e.Code, e.Message)
	}
	for id := range s.st.vpcs {
		if before[id] == nil {
			vpcID = id
		}
	}
	if _, e, _ := s.createSubnet(url.Values{"VpcId": {vpcID}, "CidrBlock": {subnetCIDR}}); e != nil {
		return "", "", fmt.Errorf("CreateSubnet %s: %s: %s", subnetCIDR, e.Code, e.Message)
	}
	for id, sn := range s.st.subnets {
		if sn.vpc == vpcID && sn.cidr == subnetCIDR {
			subnetID = id
		}
	}
	return vpcID, subnetID, nil
}

// OwnerNetworkStays reports whether the VPC and subnet exist.
func (s *Server) OwnerNetworkStays(vpcID, subnetID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.st.subnets[subnetID]
	return s.st.vpcs[vpcID] != nil && sn != nil && sn.vpc == vpcID
}

// GroupVPC is the VPC security group id is in.
func (s *Server) GroupVPC(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.st.groups[id]; g != nil {
		return g.vpc, true
	}
	return "", false
}
