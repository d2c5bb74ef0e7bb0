package arm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
)

// authority is the emulator's CA and the server certificate it signed for
// 127.0.0.1 and the vault names.
type authority struct {
	certPEM []byte
	server  tls.Certificate
}

func newAuthority() (*authority, error) {
	key := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	caKey, err := key()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mixedk8s lab ARM CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	srvKey, err := key()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		// A wildcard covers one label, as for *.vault.azure.net.
		DNSNames: []string{"emu.test", "*.emu.test", "*.vault.emu.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &authority{certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server: tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: srvKey}}, nil
}

// token is an access token the emulator issued.
type token struct {
	clientID string
	audience string // without "/.default" and trailing "/"
	expires  time.Time
}

func normAudience(a string) string {
	return strings.TrimRight(strings.TrimSuffix(a, "/.default"), "/")
}

// serveLogin is Entra ID's v2.0 endpoints as MSAL uses them for the client
// credentials grant: the tenant's OpenID configuration, whose issuer host
// must equal the authority's (mod: microsoft-authentication-library-for-go
// apps/internal/oauth/ops/authority/authority.go), and the token endpoint
// (mod: sdk/azidentity/mock_test.go shows both shapes).
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	base := s.URL() + "/" + parts[0]
	switch {
	case len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration":
		s.count("login.OpenIDConfiguration")
		if parts[0] != s.opts.TenantID {
			writeOAuthError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant '"+parts[0]+"' not found.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
		})
	case len(parts) == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token" && r.Method == http.MethodPost:
		s.count("login.Token")
		s.issueToken(w, r, parts[0])
	default:
		writeOAuthError(w, http.StatusNotFound, "invalid_request", "AADSTS900561: The endpoint only accepts POST, OPTIONS requests.")
	}
}

// writeOAuthError is the OAuth 2.0 error shape (RFC 6749 section 5.2).
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain a form.")
		return
	}
	if tenant != s.opts.TenantID {
		writeOAuthError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant '"+tenant+"' not found.")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if want, ok := s.opts.Clients[id]; len(s.opts.Clients) > 0 && (!ok || want != secret) {
		// AADSTS7000215: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	// MSAL adds openid, profile and offline_access to the one resource scope.
	scope := ""
	for _, sc := range strings.Fields(r.PostForm.Get("scope")) {
		if strings.HasSuffix(sc, "/.default") {
			scope = sc
		}
	}
	if scope == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for scope is not valid.")
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := "lab-" + hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = token{clientID: id, audience: normAudience(scope), expires: time.Now().Add(time.Hour)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": 3600, "ext_expires_in": 3600, "token_type": "Bearer"})
}

// authenticate checks the bearer token and its audience.
func (s *Server) authenticate(r *http.Request, audience string) (token, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return token{}, false
	}
	s.mu.Lock()
	t, ok := s.tokens[raw]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) || t.audience != normAudience(audience) {
		return token{}, false
	}
	return t, true
}
