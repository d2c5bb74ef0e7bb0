// Package secretscan looks for a cluster's secrets in what the project
// prints and logs: the tests that drive Apply and Destroy collect the
// secrets from where they live, then scan every line of output for them.
package secretscan

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// minLen is the shortest value kept: shorter ones (a port, a name) would
// match ordinary text.
const minLen = 8

// Set is every secret collected so far, by what it is. Safe for concurrent use.
type Set struct {
	mu     sync.Mutex
	values map[string]string // value -> what it is
}

// Len is the number of secrets collected.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// Add records a secret; what names it in a hit, never the value.
func (s *Set) Add(what string, value []byte) {
	v := strings.TrimSpace(string(value))
	if len(v) < minLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	if _, ok := s.values[v]; !ok {
		s.values[v] = what
	}
}

// AddPEM adds each private key of a PEM bundle.
func (s *Set) AddPEM(what string, data []byte) {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			s.Add(what+" (private key)", pem.EncodeToMemory(b))
		}
	}
}

// needles are the forms a secret may take in output: as it is, base64
// (standard, URL, unpadded, as JSON encodes bytes), hex, and for a PEM key
// the first line of its body, which survives any escaping of newlines.
func needles(v string) []string {
	out := []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))}
	if b, _ := pem.Decode([]byte(v)); b != nil {
		body := base64.StdEncoding.EncodeToString(b.Bytes)
		return append(out, body[:min(64, len(body))])
	}
	if !isPrintable(v) {
		out = append(out, hex.EncodeToString([]byte(v)), byteList([]byte(v)))
	}
	return out
}

// byteList is a byte slice as %v prints it: "[1 2 3]".
func byteList(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = strconv.Itoa(int(c))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func isPrintable(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e })
}

var pemPrivateKey = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// Scan reads r line by line and returns one line per secret found: what it
// is and where (name:line), never the value. Any private key in PEM form
// is a hit too.
func (s *Set) Scan(name string, r io.Reader) ([]string, error) {
	s.mu.Lock()
	type needle struct{ text, what string }
	var all []needle
	for v, what := range s.values {
		for _, n := range needles(v) {
			all = append(all, needle{n, what})
		}
	}
	s.mu.Unlock()
	var hits []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		for _, n := range all {
			if strings.Contains(text, n.text) && !seen[n.what] {
				seen[n.what] = true
				hits = append(hits, fmt.Sprintf("%s:%d: %s", name, line, n.what))
			}
		}
		if pemPrivateKey.MatchString(text) && !seen["pem"] {
			seen["pem"] = true
			hits = append(hits, fmt.Sprintf("%s:%d: a private key in PEM form", name, line))
		}
	}
	slices.Sort(hits)
	return hits, sc.Err()
}
