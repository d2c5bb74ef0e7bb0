// Package mirror serves stand-in artifacts for a versions manifest on
// 127.0.0.1, with checksum files that match them, so the agent's real
// download-and-verify path runs in the sandbox and the lab without the
// internet. Each artifact is small but well formed: archives are .tar.gz
// holding the files the steps expect, binaries are a short text.
//
// Paths are the artifacts' URL paths, so a config whose
// artifacts.mirrorBaseURL is the mirror's URL reaches it unchanged.
package mirror

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// Mirror is an http.Handler serving a manifest's stand-in artifacts.
type Mirror struct {
	files map[string][]byte
	mu    sync.Mutex
	hits  map[string]int
}

// New builds the stand-in files of every artifact and checksum file in m.
func New(m *contract.Manifest) (*Mirror, error) {
	mr := &Mirror{files: map[string][]byte{}, hits: map[string]int{}}
	sums := map[string]*bytes.Buffer{}
	for _, a := range m.Artifacts {
		u, err := url.Parse(a.URL)
		if err != nil {
			return nil, fmt.Errorf("mirror: artifact %s URL %q: %w", a.Name, a.URL, err)
		}
		data, err := standIn(a)
		if err != nil {
			return nil, err
		}
		mr.files[u.Path] = data
		h := sha256.Sum256(data)
		sumURL := a.SHA256URL
		if sumURL == "" && a.SHA256 != "" {
			// A pinned artifact: the mirror's own checksum file, where manifest.For looks for it.
			sumURL = a.URL + ".sha256"
		}
		if sumURL == "" {
			continue
		}
		su, err := url.Parse(sumURL)
		if err != nil {
			return nil, fmt.Errorf("mirror: artifact %s sha256URL %q: %w", a.Name, sumURL, err)
		}
		if sums[su.Path] == nil {
			sums[su.Path] = &bytes.Buffer{}
		}
		fmt.Fprintf(sums[su.Path], "%s  %s\n", hex.EncodeToString(h[:]), path.Base(u.Path))
	}
	for p, b := range sums {
		mr.files[p] = b.Bytes()
	}
	return mr, nil
}

// Digest returns the SHA-256 of the stand-in served at an artifact URL's path.
func (mr *Mirror) Digest(artifactURL string) string {
	u, _ := url.Parse(artifactURL)
	h := sha256.Sum256(mr.files[u.Path])
	return hex.EncodeToString(h[:])
}

// Hits returns how often each path was served.
func (mr *Mirror) Hits() map[string]int {
	mr.mu.Lock()
	defer mr.mu.Unlock()
	out := map[string]int{}
	for k, v := range mr.hits {
		out[k] = v
	}
	return out
}

func (mr *Mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, ok := mr.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	mr.mu.Lock()
	mr.hits[r.URL.Path]++
	mr.mu.Unlock()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

// Serve listens on 127.0.0.1 and returns the base URL and a stop function.
func Serve(h http.Handler) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("mirror: failed to listen on 127.0.0.1: %w", err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// archiveEntries are the files the real archives hold, as the steps install them.
func archiveEntries(a contract.Artifact) []string {
	exe := ""
	if a.OS == "windows" {
		exe = ".exe"
	}
	switch a.Name {
	case "containerd":
		if a.OS == "windows" {
			return []string{"bin/containerd.exe", "bin/ctr.exe", "bin/containerd-shim-runhcs-v1.exe"}
		}
		return []string{"bin/containerd", "bin/ctr", "bin/containerd-shim-runc-v2"}
	case "cni-plugins":
		if a.OS == "windows" {
			// containernetworking/plugins >= 1.0 has no flannel (moved to flannel-io/cni-plugin).
			return []string{"./win-overlay.exe", "./win-bridge.exe", "./host-local.exe"}
		}
		return []string{"./bridge", "./host-local", "./loopback", "./portmap", "./flannel"}
	case "crictl":
		return []string{"crictl" + exe}
	}
	return []string{a.Name + exe}
}

func standIn(a contract.Artifact) ([]byte, error) {
	if !strings.HasSuffix(a.URL, ".tar.gz") && !strings.HasSuffix(a.URL, ".tgz") {
		return []byte(fmt.Sprintf("stand-in %s %s for %s/%s\n", a.Name, a.Version, a.OS, a.Arch)), nil
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range archiveEntries(a) {
		body := []byte("stand-in " + name + " from " + a.Name + " " + a.Version + "\n")
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
