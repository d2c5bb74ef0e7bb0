package manifest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strings"
)

// CalicoVersion is the Calico release whose manifests the agent carries.
// docs.tigera.io/calico/3.32 (the docs' "latest" as of this pin) tests it
// against Kubernetes 1.34, 1.35 and 1.36 and supports Calico for Windows on
// Windows Server 2019 (1809) and 2022 (cluster/validate.go applies both).
const CalicoVersion = "3.32.1"

// calicoSource is where the manifests come from: the release tag v3.32.1,
// commit 0ca9d1b93644778cafdf1812f3dda02ac0c361e8 of projectcalico/calico,
// as raw.githubusercontent.com serves them and as Calico's install guide
// applies them (docs.tigera.io/calico/3.32/getting-started/kubernetes/
// self-managed-onprem/onpremises: v1_crd_projectcalico_org.yaml, then
// tigera-operator.yaml).
const calicoSource = "https://raw.githubusercontent.com/projectcalico/calico/v" + CalicoVersion + "/manifests/"

// calicoPins are the SHA-256 digests of those files, by URL. Calico
// publishes no checksum file for its manifests, so the files travel inside
// the agent instead of being downloaded: each digest is of the file's blob
// at the tag (git show v3.32.1:manifests/<file> | sha256sum), and the agent
// checks the embedded copy against it before applying it.
var calicoPins = map[string]string{
	calicoSource + "v1_crd_projectcalico_org.yaml": "192f8b2d934ef24b62e86b7e1a6e1762d1c8af26a916f78057bc13fa5ed60f71",
	calicoSource + "tigera-operator.yaml":          "f18e073794207d372606bc3ea6f8fd73972f86d6828f4ba666dfe0d4aa8ab07f",
}

// calicoFiles are the embedded copies; the 3 MB of CRDs are gzipped.
//
//go:embed calico/tigera-operator.yaml calico/v1_crd_projectcalico_org.yaml.gz
var calicoFiles embed.FS

// CalicoManifest is one upstream Calico manifest, verified.
type CalicoManifest struct {
	// Name is the file's name upstream, e.g. "tigera-operator.yaml".
	Name string
	// URL and SHA256 say where it is published and what it must hash to.
	URL, SHA256 string
	// Data is the file as published.
	Data []byte
	// CRDs: the file holds CustomResourceDefinitions only, which must be
	// Established before the objects that use them are applied.
	CRDs bool
}

// CalicoManifests returns the Calico manifests in the order they are
// applied (CRDs, then the operator), each checked against its pin.
func CalicoManifests() ([]CalicoManifest, error) {
	var out []CalicoManifest
	for _, name := range []string{"v1_crd_projectcalico_org.yaml", "tigera-operator.yaml"} {
		data, err := calicoFile(name)
		if err != nil {
			return nil, err
		}
		u := calicoSource + name
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != calicoPins[u] {
			return nil, fmt.Errorf("the embedded Calico manifest %s hashes to %s, not %s pinned for %s; fix: rebuild the agent from a clean checkout", name, got, calicoPins[u], u)
		}
		out = append(out, CalicoManifest{Name: name, URL: u, SHA256: calicoPins[u], Data: data, CRDs: strings.HasPrefix(name, "v1_crd_")})
	}
	return out, nil
}

func calicoFile(name string) ([]byte, error) {
	if data, err := calicoFiles.ReadFile(path.Join("calico", name)); err == nil {
		return data, nil
	}
	gz, err := calicoFiles.ReadFile(path.Join("calico", name+".gz"))
	if err != nil {
		return nil, fmt.Errorf("the agent carries no Calico manifest %s: %w", name, err)
	}
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("the embedded Calico manifest %s.gz: %w", name, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}
