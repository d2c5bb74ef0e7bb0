package arm

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

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

// authz is the subscription's access state: the principals' permissions,
// the resource providers not registered and the subscription's state. The
// zero value is an enabled subscription where every principal may do
// everything and every provider is registered.
type authz struct {
	mu           sync.Mutex
	perms        map[string][]Permission // client ID ("*": any) -> grants
	unregistered map[string]bool         // lower-case namespace
	state        string
}

// Permit replaces what client (a client ID, or "*" for any client without
// its own) may do with perms, as role assignments on the subscription
// would: every ARM and Key Vault request is then checked against them.
// No perms restores the default, everything.
func (s *Server) Permit(client string, perms ...Permission) {
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	if s.authz.perms == nil {
		s.authz.perms = map[string][]Permission{}
	}
	if len(perms) == 0 {
		delete(s.authz.perms, client)
		return
	}
	s.authz.perms[client] = perms
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

// grants returns client's permissions, and false when it may do everything.
func (s *Server) grants(client string) ([]Permission, bool) {
	s.authz.mu.Lock()
	defer s.authz.mu.Unlock()
	if p, ok := s.authz.perms[client]; ok {
		return p, true
	}
	p, ok := s.authz.perms["*"]
	return p, ok
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
// data is set). A grant's notActions subtract from that grant only; the
// union of grants decides
// (https://learn.microsoft.com/azure/role-based-access-control/role-definitions#notactions).
func (s *Server) permits(client, action string, data bool) bool {
	if s.isDenied(action) {
		return false
	}
	perms, limited := s.grants(client)
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

// linkedActions are what ARM also checks when a request references
// another resource: a NIC joins its subnet and NSG (the backend's NICs
// always name both) and the load balancer pools and application security
// groups it names, an NSG rule joins the application security groups it
// names, a VM joins its
// NIC, a load balancer's frontend joins its subnet or public IP address
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-linked-authorization-failed;
// the join actions: https://learn.microsoft.com/azure/role-based-access-control/permissions/networking).
func linkedActions(rt route, method string, body []byte) []string {
	if method != http.MethodPut || rt.kind == nil || rt.kind.child != "" {
		return nil
	}
	switch rt.kind.typ {
	case "networkInterfaces":
		out := []string{"Microsoft.Network/virtualNetworks/subnets/join/action", "Microsoft.Network/networkSecurityGroups/join/action"}
		var nic armnetwork.Interface
		if json.Unmarshal(body, &nic) == nil && nic.Properties != nil {
			for _, ipc := range nic.Properties.IPConfigurations {
				if ipc == nil || ipc.Properties == nil {
					continue
				}
				if len(ipc.Properties.LoadBalancerBackendAddressPools) > 0 && !slices.Contains(out, "Microsoft.Network/loadBalancers/backendAddressPools/join/action") {
					out = append(out, "Microsoft.Network/loadBalancers/backendAddressPools/join/action")
				}
				if len(ipc.Properties.ApplicationSecurityGroups) > 0 && !slices.Contains(out, "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action") {
					out = append(out, "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action")
				}
			}
		}
		return out
	case "networkSecurityGroups":
		// A rule naming an application security group joins it.
		var g armnetwork.SecurityGroup
		if json.Unmarshal(body, &g) != nil || g.Properties == nil {
			return nil
		}
		for _, r := range g.Properties.SecurityRules {
			if r != nil && r.Properties != nil && len(r.Properties.SourceApplicationSecurityGroups)+len(r.Properties.DestinationApplicationSecurityGroups) > 0 {
				return []string{"Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action"}
			}
		}
		return nil
	case "virtualMachines":
		return []string{"Microsoft.Network/networkInterfaces/join/action"}
	case "loadBalancers":
		var lb armnetwork.LoadBalancer
		if json.Unmarshal(body, &lb) != nil || lb.Properties == nil {
			return nil
		}
		var out []string
		for _, fe := range lb.Properties.FrontendIPConfigurations {
			if fe == nil || fe.Properties == nil {
				continue
			}
			if fe.Properties.PublicIPAddress != nil && !slices.Contains(out, "Microsoft.Network/publicIPAddresses/join/action") {
				out = append(out, "Microsoft.Network/publicIPAddresses/join/action")
			}
			if fe.Properties.Subnet != nil && !slices.Contains(out, "Microsoft.Network/virtualNetworks/subnets/join/action") {
				out = append(out, "Microsoft.Network/virtualNetworks/subnets/join/action")
			}
		}
		return out
	}
	return nil
}

// authorize checks a resource request against the client's grants and the
// provider's registration, with ARM's codes and message shapes
// (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting#symptom---authorization-failed,
// https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-register-resource-provider).
func (s *Server) authorize(client string, rt route, method string, body []byte) *Error {
	if rt.special != "" {
		// Reading one's subscription, providers and permissions needs no
		// role of its own beyond access to the subscription.
		return nil
	}
	scope := "/subscriptions/" + rt.sub
	if rt.group != "" {
		scope += "/resourceGroups/" + rt.group
	}
	action := rt.action(method)
	if !s.permits(client, action, false) {
		return errf(http.StatusForbidden, "AuthorizationFailed",
			"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
			client, client, action, scope)
	}
	for _, linked := range linkedActions(rt, method, body) {
		if !s.permits(client, linked, false) {
			return errf(http.StatusForbidden, "LinkedAuthorizationFailed",
				"The client '%s' with object id '%s' has permission to perform action '%s' on scope '%s'; however, it does not have permission to perform action(s) '%s' on the linked scope(s) '%s' (respectively) or the linked scope(s) are invalid.",
				client, client, action, scope, linked, scope)
		}
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
	// Permissions - List For Resource Group: the caller's own grants, paged.
	s.mu.Lock()
	missing := s.groupOf(rt.group) == nil
	s.mu.Unlock()
	if missing {
		return 0, nil, nil, errf(http.StatusNotFound, "ResourceGroupNotFound", "Resource group '%s' could not be found.", rt.group)
	}
	tok, _ := s.authenticate(r, s.URL())
	perms, limited := s.grants(tok.clientID)
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
// the subscription itself, providers/{namespace}, and
// resourceGroups/{group}/providers/Microsoft.Authorization/permissions.
func parseSpecial(rt route, rest []string) (route, bool) {
	eq := strings.EqualFold
	switch {
	case rt.group == "" && len(rest) == 0:
		rt.special = specialSubscription
	case rt.group == "" && len(rest) == 2 && eq(rest[0], "providers"):
		rt.special, rt.name = specialProvider, rest[1]
	case rt.group != "" && len(rest) == 3 && eq(rest[0], "providers") && eq(rest[1], "Microsoft.Authorization") && eq(rest[2], "permissions"):
		rt.special = specialPermissions
	default:
		return rt, false
	}
	return rt, true
}

// specialOp and specialAPIVersion name a special route's op and api-version.
func specialOp(special string) string {
	return map[string]string{specialSubscription: "subscriptions.Get", specialProvider: "providers.Get", specialPermissions: "permissions.List"}[special]
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
