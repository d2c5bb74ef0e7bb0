package azure

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// selfSigned makes an RSA certificate and key and writes both, PEM, to a file.
func selfSigned(t *testing.T) (*x509.Certificate, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mixedk8s-sp"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sp.pem")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, path
}

// Each credential source signs in to the lab's Entra ID with azidentity's
// own type and gets a token for ARM; a refusal names the credential, the
// step and Entra's code, and never the secret.
func TestCheckCredentials(t *testing.T) {
	t.Parallel()
	const certClient, fedClient = "22222222-0000-4000-8000-000000000002", "33333333-0000-4000-8000-000000000003"
	cert, certPath := selfSigned(t)
	_, otherCertPath := selfSigned(t)
	issuerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := arm.New(arm.Options{
		Clients:      map[string]string{labClient: labSecret},
		Certificates: map[string]*x509.Certificate{certClient: cert},
		Federated:    map[string]arm.Federation{fedClient: {Issuer: "https://issuer.emu.test", Subject: "system:serviceaccount:ci:deployer", Key: &issuerKey.PublicKey}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tokenFile := func(subject string) string {
		tok, err := arm.SignFederatedToken(issuerKey, map[string]any{"iss": "https://issuer.emu.test", "sub": subject,
			"aud": "api://AzureADTokenExchange", "exp": time.Now().Add(time.Hour).Unix(), "nbf": time.Now().Unix()})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(p, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := labConfig(srv)
	base.ClientSecret = nil
	tenant := srv.TenantID()
	for _, tc := range []struct {
		name string
		set  func(*Config)
		// has is what the error says; none passes.
		has []string
	}{
		{"client secret", func(c *Config) {
			c.ClientSecret = &ClientSecret{TenantID: tenant, ClientID: labClient, Secret: labSecret}
		}, nil},
		{"wrong client secret", func(c *Config) {
			c.ClientSecret = &ClientSecret{TenantID: tenant, ClientID: labClient, Secret: "Zz9-not-the-secret"}
		}, []string{"get a token for Azure Resource Manager", "AADSTS7000215", "ClientSecretCredential (service principal " + labClient}},
		{"client certificate", func(c *Config) {
			c.ClientCertificate = &ClientCertificate{TenantID: tenant, ClientID: certClient, Path: certPath}
		}, nil},
		{"another certificate", func(c *Config) {
			c.ClientCertificate = &ClientCertificate{TenantID: tenant, ClientID: certClient, Path: otherCertPath}
		}, []string{"AADSTS700027", "ClientCertificateCredential", otherCertPath}},
		{"missing certificate file", func(c *Config) {
			c.ClientCertificate = &ClientCertificate{TenantID: tenant, ClientID: certClient, Path: certPath + ".missing", Password: "Pw-9-not-shown"}
		}, []string{"build the credential", "cannot read the client certificate"}},
		{"workload identity", func(c *Config) {
			c.WorkloadIdentity = &WorkloadIdentity{TenantID: tenant, ClientID: fedClient, TokenFilePath: tokenFile("system:serviceaccount:ci:deployer")}
		}, nil},
		{"workload identity of another subject", func(c *Config) {
			c.WorkloadIdentity = &WorkloadIdentity{TenantID: tenant, ClientID: fedClient, TokenFilePath: tokenFile("system:serviceaccount:ci:intruder")}
		}, []string{"AADSTS70021", "WorkloadIdentityCredential (workload identity federation: client " + fedClient}},
		{"two sources", func(c *Config) {
			c.ClientSecret = &ClientSecret{TenantID: tenant, ClientID: labClient, Secret: labSecret}
			c.AzureCLI = true
		}, []string{"ClientSecret and AzureCLI"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tc.set(&cfg)
			err := CheckCredentials(context.Background(), cfg)
			if tc.has == nil {
				if err != nil {
					t.Fatalf("CheckCredentials = %v; want nil", err)
				}
				return
			}
			var ce *CredentialsError
			if !errors.As(err, &ce) {
				t.Fatalf("CheckCredentials = %v; want a *CredentialsError", err)
			}
			for _, h := range tc.has {
				if !strings.Contains(err.Error(), h) {
					t.Errorf("error %q does not say %q", err, h)
				}
			}
			for _, secret := range []string{"Zz9-not-the-secret", "Pw-9-not-shown", labSecret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
		})
	}
}
