package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestReadRegistration(t *testing.T) {
	conf := []byte(`apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
nodeRegistration:
  name: lin-0
  kubeletExtraArgs:
  - name: node-ip
    value: 10.0.2.4
  - name: node-labels
    value: mixedk8s.io/pool=system,node.kubernetes.io/exclude-from=
  taints:
  - effect: NoSchedule
    key: dedicated
    value: batch
  - effect: PreferNoSchedule
    key: spot
`)
	doc, err := kubeadmDoc(conf, "JoinConfiguration")
	if err != nil {
		t.Fatal(err)
	}
	r, err := readRegistration(doc, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	if r.name != "lin-0" {
		t.Errorf("name %q", r.name)
	}
	if r.labels["mixedk8s.io/pool"] != "system" || len(r.labels) != 2 {
		t.Errorf("labels %v", r.labels)
	}
	if !slices.Equal(r.taints, []string{"dedicated=batch:NoSchedule", "spot:PreferNoSchedule"}) {
		t.Errorf("taints %q", r.taints)
	}
	if _, err := kubeadmDoc(conf, "InitConfiguration"); err == nil {
		t.Error("found an InitConfiguration in a join configuration")
	}
	if _, err := parseTaints([]any{map[string]any{"key": "x"}}); err == nil {
		t.Error("a taint without effect was accepted")
	}
}

// TestCheckPins: discovery trusts the CA in cluster-info only when its
// public key is pinned, as kubeadm join does.
func TestCheckPins(t *testing.T) {
	caPEM, spki := testCA(t)
	sum := sha256.Sum256(spki)
	good := "sha256:" + hex.EncodeToString(sum[:])
	if err := checkPins(caPEM, []string{"sha256:00", good}); err != nil {
		t.Errorf("pinned CA refused: %v", err)
	}
	err := checkPins(caPEM, []string{"sha256:" + strings.Repeat("0", 64)})
	if err == nil || !strings.Contains(err.Error(), "none of the public keys") {
		t.Errorf("unpinned CA: %v", err)
	}
	kc, err := bootstrapKubeconfig("https://10.0.0.10:6443", caPEM, "abcdef.0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	server, got, err := kubeconfigCluster(kc)
	if err != nil || string(got) != string(caPEM) || server != "https://10.0.0.10:6443" {
		t.Errorf("the bootstrap kubeconfig does not round-trip: server %q, %v", server, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(kc, &m); err != nil || m["current-context"] == "" {
		t.Errorf("kubeconfig: %v %v", m, err)
	}
}

func testCA(t *testing.T) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert.RawSubjectPublicKeyInfo
}
