package arm_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
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
