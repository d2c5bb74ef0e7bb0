package ssh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"
)

// Upload tuning: 64 requests of 128 KiB in flight keep a long link busy. 128
// KiB writes fit both OpenSSH's sftp-server (256 KiB messages) and pkg/sftp's
// server.
const (
	uploadPacket      = 128 << 10
	uploadConcurrency = 64
	tmpSuffix         = ".mixedk8s-tmp"
)

// Upload writes size bytes from r to dst (an absolute path) with mode.
//
// The bytes go to dst+".mixedk8s-tmp" beside the target (created with mode
// before any byte is written, so a secret is never readable by others),
// which is fsynced when the server supports it, checked for size and, unless
// Config.SkipChecksum, for SHA-256 with a remote `sha256sum`, and then
// renamed over dst (posix-rename: atomic on one file system). dst is thus
// either the old file or the whole new one. Parent directories are created.
//
// A dropped connection fails the Upload with an error wrapping
// transport.ErrRebooting; there is no resume: the next Upload (on a new
// Conn) starts from zero and truncates the leftover tmp file. With sudo, the
// transfer runs through `sudo -n <Config.SFTPServer>`.
//
// Cancelling ctx closes the SFTP channel; Upload returns within about a
// second even if r blocks.
func (c *Conn) Upload(ctx context.Context, dst string, r io.Reader, size int64, mode fs.FileMode) error {
	if !path.IsAbs(dst) || path.Clean(dst) != dst {
		return fmt.Errorf("upload to %s:%s: path is not absolute and clean; fix: pass a path like /opt/mixedk8s/agent", c.cfg.Addr, dst)
	}
	if size < 0 {
		return fmt.Errorf("upload to %s:%s: negative size %d", c.cfg.Addr, dst, size)
	}
	s, err := c.newSession(ctx)
	if err != nil {
		return fmt.Errorf("upload to %s:%s: open session: %w", c.cfg.Addr, dst, err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- c.upload(ctx, s, dst, r, size, mode) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		s.Close()
		select {
		case <-done: //nolint:errcheck // the session is gone; its error says nothing new
		case <-time.After(cancelGrace):
		}
		return fmt.Errorf("upload to %s:%s: %w", c.cfg.Addr, dst, ctx.Err())
	}
}

func (c *Conn) upload(ctx context.Context, s sftpSession, dst string, r io.Reader, size int64, mode fs.FileMode) (err error) {
	fail := func(step string, err error) error {
		if !c.Alive() || isDropped(err) && c.diedWithin(time.Second) {
			return c.sessionError("upload", dst, fmt.Errorf("%s: %w", step, err))
		}
		return fmt.Errorf("upload to %s:%s: %s: %w", c.cfg.Addr, dst, step, err)
	}
	client, err := c.openSFTP(s)
	if err != nil {
		return fail("start sftp", err)
	}
	defer client.Close()

	tmp := dst + tmpSuffix
	if err := client.MkdirAll(path.Dir(dst)); err != nil {
		return fail("create directory "+path.Dir(dst), err)
	}
	f, err := client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fail("create "+tmp, err)
	}
	defer func() {
		if err != nil && c.Alive() && ctx.Err() == nil {
			_ = client.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode.Perm()); err != nil {
		f.Close()
		return fail("chmod "+tmp, err)
	}
	src := &hashingReader{r: io.LimitReader(r, size), h: sha256.New(), size: size}
	n, err := f.ReadFrom(src)
	if err != nil {
		f.Close()
		return fail("write "+tmp, err)
	}
	if n != size {
		f.Close()
		return fmt.Errorf("upload to %s:%s: the source gave %d bytes, %d were announced; fix: pass the real size", c.cfg.Addr, dst, n, size)
	}
	if v, ok := client.HasExtension("fsync@openssh.com"); ok && v == "1" {
		if err := f.Sync(); err != nil {
			f.Close()
			return fail("fsync "+tmp, err)
		}
	}
	if err := f.Close(); err != nil {
		return fail("close "+tmp, err)
	}
	st, err := client.Stat(tmp)
	if err != nil {
		return fail("stat "+tmp, err)
	}
	if st.Size() != size {
		return fmt.Errorf("upload to %s:%s: %s has %d bytes after writing %d; fix: check free space on the node", c.cfg.Addr, dst, tmp, st.Size(), size)
	}
	if !c.cfg.SkipChecksum {
		want := hex.EncodeToString(src.h.Sum(nil))
		if err := c.checkSHA256(ctx, tmp, want); err != nil {
			return err
		}
	}
	if _, ok := client.HasExtension("posix-rename@openssh.com"); ok {
		err = client.PosixRename(tmp, dst)
	} else {
		// Plain SFTP rename refuses an existing target; mv replaces it atomically.
		var stderr bytes.Buffer
		var code int
		code, err = c.Run(ctx, "mv -f "+shellQuote(tmp)+" "+shellQuote(dst), nil, &stderr)
		if err == nil && code != 0 {
			err = fmt.Errorf("mv exited %d: %s", code, strings.TrimSpace(stderr.String()))
		}
	}
	if err != nil {
		return fail("rename "+tmp+" to "+dst, err)
	}
	return nil
}

// checkSHA256 compares the node's sha256sum of p with want.
func (c *Conn) checkSHA256(ctx context.Context, p, want string) error {
	var stdout, stderr bytes.Buffer
	code, err := c.Run(ctx, "sha256sum "+shellQuote(p), &stdout, &stderr)
	if err != nil {
		return fmt.Errorf("upload to %s: verify %s: %w", c.cfg.Addr, p, err)
	}
	if code != 0 {
		return fmt.Errorf("upload to %s: verify %s: sha256sum exited %d: %s; fix: install coreutils on the node or set SkipChecksum", c.cfg.Addr, p, code, strings.TrimSpace(stderr.String()))
	}
	got, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), " ")
	if got != want {
		return fmt.Errorf("upload to %s: %s has SHA-256 %s, sent %s: the file was altered in transit or on disk; fix: retry the upload and check the node's disk", c.cfg.Addr, p, got, want)
	}
	return nil
}

// sftpSession is the part of *ssh.Session the SFTP client needs.
type sftpSession interface {
	StdinPipe() (io.WriteCloser, error)
	StdoutPipe() (io.Reader, error)
	RequestSubsystem(string) error
	Start(string) error
}

// openSFTP starts the sftp subsystem on s, or the sftp-server program
// through sudo when uploads need root.
func (c *Conn) openSFTP(s sftpSession) (*sftp.Client, error) {
	stdin, err := s.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if c.useSudo() {
		server := c.cfg.SFTPServer
		if server == "" {
			server = defaultSFTPServer
		}
		// -u 077: files are owner-only from creation, before the chmod gives
		// them their mode (sftp-server(8)); configs hold tokens and keys.
		err = s.Start("sudo -n " + shellQuote(server) + " -u 077")
	} else {
		err = s.RequestSubsystem("sftp")
	}
	if err != nil {
		return nil, err
	}
	client, err := sftp.NewClientPipe(stdout, stdin,
		sftp.MaxPacketUnchecked(uploadPacket),
		sftp.UseConcurrentWrites(true),
		sftp.MaxConcurrentRequestsPerFile(uploadConcurrency),
	)
	if err != nil && c.useSudo() {
		return nil, fmt.Errorf("%w; fix: allow passwordless sudo for %s and check Config.SFTPServer", err, c.cfg.User)
	}
	return client, err
}

// hashingReader hashes what passes through it; Size lets pkg/sftp write
// concurrently.
type hashingReader struct {
	r    io.Reader
	h    hash.Hash
	size int64
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	return n, err
}

func (hr *hashingReader) Size() int64 { return hr.size }
