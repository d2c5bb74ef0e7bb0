package azure

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

func TestMain(m *testing.M) {
	// Never let DefaultAzureCredential find the developer's own sign-in.
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"} {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}

const (
	labClient = "11111111-2222-4333-8444-555555555555"
	labSecret = "lab-secret"
	group     = "demo-rg"
)

type fixture struct {
	srv   *arm.Server
	cloud *Cloud
	cfg   Config
}

func setup(t testing.TB, opts arm.Options, mod func(*Config)) fixture {
	t.Helper()
	opts.Clients = map[string]string{labClient: labSecret}
	srv, err := arm.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := labConfig(srv)
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{srv, c, cfg}
}

// labConfig is what differs from a real subscription: endpoints, CA,
// resolver and credential.
func labConfig(srv *arm.Server) Config {
	return Config{
		SubscriptionID: srv.SubscriptionID(), Location: srv.Location(), ResourceGroup: group, VaultURL: srv.VaultURL(),
		Cloud:    CloudEndpoints{AuthorityHost: srv.URL() + "/", ResourceManagerEndpoint: srv.URL()},
		CABundle: srv.CACertPEM(), DialContext: srv.DialContext,
		ClientSecret: &ClientSecret{TenantID: srv.TenantID(), ClientID: labClient, Secret: labSecret},
		RetryDelay:   5 * time.Millisecond, PollFrequency: 5 * time.Millisecond,
	}
}

func netReq(cluster string) clouds.NetworkRequest {
	return clouds.NetworkRequest{Cluster: cluster, NodeCIDR: "10.20.0.0/16", AdminCIDRs: []string{"203.0.113.0/24"}, PodCIDR: "192.168.0.0/16"}
}

// identity is a node identity as the provisioner makes one.
func identity(t testing.TB, windows bool) clouds.NodeIdentity {
	t.Helper()
	id := clouds.NodeIdentity{AdminUser: "mixedk8s"}
	if windows {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "win"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		id.WinRMCertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		id.WinRMKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
		id.AdminPassword = "Mk8-abcdefghijkLMNOP2345"
		return id
	}
	_, host, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(host, "")
	if err != nil {
		t.Fatal(err)
	}
	id.SSHHostKeyPEM = string(pem.EncodeToMemory(block))
	_, client, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := ssh.NewPublicKey(client.Public())
	id.SSHAuthorizedKeys = []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))}
	return id
}

func instReq(t testing.TB, cluster, name, pool, role, os string, n clouds.Network) clouds.InstanceRequest {
	r := clouds.InstanceRequest{Cluster: cluster, Name: name, Pool: pool, Role: role, OS: os, InstanceType: "Standard_D2s_v5", DiskGB: 40, Network: n,
		Identity: identity(t, os == "windows")}
	if os == "windows" {
		r.WindowsVersion, r.InstanceType, r.DiskGB, r.NestedVirtualization = "2022", "Standard_D4s_v5", 80, true
	}
	return r
}

func TestNetworkAndInstancesEndToEnd(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"applicationSecurityGroups/demo-cp-asg", "networkSecurityGroups/demo-control-plane-nsg", "networkSecurityGroups/demo-worker-nsg", "resourceGroups/" + group, "virtualNetworks/demo-vnet"}
	if got := sorted(f.srv.Objects(group)); !slices.Equal(got, want) {
		t.Errorf("objects after EnsureNetwork: %v, want %v", got, want)
	}
	f.srv.ResetCalls()
	again, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil || !reflect.DeepEqual(again, n) || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %+v, %v (was %+v), %d mutating calls %v; want the same and none", again, err, n, f.srv.MutatingCalls(), f.srv.Calls())
	}
	if found, ok, err := f.cloud.FindNetwork(ctx, "demo"); err != nil || !ok || !reflect.DeepEqual(found, n) {
		t.Errorf("FindNetwork = %+v, %v, %v; want %+v", found, ok, err, n)
	}
	if _, ok, err := f.cloud.FindNetwork(ctx, "other"); ok || err != nil {
		t.Errorf("FindNetwork(other) = %v, %v; want false, nil", ok, err)
	}

	cpReq := instReq(t, "demo", "demo-cp-0", clouds.ControlPlanePool, clouds.RoleControlPlane, "linux", n)
	winReq := instReq(t, "demo", "demo-win-0", "win", clouds.RoleWorker, "windows", n)
	cp, err := f.cloud.EnsureInstance(ctx, cpReq)
	if err != nil {
		t.Fatal(err)
	}
	win, err := f.cloud.EnsureInstance(ctx, winReq)
	if err != nil {
		t.Fatal(err)
	}
	// The image reads as the spec names it ("latest"), not as the exactVersion
	// Azure resolved, so a newer image does not make a node outdated.
	for _, tc := range []struct {
		got                           clouds.Instance
		name, pool, os, size, release string
	}{
		{cp, "demo-cp-0", clouds.ControlPlanePool, "linux", "Standard_D2s_v5", ""},
		{win, "demo-win-0", "win", "windows", "Standard_D4s_v5", "2022"},
	} {
		g := tc.got
		if g.Name != tc.name || g.Pool != tc.pool || g.OS != tc.os || g.InstanceType != tc.size || g.State != clouds.StateRunning ||
			!strings.HasPrefix(g.PrivateIP, "10.20.0.") || g.Tags[TagCluster] != "demo" || g.Tags[TagNode] != tc.name || !strings.HasSuffix(g.Image, ":latest") ||
			g.WindowsVersion != tc.release || g.DiskGB == 0 {
			t.Errorf("instance %s = %+v", tc.name, g)
		}
	}

	// What Azure holds for each VM gives back exactly the identity sent, and customData holds no Windows secret.
	for _, vm := range f.srv.VMs() {
		req := cpReq
		if vm.OS == "windows" {
			req = winReq
			if strings.Contains(vm.Boot.CustomData, req.Identity.AdminPassword) || strings.Contains(vm.Boot.CustomData, "PRIVATE KEY") || vm.Boot.CustomData != windowsBootScript {
				t.Errorf("Windows customData carries more than the setup script")
			}
		}
		got, err := IdentityFromBoot(BootData{Windows: vm.OS == "windows", AdminUsername: vm.Boot.AdminUsername, AdminPassword: vm.Boot.AdminPassword,
			SSHPublicKeys: vm.Boot.SSHPublicKeys, CustomData: vm.Boot.CustomData, ProtectedCommand: vm.Boot.ProtectedCommand})
		if err != nil {
			t.Fatalf("%s: %v", vm.Name, err)
		}
		if !sameIdentity(t, got, req.Identity) {
			t.Errorf("%s: identity read back differs from the one sent", vm.Name)
		}
		if vm.ComputerName != vm.Name || vm.Tags["mixedk8s.io_cluster"] != "demo" {
			t.Errorf("%s: computer name %q, tags %v", vm.Name, vm.ComputerName, vm.Tags)
		}
	}

	// Converged: a rerun reads and changes nothing.
	f.srv.ResetCalls()
	for _, r := range []clouds.InstanceRequest{cpReq, winReq} {
		if _, err := f.cloud.EnsureInstance(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if m := f.srv.MutatingCalls(); m != 0 {
		t.Errorf("converged EnsureInstance made %d mutating calls: %v", m, f.srv.Calls())
	}
	list, err := f.cloud.Instances(ctx, "demo")
	if err != nil || len(list) != 2 {
		t.Fatalf("Instances = %v, %v", list, err)
	}
	byName := map[string]clouds.Instance{}
	for _, in := range list {
		byName[in.Name] = in
	}
	if !instancesEqual(byName["demo-cp-0"], cp) || !instancesEqual(byName["demo-win-0"], win) {
		t.Errorf("Instances = %+v; want %+v and %+v", list, cp, win)
	}

	// Destroy leaves nothing: no VM, NIC, disk, NSG, network or group.
	for _, in := range list {
		if err := f.cloud.DeleteInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.cloud.DeleteNetwork(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.Objects(group); len(got) != 0 {
		t.Errorf("after destroy: %v", got)
	}
	if _, ok, err := f.cloud.FindNetwork(ctx, "demo"); ok || err != nil {
		t.Errorf("FindNetwork after destroy = %v, %v", ok, err)
	}
	if list, err := f.cloud.Instances(ctx, "demo"); len(list) != 0 || err != nil {
		t.Errorf("Instances after destroy = %v, %v", list, err)
	}
}

func instancesEqual(a, b clouds.Instance) bool {
	return a.ID == b.ID && a.Name == b.Name && a.PrivateIP == b.PrivateIP && a.State == b.State && a.OS == b.OS && a.Image == b.Image && a.Pool == b.Pool
}

func sameIdentity(t testing.TB, a, b clouds.NodeIdentity) bool {
	t.Helper()
	if a.AdminUser != b.AdminUser || a.AdminPassword != b.AdminPassword || a.SSHHostKeyPEM != b.SSHHostKeyPEM || !slices.Equal(a.SSHAuthorizedKeys, b.SSHAuthorizedKeys) ||
		a.WinRMCertPEM != b.WinRMCertPEM {
		return false
	}
	if b.WinRMKeyPEM == "" {
		return a.WinRMKeyPEM == ""
	}
	// The key comes back as PKCS#8 of the same key.
	pa, _ := pem.Decode([]byte(a.WinRMKeyPEM))
	pb, _ := pem.Decode([]byte(b.WinRMKeyPEM))
	ka, err1 := x509.ParsePKCS8PrivateKey(pa.Bytes)
	kb, err2 := x509.ParsePKCS8PrivateKey(pb.Bytes)
	return err1 == nil && err2 == nil && ka.(*ecdsa.PrivateKey).Equal(kb)
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestALostReplyIsAdoptedNotDuplicated(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	req := instReq(t, "demo", "demo-lin-0", "lin", clouds.RoleWorker, "linux", n)
	// The VM's PUT acts, then its reply is lost; the NIC's too.
	f.srv.Drop("virtualMachines.Put", 1, true)
	f.srv.Drop("networkInterfaces.Put", 1, true)
	in, err := f.cloud.EnsureInstance(ctx, req)
	for try := 0; err != nil && clouds.KindOf(err).Retryable() && try < 5; try++ {
		in, err = f.cloud.EnsureInstance(ctx, req)
	}
	if err != nil {
		t.Fatal(err)
	}
	objs := f.srv.Objects(group)
	count := func(prefix string) int {
		return len(slices.DeleteFunc(slices.Clone(objs), func(o string) bool { return !strings.HasPrefix(o, prefix) }))
	}
	if count("virtualMachines/") != 1 || count("networkInterfaces/") != 1 || count("disks/") != 1 || in.State != clouds.StateRunning {
		t.Errorf("after lost replies: %v, instance %+v; want one VM, NIC and disk", objs, in)
	}
	if c := f.srv.Calls(); c["virtualMachines.Put"] < 2 || c["networkInterfaces.Put"] < 2 {
		t.Errorf("the lost replies were not retried: %v", c)
	}
}

func TestErrorsKeepAzureCodesAndNameTheFix(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		srv    func(*arm.Server)
		cfg    func(*Config, *arm.Server)
		req    func(*clouds.InstanceRequest)
		kind   clouds.Kind
		code   string
		fixHas string
	}
	cases := []tc{
		{name: "size not offered", req: func(r *clouds.InstanceRequest) { r.InstanceType = "Standard_NC96ads_A100_v4" },
			kind: clouds.KindCapacity, code: "SkuNotAvailable", fixHas: `instance_type for pool "lin"`},
		{name: "allocation failed in the async result", srv: func(s *arm.Server) {
			s.FailAsync("virtualMachines.Put", 1, arm.Error{Code: "AllocationFailed", Message: "Allocation failed. We do not have sufficient capacity for the requested VM size in this region."})
		}, kind: clouds.KindCapacity, code: "AllocationFailed", fixHas: "no capacity"},
		{name: "quota", srv: func(s *arm.Server) { s.Inject("virtualMachines.Put", 1, arm.ErrQuota) },
			kind: clouds.KindQuota, code: "OperationNotAllowed", fixHas: "quota"},
		{name: "missing role", srv: func(s *arm.Server) { s.Deny("Microsoft.Compute/virtualMachines/write", true) },
			kind: clouds.KindAuth, code: "AuthorizationFailed", fixHas: "Virtual Machine Contributor on the resource group (it allows Microsoft.Compute/virtualMachines/write)"},
		{name: "wrong secret", cfg: func(c *Config, _ *arm.Server) { c.ClientSecret.Secret = "wrong" },
			kind: clouds.KindAuth, fixHas: "credentials"},
		{name: "wrong subscription", cfg: func(c *Config, _ *arm.Server) { c.SubscriptionID = "99999999-0000-4000-8000-000000000000" },
			kind: clouds.KindAuth, code: "SubscriptionNotFound", fixHas: "azure.subscription_id"},
		{name: "throttled beyond the retries", srv: func(s *arm.Server) {
			e := arm.ErrThrottled
			e.RetryAfter = "0"
			s.Inject("virtualMachines.Get", 10, e)
		}, cfg: func(c *Config, _ *arm.Server) { c.MaxRetries = 2 }, kind: clouds.KindThrottled, code: "TooManyRequests"},
		{name: "Windows name over 15", req: func(r *clouds.InstanceRequest) {
			r.Name, r.OS, r.WindowsVersion, r.Identity = "demo-winpool-10x", "windows", "2022", identity(t, true)
		}, kind: clouds.KindInvalid, fixHas: "15 characters"},
		{name: "Hyper-V on a size without nested virtualisation under Trusted Launch", req: func(r *clouds.InstanceRequest) {
			r.NestedVirtualization, r.InstanceType = true, "Standard_D4s_v3"
		}, kind: clouds.KindInvalid, fixHas: "v5 or later"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv, err := arm.New(arm.Options{Clients: map[string]string{labClient: labSecret}})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			good, err := New(labConfig(srv))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			n, err := good.EnsureNetwork(ctx, netReq("demo"))
			if err != nil {
				t.Fatal(err)
			}
			cfg := labConfig(srv)
			if c.cfg != nil {
				c.cfg(&cfg, srv)
			}
			cloud, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			req := instReq(t, "demo", "demo-lin-0", "lin", clouds.RoleWorker, "linux", n)
			if c.req != nil {
				c.req(&req)
			}
			if c.srv != nil {
				c.srv(srv)
			}
			srv.ResetCalls()
			_, err = cloud.EnsureInstance(ctx, req)
			var ce *clouds.Error
			if !errors.As(err, &ce) {
				t.Fatalf("EnsureInstance = %v; want a *clouds.Error", err)
			}
			if ce.Kind != c.kind || ce.Code != c.code || !strings.Contains(ce.Fix, c.fixHas) {
				t.Errorf("error = kind %s, code %q, fix %q\n%v\nwant kind %s, code %q, fix containing %q", ce.Kind, ce.Code, ce.Fix, err, c.kind, c.code, c.fixHas)
			}
			if c.kind == clouds.KindInvalid && srv.MutatingCalls() != 0 {
				t.Errorf("an invalid request reached Azure: %v", srv.Calls())
			}
		})
	}
}

func TestThrottlingAndFaultsAreRetried(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	// 429 with ARM's Retry-After (one second): the SDK waits it out.
	f.srv.Inject("virtualMachines.Get", 1, arm.ErrThrottled)
	f.srv.Inject("networkInterfaces.Put", 1, arm.ErrInternal)
	f.srv.Inject("operations.Get", 2, arm.ErrUnavailable)
	f.srv.Drop("networkInterfaces.Get", 1, false)
	start := time.Now()
	if _, err := f.cloud.EnsureInstance(ctx, instReq(t, "demo", "demo-lin-0", "lin", clouds.RoleWorker, "linux", n)); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("the 429's Retry-After of 1s was not honoured (done after %v)", waited)
	}
	if c := f.srv.Calls(); c["virtualMachines.Get"] < 2 || c["networkInterfaces.Put"] < 2 || c["networkInterfaces.Get"] < 2 {
		t.Errorf("calls %v; want the throttled, failed and dropped calls retried", c)
	}
}

func TestInstancesPage(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{PageSize: 3, OperationDelay: time.Millisecond}, nil)
	ctx := context.Background()
	n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := f.cloud.EnsureInstance(ctx, instReq(t, "demo", fmt.Sprintf("demo-lin-%d", i), "lin", clouds.RoleWorker, "linux", n)); err != nil {
			t.Fatal(err)
		}
	}
	f.srv.ResetCalls()
	list, err := f.cloud.Instances(ctx, "demo")
	if err != nil || len(list) != 7 {
		t.Fatalf("Instances = %d, %v; want 7", len(list), err)
	}
	for _, in := range list {
		if in.PrivateIP == "" {
			t.Errorf("%s has no address", in.Name)
		}
	}
	if c := f.srv.Calls(); c["virtualMachines.List"] != 3 || c["networkInterfaces.List"] != 3 {
		t.Errorf("calls %v; want 3 pages of VMs and of NICs", c)
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{PageSize: 2}, nil)
	ctx := context.Background()
	if _, ok, err := f.cloud.Secret(ctx, "demo", "seed"); ok || err != nil {
		t.Fatalf("Secret before any = %v, %v", ok, err)
	}
	// Racing writers, in this process and in another, agree on one value.
	other, err := New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([][]byte, 6)
	for i := range got {
		wg.Go(func() {
			c := f.cloud
			if i%2 == 1 {
				c = other
			}
			v, err := c.EnsureSecret(ctx, "demo", "seed", []byte{byte(i), 0xff})
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got[1:] {
		if string(v) != string(got[0]) {
			t.Fatalf("racing EnsureSecret returned %v; want one value", got)
		}
	}
	if v, err := f.cloud.EnsureSecret(ctx, "demo", "seed", []byte("later")); err != nil || string(v) != string(got[0]) {
		t.Errorf("EnsureSecret again = %q, %v; want the first value", v, err)
	}
	for _, name := range []clouds.SecretName{"ca", "node/demo-win-0/winrm", "init-token"} {
		if _, err := f.cloud.EnsureSecret(ctx, "demo", name, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.cloud.EnsureSecret(ctx, "other", "seed", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := f.cloud.Secret(ctx, "demo", "node/demo-win-0/winrm"); !ok || err != nil || string(v) != "node/demo-win-0/winrm" {
		t.Errorf("Secret = %q, %v, %v", v, ok, err)
	}
	if err := f.cloud.DeleteSecrets(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	live, deleted := f.srv.Secrets()
	if len(live) != 1 || live[0] != secretName("other", "seed") || len(deleted) != 0 {
		t.Errorf("after DeleteSecrets: live %v, soft-deleted %v; want only the other cluster's", live, deleted)
	}
	// A destroyed cluster's name can be used again at once.
	if v, err := f.cloud.EnsureSecret(ctx, "demo", "seed", []byte("new")); err != nil || string(v) != "new" {
		t.Errorf("EnsureSecret after destroy = %q, %v", v, err)
	}
}

func TestSecretNames(t *testing.T) {
	a, b := secretName("demo", "node/x/winrm"), secretName("demo", "node-x-winrm")
	if a == b || !strings.HasPrefix(a, "mixedk8s-demo--node-x-winrm-") {
		t.Errorf("names %q and %q", a, b)
	}
	long := secretName(strings.Repeat("c", 20), "node/"+strings.Repeat("n", 200)+"/winrm")
	if len(long) > 127 {
		t.Errorf("name of %d characters", len(long))
	}
}

func TestNestedVirtualizationNeedsTrustedLaunchSizes(t *testing.T) {
	for size, want := range map[string]bool{"Standard_D4s_v5": true, "Standard_E8ds_v5": true, "Standard_D4s_v6": true,
		"Standard_D4s_v3": false, "Standard_B2s": false, "Standard_F4s_v2": false, "Standard_D4ps_v5": false} {
		if got := Profile.Nested(size); got != want {
			t.Errorf("Profile.Nested(%s) = %v, want %v", size, got, want)
		}
	}
}

// BenchmarkObserve reports the ARM calls one Observe makes (Instances,
// FindNetwork and FindLoadBalancer with three VMs in its pool): they must
// not grow with the number of VMs.
func BenchmarkObserve(b *testing.B) {
	for _, vms := range []int{20, 200} {
		b.Run(fmt.Sprintf("vms=%d", vms), func(b *testing.B) {
			f := setup(b, arm.Options{OperationDelay: time.Millisecond}, func(c *Config) { c.PollFrequency = time.Millisecond })
			ctx := context.Background()
			n, err := f.cloud.EnsureNetwork(ctx, netReq("demo"))
			if err != nil {
				b.Fatal(err)
			}
			id := identity(b, false)
			var cps []clouds.Instance
			for i := range vms {
				r := instReq(b, "demo", fmt.Sprintf("demo-lin-%d", i), "lin", clouds.RoleWorker, "linux", n)
				r.Identity = id
				in, err := f.cloud.EnsureInstance(ctx, r)
				if err != nil {
					b.Fatal(err)
				}
				if i < 3 {
					cps = append(cps, in)
				}
			}
			lb, err := f.cloud.EnsureLoadBalancer(ctx, clouds.LoadBalancerRequest{Cluster: "demo", Internal: true, Port: 6443, Network: n})
			if err != nil {
				b.Fatal(err)
			}
			if err := f.cloud.SetLoadBalancerTargets(ctx, lb, cps); err != nil {
				b.Fatal(err)
			}
			f.srv.ResetCalls()
			b.ResetTimer()
			for b.Loop() {
				list, err := f.cloud.Instances(ctx, "demo")
				if err != nil || len(list) != vms {
					b.Fatalf("Instances = %d, %v", len(list), err)
				}
				if _, ok, err := f.cloud.FindNetwork(ctx, "demo"); !ok || err != nil {
					b.Fatal(ok, err)
				}
				if found, ok, err := f.cloud.FindLoadBalancer(ctx, "demo"); !ok || err != nil || len(found.Targets) != 3 {
					b.Fatal(found, ok, err)
				}
			}
			b.StopTimer()
			total := 0
			for op, k := range f.srv.Calls() {
				if !strings.HasPrefix(op, "login.") {
					total += k
				}
			}
			b.ReportMetric(float64(total)/float64(b.N), "arm-calls/observe")
		})
	}
}

// A pod network's node port (Calico's Typha) added to a running cluster
// opens on both roles' NSGs, from the node CIDR only, and converges.
func TestNodeTCPPortsOpenBetweenNodes(t *testing.T) {
	t.Parallel()
	f := setup(t, arm.Options{}, nil)
	ctx := context.Background()
	if _, err := f.cloud.EnsureNetwork(ctx, netReq("demo")); err != nil {
		t.Fatal(err)
	}
	req := netReq("demo")
	req.NodeTCPPorts = []int{5473}
	if _, err := f.cloud.EnsureNetwork(ctx, req); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{clouds.RoleControlPlane, clouds.RoleWorker} {
		g, err := f.cloud.nsgs.Get(ctx, f.cfg.ResourceGroup, nsgName("demo", role), nil)
		if err != nil {
			t.Fatal(err)
		}
		var opened []string
		for _, r := range g.Properties.SecurityRules {
			if val(r.Properties.DestinationPortRange) == "5473" {
				opened = append(opened, string(*r.Properties.Protocol)+" from "+val(r.Properties.SourceAddressPrefix))
			}
		}
		if !slices.Equal(opened, []string{"Tcp from 10.20.0.0/16"}) {
			t.Errorf("NSG of role %s opens 5473 %v, want [Tcp from 10.20.0.0/16]", role, opened)
		}
	}
	f.srv.ResetCalls()
	if _, err := f.cloud.EnsureNetwork(ctx, req); err != nil || f.srv.MutatingCalls() != 0 {
		t.Errorf("rerun: %v, %d mutating calls %v; want none", err, f.srv.MutatingCalls(), f.srv.Calls())
	}
}
