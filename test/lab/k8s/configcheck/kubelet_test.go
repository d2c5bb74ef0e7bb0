// Package configcheck runs the configs the node agent renders through the
// Kubernetes code that reads them: the kubelet's own decoder (with its
// defaults) and ValidateKubeletConfiguration, as `kubelet --config` does
// (k8s.io/kubernetes cmd/kubelet/app/server.go). The renderers' golden files
// in nodeagent/kubeadm/testdata are byte-for-byte what the agent writes
// (nodeagent/kubeadm TestGolden keeps them so).
package configcheck

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kubernetes/pkg/kubelet/apis/config/scheme"
	"k8s.io/kubernetes/pkg/kubelet/apis/config/validation"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/util/codec"
)

// The Windows-only rules (validation_windows.go: cgroupsPerQOS,
// enforceNodeAllocatable, ...) build only for GOOS=windows; this run
// checks the decoding and every OS-independent rule.
func TestWindowsKubeletConfigPassesTheKubeletsValidation(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "nodeagent", "kubeadm", "testdata", "windows-kubelet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, codecs, err := scheme.NewSchemeAndCodecs()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := codec.DecodeKubeletConfiguration(context.Background(), codecs, data)
	if err != nil {
		t.Fatalf("the kubelet does not read the config the agent writes: %v", err)
	}
	// validation_linux.go checks failCgroupV1 against the cgroups of the
	// machine running the check; a Windows node has no cgroups.
	kc.FailCgroupV1 = false
	if err := validation.ValidateKubeletConfiguration(kc, utilfeature.DefaultFeatureGate); err != nil {
		t.Fatalf("the kubelet refuses the config the agent writes: %v", err)
	}
}
