package winrm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode/utf16"

	"github.com/mixedk8s/mixedk8s/internal/powershell"
	"github.com/mixedk8s/mixedk8s/transport"
)

// uploadMarker opens the upload script; the lab's Windows emulation
// recognises the script by it (test/lab/host.UploadMarker).
const uploadMarker = "# mixedk8s-upload v1"

// tmpSuffix names the file an upload streams into before it replaces the target.
const tmpSuffix = ".mixedk8s-tmp"

// Protected DACLs of owner-only uploads, as SDDL: SYSTEM and
// Administrators full control and nobody else, never inheriting from the
// folder above (https://learn.microsoft.com/windows/win32/secauthz/security-descriptor-string-format).
// C:\ProgramData passes Users read access and the right to create files
// and folders down to every new child (icacls C:\ProgramData:
// BUILTIN\Users:(OI)(CI)(RX) and BUILTIN\Users:(CI)(WD,AD,WEA,WA)), so a
// secret must be protected from its creation, in a folder made protected.
const (
	SecretFolderSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	SecretFileSDDL   = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
)

// uploadScript reads raw bytes from stdin into <path>.mixedk8s-tmp
// (truncating it first), prints "sha256 <hex> <length>", and moves the file
// over path only if the hash is want. With secret, a missing folder is
// created with SecretFolderSDDL and the file with SecretFileSDDL, from the
// first byte; a move within the volume keeps the file's own DACL. It stays
// short: the encoded command line must fit CreateProcess's 32767 characters.
func uploadScript(path, want string, secret bool) string {
	create := `[void][IO.Directory]::CreateDirectory([IO.Path]::GetDirectoryName($p))
$f = [IO.File]::Open($t, 'Create', 'Write', 'None')
`
	if secret {
		create = `$d = [IO.Path]::GetDirectoryName($p)
if (-not [IO.Directory]::Exists($d)) {
  $ds = New-Object Security.AccessControl.DirectorySecurity
  $ds.SetSecurityDescriptorSddlForm('` + SecretFolderSDDL + `')
  [void][IO.Directory]::CreateDirectory($d, $ds)
}
if ([IO.File]::Exists($t)) { [IO.File]::Delete($t) }
$fs = New-Object Security.AccessControl.FileSecurity
$fs.SetSecurityDescriptorSddlForm('` + SecretFileSDDL + `')
$f = [IO.File]::Create($t, 4096, 'None', $fs)
`
	}
	return uploadMarker + `
$ErrorActionPreference = 'Stop'
$p = ` + powershell.Quote(path) + `
$want = '` + want + `'
$t = $p + '` + tmpSuffix + `'
` + create + `$in = [Console]::OpenStandardInput()
$h = [Security.Cryptography.SHA256]::Create()
$b = New-Object byte[] 1048576
$n = 0
try {
  while (($r = $in.Read($b, 0, $b.Length)) -gt 0) {
    $f.Write($b, 0, $r); [void]$h.TransformBlock($b, 0, $r, $null, 0); $n += $r
  }
} finally { $f.Close() }
[void]$h.TransformFinalBlock($b, 0, 0)
$got = -join ($h.Hash | ForEach-Object { $_.ToString('x2') })
[Console]::Out.WriteLine("sha256 $got $n")
if ($got -ne $want) {
  Remove-Item -Force -LiteralPath $t
  [Console]::Error.WriteLine("upload of ${p}: SHA-256 $got does not match the expected $want")
  exit 3
}
Move-Item -Force -LiteralPath $t -Destination $p
exit 0
`
}

// encodePowerShell is the -EncodedCommand form of a script: UTF-16LE, base64.
func encodePowerShell(script string) string {
	u := utf16.Encode([]rune(script))
	raw := make([]byte, 2*len(u))
	for i, c := range u {
		raw[2*i], raw[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// Upload writes size bytes from r to path on the node through the stdin of
// one PowerShell process, in Send requests that fill the envelope. The node
// writes path+".mixedk8s-tmp", checks its SHA-256 against the source's, and
// only then moves it over path, so a half-written target never exists.
//
// A dropped connection fails the Upload (wrapping transport.ErrNotReady);
// calling Upload again restarts from the beginning: the script truncates the
// temporary file, and the target is untouched until a whole, verified copy
// exists. Restart rather than resume, because a reboot may leave the
// temporary file with unflushed or partial content that a resume would trust.
//
// A mode with no group or other bits (0600, 0400) makes the file owner-only
// from its creation: SYSTEM and Administrators only, in a folder created
// the same way when missing; other modes leave the file to inherit its
// folder's ACL.
//
// The SHA-256 must be known before the first byte is sent (the script checks
// against it), so a source that is not an io.ReadSeeker is spooled to a local
// temporary file first.
func (c *Conn) Upload(ctx context.Context, path string, r io.Reader, size int64, mode fs.FileMode) error {
	if !strings.Contains(path, `:\`) && !strings.HasPrefix(path, `\\`) {
		return fmt.Errorf("upload to %s on %s: the path is not an absolute Windows path; use a form like C:\\k\\file", path, c.cfg.Addr)
	}
	src, sum, cleanup, err := prepareSource(r, size)
	if err != nil {
		return fmt.Errorf("upload to %s on %s: %w", path, c.cfg.Addr, err)
	}
	defer cleanup()

	shellID, err := c.openShell(ctx)
	if err != nil {
		return c.uploadError(path, err)
	}
	defer c.closeShell(ctx, shellID)
	line := "powershell.exe -NoProfile -NonInteractive -EncodedCommand " + encodePowerShell(uploadScript(path, sum, mode.Perm()&0o077 == 0))
	commandID, err := c.startCommand(ctx, shellID, line, true, true)
	if err != nil {
		return c.uploadError(path, err)
	}
	if err := c.streamStdin(ctx, shellID, commandID, src); err != nil {
		if ctx.Err() != nil || !lost(err) {
			c.terminate(ctx, shellID, commandID)
		}
		if errors.Is(err, errSource) {
			return fmt.Errorf("upload to %s on %s: %w", path, c.cfg.Addr, err)
		}
		return c.uploadError(path, err)
	}
	var stdout, stderr bytes.Buffer
	code, err := c.receive(ctx, shellID, commandID, &limitedWriter{w: &stdout, n: 64 << 10}, &limitedWriter{w: &stderr, n: 64 << 10})
	if err != nil {
		if ctx.Err() != nil || !lost(err) {
			c.terminate(ctx, shellID, commandID)
		}
		return c.uploadError(path, err)
	}
	var got string
	var n int64
	for _, l := range strings.Split(stdout.String(), "\n") {
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "sha256 %s %d", &got, &n); err == nil {
			break
		}
	}
	if code != 0 {
		return fmt.Errorf("upload to %s on %s: the node's upload script exited %d: %s; check the path, free disk space, and that no running process holds the file",
			path, c.cfg.Addr, code, strings.TrimSpace(stderr.String()))
	}
	if got != sum {
		return fmt.Errorf("upload to %s on %s: the node computed SHA-256 %q over %d bytes, but the source's is %s over %d bytes; the file was not replaced, upload it again",
			path, c.cfg.Addr, got, n, sum, size)
	}
	return nil
}

var errSource = errors.New("read the source")

// streamStdin sends src as the command's stdin in envelope-filling chunks,
// the last one marked End. The next envelope is rendered while the current
// one travels, so encoding overlaps the network.
func (c *Conn) streamStdin(ctx context.Context, shellID, commandID string, src io.Reader) error {
	tmpl, err := c.newSendTemplate(shellID, commandID)
	if err != nil {
		return err
	}
	type envelope struct {
		body []byte
		last bool
		err  error
	}
	next := make(chan envelope, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		buf := make([]byte, c.chunkSize)
		for {
			n, rerr := io.ReadFull(src, buf)
			last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
			e := envelope{last: last}
			if rerr != nil && !last {
				e.err = fmt.Errorf("%w: %w", errSource, rerr)
			} else {
				e.body = tmpl.render(buf[:n], last)
			}
			select {
			case next <- e:
			case <-stop:
				return
			}
			if last || e.err != nil {
				return
			}
		}
	}()
	for e := range next {
		if e.err != nil {
			return e.err
		}
		if _, err := c.tr.post(ctx, e.body); err != nil {
			return err
		}
		if e.last {
			return nil
		}
	}
	return nil
}

func (c *Conn) uploadError(path string, err error) error {
	if lost(err) {
		return fmt.Errorf("upload to %s on %s: the connection or the shell was lost (%v): %w; the target is unchanged, call Upload again once the node is back (it restarts from the beginning)",
			path, c.cfg.Addr, err, transport.ErrNotReady)
	}
	return fmt.Errorf("upload to %s on %s: %w", path, c.cfg.Addr, err)
}

// prepareSource returns a reader of exactly size bytes positioned at their
// start and their SHA-256, spooling to a temporary file when r cannot seek.
func prepareSource(r io.Reader, size int64) (io.Reader, string, func(), error) {
	if size < 0 {
		return nil, "", nil, fmt.Errorf("size %d is negative", size)
	}
	h := sha256.New()
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			n, err := io.Copy(h, io.LimitReader(rs, size))
			if err != nil {
				return nil, "", nil, fmt.Errorf("read the source: %w", err)
			}
			if n != size {
				return nil, "", nil, fmt.Errorf("the source has %d bytes, not the %d announced", n, size)
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return nil, "", nil, fmt.Errorf("rewind the source: %w", err)
			}
			return io.LimitReader(rs, size), hex.EncodeToString(h.Sum(nil)), func() {}, nil
		}
	}
	f, err := os.CreateTemp("", "mixedk8s-upload-*")
	if err != nil {
		return nil, "", nil, fmt.Errorf("spool the source locally: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("the source has %d bytes, not the %d announced", n, size)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, "", nil, fmt.Errorf("spool the source locally: %w", err)
	}
	return f, hex.EncodeToString(h.Sum(nil)), cleanup, nil
}

// limitedWriter keeps the first n bytes and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	k := min(len(p), l.n)
	if k > 0 {
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
