package manifest

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// Every pin is a SHA-256 of an artifact a built-in manifest names, and every
// Linux artifact with a published digest carries its pin.
func TestPinsCoverTheBuiltinLinuxArtifacts(t *testing.T) {
	used := map[string]bool{}
	for _, v := range Versions() {
		m, err := Builtin(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range m.Artifacts {
			if a.SHA256 != "" {
				used[a.URL] = true
			}
			if a.SHA256 == "" && a.SHA256URL == "" && a.Name != TigeraOperator {
				t.Errorf("Kubernetes %s: %s %s for %s/%s has neither a pin nor a checksum file", v, a.Name, a.Version, a.OS, a.Arch)
			}
			if a.OS == "linux" && a.Name != TigeraOperator && a.SHA256 == "" {
				t.Errorf("Kubernetes %s: %s %s for linux/%s has no pinned digest", v, a.Name, a.Version, a.Arch)
			}
		}
	}
	for u, d := range pins {
		if b, err := hex.DecodeString(d); err != nil || len(b) != 32 {
			t.Errorf("pin of %s is not a SHA-256 in hex: %q", u, d)
		}
		if !used[u] {
			t.Errorf("pin of %s names no built-in artifact", u)
		}
	}
}

// A mirror serves the publishers' files, so the pins still decide; only an
// explicit opt-in lets the mirror's checksum files replace them.
func TestMirrorChecksumsReplacePinsOnlyWhenTrusted(t *testing.T) {
	const kubelet = "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet"
	cfg := contract.Config{Cluster: contract.Cluster{KubernetesVersion: "1.36.3"}}
	cfg.Artifacts.MirrorBaseURL = "https://mirror.example.com/k8s"
	find := func(m *contract.Manifest) contract.Artifact {
		for _, a := range m.Artifacts {
			if strings.HasSuffix(a.URL, "/release/v1.36.3/bin/linux/amd64/kubelet") {
				return a
			}
		}
		t.Fatal("no linux/amd64 kubelet in the manifest")
		return contract.Artifact{}
	}
	m, err := For(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a := find(m); a.SHA256 != pins[kubelet] || !strings.HasPrefix(a.URL, "https://mirror.example.com/k8s/") {
		t.Errorf("through a mirror: %+v, want the pin %s and the mirror's URL", a, pins[kubelet])
	}
	cfg.Artifacts.TrustMirrorChecksums = true
	if m, err = For(cfg); err != nil {
		t.Fatal(err)
	}
	if a := find(m); a.SHA256 != "" || !strings.HasPrefix(a.SHA256URL, "https://mirror.example.com/k8s/") {
		t.Errorf("trusting the mirror: %+v, want no pin and the mirror's checksum file", a)
	}
	cfg.Artifacts.MirrorBaseURL = ""
	if _, err := For(cfg); err == nil || !strings.Contains(err.Error(), "mirrorBaseURL") {
		t.Errorf("trusting no mirror: want an error naming mirrorBaseURL, got %v", err)
	}
}
