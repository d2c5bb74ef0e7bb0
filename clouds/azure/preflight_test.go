package azure

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// Built-in roles as Azure defines them, reduced to the actions on the
// resource types mixedk8s uses (the full lists:
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/compute#virtual-machine-contributor,
// .../built-in-roles/networking#network-contributor,
// .../built-in-roles/security#key-vault-secrets-officer,
// .../built-in-roles/general#contributor).
var (
	roleVMContributor = arm.Permission{Actions: []string{
		"Microsoft.Authorization/*/read",
		"Microsoft.Compute/availabilitySets/*",
		"Microsoft.Compute/locations/*",
		"Microsoft.Compute/virtualMachines/*",
		"Microsoft.Compute/virtualMachineScaleSets/*",
		"Microsoft.Compute/disks/write",
		"Microsoft.Compute/disks/read",
		"Microsoft.Compute/disks/delete",
		"Microsoft.Network/loadBalancers/backendAddressPools/join/action",
		"Microsoft.Network/loadBalancers/read",
		"Microsoft.Network/locations/*",
		"Microsoft.Network/networkInterfaces/*",
		"Microsoft.Network/networkSecurityGroups/join/action",
		"Microsoft.Network/networkSecurityGroups/read",
		"Microsoft.Network/publicIPAddresses/join/action",
		"Microsoft.Network/publicIPAddresses/read",
		"Microsoft.Network/virtualNetworks/read",
		"Microsoft.Network/virtualNetworks/subnets/join/action",
		"Microsoft.Resources/deployments/*",
		"Microsoft.Resources/subscriptions/resourceGroups/read",
	}}
	roleNetworkContributor = arm.Permission{Actions: []string{
		"Microsoft.Authorization/*/read",
		"Microsoft.Network/*",
		"Microsoft.Resources/deployments/*",
		"Microsoft.Resources/subscriptions/resourceGroups/read",
	}}
	roleSecretsOfficer = arm.Permission{
		Actions:     []string{"Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"},
		DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"},
	}
	roleContributor = arm.Permission{Actions: []string{"*"},
		NotActions: []string{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action"}}
)

// fullRequest is an apply that creates everything.
func fullRequest() clouds.PreflightRequest {
	return clouds.PreflightRequest{Cluster: "demo", Network: true, Instances: true, Deletes: true, Secrets: true, LoadBalancer: true}
}

// withGroup creates the user's resource group, as a user who brings one
// has; the preflight lists permissions on it.
func withGroup(t *testing.T, f fixture) {
	t.Helper()
	f.srv.AddGroup(group)
}

func TestPreflightPassesWithTheDocumentedRoles(t *testing.T) {
	t.Parallel()
	for name, perms := range map[string][]arm.Permission{
		"VM Contributor, Network Contributor, Key Vault Secrets Officer": {roleVMContributor, roleNetworkContributor, roleSecretsOfficer},
		"Contributor and Key Vault Secrets Officer":                      {roleContributor, roleSecretsOfficer},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, arm.Options{}, nil)
			withGroup(t, f)
			f.srv.Permit(labClient, perms...)
			if err := f.cloud.Preflight(context.Background(), fullRequest()); err != nil {
				t.Fatalf("Preflight = %v; want nil with %s", err, name)
			}
		})
	}
}

// refused checks that err is one refusal naming field, code and fix, and
// that nothing was created or changed.
func refused(t *testing.T, f fixture, before []string, err error, field, code string, has ...string) {
	t.Helper()
	pe, ok := clouds.AsPreflightError(err)
	if !ok {
		t.Fatalf("Preflight = %v; want a *clouds.PreflightError", err)
	}
	if pe.Field != field || pe.Err.Code != code || pe.Err.Fix == "" || clouds.KindOf(err) != clouds.KindAuth {
		t.Errorf("refusal = field %q, code %q, kind %s, fix %q; want field %q, code %q, kind auth and a fix", pe.Field, pe.Err.Code, clouds.KindOf(err), pe.Err.Fix, field, code)
	}
	for _, h := range has {
		if !strings.Contains(err.Error(), h) {
			t.Errorf("refusal %q does not say %q", err, h)
		}
	}
	if got := f.srv.Objects(group); !slices.Equal(got, before) {
		t.Errorf("objects after the refusal = %v; want %v", got, before)
	}
	if n := f.srv.MutatingCalls(); n != 0 {
		t.Errorf("the preflight made %d mutating calls: %v", n, f.srv.Calls())
	}
}

func TestPreflightRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		group bool // the resource group exists before
		srv   func(*arm.Server)
		cfg   func(*Config)
		req   clouds.PreflightRequest
		field string
		code  string
		has   []string
	}{
		{name: "wrong subscription", cfg: func(c *Config) { c.SubscriptionID = "99999999-0000-4000-8000-000000000000" },
			field: "azure.subscription_id", code: "SubscriptionNotFound", has: []string{"az account list"}},
		{name: "malformed subscription", cfg: func(c *Config) { c.SubscriptionID = "my-subscription" },
			field: "azure.subscription_id", code: "InvalidSubscriptionId", has: []string{"set azure.subscription_id"}},
		{name: "disabled subscription", srv: func(s *arm.Server) { s.SetSubscriptionState(arm.SubscriptionDisabled) },
			field: "azure.subscription_id", code: "SubscriptionDisabled", has: []string{"re-enable"}},
		{name: "missing Virtual Machine Contributor", group: true,
			srv:   func(s *arm.Server) { s.Permit(labClient, roleNetworkContributor, roleSecretsOfficer) },
			field: "azure.resource_group", code: "AuthorizationFailed",
			has: []string{"Microsoft.Compute/virtualMachines/write", "Virtual Machine Contributor on the resource group"}},
		{name: "missing Network Contributor", group: true,
			srv:   func(s *arm.Server) { s.Permit(labClient, roleVMContributor, roleSecretsOfficer) },
			field: "azure.resource_group", code: "AuthorizationFailed",
			has: []string{"Microsoft.Network/virtualNetworks/write", "Network Contributor on the resource group"}},
		{name: "notActions take deletes away", group: true,
			srv: func(s *arm.Server) {
				s.Permit(labClient, arm.Permission{Actions: []string{"*"}, NotActions: []string{"Microsoft.Compute/*/delete"}}, roleSecretsOfficer)
			},
			req:   clouds.PreflightRequest{Cluster: "demo", Deletes: true},
			field: "azure.resource_group", code: "AuthorizationFailed",
			has: []string{"Microsoft.Compute/virtualMachines/delete, Microsoft.Compute/disks/delete"}},
		{name: "the load balancer needs Network Contributor", group: true,
			srv:   func(s *arm.Server) { s.Permit(labClient, roleVMContributor, roleSecretsOfficer) },
			req:   clouds.PreflightRequest{Cluster: "demo", LoadBalancer: true, Deletes: true},
			field: "azure.resource_group", code: "AuthorizationFailed",
			has: []string{"Microsoft.Network/loadBalancers/write", "Microsoft.Network/publicIPAddresses/write", "Microsoft.Network/loadBalancers/delete", "Network Contributor on the resource group"}},
		{name: "Compute not registered", srv: func(s *arm.Server) { s.Unregister("Microsoft.Compute", true) },
			field: "azure.subscription_id", code: "MissingSubscriptionRegistration",
			has: []string{"az provider register --namespace Microsoft.Compute"}},
		{name: "no right on the vault", group: true,
			srv:   func(s *arm.Server) { s.Permit(labClient, roleContributor) },
			field: "azure.key_vault_url", code: "Forbidden",
			has: []string{"Key Vault Secrets Officer", "readMetadata"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, arm.Options{}, nil)
			if c.group {
				withGroup(t, f)
			}
			cloud := f.cloud
			if c.cfg != nil {
				cfg := f.cfg
				c.cfg(&cfg)
				var err error
				if cloud, err = New(cfg); err != nil {
					t.Fatal(err)
				}
			}
			if c.srv != nil {
				c.srv(f.srv)
			}
			req := c.req
			if req.Cluster == "" {
				req = fullRequest()
			}
			before := f.srv.Objects(group)
			f.srv.ResetCalls()
			refused(t, f, before, cloud.Preflight(context.Background(), req), c.field, c.code, c.has...)
		})
	}
}

func TestPreflightForPlanIsTwoCalls(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	withGroup(t, f)
	f.srv.ResetCalls()
	if err := f.cloud.Preflight(context.Background(), clouds.PreflightRequest{Cluster: "demo", Network: true, Instances: true, Secrets: true, Quick: true}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for op, k := range f.srv.Calls() {
		if !strings.HasPrefix(op, "login.") {
			n += k
		}
	}
	if n != 2 {
		t.Errorf("a quick preflight made %d calls: %v; want 2", n, f.srv.Calls())
	}
}

func TestPreflightReadsEveryPermissionsPage(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{PageSize: 1}, nil)
	withGroup(t, f)
	f.srv.Permit(labClient, roleSecretsOfficer, roleNetworkContributor, roleVMContributor)
	f.srv.ResetCalls()
	if err := f.cloud.Preflight(context.Background(), fullRequest()); err != nil {
		t.Fatalf("Preflight = %v; want nil: the last page grants the compute actions", err)
	}
	if n := f.srv.Calls()["permissions.List"]; n != 3 {
		t.Errorf("permissions.List calls = %d; want 3 pages", n)
	}
}

func TestPreflightLeavesAMissingGroupToARM(t *testing.T) {
	t.Parallel()
	// A group that does not exist has no permissions to list; its creation
	// is the apply's first call and ARM's own refusal names the role.
	f := setup(t, arm.Options{}, nil)
	f.srv.Permit(labClient, roleVMContributor, roleNetworkContributor, roleSecretsOfficer)
	if err := f.cloud.Preflight(context.Background(), fullRequest()); err != nil {
		t.Fatalf("Preflight = %v; want nil", err)
	}
	_, err := f.cloud.EnsureNetwork(context.Background(), netReq("demo"))
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Code != "AuthorizationFailed" || !strings.Contains(ce.Fix, "Microsoft.Resources/subscriptions/resourceGroups/write") {
		t.Fatalf("EnsureNetwork = %v; want AuthorizationFailed naming resourceGroups/write", err)
	}
	if got := f.srv.Objects(group); len(got) != 0 {
		t.Errorf("objects = %v; want none", got)
	}
}

func TestUnregisteredProviderNamesTheFixWithoutPreflight(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	f.srv.Unregister("Microsoft.Network", true)
	_, err := f.cloud.EnsureNetwork(context.Background(), netReq("demo"))
	var ce *clouds.Error
	if !errors.As(err, &ce) || ce.Code != "MissingSubscriptionRegistration" || !strings.Contains(ce.Fix, "az provider register --namespace Microsoft.Network") {
		t.Fatalf("EnsureNetwork = %v; want MissingSubscriptionRegistration naming the namespace to register", err)
	}
}

func TestMatchAction(t *testing.T) {
	for _, c := range []struct {
		pattern, action string
		want            bool
	}{
		{"*", "Microsoft.Compute/virtualMachines/write", true},
		{"Microsoft.Compute/virtualMachines/*", "microsoft.compute/virtualmachines/extensions/write", true},
		{"Microsoft.Compute/*/delete", "Microsoft.Compute/disks/delete", true},
		{"Microsoft.Compute/*/delete", "Microsoft.Compute/disks/write", false},
		{"Microsoft.Authorization/*/read", "Microsoft.Compute/virtualMachines/read", false},
		{"Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/write", false},
		{"*/read", "Microsoft.Network/virtualNetworks/read", true},
	} {
		if got := matchAction(c.pattern, c.action); got != c.want {
			t.Errorf("matchAction(%q, %q) = %v; want %v", c.pattern, c.action, got, c.want)
		}
	}
}

// A wrong subscription answers 404 too, but it is no empty cluster:
// Observe must fail with the fix, not plan a cluster from nothing.
func TestAWrongSubscriptionIsNotAnEmptyCluster(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, func(c *Config) { c.SubscriptionID = "99999999-0000-4000-8000-000000000000" })
	_, found, err := f.cloud.FindNetwork(context.Background(), "demo")
	var ce *clouds.Error
	if found || !errors.As(err, &ce) || ce.Code != "SubscriptionNotFound" || !strings.Contains(ce.Fix, "azure.subscription_id") {
		t.Fatalf("FindNetwork = %v, %v; want SubscriptionNotFound naming azure.subscription_id", found, err)
	}
	if _, err := f.cloud.Instances(context.Background(), "demo"); !errors.As(err, &ce) || ce.Code != "SubscriptionNotFound" {
		t.Fatalf("Instances = %v; want SubscriptionNotFound", err)
	}
}
