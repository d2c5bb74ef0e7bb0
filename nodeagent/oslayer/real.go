package oslayer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// realFiles is the file, download and command half shared by the real layers.
type realFiles struct {
	client *http.Client
}

func newRealFiles() realFiles {
	return realFiles{client: &http.Client{Timeout: 30 * time.Minute}}
}

func (realFiles) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (realFiles) Stat(path string) (fs.FileInfo, error) { return os.Stat(path) }

func (r realFiles) WriteFile(path string, data []byte, perm FileMode) error {
	w, err := r.Create(path+".tmp", perm)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return r.Rename(path+".tmp", path)
}

func (realFiles) Create(path string, perm FileMode) (io.WriteCloser, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create folder for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm.Perm())
	if err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", path, err)
	}
	// Protect before any byte lands, so a secret is never readable by others.
	if perm == Secret {
		if err := protect(path); err != nil {
			f.Close()
			return nil, err
		}
	} else if err := os.Chmod(path, perm.Perm()); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to set permissions on %s: %w", path, err)
	}
	return f, nil
}

func (realFiles) Open(path string) (io.ReadCloser, error) { return os.Open(path) }

func (realFiles) Rename(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("failed to move %s into place: %w", to, err)
	}
	return nil
}

func (realFiles) Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove %s: %w", path, err)
	}
	return nil
}

func (realFiles) MkdirAll(path string) error { return os.MkdirAll(path, 0o755) }

func (realFiles) Protect(path string) error { return protect(path) }

func (r realFiles) Fetch(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to download %s: %w", url, err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to download %s: %w; fix: check the node reaches it or set artifacts.mirrorBaseURL", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("failed to download %s: HTTP %s; fix: check the URL or the mirror", url, resp.Status)
	}
	return resp.Body, nil
}

func (realFiles) Run(ctx context.Context, c Command) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return out.Bytes(), &RunError{Command: c.String(), ExitCode: code, Output: out.String(), Err: err}
	}
	return out.Bytes(), nil
}

// runOutput runs a program and returns its trimmed output.
func (r realFiles) runOutput(ctx context.Context, path string, args ...string) (string, error) {
	out, err := r.Run(ctx, Command{Path: path, Args: args})
	return string(bytes.TrimSpace(out)), err
}
