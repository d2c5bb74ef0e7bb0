package agent

import (
	"cmp"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/nodeagent/manifest"
)

// ConfigError lists every problem of a config, each naming its field and the fix.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

var (
	tokenRE    = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	caHashRE   = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	versionRE  = regexp.MustCompile(`^v?1\.[0-9]+\.[0-9]+$`)
)

// ParseConfig decodes and validates a config; unknown fields are errors so a typo is caught.
func ParseConfig(data []byte) (contract.Config, error) {
	var cfg contract.Config
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, &ConfigError{Problems: []string{fmt.Sprintf("config: not valid JSON for %s: %v; fix: write the config the provisioner generates", contract.APIVersion, err)}}
	}
	if cfg.Node.OS == "windows" && cfg.Node.Isolation == "" {
		cfg.Node.Isolation = "process"
	}
	if cfg.Cluster.DNSDomain == "" {
		cfg.Cluster.DNSDomain = "cluster.local"
	}
	return cfg, Validate(cfg)
}

// Validate returns every problem at once, or nil.
func Validate(cfg contract.Config) error {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if cfg.APIVersion != contract.APIVersion {
		add("apiVersion: %q is not supported; fix: use %q", cfg.APIVersion, contract.APIVersion)
	}
	n := cfg.Node
	switch {
	case n.Name == "":
		add("node.name: missing; fix: set the Kubernetes node name")
	case !nodeNameRE.MatchString(n.Name) || len(n.Name) > 63:
		add("node.name: %q is not a DNS label; fix: use lower-case letters, digits and '-', at most 63 characters", n.Name)
	}
	if cn := cmp.Or(n.ComputerName, n.Name); n.OS == "windows" && len(cn) > 15 {
		add("node.computerName: %q has %d characters; fix: set node.computerName to a name of at most 15 characters (Windows computer names have at most 15)", cn, len(cn))
	}
	switch n.Role {
	case contract.RoleInit, contract.RoleControlPlane, contract.RoleWorker:
	default:
		add("node.role: %q is not supported; fix: use %s, %s or %s", n.Role, contract.RoleInit, contract.RoleControlPlane, contract.RoleWorker)
	}
	if n.Pool == "" {
		add("node.pool: missing; fix: set the name of the node's pool")
	}
	if n.PrivateIP != "" && net.ParseIP(n.PrivateIP) == nil {
		add("node.privateIP: %q is not an IP address", n.PrivateIP)
	}
	switch n.OS {
	case "linux":
		if n.WindowsVersion != "" || n.Isolation != "" {
			add("node.windowsVersion/node.isolation: set on a Linux node; fix: remove them")
		}
	case "windows":
		if _, ok := contract.WindowsBuilds[n.WindowsVersion]; !ok {
			add("node.windowsVersion: %q is not supported; fix: use 2019, 2022 or 2025", n.WindowsVersion)
		}
		if n.Isolation != "process" && n.Isolation != "hyperv" {
			add("node.isolation: %q is not supported; fix: use process or hyperv", n.Isolation)
		}
		if n.Role != contract.RoleWorker && n.Role != "" {
			add("node.role: %q on Windows; fix: Windows nodes are workers (the control plane is Linux)", n.Role)
		}
		if cfg.Cluster.CNI == "calico" && n.WindowsVersion == "2025" {
			// docs.tigera.io/calico/3.32/getting-started/kubernetes/windows-calico/requirements lists 1809 (2019) and 2022.
			add("cluster.cni: calico does not support Windows Server 2025 (Calico for Windows supports 2019 and 2022); fix: use flannel, or windowsVersion 2022")
		}
	default:
		add("node.os: %q is not supported; fix: use linux or windows", n.OS)
	}
	for i, t := range n.Taints {
		if _, _, err := parseTaint(t); err != nil {
			add("node.taints[%d]: %v", i, err)
		}
	}
	c := cfg.Cluster
	if c.Name == "" {
		add("cluster.name: missing; fix: set the cluster's name")
	}
	if !versionRE.MatchString(c.KubernetesVersion) {
		add("cluster.kubernetesVersion: %q is not a version; fix: use e.g. 1.36.3", c.KubernetesVersion)
	} else if _, ok := manifest.ComponentsFor(c.KubernetesVersion); !ok {
		add("cluster.kubernetesVersion: %q has no built-in component versions; fix: use one of %s", c.KubernetesVersion, strings.Join(manifest.Versions(), ", "))
	}
	if host, port, err := net.SplitHostPort(c.APIEndpoint); err != nil || host == "" {
		add("cluster.apiEndpoint: %q is not host:port; fix: use e.g. 10.0.0.4:6443", c.APIEndpoint)
	} else if pn, err := strconv.Atoi(port); err != nil || pn < 1 || pn > 65535 {
		add("cluster.apiEndpoint: port %q is not a port number", port)
	}
	if c.CNI != "calico" && c.CNI != "flannel" {
		add("cluster.cni: %q is not supported; fix: use calico or flannel", c.CNI)
	}
	for _, f := range []struct{ name, v string }{{"cluster.podCIDR", c.PodCIDR}, {"cluster.serviceCIDR", c.ServiceCIDR}} {
		if _, _, err := net.ParseCIDR(f.v); err != nil {
			add("%s: %q is not a CIDR; fix: use e.g. 10.244.0.0/16", f.name, f.v)
		}
	}
	if c.NodeCIDR != "" {
		if _, _, err := net.ParseCIDR(c.NodeCIDR); err != nil {
			add("cluster.nodeCIDR: %q is not a CIDR", c.NodeCIDR)
		}
	}
	if n.Role == contract.RoleInit {
		validateInit(cfg, add)
	} else if n.Role != "" {
		validateJoin(cfg, add)
	}
	if u := cfg.Artifacts.MirrorBaseURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			add("artifacts.mirrorBaseURL: %q is not an http(s) URL; fix: use e.g. https://mirror.example.com/k8s", u)
		}
	}
	if m := cfg.Artifacts.Manifest; m != nil {
		for i, a := range m.Artifacts {
			if a.Name == "" || a.URL == "" {
				add("artifacts.manifest.artifacts[%d]: name and url are required", i)
			}
			if a.SHA256 != "" {
				if b, err := hex.DecodeString(a.SHA256); err != nil || len(b) != 32 {
					add("artifacts.manifest.artifacts[%d].sha256: %q is not a hex SHA-256", i, a.SHA256)
				}
			}
		}
	}
	if len(p) > 0 {
		return &ConfigError{Problems: p}
	}
	return nil
}

func validatePEM(field, value, want string, add func(string, ...any)) {
	b, _ := pem.Decode([]byte(value))
	switch {
	case value == "":
		add("%s: missing; fix: pass the cluster CA the provisioner generated", field)
	case b == nil:
		add("%s: not PEM; fix: pass the PEM text", field)
	case want == "CERTIFICATE":
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			add("%s: not a certificate: %v", field, err)
		}
	case !strings.Contains(b.Type, "PRIVATE KEY"):
		add("%s: PEM block %q is not a private key", field, b.Type)
	}
}

func validateInit(cfg contract.Config, add func(string, ...any)) {
	in := cfg.Init
	if in == nil {
		add("init: missing; fix: the %s node needs the CA, bootstrap token and certificate key", contract.RoleInit)
		return
	}
	validatePEM("init.caCertPEM", in.CACertPEM, "CERTIFICATE", add)
	validatePEM("init.caKeyPEM", in.CAKeyPEM, "KEY", add)
	if !tokenRE.MatchString(in.BootstrapToken) {
		add("init.bootstrapToken: not of the form [a-z0-9]{6}.[a-z0-9]{16}; fix: generate one as kubeadm does")
	}
	if in.CertificateKey != "" {
		if b, err := hex.DecodeString(in.CertificateKey); err != nil || len(b) != 32 {
			add("init.certificateKey: not 32 bytes of hex; fix: generate 32 random bytes, hex-encoded")
		}
	}
}

func validateJoin(cfg contract.Config, add func(string, ...any)) {
	j := cfg.Join
	if j == nil {
		add("join: missing; fix: a %s node needs the bootstrap token and CA hashes", cfg.Node.Role)
		return
	}
	if !tokenRE.MatchString(j.BootstrapToken) {
		add("join.bootstrapToken: not of the form [a-z0-9]{6}.[a-z0-9]{16}; fix: pass the token the init node created")
	}
	if len(j.CACertHashes) == 0 {
		add("join.caCertHashes: missing; fix: pin the cluster CA as sha256:<hex of its public key>")
	}
	for i, h := range j.CACertHashes {
		if !caHashRE.MatchString(h) {
			add("join.caCertHashes[%d]: %q is not sha256:<64 hex>", i, h)
		}
	}
	if cfg.Node.OS == "windows" {
		validatePEM("join.caCertPEM", j.CACertPEM, "CERTIFICATE", add)
	}
	if cfg.Node.Role == contract.RoleControlPlane {
		if b, err := hex.DecodeString(j.CertificateKey); err != nil || len(b) != 32 {
			add("join.certificateKey: missing or not 32 bytes of hex; fix: pass the init node's certificate key")
		}
	}
}

// parseTaint splits "key=value:Effect" or "key:Effect".
func parseTaint(t string) (key, effect string, err error) {
	kv, effect, ok := strings.Cut(t, ":")
	if !ok {
		return "", "", fmt.Errorf("%q has no effect; fix: write key=value:Effect or key:Effect", t)
	}
	switch effect {
	case "NoSchedule", "PreferNoSchedule", "NoExecute":
	default:
		return "", "", fmt.Errorf("%q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", t, effect)
	}
	key, _, _ = strings.Cut(kv, "=")
	if key == "" {
		return "", "", fmt.Errorf("%q has no key", t)
	}
	return key, effect, nil
}

// secrets are the config's secret values, for redaction.
func secrets(cfg contract.Config) []string {
	var s []string
	if cfg.Init != nil {
		s = append(s, cfg.Init.CAKeyPEM, cfg.Init.BootstrapToken, cfg.Init.CertificateKey)
		if _, sec, ok := strings.Cut(cfg.Init.BootstrapToken, "."); ok {
			s = append(s, sec)
		}
	}
	if cfg.Join != nil {
		s = append(s, cfg.Join.BootstrapToken, cfg.Join.CertificateKey)
		if _, sec, ok := strings.Cut(cfg.Join.BootstrapToken, "."); ok {
			s = append(s, sec)
		}
	}
	out := s[:0]
	for _, v := range s {
		if len(v) >= 8 {
			out = append(out, v)
		}
	}
	return out
}
