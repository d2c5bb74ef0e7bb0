package hollow

import (
	"os"
	"path/filepath"
	"testing"
)

// TestJoinedNeedsTheKubeconfig: the kubelet stores its certificate before
// it writes kubelet.conf, and the join is over only once both are there.
func TestJoinedNeedsTheKubeconfig(t *testing.T) {
	dir := t.TempDir()
	k := &Kubelet{certDir: filepath.Join(dir, certDirName), kubeconfig: filepath.Join(dir, kubeconfigFile)}
	if err := os.MkdirAll(k.certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(k.certDir, clientCertFile)
	write := func(file, data string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name string
		do   func()
		want bool
	}{
		{"nothing yet", func() {}, false},
		{"the certificate only", func() { write(cert, "pem") }, false},
		{"kubelet.conf begun", func() { write(k.kubeconfig, "apiVersion: v1\nclusters:\n") }, false},
		{"kubelet.conf written", func() {
			write(k.kubeconfig, "apiVersion: v1\nusers:\n- name: default-auth\n  user:\n    client-certificate: "+cert+"\n    client-key: "+cert+"\n")
		}, true},
	} {
		step.do()
		if got := k.joined(); got != step.want {
			t.Errorf("%s: joined() = %t, want %t", step.name, got, step.want)
		}
	}
}
