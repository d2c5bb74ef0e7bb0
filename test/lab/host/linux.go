package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// InstallLinuxCommands registers the coreutils-like programs that the SSH
// transport and the provisioner send to Linux hosts, each working on the
// sandbox. Flags beyond the listed ones are refused with exit code 2, the
// way coreutils refuses unknown options, so a new command shape shows up
// as a failing test instead of a silent no-op. The lab runs every command
// as root: `id -u` prints 0.
func InstallLinuxCommands(h *Host) {
	for name, c := range map[string]Command{
		"true":      func(context.Context, *Host, *Process) int { return 0 },
		"false":     func(context.Context, *Host, *Process) int { return 1 },
		"exit":      cmdExit,
		"echo":      cmdEcho,
		"cat":       cmdCat,
		"sha256sum": cmdSHA256Sum,
		"mkdir":     cmdMkdir,
		"rm":        cmdRm,
		"mv":        cmdMv,
		"cp":        cmdCp,
		"chmod":     cmdChmod,
		"test":      cmdTest,
		"uname":     cmdUname,
		"id":        cmdID,
		"hostname":  func(_ context.Context, h *Host, p *Process) int { fmt.Fprintln(p.Stdout, h.Name); return 0 },
		"sleep":     cmdSleep,
		"sh":        cmdSh,
	} {
		h.Handle(name, c)
	}
}

// failf writes "prog: msg" to stderr and returns code.
func failf(p *Process, code int, format string, args ...any) int {
	fmt.Fprintf(p.Stderr, "%s: %s\n", ProgramName(p.Args[0]), fmt.Sprintf(format, args...))
	return code
}

// flags splits leading single-letter flags (-p, -rf) off args, refusing any
// letter not in allowed.
func flags(p *Process, allowed string) (set map[byte]bool, rest []string, ok bool) {
	set = map[byte]bool{}
	args := p.Args[1:]
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		if args[0] == "--" {
			args = args[1:]
			break
		}
		for i := 1; i < len(args[0]); i++ {
			if strings.IndexByte(allowed, args[0][i]) < 0 {
				failf(p, 2, "invalid option -- '%c'", args[0][i])
				return nil, nil, false
			}
			set[args[0][i]] = true
		}
		args = args[1:]
	}
	return set, args, true
}

// sandbox maps a path of the virtual host to the real disk, reporting a
// refusal the way the program would.
func sandbox(h *Host, p *Process, name string) (string, bool) {
	real, err := h.Path(name)
	if err != nil {
		failf(p, 1, "%s: %v", name, err)
		return "", false
	}
	return real, true
}

func cmdExit(_ context.Context, _ *Host, p *Process) int {
	if len(p.Args) < 2 {
		return 0
	}
	n, err := strconv.Atoi(p.Args[1])
	if err != nil {
		return failf(p, 2, "Illegal number: %s", p.Args[1])
	}
	return n & 0xff
}

func cmdEcho(_ context.Context, _ *Host, p *Process) int {
	args, nl := p.Args[1:], "\n"
	if len(args) > 0 && args[0] == "-n" {
		args, nl = args[1:], ""
	}
	fmt.Fprint(p.Stdout, strings.Join(args, " ")+nl)
	return 0
}

func cmdCat(_ context.Context, h *Host, p *Process) int {
	_, files, ok := flags(p, "")
	if !ok {
		return 2
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	code := 0
	for _, name := range files {
		if name == "-" {
			_, _ = io.Copy(p.Stdout, p.Stdin)
			continue
		}
		real, ok := sandbox(h, p, name)
		if !ok {
			code = 1
			continue
		}
		f, err := os.Open(real)
		if err != nil {
			code = failf(p, 1, "%s: %s", name, errText(err))
			continue
		}
		_, _ = io.Copy(p.Stdout, f)
		f.Close()
	}
	return code
}

func cmdSHA256Sum(_ context.Context, h *Host, p *Process) int {
	_, files, ok := flags(p, "b")
	if !ok {
		return 2
	}
	code := 0
	for _, name := range files {
		real, ok := sandbox(h, p, name)
		if !ok {
			code = 1
			continue
		}
		f, err := os.Open(real)
		if err != nil {
			code = failf(p, 1, "%s: %s", name, errText(err))
			continue
		}
		sum := sha256.New()
		_, err = io.Copy(sum, f)
		f.Close()
		if err != nil {
			code = failf(p, 1, "%s: %s", name, errText(err))
			continue
		}
		fmt.Fprintf(p.Stdout, "%s  %s\n", hex.EncodeToString(sum.Sum(nil)), name)
	}
	return code
}

func cmdMkdir(_ context.Context, h *Host, p *Process) int {
	set, dirs, ok := flags(p, "p")
	if !ok {
		return 2
	}
	if len(dirs) == 0 {
		return failf(p, 1, "missing operand")
	}
	code := 0
	for _, d := range dirs {
		real, ok := sandbox(h, p, d)
		if !ok {
			code = 1
			continue
		}
		var err error
		if set['p'] {
			err = os.MkdirAll(real, 0o755)
		} else {
			err = os.Mkdir(real, 0o755)
		}
		if err != nil {
			code = failf(p, 1, "cannot create directory '%s': %s", d, errText(err))
		}
	}
	return code
}

func cmdRm(_ context.Context, h *Host, p *Process) int {
	set, files, ok := flags(p, "frR")
	if !ok {
		return 2
	}
	code := 0
	for _, name := range files {
		real, ok := sandbox(h, p, name)
		if !ok {
			code = 1
			continue
		}
		if real == h.Root {
			code = failf(p, 1, "it is dangerous to operate recursively on '/'")
			continue
		}
		var err error
		if set['r'] || set['R'] {
			if _, err = os.Lstat(real); err == nil {
				err = os.RemoveAll(real)
			}
		} else {
			err = os.Remove(real)
		}
		if err != nil && (!set['f'] || !errors.Is(err, fs.ErrNotExist)) {
			code = failf(p, 1, "cannot remove '%s': %s", name, errText(err))
		}
	}
	return code
}

// sourceDest reads `[-f] SOURCE DEST` as mv and cp do: a DEST that is a
// folder receives SOURCE's base name. code is -1 when the arguments are good.
func sourceDest(h *Host, p *Process) (args []string, src, dst string, code int) {
	_, args, ok := flags(p, "f")
	if !ok {
		return nil, "", "", 2
	}
	if len(args) != 2 {
		return nil, "", "", failf(p, 1, "expects SOURCE DEST")
	}
	src, ok1 := sandbox(h, p, args[0])
	dst, ok2 := sandbox(h, p, args[1])
	if !ok1 || !ok2 {
		return nil, "", "", 1
	}
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		dst = filepath.Join(dst, filepath.Base(src))
	}
	return args, src, dst, -1
}

func cmdMv(_ context.Context, h *Host, p *Process) int {
	args, src, dst, code := sourceDest(h, p)
	if code >= 0 {
		return code
	}
	if err := os.Rename(src, dst); err != nil {
		return failf(p, 1, "cannot move '%s' to '%s': %s", args[0], args[1], errText(err))
	}
	return 0
}

func cmdCp(_ context.Context, h *Host, p *Process) int {
	args, src, dst, code := sourceDest(h, p)
	if code >= 0 {
		return code
	}
	in, err := os.Open(src)
	if err != nil {
		return failf(p, 1, "cannot stat '%s': %s", args[0], errText(err))
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil || st.IsDir() {
		return failf(p, 1, "-r not specified; omitting directory '%s'", args[0])
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return failf(p, 1, "cannot create regular file '%s': %s", args[1], errText(err))
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return failf(p, 1, "error writing '%s': %s", args[1], errText(err))
	}
	return 0
}

func cmdChmod(_ context.Context, h *Host, p *Process) int {
	if len(p.Args) < 3 {
		return failf(p, 1, "missing operand")
	}
	mode, err := strconv.ParseUint(p.Args[1], 8, 32)
	if err != nil || mode > 0o7777 {
		return failf(p, 1, "invalid mode: '%s' (the lab understands octal modes only)", p.Args[1])
	}
	code := 0
	for _, name := range p.Args[2:] {
		real, ok := sandbox(h, p, name)
		if !ok {
			code = 1
			continue
		}
		if err := os.Chmod(real, fs.FileMode(mode).Perm()); err != nil {
			code = failf(p, 1, "cannot access '%s': %s", name, errText(err))
		}
	}
	return code
}

func cmdTest(_ context.Context, h *Host, p *Process) int {
	if len(p.Args) != 3 {
		return failf(p, 2, "the lab understands `test -f|-d|-e|-x|-s PATH` only")
	}
	real, err := h.Path(p.Args[2])
	if err != nil {
		return 1
	}
	st, err := os.Stat(real)
	if err != nil {
		return 1
	}
	var ok bool
	switch p.Args[1] {
	case "-e":
		ok = true
	case "-f":
		ok = st.Mode().IsRegular()
	case "-d":
		ok = st.IsDir()
	case "-x":
		ok = st.Mode().Perm()&0o111 != 0
	case "-s":
		ok = st.Size() > 0
	default:
		return failf(p, 2, "%s: unexpected operator", p.Args[1])
	}
	if ok {
		return 0
	}
	return 1
}

func cmdUname(_ context.Context, h *Host, p *Process) int {
	set, rest, ok := flags(p, "asnrmo")
	if !ok || len(rest) > 0 {
		return 2
	}
	fields := map[byte]string{'s': "Linux", 'n': h.Name, 'r': "6.1.0-lab-amd64", 'm': "x86_64", 'o': "GNU/Linux"}
	var out []string
	for _, f := range []byte("snrmo") {
		if set['a'] || set[f] || (len(set) == 0 && f == 's') {
			if f == 'r' && set['a'] {
				out = append(out, fields[f], "#1 SMP Debian 6.1.0-lab")
				continue
			}
			out = append(out, fields[f])
		}
	}
	fmt.Fprintln(p.Stdout, strings.Join(out, " "))
	return 0
}

func cmdID(_ context.Context, _ *Host, p *Process) int {
	set, rest, ok := flags(p, "gnu")
	if !ok || len(rest) > 0 {
		return 2
	}
	switch {
	case set['u'] && set['n'], set['g'] && set['n']:
		fmt.Fprintln(p.Stdout, "root")
	case set['u'], set['g']:
		fmt.Fprintln(p.Stdout, "0")
	default:
		fmt.Fprintln(p.Stdout, "uid=0(root) gid=0(root) groups=0(root)")
	}
	return 0
}

func cmdSleep(ctx context.Context, _ *Host, p *Process) int {
	if len(p.Args) != 2 {
		return failf(p, 1, "missing operand")
	}
	secs, err := strconv.ParseFloat(p.Args[1], 64)
	if err != nil || secs < 0 {
		return failf(p, 1, "invalid time interval '%s'", p.Args[1])
	}
	t := time.NewTimer(time.Duration(secs * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return 0
	case <-ctx.Done():
		return 130
	}
}

// cmdSh runs `sh -c LINE`: the shape sudo wrappers use. One simple command
// per line; pipelines and redirections are not interpreted.
func cmdSh(ctx context.Context, h *Host, p *Process) int {
	if len(p.Args) < 3 || p.Args[1] != "-c" {
		return failf(p, 2, "the lab understands `sh -c COMMAND` only")
	}
	return h.Exec(ctx, p.Args[2], p.Stdin, p.Stdout, p.Stderr)
}

// errText is the strerror part of an os error, as coreutils prints it.
func errText(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, fs.ErrExist):
		return "File exists"
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
