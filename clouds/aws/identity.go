package aws

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/internal/powershell"
)

// userData is a request's first-boot data: its identity rendered for its
// OS, or nothing for a request without one (the image boots as it is).
func userData(req clouds.InstanceRequest) (string, error) {
	if req.Identity.AdminUser == "" {
		return "", nil
	}
	return renderIdentity(req.OS, req.Identity, req.ComputerName)
}

// renderIdentity writes a node identity as EC2 user data for the node's OS:
// cloud-init on Linux, an EC2Launch v2 script on Windows, which also names
// the computer (computerName, empty to keep the image's name).
func renderIdentity(os string, id clouds.NodeIdentity, computerName string) (string, error) {
	if os == "windows" {
		pair, err := tls.X509KeyPair([]byte(id.WinRMCertPEM), []byte(id.WinRMKeyPEM))
		if err != nil {
			return "", fmt.Errorf("the node's WinRM certificate does not load: %w", err)
		}
		cert, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return "", err
		}
		pw := make([]byte, 16)
		if _, err := rand.Read(pw); err != nil {
			return "", err
		}
		// 3DES/SHA-1 is what every supported Windows Server imports; the PFX
		// only travels inside user data, which is the secret that protects it.
		pfx, err := pkcs12.LegacyDES.Encode(pair.PrivateKey, cert, nil, hex.EncodeToString(pw))
		if err != nil {
			return "", fmt.Errorf("failed to bundle the WinRM certificate as PFX: %w", err)
		}
		return windowsUserData{PFX: pfx, PFXPassword: hex.EncodeToString(pw), AdminUser: id.AdminUser, AdminPassword: id.AdminPassword, ComputerName: computerName}.Render()
	}
	key, err := ssh.ParsePrivateKey([]byte(id.SSHHostKeyPEM))
	if err != nil {
		return "", fmt.Errorf("the node's SSH host key does not parse: %w", err)
	}
	return linuxUserData{
		AdminUser:      id.AdminUser,
		AuthorizedKeys: id.SSHAuthorizedKeys,
		HostKeyPrivate: id.SSHHostKeyPEM,
		HostKeyPublic:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey()))),
	}.Render()
}

var (
	psLine = func(name string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^\$` + name + ` = (?:ConvertTo-SecureString -String )?'((?:[^']|'')*)'`)
	}
	pfxBase64RE     = psLine("pfxBase64")
	pfxPasswordRE   = psLine("pfxPassword")
	adminUserRE     = psLine("adminUser")
	adminPasswordRE = psLine("adminPassword")
	computerNameRE  = psLine("computerName")
)

// ComputerNameFromUserData reads back the computer name an EC2Launch script
// renames the computer to ("" when it renames nothing). The rename is
// pending: it takes effect at the next reboot (Rename-Computer without -Restart).
func ComputerNameFromUserData(userData string) string {
	if m := computerNameRE.FindStringSubmatch(userData); m != nil {
		return powershell.Unquote(m[1])
	}
	return ""
}

// IdentityFromUserData reads back the identity that renderIdentity wrote:
// what a machine booting this user data would install. The lab uses it to
// give its virtual instances the identity their first boot installs.
func IdentityFromUserData(userData string) (clouds.NodeIdentity, error) {
	switch {
	case strings.HasPrefix(userData, "<powershell>"):
		return windowsIdentity(userData)
	case strings.HasPrefix(userData, "#cloud-config"):
		return linuxIdentity(userData)
	}
	return clouds.NodeIdentity{}, errors.New("user data is neither mixedk8s cloud-config nor an EC2Launch script")
}

func windowsIdentity(ud string) (clouds.NodeIdentity, error) {
	field := func(re *regexp.Regexp) (string, error) {
		m := re.FindStringSubmatch(ud)
		if m == nil {
			return "", fmt.Errorf("EC2Launch script has no line matching %s", re)
		}
		return powershell.Unquote(m[1]), nil
	}
	var vals [4]string
	for i, re := range []*regexp.Regexp{pfxBase64RE, pfxPasswordRE, adminUserRE, adminPasswordRE} {
		v, err := field(re)
		if err != nil {
			return clouds.NodeIdentity{}, err
		}
		vals[i] = v
	}
	pfx, err := base64.StdEncoding.DecodeString(vals[0])
	if err != nil {
		return clouds.NodeIdentity{}, fmt.Errorf("the PFX in the EC2Launch script is not base64: %w", err)
	}
	key, cert, err := pkcs12.Decode(pfx, vals[1])
	if err != nil {
		return clouds.NodeIdentity{}, fmt.Errorf("the PFX in the EC2Launch script does not open: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return clouds.NodeIdentity{}, err
	}
	return clouds.NodeIdentity{
		AdminUser:     vals[2],
		AdminPassword: vals[3],
		WinRMCertPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		WinRMKeyPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}, nil
}

// linuxIdentity reads the cloud-config that linuxUserData writes: every
// value is a JSON scalar on its own line.
func linuxIdentity(ud string) (clouds.NodeIdentity, error) {
	var id clouds.NodeIdentity
	inKeys := false
	for _, line := range strings.Split(ud, "\n") {
		trimmed := strings.TrimSpace(line)
		scalar := func(prefix string) (string, bool) {
			raw, ok := strings.CutPrefix(trimmed, prefix)
			if !ok {
				return "", false
			}
			var v string
			if json.Unmarshal([]byte(raw), &v) != nil {
				return "", false
			}
			return v, true
		}
		switch {
		case strings.HasPrefix(trimmed, "ed25519_private:"):
			v, _ := scalar("ed25519_private: ")
			id.SSHHostKeyPEM = v
		case strings.HasPrefix(trimmed, "- name:"):
			v, _ := scalar("- name: ")
			id.AdminUser = v
		case trimmed == "ssh_authorized_keys:":
			inKeys = true
		case inKeys && strings.HasPrefix(trimmed, "- "):
			if v, ok := scalar("- "); ok {
				id.SSHAuthorizedKeys = append(id.SSHAuthorizedKeys, v)
			}
		default:
			inKeys = false
		}
	}
	if id.SSHHostKeyPEM == "" || id.AdminUser == "" || len(id.SSHAuthorizedKeys) == 0 {
		return clouds.NodeIdentity{}, errors.New("cloud-config lacks the host key, the admin user or its authorized keys")
	}
	return id, nil
}
