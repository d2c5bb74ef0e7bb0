//go:build tools

package k8s

// The upstream main packages this module builds (hack/k8s-bins.sh); the
// lab's own, hollow-kubelet, is in cmd/. The blank imports keep their
// dependencies in go.mod and go.sum; the tools tag keeps them out of every
// ordinary build. kubemark is not used by the lab (hollow-kubelet replaced
// it) and stays buildable to compare against.
import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubemark"
)
