package controlplane_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// TestStart runs the control plane on the PKI and kubeadm configuration the
// agent leaves in the init node's sandbox, and checks what a joining node
// relies on: /readyz, the admin kubeconfig through RBAC, the serving
// certificate, the bootstrap token Secret, the TLS-bootstrap RBAC and
// cluster-info.
func TestStart(t *testing.T) {
	cptest.Bins(t, controlplane.Binaries...)
	cl := cptest.Sandbox(t)
	began := time.Now()
	cp := cptest.Start(t, cl)
	t.Logf("control plane ready in %s at %s", time.Since(began).Round(100*time.Millisecond), cp.Endpoint())
	for _, p := range cp.Processes() {
		rss, err := p.RSS()
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("RSS %s: %d MiB", p.Name, rss>>20)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	checkLoopback(t, cp)
	if !strings.HasPrefix(cp.Endpoint(), "127.0.0.1:") {
		t.Errorf("Endpoint() = %s, want 127.0.0.1:PORT", cp.Endpoint())
	}
	if string(cp.CACertPEM()) != cl.Config.Init.CACertPEM {
		t.Error("CACertPEM() is not the provisioner's CA the agent wrote")
	}

	get := func(path string) []byte {
		t.Helper()
		code, body, err := cp.Do(ctx, http.MethodGet, path, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s as admin: HTTP %d %v: %s", path, code, err, body)
		}
		return body
	}
	if got := string(get("/readyz")); got != "ok" {
		t.Errorf("/readyz = %q, want ok", got)
	}
	var nodes struct {
		Kind  string `json:"kind"`
		Items []any  `json:"items"`
	}
	if err := json.Unmarshal(get("/api/v1/nodes"), &nodes); err != nil || nodes.Kind != "NodeList" {
		t.Errorf("GET /api/v1/nodes: kind %q, %v", nodes.Kind, err)
	}

	// The admin kubeconfig is kubeadm's: group kubeadm:cluster-admins, not system:masters.
	kc := string(cp.AdminKubeconfig())
	if !strings.Contains(kc, "server: https://"+cp.Endpoint()) {
		t.Errorf("admin kubeconfig does not name https://%s:\n%s", cp.Endpoint(), kc)
	}
	adminCert := readCert(t, filepath.Join(cl.Root, "etc/kubernetes/pki/apiserver.crt"))
	// The serving certificate is in the sandbox, signed by the CA, with the node's names and 127.0.0.1.
	pool, err := cp.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "10.0.1.4", "10.96.0.1", "api.demo.example.com", "demo-cp-0", "kubernetes.default.svc.cluster.local"} {
		if _, err := adminCert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("apiserver.crt in the sandbox does not verify for %s: %v", name, err)
		}
	}
	for _, f := range []string{"sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-client.crt", "apiserver-kubelet-client.crt", "apiserver-etcd-client.crt", "etcd/ca.crt", "etcd/server.crt", "etcd/peer.crt"} {
		if _, err := os.Stat(filepath.Join(cl.Root, "etc/kubernetes/pki", f)); err != nil {
			t.Errorf("kubeadm did not write %s into the sandbox: %v", f, err)
		}
	}

	var secret struct {
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
	}
	id, _, _ := strings.Cut(cptest.Token, ".")
	if err := json.Unmarshal(get("/api/v1/namespaces/kube-system/secrets/bootstrap-token-"+id), &secret); err != nil {
		t.Fatal(err)
	}
	if secret.Type != "bootstrap.kubernetes.io/token" {
		t.Errorf("bootstrap token secret type %q", secret.Type)
	}
	for _, k := range []string{"usage-bootstrap-authentication", "usage-bootstrap-signing", "auth-extra-groups", "expiration"} {
		if _, ok := secret.Data[k]; !ok {
			t.Errorf("bootstrap token secret lacks %s", k)
		}
	}

	// Each binding kubeadm's bootstrap-token phase (and, for cluster-admins,
	// Start) creates: its ClusterRole and the group it is for.
	want := map[string][2]string{
		"kubeadm:kubelet-bootstrap":                     {"system:node-bootstrapper", "system:bootstrappers:kubeadm:default-node-token"},
		"kubeadm:node-autoapprove-bootstrap":            {"system:certificates.k8s.io:certificatesigningrequests:nodeclient", "system:bootstrappers:kubeadm:default-node-token"},
		"kubeadm:node-autoapprove-certificate-rotation": {"system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"},
		"kubeadm:get-nodes":                             {"kubeadm:get-nodes", "system:bootstrappers:kubeadm:default-node-token"},
		"kubeadm:cluster-admins":                        {"cluster-admin", "kubeadm:cluster-admins"},
	}
	for name, w := range want {
		var crb struct {
			RoleRef struct {
				Name string `json:"name"`
			} `json:"roleRef"`
			Subjects []struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"subjects"`
		}
		if err := json.Unmarshal(get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"+name), &crb); err != nil || crb.RoleRef.Name != w[0] {
			t.Errorf("ClusterRoleBinding %s binds %q (%v), want %s", name, crb.RoleRef.Name, err, w[0])
		}
		if len(crb.Subjects) != 1 || crb.Subjects[0].Kind != "Group" || crb.Subjects[0].Name != w[1] {
			t.Errorf("ClusterRoleBinding %s is for %+v, want group %s", name, crb.Subjects, w[1])
		}
	}

	// The bootstrapsigner controller signs cluster-info for each token once
	// its informers have synced, a few seconds after the lease.
	var ci struct {
		Data map[string]string `json:"data"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := json.Unmarshal(get("/api/v1/namespaces/kube-public/configmaps/cluster-info"), &ci); err != nil {
			t.Fatal(err)
		}
		if _, ok := ci.Data["jws-kubeconfig-"+id]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster-info has no JWS signature for token %s after 20s: is kube-controller-manager's bootstrapsigner running? Its log: %s", id, cp.Processes()[2].Log)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("cluster-info signed %s after start", time.Since(began).Round(100*time.Millisecond))
	if !strings.Contains(ci.Data["kubeconfig"], "server: https://"+cp.Endpoint()) {
		t.Errorf("cluster-info does not name the API server:\n%s", ci.Data["kubeconfig"])
	}
}

// TestStartErrors checks that a missing CA is reported before any process starts.
func TestStartErrors(t *testing.T) {
	bins := cptest.Bins(t, controlplane.Binaries...)
	cl := cptest.Sandbox(t)
	if err := os.Remove(filepath.Join(cl.Root, "etc/kubernetes/pki/ca.key")); err != nil {
		t.Fatal(err)
	}
	_, err := controlplane.Start(context.Background(), controlplane.Config{SandboxRoot: cl.Root, KubeadmConfig: cl.KubeadmConfig, WorkDir: t.TempDir(), BinDir: bins})
	if err == nil || !strings.Contains(err.Error(), "ca.key") || !strings.Contains(err.Error(), "fix:") {
		t.Errorf("Start without ca.key: %v, want an error naming ca.key and the fix", err)
	}
	_, err = controlplane.Start(context.Background(), controlplane.Config{SandboxRoot: cl.Root, KubeadmConfig: []byte("kind: KubeletConfiguration\n"), WorkDir: t.TempDir(), BinDir: bins})
	if err == nil || !strings.Contains(err.Error(), "InitConfiguration") {
		t.Errorf("Start with a config without InitConfiguration: %v", err)
	}
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s is not PEM", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkLoopback fails t when a process listens or is connected off 127.0.0.0/8.
func checkLoopback(t *testing.T, cp *controlplane.ControlPlane) {
	t.Helper()
	for _, p := range cp.Processes() {
		socks, err := p.Sockets()
		if err != nil {
			t.Error(err)
			continue
		}
		if off := proc.OffLoopback(socks); len(off) > 0 {
			t.Errorf("%s has sockets off 127.0.0.1: %+v", p.Name, off)
		}
	}
}

// TestStartAfterACutStart starts where a cut start stopped: kubeadm killed
// between writing a key and its certificate, a truncated key, and etcd
// data of the first try. Start runs only where no control plane runs, so
// all of that is a leftover, and the agent's re-run must bring one up.
func TestStartAfterACutStart(t *testing.T) {
	bins := cptest.Bins(t, controlplane.Binaries...)
	cl := cptest.Sandbox(t)
	pki := filepath.Join(cl.Root, "etc/kubernetes/pki")
	work := t.TempDir()
	for file, data := range map[string]string{
		filepath.Join(pki, "apiserver.key"):               "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI",
		filepath.Join(pki, "front-proxy-client.crt"):      "",
		filepath.Join(work, "etcd", "member", "wal", "x"): "cut",
	} {
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{SandboxRoot: cl.Root, KubeadmConfig: cl.KubeadmConfig, WorkDir: work, BinDir: bins})
	if err != nil {
		t.Fatalf("Start after a cut start: %v", err)
	}
	defer cp.Close()
	if string(cp.CACertPEM()) != cl.Config.Init.CACertPEM {
		t.Error("the restarted control plane does not run on the provisioner's CA")
	}
	if code, body, err := cp.Do(ctx, http.MethodGet, "/readyz", nil); err != nil || code != http.StatusOK {
		t.Errorf("GET /readyz: HTTP %d %v: %s", code, err, body)
	}
}
