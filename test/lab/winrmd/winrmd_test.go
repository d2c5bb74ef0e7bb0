package winrmd

import (
	"strings"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"
)

func TestNTLMAcceptsOnlyTheRightPassword(t *testing.T) {
	t.Parallel()
	users := func(u string) (string, bool) {
		if strings.EqualFold(u, "Administrator") {
			return "Right-Pa55", true
		}
		return "", false
	}
	for _, tc := range []struct {
		user, password string
		ok             bool
	}{
		{"Administrator", "Right-Pa55", true},
		{"administrator", "Right-Pa55", true},
		{"Administrator", "wrong", false},
		{"nobody", "Right-Pa55", false},
	} {
		challenge, sc, err := ntlmChallenge("WIN-1")
		if err != nil {
			t.Fatal(err)
		}
		auth, err := ntlmssp.ProcessChallenge(challenge, tc.user, tc.password, true)
		if err != nil {
			t.Fatalf("the initiator refused our CHALLENGE: %v", err)
		}
		user, err := ntlmVerify(auth, sc, users)
		if (err == nil) != tc.ok || (tc.ok && user != tc.user) {
			t.Errorf("%s/%s: user %q, err %v; want ok=%v", tc.user, tc.password, user, err, tc.ok)
		}
		// A replay against another challenge fails.
		if tc.ok {
			_, sc2, _ := ntlmChallenge("WIN-1")
			if _, err := ntlmVerify(auth, sc2, users); err == nil {
				t.Error("an AUTHENTICATE message verified against another challenge")
			}
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"PT60S":     time.Minute,
		"PT20.000S": 20 * time.Second,
		"PT0.300S":  300 * time.Millisecond,
		"PT1M30S":   90 * time.Second,
	} {
		if got, ok := parseDuration(in); !ok || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	if _, ok := parseDuration("60"); ok {
		t.Error("parseDuration accepted a bare number")
	}
}

func TestParseEnvelopeFastPathMatchesXML(t *testing.T) {
	t.Parallel()
	payload := strings.Repeat("QUJD", 40000)
	send := func(data string) string {
		return `<s:Envelope xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddressing + `" xmlns:w="` + nsWSMan + `" xmlns:rsp="` + nsShell + `">` +
			`<s:Header><a:Action>` + actionSend + `</a:Action><w:SelectorSet><w:Selector Name="ShellId">S1</w:Selector></w:SelectorSet></s:Header>` +
			`<s:Body><rsp:Send><rsp:Stream Name="stdin" CommandId="C1" End="true">` + data + `</rsp:Stream></rsp:Send></s:Body></s:Envelope>`
	}
	for name, tc := range map[string]struct{ body, want string }{
		"plain base64":      {send(payload), payload},
		"CDATA falls back":  {send("<![CDATA[" + payload + "]]>"), payload},
		"entity falls back": {send(payload + "&#x41;"), payload + "A"},
	} {
		env, err := parseEnvelope([]byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st := env.Body.Send.Streams
		if len(st) != 1 || st[0].Data != tc.want || st[0].CommandID != "C1" || st[0].End != "true" || env.selector("ShellId") != "S1" {
			t.Errorf("%s: parsed %d streams, data %d bytes", name, len(st), len(st[0].Data))
		}
	}
}
