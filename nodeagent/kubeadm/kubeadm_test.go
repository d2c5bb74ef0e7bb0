package kubeadm

import (
	"bytes"
	_ "embed"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

var update = flag.Bool("update", false, "rewrite testdata/*.yaml from the renderers")

// testCA is a test-only CA certificate (its key was thrown away);
// testCAHash is the SHA-256 of its SubjectPublicKeyInfo.
//
//go:embed testdata/ca.crt
var testCA string

const (
	testCAHash   = "sha256:e5ddf1cf7094e8d3d0e2ac3d9449837b9c0353a6e87a185bc2cfc6b714698d2e"
	testToken    = "q8x2lk.v1d9m3p0zt7w4hcn"
	testCertKey  = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
	otherCAHash  = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	testEndpoint = "10.0.0.10:6443"
)

// fixture returns a valid Config for role on os.
func fixture(role contract.Role, os string) contract.Config {
	cfg := contract.Config{
		APIVersion: contract.APIVersion,
		Node: contract.Node{
			Name:      "cp-0",
			Role:      role,
			OS:        os,
			Pool:      "system",
			PrivateIP: "10.0.1.4",
			Labels: map[string]string{
				"mixedk8s.io/pool":                "system",
				"mixedk8s.io/cluster":             "demo",
				"node.kubernetes.io/exclude-from": "",
				"topology.kubernetes.io/zone":     "zone-a",
			},
		},
		Cluster: contract.Cluster{
			Name:              "demo",
			KubernetesVersion: "1.36.3",
			APIEndpoint:       testEndpoint,
			CNI:               "calico",
			NodeCIDR:          "10.0.0.0/16",
			PodCIDR:           "10.244.0.0/16",
			ServiceCIDR:       "10.96.0.0/12",
		},
	}
	switch role {
	case contract.RoleInit:
		cfg.Init = &contract.Init{
			CACertPEM:      testCA,
			CAKeyPEM:       "unused by the renderers",
			BootstrapToken: testToken,
			CertificateKey: testCertKey,
			APIServerSANs:  []string{"api.demo.example.com", "10.0.0.10", "api.demo.example.com"},
		}
	case contract.RoleControlPlane:
		cfg.Node.Name = "cp-1"
		cfg.Node.PrivateIP = "10.0.1.5"
		cfg.Join = &contract.Join{BootstrapToken: testToken, CACertHashes: []string{testCAHash}, CertificateKey: testCertKey}
	case contract.RoleWorker:
		cfg.Node.Name = "lin-0"
		cfg.Node.Pool = "linux"
		cfg.Node.PrivateIP = "10.0.2.4"
		cfg.Node.Taints = []string{"dedicated=batch:NoSchedule", "spot:PreferNoSchedule"}
		cfg.Join = &contract.Join{BootstrapToken: testToken, CACertHashes: []string{testCAHash}}
		if os == "windows" {
			cfg.Node.Name = "win-0"
			cfg.Node.Pool = "windows"
			cfg.Node.WindowsVersion = "2022"
			cfg.Node.Isolation = "process"
			cfg.Node.PrivateIP = "10.0.3.4"
			cfg.Node.Taints = []string{"os=windows:NoSchedule"}
			cfg.Join.CACertPEM = testCA
		}
	}
	return cfg
}

type renderCase struct {
	name   string
	render func() ([]byte, error)
}

func renderCases() []renderCase {
	return []renderCase{
		{"init", func() ([]byte, error) { return InitConfig(fixture(contract.RoleInit, "linux")) }},
		{"join-control-plane", func() ([]byte, error) { return JoinConfig(fixture(contract.RoleControlPlane, "linux")) }},
		{"join-worker", func() ([]byte, error) { return JoinConfig(fixture(contract.RoleWorker, "linux")) }},
		{"windows-kubelet", func() ([]byte, error) { return WindowsKubeletConfig(fixture(contract.RoleWorker, "windows")) }},
		{"windows-kube-proxy-overlay", func() ([]byte, error) {
			return WindowsKubeProxyConfig(fixture(contract.RoleWorker, "windows"), "flannel.4096", "10.244.3.2")
		}},
		{"windows-kube-proxy-l2bridge", func() ([]byte, error) {
			return WindowsKubeProxyConfig(fixture(contract.RoleWorker, "windows"), "Calico", "")
		}},
		{"bootstrap-kubeconfig", func() ([]byte, error) { return BootstrapKubeconfig(fixture(contract.RoleWorker, "windows")) }},
	}
}

// TestGolden pins every renderer's output byte for byte (run with -update
// after an intended change and review the diff) and checks that rendering is
// deterministic.
func TestGolden(t *testing.T) {
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.render()
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			for range 20 { // map order is random per iteration: catch unsorted output
				again, err := c.render()
				if err != nil || !bytes.Equal(got, again) {
					t.Fatalf("second render differs (err %v):\n%s\n---- vs ----\n%s", err, got, again)
				}
			}
			path := filepath.Join("testdata", c.name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file: %v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// docs splits rendered YAML into documents keyed by kind.
func docs(t *testing.T, b []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for part := range strings.SplitSeq(string(b), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(part), &m); err != nil {
			t.Fatalf("unmarshal %q: %v", part, err)
		}
		kind, _ := m["kind"].(string)
		if _, dup := out[kind]; dup || kind == "" {
			t.Fatalf("document kind %q missing or repeated in:\n%s", kind, b)
		}
		out[kind] = m
	}
	return out
}

// get walks a path of map keys and list indexes.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: %v is not a map", k, v)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("key %q missing in %v", k, m)
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at [%d]: %v is not a list that long", k, v)
			}
			v = l[k]
		}
	}
	return v
}

func eq(t *testing.T, got, want any, what string) {
	t.Helper()
	if g, w := yamlString(t, got), yamlString(t, want); g != w {
		t.Errorf("%s = %s, want %s", what, g, w)
	}
}

func yamlString(t *testing.T, v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestInitConfigFields(t *testing.T) {
	cfg := fixture(contract.RoleInit, "linux")
	b, err := InitConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := docs(t, b)
	if len(d) != 4 {
		t.Fatalf("got %d documents, want 4", len(d))
	}
	in, cl, kl, kp := d["InitConfiguration"], d["ClusterConfiguration"], d["KubeletConfiguration"], d["KubeProxyConfiguration"]
	eq(t, in["apiVersion"], "kubeadm.k8s.io/v1beta4", "InitConfiguration apiVersion")
	eq(t, get(t, in, "bootstrapTokens", 0, "token"), testToken, "bootstrap token")
	eq(t, get(t, in, "bootstrapTokens", 0, "ttl"), "1h0m0s", "default token TTL")
	eq(t, get(t, in, "nodeRegistration", "name"), "cp-0", "node name")
	eq(t, get(t, in, "nodeRegistration", "criSocket"), "unix:///run/containerd/containerd.sock", "criSocket")
	eq(t, get(t, in, "nodeRegistration", "taints"), []any{map[string]any{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}}, "taints")
	eq(t, get(t, in, "nodeRegistration", "kubeletExtraArgs"), []any{
		map[string]any{"name": "node-ip", "value": "10.0.1.4"},
		map[string]any{"name": "node-labels", "value": "mixedk8s.io/cluster=demo,mixedk8s.io/pool=system,node.kubernetes.io/exclude-from=,topology.kubernetes.io/zone=zone-a"},
	}, "kubeletExtraArgs")
	eq(t, get(t, in, "localAPIEndpoint"), map[string]any{"advertiseAddress": "10.0.1.4", "bindPort": 6443}, "localAPIEndpoint")
	eq(t, in["certificateKey"], testCertKey, "certificateKey")

	eq(t, cl["kubernetesVersion"], "v1.36.3", "kubernetesVersion")
	eq(t, cl["controlPlaneEndpoint"], testEndpoint, "controlPlaneEndpoint")
	eq(t, cl["clusterName"], "demo", "clusterName")
	eq(t, cl["networking"], map[string]any{"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"}, "networking")
	eq(t, get(t, cl, "apiServer", "certSANs"), []any{"10.0.0.10", "api.demo.example.com"}, "certSANs (sorted, deduplicated)")

	eq(t, kl["apiVersion"], "kubelet.config.k8s.io/v1beta1", "KubeletConfiguration apiVersion")
	eq(t, kl["cgroupDriver"], "systemd", "cgroupDriver")
	eq(t, kl["clusterDNS"], []any{"10.96.0.10"}, "clusterDNS")
	eq(t, kl["containerRuntimeEndpoint"], LinuxCRISocket, "containerRuntimeEndpoint")
	eq(t, get(t, kl, "authentication", "anonymous", "enabled"), false, "anonymous auth")
	eq(t, get(t, kl, "authorization", "mode"), "Webhook", "authorization mode")
	eq(t, kp["apiVersion"], "kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration apiVersion")
	eq(t, kp["clusterCIDR"], "10.244.0.0/16", "clusterCIDR")
	for _, k := range []string{"cgroupsPerQOS", "enforceNodeAllocatable", "resolvConf"} {
		if _, ok := kl[k]; ok {
			t.Errorf("Linux KubeletConfiguration sets %s; only Windows nodes need it", k)
		}
	}

	// A custom TTL, an API endpoint on this node itself (its port is the bind
	// port), a custom DNS domain, and an explicit control-plane taint.
	cfg.Init.BootstrapTokenTTL = "15m"
	cfg.Cluster.APIEndpoint = "10.0.1.4:8443"
	cfg.Cluster.DNSDomain = "corp.internal"
	cfg.Node.Taints = []string{"node-role.kubernetes.io/control-plane:NoExecute"}
	cfg.Init.CertificateKey = ""
	b, err = InitConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d = docs(t, b)
	eq(t, get(t, d["InitConfiguration"], "bootstrapTokens", 0, "ttl"), "15m0s", "custom token TTL")
	eq(t, get(t, d["InitConfiguration"], "localAPIEndpoint", "bindPort"), 8443, "bindPort from the endpoint on this node")
	eq(t, get(t, d["ClusterConfiguration"], "networking", "dnsDomain"), "corp.internal", "dnsDomain")
	eq(t, get(t, d["KubeletConfiguration"], "clusterDomain"), "corp.internal", "clusterDomain")
	eq(t, get(t, d["InitConfiguration"], "nodeRegistration", "taints"), []any{map[string]any{"key": "node-role.kubernetes.io/control-plane", "effect": "NoExecute"}}, "explicit control-plane taint")
	if _, ok := d["InitConfiguration"]["certificateKey"]; ok {
		t.Error("certificateKey written although init.certificateKey is empty")
	}
}

func TestJoinConfigFields(t *testing.T) {
	b, err := JoinConfig(fixture(contract.RoleWorker, "linux"))
	if err != nil {
		t.Fatal(err)
	}
	d := docs(t, b)
	if len(d) != 1 {
		t.Fatalf("got %d documents, want only JoinConfiguration (kubeadm join ignores others)", len(d))
	}
	j := d["JoinConfiguration"]
	eq(t, j["apiVersion"], "kubeadm.k8s.io/v1beta4", "apiVersion")
	eq(t, get(t, j, "discovery", "bootstrapToken"), map[string]any{
		"token": testToken, "apiServerEndpoint": testEndpoint, "caCertHashes": []any{testCAHash},
	}, "discovery")
	eq(t, get(t, j, "nodeRegistration", "taints"), []any{
		map[string]any{"key": "dedicated", "value": "batch", "effect": "NoSchedule"},
		map[string]any{"key": "spot", "effect": "PreferNoSchedule"},
	}, "worker taints")
	if _, ok := j["controlPlane"]; ok {
		t.Error("worker JoinConfiguration has a controlPlane section")
	}

	b, err = JoinConfig(fixture(contract.RoleControlPlane, "linux"))
	if err != nil {
		t.Fatal(err)
	}
	j = docs(t, b)["JoinConfiguration"]
	eq(t, j["controlPlane"], map[string]any{
		"certificateKey":   testCertKey,
		"localAPIEndpoint": map[string]any{"advertiseAddress": "10.0.1.5", "bindPort": 6443},
	}, "controlPlane")
	eq(t, get(t, j, "nodeRegistration", "taints", 0, "key"), "node-role.kubernetes.io/control-plane", "control-plane taint")

	// A worker without taints writes taints: [] (kubeadm adds none).
	cfg := fixture(contract.RoleWorker, "linux")
	cfg.Node.Taints = nil
	cfg.Node.PrivateIP = ""
	cfg.Node.Labels = nil
	cfg.Node.Pool = ""
	b, err = JoinConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j = docs(t, b)["JoinConfiguration"]
	eq(t, get(t, j, "nodeRegistration", "taints"), []any{}, "no taints")
	if _, ok := get(t, j, "nodeRegistration").(map[string]any)["kubeletExtraArgs"]; ok {
		t.Error("kubeletExtraArgs written without node IP and labels")
	}
}

func TestWindowsKubeletConfigFields(t *testing.T) {
	b, err := WindowsKubeletConfig(fixture(contract.RoleWorker, "windows"))
	if err != nil {
		t.Fatal(err)
	}
	k := docs(t, b)["KubeletConfiguration"]
	eq(t, k["cgroupsPerQOS"], false, "cgroupsPerQOS")
	eq(t, k["enforceNodeAllocatable"], []any{}, "enforceNodeAllocatable")
	eq(t, k["resolvConf"], "", "resolvConf")
	eq(t, k["containerRuntimeEndpoint"], "npipe:////./pipe/containerd-containerd", "containerRuntimeEndpoint")
	eq(t, k["clusterDNS"], []any{"10.96.0.10"}, "clusterDNS")
	eq(t, k["clusterDomain"], "cluster.local", "clusterDomain")
	eq(t, k["rotateCertificates"], true, "rotateCertificates")
	eq(t, k["serverTLSBootstrap"], false, "serverTLSBootstrap")
	eq(t, get(t, k, "authentication", "webhook", "enabled"), true, "webhook authentication")
	eq(t, get(t, k, "authentication", "x509", "clientCAFile"), `C:\k\pki\ca.crt`, "clientCAFile")
	eq(t, get(t, k, "authorization", "mode"), "Webhook", "authorization mode")
	eq(t, k["registerWithTaints"], []any{map[string]any{"key": "os", "value": "windows", "effect": "NoSchedule"}}, "registerWithTaints")
	if _, ok := k["cgroupDriver"]; ok {
		t.Error("Windows KubeletConfiguration sets cgroupDriver")
	}
}

func TestWindowsKubeProxyConfigFields(t *testing.T) {
	cfg := fixture(contract.RoleWorker, "windows")
	b, err := WindowsKubeProxyConfig(cfg, "flannel.4096", "10.244.3.2")
	if err != nil {
		t.Fatal(err)
	}
	p := docs(t, b)["KubeProxyConfiguration"]
	eq(t, p["mode"], "kernelspace", "mode")
	eq(t, p["clusterCIDR"], "10.244.0.0/16", "clusterCIDR")
	eq(t, p["hostnameOverride"], "win-0", "hostnameOverride")
	eq(t, p["windowsRunAsService"], true, "windowsRunAsService")
	eq(t, p["winkernel"], map[string]any{"networkName": "flannel.4096", "sourceVip": "10.244.3.2", "enableDSR": true}, "winkernel")
	eq(t, get(t, p, "clientConnection", "kubeconfig"), WindowsKubeletKubeconfig, "kubeconfig")

	b, err = WindowsKubeProxyConfig(cfg, "Calico", "")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, docs(t, b)["KubeProxyConfiguration"]["winkernel"], map[string]any{"networkName": "Calico", "enableDSR": true}, "l2bridge winkernel")

	cfg.Cluster.KubernetesVersion = "1.32.4"
	b, err = WindowsKubeProxyConfig(cfg, "Calico", "")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, get(t, docs(t, b)["KubeProxyConfiguration"], "winkernel", "enableDSR"), false, "enableDSR before 1.33")
}

func TestBootstrapKubeconfigFields(t *testing.T) {
	b, err := BootstrapKubeconfig(fixture(contract.RoleWorker, "windows"))
	if err != nil {
		t.Fatal(err)
	}
	var kc kubeconfig
	if err := yaml.UnmarshalStrict(b, &kc); err != nil {
		t.Fatalf("strict decode: %v", err)
	}
	if kc.Kind != "Config" || kc.APIVersion != "v1" {
		t.Errorf("kind/apiVersion = %s/%s, want Config/v1", kc.Kind, kc.APIVersion)
	}
	if len(kc.Clusters) != 1 || kc.Clusters[0].Cluster.Server != "https://10.0.0.10:6443" {
		t.Fatalf("clusters = %+v, want one with server https://10.0.0.10:6443", kc.Clusters)
	}
	if kc.Clusters[0].Cluster.CertificateAuthorityData == "" || !strings.Contains(string(b), "certificate-authority-data: LS0tLS1CRUdJTi") {
		t.Errorf("certificate-authority-data is not the base64 PEM CA:\n%s", b)
	}
	if len(kc.Users) != 1 || kc.Users[0].User.Token != testToken {
		t.Errorf("users = %+v, want the bootstrap token", kc.Users)
	}
	if len(kc.Contexts) != 1 || kc.CurrentContext != kc.Contexts[0].Name ||
		kc.Contexts[0].Context.Cluster != kc.Clusters[0].Name || kc.Contexts[0].Context.User != kc.Users[0].Name {
		t.Errorf("contexts do not tie the cluster and the user together: %+v, current %q", kc.Contexts, kc.CurrentContext)
	}
}

func TestNodeLabels(t *testing.T) {
	for _, c := range []struct {
		labels  map[string]string
		want    string
		wantErr string
	}{
		{nil, "", ""},
		{map[string]string{"b": "2", "a": "1", "example.com/x": ""}, "a=1,b=2,example.com/x=", ""},
		{map[string]string{"node.kubernetes.io/pool": "x", "kubelet.kubernetes.io/a": "y", "kubernetes.io/os": "linux"}, "kubelet.kubernetes.io/a=y,kubernetes.io/os=linux,node.kubernetes.io/pool=x", ""},
		{map[string]string{"node-role.kubernetes.io/worker": ""}, "", `node.labels["node-role.kubernetes.io/worker"]: the kubelet may not set`},
		{map[string]string{"foo.k8s.io/x": "y"}, "", `node.labels["foo.k8s.io/x"]`},
		{map[string]string{"bad key": "y"}, "", `node.labels["bad key"] has an invalid key`},
		{map[string]string{"k": "bad,value"}, "", `node.labels["k"] has an invalid value`},
		{map[string]string{"k": strings.Repeat("v", 64)}, "", `has an invalid value`},
	} {
		cfg := fixture(contract.RoleWorker, "linux")
		cfg.Node.Labels = c.labels
		cfg.Node.Pool = ""
		got, err := NodeLabels(cfg)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "fix:") {
				t.Errorf("NodeLabels(%v) error = %v, want one containing %q and a fix", c.labels, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("NodeLabels(%v) = %q, %v; want %q", c.labels, got, err, c.want)
		}
	}
	// A node of a pool carries the pool's label, over a label of that key.
	cfg := fixture(contract.RoleWorker, "linux")
	cfg.Node.Pool = "gpu"
	cfg.Node.Labels = map[string]string{"a": "1", contract.LabelPool: "other"}
	if got, err := NodeLabels(cfg); err != nil || got != "a=1,mixedk8s.io/pool=gpu" {
		t.Errorf("NodeLabels of pool gpu = %q, %v", got, err)
	}
}

func TestErrors(t *testing.T) {
	type mut func(*contract.Config)
	initCfg := func(m mut) func() ([]byte, error) {
		return func() ([]byte, error) { c := fixture(contract.RoleInit, "linux"); m(&c); return InitConfig(c) }
	}
	joinCfg := func(role contract.Role, m mut) func() ([]byte, error) {
		return func() ([]byte, error) { c := fixture(role, "linux"); m(&c); return JoinConfig(c) }
	}
	winKubelet := func(m mut) func() ([]byte, error) {
		return func() ([]byte, error) {
			c := fixture(contract.RoleWorker, "windows")
			m(&c)
			return WindowsKubeletConfig(c)
		}
	}
	winProxy := func(network, vip string, m mut) func() ([]byte, error) {
		return func() ([]byte, error) {
			c := fixture(contract.RoleWorker, "windows")
			m(&c)
			return WindowsKubeProxyConfig(c, network, vip)
		}
	}
	kubecfg := func(m mut) func() ([]byte, error) {
		return func() ([]byte, error) {
			c := fixture(contract.RoleWorker, "windows")
			m(&c)
			return BootstrapKubeconfig(c)
		}
	}
	const badToken = "Q8X2LK.v1d9m3p0zt7w4hcX"
	for _, c := range []struct {
		name   string
		render func() ([]byte, error)
		want   string
	}{
		{"init without init", initCfg(func(c *contract.Config) { c.Init = nil }), "init is missing"},
		{"init empty token", initCfg(func(c *contract.Config) { c.Init.BootstrapToken = "" }), "init.bootstrapToken is empty"},
		{"init bad token", initCfg(func(c *contract.Config) { c.Init.BootstrapToken = badToken }), "init.bootstrapToken is not of the form"},
		{"init bad TTL", initCfg(func(c *contract.Config) { c.Init.BootstrapTokenTTL = "1 day" }), "init.bootstrapTokenTTL"},
		{"init bad certificate key", initCfg(func(c *contract.Config) { c.Init.CertificateKey = "abc" }), "init.certificateKey is not 32 bytes"},
		{"init bad SAN", initCfg(func(c *contract.Config) { c.Init.APIServerSANs = []string{"not a name"} }), "init.apiServerSANs[0]"},
		{"init worker role", initCfg(func(c *contract.Config) { c.Node.Role = contract.RoleWorker }), "node.role is \"worker\""},
		{"init on windows", initCfg(func(c *contract.Config) { c.Node.OS = "windows" }), "node.os is \"windows\""},
		{"init without private IP", initCfg(func(c *contract.Config) { c.Node.PrivateIP = "" }), "node.privateIP is empty"},
		{"bad private IP", initCfg(func(c *contract.Config) { c.Node.PrivateIP = "10.0.1" }), "node.privateIP \"10.0.1\""},
		{"empty name", initCfg(func(c *contract.Config) { c.Node.Name = "" }), "node.name is empty"},
		{"bad name", initCfg(func(c *contract.Config) { c.Node.Name = "CP_0" }), "node.name \"CP_0\""},
		{"bad os", initCfg(func(c *contract.Config) { c.Node.OS = "darwin" }), "node.os is \"darwin\""},
		{"contract version", initCfg(func(c *contract.Config) { c.APIVersion = "nodeagent.mixedk8s.io/v9" }), "apiVersion \"nodeagent.mixedk8s.io/v9\""},
		{"empty version", initCfg(func(c *contract.Config) { c.Cluster.KubernetesVersion = "" }), "cluster.kubernetesVersion is empty"},
		{"v-prefixed version", initCfg(func(c *contract.Config) { c.Cluster.KubernetesVersion = "v1.36.3" }), "without a leading \"v\""},
		{"empty endpoint", initCfg(func(c *contract.Config) { c.Cluster.APIEndpoint = "" }), "cluster.apiEndpoint is empty"},
		{"endpoint with scheme", initCfg(func(c *contract.Config) { c.Cluster.APIEndpoint = "https://10.0.0.10:6443" }), "cluster.apiEndpoint \"https://10.0.0.10:6443\" is not host:port"},
		{"endpoint without port", initCfg(func(c *contract.Config) { c.Cluster.APIEndpoint = "10.0.0.10" }), "is not host:port"},
		{"endpoint bad port", initCfg(func(c *contract.Config) { c.Cluster.APIEndpoint = "10.0.0.10:0" }), "has port \"0\""},
		{"empty pod CIDR", initCfg(func(c *contract.Config) { c.Cluster.PodCIDR = "" }), "cluster.podCIDR is empty"},
		{"bad service CIDR", initCfg(func(c *contract.Config) { c.Cluster.ServiceCIDR = "10.96.0.0" }), "cluster.serviceCIDR \"10.96.0.0\" is not a CIDR"},
		{"tiny service CIDR", initCfg(func(c *contract.Config) { c.Cluster.ServiceCIDR = "10.96.0.0/30" }), "too small"},
		{"bad DNS domain", initCfg(func(c *contract.Config) { c.Cluster.DNSDomain = "Cluster_Local" }), "cluster.dnsDomain"},
		{"bad taint effect", initCfg(func(c *contract.Config) { c.Node.Taints = []string{"a=b:Never"} }), "node.taints[0] \"a=b:Never\" has effect"},
		{"taint without effect", initCfg(func(c *contract.Config) { c.Node.Taints = []string{"a=b"} }), "node.taints[0] \"a=b\" has no effect"},
		{"bad taint key", initCfg(func(c *contract.Config) { c.Node.Taints = []string{"/x:NoSchedule"} }), "has an invalid key"},
		{"forbidden label", initCfg(func(c *contract.Config) {
			c.Node.Labels = map[string]string{"node-role.kubernetes.io/control-plane": ""}
		}), "the kubelet may not set"},

		{"join without join", joinCfg(contract.RoleWorker, func(c *contract.Config) { c.Join = nil }), "join is missing"},
		{"join empty token", joinCfg(contract.RoleWorker, func(c *contract.Config) { c.Join.BootstrapToken = "" }), "join.bootstrapToken is empty"},
		{"join bad token", joinCfg(contract.RoleWorker, func(c *contract.Config) { c.Join.BootstrapToken = badToken }), "join.bootstrapToken is not of the form"},
		{"join no CA hashes", joinCfg(contract.RoleWorker, func(c *contract.Config) { c.Join.CACertHashes = nil }), "join.caCertHashes is empty"},
		{"join bad CA hash", joinCfg(contract.RoleWorker, func(c *contract.Config) { c.Join.CACertHashes = []string{"sha1:abc"} }), "join.caCertHashes[0] \"sha1:abc\""},
		{"join init role", joinCfg(contract.RoleInit, func(c *contract.Config) {}), "fix: render InitConfig"},
		{"join windows", joinCfg(contract.RoleWorker, func(c *contract.Config) { c.Node.OS = "windows" }), "only Linux nodes join with kubeadm"},
		{"control-plane join without key", joinCfg(contract.RoleControlPlane, func(c *contract.Config) { c.Join.CertificateKey = "" }), "join.certificateKey is empty"},
		{"control-plane join bad key", joinCfg(contract.RoleControlPlane, func(c *contract.Config) { c.Join.CertificateKey = strings.Repeat("z", 64) }), "join.certificateKey is not 32 bytes"},
		{"control-plane join without IP", joinCfg(contract.RoleControlPlane, func(c *contract.Config) { c.Node.PrivateIP = "" }), "node.privateIP is empty"},

		{"windows kubelet on linux", winKubelet(func(c *contract.Config) { c.Node.OS = "linux" }), "this configuration is for Windows nodes"},
		{"windows control plane", winKubelet(func(c *contract.Config) { c.Node.Role = contract.RoleControlPlane }), "Windows nodes are workers only"},
		{"windows long name, no computer name", winKubelet(func(c *contract.Config) { c.Node.Name = "win-0123456789ab" }), "node.computerName \"win-0123456789ab\""},
		{"windows long computer name", winKubelet(func(c *contract.Config) { c.Node.ComputerName = "win-0123456789ab" }), "1-15 letters"},
		{"windows computer name with a dot", winKubelet(func(c *contract.Config) { c.Node.ComputerName = "win.1" }), "node.computerName"},
		{"windows kubelet no CA", winKubelet(func(c *contract.Config) { c.Join.CACertPEM = "" }), "join.caCertPEM is empty"},
		{"windows kubelet no join", winKubelet(func(c *contract.Config) { c.Join = nil }), "join is missing"},
		{"windows proxy no network", winProxy("", "", func(c *contract.Config) {}), "kube-proxy network name is empty"},
		{"windows proxy bad VIP", winProxy("flannel.4096", "10.244.3", func(c *contract.Config) {}), "kube-proxy source VIP \"10.244.3\""},
		{"windows proxy on linux", winProxy("Calico", "", func(c *contract.Config) { c.Node.OS = "linux" }), "this configuration is for Windows nodes"},
		{"kubeconfig no CA", kubecfg(func(c *contract.Config) { c.Join.CACertPEM = "" }), "join.caCertPEM is empty"},
		{"kubeconfig garbage CA", kubecfg(func(c *contract.Config) {
			c.Join.CACertPEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
		}), "join.caCertPEM does not parse"},
		{"kubeconfig two PEMs", kubecfg(func(c *contract.Config) { c.Join.CACertPEM = testCA + testCA }), "join.caCertPEM is not one PEM certificate"},
		{"kubeconfig unpinned CA", kubecfg(func(c *contract.Config) { c.Join.CACertHashes = []string{otherCAHash} }), "which is not in join.caCertHashes"},
		{"kubeconfig no token", kubecfg(func(c *contract.Config) { c.Join.BootstrapToken = "" }), "join.bootstrapToken is empty"},
		{"kubeconfig no endpoint", kubecfg(func(c *contract.Config) { c.Cluster.APIEndpoint = "" }), "cluster.apiEndpoint is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := c.render()
			if err == nil {
				t.Fatalf("no error; want one containing %q; output:\n%s", c.want, out)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not contain %q", msg, c.want)
			}
			if !strings.Contains(msg, "fix: ") {
				t.Errorf("error %q does not say how to fix it", msg)
			}
			for _, secret := range []string{testToken, badToken, testCertKey, "v1d9m3p0zt7w4hc"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q leaks a secret", msg)
				}
			}
		})
	}
}

// TestDualStack checks that a dual-stack pair passes through and the DNS
// address comes from the first service CIDR.
func TestDualStack(t *testing.T) {
	cfg := fixture(contract.RoleInit, "linux")
	cfg.Cluster.PodCIDR = "10.244.0.0/16,fd00:10:244::/56"
	cfg.Cluster.ServiceCIDR = "10.96.0.0/16,fd00:10:96::/112"
	b, err := InitConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := docs(t, b)
	eq(t, get(t, d["ClusterConfiguration"], "networking", "serviceSubnet"), cfg.Cluster.ServiceCIDR, "serviceSubnet")
	eq(t, get(t, d["KubeletConfiguration"], "clusterDNS"), []any{"10.96.0.10"}, "clusterDNS")

	cfg.Cluster.ServiceCIDR = "fd00:10:96::/112"
	b, err = InitConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, get(t, docs(t, b)["KubeletConfiguration"], "clusterDNS"), []any{"fd00:10:96::a"}, "IPv6 clusterDNS")
}

// A Windows node keeps its long Kubernetes name when its computer name is
// short: kube-proxy's hostnameOverride is the node name, not the computer's.
func TestWindowsNodeKeepsItsLongNameBesideAShortComputerName(t *testing.T) {
	c := fixture(contract.RoleWorker, "windows")
	c.Node.Name, c.Node.ComputerName = "payments-prod-win-1", "payments-bmgb-1"
	if _, err := WindowsKubeletConfig(c); err != nil {
		t.Fatalf("kubelet config: %v", err)
	}
	out, err := WindowsKubeProxyConfig(c, "flannel.4096", "10.244.3.2")
	if err != nil {
		t.Fatalf("kube-proxy config: %v", err)
	}
	if !strings.Contains(string(out), "hostnameOverride: payments-prod-win-1\n") {
		t.Errorf("kube-proxy config does not override the hostname with the node name:\n%s", out)
	}
}
