package gcelab_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
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
