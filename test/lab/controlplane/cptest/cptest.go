// Package cptest prepares what the node agent leaves in the first
// control-plane node's sandbox when it runs `kubeadm init` (the
// provisioner's CA in /etc/kubernetes/pki and the kubeadm configuration
// nodeagent/kubeadm renders), and starts a control plane on it for tests.
//
// Tests that need the Kubernetes binaries call Bins first (ReleaseBins for
// the folder of one release, e.g. the previous minor an upgrade starts
// from): it skips the test with the command that builds them, or fails it
// when MIXEDK8S_REQUIRE_K8S_BINS=1 (CI, where missing binaries are a bug).
package cptest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// Token is the bootstrap token of the cluster Sandbox prepares.
const Token = "q8x2lk.v1d9m3p0zt7w4hcn"

// CertificateKey is the key the cluster's control-plane certificates are uploaded with.
const CertificateKey = "5f1c0a7e9b3d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e0b"

// Bins returns <repo>/bin when the named binaries are built, and otherwise
// skips t (or fails it under MIXEDK8S_REQUIRE_K8S_BINS=1).
func Bins(t testing.TB, names ...string) string {
	t.Helper()
	dir, err := proc.BinDir(names...)
	if err == nil {
		return dir
	}
	if errors.Is(err, proc.ErrMissing) && os.Getenv("MIXEDK8S_REQUIRE_K8S_BINS") != "1" {
		t.Skipf("%v (MIXEDK8S_REQUIRE_K8S_BINS=1 makes this a failure)", err)
	}
	t.Fatal(err)
	return ""
}

// The tools modules that pin the Kubernetes releases the lab builds
// (hack/k8s-bins.sh, MIXEDK8S_K8S_MODULE), relative to the repository.
const (
	// Module pins the current release, the one linked into <repo>/bin.
	Module = "test/lab/k8s"
	// PrevModule pins the previous minor, which upgrades start from.
	PrevModule = "test/lab/k8s/prev"
)

// ReleaseBins returns <repo>/bin/k8s-<version>, where hack/k8s-bins.sh
// links the binaries of the Kubernetes release module pins, and that
// version ("v1.35.4"), when the named binaries are there; otherwise it
// skips t with the command that builds them, as Bins does.
func ReleaseBins(t testing.TB, module string, names ...string) (dir, version string) {
	t.Helper()
	bin, err := proc.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(bin), module, "go.mod"))
	if err != nil {
		t.Fatalf("read the release module: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require ")); len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			version = f[1]
			break
		}
	}
	if version == "" {
		t.Fatalf("%s/go.mod requires no k8s.io/kubernetes", module)
	}
	dir = filepath.Join(bin, "k8s-"+version)
	err = proc.CheckBins(dir, names...)
	if err == nil {
		return dir, version
	}
	env := ""
	if module != Module {
		env = "MIXEDK8S_K8S_MODULE=" + module + " "
	}
	err = fmt.Errorf("%w: %s lacks one of %s of Kubernetes %s; fix: run `%shack/k8s-bins.sh %s`", proc.ErrMissing, dir, strings.Join(names, ", "), version, env, strings.Join(names, " "))
	if os.Getenv("MIXEDK8S_REQUIRE_K8S_BINS") != "1" {
		t.Skipf("%v (MIXEDK8S_REQUIRE_K8S_BINS=1 makes this a failure)", err)
	}
	t.Fatal(err)
	return "", ""
}

// Cluster is what the provisioner sent the init node, and where the agent put it.
type Cluster struct {
	Config contract.Config
	// Root is the sandbox folder; KubeadmConfig the file the agent wrote for kubeadm init.
	Root          string
	KubeadmConfig []byte
}

// CAHash is the CA pin nodes join with ("sha256:<hex of its public key>").
func (c *Cluster) CAHash() string {
	block, _ := pem.Decode([]byte(c.Config.Init.CACertPEM))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic(err)
	}
	return kubeadm.CACertHash(cert)
}

// JoinConfig is the agent config of a worker of this cluster.
func (c *Cluster) JoinConfig(name, os, token string) contract.Config {
	cfg := c.Config
	cfg.Node = contract.Node{Name: name, Role: contract.RoleWorker, OS: os, Pool: "pool", PrivateIP: "10.0.1.20"}
	if os == "windows" {
		cfg.Node.WindowsVersion, cfg.Node.Isolation = "2022", "process"
	}
	cfg.Init = nil
	cfg.Join = &contract.Join{BootstrapToken: token, CACertHashes: []string{c.CAHash()}, CACertPEM: c.Config.Init.CACertPEM}
	return cfg
}

// Sandbox makes a CA the way the provisioner does (ECDSA P-256, PKCS#8),
// writes it into a fresh sandbox folder's /etc/kubernetes/pki as the
// agent's kubeadm-init step does, and renders the kubeadm init
// configuration with nodeagent/kubeadm.InitConfig.
func Sandbox(t testing.TB) *Cluster {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubernetes", OrganizationalUnit: []string{"mixedk8s cluster demo"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})

	cfg := contract.Config{
		APIVersion: contract.APIVersion,
		Node: contract.Node{
			Name: "demo-cp-0", Role: contract.RoleInit, OS: "linux", Pool: "system", PrivateIP: "10.0.1.4",
			Labels: map[string]string{"mixedk8s.io/cluster": "demo", "mixedk8s.io/pool": "system"},
		},
		Cluster: contract.Cluster{
			Name: "demo", KubernetesVersion: "1.36.3", APIEndpoint: "10.0.1.4:6443", CNI: "calico",
			NodeCIDR: "10.0.0.0/16", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12",
		},
		Init: &contract.Init{
			CACertPEM: string(certPEM), CAKeyPEM: string(keyPEM),
			BootstrapToken: Token, BootstrapTokenTTL: "1h", CertificateKey: CertificateKey,
			APIServerSANs: []string{"api.demo.example.com"},
		},
	}
	conf, err := kubeadm.InitConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	pki := filepath.Join(root, "etc", "kubernetes", "pki")
	if err := os.MkdirAll(pki, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pki, "ca.crt"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pki, "ca.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Cluster{Config: cfg, Root: root, KubeadmConfig: conf}
}

// SetVersion renders c's kubeadm configuration again for another
// Kubernetes version ("v1.35.4" or "1.35.4"), as the agent would for a
// cluster of that version.
func (c *Cluster) SetVersion(t testing.TB, version string) {
	t.Helper()
	c.Config.Cluster.KubernetesVersion = strings.TrimPrefix(version, "v")
	conf, err := kubeadm.InitConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	c.KubeadmConfig = conf
}

// Start starts a control plane for c and stops it when t ends.
func Start(t testing.TB, c *Cluster) *controlplane.ControlPlane {
	t.Helper()
	return StartFrom(t, c, "")
}

// StartFrom is Start with the binaries of the folder bin (empty: <repo>/bin).
func StartFrom(t testing.TB, c *Cluster, bin string) *controlplane.ControlPlane {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	work := t.TempDir()
	cp, err := controlplane.Start(ctx, controlplane.Config{SandboxRoot: c.Root, KubeadmConfig: c.KubeadmConfig, WorkDir: work, BinDir: bin, CertificateKey: c.Config.Init.CertificateKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Close() })
	return cp
}

// ControlPlaneNode is a further control-plane node of the cluster: a fresh
// sandbox folder and the configuration the agent gives its
// `kubeadm join --config` (nodeagent/kubeadm.JoinConfig), with key as its
// certificate key.
func (c *Cluster) ControlPlaneNode(t testing.TB, name, ip, key string) controlplane.JoinConfig {
	t.Helper()
	cfg := c.Config
	cfg.Node = contract.Node{Name: name, Role: contract.RoleControlPlane, OS: "linux", Pool: "system", PrivateIP: ip}
	cfg.Init = nil
	cfg.Join = &contract.Join{BootstrapToken: Token, CACertHashes: []string{c.CAHash()}, CACertPEM: c.Config.Init.CACertPEM, CertificateKey: key}
	conf, err := kubeadm.JoinConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return controlplane.JoinConfig{SandboxRoot: t.TempDir(), KubeadmConfig: conf, WorkDir: t.TempDir()}
}
