package gce_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
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
