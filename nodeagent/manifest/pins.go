package manifest

// pins are the SHA-256 digests of the built-in artifacts, by URL, each taken
// from a source that publishes it rather than from the download's origin.
//
// Source of the Linux pins below: kubernetes-sigs/kubespray,
// roles/kubespray_defaults/vars/main/checksums.yml at commit
// 46dbdd3994b32640bcd806b0097f50e8fdf1d514 (2026-08-21), whose keys
// kubelet_checksums, kubeadm_checksums, kubectl_checksums,
// containerd_archive_checksums, runc_checksums, cni_binary_checksums and
// crictl_checksums record the publishers' digests for the same URLs
// (roles/kubespray_defaults/defaults/main/download.yml: *_download_url).
//
// Not pinned, for want of a digest published by a source other than the
// download's origin and reachable here; each keeps its publisher's checksum
// file (SHA256URL), read at download time:
//   - kube-log-runner.exe of Kubernetes 1.36.3: RKE2 pins kubelet.exe,
//     kube-proxy.exe and kubectl.exe only (below), and the CHANGELOG's SHA-512
//     covers the node tarball, whose CHANGELOG-1.36.md readable here stops at
//     v1.36.0 (pinning that would move the default to 1.36.0; not done);
//   - containerd 2.2.0, CNI plugins 1.7.1 and crictl 1.34.0 for Windows:
//     kubespray's checksums.yml lists Linux assets only, and RKE2's
//     Dockerfile.windows pins other versions (containerd 2.3.x, CNI plugins
//     1.9.1, crictl 1.36.0);
//   - the flannel CNI plugin's archive (RKE2 pins flannel-amd64.exe, another
//     asset; flannel-io/cni-plugin publishes .sha256 files only);
//   - the Tigera operator manifest (Calico is refused at plan time for it).
//
// The README's status table lists the same.
var pins = map[string]string{
	// Kubernetes 1.36.3, dl.k8s.io/release/v1.36.3/bin/linux/<arch>/<name>.
	"https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet": "46707a53209f826ad0f0d62371ac69cd00e78fd9a8176cf5f6f87f18f7f8b718",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/arm64/kubelet": "57205a5daf5883873d87b4914e1e00bdd7707acd075714788cfb0fc1f60bc414",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm": "bba1733c701bf70ec74ba1cc3fd5745404c1134a8a4b0a5f8560cc9832023421",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/arm64/kubeadm": "276cfbdc43b10fef663288cc1ed76abf77b1b7f700e9f1c053cb5dc3115484de",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubectl": "ebbd080e7c2e275093b55915722043257eb24004363e20acb3c4d71919f88336",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/arm64/kubectl": "3d86f24401c41ae5a46ac50eef8865fe891d3647d324a0836f6c63757a126e62",
	// containerd 2.2.0.
	"https://github.com/containerd/containerd/releases/download/v2.2.0/containerd-2.2.0-linux-amd64.tar.gz": "b9626a94ab93b00bcbcbf13d98deef972c6fb064690e57940632df54ad39ee71",
	"https://github.com/containerd/containerd/releases/download/v2.2.0/containerd-2.2.0-linux-arm64.tar.gz": "8805c2123d3b7c7ee2030e9f8fc07a1167d8a3f871d6a7d7ec5d1deb0b51a4a7",
	// runc 1.3.0.
	"https://github.com/opencontainers/runc/releases/download/v1.3.0/runc.amd64": "028986516ab5646370edce981df2d8e8a8d12188deaf837142a02097000ae2f2",
	"https://github.com/opencontainers/runc/releases/download/v1.3.0/runc.arm64": "85c5e4e4f72e442c8c17bac07527cd4f961ee48e4f2b71797f7533c94f4a52b9",
	// CNI plugins 1.7.1.
	"https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz": "1a28a0506bfe5bcdc981caf1a49eeab7e72da8321f1119b7be85f22621013098",
	"https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-arm64-v1.7.1.tgz": "119fcb508d1ac2149e49a550752f9cd64d023a1d70e189b59c476e4d2bf7c497",
	// crictl 1.34.0.
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz": "a8ff2a3edb37a98daf3aba7c3b284fe0aa5bff24166d896ab9ef64c8913c9f51",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-arm64.tar.gz": "c31d252e203df5f4cf37f314bd3092eb79087e791631c1e607087c74b6d0423f",
	// Kubernetes 1.36.3 for Windows: rancher/rke2 Dockerfile.windows at commit
	// efedb3c1dc7b42004988c035a803987ac96d9e17 ("Update to v1.36.3-rke2r1"),
	// KUBELET_SHA256, KUBE_PROXY_SHA256 and KUBECTL_SHA256 for v1.36.3, checked
	// with sha256sum -c after the download from dl.k8s.io (its Linux kubectl
	// digest there equals kubespray's above).
	"https://dl.k8s.io/release/v1.36.3/bin/windows/amd64/kubelet.exe":    "683843a94c9ddd43023c6a06b630cf637f19f9838684a5526b811df5cdbd4c1a",
	"https://dl.k8s.io/release/v1.36.3/bin/windows/amd64/kube-proxy.exe": "19b002c905a26259331d2a82e8022797ddfa7aab8eec015614d07a5e9c418969",
	"https://dl.k8s.io/release/v1.36.3/bin/windows/amd64/kubectl.exe":    "ba76657b79d0ebcc3c029c171fc83c96351ba5ce0e71d185f1e5b8b873360a5f",
	// flanneld.exe 0.28.9, which flannel-io/flannel publishes without a
	// checksum file: the SHA-256 rancher/rke2 Dockerfile.windows (commit
	// 6ce1a80, FLANNEL_VERSION="v0.28.9") checks with sha256sum -c.
	"https://github.com/flannel-io/flannel/releases/download/v0.28.9/flanneld.exe": "7d43b3de5635891e68b36458d912a94c2eb94e15d878d486f539309db5845861",
}
