package host

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLinuxCommands(t *testing.T) {
	t.Parallel()
	h := newLinux(t)
	InstallLinuxCommands(h)
	// Each step runs on the state the previous ones left, like a session.
	for _, tc := range []struct {
		line, stdin    string
		code           int
		stdout, stderr string
	}{
		{line: "true"},
		{line: "false", code: 1},
		{line: "exit 42", code: 42},
		{line: "echo -n a b", stdout: "a b"},
		{line: "mkdir /opt/x", code: 1, stderr: "mkdir: cannot create directory '/opt/x': No such file or directory\n"},
		{line: "mkdir -p /opt/x/y"},
		{line: "test -d /opt/x/y"},
		{line: "test -f /opt/x/y", code: 1},
		{line: "sh -c 'cat - '", stdin: "hello\n", stdout: "hello\n"},
		{line: "cp /missing /opt/x/f", code: 1, stderr: "cp: cannot stat '/missing': No such file or directory\n"},
		{line: "cat /opt/x/f", code: 1, stderr: "cat: /opt/x/f: No such file or directory\n"},
		{line: "sha256sum /etc/none", code: 1, stderr: "sha256sum: /etc/none: No such file or directory\n"},
		{line: "rm /opt/x/f", code: 1, stderr: "rm: cannot remove '/opt/x/f': No such file or directory\n"},
		{line: "rm -f /opt/x/f"},
		{line: "rm -z /opt/x/f", code: 2, stderr: "rm: invalid option -- 'z'\n"},
		{line: "chmod u+x /opt/x", code: 1, stderr: "chmod: invalid mode: 'u+x' (the lab understands octal modes only)\n"},
		{line: "uname -a", stdout: "Linux node 6.1.0-lab-amd64 #1 SMP Debian 6.1.0-lab x86_64 GNU/Linux\n"},
		{line: "uname -m", stdout: "x86_64\n"},
		{line: "id -u", stdout: "0\n"},
		{line: "id -un", stdout: "root\n"},
		{line: "hostname", stdout: "node\n"},
		{line: "sudo -n sh -c 'test -e /opt/x'"},
		{line: "rm -rf /", code: 1, stderr: "rm: it is dangerous to operate recursively on '/'\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := h.Exec(t.Context(), tc.line, strings.NewReader(tc.stdin), &stdout, &stderr)
		if code != tc.code || stdout.String() != tc.stdout || stderr.String() != tc.stderr {
			t.Errorf("%q: got %d %q %q; want %d %q %q", tc.line, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}

func TestLinuxFileCommandsWorkOnTheSandbox(t *testing.T) {
	t.Parallel()
	h := newLinux(t)
	InstallLinuxCommands(h)
	run := func(line string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := h.Exec(t.Context(), line, nil, &stdout, &stderr); code != 0 {
			t.Fatalf("%q: exit %d: %s", line, code, stderr.String())
		}
		return stdout.String()
	}
	real, _ := h.Path("/etc/mixedk8s/a")
	run("mkdir -p /etc/mixedk8s")
	if err := os.WriteFile(real, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := run("sha256sum /etc/mixedk8s/a"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  /etc/mixedk8s/a\n" {
		t.Errorf("sha256sum: %q", got)
	}
	run("chmod 0600 /etc/mixedk8s/a")
	if st, _ := os.Stat(real); st.Mode().Perm() != 0o600 {
		t.Errorf("chmod: mode %v", st.Mode().Perm())
	}
	run("cp /etc/mixedk8s/a /etc/mixedk8s/b")
	run("mv -f /etc/mixedk8s/b /etc/mixedk8s/c")
	if got := run("cat /etc/mixedk8s/c"); got != "abc" {
		t.Errorf("cat after cp and mv: %q", got)
	}
	run("test -f /etc/mixedk8s/c")
	run("rm -r /etc/mixedk8s")
	if _, err := os.Stat(real); !os.IsNotExist(err) {
		t.Errorf("rm -r left %s: %v", real, err)
	}
}

func TestSleepHonoursCancel(t *testing.T) {
	t.Parallel()
	h := newLinux(t)
	InstallLinuxCommands(h)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if code := h.Exec(ctx, "sleep 30", nil, nil, nil); code != 130 {
		t.Errorf("sleep cancelled: exit %d, want 130", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("sleep returned %s after cancel", d)
	}
}
