package arm

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v9"
)

// API versions of the subscription, provider and permission reads: the
// ones armsubscriptions v1.3.0 (client.go) and armauthorization/v2 v2.2.0
// (permissions_client.go) send; providers go with armresources/v4.
const (
	SubscriptionsAPIVersion = "2022-12-01"
	AuthorizationAPIVersion = "2022-04-01"
)

// Permission is one role assignment's grant as ARM lists it
// (https://learn.microsoft.com/rest/api/authorization/permissions/list-for-resource-group#permission).
type Permission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

// Subscription states (https://learn.microsoft.com/azure/cost-management-billing/manage/subscription-states).
const (
	SubscriptionEnabled  = "Enabled"
	SubscriptionDisabled = "Disabled"
)

// authz is the subscription's access state: the principals' role grants,
// the resource providers not registered and the subscription's state. The
// zero value is an enabled subscription where every principal may do
// everything and every provider is registered.
type authz struct {
	mu           sync.Mutex
	grants       map[string][]grant // client ID ("*": any) -> grants
	unregistered map[string]bool    // lower-case namespace
	state        string
}

// grant is one role assignment: a role's permissions at a scope. A grant
// at a scope applies to that scope and everything under it, as Azure RBAC
// inherits from subscription to resource group to resource
// (https://learn.microsoft.com/azure/role-based-access-control/scope-overview#scope-levels).
type grant struct {
	scope string // a resource ID, without trailing '/'
	perms []Permission
}

// Permit replaces everything client (a client ID, or "*" for any client
// without its own) may do with perms granted on the subscription: every
// ARM and Key Vault request is then checked against them. No perms
// restores the default, everything.
func (s *Server) Permit(client string, perms ...Permission) {
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	if s.authz.grants == nil {
		s.authz.grants = map[string][]grant{}
	}
	if len(perms) == 0 {
		delete(s.authz.grants, client)
		return
	}
	s.authz.grants[client] = []grant{{scope: s.SubscriptionScope(), perms: perms}}
}

// PermitAt replaces what client is granted at scope (a subscription,
// resource group or resource ID, such as a subnet's) with perms, beside
// its grants at other scopes; no perms removes the grants at scope. A
// client with grants at any scope may do only what they allow, each below
// its own scope.
func (s *Server) PermitAt(client, scope string, perms ...Permission) {
	scope = strings.TrimRight(scope, "/")
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	if s.authz.grants == nil {
		s.authz.grants = map[string][]grant{}
	}
	gs := slices.DeleteFunc(s.authz.grants[client], func(g grant) bool { return strings.EqualFold(g.scope, scope) })
	if len(perms) > 0 {
		gs = append(gs, grant{scope: scope, perms: perms})
	}
	if len(gs) == 0 {
		delete(s.authz.grants, client)
		return
	}
	s.authz.grants[client] = gs
}

// SubscriptionScope is the subscription's resource ID, the widest scope.
func (s *Server) SubscriptionScope() string { return "/subscriptions/" + s.opts.SubscriptionID }

// GroupScope is resource group group's resource ID.
func (s *Server) GroupScope(group string) string {
	return s.SubscriptionScope() + "/resourceGroups/" + group
}

// within reports whether target is scope or lies under it; resource IDs
// compare case-insensitively
// (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
func within(target, scope string) bool {
	t, sc := strings.ToLower(strings.TrimRight(target, "/")), strings.ToLower(strings.TrimRight(scope, "/"))
	return t == sc || strings.HasPrefix(t, sc+"/")
}

// Unregister marks a resource provider (e.g. "Microsoft.Compute") not
// registered in the subscription while on: its requests then fail with
// MissingSubscriptionRegistration.
func (s *Server) Unregister(namespace string, on bool) {
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	if s.authz.unregistered == nil {
		s.authz.unregistered = map[string]bool{}
	}
	s.authz.unregistered[strings.ToLower(namespace)] = on
}

// SetSubscriptionState sets the state the subscription reports; a
// Disabled subscription refuses writes.
func (s *Server) SetSubscriptionState(state string) {
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	s.authz.state = state
}

func (s *Server) subscriptionState() string {
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	if s.authz.state == "" {
		return SubscriptionEnabled
	}
	return s.authz.state
}

// effective returns the permissions client holds at target (a resource
// ID): those of its grants at target or above it; false when it may do
// everything.
func (s *Server) effective(client, target string) ([]Permission, bool) {
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	gs, ok := s.authz.grants[client]
	if !ok {
		if gs, ok = s.authz.grants["*"]; !ok {
			return nil, false
		}
	}
	var out []Permission
	for _, g := range gs {
		if within(target, g.scope) {
			out = append(out, g.perms...)
		}
	}
	return out, true
}

func (s *Server) isUnregistered(namespace string) bool {
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	return s.authz.unregistered[strings.ToLower(namespace)]
}

// actionPattern compiles an RBAC action pattern: case-insensitive, '*'
// matching any run of characters, '/' included
// (https://learn.microsoft.com/azure/role-based-access-control/role-definitions#actions).
func actionPattern(p string) *regexp.Regexp {
	return regexp.MustCompile("(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$")
}

func anyMatch(patterns []string, action string) bool {
	for _, p := range patterns {
		if actionPattern(p).MatchString(action) {
			return true
		}
	}
	return false
}

// permits reports whether client may perform action (a data action when
// data is set) on target, a resource ID. A grant's notActions subtract
// from that grant only; the union of the grants at target and above it
// decides
// (https://learn.microsoft.com/azure/role-based-access-control/role-definitions#notactions).
func (s *Server) permits(client, action, target string, data bool) bool {
	if s.isDenied(action) {
		return false
	}
	perms, limited := s.effective(client, target)
	if !limited {
		return true
	}
	for _, p := range perms {
		allow, deny := p.Actions, p.NotActions
		if data {
			allow, deny = p.DataActions, p.NotDataActions
		}
		if anyMatch(allow, action) && !anyMatch(deny, action) {
			return true
		}
	}
	return false
}

// linked is one join ARM checks when a request references another
// resource: the action, on the referenced resource's ID.
type linked struct {
	action, scope string
}

// linkedScopes are what ARM also checks when a request references
// another resource, each on the resource referenced: a NIC joins its
// subnet, its NSG, and the load balancer pools and application security
// groups it names; an NSG rule joins the application security groups it
// names; a VM joins its NICs; a load balancer's frontend joins its subnet
// or public IP address
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-linked-authorization-failed;
// the join actions: https://learn.microsoft.com/azure/role-based-access-control/permissions/networking;
// a subnet's join is checked on the subnet, whatever group it is in:
// https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-subnet#permissions).
func linkedScopes(rt route, method string, body []byte) []linked {
	if method != http.MethodPut || rt.kind == nil || rt.kind.child != "" {
		return nil
	}
	var out []linked
	add := func(action string, id *string) {
		if id == nil || *id == "" {
			return
		}
		l := linked{action: action, scope: *id}
		if !slices.ContainsFunc(out, func(o linked) bool { return o.action == l.action && strings.EqualFold(o.scope, l.scope) }) {
			out = append(out, l)
		}
	}
	switch rt.kind.typ {
	case "networkInterfaces":
		var nic armnetwork.Interface
		if json.Unmarshal(body, &nic) != nil || nic.Properties == nil {
			return nil
		}
		for _, ipc := range nic.Properties.IPConfigurations {
			if ipc == nil || ipc.Properties == nil {
				continue
			}
			if ipc.Properties.Subnet != nil {
				add("Microsoft.Network/virtualNetworks/subnets/join/action", ipc.Properties.Subnet.ID)
			}
			if ipc.Properties.PublicIPAddress != nil {
				add("Microsoft.Network/publicIPAddresses/join/action", ipc.Properties.PublicIPAddress.ID)
			}
			for _, p := range ipc.Properties.LoadBalancerBackendAddressPools {
				if p != nil {
					add("Microsoft.Network/loadBalancers/backendAddressPools/join/action", p.ID)
				}
			}
			for _, g := range ipc.Properties.ApplicationSecurityGroups {
				if g != nil {
					add("Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action", g.ID)
				}
			}
		}
		if nic.Properties.NetworkSecurityGroup != nil {
			add("Microsoft.Network/networkSecurityGroups/join/action", nic.Properties.NetworkSecurityGroup.ID)
		}
	case "networkSecurityGroups":
		var g armnetwork.SecurityGroup
		if json.Unmarshal(body, &g) != nil || g.Properties == nil {
			return nil
		}
		for _, r := range g.Properties.SecurityRules {
			if r == nil || r.Properties == nil {
				continue
			}
			for _, asg := range slices.Concat(r.Properties.SourceApplicationSecurityGroups, r.Properties.DestinationApplicationSecurityGroups) {
				if asg != nil {
					add("Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action", asg.ID)
				}
			}
		}
	case "virtualMachines":
		var vm armcompute.VirtualMachine
		if json.Unmarshal(body, &vm) != nil || vm.Properties == nil || vm.Properties.NetworkProfile == nil {
			return nil
		}
		for _, n := range vm.Properties.NetworkProfile.NetworkInterfaces {
			if n != nil {
				add("Microsoft.Network/networkInterfaces/join/action", n.ID)
			}
		}
	case "loadBalancers":
		var lb armnetwork.LoadBalancer
		if json.Unmarshal(body, &lb) != nil || lb.Properties == nil {
			return nil
		}
		for _, fe := range lb.Properties.FrontendIPConfigurations {
			if fe == nil || fe.Properties == nil {
				continue
			}
			if fe.Properties.PublicIPAddress != nil {
				add("Microsoft.Network/publicIPAddresses/join/action", fe.Properties.PublicIPAddress.ID)
			}
			if fe.Properties.Subnet != nil {
				add("Microsoft.Network/virtualNetworks/subnets/join/action", fe.Properties.Subnet.ID)
			}
		}
	}
	return out
}

// target is the resource ID a request acts on: the resource, or for a
// list the resource group (or parent resource) it lists in.
func (s *Server) target(rt route) string {
	switch {
	case rt.group == "":
		return s.SubscriptionScope()
	case rt.kind == nil || rt.name == "":
		return s.GroupScope(rt.group)
	}
	id := s.SubscriptionScope() + "/resourceGroups/" + rt.group + "/providers/" + rt.kind.namespace + "/" + rt.kind.typ + "/" + rt.name
	if rt.kind.child != "" && rt.childName != "" {
		id += "/" + rt.kind.child + "/" + rt.childName
	}
	return id
}

// authorize checks a resource request against the client's grants at the
// resource and at every resource it links to, and the provider's
// registration, with ARM's codes and message shapes
// (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting#symptom---authorization-failed,
// https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-linked-authorization-failed,
// https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-register-resource-provider).
func (s *Server) authorize(client string, rt route, method string, body []byte) *Error {
	if rt.special != "" {
		// Reading one's subscription, providers and permissions needs no
		// role of its own beyond access to the subscription.
		return nil
	}
	scope := s.target(rt)
	action := rt.action(method)
	if !s.permits(client, action, scope, false) {
		return errf(http.StatusForbidden, "AuthorizationFailed",
			"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
			client, client, action, scope)
	}
	// Every join the caller may not make is named at once, the actions
	// and their scopes in the same order.
	var actions, scopes []string
	for _, l := range linkedScopes(rt, method, body) {
		if !s.permits(client, l.action, l.scope, false) {
			actions, scopes = append(actions, l.action), append(scopes, l.scope)
		}
	}
	if len(actions) > 0 {
		return errf(http.StatusForbidden, "LinkedAuthorizationFailed",
			"The client '%s' with object id '%s' has permission to perform action '%s' on scope '%s'; however, it does not have permission to perform action(s) '%s' on the linked scope(s) '%s' (respectively) or the linked scope(s) are invalid.",
			client, client, action, scope, strings.Join(actions, ","), strings.Join(scopes, ","))
	}
	if rt.kind != nil && s.isUnregistered(rt.kind.namespace) {
		return errf(http.StatusConflict, "MissingSubscriptionRegistration",
			"The subscription is not registered to use namespace '%s'. See https://aka.ms/rps-not-found for how to register subscriptions.", rt.kind.namespace)
	}
	if method != http.MethodGet && s.subscriptionState() == SubscriptionDisabled {
		// https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-subscription-disabled (ReadOnlyDisabledSubscription)
		return errf(http.StatusConflict, "ReadOnlyDisabledSubscription", "The subscription '%s' is disabled and therefore marked as read only. You cannot perform any write actions on this subscription until it is re-enabled.", rt.sub)
	}
	return nil
}

// actSpecial answers the subscription, provider and permission reads.
func (s *Server) actSpecial(r *http.Request, rt route) (int, any, http.Header, *Error) {
	if r.Method != http.MethodGet {
		return 0, nil, nil, errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method %s is not allowed.", r.Method)
	}
	sub := "/subscriptions/" + s.opts.SubscriptionID
	switch rt.special {
	case specialSubscription:
		// https://learn.microsoft.com/rest/api/resources/subscriptions/get
		return http.StatusOK, map[string]any{
			"id": sub, "subscriptionId": s.opts.SubscriptionID, "tenantId": s.opts.TenantID,
			"displayName": "mixedk8s lab", "state": s.subscriptionState(), "authorizationSource": "RoleBased",
			"subscriptionPolicies": map[string]any{"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
		}, nil, nil
	case specialProvider:
		// https://learn.microsoft.com/rest/api/resources/providers/get
		ns := ""
		for _, k := range kinds {
			if strings.EqualFold(k.namespace, rt.name) {
				ns = k.namespace
			}
		}
		if ns == "" {
			return 0, nil, nil, errf(http.StatusNotFound, "InvalidResourceNamespace", "The resource namespace '%s' is invalid.", rt.name)
		}
		state := "Registered"
		if s.isUnregistered(ns) {
			state = "NotRegistered"
		}
		return http.StatusOK, map[string]any{"id": sub + "/providers/" + ns, "namespace": ns, "registrationState": state, "registrationPolicy": "RegistrationRequired"}, nil, nil
	}
	// Permissions - List For Resource Group and List For Resource: the
	// caller's own grants that apply at the scope, those on it and above
	// it, paged
	// (https://learn.microsoft.com/rest/api/authorization/permissions/list-for-resource-group,
	// https://learn.microsoft.com/rest/api/authorization/permissions/list-for-resource).
	// A missing group answers ResourceGroupNotFound as the group's own
	// route does; the resource itself is not looked up.
	s.mu.Lock()
	missing := s.groupOf(rt.group) == nil
	s.mu.Unlock()
	if missing {
		return 0, nil, nil, errf(http.StatusNotFound, "ResourceGroupNotFound", "Resource group '%s' could not be found.", rt.group)
	}
	tok, _ := s.authenticate(r, s.URL())
	perms, limited := s.effective(tok.clientID, s.GroupScope(rt.group)+rt.name)
	if !limited {
		perms = []Permission{{Actions: []string{"*"}, DataActions: []string{"*"}}}
	}
	items := make([]any, 0, len(perms))
	for _, p := range perms {
		items = append(items, Permission{Actions: nonNil(p.Actions), NotActions: nonNil(p.NotActions), DataActions: nonNil(p.DataActions), NotDataActions: nonNil(p.NotDataActions)})
	}
	page, e := s.page(r, items)
	if e != nil {
		return 0, nil, nil, e
	}
	return http.StatusOK, page, nil, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Special routes: reads about the subscription rather than its resources.
const (
	specialSubscription = "subscription"
	specialProvider     = "provider"
	specialPermissions  = "permissions"
)

// parseSpecial recognises the special routes below /subscriptions/{id}:
// the subscription itself, providers/{namespace}, and the permissions of
// resourceGroups/{group} or of a resource in it,
// [providers/{namespace}/{type}/{name}[/{type}/{name}]...]/providers/Microsoft.Authorization/permissions;
// for a resource, rt.name is its path below the group, from "/providers".
func parseSpecial(rt route, rest []string) (route, bool) {
	eq := strings.EqualFold
	n := len(rest)
	switch {
	case rt.group == "" && n == 0:
		rt.special = specialSubscription
	case rt.group == "" && n == 2 && eq(rest[0], "providers"):
		rt.special, rt.name = specialProvider, rest[1]
	case rt.group != "" && n >= 3 && eq(rest[n-3], "providers") && eq(rest[n-2], "Microsoft.Authorization") && eq(rest[n-1], "permissions"):
		res := rest[:n-3]
		// A resource is a namespace and then type/name pairs, none empty.
		if len(res) > 0 && (len(res) < 4 || len(res)%2 != 0 || !eq(res[0], "providers") || slices.Contains(res, "")) {
			return rt, false
		}
		rt.special = specialPermissions
		if len(res) > 0 {
			rt.name = "/" + strings.Join(res, "/")
		}
	default:
		return rt, false
	}
	return rt, true
}

// specialOp and specialAPIVersion name a special route's op and api-version.
func specialOp(rt route) string {
	if rt.special == specialPermissions && rt.name != "" {
		return "permissions.ListForResource"
	}
	return map[string]string{specialSubscription: "subscriptions.Get", specialProvider: "providers.Get", specialPermissions: "permissions.List"}[rt.special]
}

func specialAPIVersion(special string) string {
	return map[string]string{specialSubscription: SubscriptionsAPIVersion, specialProvider: ResourcesAPIVersion, specialPermissions: AuthorizationAPIVersion}[special]
}

// subscriptionIDRE is a subscription ID's form, a GUID; ARM refuses
// another with InvalidSubscriptionId
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found).
var subscriptionIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func invalidSubscription(sub string) *Error {
	if subscriptionIDRE.MatchString(sub) {
		return nil
	}
	return errf(http.StatusBadRequest, "InvalidSubscriptionId", "The provided subscription identifier '%s' is malformed or invalid.", sub)
}

// AddGroup creates an empty, untagged resource group, as a user who
// brings their own group (and holds roles only on it) has one.
func (s *Server) AddGroup(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groupOf(name) == nil {
		s.groups[strings.ToLower(name)] = &group{name: name, location: s.opts.Location}
	}
}
