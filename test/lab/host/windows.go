package host

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	pwsh "github.com/mixedk8s/mixedk8s/internal/powershell"
)

// Windows limits the emulation enforces, as documented for cmd.exe and
// CreateProcessW.
const (
	// CmdLineMax is the longest line cmd.exe accepts, in characters.
	CmdLineMax = 8191
	// CreateProcessMax is the longest command line CreateProcessW accepts.
	CreateProcessMax = 32767
)

// UploadMarker starts the PowerShell script of transport/winrm's Upload; the
// emulation recognises the script by it rather than interpreting PowerShell.
const UploadMarker = "# mixedk8s-upload v1"

// UploadTmpSuffix is appended to the target path while an upload streams.
const UploadTmpSuffix = ".mixedk8s-tmp"

// TempDir is %TEMP% (and $env:TEMP) of every session on a virtual Windows host.
const TempDir = `C:\Windows\Temp`

type userKey struct{}

// WithUser tells the commands run under ctx which account runs them, as a
// WinRM or SSH session would.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// UserFrom is the account WithUser recorded, "administrator" if none.
func UserFrom(ctx context.Context) string {
	if u, ok := ctx.Value(userKey{}).(string); ok && u != "" {
		return u
	}
	return "administrator"
}

// InstallWindowsCommands registers the programs a Windows host answers to:
// powershell (with -EncodedCommand or -Command), cmd /c, hostname, whoami,
// and the cmd built-ins echo and exit when a line reaches them directly.
// Calling it twice is harmless.
func InstallWindowsCommands(h *Host) {
	// Every Windows machine has its temporary folder; clients write there.
	if tmp, err := h.Path(TempDir); err == nil {
		_ = os.MkdirAll(tmp, 0o755)
	}
	h.Handle("powershell", powershell)
	h.Handle("cmd", cmdExe)
	h.Handle("hostname", func(ctx context.Context, h *Host, p *Process) int {
		fmt.Fprintf(p.Stdout, "%s\r\n", h.Name)
		return 0
	})
	h.Handle("whoami", func(ctx context.Context, h *Host, p *Process) int {
		fmt.Fprintf(p.Stdout, "%s\\%s\r\n", strings.ToLower(h.Name), strings.ToLower(UserFrom(ctx)))
		return 0
	})
	h.Handle("echo", func(ctx context.Context, h *Host, p *Process) int {
		fmt.Fprintf(p.Stdout, "%s\r\n", strings.Join(p.Args[1:], " "))
		return 0
	})
	h.Handle("exit", func(ctx context.Context, h *Host, p *Process) int {
		return exitCode(p.Args[1:])
	})
}

func exitCode(args []string) int {
	for _, a := range args {
		if strings.EqualFold(a, "/b") {
			continue
		}
		n, err := strconv.Atoi(a)
		if err != nil {
			return 0
		}
		return n
	}
	return 0
}

// RunCmd runs line as `cmd.exe /c line` does on Windows: a line longer than
// CmdLineMax fails the way cmd.exe fails, %TEMP% expands, the built-ins echo
// and exit run in place, and > / >> redirect stdout to a sandbox file.
// Everything else goes to Exec.
func (h *Host) RunCmd(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len([]rune(line)) > CmdLineMax {
		fmt.Fprint(stderr, "The command line is too long.\r\n")
		return 1
	}
	line = expandCmdVars(line)
	cmdPart, target, appendTo, err := splitRedirect(line)
	if err != nil {
		fmt.Fprintf(stderr, "%v\r\n", err)
		return 1
	}
	if target != "" {
		real, err := h.Path(target)
		if err != nil {
			fmt.Fprint(stderr, "The system cannot find the path specified.\r\n")
			return 1
		}
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if appendTo {
			flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		f, err := os.OpenFile(real, flags, 0o644)
		if err != nil {
			fmt.Fprint(stderr, "The system cannot find the path specified.\r\n")
			return 1
		}
		defer f.Close()
		stdout = f
	}
	trimmed := strings.TrimLeft(cmdPart, " \t@")
	word, rest, _ := strings.Cut(trimmed, " ")
	switch strings.ToLower(word) {
	case "echo":
		// cmd's echo prints the rest of the line verbatim, trailing blanks included.
		if rest == "" {
			fmt.Fprint(stdout, "ECHO is on.\r\n")
			return 0
		}
		fmt.Fprintf(stdout, "%s\r\n", rest)
		return 0
	case "exit":
		return exitCode(strings.Fields(rest))
	}
	return h.Exec(ctx, cmdPart, stdin, stdout, stderr)
}

func expandCmdVars(line string) string {
	return regexp.MustCompile(`(?i)%TEMP%|%TMP%`).ReplaceAllLiteralString(line, TempDir)
}

// splitRedirect finds an unquoted > or >> and the file it names.
func splitRedirect(line string) (cmd, target string, appendTo bool, err error) {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"':
			quoted = !quoted
		case '>':
			if quoted {
				continue
			}
			cmd = line[:i]
			rest := line[i+1:]
			if strings.HasPrefix(rest, ">") {
				appendTo = true
				rest = rest[1:]
			}
			words := splitWindows(strings.TrimSpace(rest))
			if len(words) == 0 {
				return "", "", false, errors.New("The syntax of the command is incorrect.") //nolint:staticcheck // cmd.exe's own words, as a client sees them
			}
			return cmd, words[0], appendTo, nil
		}
	}
	return line, "", false, nil
}

func cmdExe(ctx context.Context, h *Host, p *Process) int {
	// cmd /c <rest of the line>: everything after the switch is the command.
	line := p.Line
	idx := -1
	for _, sw := range []string{"/c ", "/C ", "/k ", "/K ", "/s /c ", "/S /C "} {
		if i := strings.Index(line, sw); i >= 0 && (idx < 0 || i < idx) {
			idx = i + len(sw)
		}
	}
	if idx < 0 {
		fmt.Fprint(p.Stdout, "Microsoft Windows [Version 10.0.20348.2700]\r\n(c) Microsoft Corporation. All rights reserved.\r\n")
		return 0
	}
	rest := strings.TrimSpace(line[idx:])
	// cmd /s /c "..." strips one pair of outer quotes.
	if len(rest) >= 2 && rest[0] == '"' && rest[len(rest)-1] == '"' {
		rest = rest[1 : len(rest)-1]
	}
	return h.RunCmd(ctx, rest, p.Stdin, p.Stdout, p.Stderr)
}

// powershell emulates powershell.exe for the scripts the provisioner and
// conformant clients send: transport/winrm's upload (by UploadMarker),
// winrmcp's restore and cleanup scripts, and simple statements.
func powershell(ctx context.Context, h *Host, p *Process) int {
	args := p.Args[1:]
	var script string
	found := false
	for i := 0; i < len(args); i++ {
		a := strings.ToLower(args[i])
		switch a {
		case "-noprofile", "-nop", "-noninteractive", "-noni", "-nologo", "-sta", "-mta":
		case "-executionpolicy", "-ep", "-inputformat", "-outputformat", "-windowstyle", "-version":
			i++
		case "-encodedcommand", "-enc", "-e", "-ec":
			if i+1 >= len(args) {
				fmt.Fprint(p.Stderr, "Cannot process the command because of a missing parameter. A command must follow -EncodedCommand.\r\n")
				return 64
			}
			s, err := decodeUTF16Base64(args[i+1])
			if err != nil {
				fmt.Fprint(p.Stderr, "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\r\n")
				return 64
			}
			script, found = s, true
			i = len(args)
		case "-command", "-c":
			script, found = strings.Join(args[i+1:], " "), true
			i = len(args)
		default:
			if strings.HasPrefix(a, "-") {
				fmt.Fprintf(p.Stderr, "-%s : The term '%s' is not recognized as a parameter of powershell.exe.\r\n", strings.TrimPrefix(args[i], "-"), args[i])
				return 64
			}
			script, found = strings.Join(args[i:], " "), true
			i = len(args)
		}
	}
	if !found {
		fmt.Fprint(p.Stdout, "Windows PowerShell\r\nCopyright (C) Microsoft Corporation. All rights reserved.\r\n")
		return 0
	}
	return runScript(ctx, h, p, script)
}

func decodeUTF16Base64(s string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", err
	}
	if len(raw)%2 != 0 {
		return "", errors.New("odd UTF-16 length")
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	return string(utf16.Decode(u)), nil
}

// EncodePowerShell is the -EncodedCommand form of script: UTF-16LE, base64.
func EncodePowerShell(script string) string {
	u := utf16.Encode([]rune(script))
	raw := make([]byte, 2*len(u))
	for i, c := range u {
		raw[2*i], raw[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

var (
	reUploadTarget = regexp.MustCompile(`(?m)^\$p\s*=\s*'((?:[^']|'')*)'`)
	reUploadWant   = regexp.MustCompile(`(?m)^\$want\s*=\s*'([0-9a-f]{64})'`)
	reUploadSDDL   = regexp.MustCompile(`(?m)^\s*\$(ds|fs)\.SetSecurityDescriptorSddlForm\('([^']*)'\)$`)
	reRestoreTmp   = regexp.MustCompile(`\$tmp_file_path = \[System\.IO\.Path\]::GetFullPath\("([^"]*)"\)`)
	reRestoreDest  = regexp.MustCompile(`\$dest_file_path = \[System\.IO\.Path\]::GetFullPath\("([^"]*)"\.Trim\("'"\)\)`)
)

func runScript(ctx context.Context, h *Host, p *Process, script string) int {
	switch {
	case strings.Contains(script, UploadMarker):
		target := reUploadTarget.FindStringSubmatch(script)
		want := reUploadWant.FindStringSubmatch(script)
		if target == nil || want == nil {
			return psError(p, "upload script", "The upload script is missing $p or $want.")
		}
		sddl := map[string]string{}
		for _, m := range reUploadSDDL.FindAllStringSubmatch(script, -1) {
			sddl[m[1]] = m[2]
		}
		return uploadScript(h, p, pwsh.Unquote(target[1]), want[1], sddl["ds"], sddl["fs"])
	case reRestoreTmp.MatchString(script) && reRestoreDest.MatchString(script):
		return winrmcpRestore(h, p, expandPSVars(reRestoreTmp.FindStringSubmatch(script)[1]),
			expandPSVars(strings.Trim(reRestoreDest.FindStringSubmatch(script)[1], "'")))
	case reRestoreTmp.MatchString(script) && strings.Contains(script, "Remove-Item $tmp_file_path"):
		if real, err := h.Path(expandPSVars(reRestoreTmp.FindStringSubmatch(script)[1])); err == nil {
			os.Remove(real)
		}
		return 0
	}
	code := 0
	for _, stmt := range splitStatements(script) {
		c, exit := runStatement(ctx, h, p, stmt)
		code = c
		if exit {
			return c
		}
	}
	return code
}

func expandPSVars(s string) string {
	return regexp.MustCompile(`(?i)\$env:(TEMP|TMP)`).ReplaceAllLiteralString(s, TempDir)
}

// splitStatements splits on ; and newlines outside quotes.
func splitStatements(script string) []string {
	var out []string
	var cur strings.Builder
	var quote byte
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ';' || c == '\n' || c == '\r':
			if s := strings.TrimSpace(cur.String()); s != "" {
				out = append(out, s)
			}
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// runStatement runs one simple PowerShell statement and says whether the
// script ends there.
func runStatement(ctx context.Context, h *Host, p *Process, stmt string) (code int, exit bool) {
	if strings.HasPrefix(stmt, "#") {
		return 0, false
	}
	if strings.HasPrefix(stmt, "$") && strings.Contains(stmt, "=") {
		return 0, false // variable assignments such as $ProgressPreference.
	}
	words := splitPSWords(stmt)
	if len(words) == 0 {
		return 0, false
	}
	switch strings.ToLower(words[0]) {
	case "exit":
		if len(words) > 1 {
			n, _ := strconv.Atoi(words[1])
			return n, true
		}
		return 0, true
	case "write-output", "echo", "write-host":
		for _, w := range words[1:] {
			fmt.Fprintf(p.Stdout, "%s\r\n", expandPSValue(h, w))
		}
		return 0, false
	case "write-error":
		fmt.Fprintf(p.Stderr, "%s\r\n", strings.Join(words[1:], " "))
		return 0, false
	case "start-sleep":
		d := time.Duration(0)
		for i := 1; i+1 < len(words); i += 2 {
			n, _ := strconv.Atoi(words[i+1])
			switch strings.ToLower(words[i]) {
			case "-seconds", "-s":
				d = time.Duration(n) * time.Second
			case "-milliseconds", "-m":
				d = time.Duration(n) * time.Millisecond
			}
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 1, true
		}
		return 0, false
	case "hostname", "whoami":
		return h.Exec(ctx, words[0], p.Stdin, p.Stdout, p.Stderr), false
	}
	if len(words) == 1 && strings.HasPrefix(words[0], "$env:") {
		fmt.Fprintf(p.Stdout, "%s\r\n", expandPSValue(h, words[0]))
		return 0, false
	}
	prog := ProgramName(words[0])
	h.mu.Lock()
	_, registered := h.commands[prog]
	h.mu.Unlock()
	if registered || prog == "nodeagent" {
		line := stmt
		if strings.HasPrefix(line, "& ") {
			line = strings.TrimSpace(line[2:])
		}
		return h.Exec(ctx, line, p.Stdin, p.Stdout, p.Stderr), false
	}
	return psError(p, words[0], fmt.Sprintf("The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.", words[0])), true
}

func expandPSValue(h *Host, w string) string {
	switch strings.ToLower(w) {
	case "$env:computername":
		return strings.ToUpper(h.Name)
	case "$env:temp", "$env:tmp":
		return TempDir
	}
	return w
}

// splitPSWords splits a statement on blanks, removing one level of ' or " quotes.
func splitPSWords(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
				continue
			}
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// psError writes an error record the way powershell.exe prints one and
// returns its exit code, 1.
func psError(p *Process, target, msg string) int {
	fmt.Fprintf(p.Stderr, "%s : %s\r\n    + CategoryInfo          : ObjectNotFound: (%s:String) [], CommandNotFoundException\r\n    + FullyQualifiedErrorId : CommandNotFoundException\r\n", target, msg, target)
	return 1
}

// uploadScript emulates transport/winrm's upload script: stream stdin into
// <target>.mixedk8s-tmp (truncated first), print its SHA-256 and length, and
// move it over the target only if the hash is the expected one. A broken
// stdin (the shell died) leaves the target alone. With a folder SDDL, a
// missing folder is created with that protected DACL; with a file SDDL,
// the file is created with it, and the move keeps it (a rename within a
// volume keeps the file's security descriptor); without, the file takes
// what its folder passes down. Each SDDL must be a protected DACL
// ("D:P..."), which SetSecurityDescriptorSddlForm would otherwise refuse
// or apply as inheriting.
func uploadScript(h *Host, p *Process, target, want, folderSDDL, fileSDDL string) int {
	real, err := h.Path(target)
	if err != nil {
		fmt.Fprintf(p.Stderr, "upload: %v\r\n", err)
		return 2
	}
	for _, sddl := range []string{folderSDDL, fileSDDL} {
		if sddl != "" && !strings.HasPrefix(sddl, "D:P(") {
			fmt.Fprintf(p.Stderr, "Exception calling \"SetSecurityDescriptorSddlForm\": the lab's Windows model takes protected DACLs only, not %q\r\n", sddl)
			return 2
		}
	}
	folder := filepath.Dir(real)
	_, statErr := os.Stat(folder)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		fmt.Fprintf(p.Stderr, "upload: create folder of %s: %v\r\n", target, err)
		return 2
	}
	if errors.Is(statErr, os.ErrNotExist) && folderSDDL != "" && h.ACLs != nil {
		if err := h.ACLs.CreatedWithACL(target[:strings.LastIndexAny(target, `\/`)], folderSDDL); err != nil {
			fmt.Fprintf(p.Stderr, "upload: %v\r\n", err)
			return 2
		}
	}
	tmp := real + UploadTmpSuffix
	f, err := os.Create(tmp)
	if err != nil {
		fmt.Fprintf(p.Stderr, "upload: create %s%s: %v\r\n", target, UploadTmpSuffix, err)
		return 2
	}
	sum := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, sum), p.Stdin, make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(p.Stderr, "Exception calling \"Read\": stdin of the upload of %s broke: %v\r\n", target, err)
		return 1
	}
	got := hex.EncodeToString(sum.Sum(nil))
	fmt.Fprintf(p.Stdout, "sha256 %s %d\r\n", got, n)
	if got != want {
		os.Remove(tmp)
		fmt.Fprintf(p.Stderr, "upload of %s: SHA-256 %s does not match the expected %s\r\n", target, got, want)
		return 3
	}
	if err := os.Rename(tmp, real); err != nil {
		fmt.Fprintf(p.Stderr, "Move-Item : cannot replace %s: %v\r\n", target, err)
		return 4
	}
	if h.ACLs != nil {
		if err := h.ACLs.CreatedWithACL(target, fileSDDL); err != nil {
			fmt.Fprintf(p.Stderr, "upload: %v\r\n", err)
			return 4
		}
	}
	return 0
}

// winrmcpRestore emulates winrmcp's restore script: decode the base64 lines
// of the temporary file into the destination.
func winrmcpRestore(h *Host, p *Process, tmpPath, destPath string) int {
	dest, err := h.Path(destPath)
	if err != nil {
		fmt.Fprintf(p.Stderr, "%v\r\n", err)
		return 1
	}
	if st, err := os.Stat(dest); err == nil && st.IsDir() {
		return 1
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		fmt.Fprintf(p.Stderr, "%v\r\n", err)
		return 1
	}
	tmp, err := h.Path(tmpPath)
	if err != nil {
		fmt.Fprintf(p.Stderr, "%v\r\n", err)
		return 1
	}
	data, err := os.ReadFile(tmp)
	if errors.Is(err, os.ErrNotExist) {
		return writeFile(p, dest, nil)
	}
	if err != nil {
		fmt.Fprintf(p.Stderr, "%v\r\n", err)
		return 1
	}
	var out []byte
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			fmt.Fprintf(p.Stderr, "Exception calling \"FromBase64String\" with \"1\" argument(s): \"The input is not a valid Base-64 string as it contains a non-base 64 character.\"\r\n")
			return 1
		}
		out = append(out, b...)
	}
	return writeFile(p, dest, out)
}

func writeFile(p *Process, path string, data []byte) int {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		fmt.Fprintf(p.Stderr, "%v\r\n", err)
		return 1
	}
	return 0
}
