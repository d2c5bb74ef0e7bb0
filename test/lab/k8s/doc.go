// Package k8s pins the Kubernetes and etcd sources the lab and the tests build
// binaries from: kubeadm (config validation), and etcd, kube-apiserver,
// kube-controller-manager and kubemark (the lab's control plane and hollow
// nodes). It is a module of its own so that the root module never depends on
// k8s.io/kubernetes. hack/k8s-bins.sh builds the binaries; see tools.go.
package k8s
