package hollow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
	"github.com/mixedk8s/mixedk8s/test/lab/hollow"
)

// TestRestartWithAnotherVersion joins a node with the previous minor's
// kubelet, removes its bootstrap token, and restarts it with the current
// release's kubelet, as an upgrade of the kubelet package does: the Node
// reports the new kubeletVersion, with the same client certificate, no new
// CertificateSigningRequest, and its labels and taints.
func TestRestartWithAnotherVersion(t *testing.T) {
	prev, from := cptest.ReleaseBins(t, cptest.PrevModule, hollow.Binary)
	next, to := cptest.ReleaseBins(t, cptest.Module, hollow.Binary)
	cptest.Bins(t, controlplane.Binaries...)
	cl := cptest.Sandbox(t)
	cp := cptest.Start(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const name = "demo-linux-0"
	boot, err := kubeadm.BootstrapKubeconfig(cl.JoinConfig(name, "linux", cptest.Token))
	if err != nil {
		t.Fatal(err)
	}
	k, err := hollow.StartKubelet(ctx, hollow.Config{
		Name: name, BootstrapKubeconfig: boot, Server: cp.URL(), WorkDir: t.TempDir(), BinDir: prev,
		Labels: map[string]string{"mixedk8s.io/pool": "linux"}, Taints: []string{"dedicated=upgrade:NoSchedule"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	if got := waitKubeletVersion(t, ctx, cp, name, from); got != from {
		t.Fatalf("a kubelet from %s reports kubeletVersion %q, want %s", prev, got, from)
	}
	before, err := k.ClientCertificate()
	if err != nil {
		t.Fatal(err)
	}
	csrs := countCSRs(t, ctx, cp)
	// A restart that tried a TLS bootstrap would now be refused.
	id, _, _ := strings.Cut(cptest.Token, ".")
	if code, body, err := cp.Do(ctx, http.MethodDelete, "/api/v1/namespaces/kube-system/secrets/bootstrap-token-"+id, nil); err != nil || code != http.StatusOK {
		t.Fatalf("delete the bootstrap token: HTTP %d %v: %s", code, err, body)
	}

	n, err := k.Restart(ctx, hollow.RestartConfig{BinDir: next, Version: to})
	if err != nil {
		t.Fatalf("restart %s with %s: %v", name, next, err)
	}
	t.Cleanup(func() { _ = n.Close() })
	if exited, _ := k.Process().Exited(); !exited {
		t.Errorf("the old kubelet process %d still runs", k.Process().Pid())
	}
	if k.BinDir() != prev || n.BinDir() != next || n.Name() != name || n.Port() != k.Port() {
		t.Errorf("after the restart: BinDir %s (old %s), name %s, port %d (old %d); want %s, %s, %s, %d", n.BinDir(), k.BinDir(), n.Name(), n.Port(), k.Port(), next, prev, name, k.Port())
	}
	body := getNode(t, ctx, cp, name)
	var nd node
	if err := json.Unmarshal(body, &nd); err != nil {
		t.Fatal(err)
	}
	if got := kubeletVersionOf(t, body); got != to {
		t.Errorf("kubeletVersion %q after the restart, want %s", got, to)
	}
	after, err := n.ClientCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if after.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Errorf("the client certificate changed in the restart (serial %s, was %s): the kubelet bootstrapped again", after.SerialNumber, before.SerialNumber)
	}
	if got := countCSRs(t, ctx, cp); got != csrs {
		t.Errorf("%d CertificateSigningRequests after the restart, %d before: the kubelet bootstrapped again", got, csrs)
	}
	if nd.Metadata.Labels["mixedk8s.io/pool"] != "linux" {
		t.Errorf("labels after the restart: %v", nd.Metadata.Labels)
	}
	var taints []string
	for _, tn := range nd.Spec.Taints {
		taints = append(taints, fmt.Sprintf("%s=%s:%s", tn.Key, tn.Value, tn.Effect))
	}
	if !slices.Contains(taints, "dedicated=upgrade:NoSchedule") {
		t.Errorf("taints after the restart: %v", taints)
	}
	if _, err := n.Restart(ctx, hollow.RestartConfig{BinDir: next}); err == nil || !strings.Contains(err.Error(), "Version") {
		t.Errorf("restart without a version: %v, want an error naming Version", err)
	}
}

// waitKubeletVersion waits for the Node to report kubeletVersion want and
// returns the last one it reported.
func waitKubeletVersion(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, name, want string) string {
	t.Helper()
	var got string
	for ctx.Err() == nil {
		if code, body, err := cp.Do(ctx, http.MethodGet, "/api/v1/nodes/"+name, nil); err == nil && code == http.StatusOK {
			if got = kubeletVersionOf(t, body); got == want {
				return got
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return got
}

func getNode(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, name string) []byte {
	t.Helper()
	code, body, err := cp.Do(ctx, http.MethodGet, "/api/v1/nodes/"+name, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET Node %s: HTTP %d %v: %s", name, code, err, body)
	}
	return body
}

func kubeletVersionOf(t *testing.T, nodeJSON []byte) string {
	t.Helper()
	var n struct {
		Status struct {
			NodeInfo struct {
				KubeletVersion string `json:"kubeletVersion"`
			} `json:"nodeInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(nodeJSON, &n); err != nil {
		t.Fatal(err)
	}
	return n.Status.NodeInfo.KubeletVersion
}

func countCSRs(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane) int {
	t.Helper()
	code, body, err := cp.Do(ctx, http.MethodGet, "/apis/certificates.k8s.io/v1/certificatesigningrequests", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("list CertificateSigningRequests: HTTP %d %v: %s", code, err, body)
	}
	var list struct {
		Items []any `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}
