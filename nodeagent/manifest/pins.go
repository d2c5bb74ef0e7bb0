package manifest

// pins are the SHA-256 digests of the built-in artifacts, by URL, each taken
// from a source that publishes it rather than from the download's origin.
//
// Linux: kubernetes-sigs/kubespray,
// roles/kubespray_defaults/vars/main/checksums.yml at commit
// 46dbdd3994b32640bcd806b0097f50e8fdf1d514 (2026-08-21), whose keys
// kubelet_checksums, kubeadm_checksums, kubectl_checksums,
// containerd_archive_checksums, runc_checksums, cni_binary_checksums and
// crictl_checksums record the publishers' digests for the same URLs
// (roles/kubespray_defaults/defaults/main/download.yml: *_download_url).
//
// Windows: rancher/rke2, Dockerfile.windows, which checks each download with
// sha256sum -c before it builds its Windows runtime image: per Kubernetes
// release, KUBELET_SHA256, KUBE_PROXY_SHA256 and KUBECTL_SHA256 at the commit
// named beside it (the first that carries the release; the digests are the
// same at every later commit); the others at the heads of its release
// branches (release-1.34 at 36851250d7, release-1.35 at 624a919070, master at
// 6ce1a8019e, all 2026-08-21). Where RKE2's Linux kubectl digest for a
// release is given, it equals kubespray's.
//
// Not pinned, for want of a digest published by a source other than the
// download's origin and reachable here; each keeps its publisher's checksum
// file (SHA256URL), read at download time:
//   - kube-log-runner.exe: RKE2 does not ship it, and the Kubernetes
//     CHANGELOG's SHA-512 covers the node tarball only, whose
//     CHANGELOG-1.36.md readable here stops at v1.36.0 (RKE2 has no 1.36.0
//     pins to pair it with either).
//
// Calico's manifests are not downloaded: the agent carries them, pinned in
// calico.go.
//
// The README's status table lists the same.
var pins = map[string]string{
	// Kubernetes, dl.k8s.io/release/v<version>/bin/linux/<arch>/<name>: kubespray.
	"https://dl.k8s.io/release/v1.34.6/bin/linux/amd64/kubelet":  "603e15187e0a909a2f104b17b3ea1d927514eae9fe1e96cd8a05b015cf1ee82c",
	"https://dl.k8s.io/release/v1.34.6/bin/linux/arm64/kubelet":  "6b30975e2a582367b5048ffdf9ae26e05442cc18faaf29b5dbd9c6a6b556fa26",
	"https://dl.k8s.io/release/v1.34.6/bin/linux/amd64/kubeadm":  "75a48673b8b9149c1555e0de3a2ce603468037d5396d746a75158828c9b56d7c",
	"https://dl.k8s.io/release/v1.34.6/bin/linux/arm64/kubeadm":  "7878391ea18b276ad69c570dcdaa46f74449a978f8e222f92d99855332a01f62",
	"https://dl.k8s.io/release/v1.34.6/bin/linux/amd64/kubectl":  "3166155b17198c0af34ff5a360bd4d9d58db98bafadc6f3c2a57ae560563cd6b",
	"https://dl.k8s.io/release/v1.34.6/bin/linux/arm64/kubectl":  "a49a439f83f504e6bc051f516a8baf8d2220d74110f7f9bcaf25feac69e368d1",
	"https://dl.k8s.io/release/v1.34.7/bin/linux/amd64/kubelet":  "1bc50f574e2f365513c07055e007d284d5e93322282ed288d27e81c2b4356d8c",
	"https://dl.k8s.io/release/v1.34.7/bin/linux/arm64/kubelet":  "07658e949e5a089faf36da7ae4e7242a4d2a97fa8eaace0980fd9705d23143a8",
	"https://dl.k8s.io/release/v1.34.7/bin/linux/amd64/kubeadm":  "679f304e592c6f8e20bf24c424a2c5f35d8d181d171e15774cecd0cb1dffb7ba",
	"https://dl.k8s.io/release/v1.34.7/bin/linux/arm64/kubeadm":  "f0ca19db42757a3612e2a20268209a3843b6eb8c1284f11c5fa7c31d40ed8c8f",
	"https://dl.k8s.io/release/v1.34.7/bin/linux/amd64/kubectl":  "b46ecf2b80f76d5a7d58c296c2e11e42c85eaa1eb866ddbc1e91625f71c21000",
	"https://dl.k8s.io/release/v1.34.7/bin/linux/arm64/kubectl":  "93d2113f1f38b5709f2955b7981fcd37d675c9aafda81702c202a63361b6093b",
	"https://dl.k8s.io/release/v1.34.8/bin/linux/amd64/kubelet":  "117ff5f6923c9ab4af7fa4e995a2bdc48b4b0f84d00017b4d7368e1e861e84f2",
	"https://dl.k8s.io/release/v1.34.8/bin/linux/arm64/kubelet":  "5d8d62d15f18c18998af09fcab83420b9cbccc2be7fede2a0b26f4a3f523c6b5",
	"https://dl.k8s.io/release/v1.34.8/bin/linux/amd64/kubeadm":  "27ec4962fc855f4e7fdc3875aa275168a66e721c27533c4953294968da96e7e5",
	"https://dl.k8s.io/release/v1.34.8/bin/linux/arm64/kubeadm":  "7b06f4442a7a819fcb4e0697721a2e4a8acda068d66ecfb4e781f213ee804884",
	"https://dl.k8s.io/release/v1.34.8/bin/linux/amd64/kubectl":  "f6249132865c13abe3c9dd5038f5da65849cb86eee1608c001831504e481aa8c",
	"https://dl.k8s.io/release/v1.34.8/bin/linux/arm64/kubectl":  "4c9fe1f717738950c638c38056130a8db5075e6413ae36d8687221a240cdf88b",
	"https://dl.k8s.io/release/v1.34.9/bin/linux/amd64/kubelet":  "d4ce6d8d7e2d762894b13bbed90dbb56fbe8fa01414a68cc2988e070d8676b94",
	"https://dl.k8s.io/release/v1.34.9/bin/linux/arm64/kubelet":  "fd348a9bf8b796b6672fd864606af38e68e788dd62976a3a6b4d95333e406424",
	"https://dl.k8s.io/release/v1.34.9/bin/linux/amd64/kubeadm":  "76802c717a6917c35124675c639e283854506fec8700e6a63c81069918845127",
	"https://dl.k8s.io/release/v1.34.9/bin/linux/arm64/kubeadm":  "892789444a830b16eb1c8d3e09a878a9ced6ac18c5765e5bb9d41123a41ce3ee",
	"https://dl.k8s.io/release/v1.34.9/bin/linux/amd64/kubectl":  "73bb6f5063caadae1e73a39de018d8ad21755984bea35358484db817859e7634",
	"https://dl.k8s.io/release/v1.34.9/bin/linux/arm64/kubectl":  "63317b16a5264af47169b54dafd1878fed29031ebc8367960dd3b88484334e04",
	"https://dl.k8s.io/release/v1.34.10/bin/linux/amd64/kubelet": "59669fd1233989fda877aa8a785bd56d4c73e739afcd90596c62e0172af2738c",
	"https://dl.k8s.io/release/v1.34.10/bin/linux/arm64/kubelet": "8f9305c7c639056e9544af4d360119af03c43cec470b2fb28ddaca26525b2564",
	"https://dl.k8s.io/release/v1.34.10/bin/linux/amd64/kubeadm": "7a75c473f72166d3081ed35e627328f3d4ce960d6beff983cb6384a3dc675bf4",
	"https://dl.k8s.io/release/v1.34.10/bin/linux/arm64/kubeadm": "550f1d6d7e73b91cc77d10f89a94e745d800e49b4b7fc509c1a670ffc6401b1b",
	"https://dl.k8s.io/release/v1.34.10/bin/linux/amd64/kubectl": "95bd70842bd11a524d24acd5b68726899e3488e153e45e2b4ae846545beda050",
	"https://dl.k8s.io/release/v1.34.10/bin/linux/arm64/kubectl": "52d3aeefea32fdfa3671ccd636be5da463ddfd0a2fc09d7bcbaedcff4c76cad5",
	"https://dl.k8s.io/release/v1.34.11/bin/linux/amd64/kubelet": "4777a226b2ba3c1d656254bcf3f7ad471bf210042f361094216e51ab4fa9b4b6",
	"https://dl.k8s.io/release/v1.34.11/bin/linux/arm64/kubelet": "f12879879481e9af46317c2c82a6dba7d59df78ed095e44e0399643df1c4c8ba",
	"https://dl.k8s.io/release/v1.34.11/bin/linux/amd64/kubeadm": "bd3cbe40aff6c7b3b939243ebd80dbd7da207c0e594cfdd434295bf553ea7351",
	"https://dl.k8s.io/release/v1.34.11/bin/linux/arm64/kubeadm": "1365b20b698151f432eb8f5a8ca53f0200e85af32392d31f40ffa901a73b694c",
	"https://dl.k8s.io/release/v1.34.11/bin/linux/amd64/kubectl": "8efbb9435132a190920eb65a47a8c1ecf755ad85ab57a600c9bedbab460bb7a8",
	"https://dl.k8s.io/release/v1.34.11/bin/linux/arm64/kubectl": "5b045a4712674c88a56fd98eef4285689738b7fbe8735e1b9ee3509521af5cb4",
	"https://dl.k8s.io/release/v1.35.3/bin/linux/amd64/kubelet":  "28d570423eaad5f1f5658a646bd8c015c786c95d62ffaf14bf35fa0c4326fa05",
	"https://dl.k8s.io/release/v1.35.3/bin/linux/arm64/kubelet":  "58496a5d16d4316b18397735190d2d41e0c368169ecb458d91b09f4cd1e03c80",
	"https://dl.k8s.io/release/v1.35.3/bin/linux/amd64/kubeadm":  "a3fb4b3a214a807e2ef4c3fda3196c7f97dcf8152558de5a3c473c869bda0b07",
	"https://dl.k8s.io/release/v1.35.3/bin/linux/arm64/kubeadm":  "647a9821c37a27bcaf6d679a191732b686c01cecd0219d5e579129f0cfd62cef",
	"https://dl.k8s.io/release/v1.35.3/bin/linux/amd64/kubectl":  "fd31c7d7129260e608f6faf92d5984c3267ad0b5ead3bced2fe125686e286ad6",
	"https://dl.k8s.io/release/v1.35.3/bin/linux/arm64/kubectl":  "6f0cd088a82dde5d5807122056069e2fac4ed447cc518efc055547ae46525f14",
	"https://dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubelet":  "983a6ba5a49823dcdd745c674e5e2416377dd27d6ad1b42d2befa0fb961a19f6",
	"https://dl.k8s.io/release/v1.35.4/bin/linux/arm64/kubelet":  "d710eef03bb4ad164bb77af9be5b11b44f874e2fc08153c7d383420d685f73e8",
	"https://dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubeadm":  "0c0497da793f8897c14e45340da919534b615294a1aab69dc1998896c0f11145",
	"https://dl.k8s.io/release/v1.35.4/bin/linux/arm64/kubeadm":  "e8f6b5bee3e2c8b5965f4ae65c2ae04e3f9f426d2458a1e2f159e824d419d92c",
	"https://dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubectl":  "b529430df69a688fd61b64ad2299edb5fd71cb58be2a4779dba624c7d3510efd",
	"https://dl.k8s.io/release/v1.35.4/bin/linux/arm64/kubectl":  "6a5a4cc4e396d7626a7a693a3044b51c75520f81db30fe6816c2554e53be336f",
	"https://dl.k8s.io/release/v1.35.5/bin/linux/amd64/kubelet":  "4ba1f892bd52fdae7cd2abb1b1111054ff274c71f88af0a85fd9f1107e8d46c8",
	"https://dl.k8s.io/release/v1.35.5/bin/linux/arm64/kubelet":  "a100cfe89d7dd7a49a07164c6ccb78df02563483ef5b37330e1150e37e8868b3",
	"https://dl.k8s.io/release/v1.35.5/bin/linux/amd64/kubeadm":  "cbf71fbee3a3f60edf3fae4e50994f88a35b35cddf65d373d7955b58e8785397",
	"https://dl.k8s.io/release/v1.35.5/bin/linux/arm64/kubeadm":  "24658203703a8bfa2813571881c1ba08f8cc4aff714a5b43bbf417af7d3cf229",
	"https://dl.k8s.io/release/v1.35.5/bin/linux/amd64/kubectl":  "90f75ea6ecc9ea5633262e1c0b83a40560003b30fc94a04cb099404fcef0c224",
	"https://dl.k8s.io/release/v1.35.5/bin/linux/arm64/kubectl":  "ac69e06fd6860d69786692f5af1c3a1208ed54f8366a4d97ab15c172e99765ee",
	"https://dl.k8s.io/release/v1.35.6/bin/linux/amd64/kubelet":  "f320e9485cdb8fd190ab45efd3c3e29f6fcf4ad1a4c610a058d8f0b6bcd34a3a",
	"https://dl.k8s.io/release/v1.35.6/bin/linux/arm64/kubelet":  "b45c8b2b8a46a92028fcd68571aa38c839b64e38e199da23e1f37dcbe9f3399b",
	"https://dl.k8s.io/release/v1.35.6/bin/linux/amd64/kubeadm":  "49fd320be1d6af003fc3b61ad60cf30b02838a661ab0139798e021f7e378d806",
	"https://dl.k8s.io/release/v1.35.6/bin/linux/arm64/kubeadm":  "b6acbcd4ab8a18759191a2d6373d84a80f3cb47ad5460603df5fe8887b139716",
	"https://dl.k8s.io/release/v1.35.6/bin/linux/amd64/kubectl":  "5d11e2ba01ea68ffd053f56e27738e2b4330013ee67f7e46c6da6c585d3c9926",
	"https://dl.k8s.io/release/v1.35.6/bin/linux/arm64/kubectl":  "c0f97f31c9ddc22d4951d543a1a7125a9af4b31e895ad4aa99899c4ba2a6ff0b",
	"https://dl.k8s.io/release/v1.35.7/bin/linux/amd64/kubelet":  "e48cbb9c62351aa95f455bdae3c9a9e9d7d644027c231ade7a67b868b2be3258",
	"https://dl.k8s.io/release/v1.35.7/bin/linux/arm64/kubelet":  "0dc3f53fc51f6a6c26c437ec9eded016106ef931db2dd9b3905c656796bed438",
	"https://dl.k8s.io/release/v1.35.7/bin/linux/amd64/kubeadm":  "9206f531ffe9cef39e9b734bc49ee9ca965d646ff6d4536e5b3fd3ff71151512",
	"https://dl.k8s.io/release/v1.35.7/bin/linux/arm64/kubeadm":  "b8c3a1145a9875f046e9b66d5cd5810431e92ae1d5abca82f0151694cd257928",
	"https://dl.k8s.io/release/v1.35.7/bin/linux/amd64/kubectl":  "12e97f9d23a9f6cbb87b89becd6bd291e1a858a3379a4e11e2c822c4c1530052",
	"https://dl.k8s.io/release/v1.35.7/bin/linux/arm64/kubectl":  "5103d45b8881434d417694057b8ccb5ae79fd310a5c5c13e403c5e62e15909be",
	"https://dl.k8s.io/release/v1.35.8/bin/linux/amd64/kubelet":  "6971b9f95e54dbed67a2271abe6e78f8cc2894494649f3cf39e4b25a82dca923",
	"https://dl.k8s.io/release/v1.35.8/bin/linux/arm64/kubelet":  "7744f84c49df6dff7d0a0471f9acef31568c02459659de83aa279cf3a04b1714",
	"https://dl.k8s.io/release/v1.35.8/bin/linux/amd64/kubeadm":  "1bbc64a2be5b300880ae9330c6bba592ec2a2b8ecb79c527b0c7cc0f44070e5e",
	"https://dl.k8s.io/release/v1.35.8/bin/linux/arm64/kubeadm":  "8956730f3ae46ebdb95e95845542f71d844f74affd69c14634a58d1fe3510d86",
	"https://dl.k8s.io/release/v1.35.8/bin/linux/amd64/kubectl":  "874d5e72dbb819f43cff16bcd1e4f8bac5b7f2361fe1e55049b0a6c676fb0cbf",
	"https://dl.k8s.io/release/v1.35.8/bin/linux/arm64/kubectl":  "cc749967b62f4422260bc9c0aa7a7c55f45175ae38cb8d95767b5d2b7e04c1fd",
	"https://dl.k8s.io/release/v1.36.0/bin/linux/amd64/kubelet":  "d857082946c28493e8fdc52227feabd962e0e0900b6c6e4f6510168043b79dd4",
	"https://dl.k8s.io/release/v1.36.0/bin/linux/arm64/kubelet":  "049d95107361583e64f3ac9b8c9bdaf73fc7e512a838972b13b423a33ece87e9",
	"https://dl.k8s.io/release/v1.36.0/bin/linux/amd64/kubeadm":  "f962dcee1f49a51368c3b383742144d99eacff77b2132cd0a540ed8c6b30fe81",
	"https://dl.k8s.io/release/v1.36.0/bin/linux/arm64/kubeadm":  "43d4ca3a9f8f49c2c2f6db2c056de1a00fa110a3dd5aa68a74fbc52e42d96c01",
	"https://dl.k8s.io/release/v1.36.0/bin/linux/amd64/kubectl":  "123d8c8844f46b1244c547fffb3c17180c0c26dac9890589fe7e67763298748e",
	"https://dl.k8s.io/release/v1.36.0/bin/linux/arm64/kubectl":  "9f9d9c44a7b5264515ac9da5991584e2395bd50662e651132337e7b4d0c56f8f",
	"https://dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubelet":  "7efa1780c73d9fb3a464002864e582eb2d15aa691e475eaae323093d08feae14",
	"https://dl.k8s.io/release/v1.36.1/bin/linux/arm64/kubelet":  "bf274dd3affbf2543d20465dee1f763f668f78c6fbd56197794f81337a49d687",
	"https://dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm":  "f35980333a4dae753807345ae359eca03f48f9945855e6a6a6708fe8b3b24038",
	"https://dl.k8s.io/release/v1.36.1/bin/linux/arm64/kubeadm":  "82fa5119d6687f721cd80cb278bac08f54cc5d3fd0320c66cef9394d42e153a9",
	"https://dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubectl":  "629d3f410e09bf49b64ae7079f7f0bda1191efed311f7d37fdbab0ad5b0ec2b7",
	"https://dl.k8s.io/release/v1.36.1/bin/linux/arm64/kubectl":  "59f7ee8e477fae658447607dc3c8790ac17a1b016c01c622c12070e969e2d4e7",
	"https://dl.k8s.io/release/v1.36.2/bin/linux/amd64/kubelet":  "3ba68cb4f0906053c08ab843131d5cec559cf8c718dbd679950a078b306abbb4",
	"https://dl.k8s.io/release/v1.36.2/bin/linux/arm64/kubelet":  "b0b45db96f0e6bf996780b8a2b8d868bf538dc7c3a60cf604cf0ea2d65c24b06",
	"https://dl.k8s.io/release/v1.36.2/bin/linux/amd64/kubeadm":  "f95d1b345f97c673ce1c1347eb96bf2587850975155ae701cdfc629a5b575b70",
	"https://dl.k8s.io/release/v1.36.2/bin/linux/arm64/kubeadm":  "c638f0b4d9b216df8d5bcf41473b81e59143aa0a690392c224e97e6ec91ed3e9",
	"https://dl.k8s.io/release/v1.36.2/bin/linux/amd64/kubectl":  "1e9045ec32bea85da43de85f0065358529ea7c7a152eca78154fba5b58c27d82",
	"https://dl.k8s.io/release/v1.36.2/bin/linux/arm64/kubectl":  "c957eb8c4bea27a3bb35b269edd9082e27f027f7b76b20b5bf4afebc726c6d3e",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet":  "46707a53209f826ad0f0d62371ac69cd00e78fd9a8176cf5f6f87f18f7f8b718",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/arm64/kubelet":  "57205a5daf5883873d87b4914e1e00bdd7707acd075714788cfb0fc1f60bc414",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubeadm":  "bba1733c701bf70ec74ba1cc3fd5745404c1134a8a4b0a5f8560cc9832023421",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/arm64/kubeadm":  "276cfbdc43b10fef663288cc1ed76abf77b1b7f700e9f1c053cb5dc3115484de",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubectl":  "ebbd080e7c2e275093b55915722043257eb24004363e20acb3c4d71919f88336",
	"https://dl.k8s.io/release/v1.36.3/bin/linux/arm64/kubectl":  "3d86f24401c41ae5a46ac50eef8865fe891d3647d324a0836f6c63757a126e62",
	"https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubelet":  "cf2562db46c48ab84cc3791540778ee7fb1a0a008529adbb434723dd02ed8b4b",
	"https://dl.k8s.io/release/v1.36.4/bin/linux/arm64/kubelet":  "fd53ea3fcbd077844f50a3c67e9b52f62972a563674956bab0c0f4fb7ea37d50",
	"https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm":  "10d054585907f2c8bb823c84f6a66b3bd2a474c3d795475f04e9a44f78650fe6",
	"https://dl.k8s.io/release/v1.36.4/bin/linux/arm64/kubeadm":  "6a849c07d3e1c708f5c40f1ac8be03a56124204dfc7e1931e4113634019c0dad",
	"https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubectl":  "8b8f088da2dab964f853b38464033b1be15ede2839eca751482357c45abdd05a",
	"https://dl.k8s.io/release/v1.36.4/bin/linux/arm64/kubectl":  "0ecf44450ee6063bf19dd166a103ee6df4a9034455c2abce626e6eea657d73fb",
	// containerd 2.2.7: kubespray containerd_archive_checksums.
	"https://github.com/containerd/containerd/releases/download/v2.2.7/containerd-2.2.7-linux-amd64.tar.gz": "91cd216ea26a1b8b512219d3f205375c967e7b7de4dae571bc3dd16bfacd34b5",
	"https://github.com/containerd/containerd/releases/download/v2.2.7/containerd-2.2.7-linux-arm64.tar.gz": "84eb0a161e20ad45465202fa2d6d93b3d9b74666c363e9908706d590a86e2618",
	// runc 1.3.6: kubespray runc_checksums.
	"https://github.com/opencontainers/runc/releases/download/v1.3.6/runc.amd64": "3f3921dbbee7723e9868f97e88e51ffc910206e3ba55646e74d93d24ea76023c",
	"https://github.com/opencontainers/runc/releases/download/v1.3.6/runc.arm64": "6be27a061ef89bb14c6cb495405bba80f46cea213b8f79378a6086b1bac6b747",
	// CNI plugins 1.9.1: kubespray cni_binary_checksums.
	"https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz": "b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303",
	"https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-arm64-v1.9.1.tgz": "56171987d3947707c3563db2f4001bccaf50fd63468611b9f3cbecb1375ee7ec",
	// crictl 1.34.0, 1.35.0 and 1.36.0: kubespray crictl_checksums.
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz": "a8ff2a3edb37a98daf3aba7c3b284fe0aa5bff24166d896ab9ef64c8913c9f51",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-arm64.tar.gz": "c31d252e203df5f4cf37f314bd3092eb79087e791631c1e607087c74b6d0423f",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.35.0/crictl-v1.35.0-linux-amd64.tar.gz": "2e141e5b22cb189c40365a11807d69b76b9b3caced89fac2f4ec879408ce2177",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.35.0/crictl-v1.35.0-linux-arm64.tar.gz": "519071de89b64c43e2a1661bb5489c6c3fd5e9e5fcef75e50e542b0c891f1118",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.36.0/crictl-v1.36.0-linux-amd64.tar.gz": "83855e114566a8a8c44c548d515670f51de3a5e1da8b2effb59870e2f10c25a3",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.36.0/crictl-v1.36.0-linux-arm64.tar.gz": "68328594ccf780a80ae2b092d9f6ce484eec7cf540c275242e8fd954bfd95332",

	// Kubernetes for Windows, dl.k8s.io/release/v<version>/bin/windows/amd64/<name>.exe:
	// rke2 Dockerfile.windows at the commit after each release.
	// 1.34.6, rke2 commit a873915eb5.
	"https://dl.k8s.io/release/v1.34.6/bin/windows/amd64/kubelet.exe":    "2f3f047e293dfd52dde9866a995935974067e26f8fcb152eb192071bcd4d000d",
	"https://dl.k8s.io/release/v1.34.6/bin/windows/amd64/kube-proxy.exe": "96c1b5bdad03787e6db099d879676e15511f5c375d4a09f42e22c8e774353a33",
	"https://dl.k8s.io/release/v1.34.6/bin/windows/amd64/kubectl.exe":    "0a1f4ec0c89160e0e433c6a0e37dbf8503ba5a11632b3fb198d2860603a2fbc9",
	// 1.34.7, rke2 commit 8d8d41c474.
	"https://dl.k8s.io/release/v1.34.7/bin/windows/amd64/kubelet.exe":    "921b1e3d37f8f28b7183139b740072c1761ead198baeee32c20ff1b2914132f1",
	"https://dl.k8s.io/release/v1.34.7/bin/windows/amd64/kube-proxy.exe": "90e1ce6e0fad8a74ff824b9ff684785ac4a58c52008cfa4d5201f6824aeeac64",
	"https://dl.k8s.io/release/v1.34.7/bin/windows/amd64/kubectl.exe":    "cd158f0f6e4e7624a7d82706d13b9fa8c70aa3026658217a2cf260d0933c4aa9",
	// 1.34.8, rke2 commit f40137995d.
	"https://dl.k8s.io/release/v1.34.8/bin/windows/amd64/kubelet.exe":    "cd07118873e9a95ebc16a992bd5fa39e2973cbd58de4164a02334a00690df658",
	"https://dl.k8s.io/release/v1.34.8/bin/windows/amd64/kube-proxy.exe": "2e22b0cfb9e8d27967be313b27f436fac6ff3e76b2dbe2e8307e2e5df1893ad1",
	"https://dl.k8s.io/release/v1.34.8/bin/windows/amd64/kubectl.exe":    "35bc3cb7050f6d39436e6c486c65e2d2d6198988b10c5e76b58b8c929373a7fa",
	// 1.34.9, rke2 commit c21b1e5b6f.
	"https://dl.k8s.io/release/v1.34.9/bin/windows/amd64/kubelet.exe":    "a59f40bac3776dd2a34124ec9137ddd6063ddb109f26c6c4dc2ba5f8ddbb0548",
	"https://dl.k8s.io/release/v1.34.9/bin/windows/amd64/kube-proxy.exe": "5c41520c3b668c3d130272d04bf3a84e485e2715c4e65fc2d5bfbdc6612962b6",
	"https://dl.k8s.io/release/v1.34.9/bin/windows/amd64/kubectl.exe":    "55ebcb030556f8c3f1e80814fdc0a6a2679d59db179c95966023d8b524f4a62e",
	// 1.34.10, rke2 commit baff5905aa.
	"https://dl.k8s.io/release/v1.34.10/bin/windows/amd64/kubelet.exe":    "c306bf4a8583c02530e7fa340dbfc4e9372d1a35f6b1d80acef72c3a3fe371f7",
	"https://dl.k8s.io/release/v1.34.10/bin/windows/amd64/kube-proxy.exe": "760b73d87c15c95ea1f22984859c127a51c5c7fd4bc82678050e28b1d05bb2e0",
	"https://dl.k8s.io/release/v1.34.10/bin/windows/amd64/kubectl.exe":    "d65219a899e8eaa243467a40cb9c079a68e19b2647bf02bedbbc9f37048bf976",
	// 1.34.11, rke2 commit 27da3a5cf4.
	"https://dl.k8s.io/release/v1.34.11/bin/windows/amd64/kubelet.exe":    "4cbdce076ed18adcdf98b0bba6ff27f5c1314bc036c2291f6f619c99c1b58272",
	"https://dl.k8s.io/release/v1.34.11/bin/windows/amd64/kube-proxy.exe": "b2df8e8cbc8ccc5c88047967819adf5fb3739e054cb256e2329fb9423a87f388",
	"https://dl.k8s.io/release/v1.34.11/bin/windows/amd64/kubectl.exe":    "8e352ca98d4cbba570731b0254705f88ef11dc0fd831d845e8b5bd21003bd778",
	// 1.35.3, rke2 commit 57e5c84f80.
	"https://dl.k8s.io/release/v1.35.3/bin/windows/amd64/kubelet.exe":    "9baf7d817616027109942aa466c9f908e6aa4d032ea6b9b31ac08fbcae3e80e1",
	"https://dl.k8s.io/release/v1.35.3/bin/windows/amd64/kube-proxy.exe": "0243029bad441164e838f868feaaa3568ed211ffdf588e6794a56f7118d914a5",
	"https://dl.k8s.io/release/v1.35.3/bin/windows/amd64/kubectl.exe":    "6c367f9c34be9a13a94eb523dd62006973e1d051adea7d6bcf800dde3f6e84df",
	// 1.35.4, rke2 commit d24d437418.
	"https://dl.k8s.io/release/v1.35.4/bin/windows/amd64/kubelet.exe":    "5ca4dcce04f32b6e78cc44a9e6498b98d2909dd7cb9e2e6c2c424ad27ef33c37",
	"https://dl.k8s.io/release/v1.35.4/bin/windows/amd64/kube-proxy.exe": "feb642528b0a36ab8894c8641c78aab1b4d2059faf3adadeaac48b0162940553",
	"https://dl.k8s.io/release/v1.35.4/bin/windows/amd64/kubectl.exe":    "d77d03309bd80de56dafe8ca59ff6f2076e2ed4ee61c6a94657a4b6e945210e6",
	// 1.35.5, rke2 commit 5918ff79ec.
	"https://dl.k8s.io/release/v1.35.5/bin/windows/amd64/kubelet.exe":    "b131c387fe0fde82e5ecf6c22a64481bc1189a03c478810c9ac691feb1b4d9b7",
	"https://dl.k8s.io/release/v1.35.5/bin/windows/amd64/kube-proxy.exe": "38753f90e581bd5166ff94c2464a3020666afa49e91d9ed0a4b0dab74e54d31f",
	"https://dl.k8s.io/release/v1.35.5/bin/windows/amd64/kubectl.exe":    "5d8b15772199f652286ca8a17ba683cb453dcbbba40dc948f71fec81d9e9ca30",
	// 1.35.6, rke2 commit c4d6fc7ec6.
	"https://dl.k8s.io/release/v1.35.6/bin/windows/amd64/kubelet.exe":    "e56b35c1e1a9ac9843767ba6194d2db5505d8df703375580690757cf42cf79d8",
	"https://dl.k8s.io/release/v1.35.6/bin/windows/amd64/kube-proxy.exe": "d0f21aa21aec11bd2c9ac10b96a11605252528c2f15ad79991619d71dce9f0b6",
	"https://dl.k8s.io/release/v1.35.6/bin/windows/amd64/kubectl.exe":    "ce1c21d0e0a64fa249fad3b6372c14479e7901fedf6d5a425d92c46c2bd87442",
	// 1.35.7, rke2 commit 9462dd663c.
	"https://dl.k8s.io/release/v1.35.7/bin/windows/amd64/kubelet.exe":    "00c40f14d4a399c0c6b7a6ed2f5cbb31e08e856b6e86a69ac3f882cdf133dc28",
	"https://dl.k8s.io/release/v1.35.7/bin/windows/amd64/kube-proxy.exe": "661a55e86ad1b574d12bb84c3a4bd06a3caa35c717de2b2ace8f6fa539d12ba4",
	"https://dl.k8s.io/release/v1.35.7/bin/windows/amd64/kubectl.exe":    "adece83a34b8c09b2fd8d8329905e13ec88f303974f1a9436f44226591fca238",
	// 1.35.8, rke2 commit 8d6673a058.
	"https://dl.k8s.io/release/v1.35.8/bin/windows/amd64/kubelet.exe":    "606aef6d6c8e3d47349d79bb96dfe2d5d1b83415dbce826ff3fa799a3cf95de9",
	"https://dl.k8s.io/release/v1.35.8/bin/windows/amd64/kube-proxy.exe": "66a20ec37e92faf7e74aa788fadd8d794a1decc1d2818cc1d9ae5a09cfe841ed",
	"https://dl.k8s.io/release/v1.35.8/bin/windows/amd64/kubectl.exe":    "f675d70224b42b84e0442e8d7644efbe440e4451a4b02bdc5d95823a96316ba8",
	// 1.36.0, rke2 commit c1b1ab2a0b.
	"https://dl.k8s.io/release/v1.36.0/bin/windows/amd64/kubelet.exe":    "bd6e500084d8fd0f595cd015486ad471418ca390d9c358446a77bc088b358845",
	"https://dl.k8s.io/release/v1.36.0/bin/windows/amd64/kube-proxy.exe": "47e8d2eee10d23f35e969f44309c9e70337624441bfba0c0f99d98b91388d542",
	"https://dl.k8s.io/release/v1.36.0/bin/windows/amd64/kubectl.exe":    "9abf2164fe79d9d80185ff5085f6154eda9d21793ee18fa8dff34dfffffed36d",
	// 1.36.1, rke2 commit b24eaa20f5.
	"https://dl.k8s.io/release/v1.36.1/bin/windows/amd64/kubelet.exe":    "60cd2ea85c293a60bd90d01178a06e298c277438429513024815f30dee8ac926",
	"https://dl.k8s.io/release/v1.36.1/bin/windows/amd64/kube-proxy.exe": "5b87e2231b51ec3857829c3f09fe301d65d6aa027f1b6d7315521b31274d384a",
	"https://dl.k8s.io/release/v1.36.1/bin/windows/amd64/kubectl.exe":    "538f4229eee91a17b34724da7daade7687393d6988e33b723c6c306572c13900",
	// 1.36.2, rke2 commit 42c05686dc.
	"https://dl.k8s.io/release/v1.36.2/bin/windows/amd64/kubelet.exe":    "933a42b758aed31c9cddff2399163614659ce47f30c49f3a119641d32cf13c21",
	"https://dl.k8s.io/release/v1.36.2/bin/windows/amd64/kube-proxy.exe": "044d5fa0217a055f45e91f026d7c0e3b9bbd2f36d18f9a62ea505f30e7d7a401",
	"https://dl.k8s.io/release/v1.36.2/bin/windows/amd64/kubectl.exe":    "df04d82234b28ffbdcd36e79d596b85da6e9c736e1a7a55ff6910c648ff47af2",
	// 1.36.3, rke2 commit 0f95296f16.
	"https://dl.k8s.io/release/v1.36.3/bin/windows/amd64/kubelet.exe":    "683843a94c9ddd43023c6a06b630cf637f19f9838684a5526b811df5cdbd4c1a",
	"https://dl.k8s.io/release/v1.36.3/bin/windows/amd64/kube-proxy.exe": "19b002c905a26259331d2a82e8022797ddfa7aab8eec015614d07a5e9c418969",
	"https://dl.k8s.io/release/v1.36.3/bin/windows/amd64/kubectl.exe":    "ba76657b79d0ebcc3c029c171fc83c96351ba5ce0e71d185f1e5b8b873360a5f",
	// 1.36.4, rke2 commit 8f3c3b3a13.
	"https://dl.k8s.io/release/v1.36.4/bin/windows/amd64/kubelet.exe":    "dbb90c2e2028c60ce068049a27edd4bfc19d197c4e7ab2e39cf96002e3f99782",
	"https://dl.k8s.io/release/v1.36.4/bin/windows/amd64/kube-proxy.exe": "dccf1854af088f1f2050197bbf46c65ecb90219769832f992bbd796f72192455",
	"https://dl.k8s.io/release/v1.36.4/bin/windows/amd64/kubectl.exe":    "31947857be7583f3e4e6d889a3fb781ca813a45c20f11ccb3ef309714d01a9f3",
	// containerd 2.2.7, CNI plugins 1.9.1 and crictl for Windows: rke2
	// Dockerfile.windows at the heads of release-1.34 (crictl 1.34.0),
	// release-1.35 (containerd 2.2.7 since c303e4904f, "bump containerd to
	// v2.2.7-k3s1"; crictl 1.35.0) and master (crictl 1.36.0).
	"https://github.com/containerd/containerd/releases/download/v2.2.7/containerd-2.2.7-windows-amd64.tar.gz":      "ab10d86a2cae781b9ff67c6a5edecb93ad837e6ab799f447492b2fcc3547e44c",
	"https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-windows-amd64-v1.9.1.tgz": "c09a62523d76b32b883b6a9ee824c997b5c3cc8b3caebc8612c2f64fbbe97334",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-windows-amd64.tar.gz":   "8f1587b28a6b40dd5f5f28e7a867507330bf3ed7cd575b03fb63a1647b7499ce",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.35.0/crictl-v1.35.0-windows-amd64.tar.gz":   "a5329ebc16378ae1d2935414077695579d76617aaf936a9d8c8ed086951313f3",
	"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.36.0/crictl-v1.36.0-windows-amd64.tar.gz":   "73ef455b8a5a1e43f19372eba0ec40455e4abde3b9441a21db32c2a3172fb7ea",
	// flanneld.exe 0.28.9, which flannel-io/flannel publishes without a
	// checksum file: rke2 Dockerfile.windows (FLANNEL_VERSION="v0.28.9", since
	// commit 6ce1a80 and at every branch head above).
	"https://github.com/flannel-io/flannel/releases/download/v0.28.9/flanneld.exe": "7d43b3de5635891e68b36458d912a94c2eb94e15d878d486f539309db5845861",
	// The flannel CNI plugin 1.9.1-flannel3's Windows binary: rke2
	// Dockerfile.windows (CNI_FLANNEL_VERSION="v1.9.1-flannel3", downloaded as
	// flannel.exe), at the same branch heads.
	"https://github.com/flannel-io/cni-plugin/releases/download/v1.9.1-flannel3/flannel-amd64.exe": "768c4a04e6ee3f7e3f9280488359b7e4bba4220246795261994a77a366860cc6",
}
