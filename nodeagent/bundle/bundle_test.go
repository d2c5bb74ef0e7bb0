package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"testing/fstest"
)

func TestAgentAndCheck(t *testing.T) {
	data := []byte("agent")
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	full := fstest.MapFS{"bin/README.md": {Data: []byte("x")}}
	for _, p := range Platforms {
		n := fileName(p.GOOS, p.GOARCH)
		full["bin/"+n] = &fstest.MapFile{Data: data}
		full["bin/"+n+".sha256"] = &fstest.MapFile{Data: []byte(digest + "  " + n + "\n")}
	}
	if err := checkFrom(full); err != nil {
		t.Fatalf("Check with every binary: %v", err)
	}
	b, err := agentFrom(full, "windows", "amd64")
	if err != nil || b.SHA256 != digest || b.Name != "nodeagent.exe" || string(b.Data) != "agent" {
		t.Fatalf("Agent = %+v, %v", b, err)
	}

	empty := fstest.MapFS{"bin/README.md": {Data: []byte("x")}}
	err = checkFrom(empty)
	if err == nil || !strings.Contains(err.Error(), "make agent-bundle") || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("Check without binaries = %v", err)
	}

	full["bin/nodeagent-linux-amd64"] = &fstest.MapFile{Data: []byte("tampered")}
	if _, err := agentFrom(full, "linux", "amd64"); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("tampered binary accepted: %v", err)
	}
}

func TestEmbeddedPlaceholder(t *testing.T) {
	if _, err := bin.ReadFile("bin/README.md"); err != nil {
		t.Fatalf("the committed placeholder is not embedded: %v", err)
	}
}
