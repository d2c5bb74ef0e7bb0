package manifest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// DigestError is a downloaded artifact whose SHA-256 is not the expected one.
type DigestError struct {
	Artifact string
	URL      string
	Expected string
	Actual   string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("artifact %s from %s has SHA-256 %s, expected %s; the file was discarded; fix: check the mirror serves the publisher's file, or correct the digest in the manifest",
		e.Artifact, e.URL, e.Actual, e.Expected)
}

// ExpectedDigest returns the pinned digest, or reads it from the artifact's checksum file.
func ExpectedDigest(ctx context.Context, o oslayer.Fetcher, a contract.Artifact) (string, error) {
	if a.SHA256 != "" {
		return strings.ToLower(a.SHA256), nil
	}
	if a.SHA256URL == "" {
		return "", fmt.Errorf("artifact %s %s has neither sha256 nor sha256URL; fix: add one to the manifest", a.Name, a.Version)
	}
	body, err := o.Fetch(ctx, a.SHA256URL)
	if err != nil {
		return "", fmt.Errorf("failed to fetch the checksum of %s: %w", a.Name, err)
	}
	defer body.Close()
	return parseChecksum(io.LimitReader(body, 1<<20), path.Base(a.URL), a)
}

// parseChecksum reads "<hex>" or sha256sum lines "<hex>  <file>", picking the line of file.
func parseChecksum(r io.Reader, file string, a contract.Artifact) (string, error) {
	sc := bufio.NewScanner(r)
	var only string
	lines := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		lines++
		if len(f) == 1 {
			only = f[0]
			continue
		}
		if strings.TrimPrefix(f[1], "*") == file {
			return validHex(f[0], a)
		}
		only = f[0]
	}
	if lines == 1 && only != "" {
		return validHex(only, a)
	}
	return "", fmt.Errorf("checksum file %s has no line for %s; fix: check the mirror serves the publisher's checksum file", a.SHA256URL, file)
}

func validHex(s string, a contract.Artifact) (string, error) {
	s = strings.ToLower(s)
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("checksum file %s for %s does not hold a SHA-256 (%q); fix: check the mirror", a.SHA256URL, a.Name, s)
	}
	return s, nil
}

// Download fetches an artifact to dest, hashing while it streams to a
// temporary file that only becomes dest when the digest matches. It returns the digest.
func Download(ctx context.Context, net oslayer.Fetcher, files oslayer.Files, a contract.Artifact, dest string) (string, error) {
	want, err := ExpectedDigest(ctx, net, a)
	if err != nil {
		return "", err
	}
	body, err := net.Fetch(ctx, a.URL)
	if err != nil {
		return "", fmt.Errorf("failed to download %s: %w", a.Name, err)
	}
	defer body.Close()
	tmp := dest + ".partial"
	w, err := files.Create(tmp, oslayer.Public)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(w, h), body)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = files.Remove(tmp)
		return "", fmt.Errorf("failed to download %s from %s: %w", a.Name, a.URL, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		_ = files.Remove(tmp)
		return "", &DigestError{Artifact: a.Name + " " + a.Version, URL: a.URL, Expected: want, Actual: got}
	}
	if err := files.Rename(tmp, dest); err != nil {
		return "", err
	}
	return got, nil
}
