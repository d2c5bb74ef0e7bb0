package sandbox

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/nodeagent/oslayer"
)

// Access is how the emulated machine lets a client in. Secret: it is the
// machine's own key material, kept in its state as the real machine keeps
// it on disk.
type Access struct {
	// SSHHostKeyPEM is the ed25519 host key sshd loaded at its last start or reload.
	SSHHostKeyPEM string `json:"sshHostKeyPEM,omitempty"`
	// WinRMCertPEM and WinRMKeyPEM are what the WinRM HTTPS listener presents.
	WinRMCertPEM string `json:"winrmCertPEM,omitempty"`
	WinRMKeyPEM  string `json:"winrmKeyPEM,omitempty"`
	// Passwords are the local accounts' passwords by lower-case name.
	Passwords map[string]string `json:"passwords,omitempty"`
}

func (a Access) clone() Access {
	a.Passwords = maps.Clone(a.Passwords)
	return a
}

// sshHostKey is where OpenSSH's default configuration reads the ed25519 host key.
const sshHostKey = "/etc/ssh/ssh_host_ed25519_key"

// Boot returns how the machine lets clients in. On the machine's first
// boot it is first, what first-boot data (cloud-init, EC2Launch, the
// extension) installs, and it is kept: later boots keep what the disk holds,
// whatever the first-boot data still says.
func (s *Sandbox) Boot(first Access) (Access, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m.Access != nil {
		return s.m.Access.clone(), nil
	}
	a := first.clone()
	if a.Passwords == nil {
		a.Passwords = map[string]string{}
	}
	for u, p := range first.Passwords {
		delete(a.Passwords, u)
		a.Passwords[strings.ToLower(u)] = p
	}
	if s.m.Identity.GOOS == "linux" && a.SSHHostKeyPEM != "" {
		hp, err := s.HostPath(sshHostKey)
		if err != nil {
			return Access{}, err
		}
		if err := os.MkdirAll(parentDir(hp), 0o755); err != nil {
			return Access{}, err
		}
		if err := os.WriteFile(hp, []byte(a.SSHHostKeyPEM), 0o600); err != nil {
			return Access{}, err
		}
	}
	s.m.Access = &a
	if err := s.save(); err != nil {
		return Access{}, err
	}
	return a.clone(), nil
}

// Access is how the machine lets clients in now.
func (s *Sandbox) Access() Access {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m.Access == nil {
		return Access{}
	}
	return s.m.Access.clone()
}

func parentDir(p string) string {
	i := strings.LastIndexAny(p, `/\`)
	if i <= 0 {
		return p
	}
	return p[:i]
}

// InstallSSHHostKey writes the key where sshd reads it and reloads sshd,
// which then loads it as OpenSSH does: a private key file that group or
// others may read is skipped ("UNPROTECTED PRIVATE KEY FILE",
// gh:openssh/openssh-portable authfile.c sshkey_perm_ok), and an sshd left
// with no host key exits ("no hostkeys available", sshd.c).
func (s *Sandbox) InstallSSHHostKey(ctx context.Context, privatePEM []byte) error {
	if err := s.linuxOnly(); err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(privatePEM)
	if err != nil {
		return fmt.Errorf("the SSH host key does not parse: %w", err)
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err := s.WriteFile(sshHostKey, privatePEM, oslayer.Secret); err != nil {
		return err
	}
	if err := s.WriteFile(sshHostKey+".pub", []byte(pub+"\n"), oslayer.Public); err != nil {
		return err
	}
	hp, err := s.HostPath(sshHostKey)
	if err != nil {
		return err
	}
	return s.record(KindSSHDReload, "ssh.service", ssh.FingerprintSHA256(signer.PublicKey()), func() error {
		st, err := os.Stat(hp)
		if err != nil {
			return fmt.Errorf("systemctl reload ssh.service: sshd: %s: %w", sshHostKey, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("systemctl reload ssh.service: sshd: UNPROTECTED PRIVATE KEY FILE %s (permissions %#o); no hostkeys available -- exiting", sshHostKey, st.Mode().Perm())
		}
		data, err := os.ReadFile(hp)
		if err != nil {
			return err
		}
		if _, err := ssh.ParsePrivateKey(data); err != nil {
			return fmt.Errorf("systemctl reload ssh.service: sshd: no hostkeys available -- exiting: %w", err)
		}
		if s.m.Access == nil {
			s.m.Access = &Access{}
		}
		s.m.Access.SSHHostKeyPEM = string(data)
		return nil
	})
}

// InstallWinRMCertificate points the HTTPS listener at a new certificate as
// Windows checks it: the key must belong to the certificate (Import-PfxCertificate),
// and WinRM takes only a certificate that is within its validity and, when
// it lists extended key usages, has Server Authentication
// (https://learn.microsoft.com/troubleshoot/windows-client/system-management-components/configure-winrm-for-https).
func (s *Sandbox) InstallWinRMCertificate(ctx context.Context, certPEM, keyPEM []byte) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("Import-PfxCertificate: the certificate and key do not form a pair: %w", err)
	}
	leaf := pair.Leaf
	if now := s.now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("Set-WSManInstance: the certificate is not valid now (%s to %s)", leaf.NotBefore, leaf.NotAfter)
	}
	if len(leaf.ExtKeyUsage) > 0 && !hasServerAuth(leaf) {
		return errors.New("Set-WSManInstance: the certificate has no Server Authentication extended key usage")
	}
	thumb := sha1.Sum(leaf.Raw)
	return s.record(KindWinRMCertificate, "Listener Address=* Transport=HTTPS", strings.ToUpper(hex.EncodeToString(thumb[:])), func() error {
		if s.m.Access == nil {
			s.m.Access = &Access{}
		}
		s.m.Access.WinRMCertPEM, s.m.Access.WinRMKeyPEM = string(certPEM), string(keyPEM)
		return nil
	})
}

func hasServerAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// SetPassword sets a local account's password as Set-LocalUser does: the
// account must exist, and the password must meet the complexity rule
// Windows Server enforces by default: no account name in it, and three of
// upper case, lower case, digits and symbols
// (https://learn.microsoft.com/windows/security/threat-protection/security-policy-settings/password-must-meet-complexity-requirements).
func (s *Sandbox) SetPassword(ctx context.Context, user, password string) error {
	if err := s.windowsOnly(); err != nil {
		return err
	}
	key := strings.ToLower(user)
	return s.record(KindPassword, user, "", func() error {
		if s.m.Access == nil || s.m.Access.Passwords == nil {
			return fmt.Errorf("Set-LocalUser: User %s was not found", user)
		}
		if _, ok := s.m.Access.Passwords[key]; !ok {
			return fmt.Errorf("Set-LocalUser: User %s was not found", user)
		}
		if !meetsComplexity(user, password) {
			return errors.New("Set-LocalUser: The password does not meet the password policy requirements")
		}
		s.m.Access.Passwords[key] = password
		return nil
	})
}

func meetsComplexity(user, pw string) bool {
	if len(user) >= 3 && strings.Contains(strings.ToLower(pw), strings.ToLower(user)) {
		return false
	}
	var upper, lower, digit, other int
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			other = 1
		}
	}
	return upper+lower+digit+other >= 3
}
