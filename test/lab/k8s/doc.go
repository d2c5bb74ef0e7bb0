// Package k8s pins the Kubernetes and etcd sources the lab and the tests build
// binaries from: kubeadm, etcd, kube-apiserver, kube-controller-manager and
// kubectl (tools.go), and the lab's own hollow-kubelet (cmd/hollow-kubelet),
// the kubelet on a fake runtime bound to 127.0.0.1. It is a module of its own
// so that the root module never depends on k8s.io/kubernetes.
// hack/k8s-bins.sh (make lab-bins) builds the binaries.
package k8s
