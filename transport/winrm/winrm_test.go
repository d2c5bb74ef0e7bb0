package winrm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mwinrm "github.com/masterzen/winrm"

	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/test/lab/winrmd"
	"github.com/mixedk8s/mixedk8s/transport"
)

func TestRunRoundTrip(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	for _, auth := range []Auth{NTLM, Basic} {
		c := l.connect(t, l.config(auth))
		for _, tc := range []struct {
			cmd      string
			stdout   string
			stderr   string
			exitCode int
		}{
			{cmd: "hostname", stdout: labHostName + "\r\n"},
			{cmd: "whoami", stdout: labHostName + `\administrator` + "\r\n"},
			{cmd: "exit 7", exitCode: 7},
			{cmd: "echo hello world", stdout: "hello world\r\n"},
			{cmd: "powershell -NoProfile -EncodedCommand " + encodePowerShell("Write-Output 'from ps'; exit 3"), stdout: "from ps\r\n", exitCode: 3},
			{cmd: "powershell -Command Frobnicate-Thing", stderr: "The term 'Frobnicate-Thing' is not recognized", exitCode: 1},
			{cmd: "no-such-program", stderr: "is not recognized as an internal or external command", exitCode: 9009},
		} {
			var stdout, stderr bytes.Buffer
			code, err := c.Run(context.Background(), tc.cmd, &stdout, &stderr)
			if err != nil {
				t.Fatalf("%s: Run(%q): %v", auth, tc.cmd, err)
			}
			if code != tc.exitCode || stdout.String() != tc.stdout || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("%s: Run(%q) = %d, stdout %q, stderr %q; want %d, %q, stderr containing %q",
					auth, tc.cmd, code, stdout.String(), stderr.String(), tc.exitCode, tc.stdout, tc.stderr)
			}
		}
	}
	if n := l.srv.Shells(); n != 0 {
		t.Errorf("%d shells left open after the runs; every Run must delete its shell", n)
	}
}

func TestMasterzenClients(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	addr, err := l.srv.ListenLocal()
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, addr)
	ep := mwinrm.NewEndpoint(host, port, true, false, l.cert.certPEM, nil, nil, 10*time.Second)
	ep.TLSServerName = labHostName
	for name, params := range map[string]*mwinrm.Parameters{
		"basic": mwinrm.DefaultParameters,
		"ntlm": func() *mwinrm.Parameters {
			p := *mwinrm.DefaultParameters
			p.TransportDecorator = func() mwinrm.Transporter { return &mwinrm.ClientNTLM{} }
			return &p
		}(),
	} {
		client, err := mwinrm.NewClientWithParameters(ep, labUser, labPassword, params)
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code, err := client.RunWithContextWithString(context.Background(), "hostname", "")
		if err != nil || code != 0 || stdout != labHostName+"\r\n" {
			t.Errorf("masterzen %s client: hostname = %q, %q, %d, %v", name, stdout, stderr, code, err)
		}
		stdout, _, code, err = client.RunPSWithContext(context.Background(), "Write-Output one two; exit 4")
		if err != nil || code != 4 || stdout != "one\r\ntwo\r\n" {
			t.Errorf("masterzen %s client: PowerShell = %q, %d, %v", name, stdout, code, err)
		}
	}

	// masterzen's client over our pinned, in-process transport.
	c := l.connect(t, l.config(NTLM))
	stdout, _, code, err := c.Client().RunWithContextWithString(context.Background(), "echo through the hook", "")
	if err != nil || code != 0 || stdout != "through the hook\r\n" {
		t.Errorf("masterzen client over Conn.Client(): %q, %d, %v", stdout, code, err)
	}
}

func TestWinrmcpUpload(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	data := randomBytes(200_000, 7)
	elapsed, err := winrmcpUpload(l, `C:\k\from-winrmcp.bin`, data)
	if err != nil {
		t.Fatalf("winrmcp upload: %v", err)
	}
	assertFile(t, l, `C:\k\from-winrmcp.bin`, data)
	t.Logf("winrmcp uploaded %d bytes in %v", len(data), elapsed)
}

func TestWrongCertificateIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	_, _, other, err := GenerateCertificate("impostor", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.config(NTLM)
	cfg.Certificate = other
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, cfg)
	if !errors.Is(err, transport.ErrIdentityMismatch) {
		t.Fatalf("Dial with another pinned certificate: err = %v, want ErrIdentityMismatch", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Dial took %v to refuse a wrong certificate; it must not retry", d)
	}
	msg := err.Error()
	for _, want := range []string{labAddr, fingerprint(l.cert.cert.Raw), fingerprint(other.Raw), "pin the certificate"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}

func TestWrongPasswordIsErrAuth(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	for _, auth := range []Auth{NTLM, Basic} {
		cfg := l.config(auth)
		cfg.Password = "not-the-Password-42"
		_, err := Dial(context.Background(), cfg)
		if !errors.Is(err, transport.ErrAuth) {
			t.Fatalf("%s with a wrong password: err = %v, want ErrAuth", auth, err)
		}
		if strings.Contains(err.Error(), cfg.Password) || strings.Contains(err.Error(), labPassword) {
			t.Errorf("%s: the error reveals a password: %v", auth, err)
		}
	}
}

func TestBasicOnlyServerRefusesNTLMHandshakeButBasicWorks(t *testing.T) {
	t.Parallel()
	l := newLab(t, func(c *winrmd.Config) { c.DisableNTLM = true })
	c := l.connect(t, l.config(Basic))
	if code, err := c.Run(context.Background(), "exit 0", nil, nil); err != nil || code != 0 {
		t.Fatalf("Basic against a Basic-only listener: %d, %v", code, err)
	}
	l2 := newLab(t, func(c *winrmd.Config) { c.DisableBasic = true })
	cfg := l2.config(Basic)
	if _, err := Dial(context.Background(), cfg); !errors.Is(err, transport.ErrAuth) {
		t.Fatalf("Basic against an NTLM-only listener: err = %v, want ErrAuth", err)
	}
	c2 := l2.connect(t, l2.config(NTLM))
	if code, err := c2.Run(context.Background(), "exit 0", nil, nil); err != nil || code != 0 {
		t.Fatalf("NTLM against an NTLM-only listener: %d, %v", code, err)
	}
}

func TestPlainHTTPAndMissingPinAreRefused(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	for name, mutate := range map[string]func(*Config){
		"http scheme": func(c *Config) { c.Addr = "http://" + labAddr },
		"port 5985":   func(c *Config) { c.Addr = "127.0.0.21:5985" },
		"no pin":      func(c *Config) { c.Certificate = nil },
	} {
		cfg := l.config(NTLM)
		mutate(&cfg)
		if _, err := Dial(context.Background(), cfg); err == nil {
			t.Errorf("%s: Dial succeeded; want a refusal", name)
		}
	}
}

func TestDialWaitsUntilTheListenerIsUp(t *testing.T) {
	t.Parallel()
	tc, err := labCert()
	if err != nil {
		t.Fatal(err)
	}
	l := newLab(t, nil)
	l.h.Listen(5986, nil) // nothing listens yet

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, l.config(NTLM))
	if !errors.Is(err, transport.ErrNotReady) {
		t.Fatalf("Dial with no listener: err = %v, want ErrNotReady", err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("Dial gave up after %v, before its context ended", d)
	}

	go func() {
		time.Sleep(400 * time.Millisecond)
		srv, err := winrmd.New(l.h, winrmd.Config{Certificate: tc.pair, Users: map[string]string{labUser: labPassword}})
		if err == nil {
			t.Cleanup(func() { srv.Close() })
		}
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	c, err := Dial(ctx2, l.config(NTLM))
	if err != nil {
		t.Fatalf("Dial while the listener comes up: %v", err)
	}
	c.Close()
	c.Close() // twice is safe
}

func TestUpload50MBIntact(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB upload: skipped with -short to keep quick runs quick")
	}
	t.Parallel()
	l := newLab(t, nil)
	c := l.connect(t, l.config(NTLM))
	data := randomBytes(50<<20, 1)
	start := time.Now()
	if err := c.Upload(context.Background(), `C:\k\big.bin`, bytes.NewReader(data), int64(len(data)), 0o644); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	t.Logf("50 MB in %v", time.Since(start))
	assertFile(t, l, `C:\k\big.bin`, data)
	assertNoFile(t, l, `C:\k\big.bin`+tmpSuffix)

	// A source that cannot seek is spooled and arrives the same.
	small := randomBytes(1<<20+17, 2)
	if err := c.Upload(context.Background(), `C:\k\piped.bin`, io.MultiReader(bytes.NewReader(small)), int64(len(small)), 0o644); err != nil {
		t.Fatalf("Upload of a pipe: %v", err)
	}
	assertFile(t, l, `C:\k\piped.bin`, small)

	// An empty file and a size that lies.
	if err := c.Upload(context.Background(), `C:\k\empty`, bytes.NewReader(nil), 0, 0o644); err != nil {
		t.Fatalf("Upload of an empty file: %v", err)
	}
	assertFile(t, l, `C:\k\empty`, nil)
	err := c.Upload(context.Background(), `C:\k\short`, bytes.NewReader([]byte("abc")), 10, 0o644)
	if err == nil || !strings.Contains(err.Error(), `C:\k\short`) {
		t.Fatalf("Upload with a size larger than the source: err = %v, want an error naming the file", err)
	}
}

func TestUploadSurvivesADroppedConnection(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	c := l.connect(t, l.config(NTLM))
	const target = `C:\k\agent.exe`
	old := []byte("the previous agent")
	if err := c.Upload(context.Background(), target, bytes.NewReader(old), int64(len(old)), 0o755); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(12<<20, 3)

	// Reboot the host once the temporary file holds 2 MB.
	tmp, _ := l.h.Path(target + tmpSuffix)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if st, err := os.Stat(tmp); err == nil && st.Size() > 2<<20 {
				l.h.Reboot()
				return
			}
		}
	}()
	err := c.Upload(context.Background(), target, bytes.NewReader(data), int64(len(data)), 0o755)
	close(stop)
	wg.Wait()
	if l.h.Reboots() != 1 {
		t.Fatalf("the host did not reboot during the upload (err %v)", err)
	}
	if !errors.Is(err, transport.ErrNotReady) || !strings.Contains(err.Error(), target) {
		t.Fatalf("Upload across a reboot: err = %v, want ErrNotReady naming %s", err, target)
	}
	assertFile(t, l, target, old) // never half-written

	if err := c.Upload(context.Background(), target, bytes.NewReader(data), int64(len(data)), 0o755); err != nil {
		t.Fatalf("second Upload after the reboot: %v", err)
	}
	assertFile(t, l, target, data)
	assertNoFile(t, l, target+tmpSuffix)
}

func TestRunStreamsOutputAsProduced(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	release := make(chan struct{})
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MB: several Receives
	l.h.Handle("progress", func(ctx context.Context, h *host.Host, p *host.Process) int {
		_, _ = io.WriteString(p.Stdout, "first line\r\n")
		select {
		case <-release: // only the caller, having seen the first line, releases us.
		case <-ctx.Done():
			return 1
		}
		_, _ = p.Stdout.Write(big)
		_, _ = io.WriteString(p.Stderr, "warning\r\n")
		return 5
	})
	c := l.connect(t, l.config(NTLM))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var once sync.Once
	var stdout, stderr bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		stdout.Write(p)
		if bytes.Contains(stdout.Bytes(), []byte("first line")) {
			once.Do(func() { close(release) })
		}
		return len(p), nil
	})
	code, err := c.Run(ctx, "progress", w, &stderr)
	if err != nil {
		t.Fatalf("Run: %v (the first line was not streamed before the command ended?)", err)
	}
	if code != 5 || stdout.Len() != len("first line\r\n")+len(big) || stderr.String() != "warning\r\n" {
		t.Errorf("Run = %d, %d bytes of stdout, stderr %q; want 5, %d bytes, %q", code, stdout.Len(), stderr.String(), len("first line\r\n")+len(big), "warning\r\n")
	}
}

func TestRunReturnsSoonAfterCancel(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	killed := make(chan struct{})
	l.h.Handle("hang", func(ctx context.Context, h *host.Host, p *host.Process) int {
		<-ctx.Done()
		close(killed)
		return 1
	})
	c := l.connect(t, l.config(NTLM))
	ctx, cancel := context.WithCancel(context.Background())
	var cancelled time.Time
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancelled = time.Now()
		cancel()
	}()
	_, err := c.Run(ctx, "hang", nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: err = %v, want context.Canceled", err)
	}
	if d := time.Since(cancelled); d > 2*time.Second {
		t.Errorf("Run returned %v after cancel; want within 2 s", d)
	}
	select {
	case <-killed:
	case <-time.After(2 * time.Second):
		t.Error("the remote command was not terminated after cancel")
	}
}

func TestRunAcrossARebootIsErrRebooting(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	started := make(chan struct{})
	l.h.Handle("install-and-reboot", func(ctx context.Context, h *host.Host, p *host.Process) int {
		close(started)
		<-ctx.Done()
		return 1
	})
	c := l.connect(t, l.config(NTLM))
	go func() {
		<-started
		time.Sleep(100 * time.Millisecond)
		l.h.Reboot()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Run(ctx, "install-and-reboot", nil, nil)
	if !errors.Is(err, transport.ErrRebooting) {
		t.Fatalf("Run across a reboot: err = %v, want ErrRebooting", err)
	}
}

func TestRunOutlivesOperationTimeout(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	cfg := l.config(Basic)
	cfg.OperationTimeout = 300 * time.Millisecond
	c := l.connect(t, cfg)
	// Silent for three OperationTimeouts: each Receive times out (w:TimedOut) and Run goes on.
	code, err := c.Run(context.Background(), "powershell -Command Start-Sleep -Milliseconds 1000; exit 2", nil, nil)
	if err != nil || code != 2 {
		t.Fatalf("Run of a quiet command = %d, %v; want 2, nil", code, err)
	}
}

func TestGenerateCertificate(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM, cert, err := GenerateCertificate("WIN-ABC", []string{"10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "WIN-ABC" || len(cert.IPAddresses) != 1 || cert.VerifyHostname("WIN-ABC") != nil {
		t.Errorf("certificate subject %q, IPs %v", cert.Subject.CommonName, cert.IPAddresses)
	}
	if !bytes.Contains(certPEM, []byte("BEGIN CERTIFICATE")) || !bytes.Contains(keyPEM, []byte("BEGIN PRIVATE KEY")) {
		t.Error("PEM blocks are not CERTIFICATE and PRIVATE KEY")
	}
	if _, _, _, err := GenerateCertificate("x", []string{"not-an-ip"}); err == nil {
		t.Error("GenerateCertificate accepted a bad IP")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func assertFile(t testing.TB, l *lab, path string, want []byte) {
	t.Helper()
	real, err := l.h.Path(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(real)
	if err != nil {
		t.Fatalf("read %s on the lab host: %v", path, err)
	}
	gs, ws := sha256.Sum256(got), sha256.Sum256(want)
	if gs != ws {
		t.Fatalf("%s on the lab host: %d bytes, SHA-256 %s; want %d bytes, %s", path, len(got), hex.EncodeToString(gs[:]), len(want), hex.EncodeToString(ws[:]))
	}
}

func assertNoFile(t testing.TB, l *lab, path string) {
	t.Helper()
	real, _ := l.h.Path(path)
	if _, err := os.Stat(real); err == nil {
		t.Errorf("%s is left on the lab host", path)
	}
}

func TestThumbprintPin(t *testing.T) {
	t.Parallel()
	l := newLab(t, nil)
	cfg := l.config(NTLM)
	cfg.Certificate = nil
	cfg.Thumbprint = strings.ToLower(thumbprint(l.cert.cert.Raw))
	c := l.connect(t, cfg)
	if _, err := c.Run(context.Background(), "hostname", nil, nil); err != nil {
		t.Fatalf("Run over a thumbprint-pinned connection: %v", err)
	}
	_, _, other, err := GenerateCertificate("impostor", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Thumbprint = thumbprint(other.Raw)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Dial(ctx, cfg)
	if !errors.Is(err, transport.ErrIdentityMismatch) || !strings.Contains(err.Error(), "thumbprint "+thumbprint(other.Raw)) {
		t.Fatalf("Dial pinned to another thumbprint: %v", err)
	}
	cfg.Thumbprint = "not-hex"
	if _, err := Dial(ctx, cfg); err == nil || !strings.Contains(err.Error(), "no pinned certificate") {
		t.Fatalf("Dial with a malformed thumbprint: %v", err)
	}
}
