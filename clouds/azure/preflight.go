package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources/v4"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// The preflight reads, before an apply creates anything, what ARM would
// otherwise refuse half-way: the subscription, the credentials'
// permissions on the resource group (and, in an existing subnet, the
// subnet's join on the subnet), the registration of the resource
// providers the cluster uses, and read access to the Key Vault. Each
// refusal is one *clouds.PreflightError naming the field and the fix; what
// it cannot read (a 403 on the check itself, a resource group that does not
// exist yet) it leaves to the first mutating call, whose error names the
// role too (errors.go).

var _ clouds.Preflighter = (*Cloud)(nil)

// Configuration fields the refusals name, as the provider spells them.
const (
	fieldSubscription  = "azure.subscription_id"
	fieldResourceGroup = "azure.resource_group"
	fieldVault         = "azure.key_vault_url"
)

// Actions the backend's calls need on the resource group, from the
// operations it makes (network.go, instances.go) and the linked
// authorizations ARM checks when a NIC joins a subnet and an NSG and a VM
// joins a NIC
// (https://learn.microsoft.com/azure/role-based-access-control/permissions/compute
// and .../permissions/networking; LinkedAuthorizationFailed:
// https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-linked-authorization-failed).
var (
	actionsGroup = []string{
		"Microsoft.Resources/subscriptions/resourceGroups/read",
	}
	actionsNetwork = []string{
		"Microsoft.Network/virtualNetworks/read",
		"Microsoft.Network/virtualNetworks/write",
		"Microsoft.Network/networkSecurityGroups/read",
		"Microsoft.Network/networkSecurityGroups/write",
		// etcd's rule names the control plane's application security
		// group, which its NICs join (a PUT of each, as read).
		"Microsoft.Network/applicationSecurityGroups/read",
		"Microsoft.Network/applicationSecurityGroups/write",
		"Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action",
		"Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action",
		"Microsoft.Network/networkInterfaces/read",
		"Microsoft.Network/networkInterfaces/write",
	}
	actionsInstances = []string{
		"Microsoft.Compute/virtualMachines/read",
		"Microsoft.Compute/virtualMachines/write",
		"Microsoft.Compute/virtualMachines/extensions/read",
		"Microsoft.Compute/virtualMachines/extensions/write",
		"Microsoft.Network/networkInterfaces/read",
		"Microsoft.Network/networkInterfaces/write",
		"Microsoft.Network/networkInterfaces/join/action",
		"Microsoft.Network/virtualNetworks/subnets/join/action",
		"Microsoft.Network/networkSecurityGroups/join/action",
		"Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action",
	}
	actionsDeletes = []string{
		"Microsoft.Compute/virtualMachines/delete",
		"Microsoft.Compute/disks/delete",
		"Microsoft.Network/networkInterfaces/delete",
	}
	// The load balancer (loadbalancer.go): its frontend joins a public IP
	// address or the subnet, and a control-plane NIC joins its pool by a
	// PUT of the NIC, which names the NIC's subnet and NSG again.
	actionsLoadBalancer = []string{
		"Microsoft.Network/loadBalancers/read",
		"Microsoft.Network/loadBalancers/write",
		"Microsoft.Network/loadBalancers/backendAddressPools/join/action",
		"Microsoft.Network/publicIPAddresses/read",
		"Microsoft.Network/publicIPAddresses/write",
		"Microsoft.Network/publicIPAddresses/join/action",
		"Microsoft.Network/virtualNetworks/subnets/join/action",
		"Microsoft.Network/networkInterfaces/read",
		"Microsoft.Network/networkInterfaces/write",
		"Microsoft.Network/networkSecurityGroups/join/action",
	}
	actionsLoadBalancerDeletes = []string{
		"Microsoft.Network/loadBalancers/delete",
		"Microsoft.Network/publicIPAddresses/delete",
	}
)

// actionJoinSubnet is what a NIC, and a load balancer's private frontend,
// needs on the subnet it names. ARM checks it on the subnet itself,
// wherever the subnet's virtual network is
// (https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-subnet#permissions),
// so with an existing subnet it is read there, not on the cluster's group.
const actionJoinSubnet = "Microsoft.Network/virtualNetworks/subnets/join/action"

// providerNamespaces are the resource providers whose resources the
// backend creates in the subscription. Microsoft.KeyVault is not one: the
// backend uses only the vault's data plane, and the vault, wherever it is,
// exists already.
var providerNamespaces = []string{"Microsoft.Compute", "Microsoft.Network"}

// Preflight implements clouds.Preflighter.
func (c *Cloud) Preflight(ctx context.Context, req clouds.PreflightRequest) error {
	pc, err := c.preflightClients()
	if err != nil {
		return err
	}
	checks := []func(context.Context) error{
		pc.checkSubscription,
		func(ctx context.Context) error { return pc.checkPermissions(ctx, req) },
	}
	if !req.Quick && (req.Network || req.Instances || req.LoadBalancer) {
		checks = append(checks, pc.checkRegistrations)
	}
	if c.existing() && (req.Network || req.Instances || req.LoadBalancer) {
		checks = append(checks, func(ctx context.Context) error {
			sub, err := c.inspectExisting(ctx)
			if err != nil {
				return err
			}
			if err := sub.checkApart(req); err != nil {
				return err
			}
			if req.Instances || req.LoadBalancer {
				return pc.checkJoin(ctx, sub)
			}
			return nil
		})
	}
	if !req.Quick && req.Secrets {
		checks = append(checks, func(ctx context.Context) error { return c.checkVault(ctx, req.Cluster) })
	}
	// A check that could not tell does not stop the others: a refusal
	// from any of them is worth more than the first unknown.
	var unknown error
	for _, check := range checks {
		err := check(ctx)
		if _, ok := clouds.AsPreflightError(err); ok {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if unknown == nil {
			unknown = err
		}
	}
	return unknown
}

// preflightCloud holds the clients only the preflight uses.
type preflightCloud struct {
	cfg           Config
	subscriptions *armsubscriptions.Client
	permissions   *armauthorization.PermissionsClient
	providers     *armresources.ProvidersClient
}

// preflightClients builds the clients; it makes no API call.
func (c *Cloud) preflightClients() (*preflightCloud, error) {
	opts := &arm.ClientOptions{ClientOptions: c.copts, DisableRPRegistration: true}
	pc := &preflightCloud{cfg: c.cfg}
	var err error
	if pc.subscriptions, err = armsubscriptions.NewClient(c.cred, opts); err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	if pc.permissions, err = armauthorization.NewPermissionsClient(c.cfg.SubscriptionID, c.cred, opts); err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	if pc.providers, err = armresources.NewProvidersClient(c.cfg.SubscriptionID, c.cred, opts); err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	return pc, nil
}

func refusal(field, code, op, object, fix string, err error) *clouds.PreflightError {
	return &clouds.PreflightError{Field: field, Err: &clouds.Error{Kind: clouds.KindAuth, Code: code, Op: op, Object: object, Fix: fix, Err: err}}
}

func responseCode(err error) (int, string, bool) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return 0, "", false
	}
	return re.StatusCode, re.ErrorCode, true
}

// checkSubscription reads the subscription
// (https://learn.microsoft.com/rest/api/resources/subscriptions/get): ARM
// answers 404 SubscriptionNotFound for one the credentials cannot see and
// 400 InvalidSubscriptionId for a malformed one
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-not-found);
// a Disabled or Deleted subscription is read-only
// (https://learn.microsoft.com/azure/cost-management-billing/manage/subscription-states).
func (c *preflightCloud) checkSubscription(ctx context.Context) error {
	sub := c.cfg.SubscriptionID
	object := fmt.Sprintf("subscription %q", sub)
	got, err := c.subscriptions.Get(ctx, sub, nil)
	if status, code, ok := responseCode(err); ok && (status == http.StatusNotFound || code == "SubscriptionNotFound" || code == "InvalidSubscriptionId") {
		if code == "" {
			code = "SubscriptionNotFound"
		}
		return refusal(fieldSubscription, code, "Subscriptions.Get", object,
			"set azure.subscription_id to the ID of a subscription the credentials can see (az account list --query [].id)", errors.New("the credentials in use see no such subscription"))
	}
	if err != nil {
		return call{op: "Subscriptions.Get", object: object}.classify(err)
	}
	if st := val(got.State); st == armsubscriptions.SubscriptionStateDisabled || st == armsubscriptions.SubscriptionStateDeleted {
		return refusal(fieldSubscription, "Subscription"+string(st), "Subscriptions.Get", object,
			"re-enable the subscription (Azure portal: Subscriptions), or set azure.subscription_id to an enabled one",
			fmt.Errorf("the subscription is %s and accepts no new resources", st))
	}
	return nil
}

// checkPermissions lists what the caller may do on the resource group
// (https://learn.microsoft.com/rest/api/authorization/permissions/list-for-resource-group),
// which includes what it inherits from the subscription, and refuses
// when an action the change needs is missing. A group that does not exist
// yet has no permissions to list; ARM then answers its creation itself.
func (c *preflightCloud) checkPermissions(ctx context.Context, req clouds.PreflightRequest) error {
	object := fmt.Sprintf("resource group %q", c.cfg.ResourceGroup)
	var perms []permission
	pager := c.permissions.NewListForResourceGroupPager(c.cfg.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if _, code, ok := responseCode(err); ok && (code == "ResourceGroupNotFound" || isNotFound(err)) {
			return nil
		}
		if err != nil {
			return call{op: "Permissions.ListForResourceGroup", object: object}.classify(err)
		}
		for _, p := range page.Value {
			perms = append(perms, fromSDK(p))
		}
	}
	var missing []string
	for _, a := range neededActions(req, c.cfg.SubnetID != "") {
		if !allowed(perms, a) {
			missing = append(missing, a)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var roles []string
	for _, a := range missing {
		if r := roleFor(a); !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return refusal(fieldResourceGroup, "AuthorizationFailed", "Permissions.ListForResourceGroup", object,
		fmt.Sprintf("grant the credentials in use %s (az role assignment create), or set azure.resource_group and azure.subscription_id to where they hold it", strings.Join(roles, ", and ")),
		fmt.Errorf("the credentials in use may not perform %s there", strings.Join(missing, ", ")))
}

// neededActions are the actions req needs on the cluster's resource
// group. In an existing subnet the cluster writes no virtual network and
// joins no subnet there: checkJoin reads the join on the subnet.
func neededActions(req clouds.PreflightRequest, existing bool) []string {
	out := slices.Clone(actionsGroup)
	if req.Network {
		out = append(out, actionsNetwork...)
	}
	if req.Instances {
		out = append(out, actionsInstances...)
	}
	if req.Deletes {
		out = append(out, actionsDeletes...)
	}
	if req.LoadBalancer {
		out = append(out, actionsLoadBalancer...)
		if req.Deletes {
			out = append(out, actionsLoadBalancerDeletes...)
		}
	}
	// One action may be needed for several reasons; name it once.
	var once []string
	for _, a := range out {
		if existing && (a == actionJoinSubnet || a == "Microsoft.Network/virtualNetworks/write") {
			continue
		}
		if !slices.Contains(once, a) {
			once = append(once, a)
		}
	}
	return once
}

// checkJoin lists what the caller may do on the existing subnet
// (https://learn.microsoft.com/rest/api/authorization/permissions/list-for-resource),
// which includes what it inherits from the virtual network, its resource
// group and the subscription, and refuses at azure.subnet_id when the
// join every node's NIC makes is missing: ARM would answer the first NIC's
// creation with LinkedAuthorizationFailed. A subnet ARM no longer finds
// is left to that creation too.
func (c *preflightCloud) checkJoin(ctx context.Context, s existingSubnet) error {
	rid, err := arm.ParseResourceID(s.id)
	if err != nil || rid.Parent == nil {
		return invalidSubnet("Subnets.Get", s.id, fmt.Errorf("%q is not a subnet's resource ID", s.id), "use the ID az network vnet subnet show --query id prints")
	}
	vnet := rid.Parent
	object := "subnet " + s.id
	var perms []permission
	pager := c.permissions.NewListForResourcePager(vnet.ResourceGroupName, "Microsoft.Network", "virtualNetworks/"+vnet.Name, "subnets", rid.Name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return call{op: "Permissions.ListForResource", object: object}.classify(err)
		}
		for _, p := range page.Value {
			perms = append(perms, fromSDK(p))
		}
	}
	if allowed(perms, actionJoinSubnet) {
		return nil
	}
	return refusal(fieldSubnet, "LinkedAuthorizationFailed", "Permissions.ListForResource", object,
		fmt.Sprintf("grant the credentials in use Network Contributor (or a role with %s) on the subnet, on virtual network %s or on resource group %s (az role assignment create --role \"Network Contributor\" --scope %s), or set azure.subnet_id to a subnet they may join",
			actionJoinSubnet, vnet.Name, vnet.ResourceGroupName, s.id),
		fmt.Errorf("the credentials in use may not perform %s on the subnet, which every node's network interface joins", actionJoinSubnet))
}

// permission is one role's grant at a scope: its actions minus its notActions.
type permission struct {
	actions, notActions []string
}

func fromSDK(p *armauthorization.Permission) permission {
	strs := func(in []*string) []string {
		out := make([]string, 0, len(in))
		for _, s := range in {
			if s != nil {
				out = append(out, *s)
			}
		}
		return out
	}
	if p == nil {
		return permission{}
	}
	return permission{actions: strs(p.Actions), notActions: strs(p.NotActions)}
}

// allowed reports whether any role grants action: one of its actions
// matches and none of its notActions does. NotActions subtract within the
// role only; another role may still grant the action
// (https://learn.microsoft.com/azure/role-based-access-control/role-definitions#notactions).
// Deny assignments are not in this list and stay unchecked.
func allowed(perms []permission, action string) bool {
	for _, p := range perms {
		if slices.ContainsFunc(p.actions, func(pat string) bool { return matchAction(pat, action) }) &&
			!slices.ContainsFunc(p.notActions, func(pat string) bool { return matchAction(pat, action) }) {
			return true
		}
	}
	return false
}

// matchAction reports whether an RBAC action pattern covers action:
// case-insensitive, '*' standing for any run of characters, '/' included
// (https://learn.microsoft.com/azure/role-based-access-control/role-definitions#actions).
func matchAction(pattern, action string) bool {
	p, a := strings.ToLower(pattern), strings.ToLower(action)
	star := strings.IndexByte(p, '*')
	if star < 0 {
		return p == a
	}
	if !strings.HasPrefix(a, p[:star]) {
		return false
	}
	rest := p[star+1:]
	for i := star; i <= len(a); i++ {
		if matchAction(rest, a[i:]) {
			return true
		}
	}
	return false
}

// checkRegistrations reads the resource providers' registration
// (https://learn.microsoft.com/rest/api/resources/providers/get): an
// unregistered one answers every request with MissingSubscriptionRegistration
// (https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-register-resource-provider).
func (c *preflightCloud) checkRegistrations(ctx context.Context) error {
	for _, ns := range providerNamespaces {
		object := fmt.Sprintf("resource provider %s", ns)
		got, err := c.providers.Get(ctx, ns, nil)
		if err != nil {
			return call{op: "Providers.Get", object: object}.classify(err)
		}
		if st := val(got.RegistrationState); !strings.EqualFold(st, "Registered") {
			return refusal(fieldSubscription, "MissingSubscriptionRegistration", "Providers.Get", object,
				fmt.Sprintf("register it in the subscription (az provider register --namespace %s --subscription %s), or set azure.subscription_id to a subscription where it is registered", ns, c.cfg.SubscriptionID),
				fmt.Errorf("the subscription is not registered to use namespace %s (registration state %q)", ns, st))
		}
	}
	return nil
}

// checkVault reads a name the cluster never writes: 404 means the
// credentials may read the vault's secrets. Writing is not tried (the
// probe must not create anything); a missing setSecret right shows at the
// first write, with the role to grant.
func (c *Cloud) checkVault(ctx context.Context, cluster string) error {
	if c.secrets == nil {
		return c.vault("GetSecret", fmt.Sprintf("the secrets of cluster %q", cluster))
	}
	name := Profile.SecretName(cluster, "preflight")
	object := fmt.Sprintf("Key Vault %s", c.cfg.VaultURL)
	_, err := c.secrets.NewListSecretPropertiesVersionsPager(name, nil).NextPage(ctx)
	if err == nil || isNotFound(err) {
		return nil
	}
	status, code, _ := responseCode(err)
	if status == http.StatusForbidden {
		action := "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
		if m := actionRE.FindStringSubmatch(err.Error()); m != nil {
			action = m[1]
		}
		return refusal(fieldVault, code, "GetSecretVersions", object,
			fmt.Sprintf("grant the credentials in use %s, or set azure.key_vault_url to a vault they hold it on", roleFor(action)),
			fmt.Errorf("the credentials in use may not perform %s on the vault", action))
	}
	return call{op: "GetSecretVersions", object: object}.classify(err)
}
