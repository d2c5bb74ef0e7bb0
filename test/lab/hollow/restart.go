package hollow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
)

// RestartConfig is a restart of a node's kubelet with another binary.
type RestartConfig struct {
	// BinDir holds the hollow-kubelet to run from now on, e.g.
	// bin/k8s-v1.36.3; empty: <repo>/bin.
	BinDir string
	// Version is the kubeletVersion that hollow-kubelet reports on the
	// Node, e.g. "v1.36.3" (the leading "v" may be left out).
	Version string
	// Timeout bounds the wait for the Node to report Version; 0 means 60s.
	Timeout time.Duration
}

// Restart stops the kubelet and runs BinDir's hollow-kubelet in its place,
// as `systemctl restart kubelet` does after the kubelet package was
// upgraded: same node name, flags, port, labels and taints, and the work
// folder's kubelet.conf and certificates, so the kubelet makes no new TLS
// bootstrap (its bootstrap token may be gone by now). It returns the new
// kubelet once its kubelet API listens and its Node, read with the
// kubelet's own credentials, reports kubeletVersion Version. k then stands
// for the stopped process only: Process and BinDir still answer; its
// Close does nothing more.
func (k *Kubelet) Restart(ctx context.Context, cfg RestartConfig) (_ *Kubelet, err error) {
	version := cfg.Version
	if version != "" && !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	if version == "" {
		return nil, fmt.Errorf("hollow kubelet %s: restart: no Version; fix: pass the kubeletVersion the new hollow-kubelet reports, e.g. v1.36.3", k.name)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.BinDir == "" {
		if cfg.BinDir, err = proc.BinDir(Binary); err != nil {
			return nil, fmt.Errorf("hollow kubelet %s: restart: %w", k.name, err)
		}
	} else if err := proc.CheckBins(cfg.BinDir, Binary); err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: restart: %w", k.name, err)
	}
	// A kubelet without a valid client certificate would bootstrap again.
	if !k.joined() {
		return nil, fmt.Errorf("hollow kubelet %s: restart: it has no kubelet.conf of its own yet, so it would need a new TLS bootstrap; fix: restart it after StartKubelet returned", k.name)
	}
	cert, err := k.ClientCertificate()
	if err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: restart: %w", k.name, err)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("hollow kubelet %s: restart: its client certificate expired at %s, so it would need a new TLS bootstrap; fix: join the node again", k.name, cert.NotAfter.Format(time.RFC3339))
	}
	api, err := k.nodeClient()
	if err != nil {
		return nil, err
	}
	defer api.hc.CloseIdleConnections()

	k.p.Stop(2 * time.Second)
	n := &Kubelet{
		name: k.name, labels: k.labels, certDir: k.certDir, kubeconfig: k.kubeconfig, port: k.port,
		shortRoot: k.shortRoot, bin: cfg.BinDir, args: slices.Clone(k.args), env: k.env, log: k.log,
	}
	// The root folder now belongs to the new kubelet.
	k.shortRoot = ""
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	// The port stays, as a node's 10250 does; if another process took it
	// meanwhile, the kubelet moves to a free one.
	for attempt := 1; ; attempt++ {
		if err := n.run(); err != nil {
			return nil, err
		}
		werr := n.waitListening(ctx, cfg.Timeout)
		if werr == nil {
			break
		}
		if !n.p.PortTaken() || attempt == 3 {
			return nil, werr
		}
		n.p.Stop(time.Second)
		if n.port, err = proc.FreePort(); err != nil {
			return nil, fmt.Errorf("hollow kubelet %s: restart: %w", k.name, err)
		}
		for i, a := range n.args {
			if strings.HasPrefix(a, portFlag) {
				n.args[i] = portFlag + strconv.Itoa(n.port)
			}
		}
	}
	return n, n.waitVersion(ctx, api, version, cfg.Timeout)
}

// waitListening waits for the kubelet API to complete a TLS handshake
// with its serving certificate.
func (k *Kubelet) waitListening(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port))
	for {
		if exited, _ := k.p.Exited(); exited {
			return fmt.Errorf("hollow kubelet %s: the restarted kubelet stopped: %w", k.name, k.p.ExitError())
		}
		if k.handshake(addr) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hollow kubelet %s: the restarted kubelet does not listen on %s after %s; fix: read its log %s, which ends:\n%s", k.name, addr, timeout, k.p.Log, k.p.Tail(10))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// handshake makes one TLS handshake with the kubelet API at addr.
func (k *Kubelet) handshake(addr string) error {
	cert, err := k.ServingCertificate()
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	return c.Close()
}

// waitVersion waits for the Node to report kubeletVersion version.
func (k *Kubelet) waitVersion(ctx context.Context, api *nodeClient, version string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var got string
	var last error
	for {
		if exited, _ := k.p.Exited(); exited {
			return fmt.Errorf("hollow kubelet %s: the restarted kubelet stopped: %w", k.name, k.p.ExitError())
		}
		if got, last = api.kubeletVersion(ctx, k.name); last == nil && got == version {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hollow kubelet %s: its Node reports kubeletVersion %q (%v), not %s, %s after the restart; fix: check that %s holds hollow-kubelet %s, and read its log %s", k.name, got, last, version, timeout, k.bin, version, k.p.Log)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// nodeClient reads the kubelet's Node with the kubelet's own credentials.
type nodeClient struct {
	server string
	hc     *http.Client
}

// nodeClient is a client with kubelet.conf's server, CA and client certificate.
func (k *Kubelet) nodeClient() (*nodeClient, error) {
	data, err := os.ReadFile(k.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: read its kubeconfig: %w", k.name, err)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CAData string `json:"certificate-authority-data"`
				CAFile string `json:"certificate-authority"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Cert string `json:"client-certificate"`
				Key  string `json:"client-key"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(data, &kc); err != nil || len(kc.Clusters) == 0 || len(kc.Users) == 0 {
		return nil, fmt.Errorf("hollow kubelet %s: its kubeconfig %s has no cluster or user (%v)", k.name, k.kubeconfig, err)
	}
	cl, u := kc.Clusters[0].Cluster, kc.Users[0].User
	ca, err := base64.StdEncoding.DecodeString(cl.CAData)
	if err == nil && cl.CAData == "" && cl.CAFile != "" {
		ca, err = os.ReadFile(resolve(k.kubeconfig, cl.CAFile))
	}
	pool := x509.NewCertPool()
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("hollow kubelet %s: its kubeconfig %s has no readable CA certificate (%v)", k.name, k.kubeconfig, err)
	}
	pair, err := tls.LoadX509KeyPair(resolve(k.kubeconfig, u.Cert), resolve(k.kubeconfig, u.Key))
	if err != nil {
		return nil, fmt.Errorf("hollow kubelet %s: its client certificate: %w", k.name, err)
	}
	return &nodeClient{server: cl.Server, hc: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}},
	}}, nil
}

// resolve is a kubeconfig's path relative to the kubeconfig's folder, as client-go reads it.
func resolve(kubeconfig, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(kubeconfig), p)
}

// kubeletVersion is the Node's status.nodeInfo.kubeletVersion.
func (c *nodeClient) kubeletVersion(ctx context.Context, node string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+"/api/v1/nodes/"+node, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET Node %s: HTTP %d: %s", node, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var n struct {
		Status struct {
			NodeInfo struct {
				KubeletVersion string `json:"kubeletVersion"`
			} `json:"nodeInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return "", errors.New("GET Node " + node + ": the answer is not a Node")
	}
	return n.Status.NodeInfo.KubeletVersion, nil
}
