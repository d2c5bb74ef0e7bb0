package lab

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/aws"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
)

func TestMain(m *testing.M) {
	// Never let the SDK reach IMDS or read the developer's AWS configuration.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Exit(m.Run())
}

func start(t *testing.T) *Lab {
	t.Helper()
	l, err := Start(context.Background(), Config{Dir: t.TempDir(), PendingDelay: 10 * time.Millisecond, ShuttingDownDelay: 10 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func cloudFor(t *testing.T, env Env) *aws.Cloud {
	t.Helper()
	ca, err := os.ReadFile(env.AWSCABundle)
	if err != nil {
		t.Fatal(err)
	}
	c, err := aws.New(context.Background(), aws.Config{
		Region: env.AWSRegion, Endpoint: env.AWSEndpoint, CABundle: ca,
		AccessKeyID: env.AWSAccessKeyID, SecretAccessKey: env.AWSSecretAccessKey,
		MaxAttempts: 1, PollInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnvFilesRoundTripAndStayPrivate(t *testing.T) {
	l := start(t)
	want := l.Env()
	for _, name := range []string{EnvFileName, JSONFileName, filepath.Base(want.BastionPrivateKeyFile)} {
		st, err := os.Stat(filepath.Join(want.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600: it holds a secret", name, st.Mode().Perm())
		}
	}
	for _, path := range []string{l.EnvFile(), filepath.Join(want.Dir, JSONFileName), want.Dir} {
		got, err := ReadEnv(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("ReadEnv(%s) = %+v, want %+v", path, got, want)
		}
	}
	for _, addr := range []string{want.AWSEndpoint, want.BastionAddress, want.MirrorBaseURL, want.API} {
		if !strings.Contains(addr, "127.0.0.1:") {
			t.Errorf("%s is not on 127.0.0.1", addr)
		}
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(want.BastionHostKey)); err != nil {
		t.Errorf("bastion host key %q: %v", want.BastionHostKey, err)
	}
}

// linuxIdentity is a Linux node identity as the provisioner would make it.
func linuxIdentity(t *testing.T) (clouds.NodeIdentity, ssh.Signer, ssh.PublicKey) {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	_, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	client, _ := ssh.NewSignerFromKey(clientPriv)
	return clouds.NodeIdentity{
		AdminUser:         "mixedk8s",
		SSHHostKeyPEM:     string(pem.EncodeToMemory(block)),
		SSHAuthorizedKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(client.PublicKey())))},
	}, client, hostSigner.PublicKey()
}

// TestInstanceBecomesANodeReachableOnlyThroughTheBastion launches an
// instance through clouds/aws and logs in to it through the bastion by its
// private address, pinning the host key from its first-boot data; terminating it
// takes the node away.
func TestInstanceBecomesANodeReachableOnlyThroughTheBastion(t *testing.T) {
	l := start(t)
	env := l.Env()
	cloud := cloudFor(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cluster = "unit"
	network, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.9.0.0/16", PodCIDR: "10.244.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	id, client, hostKey := linuxIdentity(t)
	in, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: cluster, Name: "unit-lin-0", Pool: "lin", Role: clouds.RoleWorker, OS: "linux",
		InstanceType: "m6i.large", DiskGB: 20, Identity: id, Network: network})
	if err != nil {
		t.Fatal(err)
	}
	var n *Node
	for deadline := time.Now().Add(10 * time.Second); n == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n = l.Node("unit-lin-0")
	}
	if n == nil {
		t.Fatalf("no node for instance %s; problems: %q", in.ID, l.Problems())
	}
	if n.PrivateIP.String() != in.PrivateIP || n.Host.OS != "linux" || !n.Host.Addr.IsLoopback() {
		t.Errorf("node %s: private %s (instance %s), OS %s, virtual %s", n.Name, n.PrivateIP, in.PrivateIP, n.Host.OS, n.Host.Addr)
	}
	if objs := l.Objects(cluster); !slices.Contains(objs, "node/unit-lin-0") || !slices.Contains(objs, "instance/"+in.ID) {
		t.Errorf("Objects(%s) = %q, want the instance and its node", cluster, objs)
	}

	// Through the bastion, as the provisioner goes: its user's key from the env, its host key pinned.
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
	nc, err := jump.Dial("tcp", net.JoinHostPort(in.PrivateIP, "22"))
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, in.PrivateIP+":22", &ssh.ClientConfig{User: "mixedk8s", Auth: []ssh.AuthMethod{ssh.PublicKeys(client)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("SSH to the node through the bastion with its pinned key: %v", err)
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
	if _, err := jump.Dial("tcp", "10.9.200.200:22"); err == nil {
		t.Error("the bastion reached an address no node has")
	}

	if err := cloud.DeleteInstance(ctx, in); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); l.Node("unit-lin-0") != nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if l.Node("unit-lin-0") != nil {
		t.Fatal("the node outlived its terminated instance")
	}
	if _, err := os.Stat(n.Host.Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the terminated node's sandbox %s is still there: %v", n.Host.Root, err)
	}
	if err := cloud.DeleteNetwork(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	if objs := l.Objects(cluster); len(objs) != 0 {
		t.Errorf("after deleting everything, Objects = %q", objs)
	}
	if p := l.Problems(); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
}

// An Azure VM made again under its name keeps its resource ID: the new
// instance's node boots in its own folder and stays when the old one's
// termination is reported late, as the ARM emulator's hooks may.
func TestInstanceUnderAReusedIDOutlivesTheOldOnesLateReport(t *testing.T) {
	l := start(t)
	id, _, _ := linuxIdentity(t)
	old := cloudemu.Instance{Cloud: "azure", ID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/re-lin-0",
		Incarnation: "11111111-aaaa", Cluster: "re", Name: "re-lin-0", OS: "linux", PrivateIP: "10.7.0.4", Identity: id}
	l.onEvent(cloudemu.Event{Kind: cloudemu.Started, Instance: old})
	first := l.Node("re-lin-0")
	if first == nil {
		t.Fatalf("no node for the first instance; problems %q", l.Problems())
	}
	next := old
	next.Incarnation, next.PrivateIP = "22222222-bbbb", "10.7.0.5"
	l.onEvent(cloudemu.Event{Kind: cloudemu.Started, Instance: next})
	l.onEvent(cloudemu.Event{Kind: cloudemu.Terminated, Instance: old})
	n := l.Node("re-lin-0")
	if n == nil || n.Incarnation != next.Incarnation {
		t.Fatalf("node after the old instance's late report: %+v, want the new instance's", n)
	}
	if n.Host.Root == first.Host.Root {
		t.Errorf("both instances boot in %s", n.Host.Root)
	}
	if _, err := os.Stat(n.Host.Root); err != nil {
		t.Errorf("the new instance's sandbox: %v", err)
	}
	if _, err := os.Stat(first.Host.Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old instance's sandbox %s is still there: %v", first.Host.Root, err)
	}
	if h := l.resolve(netip.MustParseAddr(next.PrivateIP)); h != n.Host {
		t.Errorf("the bastion resolves %s to %v, want the new node", next.PrivateIP, h)
	}
	if p := l.Problems(); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
}

func TestInstanceWithoutAnIdentityIsAProblemNotANode(t *testing.T) {
	l := start(t)
	cloud := cloudFor(t, l.Env())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	network, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: "bare", NodeCIDR: "10.8.0.0/16", PodCIDR: "10.244.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: "bare", Name: "bare-0", Pool: "p", Role: clouds.RoleWorker, OS: "linux",
		InstanceType: "m6i.large", Network: network}); err != nil {
		t.Fatal(err)
	}
	var problems []string
	for deadline := time.Now().Add(5 * time.Second); len(problems) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		problems = l.Problems()
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "bare-0") || !strings.Contains(problems[0], "first boot") {
		t.Errorf("problems %q, want one naming bare-0's first boot", problems)
	}
	if l.Node("bare-0") != nil {
		t.Error("an instance without an identity became a node")
	}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func TestHTTPAPIInjectsFaultsAndReportsCalls(t *testing.T) {
	l := start(t)
	env := l.Env()
	cloud := cloudFor(t, env)
	ctx := context.Background()

	if code, body := post(t, env.API+"/faults", `{"kind":"throttle","action":"DescribeVpcs","count":1}`); code != http.StatusNoContent {
		t.Fatalf("POST /faults: %d %s", code, body)
	}
	_, _, err := cloud.FindNetwork(ctx, "api") // MaxAttempts 1: the throttle reaches us
	if clouds.KindOf(err) != clouds.KindThrottled {
		t.Errorf("after a throttle fault, FindNetwork: %v (kind %v), want throttled", err, clouds.KindOf(err))
	}
	if _, _, err := cloud.FindNetwork(ctx, "api"); err != nil {
		t.Errorf("the fault outlived its count: %v", err)
	}

	resp, err := http.Get(env.API + "/calls")
	if err != nil {
		t.Fatal(err)
	}
	var calls struct {
		Calls    map[string]int
		Mutating int
		Read     int
	}
	err = json.NewDecoder(resp.Body).Decode(&calls)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if calls.Calls["DescribeVpcs"] != 2 || calls.Mutating != 0 || calls.Read < 2 {
		t.Errorf("GET /calls = %+v, want 2 DescribeVpcs and nothing mutating", calls)
	}

	for body, want := range map[string]string{
		`{"kind":"bogus"}`:                       "unknown fault kind",
		`{"kind":"throttle"}`:                    "set count",
		`{"kind":"capacity"}`:                    "instance_type",
		`{"kind":"reboot-host","node":"nobody"}`: "no live node",
		`{"kind":"latency","latency":"soon"}`:    "Go duration",
		`{"knd":"throttle"}`:                     "unknown field",
	} {
		if code, got := post(t, env.API+"/faults", body); code != http.StatusBadRequest || !strings.Contains(got, want) {
			t.Errorf("POST /faults %s = %d %s, want 400 mentioning %q", body, code, got, want)
		}
	}

	// A standing rate fault, then clear.
	if code, body := post(t, env.API+"/faults", `{"kind":"5xx","action":"DescribeVpcs","every":1}`); code != http.StatusNoContent {
		t.Fatalf("POST /faults: %d %s", code, body)
	}
	if _, _, err := cloud.FindNetwork(ctx, "api"); clouds.KindOf(err) != clouds.KindTransient {
		t.Errorf("under a 5xx rate, FindNetwork: %v, want transient", err)
	}
	if code, body := post(t, env.API+"/faults", `{"kind":"clear"}`); code != http.StatusNoContent {
		t.Fatalf("POST /faults clear: %d %s", code, body)
	}
	if _, _, err := cloud.FindNetwork(ctx, "api"); err != nil {
		t.Errorf("after clear, FindNetwork: %v", err)
	}

	resp, err = http.Get(env.API + "/objects?cluster=api")
	if err != nil {
		t.Fatal(err)
	}
	var objs struct{ Objects []string }
	err = json.NewDecoder(resp.Body).Decode(&objs)
	resp.Body.Close()
	if err != nil || objs.Objects == nil || len(objs.Objects) != 0 {
		t.Errorf("GET /objects of a cluster with nothing: %+v, %v; want []", objs, err)
	}
}

// TestReadVarsSeesEveryCloudsVariables: lab.env carries the other
// emulators' variables beside the AWS ones, and ReadVars reads them back
// unquoted, as a shell sourcing the file would.
func TestReadVarsSeesEveryCloudsVariables(t *testing.T) {
	dir := t.TempDir()
	env := Env{Dir: dir, AWSEndpoint: "https://127.0.0.1:1", BastionHostKey: "ssh-ed25519 AAAA key"}
	if err := env.write(dir, map[string]map[string]string{"other": {"OTHER_SECRET": "it's 'quoted'", "OTHER_URL": "https://x.emu.test:2"}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, filepath.Join(dir, EnvFileName)} {
		vars, err := ReadVars(path)
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"AWS_ENDPOINT_URL": env.AWSEndpoint, "MIXEDK8S_LAB_BASTION_HOST_KEY": env.BastionHostKey,
			"OTHER_SECRET": "it's 'quoted'", "OTHER_URL": "https://x.emu.test:2"} {
			if vars[k] != want {
				t.Errorf("ReadVars(%s)[%s] = %q, want %q", path, k, vars[k], want)
			}
		}
	}
	if _, err := ReadVars(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadVars of a missing file succeeded")
	}
}
