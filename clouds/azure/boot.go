package azure

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
)

// What a node's first boot gets on Azure, and why it is split this way:
//
//   - Linux: the admin user and its SSH keys go in osProfile (Azure's own
//     provisioning creates the user); the pre-generated host key goes in
//     customData as cloud-init, which Azure runs on Linux
//     (https://learn.microsoft.com/azure/virtual-machines/custom-data).
//     customData is readable by the VM only (IMDS does not serve it).
//   - Windows: Azure writes customData to %SYSTEMDRIVE%\AzureData\CustomData.bin
//     but never runs it, and the field says "do not pass any secrets or
//     passwords in customData" (same page; armcompute OSProfile.CustomData).
//     So customData holds only the WinRM setup script, without secrets; the
//     admin password goes in osProfile.adminPassword (write-only in ARM);
//     and the Custom Script Extension runs the script with the WinRM PFX
//     and its password as arguments from protectedSettings, which Azure
//     encrypts to the VM and never returns on GET
//     (https://learn.microsoft.com/azure/virtual-machines/extensions/custom-script-windows).
//     The provisioner pins the certificate it generated: no trust on first use.
//     A Key Vault certificate on windowsConfiguration.winRM.listeners would
//     keep the PFX out of the extension too, but needs a vault per cluster
//     enabled for deployment, whose names are global and reserved for up to
//     90 days after deletion; see docs/architecture.md.

// windowsBootScript is the whole PowerShell the Windows first boot runs:
// it installs the WinRM HTTPS listener with the given certificate. It holds
// no secret; its two arguments come from the extension's protectedSettings.
const windowsBootScript = `param([Parameter(Mandatory)][string]$PfxBase64, [Parameter(Mandatory)][string]$PfxPassword)
$ErrorActionPreference = 'Stop'
$pfxPath = Join-Path $env:TEMP 'mixedk8s-winrm.pfx'
[IO.File]::WriteAllBytes($pfxPath, [Convert]::FromBase64String($PfxBase64))
try {
  $cert = Import-PfxCertificate -FilePath $pfxPath -CertStoreLocation Cert:\LocalMachine\My -Password (ConvertTo-SecureString -String $PfxPassword -AsPlainText -Force)
} finally {
  Remove-Item -Force $pfxPath
}
Get-ChildItem WSMan:\localhost\Listener | Where-Object { $_.Keys -contains 'Transport=HTTPS' } | Remove-Item -Recurse -Force
New-Item -Path WSMan:\localhost\Listener -Transport HTTPS -Address * -CertificateThumbPrint $cert.Thumbprint -Force | Out-Null
New-NetFirewallRule -Name 'mixedk8s-winrm-https' -DisplayName 'WinRM over HTTPS (mixedk8s)' -Direction Inbound -Protocol TCP -LocalPort 5986 -Action Allow | Out-Null
Set-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System' -Name LocalAccountTokenFilterPolicy -Value 1 -Type DWord
Restart-Service WinRM
`

// maxCommandLine is cmd.exe's limit, which the extension's commandToExecute runs under
// (https://learn.microsoft.com/troubleshoot/windows-client/shell-experience/command-line-string-limitation).
const maxCommandLine = 8191

// windowsCommand is the extension's protected commandToExecute: it runs
// CustomData.bin as a script block with the PFX and its password.
func windowsCommand(pfxBase64, pfxPassword string) string {
	return `powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "& ([ScriptBlock]::Create([IO.File]::ReadAllText($env:SystemDrive + '\AzureData\CustomData.bin'))) -PfxBase64 '` +
		pfxBase64 + `' -PfxPassword '` + pfxPassword + `'"`
}

var commandRE = regexp.MustCompile(`-PfxBase64 '([A-Za-z0-9+/=]+)' -PfxPassword '([0-9a-f]+)'`)

// linuxCloudConfig installs the node's pinned SSH host key and no other.
// Strings are JSON scalars, which YAML reads verbatim.
func linuxCloudConfig(hostKeyPEM string) (string, error) {
	key, err := ssh.ParsePrivateKey([]byte(hostKeyPEM))
	if err != nil {
		return "", fmt.Errorf("the node's SSH host key does not parse: %w", err)
	}
	if key.PublicKey().Type() != ssh.KeyAlgoED25519 {
		return "", errors.New("the node's SSH host key is not ed25519")
	}
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey())))
	return "#cloud-config\n" +
		// Remove the image's keys and generate none: the node presents the pinned key only
		// (gh:canonical/cloud-init cloudinit/config/cc_ssh.py).
		"ssh_deletekeys: true\nssh_genkeytypes: []\n" +
		"ssh_keys:\n" +
		"  ed25519_private: " + q(hostKeyPEM) + "\n" +
		"  ed25519_public: " + q(pub) + "\n" +
		"disable_root: true\n", nil
}

// boot is what EnsureInstance sends for a node's first boot.
type boot struct {
	adminPassword string   // Windows only; secret
	sshKeys       []string // Linux only
	customData    string
	command       string // Windows extension's protected commandToExecute; secret
}

func renderBoot(req clouds.InstanceRequest) (boot, error) {
	id := req.Identity
	if req.OS != "windows" {
		if len(id.SSHAuthorizedKeys) == 0 {
			return boot{}, errors.New("no SSH authorized key for the admin user: nobody could log in")
		}
		cc, err := linuxCloudConfig(id.SSHHostKeyPEM)
		return boot{customData: cc, sshKeys: id.SSHAuthorizedKeys}, err
	}
	if id.AdminPassword == "" {
		return boot{}, errors.New("no admin password for the Windows node")
	}
	pair, err := tls.X509KeyPair([]byte(id.WinRMCertPEM), []byte(id.WinRMKeyPEM))
	if err != nil {
		return boot{}, fmt.Errorf("the node's WinRM certificate does not load: %w", err)
	}
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return boot{}, err
	}
	// 3DES/SHA-1 is what every supported Windows Server imports; the PFX
	// travels only inside protectedSettings, which is what protects it.
	pfx, err := pkcs12.LegacyDES.Encode(pair.PrivateKey, pair.Leaf, nil, hex.EncodeToString(pw))
	if err != nil {
		return boot{}, fmt.Errorf("failed to bundle the WinRM certificate as PFX: %w", err)
	}
	cmd := windowsCommand(base64.StdEncoding.EncodeToString(pfx), hex.EncodeToString(pw))
	if len(cmd) > maxCommandLine {
		return boot{}, fmt.Errorf("the WinRM certificate makes the extension's command %d characters, more than cmd.exe's %d; use an ECDSA or 2048-bit RSA certificate", len(cmd), maxCommandLine)
	}
	return boot{customData: windowsBootScript, adminPassword: id.AdminPassword, command: cmd}, nil
}

// BootData is what Azure hands a VM at first boot, as the lab's ARM
// emulator records it: osProfile's admin login, the decoded customData,
// and the Custom Script Extension's protected command.
type BootData struct {
	Windows          bool
	AdminUsername    string
	AdminPassword    string
	SSHPublicKeys    []string
	CustomData       string
	ProtectedCommand string
}

// IdentityFromBoot reads back the identity a machine booting with b would
// install. The lab uses it to give its virtual hosts the identity the
// backend sent, exactly as a real VM would get it.
func IdentityFromBoot(b BootData) (clouds.NodeIdentity, error) {
	id := clouds.NodeIdentity{AdminUser: b.AdminUsername}
	if id.AdminUser == "" {
		return clouds.NodeIdentity{}, errors.New("osProfile has no admin username")
	}
	if !b.Windows {
		if !strings.HasPrefix(b.CustomData, "#cloud-config\n") {
			return clouds.NodeIdentity{}, errors.New("customData is not a cloud-config")
		}
		for _, line := range strings.Split(b.CustomData, "\n") {
			if raw, ok := strings.CutPrefix(strings.TrimSpace(line), "ed25519_private: "); ok {
				if err := json.Unmarshal([]byte(raw), &id.SSHHostKeyPEM); err != nil {
					return clouds.NodeIdentity{}, fmt.Errorf("the cloud-config's host key is not a JSON string: %w", err)
				}
			}
		}
		if id.SSHHostKeyPEM == "" || len(b.SSHPublicKeys) == 0 {
			return clouds.NodeIdentity{}, errors.New("the VM has no pinned host key in customData or no SSH key in osProfile")
		}
		id.SSHAuthorizedKeys = b.SSHPublicKeys
		return id, nil
	}
	if b.CustomData != windowsBootScript {
		return clouds.NodeIdentity{}, errors.New("customData is not the WinRM setup script")
	}
	m := commandRE.FindStringSubmatch(b.ProtectedCommand)
	if m == nil {
		return clouds.NodeIdentity{}, errors.New("the extension's protected command carries no WinRM certificate")
	}
	pfx, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		return clouds.NodeIdentity{}, fmt.Errorf("the PFX in the extension's command is not base64: %w", err)
	}
	key, cert, err := pkcs12.Decode(pfx, m[2])
	if err != nil {
		return clouds.NodeIdentity{}, fmt.Errorf("the PFX in the extension's command does not open: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return clouds.NodeIdentity{}, err
	}
	id.AdminPassword = b.AdminPassword
	id.WinRMCertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	id.WinRMKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return id, nil
}
