package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func newWindowsHost(t *testing.T) *Host {
	t.Helper()
	h, err := New("win-1", Windows, netip.MustParseAddr("127.0.0.31"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	InstallWindowsCommands(h)
	return h
}

func TestWindowsCommandShapes(t *testing.T) {
	t.Parallel()
	h := newWindowsHost(t)
	for _, tc := range []struct {
		line     string
		stdout   string
		stderr   string
		exitCode int
	}{
		{line: "hostname", stdout: "win-1\r\n"},
		{line: "whoami", stdout: `win-1\administrator` + "\r\n"},
		{line: "exit 4", exitCode: 4},
		{line: "exit /b 2", exitCode: 2},
		{line: "echo  spaced   words ", stdout: " spaced   words \r\n"},
		{line: "cmd /c echo hi", stdout: "hi\r\n"},
		{line: "cmd /c exit 3", exitCode: 3},
		{line: "powershell -NoProfile -NonInteractive -EncodedCommand " + EncodePowerShell("$ProgressPreference = 'SilentlyContinue'; Write-Output 'a b' $env:COMPUTERNAME; exit 6"), stdout: "a b\r\nWIN-1\r\n", exitCode: 6},
		{line: "powershell.exe -Command Write-Output hello", stdout: "hello\r\n"},
		{line: "powershell -Command Get-Frobnicator -All", stderr: "The term 'Get-Frobnicator' is not recognized as the name of a cmdlet", exitCode: 1},
		{line: "powershell -EncodedCommand !!!", stderr: "not properly encoded", exitCode: 64},
		{line: "notepad", stderr: "'notepad' is not recognized as an internal or external command", exitCode: 9009},
	} {
		var stdout, stderr bytes.Buffer
		code := h.RunCmd(context.Background(), tc.line, nil, &stdout, &stderr)
		if code != tc.exitCode || stdout.String() != tc.stdout || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q = %d, stdout %q, stderr %q; want %d, %q, stderr containing %q", tc.line, code, stdout.String(), stderr.String(), tc.exitCode, tc.stdout, tc.stderr)
		}
	}
}

func TestCmdLineTooLong(t *testing.T) {
	t.Parallel()
	h := newWindowsHost(t)
	var stdout, stderr bytes.Buffer
	ok := "echo " + strings.Repeat("a", CmdLineMax-5)
	if code := h.RunCmd(context.Background(), ok, nil, &stdout, &stderr); code != 0 {
		t.Errorf("a line of exactly %d characters failed: %d %q", CmdLineMax, code, stderr.String())
	}
	stdout.Reset()
	if code := h.RunCmd(context.Background(), ok+"a", nil, &stdout, &stderr); code != 1 || stderr.String() != "The command line is too long.\r\n" || stdout.Len() != 0 {
		t.Errorf("a line of %d characters = %d, stderr %q; want 1 and cmd's message", CmdLineMax+1, code, stderr.String())
	}
}

func TestWinrmcpShapes(t *testing.T) {
	t.Parallel()
	h := newWindowsHost(t)
	data := []byte("binary\x00\x01\x02 payload that spans more than one chunk of echo")
	tmp := `%TEMP%\winrmcp-1234.tmp`
	for _, part := range [][]byte{data[:10], data[10:]} {
		line := fmt.Sprintf(`echo %s >> "%s"`, base64.StdEncoding.EncodeToString(part), tmp)
		var stderr bytes.Buffer
		if code := h.RunCmd(context.Background(), line, nil, &bytes.Buffer{}, &stderr); code != 0 {
			t.Fatalf("%s = %d, %s", line, code, stderr.String())
		}
	}
	restore := fmt.Sprintf(`
		$tmp_file_path = [System.IO.Path]::GetFullPath("%s")
		$dest_file_path = [System.IO.Path]::GetFullPath("%s".Trim("'"))
		if (Test-Path $dest_file_path) { rm $dest_file_path }`, `$env:TEMP\winrmcp-1234.tmp`, `C:\app\out.bin`)
	var stderr bytes.Buffer
	if code := h.RunCmd(context.Background(), "powershell.exe -EncodedCommand "+EncodePowerShell(restore), nil, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("restore = %d, %s", code, stderr.String())
	}
	real, _ := h.Path(`C:\app\out.bin`)
	got, err := os.ReadFile(real)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored file = %q, %v; want %q", got, err, data)
	}
	cleanup := `$tmp_file_path = [System.IO.Path]::GetFullPath("$env:TEMP\winrmcp-1234.tmp")
		if (Test-Path $tmp_file_path) { Remove-Item $tmp_file_path -ErrorAction SilentlyContinue }`
	if code := h.RunCmd(context.Background(), "powershell.exe -EncodedCommand "+EncodePowerShell(cleanup), nil, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("cleanup = %d", code)
	}
	tmpReal, _ := h.Path(`C:\Windows\Temp\winrmcp-1234.tmp`)
	if _, err := os.Stat(tmpReal); err == nil {
		t.Error("winrmcp's cleanup left its temporary file")
	}
}

func TestUploadScriptShape(t *testing.T) {
	t.Parallel()
	h := newWindowsHost(t)
	data := []byte("agent bytes")
	sum := sha256.Sum256(data)
	script := func(want string) string {
		return UploadMarker + "\n$ErrorActionPreference = 'Stop'\n$p = 'C:\\k\\it''s.exe'\n$want = '" + want + "'\n"
	}
	for _, tc := range []struct {
		name     string
		want     string
		exitCode int
		exists   bool
	}{
		{name: "hash mismatch keeps the target away", want: strings.Repeat("0", 64), exitCode: 3},
		{name: "matching hash moves the file", want: hex.EncodeToString(sum[:]), exitCode: 0, exists: true},
	} {
		var stdout, stderr bytes.Buffer
		code := h.Exec(context.Background(), "powershell -EncodedCommand "+EncodePowerShell(script(tc.want)), bytes.NewReader(data), &stdout, &stderr)
		real, _ := h.Path(`C:\k\it's.exe`)
		_, statErr := os.Stat(real)
		if code != tc.exitCode || (statErr == nil) != tc.exists {
			t.Errorf("%s: exit %d (stderr %q), target exists %v; want %d, %v", tc.name, code, stderr.String(), statErr == nil, tc.exitCode, tc.exists)
		}
		if _, err := os.Stat(real + UploadTmpSuffix); err == nil {
			t.Errorf("%s: the temporary file is left behind", tc.name)
		}
		if !strings.HasPrefix(stdout.String(), "sha256 "+hex.EncodeToString(sum[:])+" 11") {
			t.Errorf("%s: stdout %q does not report the hash and length", tc.name, stdout.String())
		}
	}
}
