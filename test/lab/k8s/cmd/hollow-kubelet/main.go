// Command hollow-kubelet runs one lab node: the kubelet's own code, through
// k8s.io/kubernetes/pkg/kubemark, on a fake container runtime and a fake
// cAdvisor. It is what `kubemark --morph=kubelet` runs, with three changes
// the lab needs:
//
//   - Nothing listens off 127.0.0.1. The kubelet API binds 127.0.0.1:PORT
//     (kubemark hard-codes 0.0.0.0); the read-only port is off; the fake
//     runtime, pod-resources and pods sockets are Unix sockets under the
//     root folder.
//   - The kubelet API is what a real kubelet serves: HTTPS with a
//     self-signed certificate for the node name and 127.0.0.1, client
//     certificates checked against the cluster CA, and bearer tokens and
//     authorization checked with the API server (TokenReview,
//     SubjectAccessReview). kubemark serves plain HTTP to anyone.
//   - Every file lives under --root-dir and --cert-dir. kubemark's library
//     makes its root folder in /tmp whatever TMPDIR says; this command
//     removes that folder at once and uses --root-dir instead.
//
// The TLS bootstrap is the kubelet's own (pkg/kubelet/certificate/bootstrap):
// with --bootstrap-kubeconfig it creates a CertificateSigningRequest, waits
// for the signed certificate, and writes --kubeconfig pointing at it.
//
// SIGTERM or SIGINT stops the fake runtime, removes its socket and exits 0.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	fakeremote "k8s.io/cri-client/pkg/fake"
	"k8s.io/klog/v2"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	cadvisortest "k8s.io/kubernetes/pkg/kubelet/cadvisor/testing"
	"k8s.io/kubernetes/pkg/kubelet/certificate/bootstrap"
	"k8s.io/kubernetes/pkg/kubelet/cm"
	"k8s.io/kubernetes/pkg/kubemark"
	utilflag "k8s.io/kubernetes/pkg/util/flag"
)

// loopback is the only address this command listens on.
const loopback = "127.0.0.1"

// Files under --cert-dir besides the kubelet's client certificate.
const (
	servingCertFile = "kubelet.crt"
	servingKeyFile  = "kubelet.key"
	clientCAFile    = "ca.crt"
)

// unixPathMax is sun_path's size on Linux, terminating NUL included.
const unixPathMax = 108

type options struct {
	nodeName            string
	bootstrapKubeconfig string
	kubeconfig          string
	certDir             string
	rootDir             string
	runtimeEndpoint     string
	port                int
	maxPods             int
	labels              map[string]string
	taints              []v1.Taint
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "hollow-kubelet: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.ErrorS(err, "hollow-kubelet failed", "node", o.nodeName)
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func parseFlags(args []string) (*options, error) {
	o := &options{labels: map[string]string{}}
	fs := flag.NewFlagSet("hollow-kubelet", flag.ContinueOnError)
	fs.StringVar(&o.nodeName, "node-name", "", "the Node's name (required)")
	fs.StringVar(&o.bootstrapKubeconfig, "bootstrap-kubeconfig", "", "kubeconfig with a bootstrap token, used for the TLS bootstrap when --kubeconfig holds no valid client certificate")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "the kubelet's kubeconfig; the TLS bootstrap writes it (required)")
	fs.StringVar(&o.certDir, "cert-dir", "", "folder for the client certificate, the serving certificate and the cluster CA (required)")
	fs.StringVar(&o.rootDir, "root-dir", "", "the kubelet's root folder; also holds static-pods, pod-logs and the fake runtime's socket (required)")
	fs.StringVar(&o.runtimeEndpoint, "runtime-endpoint", "", "unix:// endpoint of the fake container runtime (default unix://<root-dir>/runtime.sock)")
	fs.IntVar(&o.port, "port", 0, "the kubelet API's port on 127.0.0.1; 0 picks a free one")
	fs.IntVar(&o.maxPods, "max-pods", 110, "the Node's pod capacity")
	fs.Var((*cliflag.ConfigurationMap)(&o.labels), "node-labels", "labels the Node registers with: k=v,k=v")
	fs.Var(utilflag.RegisterWithTaintsVar{Value: &o.taints}, "register-with-taints", "taints the Node registers with: key=value:Effect,key:Effect")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q; fix: pass flags only", fs.Args())
	}
	for name, v := range map[string]*string{"node-name": &o.nodeName, "kubeconfig": &o.kubeconfig, "cert-dir": &o.certDir, "root-dir": &o.rootDir} {
		if *v == "" {
			return nil, fmt.Errorf("--%s is required", name)
		}
	}
	for _, p := range []*string{&o.kubeconfig, &o.certDir, &o.rootDir, &o.bootstrapKubeconfig} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	if o.port < 0 || o.port > 65535 {
		return nil, fmt.Errorf("--port=%d: fix: use 0 (a free port) or 1-65535", o.port)
	}
	if o.maxPods < 1 {
		return nil, fmt.Errorf("--max-pods=%d: fix: use a positive number", o.maxPods)
	}
	if o.runtimeEndpoint == "" {
		o.runtimeEndpoint = "unix://" + filepath.Join(o.rootDir, "runtime.sock")
	}
	sock, ok := strings.CutPrefix(o.runtimeEndpoint, "unix://")
	if !ok || !filepath.IsAbs(sock) {
		return nil, fmt.Errorf("--runtime-endpoint=%s: fix: use unix:///absolute/path.sock", o.runtimeEndpoint)
	}
	// The fake runtime binds a temporary name (up to 10 digits) in the
	// socket's folder, then renames it; both must fit.
	if len(sock) >= unixPathMax || len(filepath.Dir(sock))+1+10 >= unixPathMax {
		return nil, fmt.Errorf("the runtime socket path %s is too long: a Unix socket path has at most %d bytes; fix: use a shorter --root-dir or --runtime-endpoint", sock, unixPathMax-1)
	}
	return o, nil
}

func run(ctx context.Context, o *options) error {
	logger := klog.FromContext(ctx)
	for _, d := range []string{o.certDir, o.rootDir, filepath.Join(o.rootDir, "static-pods"), filepath.Join(o.rootDir, "pod-logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if o.bootstrapKubeconfig != "" {
		if err := bootstrap.LoadClientCert(ctx, o.kubeconfig, o.bootstrapKubeconfig, o.certDir, types.NodeName(o.nodeName)); err != nil {
			return fmt.Errorf("TLS bootstrap with %s: %w", o.bootstrapKubeconfig, err)
		}
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("load the kubeconfig %s: %w", o.kubeconfig, err)
	}
	// As kubemark and the kubelet talk to the API server.
	restConfig.ContentType = "application/vnd.kubernetes.protobuf"
	restConfig.QPS, restConfig.Burst = 10, 20
	restConfig.UserAgent = "hollow-kubelet"

	if o.port == 0 {
		if o.port, err = freePort(); err != nil {
			return err
		}
	}
	f, c := kubemark.GetHollowKubeletConfig(&kubemark.HollowKubeletOptions{
		NodeName:           o.nodeName,
		KubeletPort:        o.port,
		MaxPods:            o.maxPods,
		NodeLabels:         o.labels,
		RegisterWithTaints: o.taints,
	})
	// GetHollowKubeletConfig made its root folder (with static-pods and
	// pod-logs in it) under /tmp; nothing has used it yet.
	if err := os.RemoveAll(f.RootDirectory); err != nil {
		return fmt.Errorf("remove kubemark's root folder %s: %w", f.RootDirectory, err)
	}
	f.RootDirectory = o.rootDir
	f.CertDirectory = o.certDir
	c.StaticPodPath = filepath.Join(o.rootDir, "static-pods")
	c.PodLogsDir = filepath.Join(o.rootDir, "pod-logs")
	c.Address = loopback
	c.ReadOnlyPort = 0
	// RunKubelet serves no healthz port; pin it to loopback anyway.
	c.HealthzBindAddress, c.HealthzPort = loopback, 0
	c.TLSCertFile = filepath.Join(o.certDir, servingCertFile)
	c.TLSPrivateKeyFile = filepath.Join(o.certDir, servingKeyFile)
	// The kubelet's command-line defaults are anonymous and AlwaysAllow; a
	// configuration file's, which kubeadm writes, are these.
	c.Authentication.Anonymous.Enabled = false
	c.Authentication.Webhook.Enabled = true
	c.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeWebhook
	c.Authentication.X509.ClientCAFile = filepath.Join(o.certDir, clientCAFile)
	if err := writeClientCA(restConfig.CAData, restConfig.CAFile, c.Authentication.X509.ClientCAFile); err != nil {
		return err
	}
	if err := ensureServingCert(o.nodeName, c.TLSCertFile, c.TLSPrivateKeyFile); err != nil {
		return err
	}
	tlsOptions, err := kubeletapp.InitializeTLS(ctx, f, c)
	if err != nil {
		return fmt.Errorf("kubelet serving TLS: %w", err)
	}

	client, err := clientset.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	// The node's heartbeats: unthrottled, and timing out before the lease
	// would expire, as in kubemark and the kubelet.
	hb := *restConfig
	hb.QPS = -1
	hb.Timeout = min(c.NodeStatusUpdateFrequency.Duration, time.Duration(c.NodeLeaseDurationSeconds)*time.Second)
	heartbeat, err := clientset.NewForConfig(&hb)
	if err != nil {
		return fmt.Errorf("API heartbeat client: %w", err)
	}

	fake := fakeremote.NewFakeRemoteRuntime()
	if err := fake.Start(o.runtimeEndpoint); err != nil {
		return fmt.Errorf("start the fake container runtime: %w", err)
	}
	sock := strings.TrimPrefix(o.runtimeEndpoint, "unix://")
	defer func() {
		fake.Stop()
		_ = os.Remove(sock)
	}()
	runtimeService, err := remoteRuntime(ctx, o.runtimeEndpoint)
	if err != nil {
		return fmt.Errorf("connect to the fake container runtime: %w", err)
	}

	hk := kubemark.NewHollowKubelet(f, c, client, heartbeat,
		&cadvisortest.Fake{NodeName: o.nodeName},
		fake.ImageService, // no containerd in the lab: fake images too
		runtimeService,
		cm.NewStubContainerManager())
	hk.KubeletDeps.TLSOptions = tlsOptions
	// What the kubelet's own run() does when Auth is unset; RunKubelet,
	// which HollowKubelet.Run calls, does not.
	auth, runCAReload, err := kubeletapp.BuildAuth(types.NodeName(o.nodeName), client, *c)
	if err != nil {
		return fmt.Errorf("kubelet API authentication: %w", err)
	}
	runCAReload(ctx.Done())
	hk.KubeletDeps.Auth = auth

	logger.Info("Starting hollow kubelet", "node", o.nodeName, "api", fmt.Sprintf("https://%s", net.JoinHostPort(loopback, fmt.Sprint(o.port))), "rootDir", o.rootDir, "runtime", o.runtimeEndpoint)
	// Run blocks for good (and exits the process if the kubelet cannot start).
	go hk.Run(ctx)
	<-ctx.Done()
	logger.Info("Stopping hollow kubelet", "node", o.nodeName)
	return nil
}

// writeClientCA writes the cluster CA from the kubeconfig to path: the
// kubelet API accepts client certificates it signed (the API server's
// apiserver-kubelet-client, an admin's).
func writeClientCA(data []byte, file, path string) error {
	if len(data) == 0 && file != "" {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return fmt.Errorf("read the cluster CA: %w", err)
		}
	}
	if len(data) == 0 {
		return errors.New("the kubeconfig names no cluster CA; fix: give the bootstrap kubeconfig certificate-authority-data")
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write the cluster CA: %w", err)
	}
	return nil
}

// ensureServingCert makes a self-signed ECDSA serving certificate for the
// node name and 127.0.0.1, unless a readable pair is there from an earlier
// start. A real kubelet does the same for its hostname when it has no
// --tls-cert-file and no serving certificate bootstrap.
func ensureServingCert(nodeName, certPath, keyPath string) error {
	if _, err := os.Stat(certPath); err == nil {
		if _, err := os.Stat(keyPath); err == nil {
			return nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeName + "@" + fmt.Sprint(now.Unix())},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{nodeName},
		IPAddresses:  []net.IP{net.ParseIP(loopback)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("make the serving certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return fmt.Errorf("write the serving key: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write the serving certificate: %w", err)
	}
	return nil
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", loopback, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
