package kubeadm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// kubeadmBinary finds the kubeadm the validation tests run: $MIXEDK8S_KUBEADM,
// else <repo>/bin/kubeadm (built by `make k8s-bins`). Without one the tests
// skip, unless MIXEDK8S_REQUIRE_KUBEADM=1 (CI), where they fail.
func kubeadmBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("MIXEDK8S_KUBEADM")
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("find the repository root: %v", err)
		}
		path = filepath.Join(root, "bin", "kubeadm")
	}
	if _, err := os.Stat(path); err != nil {
		msg := "kubeadm not built: run `make k8s-bins` (or set MIXEDK8S_KUBEADM): " + err.Error()
		if os.Getenv("MIXEDK8S_REQUIRE_KUBEADM") == "1" {
			t.Fatal(msg + " (MIXEDK8S_REQUIRE_KUBEADM=1)")
		}
		t.Skip(msg)
	}
	return path
}

// repoRoot walks up from the package directory to the root module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			line, _ := bufio.NewReader(f).ReadString('\n')
			f.Close()
			if strings.TrimSpace(line) == "module github.com/mixedk8s/mixedk8s" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module github.com/mixedk8s/mixedk8s above the working directory")
		}
		dir = parent
	}
}

// kubeadmValidate runs `kubeadm config validate --config FILE` on config and
// returns its combined output and error.
func kubeadmValidate(t *testing.T, kubeadm string, config []byte) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "kubeadm.yaml")
	// The file holds a bootstrap token: owner-only, as on a node.
	if err := os.WriteFile(file, config, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kubeadm, "config", "validate", "--config", file).CombinedOutput()
	return string(out), err
}

// initHead is the InitConfiguration and ClusterConfiguration of the init
// fixture: kubeadm validates component configs (strict decoding against
// the kubelet's and kube-proxy's own schemes) only next to them.
func initHead(t *testing.T) []byte {
	t.Helper()
	b, err := InitConfig(fixture(contract.RoleInit, "linux"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(b), "\n---\n")
	return []byte(parts[0] + "\n---\n" + parts[1] + "\n")
}

func concatDocs(docs ...[]byte) []byte { return bytes.Join(docs, []byte("---\n")) }

func must(t *testing.T) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestKubeadmValidate feeds every rendered configuration to a real kubeadm.
// The kubeadm configs are validated as they are; the Windows kubelet and
// kube-proxy configs, which kubeadm never reads on its own, are validated as
// component configs of an init configuration, where kubeadm decodes them
// strictly (unknown or mistyped fields fail) but checks no values: a Linux
// kubeadm would not judge Windows settings anyway.
func TestKubeadmValidate(t *testing.T) {
	kubeadm := kubeadmBinary(t)
	m := must(t)
	win := fixture(contract.RoleWorker, "windows")
	// Behind a cloud's API load balancer the endpoint is its DNS name (an AWS NLB's here).
	const lb = "demo-api-4a5b48c414a00a7b.elb.eu-west-1.amazonaws.com:6443"
	behindLB := func(role contract.Role) contract.Config {
		c := fixture(role, "linux")
		c.Cluster.APIEndpoint = lb
		if c.Init != nil {
			c.Init.APIServerSANs = append(c.Init.APIServerSANs, strings.TrimSuffix(lb, ":6443"))
		}
		return c
	}
	cases := []struct {
		name   string
		config []byte
	}{
		{"init", m(InitConfig(fixture(contract.RoleInit, "linux")))},
		{"join worker", m(JoinConfig(fixture(contract.RoleWorker, "linux")))},
		{"join control plane", m(JoinConfig(fixture(contract.RoleControlPlane, "linux")))},
		{"windows kubelet and overlay kube-proxy", concatDocs(initHead(t),
			m(WindowsKubeletConfig(win)), m(WindowsKubeProxyConfig(win, "flannel.4096", "10.244.3.2")))},
		{"windows l2bridge kube-proxy", concatDocs(initHead(t), m(WindowsKubeProxyConfig(win, "Calico", "")))},
		{"init behind a load balancer", m(InitConfig(behindLB(contract.RoleInit)))},
		{"join control plane through a load balancer", m(JoinConfig(behindLB(contract.RoleControlPlane)))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := kubeadmValidate(t, kubeadm, c.config)
			if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "ok") {
				t.Fatalf("kubeadm config validate: %v\n%s\nconfig:\n%s", err, out, c.config)
			}
		})
	}

	// Controls: kubeadm must reject the same files with one field misspelt or
	// one value broken, or the cases above would prove nothing.
	for _, c := range []struct {
		name, from, to, want string
		config               []byte
	}{
		{"misspelt join discovery field", "caCertHashes", "caCertHash", `unknown field "discovery.bootstrapToken.caCertHash"`, cases[1].config},
		{"misspelt Windows kubelet field", "enforceNodeAllocatable", "enforceNodeAllocatables", `unknown field "enforceNodeAllocatables"`, cases[3].config},
		{"misspelt Windows kube-proxy field", "sourceVip", "sourceVIP", `unknown field "winkernel.sourceVIP"`, cases[3].config},
		{"malformed init bootstrap token", "q8x2lk.", "Q8X2LK.", "was not of the form", cases[0].config},
		{"misspelt control-plane join field", "localAPIEndpoint", "localAPIEndpoints", `unknown field "controlPlane.localAPIEndpoints"`, cases[6].config},
		{"load balancer endpoint without a port number", ":6443", ":port", "port port must be a valid number", cases[5].config},
	} {
		t.Run("rejects "+c.name, func(t *testing.T) {
			bad := bytes.Replace(c.config, []byte(c.from), []byte(c.to), 1)
			if bytes.Equal(bad, c.config) {
				t.Fatalf("%q not found in the config", c.from)
			}
			out, err := kubeadmValidate(t, kubeadm, bad)
			if err == nil || !strings.Contains(out, c.want) {
				t.Fatalf("kubeadm config validate = %v, want an error containing %q; output:\n%s", err, c.want, out)
			}
		})
	}
}
