package arm_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/test/lab/arm"
)

func start(t *testing.T) (*arm.Server, *http.Client) {
	t.Helper()
	return startWith(t, arm.Options{Clients: map[string]string{"client": "secret"}})
}

func startWith(t *testing.T, opts arm.Options) (*arm.Server, *http.Client) {
	t.Helper()
	s, err := arm.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM())
	return s, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, DialContext: s.DialContext}}
}

func token(t *testing.T, s *arm.Server, c *http.Client, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"client"}, "client_secret": {"secret"}, "scope": {resource + "/.default"}}
	res, err := c.PostForm(s.URL()+"/"+s.TenantID()+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.AccessToken == "" || out.TokenType != "Bearer" {
		t.Fatalf("token reply %d: %+v, %v", res.StatusCode, out, err)
	}
	return out.AccessToken
}

// reply is a response whose body was read and closed.
type reply struct {
	StatusCode int
	Header     http.Header
}

func do(t *testing.T, c *http.Client, method, u, tok, body string) (reply, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, u, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return reply{res.StatusCode, res.Header}, out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestARMChecksTokensAPIVersionsAndAnswersInARMShape(t *testing.T) {
	s, c := start(t)
	base := s.URL() + "/subscriptions/" + s.SubscriptionID() + "/resourceGroups/rg"
	res, body := do(t, c, http.MethodGet, base+"?api-version="+arm.ResourcesAPIVersion, "", "")
	if res.StatusCode != http.StatusUnauthorized || errCode(body) != "AuthenticationFailed" || res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %v", res.StatusCode, body)
	}
	vaultTok := token(t, s, c, "https://vault.emu.test:"+s.URL()[strings.LastIndex(s.URL(), ":")+1:])
	if res, body := do(t, c, http.MethodGet, base+"?api-version="+arm.ResourcesAPIVersion, vaultTok, ""); res.StatusCode != http.StatusUnauthorized || errCode(body) != "InvalidAuthenticationToken" {
		t.Errorf("a Key Vault token on ARM: %d %v", res.StatusCode, body)
	}
	tok := token(t, s, c, s.URL())
	if res, body := do(t, c, http.MethodGet, base+"?api-version=2019-01-01", tok, ""); res.StatusCode != http.StatusBadRequest || errCode(body) != "InvalidApiVersionParameter" {
		t.Errorf("old api-version: %d %v", res.StatusCode, body)
	}
	if res, body := do(t, c, http.MethodGet, base+"/providers/Microsoft.Compute/virtualMachines/x?api-version="+arm.NetworkAPIVersion, tok, ""); res.StatusCode != http.StatusBadRequest || errCode(body) != "NoRegisteredProviderFound" {
		t.Errorf("network api-version on compute: %d %v", res.StatusCode, body)
	}
	if res, body := do(t, c, http.MethodGet, base+"?api-version="+arm.ResourcesAPIVersion, tok, ""); res.StatusCode != http.StatusNotFound || errCode(body) != "ResourceGroupNotFound" {
		t.Errorf("missing group: %d %v", res.StatusCode, body)
	}
	if res, body := do(t, c, http.MethodPut, base+"?api-version="+arm.ResourcesAPIVersion, tok, `{"location":"westeurope","tags":{"mixedk8s.io/cluster":"x"}}`); res.StatusCode != http.StatusBadRequest || errCode(body) != "InvalidTagNameCharacters" {
		t.Errorf("a '/' in a tag name: %d %v", res.StatusCode, body)
	}
	if res, body := do(t, c, http.MethodPut, base+"?api-version="+arm.ResourcesAPIVersion, tok, `{"location":"westeurope","tags":{"mixedk8s.io_cluster":"x"}}`); res.StatusCode != http.StatusCreated {
		t.Errorf("group PUT: %d %v", res.StatusCode, body)
	}
	// A PUT answers 201 with provisioningState and an absolute Azure-AsyncOperation URL.
	res, body = do(t, c, http.MethodPut, base+"/providers/Microsoft.Network/networkSecurityGroups/nsg?api-version="+arm.NetworkAPIVersion, tok, `{"location":"westeurope","properties":{}}`)
	props, _ := body["properties"].(map[string]any)
	async := res.Header.Get("Azure-AsyncOperation")
	if res.StatusCode != http.StatusCreated || props["provisioningState"] != "Updating" || !strings.HasPrefix(async, s.URL()+"/subscriptions/") {
		t.Errorf("NSG PUT: %d %v, Azure-AsyncOperation %q", res.StatusCode, body, async)
	}
	if _, body := do(t, c, http.MethodGet, async, tok, ""); body["status"] != "InProgress" && body["status"] != "Succeeded" {
		t.Errorf("operation: %v", body)
	}
	// DELETE of what does not exist is 204.
	if res, _ := do(t, c, http.MethodDelete, base+"/providers/Microsoft.Network/networkInterfaces/none?api-version="+arm.NetworkAPIVersion, tok, ""); res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE of nothing: %d", res.StatusCode)
	}
}

func TestKeyVaultChallengesFirst(t *testing.T) {
	s, c := start(t)
	res, body := do(t, c, http.MethodPut, s.VaultURL()+"/secrets/x?api-version="+arm.KeyVaultAPIVersion, "", `{"value":"v"}`)
	challenge := res.Header.Get("WWW-Authenticate")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `resource="https://vault.emu.test:`) || !strings.Contains(challenge, "/"+s.TenantID()+`"`) {
		t.Errorf("no token: %d %v %q", res.StatusCode, body, challenge)
	}
	if _, live := s.Secrets(); len(live) != 0 {
		t.Errorf("an unauthenticated PUT stored a secret")
	}
}

func TestDialContextStaysOnThisMachine(t *testing.T) {
	s, _ := start(t)
	if _, err := s.DialContext(context.Background(), "tcp", "example.com:443"); err == nil {
		t.Error("DialContext reached example.com")
	}
}

// TestFaultHookAnswersForTheOp: a hook that throttles one op gets ARM's 429
// with Retry-After on that op and leaves the others alone.
func TestFaultHookAnswersForTheOp(t *testing.T) {
	s, c := start(t)
	tok := token(t, s, c, s.URL())
	var asked []string
	s.Fault(func(op string) *arm.Error {
		asked = append(asked, op)
		if op == "resourceGroups.Get" {
			e := arm.ErrThrottled
			return &e
		}
		return nil
	})
	base := s.URL() + "/subscriptions/" + s.SubscriptionID() + "/resourceGroups/rg?api-version=" + arm.ResourcesAPIVersion
	if res, body := do(t, c, http.MethodGet, base, tok, ""); res.StatusCode != http.StatusTooManyRequests || errCode(body) != "TooManyRequests" || res.Header.Get("Retry-After") == "" {
		t.Errorf("throttled GET: %d %v, Retry-After %q", res.StatusCode, body, res.Header.Get("Retry-After"))
	}
	if res, body := do(t, c, http.MethodPut, base, tok, `{"location":"westeurope"}`); res.StatusCode != http.StatusCreated {
		t.Errorf("PUT beside the hook: %d %v", res.StatusCode, body)
	}
	s.Fault(nil)
	if res, body := do(t, c, http.MethodGet, base, tok, ""); res.StatusCode != http.StatusOK {
		t.Errorf("GET after the hook was removed: %d %v", res.StatusCode, body)
	}
	if strings.Join(asked, ",") != "resourceGroups.Get,resourceGroups.Put" {
		t.Errorf("the hook was asked for %q", asked)
	}
}
