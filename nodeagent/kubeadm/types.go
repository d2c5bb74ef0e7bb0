package kubeadm

// Minimal local copies of the published configuration APIs, with their exact
// field names, holding only the fields this package sets. Renderers marshal
// them with sigs.k8s.io/yaml, which goes through JSON and writes every
// mapping's keys sorted, so the output does not depend on map order.
//
// Sources of the field names:
//   - kubeadm.k8s.io/v1beta4: k8s.io/kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go
//     and k8s.io/cluster-bootstrap token/api/v1 (BootstrapToken)
//   - kubelet.config.k8s.io/v1beta1: k8s.io/kubelet config/v1beta1/types.go
//   - kubeproxy.config.k8s.io/v1alpha1: k8s.io/kube-proxy config/v1alpha1/types.go
//   - kubeconfig v1: k8s.io/client-go tools/clientcmd/api/v1/types.go

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

const (
	kubeadmAPIVersion    = "kubeadm.k8s.io/v1beta4"
	kubeletAPIVersion    = "kubelet.config.k8s.io/v1beta1"
	kubeProxyAPIVersion  = "kubeproxy.config.k8s.io/v1alpha1"
	kubeconfigAPIVersion = "v1"
)

// --- kubeadm.k8s.io/v1beta4 ---

type initConfiguration struct {
	typeMeta         `json:",inline"`
	BootstrapTokens  []bootstrapToken        `json:"bootstrapTokens,omitempty"`
	NodeRegistration nodeRegistrationOptions `json:"nodeRegistration"`
	LocalAPIEndpoint apiEndpoint             `json:"localAPIEndpoint"`
	CertificateKey   string                  `json:"certificateKey,omitempty"`
}

type bootstrapToken struct {
	Token       string   `json:"token"`
	Description string   `json:"description,omitempty"`
	TTL         string   `json:"ttl,omitempty"`
	Usages      []string `json:"usages,omitempty"`
	Groups      []string `json:"groups,omitempty"`
}

type nodeRegistrationOptions struct {
	Name      string  `json:"name,omitempty"`
	CRISocket string  `json:"criSocket,omitempty"`
	Taints    []taint `json:"taints"`
	// KubeletExtraArgs is a list in v1beta4 (a map until v1beta3).
	KubeletExtraArgs []arg `json:"kubeletExtraArgs,omitempty"`
}

type taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

type arg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type apiEndpoint struct {
	AdvertiseAddress string `json:"advertiseAddress,omitempty"`
	BindPort         int32  `json:"bindPort,omitempty"`
}

type clusterConfiguration struct {
	typeMeta             `json:",inline"`
	ClusterName          string     `json:"clusterName,omitempty"`
	KubernetesVersion    string     `json:"kubernetesVersion"`
	ControlPlaneEndpoint string     `json:"controlPlaneEndpoint"`
	Networking           networking `json:"networking"`
	APIServer            apiServer  `json:"apiServer"`
	CertificatesDir      string     `json:"certificatesDir,omitempty"`
}

type networking struct {
	ServiceSubnet string `json:"serviceSubnet"`
	PodSubnet     string `json:"podSubnet"`
	DNSDomain     string `json:"dnsDomain"`
}

type apiServer struct {
	CertSANs []string `json:"certSANs,omitempty"`
}

type joinConfiguration struct {
	typeMeta         `json:",inline"`
	NodeRegistration nodeRegistrationOptions `json:"nodeRegistration"`
	Discovery        discovery               `json:"discovery"`
	ControlPlane     *joinControlPlane       `json:"controlPlane,omitempty"`
}

type discovery struct {
	BootstrapToken *bootstrapTokenDiscovery `json:"bootstrapToken,omitempty"`
}

type bootstrapTokenDiscovery struct {
	Token             string   `json:"token"`
	APIServerEndpoint string   `json:"apiServerEndpoint"`
	CACertHashes      []string `json:"caCertHashes"`
}

type joinControlPlane struct {
	LocalAPIEndpoint apiEndpoint `json:"localAPIEndpoint"`
	CertificateKey   string      `json:"certificateKey"`
}

// --- kubelet.config.k8s.io/v1beta1 ---

type kubeletConfiguration struct {
	typeMeta                 `json:",inline"`
	Authentication           kubeletAuthentication `json:"authentication"`
	Authorization            kubeletAuthorization  `json:"authorization"`
	CgroupDriver             string                `json:"cgroupDriver,omitempty"`
	CgroupsPerQOS            *bool                 `json:"cgroupsPerQOS,omitempty"`
	ClusterDNS               []string              `json:"clusterDNS"`
	ClusterDomain            string                `json:"clusterDomain"`
	ContainerRuntimeEndpoint string                `json:"containerRuntimeEndpoint"`
	EnableDebuggingHandlers  *bool                 `json:"enableDebuggingHandlers,omitempty"`
	// EnforceNodeAllocatable: nil is left out (the kubelet defaults it to
	// ["pods"]); a pointer to an empty list writes [] and turns it off.
	EnforceNodeAllocatable *[]string `json:"enforceNodeAllocatable,omitempty"`
	RegisterWithTaints     []taint   `json:"registerWithTaints,omitempty"`
	// ResolverConfig: nil is left out (default /etc/resolv.conf); a pointer
	// to "" writes resolvConf: "" and turns it off.
	ResolverConfig     *string `json:"resolvConf,omitempty"`
	RotateCertificates bool    `json:"rotateCertificates"`
	ServerTLSBootstrap bool    `json:"serverTLSBootstrap"`
}

type kubeletAuthentication struct {
	X509      kubeletX509Authentication      `json:"x509"`
	Webhook   kubeletWebhookAuthentication   `json:"webhook"`
	Anonymous kubeletAnonymousAuthentication `json:"anonymous"`
}

type kubeletX509Authentication struct {
	ClientCAFile string `json:"clientCAFile"`
}

type kubeletWebhookAuthentication struct {
	Enabled *bool `json:"enabled"`
}

type kubeletAnonymousAuthentication struct {
	Enabled *bool `json:"enabled"`
}

type kubeletAuthorization struct {
	Mode string `json:"mode"`
}

// --- kubeproxy.config.k8s.io/v1alpha1 ---

type kubeProxyConfiguration struct {
	typeMeta            `json:",inline"`
	ClientConnection    *clientConnection `json:"clientConnection,omitempty"`
	ClusterCIDR         string            `json:"clusterCIDR"`
	HostnameOverride    string            `json:"hostnameOverride,omitempty"`
	Mode                string            `json:"mode"`
	Winkernel           *winkernel        `json:"winkernel,omitempty"`
	WindowsRunAsService bool              `json:"windowsRunAsService,omitempty"`
}

type clientConnection struct {
	Kubeconfig string `json:"kubeconfig"`
}

type winkernel struct {
	NetworkName string `json:"networkName"`
	SourceVip   string `json:"sourceVip,omitempty"`
	EnableDSR   bool   `json:"enableDSR"`
}

// --- kubeconfig v1 ---

type kubeconfig struct {
	typeMeta       `json:",inline"`
	Clusters       []namedCluster  `json:"clusters"`
	Users          []namedUser     `json:"users"`
	Contexts       []namedContext  `json:"contexts"`
	CurrentContext string          `json:"current-context"`
	Preferences    map[string]bool `json:"preferences"`
}

type namedCluster struct {
	Name    string         `json:"name"`
	Cluster kubeconfigCert `json:"cluster"`
}

type kubeconfigCert struct {
	Server                   string `json:"server"`
	CertificateAuthorityData string `json:"certificate-authority-data"`
}

type namedUser struct {
	Name string         `json:"name"`
	User kubeconfigUser `json:"user"`
}

type kubeconfigUser struct {
	Token             string `json:"token,omitempty"`
	ClientCertificate string `json:"client-certificate,omitempty"`
	ClientKey         string `json:"client-key,omitempty"`
}

type namedContext struct {
	Name    string            `json:"name"`
	Context kubeconfigContext `json:"context"`
}

type kubeconfigContext struct {
	Cluster string `json:"cluster"`
	User    string `json:"user"`
}
