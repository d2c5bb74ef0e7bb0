package gce_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/gce"
)

func client(t *testing.T, s *gce.Server) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM())
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func do(t *testing.T, c *http.Client, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, url, b)
	}
	return resp.StatusCode, out
}

// The wire is what Compute sends: 64-bit IDs as JSON strings, operations
// that start PENDING and are found again by requestId, errors with
// reasons, paging limits.
func TestWireShape(t *testing.T) {
	s, err := gce.New(gce.Options{Token: "tok", OperationDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := client(t, s)
	base := s.URL() + "/compute/v1/projects/" + s.Project()
	body := `{"name":"n1","autoCreateSubnetworks":false}`
	const rid = "6f1c1d1e-8d3a-5b7e-9c0a-1b2c3d4e5f60"
	code, op := do(t, c, "POST", base+"/global/networks?requestId="+rid, body)
	if code != 200 || op["status"] != "PENDING" {
		t.Fatalf("insert = %d %v", code, op)
	}
	if _, ok := op["id"].(string); !ok {
		t.Fatalf("operation id %T %v is not a JSON string", op["id"], op["id"])
	}
	_, again := do(t, c, "POST", base+"/global/networks?requestId="+rid, `{"name":"other","autoCreateSubnetworks":false}`)
	if again["name"] != op["name"] {
		t.Fatalf("a repeated requestId made operation %v, first was %v", again["name"], op["name"])
	}
	_, done := do(t, c, "POST", base+"/global/operations/"+op["name"].(string)+"/wait", "")
	if done["status"] != "DONE" {
		t.Fatalf("wait = %v", done)
	}
	code, dup := do(t, c, "POST", base+"/global/networks", body)
	errs, _ := dup["error"].(map[string]any)["errors"].([]any)
	if code != 409 || len(errs) != 1 || errs[0].(map[string]any)["reason"] != "alreadyExists" {
		t.Fatalf("duplicate name = %d %v", code, dup)
	}
	if code, _ := do(t, c, "POST", base+"/global/networks?requestId=not-a-uuid", `{"name":"n2","autoCreateSubnetworks":false}`); code != 400 {
		t.Fatalf("bad requestId = %d", code)
	}
	if code, _ := do(t, c, "POST", base+"/global/networks", `{"name":"n3"}`); code != 400 {
		t.Fatalf("legacy network = %d", code)
	}
	if code, _ := do(t, c, "GET", base+"/aggregated/instances?maxResults=501", ""); code != 400 {
		t.Fatalf("maxResults 501 = %d", code)
	}
	if code, e := do(t, c, "GET", s.URL()+"/v1/projects/"+s.Project()+"/secrets/x/versions/1:access", ""); code != 404 || e["error"].(map[string]any)["status"] != "NOT_FOUND" {
		t.Fatalf("missing secret = %d %v", code, e)
	}
	req, _ := http.NewRequest("GET", base+"/global/networks/n1", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong token = %d", resp.StatusCode)
	}
}

// generateAccessToken is modelled on IAM Credentials: the caller needs
// roles/iam.serviceAccountTokenCreator on the target (or along the
// delegation chain), unknown accounts are 404, lifetimes above an hour and
// missing scopes are refused, and the token it returns is accepted by
// Compute as the service account's until it expires.
func TestGenerateAccessToken(t *testing.T) {
	now := time.Now()
	var skew atomic.Int64 // the server's clock runs ahead of now by this
	s, err := gce.New(gce.Options{Token: "tok", Now: func() time.Time { return now.Add(time.Duration(skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := client(t, s)
	deployer, err := s.OwnerServiceAccount("deployer")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := s.OwnerServiceAccount("relay-sa")
	if err != nil {
		t.Fatal(err)
	}
	url := func(name string) string {
		return s.URL() + "/v1/projects/-/serviceAccounts/" + name + ":generateAccessToken"
	}
	scope := `"scope":["https://www.googleapis.com/auth/cloud-platform"]`
	status := func(out map[string]any) string {
		e, _ := out["error"].(map[string]any)
		return fmt.Sprint(e["status"], ": ", e["message"])
	}

	code, out := do(t, c, "POST", url("nobody@mixedk8s-lab.iam.gserviceaccount.com"), "{"+scope+"}")
	if code != 404 || !strings.Contains(status(out), "NOT_FOUND") {
		t.Fatalf("unknown account = %d %v, want 404 NOT_FOUND", code, out)
	}
	code, out = do(t, c, "POST", url(deployer), "{"+scope+"}")
	if code != 403 || status(out) != "PERMISSION_DENIED: Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)." {
		t.Fatalf("no grant = %d %v, want 403 PERMISSION_DENIED", code, out)
	}
	if err := s.GrantTokenCreator(s.Principal(), deployer); err != nil {
		t.Fatal(err)
	}
	code, out = do(t, c, "POST", s.URL()+"/v1/projects/mixedk8s-lab/serviceAccounts/"+deployer+":generateAccessToken", "{"+scope+"}")
	if code != 400 {
		t.Fatalf("a project ID for '-' = %d %v, want 400", code, out)
	}
	for body, want := range map[string]string{
		`{}`:                                 "Scope required",
		`{` + scope + `,"lifetime":"3601s"}`: "exceeds the maximum of 3600s",
		`{` + scope + `,"lifetme":"60s"}`:    "Invalid JSON payload",
	} {
		code, out = do(t, c, "POST", url(deployer), body)
		if code != 400 || !strings.Contains(status(out), want) {
			t.Errorf("%s = %d %v, want 400 %q", body, code, out, want)
		}
	}
	code, out = do(t, c, "POST", url(deployer), "{"+scope+`,"lifetime":"600s"}`)
	if code != 200 {
		t.Fatalf("granted = %d %v", code, out)
	}
	tok, _ := out["accessToken"].(string)
	if exp, err := time.Parse(time.RFC3339, fmt.Sprint(out["expireTime"])); err != nil || exp.Sub(now) < 599*time.Second || exp.Sub(now) > 600*time.Second {
		t.Fatalf("expireTime = %v (%v), want now+600s", out["expireTime"], err)
	}

	// The token is the service account's on Compute until it expires.
	get := func(token string) int {
		req, _ := http.NewRequest("GET", s.URL()+"/compute/v1/projects/"+s.Project()+"/global/networks/none", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	s.ResetCalls()
	if got := get(tok); got != 404 {
		t.Fatalf("networks.get with the minted token = %d, want 404 (authenticated)", got)
	}
	if got := s.CallsBy()["serviceAccount:"+deployer]["networks.get"]; got != 1 {
		t.Fatalf("CallsBy = %v, want one networks.get by the service account", s.CallsBy())
	}
	skew.Store(int64(601 * time.Second))
	if got := get(tok); got != 401 {
		t.Fatalf("networks.get with an expired token = %d, want 401", got)
	}
	skew.Store(0)

	// Delegation: the caller on relay, relay on deployer.
	body := `{` + scope + `,"delegates":["projects/-/serviceAccounts/` + relay + `"]}`
	if code, out = do(t, c, "POST", url(deployer), body); code != 403 {
		t.Fatalf("delegated without the caller's grant on the delegate = %d %v, want 403", code, out)
	}
	if err := s.GrantTokenCreator(s.Principal(), relay); err != nil {
		t.Fatal(err)
	}
	if code, out = do(t, c, "POST", url(deployer), body); code != 403 {
		t.Fatalf("delegated without the delegate's grant on the target = %d %v, want 403", code, out)
	}
	if err := s.GrantTokenCreator("serviceAccount:"+relay, deployer); err != nil {
		t.Fatal(err)
	}
	if code, out = do(t, c, "POST", url(deployer), body); code != 200 {
		t.Fatalf("delegated with both grants = %d %v, want 200", code, out)
	}
	if code, out = do(t, c, "POST", url(deployer), `{`+scope+`,"delegates":["projects/p/serviceAccounts/`+relay+`"]}`); code != 400 {
		t.Fatalf("a delegate without '-' = %d %v, want 400", code, out)
	}

	// A token's scopes bound the APIs it reaches: compute covers Compute
	// only, not Secret Manager.
	code, out = do(t, c, "POST", url(deployer), `{"scope":["https://www.googleapis.com/auth/compute"]}`)
	if code != 200 {
		t.Fatalf("a compute-scoped token = %d %v", code, out)
	}
	narrow, _ := out["accessToken"].(string)
	if got := get(narrow); got != 404 {
		t.Fatalf("Compute with a compute-scoped token = %d, want 404 (authenticated)", got)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/v1/projects/"+s.Project()+"/secrets", nil)
	req.Header.Set("Authorization", "Bearer "+narrow)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("Secret Manager with a compute-scoped token = %d, want 403 insufficient scopes", resp.StatusCode)
	}
}

// A Shared VPC host project's networks serve its attached service
// projects' instances only; its firewall rules are its own, and the
// emulator knows a host project for its networks alone.
func TestSharedVPCRules(t *testing.T) {
	s, err := gce.New(gce.Options{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := client(t, s)
	ctx := t.Context()
	if err := s.OwnerNetworkIn(ctx, "net-host", "shared", "nodes", "10.70.1.0/24"); err == nil {
		t.Fatal("a network in a project the server does not hold was made")
	}
	if err := s.OwnerSharedVPC("net-host", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.OwnerNetworkIn(ctx, "net-host", "shared", "nodes", "10.70.1.0/24"); err != nil {
		t.Fatal(err)
	}
	own := s.URL() + "/compute/v1/projects/" + s.Project()
	hostNet := "projects/net-host/global/networks/shared"
	fw := `{"name":"fw","network":"` + hostNet + `","sourceRanges":["10.0.0.0/8"],"allowed":[{"IPProtocol":"tcp"}]}`
	if code, out := do(t, c, "POST", own+"/global/firewalls", fw); code != 400 || !strings.Contains(fmt.Sprint(out), "Cross project referencing is not allowed") {
		t.Fatalf("a service project's rule on the host's network = %d %v, want 400 cross project", code, out)
	}
	if code, out := do(t, c, "POST", s.URL()+"/compute/v1/projects/net-host/global/firewalls", fw); code != 200 {
		t.Fatalf("the host's own rule = %d %v, want 200", code, out)
	}
	if code, _ := do(t, c, "GET", s.URL()+"/compute/v1/projects/net-host/zones/"+s.Zones()[0]+"/instances", ""); code != 404 {
		t.Fatalf("instances of a host project = %d, want 404: the emulator holds only its networks", code)
	}
	if code, _ := do(t, c, "GET", s.URL()+"/compute/v1/projects/other-project/global/networks/shared", ""); code != 404 {
		t.Fatalf("a project the server does not hold = %d, want 404", code)
	}
	// The host's network in the server's own project is not the host's.
	if code, _ := do(t, c, "GET", own+"/global/networks/shared", ""); code != 404 {
		t.Fatalf("the host's network read in the service project = %d, want 404", code)
	}
	if !s.HasNetworkIn("net-host", "shared", "nodes") || s.HasNetwork("shared", "nodes") {
		t.Fatal("HasNetworkIn/HasNetwork do not tell the host's network from the service project's")
	}
}
