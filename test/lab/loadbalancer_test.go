package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
)

// answer reads what one connection through the load balancer answers.
func answer(t *testing.T, c net.Conn, err error) string {
	t.Helper()
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "read: " + err.Error()
	}
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

// TestLoadBalancerForwardsToHealthyTargets builds an AWS Network Load
// Balancer over two control-plane instances through clouds/aws, and checks
// that its address carries connections to both, from this machine, from
// inside the lab and through the bastion by its DNS name; that once one
// instance is terminated through the cloud API the health checks take it
// out and every connection lands on the other; and that deleting the load
// balancer takes its address away.
func TestLoadBalancerForwardsToHealthyTargets(t *testing.T) {
	l, err := Start(context.Background(), Config{Dir: t.TempDir(), PendingDelay: 10 * time.Millisecond, ShuttingDownDelay: 10 * time.Millisecond,
		Logf: t.Logf, HealthCheckSpeedup: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	env := l.Env()
	cloud := cloudFor(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const cluster = "lbt"
	network, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.8.0.0/16", PodCIDR: "10.244.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	var cps []clouds.Instance
	for i := range 2 {
		id, _, _ := linuxIdentity(t)
		name := fmt.Sprintf("lbt-cp-%d", i)
		in, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: cluster, Name: name, Pool: clouds.ControlPlanePool, Role: clouds.RoleControlPlane,
			OS: "linux", InstanceType: "m6i.large", DiskGB: 20, Identity: id, Network: network})
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, in)
		waitFor(t, "node "+name, func() bool { return l.Node(name) != nil })
		// Stands for the node's API server: it answers its node's name.
		l.Node(name).Host.Listen(6443, func(c net.Conn) { _, _ = io.WriteString(c, name); _ = c.Close() })
	}
	lb, err := cloud.EnsureLoadBalancer(ctx, clouds.LoadBalancerRequest{Cluster: cluster, Internal: true, Port: 6443, Network: network})
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
	local, ok := l.LoadBalancerEndpoint(net.JoinHostPort(lb.Address, "6443"))
	if !ok {
		t.Fatalf("no local endpoint for %s; load balancers %+v", lb.Address, l.LoadBalancers(cluster))
	}
	seen := map[string]int{}
	for range 10 {
		c, err := net.Dial("tcp", local)
		seen[answer(t, c, err)]++
	}
	if seen["lbt-cp-0"] == 0 || seen["lbt-cp-1"] == 0 || len(seen) != 2 {
		t.Errorf("answers from this machine: %v, want both control planes and nothing else", seen)
	}

	// Inside the lab by its private address, and through the bastion by its DNS name.
	info := l.LoadBalancers(cluster)[0]
	c, err := l.DialLab(ctx, net.JoinHostPort(info.Addresses[0], "6443"))
	if got := answer(t, c, err); got != "lbt-cp-0" && got != "lbt-cp-1" {
		t.Errorf("inside the lab: %q", got)
	}
	jump := bastionClient(t, env)
	c, err = jump.Dial("tcp", net.JoinHostPort(lb.Address, "6443"))
	if got := answer(t, c, err); got != "lbt-cp-0" && got != "lbt-cp-1" {
		t.Errorf("through the bastion by DNS name: %q", got)
	}

	// One control plane terminated through the cloud API; it stays a registered target.
	if err := cloud.DeleteInstance(ctx, cps[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the terminated node gone", func() bool { return l.Node("lbt-cp-0") == nil })
	waitFor(t, "the health checks to take it out", healthy(cps[1].ID))
	for i := range 10 {
		c, err := net.Dial("tcp", local)
		if got := answer(t, c, err); got != "lbt-cp-1" {
			t.Errorf("connection %d after the loss: %q, want lbt-cp-1", i, got)
		}
	}

	if err := cloud.DeleteLoadBalancer(ctx, cluster); err != nil && !clouds.KindOf(err).Retryable() {
		t.Fatal(err)
	}
	waitFor(t, "the load balancer's address gone", func() bool {
		_, ok := l.LoadBalancerEndpoint(net.JoinHostPort(lb.Address, "6443"))
		return !ok && len(l.LoadBalancers(cluster)) == 0
	})
	if _, err := l.DialLab(ctx, net.JoinHostPort(info.Addresses[0], "6443")); err == nil {
		t.Error("the deleted load balancer's address still answers inside the lab")
	}
	if p := l.Problems(); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
}

func bastionClient(t *testing.T, env Env) *ssh.Client {
	t.Helper()
	keyPEM, err := os.ReadFile(env.BastionPrivateKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pin, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(env.BastionHostKey))
	c, err := ssh.Dial("tcp", env.BastionAddress, &ssh.ClientConfig{User: env.BastionUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(pin), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
