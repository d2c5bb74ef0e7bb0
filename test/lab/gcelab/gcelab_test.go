package gcelab_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/gcp"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/gcelab"
	"github.com/mixedk8s/mixedk8s/transport/winrm"
)

const token = "lab-gcp-token"

// Given the lab with the Compute Engine emulator, when clouds/gcp creates
// instances, then each becomes a virtual node behind the bastion that
// presents the identity its guest published: the SSH host key the cloud
// reads from guest attributes and the WinRM certificate and password the
// cloud reads from hostkeys/winrm and windows-keys.
func TestInstancesBecomeNodesWithTheIdentityTheirGuestPublished(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{Dir: t.TempDir(), Logf: t.Logf,
		Clouds: []cloudemu.Starter{gcelab.Starter(gcelab.Options{Token: token, OperationDelay: 5 * time.Millisecond, BootDelay: 10 * time.Millisecond})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	emu := l.Emulator("gcp").(*gcelab.Emulator)
	envs := emu.Env()
	ca, err := os.ReadFile(envs["MIXEDK8S_GCP_CA_BUNDLE"])
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := gcp.New(context.Background(), gcp.Config{
		Project: envs["GOOGLE_CLOUD_PROJECT"], Region: envs["MIXEDK8S_GCP_REGION"], Zones: emu.Server.Zones(),
		Endpoint: envs["MIXEDK8S_GCP_ENDPOINT"], CABundle: ca,
		TokenSource:  oauth2.StaticTokenSource(&oauth2.Token{AccessToken: envs["MIXEDK8S_GCP_ACCESS_TOKEN"]}),
		PollInterval: 5 * time.Millisecond, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cluster = "unit"
	network, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.9.0.0/16", PodCIDR: "10.244.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	_, clientKey, _ := ed25519.GenerateKey(rand.Reader)
	client, _ := ssh.NewSignerFromKey(clientKey)
	lin, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: cluster, Name: "unit-lin-0", Pool: "lin", Role: clouds.RoleWorker, OS: "linux",
		InstanceType: "n2-standard-4", DiskGB: 20, Network: network,
		Identity: clouds.NodeIdentity{AdminUser: "mixedk8s", SSHAuthorizedKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(client.PublicKey())))}}})
	if err != nil {
		t.Fatal(err)
	}
	win, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: cluster, Name: "unit-win-0", Pool: "win", Role: clouds.RoleWorker, OS: "windows",
		WindowsVersion: "2022", InstanceType: "n2-standard-4", DiskGB: 80, Network: network, Identity: clouds.NodeIdentity{AdminUser: "mixedk8s"}})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); (l.Node("unit-lin-0") == nil || l.Node("unit-win-0") == nil) && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if l.Node("unit-lin-0") == nil || l.Node("unit-win-0") == nil {
		t.Fatalf("no nodes for the instances; problems: %q", l.Problems())
	}
	if objs := l.Objects(cluster); !slices.Contains(objs, "node/unit-lin-0") {
		t.Errorf("Objects(%s) = %q", cluster, objs)
	}

	env := l.Env()
	keyPEM, err := os.ReadFile(env.BastionPrivateKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	bastionKey, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pin, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(env.BastionHostKey))
	jump, err := ssh.Dial("tcp", env.BastionAddress, &ssh.ClientConfig{User: env.BastionUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(bastionKey)},
		HostKeyCallback: ssh.FixedHostKey(pin), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer jump.Close()

	// Linux: the host key pinned is the one the cloud read from guest attributes.
	obs, err := cloud.ObservedIdentity(ctx, lin)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(obs.SSHHostKeys[0]))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := jump.Dial("tcp", net.JoinHostPort(lin.PrivateIP, "22"))
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, lin.PrivateIP+":22", &ssh.ClientConfig{User: "mixedk8s", Auth: []ssh.AuthMethod{ssh.PublicKeys(client)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("SSH to the node with the key its guest published: %v", err)
	}
	sc := ssh.NewClient(conn, chans, reqs)
	sess, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("hostname")
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Errorf("hostname on the node: %q, %v", out, err)
	}
	sc.Close()

	// Windows: pinned by the thumbprint, logged in with the windows-keys password.
	wobs, err := cloud.ObservedIdentity(ctx, win)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := winrm.Dial(ctx, winrm.Config{Addr: net.JoinHostPort(win.PrivateIP, "5986"), User: wobs.AdminUser, Password: wobs.AdminPassword,
		Thumbprint: wobs.WinRMThumbprint, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) { return jump.Dial(network, addr) }})
	if err != nil {
		t.Fatalf("WinRM to the node with the thumbprint and password its guest published: %v", err)
	}
	var wout bytes.Buffer
	if _, err := wc.Run(ctx, "hostname", &wout, &wout); err != nil {
		t.Errorf("hostname on the Windows node: %q, %v", wout.String(), err)
	}
	wc.Close()

	for _, in := range []clouds.Instance{lin, win} {
		if err := cloud.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); (l.Node("unit-lin-0") != nil || l.Node("unit-win-0") != nil) && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if l.Node("unit-lin-0") != nil || l.Node("unit-win-0") != nil {
		t.Fatal("a node outlived its deleted instance")
	}
	if err := cloud.DeleteNetwork(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	if err := cloud.DeleteSecrets(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	if objs := l.Objects(cluster); len(objs) != 0 {
		t.Errorf("after deleting everything, Objects = %q", objs)
	}
}

// Given the lab with the Compute Engine emulator, when clouds/gcp builds
// the internal passthrough load balancer over two control planes, then its
// address carries connections to both, from this machine and inside the
// lab; when one stops listening, the health check (5s, 2 in a row, sped
// up) takes it out while it stays a member; and the deleted load
// balancer's address answers no more.
func TestLoadBalancerForwardsToHealthyBackends(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{Dir: t.TempDir(), Logf: t.Logf, HealthCheckSpeedup: 100,
		Clouds: []cloudemu.Starter{gcelab.Starter(gcelab.Options{Token: token, OperationDelay: 5 * time.Millisecond, BootDelay: 10 * time.Millisecond})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	emu := l.Emulator("gcp").(*gcelab.Emulator)
	envs := emu.Env()
	ca, err := os.ReadFile(envs["MIXEDK8S_GCP_CA_BUNDLE"])
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := gcp.New(context.Background(), gcp.Config{
		Project: envs["GOOGLE_CLOUD_PROJECT"], Region: envs["MIXEDK8S_GCP_REGION"], Zones: emu.Server.Zones(),
		Endpoint: envs["MIXEDK8S_GCP_ENDPOINT"], CABundle: ca,
		TokenSource:  oauth2.StaticTokenSource(&oauth2.Token{AccessToken: envs["MIXEDK8S_GCP_ACCESS_TOKEN"]}),
		PollInterval: 5 * time.Millisecond, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const cluster = "lbg"
	network, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.9.0.0/16", PodCIDR: "10.244.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	_, clientKey, _ := ed25519.GenerateKey(rand.Reader)
	client, _ := ssh.NewSignerFromKey(clientKey)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; problems %q", what, l.Problems())
			}
		}
	}
	var cps []clouds.Instance
	for _, name := range []string{"lbg-cp-0", "lbg-cp-1"} {
		in, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: cluster, Name: name, Pool: clouds.ControlPlanePool, Role: clouds.RoleControlPlane, OS: "linux",
			InstanceType: "n2-standard-4", DiskGB: 20, Network: network,
			Identity: clouds.NodeIdentity{AdminUser: "mixedk8s", SSHAuthorizedKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(client.PublicKey())))}}})
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, in)
		waitFor("node "+name, func() bool { return l.Node(name) != nil })
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
		slices.Sort(want)
		return func() bool {
			lbs := l.LoadBalancers(cluster)
			return len(lbs) == 1 && len(lbs[0].Listeners) == 1 && slices.Equal(lbs[0].Listeners[0].Healthy, want)
		}
	}
	waitFor("both backends healthy", healthy(cps[0].ID, cps[1].ID))
	local, ok := l.LoadBalancerEndpoint(net.JoinHostPort(lb.Address, "6443"))
	if !ok {
		t.Fatalf("no local endpoint for %s; load balancers %+v", lb.Address, l.LoadBalancers(cluster))
	}
	answer := func(c net.Conn, err error) string {
		if err != nil {
			return "dial: " + err.Error()
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	seen := map[string]int{}
	for range 10 {
		seen[answer(net.Dial("tcp", local))]++
	}
	if seen["lbg-cp-0"] == 0 || seen["lbg-cp-1"] == 0 || len(seen) != 2 {
		t.Errorf("answers from this machine: %v, want both control planes and nothing else", seen)
	}
	if got := answer(l.DialLab(ctx, net.JoinHostPort(lb.Address, "6443"))); got != "lbg-cp-0" && got != "lbg-cp-1" {
		t.Errorf("inside the lab at %s: %q", lb.Address, got)
	}

	// cp-0's API server stops: still a member, out of rotation by health.
	l.Node("lbg-cp-0").Host.Listen(6443, nil)
	waitFor("the health check to take cp-0 out", healthy(cps[1].ID))
	if found, _, err := cloud.FindLoadBalancer(ctx, cluster); err != nil || len(found.Targets) != 2 {
		t.Fatalf("targets = %v, %v; want both still registered", found.Targets, err)
	}
	for i := range 10 {
		if got := answer(net.Dial("tcp", local)); got != "lbg-cp-1" {
			t.Errorf("connection %d with cp-0 down: %q, want lbg-cp-1", i, got)
		}
	}

	if err := cloud.DeleteLoadBalancer(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	waitFor("the load balancer's address gone", func() bool {
		_, ok := l.LoadBalancerEndpoint(net.JoinHostPort(lb.Address, "6443"))
		return !ok && len(l.LoadBalancers(cluster)) == 0
	})
	if _, err := l.DialLab(ctx, net.JoinHostPort(lb.Address, "6443")); err == nil {
		t.Error("the deleted load balancer's address still answers inside the lab")
	}
	if p := l.Problems(); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
}
