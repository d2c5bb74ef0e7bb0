package provision

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster/internal/pki"
	"github.com/mixedk8s/mixedk8s/transport/winrm"
)

// ca returns the cluster CA, making and storing it on first use.
func (p *Provisioner) ca(ctx context.Context, cluster string) (*pki.CA, error) {
	if ca, ok, err := p.storedCA(ctx, cluster); err != nil || ok {
		return ca, err
	}
	fresh, err := pki.NewCA(cluster, time.Now())
	if err != nil {
		return nil, err
	}
	keyPEM, err := fresh.KeyPEM()
	if err != nil {
		return nil, err
	}
	stored, err := p.cfg.Secrets.EnsureSecret(ctx, cluster, secretCA, append(fresh.CertPEM(), keyPEM...))
	if err != nil {
		return nil, fmt.Errorf("failed to store the CA of cluster %q in the cloud's secret store: %w", cluster, err)
	}
	certPEM, keyPEM := splitPEM(stored)
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the CA of cluster %q in the secret store is damaged: %w", cluster, err)
	}
	return ca, nil
}

// initToken is the bootstrap token written into the first control-plane
// node's config. It is stored so that a retried init sees the same config
// and the agent recognises its own finished work.
func (p *Provisioner) initToken(ctx context.Context, cluster string) (string, error) {
	fresh, err := pki.NewBootstrapToken()
	if err != nil {
		return "", err
	}
	tok, err := p.cfg.Secrets.EnsureSecret(ctx, cluster, secretInitToken, []byte(fresh))
	if err != nil {
		return "", fmt.Errorf("failed to store the init token of cluster %q: %w", cluster, err)
	}
	return string(tok), nil
}

// certificateKey protects the control-plane certificates kubeadm uploads for other control-plane nodes.
func (p *Provisioner) certificateKey(ctx context.Context, cluster string) (string, error) {
	fresh, err := pki.NewCertificateKey()
	if err != nil {
		return "", err
	}
	k, err := p.cfg.Secrets.EnsureSecret(ctx, cluster, secretCertificateKey, []byte(fresh))
	if err != nil {
		return "", fmt.Errorf("failed to store the certificate key of cluster %q: %w", cluster, err)
	}
	return string(k), nil
}

// winrmCert is a Windows node's WinRM listener certificate stored under
// name, made once and kept, because its key cannot be derived again from the seed.
func (p *Provisioner) winrmCert(ctx context.Context, cluster, node string, name clouds.SecretName) (certPEM, keyPEM []byte, err error) {
	key := cluster + "/" + string(name)
	p.mu.Lock()
	stored, ok := p.certs[key]
	p.mu.Unlock()
	if !ok {
		// Look first: an RSA key takes long to make, and most calls only read.
		stored, ok, err = p.cfg.Secrets.Secret(ctx, cluster, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read the WinRM certificate of %s: %w", node, err)
	}
	if !ok {
		certPEM, keyPEM, _, err = winrm.GenerateCertificate(node, nil)
		if err != nil {
			return nil, nil, err
		}
		stored, err = p.cfg.Secrets.EnsureSecret(ctx, cluster, name, append(certPEM, keyPEM...))
		if err != nil {
			return nil, nil, fmt.Errorf("failed to store the WinRM certificate of %s: %w", node, err)
		}
	}
	p.mu.Lock()
	p.certs[key] = stored
	p.mu.Unlock()
	certPEM, keyPEM = splitPEM(stored)
	if certPEM == nil || keyPEM == nil {
		return nil, nil, fmt.Errorf("the WinRM certificate of %s in the secret store is damaged; fix: delete the instance and its secret %q, then apply again", node, name)
	}
	return certPEM, keyPEM, nil
}

// splitPEM separates a stored "certificate then key" bundle.
func splitPEM(b []byte) (certPEM, keyPEM []byte) {
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return certPEM, keyPEM
		}
		enc := pem.EncodeToMemory(block)
		if block.Type == "CERTIFICATE" {
			certPEM = append(certPEM, enc...)
		} else if bytes.Contains([]byte(block.Type), []byte("PRIVATE KEY")) {
			keyPEM = append(keyPEM, enc...)
		}
	}
}
