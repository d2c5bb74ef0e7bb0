package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
)

var now = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func TestCARoundTripsThroughPEM(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("demo", now)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.NotAfter.Sub(now) < 9*365*24*time.Hour {
		t.Errorf("CA: IsCA=%v NotAfter=%v", ca.Cert.IsCA, ca.Cert.NotAfter)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatalf("ParseCA: %v", err)
	}
	if !back.Cert.Equal(ca.Cert) {
		t.Error("certificate changed in the round trip")
	}
	other, _ := NewCA("other", now)
	otherKey, _ := other.KeyPEM()
	if _, err := ParseCA(ca.CertPEM(), otherKey); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("ParseCA with a foreign key: %v, want 'does not belong'", err)
	}
	if _, err := ParseCA([]byte("junk"), keyPEM); err == nil {
		t.Error("ParseCA accepted a certificate that is not PEM")
	}
}

func TestCACertHashIsKubeadmsPin(t *testing.T) {
	t.Parallel()
	ca, _ := NewCA("demo", now)
	sum := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	if got, want := kubeadm.CACertHash(ca.Cert), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("kubeadm.CACertHash = %s, want %s", got, want)
	}
}

func TestBootstrapTokenForm(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 50 {
		tok, err := NewBootstrapToken()
		if err != nil {
			t.Fatal(err)
		}
		if !ValidBootstrapToken(tok) {
			t.Fatalf("token %q does not match [a-z0-9]{6}.[a-z0-9]{16}", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q generated twice", tok)
		}
		seen[tok] = true
	}
	for _, bad := range []string{"", "abcdef0123456789abcdef", "ABCDEF.0123456789abcdef", "abcde.0123456789abcdef"} {
		if ValidBootstrapToken(bad) {
			t.Errorf("ValidBootstrapToken(%q) = true", bad)
		}
	}
}

func TestCertificateKeyIs32BytesHex(t *testing.T) {
	t.Parallel()
	k, err := NewCertificateKey()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := hex.DecodeString(k); err != nil || len(b) != 32 {
		t.Errorf("certificate key %d bytes (%v), want 32", len(b), err)
	}
}

func TestAdminKubeconfigIsSignedByTheCA(t *testing.T) {
	t.Parallel()
	ca, _ := NewCA("demo", now)
	raw, err := ca.AdminKubeconfig("demo", "https://127.0.0.1:6443", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := KubeconfigCredentials(raw)
	if err != nil || !creds.NotAfter.Equal(now.Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("expiry %v (%v), want an hour after %v", creds.NotAfter, err, now)
	}
	if !strings.Contains(creds.CertPEM, "BEGIN CERTIFICATE") || !strings.Contains(creds.KeyPEM, "PRIVATE KEY") {
		t.Errorf("credentials: certificate %d bytes, key %d bytes, not PEM", len(creds.CertPEM), len(creds.KeyPEM))
	}
	if _, err := ca.AdminKubeconfig("demo", "https://127.0.0.1:6443", 0, now); err == nil {
		t.Error("a zero validity was accepted")
	}
	var kc kubeconfig
	if err := yaml.UnmarshalStrict(raw, &kc); err != nil {
		t.Fatalf("kubeconfig does not parse: %v", err)
	}
	if kc.Clusters[0].Cluster.Server != "https://127.0.0.1:6443" || kc.CurrentContext != "demo-admin@demo" {
		t.Errorf("kubeconfig: %+v", kc)
	}
	certPEM, _ := base64.StdEncoding.DecodeString(kc.Users[0].User.ClientCertificateData)
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate does not verify against the CA: %v", err)
	}
	if cert.Subject.Organization[0] != AdminGroup {
		t.Errorf("admin group %q, want %q", cert.Subject.Organization, AdminGroup)
	}
}

// Each issuance has a user of its own, so the API server's audit log tells
// one admin certificate from another.
func TestEachAdminKubeconfigNamesItsOwnUser(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 23, 10, 0, 0, time.UTC)
	ca, _ := NewCA("demo", now)
	users := map[string]bool{}
	for range 3 {
		raw, err := ca.AdminKubeconfig("demo", "https://127.0.0.1:6443", time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		creds, err := KubeconfigCredentials(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(creds.User, "demo-admin-20261204T2310Z-") || len(creds.User) != len("demo-admin-20261204T2310Z-")+8 {
			t.Errorf("user %q, want demo-admin-<issue time>-<8 hex digits>", creds.User)
		}
		if users[creds.User] {
			t.Errorf("user %q issued twice", creds.User)
		}
		users[creds.User] = true
		if got := creds.NotAfter.Sub(creds.NotBefore); got < time.Hour || got > time.Hour+10*time.Minute {
			t.Errorf("lifetime %s, want about an hour", got)
		}
	}
}
