// Package manifest is the versions manifest built into the agent: for each
// Kubernetes version, every artifact a node downloads (kubelet, kubeadm,
// kubectl, kube-proxy, kube-log-runner, containerd, runc, CNI plugins,
// crictl) with where to verify its SHA-256; and Download, which streams an
// artifact to a temporary file while hashing it and moves it into place only
// when the digest matches.
//
// Digests: an artifact carries a pinned SHA256 where a source other than
// its origin publishes one (pins.go, one table by URL, each pin with its
// source); the others name the
// publisher's checksum file on the same origin (SHA256URL), which Download
// fetches first. A provisioner that needs other digests passes its own
// manifest in the config (artifacts.manifest), which takes precedence. A
// mirror's checksum files replace the pins only when the config opts in
// (artifacts.trustMirrorChecksums): for a mirror that rebuilds artifacts.
//
// It is public, not under nodeagent/internal, only because the lab (test/lab)
// and cluster/provision import it, which Go's internal rule would forbid.
package manifest

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// Artifact names used by the steps.
const (
	Kubelet       = "kubelet"
	Kubeadm       = "kubeadm"
	Kubectl       = "kubectl"
	KubeProxy     = "kube-proxy"
	KubeLogRunner = "kube-log-runner"
	Containerd    = "containerd"
	Runc          = "runc"
	CNIPlugins    = "cni-plugins"
	Crictl        = "crictl"
	// Flanneld is flannel's daemon for Windows, run as a service.
	Flanneld = "flanneld"
	// FlannelCNI is the flannel CNI plugin for Windows (flannel-io/cni-plugin):
	// containernetworking/plugins dropped flannel in v1.0.0.
	FlannelCNI = "flannel-cni-plugin"
)

// Components pins the versions of what ships with one Kubernetes version.
type Components struct {
	Containerd string
	Runc       string
	CNIPlugins string
	Crictl     string
	// Flannel is flanneld's version on Windows; FlannelCNI the flannel CNI plugin's.
	Flannel    string
	FlannelCNI string
	// PauseImage is the sandbox image pinned in containerd and pulled ahead.
	PauseImage string
}

// minorComponents are the versions that ship with each supported Kubernetes
// minor. crictl follows the minor, as cri-tools versions it; the others are
// one release for all minors: containerd 2.2 (the loader the config checks
// build, hack/containerd-bin.sh, reads the first Containerd below), and the
// newest runc 1.3 and CNI plugins with a pinned digest for every asset here.
// These are what RKE2 ships beside the same minors (Dockerfile.windows on
// its release-1.34 and release-1.35 branches: containerd 2.2.7, crictl of the
// minor, CNI plugins 1.9.1, flannel 0.28.9 and its CNI plugin 1.9.1-flannel3).
var minorComponents = map[string]Components{
	"1.34": {Containerd: "2.2.7", Runc: "1.3.6", CNIPlugins: "1.9.1", Crictl: "1.34.0", Flannel: "0.28.9", FlannelCNI: "1.9.1-flannel3", PauseImage: "registry.k8s.io/pause:3.10.2"},
	"1.35": {Containerd: "2.2.7", Runc: "1.3.6", CNIPlugins: "1.9.1", Crictl: "1.35.0", Flannel: "0.28.9", FlannelCNI: "1.9.1-flannel3", PauseImage: "registry.k8s.io/pause:3.10.2"},
	"1.36": {Containerd: "2.2.7", Runc: "1.3.6", CNIPlugins: "1.9.1", Crictl: "1.36.0", Flannel: "0.28.9", FlannelCNI: "1.9.1-flannel3", PauseImage: "registry.k8s.io/pause:3.10.2"},
}

// releases are the Kubernetes patch releases with a built-in manifest: each
// one whose Linux kubelet, kubeadm and kubectl and Windows kubelet.exe,
// kube-proxy.exe and kubectl.exe have a pinned digest (pins.go). Older
// patches of these minors have no Windows pins (RKE2 began pinning in April
// 2026); 1.37 has no Linux pins (kubespray's table stops at 1.36.4).
var releases = []string{
	"1.34.6", "1.34.7", "1.34.8", "1.34.9", "1.34.10", "1.34.11",
	"1.35.3", "1.35.4", "1.35.5", "1.35.6", "1.35.7", "1.35.8",
	"1.36.0", "1.36.1", "1.36.2", "1.36.3", "1.36.4",
}

// pauseWindowsVersions lists the Windows Server versions each pause tag
// publishes an image for; a Windows node pulls the image of its own build.
// 3.10.2 added ltsc2025: kubernetes/kubernetes build/pause/CHANGELOG.md#3102
// (kubernetes/kubernetes#138195, taken up by containerd/containerd#13156);
// 3.10.1 builds 1809 and ltsc2022 only (build/pause/Makefile ALL_OSVERSIONS.windows).
var pauseWindowsVersions = map[string][]string{
	"registry.k8s.io/pause:3.10.1": {"2019", "2022"},
	"registry.k8s.io/pause:3.10.2": {"2019", "2022", "2025"},
}

// PauseRunsOn reports whether a pause image publishes a Windows image for a Windows Server version.
func PauseRunsOn(image, windowsVersion string) bool {
	for _, v := range pauseWindowsVersions[image] {
		if v == windowsVersion {
			return true
		}
	}
	return false
}

// Versions lists the Kubernetes releases with a built-in manifest, oldest first.
func Versions() []string {
	return slices.Clone(releases)
}

// ComponentsFor returns the pinned component versions of a Kubernetes release.
func ComponentsFor(k8sVersion string) (Components, bool) {
	v := strings.TrimPrefix(k8sVersion, "v")
	if !slices.Contains(releases, v) {
		return Components{}, false
	}
	c, ok := minorComponents[minorOf(v)]
	return c, ok
}

// Newest returns the newest release of a Kubernetes minor such as "1.36"
// with a built-in manifest, or false when the build knows none.
func Newest(minor string) (string, bool) {
	newest := ""
	for _, v := range releases {
		if minorOf(v) == minor {
			newest = v // releases is oldest first
		}
	}
	return newest, newest != ""
}

// minorOf returns "1.36" for "1.36.4".
func minorOf(v string) string {
	if i := strings.LastIndex(v, "."); i > 0 {
		return v[:i]
	}
	return v
}

// Builtin returns the built-in manifest of a Kubernetes version.
func Builtin(k8sVersion string) (*contract.Manifest, error) {
	v := strings.TrimPrefix(k8sVersion, "v")
	c, ok := ComponentsFor(v)
	if !ok {
		return nil, fmt.Errorf("no built-in manifest for Kubernetes %s; fix: use one of %s or pass artifacts.manifest", k8sVersion, strings.Join(Versions(), ", "))
	}
	m := &contract.Manifest{KubernetesVersion: v}
	add := func(name, version, goos, arch, u, sumURL string) {
		m.Artifacts = append(m.Artifacts, contract.Artifact{Name: name, Version: version, OS: goos, Arch: arch, URL: u, SHA256: pins[u], SHA256URL: sumURL})
	}
	k8s := func(name, goos, arch string) {
		file := name
		if goos == "windows" {
			file += ".exe"
		}
		u := fmt.Sprintf("https://dl.k8s.io/release/v%s/bin/%s/%s/%s", v, goos, arch, file)
		add(name, v, goos, arch, u, u+".sha256")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		for _, n := range []string{Kubelet, Kubeadm, Kubectl} {
			k8s(n, "linux", arch)
		}
		u := fmt.Sprintf("https://github.com/containerd/containerd/releases/download/v%[1]s/containerd-%[1]s-linux-%[2]s.tar.gz", c.Containerd, arch)
		add(Containerd, c.Containerd, "linux", arch, u, u+".sha256sum")
		u = fmt.Sprintf("https://github.com/opencontainers/runc/releases/download/v%s/runc.%s", c.Runc, arch)
		// runc publishes one checksum file for all architectures.
		add(Runc, c.Runc, "linux", arch, u, fmt.Sprintf("https://github.com/opencontainers/runc/releases/download/v%s/runc.sha256sum", c.Runc))
		u = fmt.Sprintf("https://github.com/containernetworking/plugins/releases/download/v%[1]s/cni-plugins-linux-%[2]s-v%[1]s.tgz", c.CNIPlugins, arch)
		add(CNIPlugins, c.CNIPlugins, "linux", arch, u, u+".sha256")
		u = fmt.Sprintf("https://github.com/kubernetes-sigs/cri-tools/releases/download/v%[1]s/crictl-v%[1]s-linux-%[2]s.tar.gz", c.Crictl, arch)
		add(Crictl, c.Crictl, "linux", arch, u, u+".sha256")
	}
	for _, n := range []string{Kubelet, KubeProxy, Kubectl, KubeLogRunner} {
		k8s(n, "windows", "amd64")
	}
	u := fmt.Sprintf("https://github.com/containerd/containerd/releases/download/v%[1]s/containerd-%[1]s-windows-amd64.tar.gz", c.Containerd)
	add(Containerd, c.Containerd, "windows", "amd64", u, u+".sha256sum")
	u = fmt.Sprintf("https://github.com/containernetworking/plugins/releases/download/v%[1]s/cni-plugins-windows-amd64-v%[1]s.tgz", c.CNIPlugins)
	add(CNIPlugins, c.CNIPlugins, "windows", "amd64", u, u+".sha256")
	u = fmt.Sprintf("https://github.com/kubernetes-sigs/cri-tools/releases/download/v%[1]s/crictl-v%[1]s-windows-amd64.tar.gz", c.Crictl)
	add(Crictl, c.Crictl, "windows", "amd64", u, u+".sha256")
	// The flannel CNI plugin's Windows binary itself, as RKE2 downloads and
	// pins it (pins.go), rather than the release's archive of it, whose
	// digest no source but its origin publishes.
	add(FlannelCNI, c.FlannelCNI, "windows", "amd64", fmt.Sprintf("https://github.com/flannel-io/cni-plugin/releases/download/v%s/flannel-amd64.exe", c.FlannelCNI), "")
	// flannel-io/flannel publishes no checksum file (.github/workflows/release.yml
	// uploads dist/flannel* only): flanneld.exe has a pin (pins.go) and no SHA256URL.
	add(Flanneld, c.Flannel, "windows", "amd64", fmt.Sprintf("https://github.com/flannel-io/flannel/releases/download/v%s/flanneld.exe", c.Flannel), "")
	return m, nil
}

// For returns the manifest a config asks for: its override, else the built-in
// one, with the mirror applied to every URL.
func For(cfg contract.Config) (*contract.Manifest, error) {
	m := cfg.Artifacts.Manifest
	if m == nil {
		var err error
		if m, err = Builtin(cfg.Cluster.KubernetesVersion); err != nil {
			return nil, err
		}
	}
	if cfg.Artifacts.MirrorBaseURL == "" {
		if cfg.Artifacts.TrustMirrorChecksums {
			return nil, fmt.Errorf("artifacts.trustMirrorChecksums is set without artifacts.mirrorBaseURL; fix: set the mirror, or drop the flag")
		}
		return m, nil
	}
	out := &contract.Manifest{KubernetesVersion: m.KubernetesVersion}
	for _, a := range m.Artifacts {
		var err error
		if a.URL, err = Mirror(cfg.Artifacts.MirrorBaseURL, a.URL); err != nil {
			return nil, err
		}
		switch {
		case a.SHA256URL != "":
			if a.SHA256URL, err = Mirror(cfg.Artifacts.MirrorBaseURL, a.SHA256URL); err != nil {
				return nil, err
			}
			if cfg.Artifacts.TrustMirrorChecksums {
				a.SHA256 = "" // the mirror's checksum file decides, as the config asked
			}
		case a.SHA256 != "" && cfg.Artifacts.TrustMirrorChecksums && cfg.Artifacts.Manifest == nil:
			// A built-in pin with no publisher checksum file: the mirror's own file beside it.
			a.SHA256, a.SHA256URL = "", a.URL+".sha256"
		}
		out.Artifacts = append(out.Artifacts, a)
	}
	return out, nil
}

// Mirror replaces the scheme and host of u with base (which may carry a path prefix).
func Mirror(base, u string) (string, error) {
	b, err := url.Parse(base)
	if err != nil || b.Scheme == "" || b.Host == "" {
		return "", fmt.Errorf("artifacts.mirrorBaseURL: %q is not an absolute URL; fix: use e.g. https://mirror.example.com/k8s", base)
	}
	o, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("artifact URL %q does not parse: %w", u, err)
	}
	o.Scheme, o.Host = b.Scheme, b.Host
	o.Path = strings.TrimSuffix(b.Path, "/") + o.Path
	return o.String(), nil
}

// Find returns the artifact of that name for an OS and arch.
func Find(m *contract.Manifest, name, goos, arch string) (contract.Artifact, error) {
	for _, a := range m.Artifacts {
		if a.Name == name && a.OS == goos && a.Arch == arch {
			return a, nil
		}
	}
	return contract.Artifact{}, fmt.Errorf("manifest for Kubernetes %s has no %s for %s/%s; fix: add it to artifacts.manifest", m.KubernetesVersion, name, goos, arch)
}
