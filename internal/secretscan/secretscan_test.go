package secretscan

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestScanFindsEachFormAndNamesNoValue(t *testing.T) {
	t.Parallel()
	var s Set
	s.Add("the token", []byte("abcdef.0123456789abcdef"))
	s.Add("a short one", []byte("1234")) // too short to tell from ordinary text
	raw := []byte{0, 1, 2, 250, 251, 252, 253, 254, 255}
	s.Add("the seed", raw)
	key := "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
	s.AddPEM("the host key", []byte(key+"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	if s.Len() != 3 {
		t.Fatalf("%d secrets kept, want 3 (the short one dropped, the certificate not a secret)", s.Len())
	}
	for _, c := range []struct {
		text, want string
	}{
		{"plain: abcdef.0123456789abcdef", "the token"},
		{`"b64": "` + base64.StdEncoding.EncodeToString([]byte("abcdef.0123456789abcdef")) + `"`, "the token"},
		{"hex " + hex.EncodeToString(raw), "the seed"},
		{"printed [0 1 2 250 251 252 253 254 255]", "the seed"},
		{`escaped "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"`, "the host key"},
		{"-----BEGIN EC PRIVATE KEY-----", "a private key in PEM form"},
	} {
		hits, err := s.Scan("out.log", strings.NewReader("first line\n"+c.text+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 || !strings.HasPrefix(hits[0], "out.log:2: ") || !strings.Contains(hits[0], c.want) {
			t.Errorf("%q: hits %q, want one naming %s at out.log:2", c.text, hits, c.want)
		}
		if strings.Contains(strings.Join(hits, ""), "0123456789") {
			t.Errorf("a hit shows the value: %q", hits)
		}
	}
	if hits, _ := s.Scan("clean.log", strings.NewReader("1234 abcdef nothing here\n")); len(hits) != 0 {
		t.Errorf("clean text: hits %q", hits)
	}
}
