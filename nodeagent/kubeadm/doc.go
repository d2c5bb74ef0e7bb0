// Package kubeadm renders the configuration files the node agent hands to
// kubeadm, the kubelet and kube-proxy, from the agent's contract.Config.
//
//   - InitConfig: the first control-plane node (contract.RoleInit). Four YAML
//     documents: InitConfiguration and ClusterConfiguration
//     (kubeadm.k8s.io/v1beta4), KubeletConfiguration
//     (kubelet.config.k8s.io/v1beta1) and KubeProxyConfiguration
//     (kubeproxy.config.k8s.io/v1alpha1). kubeadm init uploads the last two
//     into the kubelet-config and kube-proxy ConfigMaps, so they are the
//     cluster-wide settings of every Linux kubelet and of the Linux kube-proxy
//     DaemonSet. Run it as `kubeadm init --config FILE --upload-certs` when
//     more control-plane nodes will join: Init.CertificateKey then encrypts the
//     uploaded certificates. The cluster CA is not part of the file: write
//     Init.CACertPEM and Init.CAKeyPEM to /etc/kubernetes/pki/ca.crt and ca.key
//     first, and kubeadm uses them instead of creating a CA.
//   - JoinConfig: Linux workers and further control-plane nodes. One
//     JoinConfiguration document. kubeadm join reads nothing else from its
//     --config file (it ignores other kinds with a warning); a joining kubelet
//     takes its configuration from the kubelet-config ConfigMap, and per-node
//     settings go in nodeRegistration (name, taints, node-ip, node-labels).
//   - WindowsKubeletConfig, WindowsKubeProxyConfig, BootstrapKubeconfig:
//     Windows nodes, which join without kubeadm: the kubelet runs as a
//     Windows service with --config, --bootstrap-kubeconfig,
//     --kubeconfig, --cert-dir, --hostname-override, --node-ip and
//     --node-labels (NodeLabels), and kube-proxy runs with --config.
//
// Windows paths these files refer to (the agent writes the files there):
// WindowsCAFile (Join.CACertPEM) and WindowsKubeletKubeconfig (written by the
// kubelet after its TLS bootstrap; kube-proxy reuses it, which needs the
// system:node-proxier ClusterRole bound to the group system:nodes).
//
// Secrets: InitConfig and JoinConfig contain the bootstrap token and the
// certificate key, BootstrapKubeconfig the bootstrap token. Callers write
// them owner-only (0600, or an ACL for SYSTEM and Administrators on Windows),
// remove them when kubeadm is done, and never log them. Errors from this
// package never contain secret values.
//
// Output is deterministic: the same Config gives the same bytes.
//
// It is public, not under nodeagent/internal, only because the lab (test/lab)
// and cluster/provision import it, which Go's internal rule would forbid.
package kubeadm
