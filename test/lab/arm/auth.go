package arm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
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

// writeOAuthError is the token endpoint's error reply: the OAuth 2.0
// fields (RFC 6749 section 5.2) and Entra ID's own beside them, the
// AADSTS code leading the description and repeated in error_codes
// (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#error-response).
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	trace, corr := newID(), newID()
	now := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	out := map[string]any{"error": code, "error_description": desc + "\r\nTrace ID: " + trace + "\r\nCorrelation ID: " + corr + "\r\nTimestamp: " + now,
		"timestamp": now, "trace_id": trace, "correlation_id": corr, "error_uri": "https://login.microsoftonline.com/error?code="}
	if n, ok := strings.CutPrefix(desc, "AADSTS"); ok {
		digits := n[:strings.IndexByte(n+":", ':')]
		if v, err := strconv.Atoi(digits); err == nil {
			out["error_codes"] = []int{v}
			out["error_uri"] = "https://login.microsoftonline.com/error?code=" + digits
		}
	}
	writeJSON(w, status, out)
}

// Client authentication at the token endpoint: a secret, or a signed
// assertion (a certificate's, or a federated token's)
// (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
// The AADSTS codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes.
const (
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// federatedAudience is the audience a federated token must carry
	// (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-create-trust).
	federatedAudience = "api://AzureADTokenExchange"
)

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
	id := r.PostForm.Get("client_id")
	if id == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'client_id'.")
		return
	}
	if status, code, desc := s.authenticateClient(r, id, s.URL()+"/"+tenant+"/oauth2/v2.0/token"); status != 0 {
		writeOAuthError(w, status, code, desc)
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

// authenticateClient checks the client's secret or assertion; a zero
// status means it is who it says. A server with no clients configured
// accepts any client with any secret.
func (s *Server) authenticateClient(r *http.Request, id, endpoint string) (int, string, string) {
	secret, assertion := r.PostForm.Get("client_secret"), r.PostForm.Get("client_assertion")
	open := len(s.opts.Clients)+len(s.opts.Certificates)+len(s.opts.Federated) == 0
	_, hasSecret := s.opts.Clients[id]
	cert, hasCert := s.opts.Certificates[id]
	fed, hasFed := s.opts.Federated[id]
	switch {
	case secret == "" && assertion == "":
		return http.StatusUnauthorized, "invalid_client", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
	case open:
		return 0, "", ""
	case !hasSecret && !hasCert && !hasFed:
		return http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier '" + id + "' was not found in the directory '" + s.opts.TenantID + "'. " +
			"This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
	case secret != "":
		if want := s.opts.Clients[id]; !hasSecret || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
			return http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + id + "'."
		}
		return 0, "", ""
	}
	if r.PostForm.Get("client_assertion_type") != assertionType {
		return http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'client_assertion_type'."
	}
	jwt, err := parseJWT(assertion)
	if err != nil {
		return http.StatusUnauthorized, "invalid_client", "AADSTS50027: JWT token is invalid or malformed."
	}
	iss, _ := jwt.claims["iss"].(string)
	sub, _ := jwt.claims["sub"].(string)
	aud := jwt.audiences()
	switch {
	case hasCert && iss == id:
		// A certificate's assertion: issued by the client for itself, to
		// the token endpoint, naming the certificate by its SHA-256
		// thumbprint (mod: microsoft-authentication-library-for-go
		// apps/internal/oauth/ops/accesstokens/accesstokens.go, JWT).
		thumb := sha256.Sum256(cert.Raw)
		switch {
		case sub != id || !slices.Contains(aud, endpoint):
			return http.StatusUnauthorized, "invalid_client", "AADSTS50013: Assertion failed signature validation or is invalid: its subject must be the client and its audience the token endpoint."
		case jwt.header["x5t#S256"] != base64.StdEncoding.EncodeToString(thumb[:]) && jwt.header["x5t#S256"] != base64.RawURLEncoding.EncodeToString(thumb[:]):
			return http.StatusUnauthorized, "invalid_client", "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]"
		case jwt.verify(cert.PublicKey) != nil:
			return http.StatusUnauthorized, "invalid_client", "AADSTS700027: Client assertion failed signature validation."
		}
	case hasFed:
		// A federated token: another issuer's, matched to the client's
		// federated identity credential by issuer, subject and audience.
		switch {
		case iss != fed.Issuer || sub != fed.Subject || !slices.Contains(aud, federatedAudience):
			return http.StatusBadRequest, "invalid_request", "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '" + iss + "'. Assertion Subject: '" + sub + "'. Assertion Audience: '" + strings.Join(aud, ",") + "'."
		case jwt.verify(fed.Key) != nil:
			return http.StatusUnauthorized, "invalid_client", "AADSTS700027: Client assertion failed signature validation."
		}
	default:
		return http.StatusUnauthorized, "invalid_client", "AADSTS700027: Client assertion failed signature validation. [Reason - The key was not found.]"
	}
	if !jwt.current() {
		return http.StatusUnauthorized, "invalid_client", "AADSTS700024: Client assertion is not within its valid time range."
	}
	return 0, "", ""
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
