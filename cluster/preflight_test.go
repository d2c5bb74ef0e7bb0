package cluster_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/azure"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/clustertest"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// preflighted is the memory cloud with a preflight that answers err.
type preflighted struct {
	clouds.Cloud
	err   error
	calls int
	got   clouds.PreflightRequest
}

func (p *preflighted) Preflight(_ context.Context, req clouds.PreflightRequest) error {
	p.calls++
	p.got = req
	return p.err
}

func TestApplyStopsAtARefusalBeforeCreatingAnything(t *testing.T) {
	t.Parallel()
	l := newLab()
	refusal := &clouds.PreflightError{Field: "azure.resource_group", Err: &clouds.Error{Kind: clouds.KindAuth, Code: "AuthorizationFailed", Op: "Permissions.List", Object: "resource group", Fix: "grant a role"}}
	cloud := &preflighted{Cloud: l.cloud, err: refusal}
	opts := l.opts()
	opts.Cloud = cloud
	_, err := cluster.Apply(context.Background(), demoSpec(), opts)
	if pe, ok := clouds.AsPreflightError(err); !ok || pe != refusal {
		t.Fatalf("Apply = %v; want the refusal", err)
	}
	if got := l.cloud.Objects("demo"); len(got) != 0 {
		t.Errorf("objects after a refusal: %v", got)
	}
	if n := l.cloud.MutatingCalls(); n != 0 {
		t.Errorf("%d mutating cloud calls after a refusal", n)
	}
	if n := l.prov.MutatingCalls(); n != 0 {
		t.Errorf("%d provisioner calls after a refusal", n)
	}
	want := clouds.PreflightRequest{Cluster: "demo", Network: true, Instances: true, Secrets: true, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}
	if cloud.got != want {
		t.Errorf("preflight request = %+v; want %+v", cloud.got, want)
	}
}

func TestApplyGoesOnWhenThePreflightCannotTell(t *testing.T) {
	t.Parallel()
	l := newLab()
	cloud := &preflighted{Cloud: l.cloud, err: &clouds.Error{Kind: clouds.KindAuth, Code: "AuthorizationFailed", Op: "Providers.Get"}}
	l.noLoadBalancers = true // the wrapper has no LoadBalancers methods
	opts := l.opts()
	opts.Cloud = cloud
	spec := demoSpec()
	if _, err := cluster.Apply(context.Background(), spec, opts); err != nil {
		t.Fatalf("Apply = %v; want the cluster despite a check that could not be made", err)
	}
	wantConverged(t, l, spec)
	// A converged cluster needs nothing: no preflight either.
	if _, err := cluster.Apply(context.Background(), spec, opts); err != nil {
		t.Fatal(err)
	}
	if cloud.calls != 1 {
		t.Errorf("preflight calls = %d; want 1 (none for the converged re-apply)", cloud.calls)
	}
}

func TestApplyOnAzureWithoutTheComputeRoleCreatesNothing(t *testing.T) {
	t.Parallel()
	const client, secret, group = "11111111-2222-4333-8444-555555555555", "lab-secret", "demo-rg"
	srv, err := arm.New(arm.Options{Clients: map[string]string{client: secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddGroup(group)
	// Reader, Network Contributor and Key Vault Secrets Officer, no
	// Virtual Machine Contributor: Observe reads, the preflight refuses.
	srv.Permit(client,
		arm.Permission{Actions: []string{"*/read"}},
		arm.Permission{Actions: []string{"Microsoft.Network/*", "Microsoft.Resources/subscriptions/resourceGroups/read"}},
		arm.Permission{DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}})
	cloud, err := azure.New(azure.Config{
		SubscriptionID: srv.SubscriptionID(), Location: srv.Location(), ResourceGroup: group, VaultURL: srv.VaultURL(),
		Cloud:    azure.CloudEndpoints{AuthorityHost: srv.URL() + "/", ResourceManagerEndpoint: srv.URL()},
		CABundle: srv.CACertPEM(), DialContext: srv.DialContext,
		ClientSecret: &azure.ClientSecret{TenantID: srv.TenantID(), ClientID: client, Secret: secret},
		RetryDelay:   5 * time.Millisecond, PollFrequency: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := demoSpec()
	spec.AWS = nil
	spec.Azure = &cluster.AzureSpec{SubscriptionID: srv.SubscriptionID(), Location: srv.Location(), ResourceGroup: group}
	spec.ControlPlane.InstanceType = ""
	for name, p := range spec.NodePools {
		p.InstanceType = ""
		spec.NodePools[name] = p
	}
	prov := clustertest.NewProvisioner()
	_, err = cluster.Apply(context.Background(), spec, cluster.Options{Cloud: cloud, Provisioner: prov, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	pe, ok := clouds.AsPreflightError(err)
	if !ok || pe.Field != "azure.resource_group" || !strings.Contains(err.Error(), "Microsoft.Compute/virtualMachines/write") || !strings.Contains(err.Error(), "Virtual Machine Contributor") {
		t.Fatalf("Apply = %v; want one refusal at azure.resource_group naming the compute action and role", err)
	}
	if n := srv.MutatingCalls(); n != 0 {
		t.Errorf("%d mutating ARM calls before the refusal: %v", n, srv.Calls())
	}
	if got := srv.Objects(group); !slices.Equal(got, []string{"resourceGroups/" + group}) {
		t.Errorf("objects = %v; want only the user's group", got)
	}
	if n := prov.MutatingCalls(); n != 0 {
		t.Errorf("%d provisioner calls after a refusal", n)
	}
	if errors.Is(err, context.Canceled) {
		t.Error("a refusal is not a cancellation")
	}
}
