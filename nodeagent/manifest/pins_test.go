package manifest

import (
	"cmp"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// unpinned are the artifacts that keep their publisher's checksum file, each
// for the reason pins.go gives; any other artifact without a pin fails the
// test below.
var unpinned = map[string]bool{KubeLogRunner + " windows": true}

// Every pin is a SHA-256 of an artifact a built-in manifest names, and every
// artifact of every release carries its pin but the listed exceptions.
func TestPinsCoverTheBuiltinArtifacts(t *testing.T) {
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
			if a.SHA256 == "" && a.SHA256URL == "" {
				t.Errorf("Kubernetes %s: %s %s for %s/%s has neither a pin nor a checksum file", v, a.Name, a.Version, a.OS, a.Arch)
			}
			if a.SHA256 == "" && !unpinned[a.Name+" "+a.OS] {
				t.Errorf("Kubernetes %s: %s %s for %s/%s (%s) has no pinned digest; fix: pin it in pins.go with its source", v, a.Name, a.Version, a.OS, a.Arch, a.URL)
			}
		}
	}
	for u, d := range pins {
		if b, err := hex.DecodeString(d); err != nil || len(b) != 32 || d != strings.ToLower(d) {
			t.Errorf("pin of %s is not a SHA-256 in lower-case hex: %q", u, d)
		}
		if !used[u] {
			t.Errorf("pin of %s names no built-in artifact", u)
		}
	}
}

// A release the build lists has components, and each supported minor
// resolves to its newest release.
func TestReleasesResolve(t *testing.T) {
	vs := Versions()
	if !slices.IsSortedFunc(vs, compareReleases) {
		t.Errorf("Versions() = %v, want oldest first", vs)
	}
	for _, v := range vs {
		if _, ok := ComponentsFor(v); !ok {
			t.Errorf("release %s has no components", v)
		}
		if _, ok := ComponentsFor("v" + v); !ok {
			t.Errorf("release v%s (with a v) has no components", v)
		}
	}
	for minor, want := range map[string]string{"1.34": "1.34.11", "1.35": "1.35.8", "1.36": "1.36.4"} {
		if got, ok := Newest(minor); !ok || got != want {
			t.Errorf("Newest(%q) = %q, %v; want %q", minor, got, ok, want)
		}
	}
	for _, v := range []string{"1.37", "1.33", "1", ""} {
		if got, ok := Newest(v); ok {
			t.Errorf("Newest(%q) = %q, want none", v, got)
		}
	}
	for _, v := range []string{"1.36.5", "1.34.5", "1.37.0", "1.36"} {
		if _, ok := ComponentsFor(v); ok {
			t.Errorf("ComponentsFor(%q) has components; it has no pinned artifacts", v)
		}
		if _, err := Builtin(v); err == nil || !strings.Contains(err.Error(), "1.36.4") {
			t.Errorf("Builtin(%q): want an error naming the releases (1.36.4), got %v", v, err)
		}
	}
}

// compareReleases orders MAJOR.MINOR.PATCH numerically.
func compareReleases(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range pa {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
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
	// A pin with no publisher checksum file (flannel's Windows binaries): the mirror's own file beside it.
	for _, name := range []string{Flanneld, FlannelCNI} {
		a, err := Find(m, name, "windows", "amd64")
		if err != nil || a.SHA256 != "" || a.SHA256URL != a.URL+".sha256" || !strings.HasPrefix(a.URL, "https://mirror.example.com/k8s/") {
			t.Errorf("trusting the mirror: %s is %+v (%v), want the mirror's %s.sha256", name, a, err, a.URL)
		}
	}
	cfg.Artifacts.MirrorBaseURL = ""
	if _, err := For(cfg); err == nil || !strings.Contains(err.Error(), "mirrorBaseURL") {
		t.Errorf("trusting no mirror: want an error naming mirrorBaseURL, got %v", err)
	}
}
