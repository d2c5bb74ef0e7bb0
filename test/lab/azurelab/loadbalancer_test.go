package azurelab_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/azure"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/azurelab"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
)

func linuxIdentity(t *testing.T) clouds.NodeIdentity {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	_, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	client, _ := ssh.NewSignerFromKey(clientPriv)
	return clouds.NodeIdentity{AdminUser: "mixedk8s", SSHHostKeyPEM: string(pem.EncodeToMemory(block)),
		SSHAuthorizedKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(client.PublicKey())))}}
}

func answer(c net.Conn, err error) string {
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestLoadBalancerCarriesToHealthyControlPlanes builds a public Standard
// load balancer over two control-plane VMs through clouds/azure and checks
// that the lab carries its public address to both, that a VM deleted
// through ARM leaves rotation once its probe fails, that with every probe
// down no connection is carried (Azure's default), and that deleting the
// load balancer takes its address away.
func TestLoadBalancerCarriesToHealthyControlPlanes(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{Dir: t.TempDir(), Logf: t.Logf, HealthCheckSpeedup: 50,
		Clouds: []cloudemu.Starter{azurelab.Starter(azurelab.Options{ClientID: "lab-client", ClientSecret: "lab-secret", OperationDelay: 5 * time.Millisecond})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	srv := l.Emulator("azure").(*azurelab.Emulator).Server
	cloud, err := azure.New(azure.Config{
		SubscriptionID: srv.SubscriptionID(), Location: srv.Location(), ResourceGroup: "lbt-rg", VaultURL: srv.VaultURL(),
		Cloud:    azure.CloudEndpoints{AuthorityHost: srv.URL() + "/", ResourceManagerEndpoint: srv.URL()},
		CABundle: srv.CACertPEM(), DialContext: srv.DialContext,
		ClientSecret: &azure.ClientSecret{TenantID: srv.TenantID(), ClientID: "lab-client", Secret: "lab-secret"},
		RetryDelay:   5 * time.Millisecond, PollFrequency: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const cluster = "lbt"
	network, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.7.0.0/16", PodCIDR: "10.244.0.0/16", AdminCIDRs: []string{"203.0.113.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	var cps []clouds.Instance
	for i := range 2 {
		name := fmt.Sprintf("lbt-cp-%d", i)
		in, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: cluster, Name: name, Pool: clouds.ControlPlanePool, Role: clouds.RoleControlPlane,
			OS: "linux", InstanceType: "Standard_D2s_v5", DiskGB: 30, Identity: linuxIdentity(t), Network: network})
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, in)
		n := waitNode(t, l, name, true)
		// Stands for the node's API server: it answers its node's name.
		n.Host.Listen(6443, func(c net.Conn) { _, _ = io.WriteString(c, name); _ = c.Close() })
	}
	lb, err := cloud.EnsureLoadBalancer(ctx, clouds.LoadBalancerRequest{Cluster: cluster, Port: 6443, Network: network, AdminCIDRs: []string{"203.0.113.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cloud.SetLoadBalancerTargets(ctx, lb, cps); err != nil {
		t.Fatal(err)
	}
	healthy := func(want ...string) func() bool {
		return func() bool {
			lbs := l.LoadBalancers(cluster)
			return len(lbs) == 1 && len(lbs[0].Listeners) == 1 && slices.Equal(lbs[0].Listeners[0].Healthy, want)
		}
	}
	waitFor(t, "both targets healthy", healthy(cps[0].ID, cps[1].ID))
	if info := l.LoadBalancers(cluster)[0]; !slices.Equal(info.Addresses, []string{lb.Address}) || info.Cloud != "azure" {
		t.Errorf("lab's load balancer = %+v; want the public address %s", info, lb.Address)
	}
	local, ok := l.LoadBalancerEndpoint(net.JoinHostPort(lb.Address, "6443"))
	if !ok {
		t.Fatalf("no local endpoint for %s; load balancers %+v", lb.Address, l.LoadBalancers(cluster))
	}
	seen := map[string]int{}
	for range 10 {
		c, err := net.Dial("tcp", local)
		seen[answer(c, err)]++
	}
	if seen["lbt-cp-0"] == 0 || seen["lbt-cp-1"] == 0 || len(seen) != 2 {
		t.Errorf("answers from this machine: %v, want both control planes and nothing else", seen)
	}
	c, err := l.DialLab(ctx, net.JoinHostPort(lb.Address, "6443"))
	if got := answer(c, err); got != "lbt-cp-0" && got != "lbt-cp-1" {
		t.Errorf("inside the lab by the public address: %q", got)
	}

	// One control plane deleted through ARM: its NIC leaves the pool with it.
	if err := cloud.DeleteInstance(ctx, cps[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted VM out of rotation", healthy(cps[1].ID))
	for i := range 5 {
		c, err := net.Dial("tcp", local)
		if got := answer(c, err); got != "lbt-cp-1" {
			t.Errorf("connection %d after the loss: %q, want lbt-cp-1", i, got)
		}
	}
	// Every probe down: Azure sends new flows nowhere.
	l.Node("lbt-cp-1").Host.Listen(6443, nil)
	waitFor(t, "no healthy target", healthy())
	c, err = net.Dial("tcp", local)
	if got := answer(c, err); got != "" && !strings.HasPrefix(got, "dial:") {
		t.Errorf("with every probe down a connection got %q; want none", got)
	}

	if err := cloud.DeleteLoadBalancer(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the load balancer's address gone", func() bool {
		_, ok := l.LoadBalancerEndpoint(net.JoinHostPort(lb.Address, "6443"))
		return !ok && len(l.LoadBalancers(cluster)) == 0
	})
	if p := l.Problems(); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
}
