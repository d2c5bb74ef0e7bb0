package powershell

import (
	"strings"
	"testing"
)

func TestQuoteDoublesEverySingleQuoteCharacter(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                 "'plain'",
		"it's":                  "'it''s'",
		"a\u2019; calc; \u2018": "'a\u2019\u2019; calc; \u2018\u2018'",
		"\u201a\u201b":          "'\u201a\u201a\u201b\u201b'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whatever the value, the literal has no lone quote character inside, and
// Unquote gives the value back.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "'", "\u2019'", "x\u2018\u2018y", "'';"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !strings.ContainsRune(s, '\uFFFD') {
			q := Quote(s)
			body := []rune(q[1 : len(q)-1])
			for i := 0; i < len(body); i++ {
				if isSingleQuote(body[i]) {
					if i+1 >= len(body) || !isSingleQuote(body[i+1]) {
						t.Fatalf("Quote(%q) = %q ends the literal early at %d", s, q, i)
					}
					i++
				}
			}
			if got := Unquote(q[1 : len(q)-1]); got != s {
				t.Fatalf("Unquote(Quote(%q)) = %q", s, got)
			}
		}
	})
}
