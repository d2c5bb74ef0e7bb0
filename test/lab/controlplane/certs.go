package controlplane

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sharedCerts are the files kubeadm's upload-certs phase puts in the
// kubeadm-certs Secret, by the Secret's key for each (a "/" becomes "-"):
// kubernetes/cmd/kubeadm/app/phases/copycerts/copycerts.go, certsToTransfer.
var sharedCerts = map[string]string{
	"ca.crt": "ca.crt", "ca.key": "ca.key",
	"front-proxy-ca.crt": "front-proxy-ca.crt", "front-proxy-ca.key": "front-proxy-ca.key",
	"sa.pub": "sa.pub", "sa.key": "sa.key",
	"etcd-ca.crt": "etcd/ca.crt", "etcd-ca.key": "etcd/ca.key",
}

// downloadCerts is kubeadm's DownloadCerts with the joining node's
// bootstrap token as its client: the kubeadm-certs Secret (readable by the
// bootstrappers through kubeadm's kubeadm:kubeadm-certs Role), each entry
// opened with AES-GCM under the certificate key (kubeadm's
// cryptoutil.DecryptBytes), written into certDir. The Secret is gone once
// the token the upload made expires (two hours; the garbage collector
// follows its owner reference), and then the join fails as kubeadm's does.
func (c *ControlPlane) downloadCerts(ctx context.Context, token, key, certDir string) error {
	k, err := hex.DecodeString(key)
	if err != nil {
		return fmt.Errorf("error decoding certificate key: %w", err)
	}
	tc, err := c.tokenClient(token)
	if err != nil {
		return err
	}
	code, body, err := tc.do(ctx, http.MethodGet, "/api/v1/namespaces/kube-system/secrets/kubeadm-certs", nil)
	switch {
	case err != nil:
		return fmt.Errorf("error downloading the secret: %w", err)
	case code == http.StatusNotFound:
		return errors.New("error downloading the secret: Secret \"kubeadm-certs\" was not found in the \"kube-system\" Namespace. This Secret might have expired. Please, run `kubeadm init phase upload-certs --upload-certs` on a control plane to generate a new one")
	case code != http.StatusOK:
		return fmt.Errorf("error downloading the secret: HTTP %d: %s", code, strings.TrimSpace(string(body)))
	}
	var sec struct {
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal(body, &sec); err != nil {
		return fmt.Errorf("error downloading the secret: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return fmt.Errorf("error decoding secret data with provided key: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("error decoding secret data with provided key: %w", err)
	}
	plain := map[string][]byte{}
	for name, enc := range sec.Data {
		if len(enc) < gcm.NonceSize() {
			return errors.New("error decoding secret data with provided key: size of data is less than the nonce")
		}
		out, err := gcm.Open(nil, enc[:gcm.NonceSize()], enc[gcm.NonceSize():], nil)
		if err != nil {
			return fmt.Errorf("error decoding secret data with provided key: %w", err)
		}
		plain[name] = out
	}
	for name, file := range sharedCerts {
		data, ok := plain[name]
		if !ok {
			return fmt.Errorf("the Secret does not include the required certificate or key - name: %s, path: %s", file, filepath.Join(certDir, file))
		}
		p := filepath.Join(certDir, filepath.FromSlash(file))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(file, ".key") {
			mode = 0o600
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			return err
		}
	}
	return nil
}

// tokenClient is a client of the cluster's endpoint that authenticates
// with a bootstrap token and trusts the cluster CA, as a joining node does
// after discovery.
func (c *ControlPlane) tokenClient(token string) (*client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.caPEM) {
		return nil, errors.New("control plane: the cluster CA is not PEM")
	}
	return &client{server: c.URL(), hc: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &bearer{token: token, rt: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}},
	}}, nil
}

type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}

// UploadCerts runs `kubeadm init phase upload-certs --upload-certs
// --certificate-key KEY` on the named member's PKI with its admin.conf, as
// on that node: the real kubeadm replaces the kubeadm-certs Secret and
// makes it a new two-hour token to be owned by.
func (c *ControlPlane) UploadCerts(ctx context.Context, node, key string) error {
	m := c.Member(node)
	if m == nil {
		return fmt.Errorf("error execution phase upload-certs: no control plane runs on %s", node)
	}
	return m.uploadCerts(ctx, key, filepath.Join(m.dirs["kubeconfig"], "admin.conf"))
}

// uploadCerts runs the real upload-certs phase on the member's PKI with
// the key in its configuration: kubeadm refuses --certificate-key beside
// --config (kubernetes/cmd/kubeadm/app/apis/kubeadm/validation, isAllowedFlag).
func (m *Member) uploadCerts(ctx context.Context, key, kubeconfig string) error {
	data, err := os.ReadFile(m.config())
	if err != nil {
		return err
	}
	docs, err := parseKubeadmConfig(data)
	if err != nil {
		return err
	}
	docs.kind("InitConfiguration")["certificateKey"] = key
	out, err := docs.marshal()
	if err != nil {
		return err
	}
	conf := filepath.Join(m.dirs["kubeadm"], "upload-certs.yaml")
	if err := os.WriteFile(conf, out, 0o600); err != nil {
		return err
	}
	defer os.Remove(conf)
	return m.kubeadm(ctx, "init", "phase", "upload-certs", "--upload-certs", "--config", conf, "--kubeconfig", kubeconfig)
}

// ExpireUploadedCerts does what two hours do to the uploaded certificates:
// the token the upload made expires and the tokencleaner deletes it, then
// the garbage collector deletes the kubeadm-certs Secret it owns. Both
// deletes happen here at once.
func (c *ControlPlane) ExpireUploadedCerts(ctx context.Context) error {
	code, body, err := c.superAdmin.do(ctx, http.MethodGet, "/api/v1/namespaces/kube-system/secrets/kubeadm-certs", nil)
	if err != nil {
		return err
	}
	if code == http.StatusNotFound {
		return nil
	}
	var sec struct {
		Metadata struct {
			OwnerReferences []struct {
				Name string `json:"name"`
			} `json:"ownerReferences"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &sec); err != nil {
		return err
	}
	for _, o := range sec.Metadata.OwnerReferences {
		if err := c.superAdmin.expect(ctx, http.MethodDelete, "/api/v1/namespaces/kube-system/secrets/"+o.Name, nil, http.StatusOK, http.StatusNotFound); err != nil {
			return err
		}
	}
	return c.superAdmin.expect(ctx, http.MethodDelete, "/api/v1/namespaces/kube-system/secrets/kubeadm-certs", nil, http.StatusOK, http.StatusNotFound)
}
