package controlplane

import (
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestRewrite checks the configuration kubeadm runs on: the agent's, with
// the sandbox's certificate folder, 127.0.0.1 as endpoint and SAN, and the
// node's own addresses kept.
func TestRewrite(t *testing.T) {
	data, err := os.ReadFile("../../../nodeagent/kubeadm/testdata/init.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := parseKubeadmConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 4 || docs.certificatesDir() != "/etc/kubernetes/pki" {
		t.Fatalf("parsed %d documents, certificatesDir %q", len(docs), docs.certificatesDir())
	}
	out, err := docs.rewrite("/sandbox/etc/kubernetes/pki", "127.0.0.1:41234")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseKubeadmConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	cc := got.kind("ClusterConfiguration")
	if cc["certificatesDir"] != "/sandbox/etc/kubernetes/pki" || cc["controlPlaneEndpoint"] != "127.0.0.1:41234" {
		t.Errorf("ClusterConfiguration: certificatesDir %v, controlPlaneEndpoint %v", cc["certificatesDir"], cc["controlPlaneEndpoint"])
	}
	sans, _ := cc["apiServer"].(map[string]any)["certSANs"].([]any)
	for _, want := range []string{"10.0.0.10", "api.demo.example.com", "127.0.0.1"} {
		if !slices.Contains(sans, any(want)) {
			t.Errorf("certSANs %v lack %s", sans, want)
		}
	}
	if len(sans) != 3 {
		t.Errorf("certSANs %v: the endpoint host was added twice", sans)
	}
	if ep := got.kind("InitConfiguration")["localAPIEndpoint"].(map[string]any); ep["advertiseAddress"] != "10.0.1.4" {
		t.Errorf("localAPIEndpoint changed: %v", ep)
	}
	if docs.kind("ClusterConfiguration")["controlPlaneEndpoint"] != "10.0.0.10:6443" {
		t.Error("rewrite changed its receiver")
	}
	if got.kind("KubeletConfiguration") == nil || got.kind("KubeProxyConfiguration") == nil {
		t.Error("rewrite dropped the kubelet or kube-proxy document")
	}
}

func TestWithFlags(t *testing.T) {
	got := withFlags([]string{"etcd", "--name=cp-0", "--data-dir=/var/lib/etcd", "--listen-metrics-urls=http://127.0.0.1:2381"},
		map[string]string{"data-dir": "/work/etcd", "listen-metrics-urls": "", "unsafe-no-fsync": "true"})
	want := []string{"--data-dir=/work/etcd", "--name=cp-0", "--unsafe-no-fsync=true"}
	if !slices.Equal(got, want) {
		t.Errorf("withFlags = %v, want %v", got, want)
	}
}

func TestSetServer(t *testing.T) {
	data, err := os.ReadFile("../../../nodeagent/kubeadm/testdata/bootstrap-kubeconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := SetServer(data, "https://127.0.0.1:41234")
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		Clusters []struct {
			Cluster map[string]string `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User map[string]string `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(out, &kc); err != nil {
		t.Fatal(err)
	}
	if kc.Clusters[0].Cluster["server"] != "https://127.0.0.1:41234" || !strings.HasPrefix(kc.Clusters[0].Cluster["certificate-authority-data"], "LS0t") || kc.Users[0].User["token"] == "" {
		t.Errorf("SetServer lost or missed a field:\n%s", out)
	}
	if _, err := SetServer([]byte("kind: Config\n"), "https://x"); err == nil {
		t.Error("SetServer accepted a kubeconfig without clusters")
	}
}

// TestJoinNeedsAStableEndpoint: kubeadm refuses a control-plane join to a
// cluster made without a controlPlaneEndpoint (kubernetes/cmd/kubeadm/app/
// cmd/phases/join/preflight.go, checkIfReadyForAdditionalControlPlane).
func TestJoinNeedsAStableEndpoint(t *testing.T) {
	data, err := os.ReadFile("../../../nodeagent/kubeadm/testdata/init.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := parseKubeadmConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	delete(docs.kind("ClusterConfiguration"), "controlPlaneEndpoint")
	c := &ControlPlane{docs: docs}
	join := []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\nnodeRegistration:\n  name: demo-cp-1\n" +
		"controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.0.1.5\n  certificateKey: " + strings.Repeat("ab", 32) + "\n" +
		"discovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    apiServerEndpoint: 10.0.1.4:6443\n")
	_, err = c.Join(t.Context(), JoinConfig{SandboxRoot: t.TempDir(), KubeadmConfig: join, WorkDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "doesn't have a stable controlPlaneEndpoint address") {
		t.Fatalf("Join = %v, want kubeadm's refusal for a cluster without controlPlaneEndpoint", err)
	}
}
