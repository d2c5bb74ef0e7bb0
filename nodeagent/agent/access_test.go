package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/nodeagent/agent"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
	"github.com/mixedk8s/mixedk8s/transport/winrm"
)

// accessRun writes a as the access file on the machine and runs `access` on it.
func accessRun(t *testing.T, sb *sandbox.Sandbox, path string, a contract.Access) (int, string) {
	t.Helper()
	data, _ := json.Marshal(a)
	if err := sb.WriteFile(path, data, oslayer.Secret); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := agent.Main(context.Background(), []string{"access", "--file", path}, agent.Env{OS: sb, Stderr: &stderr})
	if _, err := sb.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the access file is still there after the run (%v)", err)
	}
	return code, stderr.String()
}

// On Linux, `access` writes the new host key owner-only where sshd reads
// it and reloads sshd, which then presents it.
func TestAccessInstallsTheSSHHostKey(t *testing.T) {
	id, _ := sandbox.Emulate("linux", "")
	sb, err := sandbox.New(t.TempDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	_, first, _ := ed25519.GenerateKey(rand.Reader)
	firstPEM, _ := ssh.MarshalPrivateKey(first, "")
	if _, err := sb.Boot(sandbox.Access{SSHHostKeyPEM: string(pem.EncodeToMemory(firstPEM))}); err != nil {
		t.Fatal(err)
	}
	_, next, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(next, "")
	nextPEM := string(pem.EncodeToMemory(block))
	if code, stderr := accessRun(t, sb, "/etc/mixedk8s/access.json", contract.Access{APIVersion: contract.APIVersion, SSHHostKeyPEM: nextPEM}); code != 0 {
		t.Fatalf("access exited %d: %s", code, stderr)
	}
	if got := sb.Access().SSHHostKeyPEM; got != nextPEM {
		t.Error("sshd does not present the installed key")
	}
	hp, _ := sb.HostPath("/etc/ssh/ssh_host_ed25519_key")
	st, err := os.Stat(hp)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the host key file: %v, mode %v; want 0600", err, st.Mode())
	}
	// A config from another release is refused before anything changes.
	code, stderr := accessRun(t, sb, "/etc/mixedk8s/access.json", contract.Access{APIVersion: "v0", SSHHostKeyPEM: nextPEM})
	if code != contract.ExitUsage || !strings.Contains(stderr, "apiVersion") {
		t.Errorf("another apiVersion: exit %d, %q", code, stderr)
	}
}

// On Windows, `access` sets the password, then the listener's certificate;
// a password Windows' policy refuses leaves the certificate alone, and
// nothing secret reaches stderr.
func TestAccessInstallsThePasswordThenTheWinRMCertificate(t *testing.T) {
	id, _ := sandbox.Emulate("windows-2022", "")
	sb, err := sandbox.New(t.TempDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	bootCert, bootKey, _, err := winrm.GenerateCertificate("win-0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Boot(sandbox.Access{WinRMCertPEM: string(bootCert), WinRMKeyPEM: string(bootKey), Passwords: map[string]string{"Mixedk8s": "Mk8-FirstBoot1"}}); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _, err := winrm.GenerateCertificate("win-0", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := contract.Access{APIVersion: contract.APIVersion, WinRMCertPEM: string(certPEM), WinRMKeyPEM: string(keyPEM), AdminUser: "mixedk8s", AdminPassword: "alllowercase"}
	code, stderr := accessRun(t, sb, `C:\ProgramData\mixedk8s\access.json`, a)
	if code != contract.ExitFailed || !strings.Contains(stderr, "password policy") || strings.Contains(stderr, a.AdminPassword) {
		t.Errorf("a weak password: exit %d, %q", code, stderr)
	}
	if got := sb.Access(); got.WinRMCertPEM != string(bootCert) || got.Passwords["mixedk8s"] != "Mk8-FirstBoot1" {
		t.Error("a refused password changed the machine")
	}
	a.AdminPassword = "Mk8-Lasting42"
	if code, stderr := accessRun(t, sb, `C:\ProgramData\mixedk8s\access.json`, a); code != 0 {
		t.Fatalf("access exited %d: %s", code, stderr)
	}
	if got := sb.Access(); got.WinRMCertPEM != string(certPEM) || got.Passwords["mixedk8s"] != a.AdminPassword {
		t.Error("the listener or the account does not hold what was installed")
	}
	effects, _ := sb.Effects()
	var order []string
	for _, e := range effects {
		if e.Kind == sandbox.KindPassword || e.Kind == sandbox.KindWinRMCertificate {
			order = append(order, e.Kind)
		}
		if strings.Contains(e.Detail, a.AdminPassword) || strings.Contains(e.Detail, "PRIVATE KEY") {
			t.Errorf("the journal holds a secret: %+v", e)
		}
	}
	if strings.Join(order, " ") != "account.password winrm.certificate" {
		t.Errorf("effects %q, want the password before the certificate", order)
	}
}

// A config the agent refuses is deleted: it holds tokens and keys, and no
// run will read it again.
func TestARefusedConfigIsRemoved(t *testing.T) {
	id, _ := sandbox.Emulate("windows-2022", "")
	sb, err := sandbox.New(t.TempDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	const path = `C:\ProgramData\mixedk8s\agent.json`
	cfg := contract.Config{APIVersion: contract.APIVersion, Join: &contract.Join{BootstrapToken: "abcdef.0123456789abcdef"}}
	data, _ := json.Marshal(cfg)
	if err := sb.WriteFile(path, data, oslayer.Secret); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := agent.Main(context.Background(), []string{"apply", "--config", path}, agent.Env{OS: sb, Stderr: &stderr}); code != contract.ExitUsage {
		t.Fatalf("apply of a config without a node: exit %d, want %d: %s", code, contract.ExitUsage, stderr.String())
	}
	if _, err := sb.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the refused config is still there (%v)", err)
	}
}
