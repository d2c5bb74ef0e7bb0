//go:build tools

package k8s

// The main packages this module builds (hack/k8s-bins.sh). The blank imports
// keep their dependencies in go.mod and go.sum; the tools tag keeps them out
// of every ordinary build.
import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubemark"
)
