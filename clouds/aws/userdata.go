package aws

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/mixedk8s/mixedk8s/internal/powershell"
)

// linuxUserData is a cloud-init first boot that installs the SSH host key
// the provisioner generated (so the node's key is pinned, never trusted on
// first use) and the admin user's authorized keys.
type linuxUserData struct {
	// AdminUser is the login user, e.g. "ubuntu".
	AdminUser string
	// AuthorizedKeys are OpenSSH public keys allowed to log in as AdminUser.
	AuthorizedKeys []string
	// HostKeyPrivate is the ed25519 host key in OpenSSH PEM form; secret.
	HostKeyPrivate string
	// HostKeyPublic is its "ssh-ed25519 AAAA..." public line.
	HostKeyPublic string
}

var userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// Render returns the #cloud-config document. Strings are written as JSON
// scalars, which YAML reads verbatim, so no key material can break the document.
func (u linuxUserData) Render() (string, error) {
	if !userRE.MatchString(u.AdminUser) {
		return "", fmt.Errorf("admin user %q is not a valid Linux user name", u.AdminUser)
	}
	if !strings.Contains(u.HostKeyPrivate, "PRIVATE KEY") || !strings.HasPrefix(u.HostKeyPublic, "ssh-ed25519 ") {
		return "", errors.New("the SSH host key must be an ed25519 pair: OpenSSH private key PEM and an ssh-ed25519 public line")
	}
	if len(u.AuthorizedKeys) == 0 {
		return "", errors.New("no authorized key for the admin user: nobody could log in")
	}
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	var b strings.Builder
	b.WriteString("#cloud-config\n")
	// Remove the image's keys and generate none: the node must present the pinned key only.
	b.WriteString("ssh_deletekeys: true\nssh_genkeytypes: []\n")
	b.WriteString("ssh_keys:\n")
	b.WriteString("  ed25519_private: " + q(u.HostKeyPrivate) + "\n")
	b.WriteString("  ed25519_public: " + q(u.HostKeyPublic) + "\n")
	b.WriteString("disable_root: true\n")
	b.WriteString("users:\n")
	b.WriteString("  - name: " + q(u.AdminUser) + "\n")
	b.WriteString("    shell: /bin/bash\n")
	b.WriteString("    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n")
	b.WriteString("    lock_passwd: true\n")
	b.WriteString("    ssh_authorized_keys:\n")
	for _, k := range u.AuthorizedKeys {
		b.WriteString("      - " + q(strings.TrimSpace(k)) + "\n")
	}
	return b.String(), nil
}

// windowsUserData is an EC2Launch v2 first boot: it imports the WinRM
// certificate the provisioner generated (pinned by the client), creates
// the WinRM HTTPS listener on 5986 with it, opens the firewall for 5986,
// sets the admin password and names the computer.
type windowsUserData struct {
	// PFX is the PKCS#12 bundle of the WinRM server certificate and key; secret.
	PFX []byte
	// PFXPassword protects PFX; secret.
	PFXPassword string
	// AdminUser is the local administrator, default "Administrator".
	AdminUser string
	// AdminPassword is set on AdminUser; secret.
	AdminPassword string
	// ComputerName is the computer's new name, active after the next reboot
	// (the agent's, which the Containers feature needs anyway); empty keeps
	// EC2Launch's EC2AMAZ-... name.
	ComputerName string
}

// netbiosName is a computer name Rename-Computer keeps whole: NetBIOS keeps
// 15 characters of a longer name and drops the rest
// (https://learn.microsoft.com/windows/win32/api/sysinfoapi/nf-sysinfoapi-setcomputernameexw).
var netbiosName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,14}$`)

// psQuote makes a PowerShell single-quoted string literal.
func psQuote(s string) string { return powershell.Quote(s) }

// Render returns the <powershell> script. <persist>false</persist>: the
// script runs on first boot only, so a reboot does not re-run it. Each
// secret sits on a line of its own ($pfxBase64, $pfxPassword, $adminUser,
// $adminPassword), which IdentityFromUserData reads back.
func (u windowsUserData) Render() (string, error) {
	if len(u.PFX) == 0 {
		return "", errors.New("no WinRM certificate (PFX) given; the node could not serve WinRM over HTTPS")
	}
	if u.AdminPassword == "" {
		return "", errors.New("no admin password given")
	}
	user := u.AdminUser
	if user == "" {
		user = "Administrator"
	}
	if u.ComputerName != "" && !netbiosName.MatchString(u.ComputerName) {
		return "", fmt.Errorf("computer name %q is not 1-15 letters, digits and '-'; Windows would cut it to its first 15 characters", u.ComputerName)
	}
	var b strings.Builder
	b.WriteString("<powershell>\n")
	b.WriteString("$ErrorActionPreference = 'Stop'\n")
	b.WriteString("$pfxBase64 = " + psQuote(base64.StdEncoding.EncodeToString(u.PFX)) + "\n")
	b.WriteString("$pfxPassword = ConvertTo-SecureString -String " + psQuote(u.PFXPassword) + " -AsPlainText -Force\n")
	b.WriteString("$pfxPath = Join-Path $env:TEMP 'mixedk8s-winrm.pfx'\n")
	b.WriteString("[IO.File]::WriteAllBytes($pfxPath, [Convert]::FromBase64String($pfxBase64))\n")
	b.WriteString("try {\n")
	b.WriteString("  $cert = Import-PfxCertificate -FilePath $pfxPath -CertStoreLocation Cert:\\LocalMachine\\My -Password $pfxPassword\n")
	b.WriteString("} finally {\n")
	b.WriteString("  Remove-Item -Force $pfxPath\n")
	b.WriteString("}\n")
	b.WriteString("Get-ChildItem WSMan:\\localhost\\Listener | Where-Object { $_.Keys -contains 'Transport=HTTPS' } | Remove-Item -Recurse -Force\n")
	b.WriteString("New-Item -Path WSMan:\\localhost\\Listener -Transport HTTPS -Address * -CertificateThumbPrint $cert.Thumbprint -Force | Out-Null\n")
	b.WriteString("New-NetFirewallRule -Name 'mixedk8s-winrm-https' -DisplayName 'WinRM over HTTPS (mixedk8s)' -Direction Inbound -Protocol TCP -LocalPort 5986 -Action Allow | Out-Null\n")
	b.WriteString("$adminUser = " + psQuote(user) + "\n")
	b.WriteString("$adminPassword = ConvertTo-SecureString -String " + psQuote(u.AdminPassword) + " -AsPlainText -Force\n")
	b.WriteString("if (Get-LocalUser -Name $adminUser -ErrorAction SilentlyContinue) {\n")
	b.WriteString("  Set-LocalUser -Name $adminUser -Password $adminPassword\n")
	b.WriteString("} else {\n")
	b.WriteString("  New-LocalUser -Name $adminUser -Password $adminPassword -PasswordNeverExpires | Out-Null\n")
	b.WriteString("  Add-LocalGroupMember -Group 'Administrators' -Member $adminUser\n")
	b.WriteString("}\n")
	// Without it, remote logons of local administrators other than the built-in one get a filtered token.
	b.WriteString("Set-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System' -Name LocalAccountTokenFilterPolicy -Value 1 -Type DWord\n")
	b.WriteString("Restart-Service WinRM\n")
	if u.ComputerName != "" {
		// Active at the agent's reboot: one reboot serves the name and the features.
		b.WriteString("$computerName = " + psQuote(u.ComputerName) + "\n")
		b.WriteString("if ($env:COMPUTERNAME -ne $computerName) { Rename-Computer -NewName $computerName -Force }\n")
	}
	b.WriteString("</powershell>\n")
	b.WriteString("<persist>false</persist>\n")
	return b.String(), nil
}
