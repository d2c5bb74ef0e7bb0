// Package bundle embeds the node agent binaries the provisioner pushes to
// nodes (windows/amd64, linux/amd64, linux/arm64) with their SHA-256.
//
// The binaries are build output: `make agent-bundle`
// (hack/build-agent-bundle.sh) writes them to bin/ before the provider is
// built; only bin/README.md is committed, so Check fails with how to build
// them when they are missing.
package bundle

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed all:bin
var bin embed.FS

// Binary is one agent binary.
type Binary struct {
	// Name is the file name to use on the node (nodeagent.exe or nodeagent).
	Name   string
	Data   []byte
	SHA256 string
}

// Platforms the agent is built for.
var Platforms = []struct{ GOOS, GOARCH string }{{"windows", "amd64"}, {"linux", "amd64"}, {"linux", "arm64"}}

// DigestFile is the path, inside the bundle's folder, of the file holding a
// platform's agent digest (what `make agent-bundle` writes next to the binary).
func DigestFile(goos, goarch string) string { return "bin/" + fileName(goos, goarch) + ".sha256" }

func fileName(goos, goarch string) string {
	name := "nodeagent-" + goos + "-" + goarch
	if goos == "windows" {
		name += ".exe"
	}
	return name
}

// Agent returns the agent binary for a platform, checked against the digest written at build time.
func Agent(goos, goarch string) (Binary, error) {
	return agentFrom(bin, goos, goarch)
}

func agentFrom(fsys fs.FS, goos, goarch string) (Binary, error) {
	name := fileName(goos, goarch)
	data, err := fs.ReadFile(fsys, "bin/"+name)
	if err != nil {
		return Binary{}, fmt.Errorf("node agent for %s/%s is not in this build (bin/%s missing); fix: run `make agent-bundle` before building", goos, goarch, name)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	if want, err := fs.ReadFile(fsys, "bin/"+name+".sha256"); err == nil {
		if w := strings.Fields(string(want)); len(w) > 0 && w[0] != digest {
			return Binary{}, fmt.Errorf("node agent bin/%s has SHA-256 %s but its .sha256 file says %s; fix: run `make agent-bundle` again", name, digest, w[0])
		}
	}
	node := "nodeagent"
	if goos == "windows" {
		node += ".exe"
	}
	return Binary{Name: node, Data: data, SHA256: digest}, nil
}

// Check reports whether every platform's agent is embedded.
func Check() error { return checkFrom(bin) }

func checkFrom(fsys fs.FS) error {
	var missing []string
	for _, p := range Platforms {
		if _, err := agentFrom(fsys, p.GOOS, p.GOARCH); err != nil {
			missing = append(missing, p.GOOS+"/"+p.GOARCH)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("node agent binaries missing for %s; fix: run `make agent-bundle` (hack/build-agent-bundle.sh), then rebuild", strings.Join(missing, ", "))
	}
	return nil
}
