package hollow_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/proc"
	"github.com/mixedk8s/mixedk8s/test/lab/hollow"
	"sigs.k8s.io/yaml"
)

type node struct {
	Metadata struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Taints []struct {
			Key, Value, Effect string
		} `json:"taints"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type, Status string
		} `json:"conditions"`
	} `json:"status"`
}

func (n node) ready() bool {
	return slices.ContainsFunc(n.Status.Conditions, func(c struct{ Type, Status string }) bool {
		return c.Type == "Ready" && c.Status == "True"
	})
}

// TestJoin joins a Linux-like and a Windows-like hollow node through TLS
// bootstrap with the bootstrap kubeconfig the agent writes, checks that
// each holds no socket off 127.0.0.1 and serves an authenticated kubelet
// API there, and that a wrong token fails fast with a clear error.
func TestJoin(t *testing.T) {
	cptest.Bins(t, append(slices.Clone(controlplane.Binaries), hollow.Binary)...)
	cl := cptest.Sandbox(t)
	began := time.Now()
	cp := cptest.Start(t, cl)
	t.Logf("control plane ready in %s", time.Since(began).Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool, err := cp.CAPool()
	if err != nil {
		t.Fatal(err)
	}

	bootstrap := func(name, os, token string) []byte {
		t.Helper()
		b, err := kubeadm.BootstrapKubeconfig(cl.JoinConfig(name, os, token))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []hollow.Config{
		{Name: "demo-linux-0", Labels: map[string]string{"mixedk8s.io/pool": "linux"}},
		{
			Name:   "demo-win-0",
			Labels: map[string]string{"node.kubernetes.io/windows-build": "10.0.20348", "mixedk8s.io/pool": "win"},
			Taints: []string{"os=windows:NoSchedule"},
		},
	}
	kubelets := make([]*hollow.Kubelet, len(cases))
	joined := make([]time.Duration, len(cases))
	started := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, c := range cases {
		os := "linux"
		if c.Taints != nil {
			os = "windows"
		}
		c.BootstrapKubeconfig = bootstrap(c.Name, os, cptest.Token)
		c.Server = cp.URL()
		c.WorkDir = t.TempDir()
		wg.Go(func() {
			start := time.Now()
			kubelets[i], errs[i] = hollow.StartKubelet(ctx, c)
			joined[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kubelets[i].Close() })
	}

	for i, k := range kubelets {
		c := cases[i]
		cert, err := k.ClientCertificate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: its client certificate is not signed by the cluster CA: %v", k.Name(), err)
		}
		if cert.Subject.CommonName != "system:node:"+k.Name() || !slices.Equal(cert.Subject.Organization, []string{"system:nodes"}) {
			t.Errorf("%s: client certificate subject %s, want CN=system:node:%s, O=system:nodes", k.Name(), cert.Subject, k.Name())
		}

		var n node
		for {
			code, body, err := cp.Do(ctx, http.MethodGet, "/api/v1/nodes/"+k.Name(), nil)
			if err == nil && code == http.StatusOK {
				if err := json.Unmarshal(body, &n); err != nil {
					t.Fatal(err)
				}
				if n.ready() {
					break
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: not Ready (HTTP %d, %v); its log %s ends:\n%s", k.Name(), code, err, k.Process().Log, k.Process().Tail(10))
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s: TLS bootstrap done in %s, Ready %s after StartKubelet", k.Name(), joined[i].Round(100*time.Millisecond), time.Since(started).Round(100*time.Millisecond))
		for key, v := range k.Labels() {
			if got, ok := n.Metadata.Labels[key]; !ok || got != v {
				t.Errorf("%s: label %s = %q, want %q (labels: %v)", k.Name(), key, got, v, n.Metadata.Labels)
			}
		}
		if n.Metadata.Labels["kubernetes.io/os"] != hollow.ReportedOS {
			t.Errorf("%s: kubernetes.io/os = %q; the package doc says hollow kubelets report %s", k.Name(), n.Metadata.Labels["kubernetes.io/os"], hollow.ReportedOS)
		}
		var taints []string
		for _, tn := range n.Spec.Taints {
			taints = append(taints, fmt.Sprintf("%s=%s:%s", tn.Key, tn.Value, tn.Effect))
		}
		for _, want := range c.Taints {
			if !slices.Contains(taints, want) {
				t.Errorf("%s: taints %v lack %s", k.Name(), taints, want)
			}
		}
		if c.Taints == nil && slices.Contains(taints, "os=windows:NoSchedule") {
			t.Errorf("%s: has the Windows taint it was not given", k.Name())
		}

		rss, err := k.Process().RSS()
		if err != nil {
			t.Error(err)
		}
		t.Logf("%s: RSS %d MiB", k.Name(), rss>>20)
		socks, err := k.Process().Sockets()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range proc.OffLoopback(socks) {
			t.Errorf("%s: socket off 127.0.0.1: %+v", k.Name(), s)
		}
		if !slices.ContainsFunc(socks, func(s proc.Socket) bool {
			return s.Listen && s.Local == netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(k.Port()))
		}) {
			t.Errorf("%s: not listening on 127.0.0.1:%d; its sockets: %+v", k.Name(), k.Port(), socks)
		}
		checkKubeletAPI(t, ctx, k, cp)
	}
	for _, p := range cp.Processes() {
		if rss, err := p.RSS(); err == nil {
			t.Logf("%s: RSS %d MiB with 2 nodes", p.Name, rss>>20)
		}
	}

	t.Run("close", func(t *testing.T) {
		k := kubelets[0]
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		// SIGTERM ends the program itself (it stops its fake runtime first).
		if exited, err := k.Process().Exited(); !exited || err != nil {
			t.Errorf("%s after Close: exited %t, %v; want a clean exit; its log %s ends:\n%s", k.Name(), exited, err, k.Process().Log, k.Process().Tail(5))
		}
	})

	// A token the cluster never issued fails at the first 401, with
	// CheckToken's reason when it is asked (the join timeout's error would
	// say "no client certificate" instead).
	for i, check := range []func(context.Context) error{
		nil,
		func(context.Context) error { return errors.New("no Secret kube-system/bootstrap-token-abcdef") },
	} {
		t.Run(fmt.Sprintf("wrong token/check %t", check != nil), func(t *testing.T) {
			name := fmt.Sprintf("demo-bad-%d", i)
			start := time.Now()
			k, err := hollow.StartKubelet(ctx, hollow.Config{
				Name:                name,
				BootstrapKubeconfig: bootstrap(name, "linux", "abcdef.0123456789abcdef"),
				Server:              cp.URL(),
				WorkDir:             t.TempDir(),
				JoinTimeout:         30 * time.Second,
				CheckToken:          check,
			})
			if err == nil {
				_ = k.Close()
				t.Fatal("a kubelet with a token the cluster does not have joined")
			}
			if !errors.Is(err, hollow.ErrTokenRejected) {
				t.Fatalf("err = %v, want ErrTokenRejected", err)
			}
			if check != nil && !strings.Contains(err.Error(), "no Secret kube-system/bootstrap-token-abcdef") {
				t.Errorf("err = %v, want CheckToken's reason in it", err)
			}
			t.Logf("rejected in %s: %v", time.Since(start).Round(100*time.Millisecond), err)
		})
	}

	// A token whose Secret the API server has not seen at the first 401
	// (its cache lags a fresh Secret): once CheckToken vouches for it, the
	// kubelet's retries join. Here the Secret is created at that moment.
	t.Run("token the API server learns late", func(t *testing.T) {
		const id, secret = "late00", "0123456789abcdef"
		checked := 0
		k, err := hollow.StartKubelet(ctx, hollow.Config{
			Name:                "demo-late-0",
			BootstrapKubeconfig: bootstrap("demo-late-0", "linux", id+"."+secret),
			Server:              cp.URL(),
			WorkDir:             t.TempDir(),
			JoinTimeout:         60 * time.Second,
			CheckToken: func(ctx context.Context) error {
				checked++
				code, body, err := cp.Do(ctx, http.MethodPost, "/api/v1/namespaces/kube-system/secrets", tokenSecret(id, secret))
				if err != nil || code != http.StatusCreated {
					return fmt.Errorf("create the token Secret: HTTP %d %s %v", code, body, err)
				}
				return nil
			},
		})
		if err != nil {
			t.Fatalf("a kubelet whose token became known after its first 401 did not join: %v", err)
		}
		_ = k.Close()
		if checked != 1 {
			t.Errorf("CheckToken was asked %d times, want once (at the first 401)", checked)
		}
	})
}

// tokenSecret is the bootstrap-token Secret `kubeadm token create` makes.
func tokenSecret(id, secret string) []byte {
	b, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
		"metadata": map[string]any{"name": "bootstrap-token-" + id, "namespace": "kube-system"},
		"stringData": map[string]string{
			"token-id": id, "token-secret": secret,
			"usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
			"auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
			"expiration":        time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// checkKubeletAPI checks that the kubelet API at k.URL() is HTTPS with
// k.ServingCertificate(), refuses an anonymous request, and serves the
// cluster admin (its client certificate, then the API server's
// SubjectAccessReview).
func checkKubeletAPI(t *testing.T, ctx context.Context, k *hollow.Kubelet, cp *controlplane.ControlPlane) {
	t.Helper()
	serving, err := k.ServingCertificate()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(serving)
	get := func(certs []tls.Certificate) (int, error) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12,
		}}}
		defer hc.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL()+"/pods", nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(nil); err != nil || code != http.StatusUnauthorized {
		t.Errorf("%s: anonymous GET %s/pods: HTTP %d, %v; want 401", k.Name(), k.URL(), code, err)
	}
	admin, err := adminCertificate(cp.AdminKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get([]tls.Certificate{admin}); err != nil || code != http.StatusOK {
		t.Errorf("%s: GET %s/pods as the cluster admin: HTTP %d, %v; want 200", k.Name(), k.URL(), code, err)
	}
}

// adminCertificate is the client certificate and key of a kubeconfig's first user.
func adminCertificate(kubeconfig []byte) (tls.Certificate, error) {
	var kc struct {
		Users []struct {
			User struct {
				Cert []byte `json:"client-certificate-data"`
				Key  []byte `json:"client-key-data"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(kubeconfig, &kc); err != nil || len(kc.Users) == 0 {
		return tls.Certificate{}, fmt.Errorf("the admin kubeconfig has no user (%v)", err)
	}
	return tls.X509KeyPair(kc.Users[0].User.Cert, kc.Users[0].User.Key)
}

// TestStartKubeletErrors checks the refusals that need no cluster.
func TestStartKubeletErrors(t *testing.T) {
	bins := cptest.Bins(t, hollow.Binary)
	for _, c := range []struct {
		name string
		cfg  hollow.Config
	}{
		{"windows os label", hollow.Config{Labels: map[string]string{"kubernetes.io/os": "windows"}}},
		{"bad taint", hollow.Config{Taints: []string{"os=windows"}}},
	} {
		c.cfg.Name, c.cfg.WorkDir, c.cfg.BinDir, c.cfg.BootstrapKubeconfig = "n", t.TempDir(), bins, []byte("x")
		if _, err := hollow.StartKubelet(context.Background(), c.cfg); err == nil {
			t.Errorf("%s: StartKubelet succeeded", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}
