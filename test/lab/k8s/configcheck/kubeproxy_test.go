package configcheck

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	"k8s.io/kubernetes/pkg/proxy/apis/config/validation"
)

// loadKubeProxyConfig decodes as `kube-proxy --config` does
// (k8s.io/kubernetes cmd/kube-proxy/app/options.go loadConfig:
// the strict UniversalDecoder of pkg/proxy/apis/config/scheme, with
// v1alpha1's defaults). kube-proxy falls back to a lenient decoder with a
// warning; the agent's configs must not need it, so a strict error fails.
func loadKubeProxyConfig(t *testing.T, data []byte) *kubeproxyconfig.KubeProxyConfiguration {
	t.Helper()
	obj, gvk, err := proxyconfigscheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("kube-proxy does not read the config the agent writes (strictly): %v", err)
	}
	kc, ok := obj.(*kubeproxyconfig.KubeProxyConfiguration)
	if !ok {
		t.Fatalf("kube-proxy decoded %v, not a KubeProxyConfiguration", gvk)
	}
	return kc
}

// validateKubeProxyConfig runs kube-proxy's own validation
// (pkg/proxy/apis/config/validation Validate, as Options.Validate does).
// validateProxyMode picks its rule by runtime.GOOS: `kernelspace` is the
// only mode a Windows build accepts and one a Linux build refuses. Built for
// GOOS=windows (make configcheck compiles this test so) the whole validation
// runs unchanged; run here, on Linux, the mode is checked against the
// Windows rule's set by name and every other rule runs as is.
func validateKubeProxyConfig(t *testing.T, kc *kubeproxyconfig.KubeProxyConfiguration, windows bool) {
	t.Helper()
	if windows && runtime.GOOS != "windows" {
		if kc.Mode != kubeproxyconfig.ProxyModeKernelspace && kc.Mode != "" {
			t.Fatalf("mode %q: a Windows kube-proxy accepts only %q or blank (validation.go validateProxyModeWindows)", kc.Mode, kubeproxyconfig.ProxyModeKernelspace)
		}
		c := kc.DeepCopy()
		c.Mode = "" // blank passes both rules; the Windows one was applied above
		kc = c
	}
	if errs := validation.Validate(kc); len(errs) != 0 {
		t.Fatalf("kube-proxy refuses the config the agent writes: %v", errs.ToAggregate())
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "nodeagent", "kubeadm", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The Windows kube-proxy configs (nodeagent/kubeadm WindowsKubeProxyConfig):
// decoded strictly, validated, and the winkernel fields kube-proxy reads
// (cmd/kube-proxy/app/server_windows.go, pkg/proxy/winkernel) arrive as
// written. What validation does not check, and nothing here can: that the
// HNS network networkName exists and that sourceVip is an endpoint in its
// subnet (kube-proxy asks HNS at start); the sandbox models those rules.
func TestWindowsKubeProxyConfigPassesKubeProxysValidation(t *testing.T) {
	for _, c := range []struct{ file, network, sourceVip string }{
		{"windows-kube-proxy-overlay.yaml", "flannel.4096", "10.244.3.2"},
		{"windows-kube-proxy-l2bridge.yaml", "Calico", ""},
	} {
		t.Run(c.file, func(t *testing.T) {
			kc := loadKubeProxyConfig(t, readGolden(t, c.file))
			validateKubeProxyConfig(t, kc, true)
			if kc.Mode != kubeproxyconfig.ProxyModeKernelspace {
				t.Errorf("mode = %q, want kernelspace", kc.Mode)
			}
			if kc.Winkernel.NetworkName != c.network || kc.Winkernel.SourceVip != c.sourceVip {
				t.Errorf("winkernel networkName/sourceVip = %q/%q, want %q/%q", kc.Winkernel.NetworkName, kc.Winkernel.SourceVip, c.network, c.sourceVip)
			}
			if !kc.Winkernel.EnableDSR || !kc.Windows.RunAsService {
				t.Errorf("enableDSR/windowsRunAsService = %v/%v, want true/true", kc.Winkernel.EnableDSR, kc.Windows.RunAsService)
			}
		})
	}
}

// The Linux control plane's KubeProxyConfiguration, the last document of the
// kubeadm init config, runs through the same decoder and validation.
func TestLinuxKubeProxyConfigPassesKubeProxysValidation(t *testing.T) {
	docs := bytes.Split(readGolden(t, "init.yaml"), []byte("\n---\n"))
	var found bool
	for _, d := range docs {
		if !bytes.Contains(d, []byte("\nkind: KubeProxyConfiguration\n")) {
			continue
		}
		found = true
		if runtime.GOOS == "windows" {
			t.Skip("the Linux config's mode is judged by the Linux build's rule; this run is the Windows build")
		}
		validateKubeProxyConfig(t, loadKubeProxyConfig(t, d), false)
	}
	if !found {
		t.Fatal("init.yaml has no KubeProxyConfiguration document")
	}
}
