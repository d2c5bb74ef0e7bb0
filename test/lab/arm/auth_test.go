package arm_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

// The token endpoint refuses as Entra ID does: a wrong secret with
// AADSTS7000215 (401 invalid_client), an unknown application with
// AADSTS700016, no secret nor assertion with AADSTS7000218, each with the
// code repeated in error_codes.
func TestTokenEndpointRefusesInEntraShape(t *testing.T) {
	s, c := start(t)
	endpoint := s.URL() + "/" + s.TenantID() + "/oauth2/v2.0/token"
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
		aadsts float64
	}{
		{"a wrong secret", url.Values{"client_id": {"client"}, "client_secret": {"Xq7-wrong-secret-value"}}, http.StatusUnauthorized, "invalid_client", 7000215},
		{"an unknown application", url.Values{"client_id": {"nobody"}, "client_secret": {"secret"}}, http.StatusBadRequest, "unauthorized_client", 700016},
		{"no secret nor assertion", url.Values{"client_id": {"client"}}, http.StatusUnauthorized, "invalid_client", 7000218},
		{"a malformed assertion", url.Values{"client_id": {"client"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"not.a.jwt"}}, http.StatusUnauthorized, "invalid_client", 50027},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("grant_type", "client_credentials")
			tc.form.Set("scope", s.URL()+"/.default")
			res, err := c.PostForm(endpoint, tc.form)
			if err != nil {
				t.Fatal(err)
			}
			body := decode(t, res)
			codes, _ := body["error_codes"].([]any)
			desc, _ := body["error_description"].(string)
			if res.StatusCode != tc.status || body["error"] != tc.code || len(codes) != 1 || codes[0] != tc.aadsts ||
				!strings.HasPrefix(desc, "AADSTS") || body["trace_id"] == nil || body["correlation_id"] == nil {
				t.Errorf("%d %v; want %d %s with AADSTS%.0f", res.StatusCode, body, tc.status, tc.code, tc.aadsts)
			}
			if strings.Contains(desc, "Xq7-wrong") {
				t.Errorf("the description repeats the secret sent: %q", desc)
			}
		})
	}
}

// decode reads a JSON reply and closes it.
func decode(t *testing.T, res *http.Response) map[string]any {
	t.Helper()
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A federated token is exchanged only when its issuer, subject and
// audience match the application's federated credential, its signature is
// the issuer's and it is current.
func TestTokenEndpointChecksFederatedTokens(t *testing.T) {
	issuer, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, c := startWith(t, arm.Options{Federated: map[string]arm.Federation{"app": {Issuer: "https://issuer.emu.test", Subject: "repo:platform:ref:main", Key: &issuer.PublicKey}}})
	endpoint := s.URL() + "/" + s.TenantID() + "/oauth2/v2.0/token"
	claims := func(change map[string]any) map[string]any {
		out := map[string]any{"iss": "https://issuer.emu.test", "sub": "repo:platform:ref:main", "aud": "api://AzureADTokenExchange",
			"exp": time.Now().Add(time.Hour).Unix(), "nbf": time.Now().Add(-time.Minute).Unix()}
		for k, v := range change {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		key    *rsa.PrivateKey
		claims map[string]any
		status int
		aadsts float64 // 0: a token
	}{
		{"the issuer's token", issuer, claims(nil), http.StatusOK, 0},
		{"another subject", issuer, claims(map[string]any{"sub": "repo:platform:ref:fork"}), http.StatusBadRequest, 70021},
		{"another audience", issuer, claims(map[string]any{"aud": "api://other"}), http.StatusBadRequest, 70021},
		{"signed by another key", other, claims(nil), http.StatusUnauthorized, 700027},
		{"expired", issuer, claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), http.StatusUnauthorized, 700024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertion, err := arm.SignFederatedToken(tc.key, tc.claims)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.PostForm(endpoint, url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "scope": {s.URL() + "/.default"},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
			if err != nil {
				t.Fatal(err)
			}
			body := decode(t, res)
			codes, _ := body["error_codes"].([]any)
			switch {
			case tc.aadsts == 0 && (res.StatusCode != http.StatusOK || body["access_token"] == nil):
				t.Errorf("%d %v; want a token", res.StatusCode, body)
			case tc.aadsts != 0 && (res.StatusCode != tc.status || len(codes) != 1 || codes[0] != tc.aadsts):
				t.Errorf("%d %v; want %d with AADSTS%.0f", res.StatusCode, body, tc.status, tc.aadsts)
			}
		})
	}
}
