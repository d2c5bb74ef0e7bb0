package kubeadm

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// Endpoints and paths the rendered files refer to.
const (
	// LinuxCRISocket is containerd's CRI socket on Linux.
	LinuxCRISocket = "unix:///run/containerd/containerd.sock"
	// WindowsCRIEndpoint is containerd's CRI named pipe on Windows.
	WindowsCRIEndpoint = "npipe:////./pipe/containerd-containerd"
	// LinuxCAFile is the cluster CA in kubeadm's certificate directory.
	LinuxCAFile = "/etc/kubernetes/pki/ca.crt"
	// WindowsCAFile is where the agent writes Join.CACertPEM on Windows; the
	// kubelet authenticates client certificates against it.
	WindowsCAFile = `C:\k\pki\ca.crt`
	// WindowsKubeletKubeconfig is the kubelet's --kubeconfig on Windows: the
	// kubelet writes it after the TLS bootstrap and kube-proxy uses it.
	WindowsKubeletKubeconfig = `C:\k\kubelet.conf`

	defaultBootstrapTokenTTL = time.Hour
	defaultAPIServerPort     = 6443
	defaultDNSDomain         = "cluster.local"
	controlPlaneTaint        = "node-role.kubernetes.io/control-plane"
)

// InitConfig renders the kubeadm init configuration of the first
// control-plane node: InitConfiguration, ClusterConfiguration,
// KubeletConfiguration and KubeProxyConfiguration, in that order.
func InitConfig(cfg contract.Config) ([]byte, error) {
	c, err := common(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Node.Role != contract.RoleInit {
		return nil, fmt.Errorf("node.role is %q: kubeadm init configuration is for %q only; fix: render JoinConfig for other roles", cfg.Node.Role, contract.RoleInit)
	}
	if cfg.Node.OS != "linux" {
		return nil, fmt.Errorf("node.os is %q: the control plane runs on Linux only; fix: set node.os to \"linux\"", cfg.Node.OS)
	}
	in := cfg.Init
	if in == nil {
		return nil, fmt.Errorf("init is missing: the %q node needs it; fix: set init (CA, bootstrap token) in the agent config", contract.RoleInit)
	}
	if err := checkToken("init.bootstrapToken", in.BootstrapToken); err != nil {
		return nil, err
	}
	ttl := defaultBootstrapTokenTTL
	if in.BootstrapTokenTTL != "" {
		ttl, err = time.ParseDuration(in.BootstrapTokenTTL)
		if err != nil || ttl <= 0 {
			return nil, fmt.Errorf("init.bootstrapTokenTTL %q is not a positive duration; fix: use a short one such as \"1h\"", in.BootstrapTokenTTL)
		}
	}
	if in.CertificateKey != "" {
		if err := checkCertificateKey("init.certificateKey", in.CertificateKey); err != nil {
			return nil, err
		}
	}
	sans, err := certSANs(in.APIServerSANs)
	if err != nil {
		return nil, err
	}
	local, err := c.localEndpoint()
	if err != nil {
		return nil, err
	}

	docs := []any{
		initConfiguration{
			typeMeta: typeMeta{kubeadmAPIVersion, "InitConfiguration"},
			BootstrapTokens: []bootstrapToken{{
				Token:       in.BootstrapToken,
				Description: "mixedk8s: joins the nodes of cluster " + cfg.Cluster.Name,
				TTL:         ttl.String(),
				Usages:      []string{"authentication", "signing"},
				Groups:      []string{"system:bootstrappers:kubeadm:default-node-token"},
			}},
			NodeRegistration: c.nodeRegistration(),
			LocalAPIEndpoint: local,
			CertificateKey:   in.CertificateKey,
		},
		clusterConfiguration{
			typeMeta:             typeMeta{kubeadmAPIVersion, "ClusterConfiguration"},
			ClusterName:          cfg.Cluster.Name,
			KubernetesVersion:    "v" + cfg.Cluster.KubernetesVersion,
			ControlPlaneEndpoint: cfg.Cluster.APIEndpoint,
			Networking: networking{
				ServiceSubnet: cfg.Cluster.ServiceCIDR,
				PodSubnet:     cfg.Cluster.PodCIDR,
				DNSDomain:     c.dnsDomain,
			},
			APIServer:       apiServer{CertSANs: sans},
			CertificatesDir: "/etc/kubernetes/pki",
		},
		kubeletConfiguration{
			typeMeta:                 typeMeta{kubeletAPIVersion, "KubeletConfiguration"},
			Authentication:           kubeletAuthn(LinuxCAFile),
			Authorization:            kubeletAuthorization{Mode: "Webhook"},
			CgroupDriver:             "systemd",
			ClusterDNS:               []string{c.dnsIP},
			ClusterDomain:            c.dnsDomain,
			ContainerRuntimeEndpoint: LinuxCRISocket,
			RotateCertificates:       true,
		},
		kubeProxyConfiguration{
			typeMeta:    typeMeta{kubeProxyAPIVersion, "KubeProxyConfiguration"},
			ClusterCIDR: cfg.Cluster.PodCIDR,
			Mode:        "iptables",
		},
	}
	return marshalDocs(docs...)
}

// JoinConfig renders the kubeadm join configuration of a Linux worker
// (contract.RoleWorker) or of a further control-plane node
// (contract.RoleControlPlane, which adds the controlPlane section).
func JoinConfig(cfg contract.Config) ([]byte, error) {
	c, err := common(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Node.OS != "linux" {
		return nil, fmt.Errorf("node.os is %q: only Linux nodes join with kubeadm; fix: render WindowsKubeletConfig, WindowsKubeProxyConfig and BootstrapKubeconfig for Windows nodes", cfg.Node.OS)
	}
	if cfg.Node.Role != contract.RoleWorker && cfg.Node.Role != contract.RoleControlPlane {
		return nil, fmt.Errorf("node.role is %q: kubeadm join configuration is for %q and %q; fix: render InitConfig for %q", cfg.Node.Role, contract.RoleWorker, contract.RoleControlPlane, contract.RoleInit)
	}
	j, err := checkJoin(cfg)
	if err != nil {
		return nil, err
	}
	doc := joinConfiguration{
		typeMeta:         typeMeta{kubeadmAPIVersion, "JoinConfiguration"},
		NodeRegistration: c.nodeRegistration(),
		Discovery: discovery{BootstrapToken: &bootstrapTokenDiscovery{
			Token:             j.BootstrapToken,
			APIServerEndpoint: cfg.Cluster.APIEndpoint,
			CACertHashes:      slices.Clone(j.CACertHashes),
		}},
	}
	if cfg.Node.Role == contract.RoleControlPlane {
		if j.CertificateKey == "" {
			return nil, fmt.Errorf("join.certificateKey is empty: a %q node needs it to fetch the control-plane certificates; fix: pass the key the init node uploaded the certificates with", contract.RoleControlPlane)
		}
		if err := checkCertificateKey("join.certificateKey", j.CertificateKey); err != nil {
			return nil, err
		}
		local, err := c.localEndpoint()
		if err != nil {
			return nil, err
		}
		doc.ControlPlane = &joinControlPlane{LocalAPIEndpoint: local, CertificateKey: j.CertificateKey}
	}
	return marshalDocs(doc)
}

// WindowsKubeletConfig renders the KubeletConfiguration of a Windows node.
// Settings the kubelet takes only as flags (--hostname-override, --node-ip,
// --node-labels, --windows-service, the kubeconfig and certificate paths)
// are the caller's; the node's taints are registered from here.
func WindowsKubeletConfig(cfg contract.Config) ([]byte, error) {
	c, err := common(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkWindowsWorker(cfg); err != nil {
		return nil, err
	}
	j, err := checkJoin(cfg)
	if err != nil {
		return nil, err
	}
	// The kubelet authenticates clients against WindowsCAFile, which the
	// caller writes from join.caCertPEM.
	if err := checkCAPin(j.CACertPEM, j.CACertHashes); err != nil {
		return nil, err
	}
	none := []string{}
	empty := ""
	doc := kubeletConfiguration{
		typeMeta:       typeMeta{kubeletAPIVersion, "KubeletConfiguration"},
		Authentication: kubeletAuthn(WindowsCAFile),
		Authorization:  kubeletAuthorization{Mode: "Webhook"},
		// Windows has no cgroups: no QoS hierarchy, nothing to enforce.
		CgroupsPerQOS:            new(false),
		ClusterDNS:               []string{c.dnsIP},
		ClusterDomain:            c.dnsDomain,
		ContainerRuntimeEndpoint: WindowsCRIEndpoint,
		EnableDebuggingHandlers:  new(true),
		EnforceNodeAllocatable:   &none,
		RegisterWithTaints:       c.taints,
		ResolverConfig:           &empty,
		RotateCertificates:       true,
	}
	return marshalDocs(doc)
}

// WindowsKubeProxyConfig renders the KubeProxyConfiguration of a Windows
// node: kernelspace mode on the HNS network networkName. sourceVIP is the
// node's source VIP on an overlay (VXLAN) network; empty for l2bridge
// (host-gw, BGP) networks.
func WindowsKubeProxyConfig(cfg contract.Config, networkName, sourceVIP string) ([]byte, error) {
	c, err := common(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkWindowsWorker(cfg); err != nil {
		return nil, err
	}
	if strings.TrimSpace(networkName) == "" {
		return nil, fmt.Errorf("kube-proxy network name is empty: kernelspace mode needs the HNS network of the CNI; fix: pass the network's name (e.g. \"flannel.4096\" or \"Calico\")")
	}
	if sourceVIP != "" {
		if _, err := netip.ParseAddr(sourceVIP); err != nil {
			return nil, fmt.Errorf("kube-proxy source VIP %q is not an IP address; fix: pass the address of the node's source VIP endpoint on the overlay network, or \"\" for l2bridge", sourceVIP)
		}
	}
	doc := kubeProxyConfiguration{
		typeMeta:         typeMeta{kubeProxyAPIVersion, "KubeProxyConfiguration"},
		ClientConnection: &clientConnection{Kubeconfig: WindowsKubeletKubeconfig},
		ClusterCIDR:      cfg.Cluster.PodCIDR,
		HostnameOverride: cfg.Node.Name,
		Mode:             "kernelspace",
		Winkernel: &winkernel{
			NetworkName: networkName,
			SourceVip:   sourceVIP,
			// Direct server return: on by default from 1.33 (WinDSR beta),
			// GA and locked from 1.34; off before, where it needed the gate.
			EnableDSR: c.minor >= 33,
		},
		WindowsRunAsService: true,
	}
	return marshalDocs(doc)
}

// BootstrapKubeconfig renders the kubeconfig a Windows kubelet uses for its
// TLS bootstrap: the bootstrap token as credential, the cluster CA as trust
// root, https://<cluster.apiEndpoint> as server.
func BootstrapKubeconfig(cfg contract.Config) ([]byte, error) {
	if err := checkAPIEndpoint(cfg.Cluster.APIEndpoint); err != nil {
		return nil, err
	}
	j, err := checkJoin(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkCAPin(j.CACertPEM, j.CACertHashes); err != nil {
		return nil, err
	}
	name := cfg.Cluster.Name
	if name == "" {
		name = "kubernetes"
	}
	const user = "tls-bootstrap-token-user"
	ctx := user + "@" + name
	doc := kubeconfig{
		typeMeta: typeMeta{kubeconfigAPIVersion, "Config"},
		Clusters: []namedCluster{{Name: name, Cluster: kubeconfigCert{
			Server:                   "https://" + cfg.Cluster.APIEndpoint,
			CertificateAuthorityData: base64.StdEncoding.EncodeToString([]byte(j.CACertPEM)),
		}}},
		Users:          []namedUser{{Name: user, User: kubeconfigUser{Token: j.BootstrapToken}}},
		Contexts:       []namedContext{{Name: ctx, Context: kubeconfigContext{Cluster: name, User: user}}},
		CurrentContext: ctx,
		Preferences:    map[string]bool{},
	}
	return marshalDocs(doc)
}

// FlanneldKubeconfig is flanneld's kubeconfig on a Windows node: the real
// API endpoint (the kubernetes Service IP is unreachable until flannel's own
// network exists) and the kubelet's client certificate, which the kubelet
// rotates in place (certFile holds certificate and key, as the kubelet's
// TLS bootstrap writes kubelet-client-current.pem).
func FlanneldKubeconfig(cfg contract.Config, certFile string) ([]byte, error) {
	if err := checkAPIEndpoint(cfg.Cluster.APIEndpoint); err != nil {
		return nil, err
	}
	name := cfg.Cluster.Name
	if name == "" {
		name = "kubernetes"
	}
	user := "system:node:" + cfg.Node.Name
	doc := kubeconfig{
		typeMeta: typeMeta{kubeconfigAPIVersion, "Config"},
		Clusters: []namedCluster{{Name: name, Cluster: kubeconfigCert{
			Server:                   "https://" + cfg.Cluster.APIEndpoint,
			CertificateAuthorityData: base64.StdEncoding.EncodeToString([]byte(cfg.Join.CACertPEM)),
		}}},
		Users:          []namedUser{{Name: user, User: kubeconfigUser{ClientCertificate: certFile, ClientKey: certFile}}},
		Contexts:       []namedContext{{Name: "flanneld@" + name, Context: kubeconfigContext{Cluster: name, User: user}}},
		CurrentContext: "flanneld@" + name,
		Preferences:    map[string]bool{},
	}
	return marshalDocs(doc)
}

// NodeLabels returns the node's labels, with contract.LabelPool set to its
// pool when it has one, as the kubelet's --node-labels value ("k1=v1,k2=v2",
// sorted by key), or "" when there are none. It rejects labels the kubelet
// may not set on its own Node.
func NodeLabels(cfg contract.Config) (string, error) {
	labels := maps.Clone(cfg.Node.Labels)
	if cfg.Node.Pool != "" {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[contract.LabelPool] = cfg.Node.Pool
	}
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := labels[k]
		if err := checkLabel(k, v); err != nil {
			return "", err
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ","), nil
}

// rendered holds what common derives from a Config for every renderer.
type rendered struct {
	cfg       contract.Config
	minor     int
	dnsIP     string
	dnsDomain string
	labels    string
	taints    []taint
}

// common checks the node and cluster fields every renderer needs.
func common(cfg contract.Config) (*rendered, error) {
	if cfg.APIVersion != "" && cfg.APIVersion != contract.APIVersion {
		return nil, fmt.Errorf("apiVersion %q is not %q; fix: update the agent or the provisioner so both speak the same contract", cfg.APIVersion, contract.APIVersion)
	}
	n := cfg.Node
	if n.Name == "" {
		return nil, fmt.Errorf("node.name is empty; fix: set the node's Kubernetes name")
	}
	if !dns1123Subdomain.MatchString(n.Name) || len(n.Name) > 253 {
		return nil, fmt.Errorf("node.name %q is not a valid node name; fix: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", n.Name)
	}
	if cn := cmp.Or(n.ComputerName, n.Name); n.OS == "windows" && !netbiosName.MatchString(cn) {
		return nil, fmt.Errorf("node.computerName %q is not a Windows computer name (1-15 letters, digits and '-'); fix: set node.computerName to the node's short name", cn)
	}
	if n.OS != "linux" && n.OS != "windows" {
		return nil, fmt.Errorf("node.os is %q; fix: set it to \"linux\" or \"windows\"", n.OS)
	}
	if n.PrivateIP != "" {
		if _, err := netip.ParseAddr(n.PrivateIP); err != nil {
			return nil, fmt.Errorf("node.privateIP %q is not an IP address; fix: set the node's private address", n.PrivateIP)
		}
	}
	cl := cfg.Cluster
	minor, err := checkVersion(cl.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	if err := checkAPIEndpoint(cl.APIEndpoint); err != nil {
		return nil, err
	}
	if err := checkCIDRs("cluster.podCIDR", cl.PodCIDR); err != nil {
		return nil, err
	}
	if err := checkCIDRs("cluster.serviceCIDR", cl.ServiceCIDR); err != nil {
		return nil, err
	}
	dnsIP, err := clusterDNSIP(cl.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	domain := cl.DNSDomain
	if domain == "" {
		domain = defaultDNSDomain
	}
	if !dns1123Subdomain.MatchString(domain) {
		return nil, fmt.Errorf("cluster.dnsDomain %q is not a DNS domain; fix: use e.g. \"cluster.local\"", domain)
	}
	labels, err := NodeLabels(cfg)
	if err != nil {
		return nil, err
	}
	taints, err := parseTaints(n.Taints)
	if err != nil {
		return nil, err
	}
	return &rendered{cfg: cfg, minor: minor, dnsIP: dnsIP, dnsDomain: domain, labels: labels, taints: taints}, nil
}

// nodeRegistration is kubeadm's per-node part: name, CRI socket, taints
// (control-plane nodes always carry the control-plane NoSchedule taint unless
// node.taints has one for that key) and kubelet flags.
func (r *rendered) nodeRegistration() nodeRegistrationOptions {
	taints := []taint{}
	if r.cfg.Node.Role == contract.RoleInit || r.cfg.Node.Role == contract.RoleControlPlane {
		if !slices.ContainsFunc(r.taints, func(t taint) bool { return t.Key == controlPlaneTaint }) {
			taints = append(taints, taint{Key: controlPlaneTaint, Effect: "NoSchedule"})
		}
	}
	taints = append(taints, r.taints...)
	var args []arg
	if r.cfg.Node.PrivateIP != "" {
		args = append(args, arg{Name: "node-ip", Value: r.cfg.Node.PrivateIP})
	}
	if r.labels != "" {
		args = append(args, arg{Name: "node-labels", Value: r.labels})
	}
	return nodeRegistrationOptions{
		Name:             r.cfg.Node.Name,
		CRISocket:        LinuxCRISocket,
		Taints:           taints,
		KubeletExtraArgs: args,
	}
}

// localEndpoint is the API server's advertise address and port on this
// node. The port is 6443 unless cluster.apiEndpoint is this node itself.
func (r *rendered) localEndpoint() (apiEndpoint, error) {
	ip := r.cfg.Node.PrivateIP
	if ip == "" {
		return apiEndpoint{}, fmt.Errorf("node.privateIP is empty: a control-plane node advertises the API server on it; fix: set the node's private address")
	}
	port := int32(defaultAPIServerPort)
	host, p, _ := net.SplitHostPort(r.cfg.Cluster.APIEndpoint)
	if a, err := netip.ParseAddr(host); err == nil && a == netip.MustParseAddr(ip) {
		n, _ := strconv.Atoi(p)
		port = int32(n)
	}
	return apiEndpoint{AdvertiseAddress: ip, BindPort: port}, nil
}

func checkWindowsWorker(cfg contract.Config) error {
	if cfg.Node.OS != "windows" {
		return fmt.Errorf("node.os is %q: this configuration is for Windows nodes; fix: render InitConfig or JoinConfig for Linux nodes", cfg.Node.OS)
	}
	if cfg.Node.Role != contract.RoleWorker {
		return fmt.Errorf("node.role is %q: Windows nodes are workers only; fix: set node.role to %q", cfg.Node.Role, contract.RoleWorker)
	}
	return nil
}

// checkJoin checks what every joining node needs: the bootstrap token and
// the CA pins.
func checkJoin(cfg contract.Config) (*contract.Join, error) {
	j := cfg.Join
	if j == nil {
		return nil, fmt.Errorf("join is missing: a %q node needs it; fix: set join (bootstrap token, CA hashes) in the agent config", cfg.Node.Role)
	}
	if err := checkToken("join.bootstrapToken", j.BootstrapToken); err != nil {
		return nil, err
	}
	if len(j.CACertHashes) == 0 {
		return nil, fmt.Errorf("join.caCertHashes is empty: the node could not authenticate the API server; fix: set it to [\"sha256:<hex of the CA's public key>\"]")
	}
	for i, h := range j.CACertHashes {
		if !caCertHash.MatchString(h) {
			return nil, fmt.Errorf("join.caCertHashes[%d] %q is not \"sha256:<64 hex digits>\"; fix: use the SHA-256 of the CA certificate's SubjectPublicKeyInfo, as kubeadm prints it", i, h)
		}
	}
	return j, nil
}

var (
	bootstrapTokenRE = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	caCertHash       = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// netbiosName: a Windows computer name whole, as NetBIOS keeps only 15
	// characters (https://learn.microsoft.com/windows/win32/sysinfo/computer-names).
	netbiosName  = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9]{0,14}$`)
	versionRE    = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$`)
	labelNameRE  = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelValueRE = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
)

// checkToken never puts the token into the error: it is a secret.
func checkToken(field, token string) error {
	if token == "" {
		return fmt.Errorf("%s is empty; fix: set a bootstrap token of the form \"abcdef.0123456789abcdef\"", field)
	}
	if !bootstrapTokenRE.MatchString(token) {
		return fmt.Errorf("%s is not of the form [a-z0-9]{6}.[a-z0-9]{16}; fix: generate it as kubeadm does (6 and 16 lower-case letters and digits)", field)
	}
	return nil
}

// checkCertificateKey never puts the key into the error: it is a secret.
func checkCertificateKey(field, key string) error {
	b, err := hex.DecodeString(key)
	if err != nil || len(b) != 32 {
		return fmt.Errorf("%s is not 32 bytes in hex (64 hex digits); fix: generate it as `kubeadm certs certificate-key` does", field)
	}
	return nil
}

// checkCAPin checks that caPEM is one certificate whose public key matches
// one of the pins, so a node never trusts a CA the provisioner did not pin.
// CACertHash is a CA pin as kubeadm writes it (--discovery-token-ca-cert-hash):
// "sha256:" and the hex SHA-256 of the certificate's SubjectPublicKeyInfo.
func CACertHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func checkCAPin(caPEM string, pins []string) error {
	if strings.TrimSpace(caPEM) == "" {
		return fmt.Errorf("join.caCertPEM is empty: a node joining without kubeadm needs the cluster CA; fix: set it to the PEM of the cluster CA certificate")
	}
	block, rest := pem.Decode([]byte(caPEM))
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return fmt.Errorf("join.caCertPEM is not one PEM certificate; fix: set it to the cluster CA certificate (-----BEGIN CERTIFICATE-----)")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("join.caCertPEM does not parse as an X.509 certificate (%v); fix: set it to the cluster CA certificate", err)
	}
	got := CACertHash(cert)
	if !slices.Contains(pins, got) {
		return fmt.Errorf("join.caCertPEM has public key hash %s, which is not in join.caCertHashes; fix: send the CA the hashes were computed from", got)
	}
	return nil
}

func checkVersion(v string) (minor int, err error) {
	if v == "" {
		return 0, fmt.Errorf("cluster.kubernetesVersion is empty; fix: set it, e.g. \"1.36.3\"")
	}
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("cluster.kubernetesVersion %q is not MAJOR.MINOR.PATCH; fix: write it without a leading \"v\", e.g. \"1.36.3\"", v)
	}
	minor, _ = strconv.Atoi(m[2])
	return minor, nil
}

func checkAPIEndpoint(ep string) error {
	if ep == "" {
		return fmt.Errorf("cluster.apiEndpoint is empty; fix: set it to host:port of the API server (load balancer or first control-plane node)")
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil || host == "" || strings.Contains(ep, "://") {
		return fmt.Errorf("cluster.apiEndpoint %q is not host:port; fix: set it like \"10.0.0.10:6443\", without a scheme", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("cluster.apiEndpoint %q has port %q; fix: use a port between 1 and 65535", ep, port)
	}
	return nil
}

// checkCIDRs accepts one CIDR or a dual-stack pair "v4,v6".
func checkCIDRs(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty; fix: set it, e.g. \"10.244.0.0/16\"", field)
	}
	for c := range strings.SplitSeq(s, ",") {
		if _, err := netip.ParsePrefix(strings.TrimSpace(c)); err != nil {
			return fmt.Errorf("%s %q is not a CIDR; fix: set it like \"10.96.0.0/12\" (or a dual-stack pair \"v4/n,v6/n\")", field, s)
		}
	}
	return nil
}

// clusterDNSIP is the 10th address of the first service CIDR, where kubeadm
// puts the cluster DNS service.
func clusterDNSIP(serviceCIDR string) (string, error) {
	first, _, _ := strings.Cut(serviceCIDR, ",")
	p := netip.MustParsePrefix(strings.TrimSpace(first)).Masked()
	if p.Addr().BitLen()-p.Bits() < 4 {
		return "", fmt.Errorf("cluster.serviceCIDR %q is too small to hold the DNS service at its 10th address; fix: use a larger range, e.g. /12 to /24", serviceCIDR)
	}
	a := p.Addr()
	for range 10 {
		a = a.Next()
	}
	return a.String(), nil
}

// certSANs dedups and sorts the API server certificate's extra names.
func certSANs(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for i, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("init.apiServerSANs[%d] is empty; fix: remove it or set a DNS name or IP address", i)
		}
		if _, err := netip.ParseAddr(s); err != nil && !dns1123Subdomain.MatchString(strings.TrimPrefix(strings.ToLower(s), "*.")) {
			return nil, fmt.Errorf("init.apiServerSANs[%d] %q is neither an IP address nor a DNS name; fix: correct or remove it", i, s)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// parseTaints reads "key=value:Effect" and "key:Effect".
func parseTaints(in []string) ([]taint, error) {
	var out []taint
	for i, s := range in {
		kv, effect, ok := strings.Cut(s, ":")
		key, value, _ := strings.Cut(kv, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("node.taints[%d] %q has no effect; fix: write \"key=value:Effect\" or \"key:Effect\"", i, s)
		case effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute":
			return nil, fmt.Errorf("node.taints[%d] %q has effect %q; fix: use NoSchedule, PreferNoSchedule or NoExecute", i, s, effect)
		case !qualifiedName(key):
			return nil, fmt.Errorf("node.taints[%d] %q has an invalid key %q; fix: use a label-style key such as \"example.com/dedicated\"", i, s, key)
		case !labelValueRE.MatchString(value) || len(value) > 63:
			return nil, fmt.Errorf("node.taints[%d] %q has an invalid value %q; fix: use at most 63 letters, digits, '-', '_' and '.'", i, s, value)
		}
		out = append(out, taint{Key: key, Value: value, Effect: effect})
	}
	return out, nil
}

// qualifiedName is a label key: an optional DNS subdomain prefix and "/",
// then a name of at most 63 characters.
func qualifiedName(k string) bool {
	name := k
	if prefix, n, found := strings.Cut(k, "/"); found {
		if prefix == "" || len(prefix) > 253 || !dns1123Subdomain.MatchString(prefix) {
			return false
		}
		name = n
	}
	return len(name) <= 63 && labelNameRE.MatchString(name)
}

// kubeletSelfLabels are the kubernetes.io labels a kubelet may set on its own
// Node (k8s.io/kubelet pkg/apis IsKubeletLabel); any other label in the
// kubernetes.io or k8s.io namespaces makes the kubelet refuse to start.
var kubeletSelfLabels = []string{
	"beta.kubernetes.io/arch",
	"beta.kubernetes.io/instance-type",
	"beta.kubernetes.io/os",
	"failure-domain.beta.kubernetes.io/region",
	"failure-domain.beta.kubernetes.io/zone",
	"kubernetes.io/arch",
	"kubernetes.io/hostname",
	"kubernetes.io/os",
	"node.kubernetes.io/instance-type",
	"topology.kubernetes.io/region",
	"topology.kubernetes.io/zone",
}

func checkLabel(k, v string) error {
	if !qualifiedName(k) {
		return fmt.Errorf("node.labels[%q] has an invalid key; fix: use an optional DNS prefix and \"/\", then at most 63 letters, digits, '-', '_' and '.'", k)
	}
	if !labelValueRE.MatchString(v) || len(v) > 63 {
		return fmt.Errorf("node.labels[%q] has an invalid value %q; fix: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", k, v)
	}
	ns, _, found := strings.Cut(k, "/")
	if !found {
		return nil
	}
	inK8s := func(n, d string) bool { return n == d || strings.HasSuffix(n, "."+d) }
	if !inK8s(ns, "kubernetes.io") && !inK8s(ns, "k8s.io") {
		return nil
	}
	if slices.Contains(kubeletSelfLabels, k) || inK8s(ns, "kubelet.kubernetes.io") || inK8s(ns, "node.kubernetes.io") {
		return nil
	}
	return fmt.Errorf("node.labels[%q]: the kubelet may not set this kubernetes.io/k8s.io label on its own node and would not start; fix: use a node.kubernetes.io/ or your own prefix, or set the label through the API after the node joined", k)
}

func kubeletAuthn(caFile string) kubeletAuthentication {
	return kubeletAuthentication{
		X509:      kubeletX509Authentication{ClientCAFile: caFile},
		Webhook:   kubeletWebhookAuthentication{Enabled: new(true)},
		Anonymous: kubeletAnonymousAuthentication{Enabled: new(false)},
	}
}

// marshalDocs writes YAML documents separated by "---".
func marshalDocs(docs ...any) ([]byte, error) {
	var b bytes.Buffer
	for i, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("render %T: %w; fix: report this bug", d, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
