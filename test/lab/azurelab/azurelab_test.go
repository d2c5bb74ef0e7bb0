package azurelab_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
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

func TestMain(m *testing.M) {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

func waitNode(t *testing.T, l *lab.Lab, name string, want bool) *lab.Node {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n := l.Node(name); (n != nil) == want {
			return n
		}
	}
	t.Fatalf("node %s: still %v after 15s; problems %q", name, !want, l.Problems())
	return nil
}

// TestVMsBecomeNodesWithTheIdentityTheBackendSent runs the lab with its
// Azure: VMs made by clouds/azure become virtual hosts behind the bastion,
// with the identity read back from osProfile, customData and the extension.
func TestVMsBecomeNodesWithTheIdentityTheBackendSent(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{Dir: t.TempDir(), Logf: t.Logf,
		Clouds: []cloudemu.Starter{azurelab.Starter(azurelab.Options{ClientID: "lab-client", ClientSecret: "lab-secret", OperationDelay: 5 * time.Millisecond})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	emu := l.Emulator("azure").(*azurelab.Emulator)
	srv := emu.Server
	cloud, err := azure.New(azure.Config{
		SubscriptionID: srv.SubscriptionID(), Location: srv.Location(), ResourceGroup: "unit-rg", VaultURL: srv.VaultURL(),
		Cloud:    azure.CloudEndpoints{AuthorityHost: srv.URL() + "/", ResourceManagerEndpoint: srv.URL()},
		CABundle: srv.CACertPEM(), DialContext: srv.DialContext,
		ClientSecret: &azure.ClientSecret{TenantID: srv.TenantID(), ClientID: "lab-client", Secret: "lab-secret"},
		RetryDelay:   5 * time.Millisecond, PollFrequency: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cluster = "unit"
	network, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.9.0.0/16", PodCIDR: "10.244.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}

	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(hostPriv, "")
	hostKey, _ := ssh.NewSignerFromKey(hostPriv)
	_, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	client, _ := ssh.NewSignerFromKey(clientPriv)
	linID := clouds.NodeIdentity{AdminUser: "mixedk8s", SSHHostKeyPEM: string(pem.EncodeToMemory(block)),
		SSHAuthorizedKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(client.PublicKey())))}}
	lin, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: cluster, Name: "unit-lin-0", Pool: "lin", Role: clouds.RoleWorker, OS: "linux",
		InstanceType: "Standard_D2s_v5", DiskGB: 30, Identity: linID, Network: network})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unit-win-0"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	winID := clouds.NodeIdentity{AdminUser: "mixedk8s", AdminPassword: "Mk8-abcdefghijkLMNOP2345",
		WinRMCertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), WinRMKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))}
	win, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{Cluster: cluster, Name: "unit-win-0", Pool: "win", Role: clouds.RoleWorker, OS: "windows",
		WindowsVersion: "2022", InstanceType: "Standard_D4s_v5", DiskGB: 80, NestedVirtualization: true, Identity: winID, Network: network})
	if err != nil {
		t.Fatal(err)
	}

	ln := waitNode(t, l, "unit-lin-0", true)
	wn := waitNode(t, l, "unit-win-0", true)
	if ln.Cloud != "azure" || ln.Cluster != cluster || ln.PrivateIP.String() != lin.PrivateIP || ln.Host.OS != "linux" {
		t.Errorf("Linux node: cloud %s, cluster %s, private %s (VM %s), OS %s", ln.Cloud, ln.Cluster, ln.PrivateIP, lin.PrivateIP, ln.Host.OS)
	}
	if wn.PrivateIP.String() != win.PrivateIP || wn.Host.OS != "windows" {
		t.Errorf("Windows node: private %s (VM %s), OS %s", wn.PrivateIP, win.PrivateIP, wn.Host.OS)
	}

	// Through the bastion to the Linux VM's private address, its host key pinned.
	env := l.Env()
	keyPEM, err := os.ReadFile(env.BastionPrivateKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	bastionKey, _ := ssh.ParsePrivateKey(keyPEM)
	pin, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(env.BastionHostKey))
	jump, err := ssh.Dial("tcp", env.BastionAddress, &ssh.ClientConfig{User: env.BastionUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(bastionKey)},
		HostKeyCallback: ssh.FixedHostKey(pin), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer jump.Close()
	nc, err := jump.Dial("tcp", net.JoinHostPort(lin.PrivateIP, "22"))
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, lin.PrivateIP+":22", &ssh.ClientConfig{User: "mixedk8s", Auth: []ssh.AuthMethod{ssh.PublicKeys(client)},
		HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("SSH to the VM through the bastion with its pinned key: %v", err)
	}
	sc := ssh.NewClient(conn, chans, reqs)
	sess, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := sess.CombinedOutput("hostname"); err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Errorf("hostname on the node: %q, %v", out, err)
	}
	sc.Close()

	if _, err := cloud.EnsureSecret(ctx, cluster, clouds.NewSecretName("seed"), []byte("s")); err != nil {
		t.Fatal(err)
	}
	if objs, err := l.ObjectsIn("azure", cluster); err != nil || !slices.Contains(objs, "node/unit-win-0") || !slices.Contains(objs, "virtualMachines/unit-lin-0") ||
		!slices.Contains(objs, "secrets/"+azure.Profile.SecretName(cluster, "seed")) {
		t.Errorf("ObjectsIn(azure, %s) = %q, %v", cluster, objs, err)
	}

	// Destroy leaves nothing: no node, group, NIC, disk, NSG or secret.
	for _, in := range []clouds.Instance{lin, win} {
		if err := cloud.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	waitNode(t, l, "unit-lin-0", false)
	waitNode(t, l, "unit-win-0", false)
	if err := cloud.DeleteNetwork(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	if err := cloud.DeleteSecrets(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	if objs := l.Objects(cluster); len(objs) != 0 {
		t.Errorf("after destroy, Objects = %q", objs)
	}
	if p := l.Problems(); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
}
