package winrm

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// certificateValidity is long enough to outlive any node; the pin, not the
// expiry, is what protects the connection.
const certificateValidity = 10 * 365 * 24 * time.Hour

// GenerateCertificate makes the self-signed listener certificate of one
// Windows node, for the provisioner to inject through first-boot data and to pin
// in Config.Certificate. The key is RSA 2048: every supported Windows Server
// (2019, 2022, 2025) accepts RSA in the LocalMachine\My store for the WinRM
// HTTPS listener and for `winrm create winrm/config/Listener`, while ECDSA
// listeners depend on the TLS configuration of the image. The subject CN is
// hostname, which the WinRM listener requires; ips become IP SANs.
// keyPEM is PKCS#8 ("PRIVATE KEY").
func GenerateCertificate(hostname string, ips []string) (certPEM, keyPEM []byte, cert *x509.Certificate, err error) {
	if hostname == "" {
		return nil, nil, nil, fmt.Errorf("generate WinRM certificate: empty hostname; pass the node's computer name")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate WinRM certificate for %s: RSA key: %w", hostname, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate WinRM certificate for %s: serial: %w", hostname, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname},
		NotBefore:             now.Add(-time.Hour), // tolerate a node clock slightly behind.
		NotAfter:              now.Add(certificateValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{hostname},
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, nil, nil, fmt.Errorf("generate WinRM certificate for %s: %q is not an IP address", hostname, s)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate WinRM certificate for %s: %w", hostname, err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate WinRM certificate for %s: parse: %w", hostname, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate WinRM certificate for %s: encode key: %w", hostname, err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, cert, nil
}
