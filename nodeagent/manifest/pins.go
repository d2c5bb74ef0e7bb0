package manifest

// pins are the SHA-256 digests of the built-in artifacts, by URL, each taken
// from a source that publishes it rather than from the download's origin.
//
// Source of every pin below: kubernetes-sigs/kubespray,
// roles/kubespray_defaults/vars/main/checksums.yml at commit
// 46dbdd3994b32640bcd806b0097f50e8fdf1d514 (2026-08-21), whose keys
// kubelet_checksums, kubeadm_checksums, kubectl_checksums,
// containerd_archive_checksums, runc_checksums, cni_binary_checksums and
// crictl_checksums record the publishers' digests for the same URLs
// (roles/kubespray_defaults/defaults/main/download.yml: *_download_url).
//
// Not pinned, for want of a published digest reachable here: the Windows
// binaries of Kubernetes 1.36.3 (dl.k8s.io publishes a .sha256 beside each
// file; the CHANGELOG's SHA-512 covers only the node tarball), containerd,
// CNI plugins and crictl for Windows, and the Tigera operator manifest.
// Those keep their SHA256URL, read at download time; the README's status
// table says so.
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
}
