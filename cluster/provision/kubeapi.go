package provision

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/internal/pki"
	"github.com/mixedk8s/mixedk8s/transport"
)

// How the provisioner talks to a cluster's API server.
const (
	apiPort = "6443"
	// apiRequestTimeout bounds one request; the provisioner polls and never watches.
	apiRequestTimeout = 30 * time.Second
	// apiDialTimeout bounds a direct TCP connect; through a bastion the SSH channel open bounds it.
	apiDialTimeout = 10 * time.Second
	// apiCertValidity is the life of the provisioner's client certificate,
	// issued again at half of it. It never leaves memory.
	apiCertValidity = 2 * time.Hour
	// apiUser is the name the API server's audit log shows for the provisioner.
	apiUser = "mixedk8s-provisioner"
	// fieldManager owns the fields the provisioner applies.
	fieldManager = "mixedk8s"
)

// errAPIUnreachable: nothing answered at the API server's address, or it is
// not serving yet. Waiting may change that; an answer (403, a certificate
// from another CA) waiting does not change is never wrapped in it.
var errAPIUnreachable = errors.New("the API server cannot be reached")

// errNotBootstrapped: the cluster has no CA in the secret store, so no
// control plane was ever made for it.
var errNotBootstrapped = errors.New("the cluster has no CA yet, so it was never bootstrapped")

// kubeAPI is the provisioner's client for one cluster's API server, reached
// the way its nodes are: through Config.Dial, the spec's bastion, or directly.
type kubeAPI struct {
	cs      kubernetes.Interface
	cluster string
	server  string // https://host:port
	via     string // what dials it, for errors
	hc      *http.Client
	renewAt time.Time
}

// close drops the client's idle connections; requests in flight finish.
func (k *kubeAPI) close() {
	if k.hc != nil {
		k.hc.CloseIdleConnections()
	}
}

// kube returns the cluster's API client, made on first use and kept per
// cluster, endpoint and bastion. The endpoint is the API load balancer; on
// a cloud without one, the first control-plane instance (instances nil
// means list them from the cloud).
func (p *Provisioner) kube(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (*kubeAPI, error) {
	lb, behindLB, err := p.loadBalancer(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	bastionAddr := ""
	if spec.Access.Bastion != nil {
		bastionAddr = spec.Access.Bastion.Address
	}
	viaJump, via := true, "the provisioner's dialer"
	switch {
	case p.cfg.Dial != nil:
	case bastionAddr != "":
		via = "the bastion " + bastionAddr
	default:
		viaJump, via = false, "this machine"
	}
	server := "https://" + lb
	if !behindLB {
		if instances == nil {
			if instances, err = p.cfg.Cloud.Instances(ctx, spec.Name); err != nil {
				return nil, fmt.Errorf("failed to list the instances of cluster %q: %w", spec.Name, err)
			}
		}
		cp0, err := firstControlPlane(spec, instances)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w; fix: apply the cluster so that its first control-plane node runs", spec.Name, err)
		}
		host := nodeAddress(cp0.Instance, viaJump)
		if host == "" {
			return nil, fmt.Errorf("the API server of cluster %q: its first control-plane node %s has no address yet: %w (%w)", spec.Name, cp0.Node.Name, errAPIUnreachable, transport.ErrNotReady)
		}
		server = "https://" + net.JoinHostPort(host, apiPort)
	}
	key := spec.Name + " " + server + " " + bastionAddr
	p.mu.Lock()
	k, ok := p.kubes[key]
	p.mu.Unlock()
	if ok && time.Now().Before(k.renewAt) {
		return k, nil
	}
	if p.testKube != nil {
		k = &kubeAPI{cs: p.testKube(spec.Name), cluster: spec.Name, server: server, via: via, renewAt: time.Now().Add(apiCertValidity / 2)}
	} else if k, err = p.newKube(ctx, spec, server, via); err != nil {
		return nil, err
	}
	p.mu.Lock()
	if old := p.kubes[key]; old != nil {
		old.close()
	}
	p.kubes[key] = k
	p.mu.Unlock()
	return k, nil
}

// newKube makes a client that trusts only the cluster CA and authenticates
// with a short-lived certificate the provisioner issues itself, in the
// group kubeadm binds to cluster-admin (as its admin.conf is).
func (p *Provisioner) newKube(ctx context.Context, spec cluster.Spec, server, via string) (*kubeAPI, error) {
	ca, ok, err := p.storedCA(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w; fix: apply it", spec.Name, errNotBootstrapped)
	}
	dial, err := p.dialer(ctx, spec)
	if err != nil {
		if errors.Is(err, transport.ErrIdentityMismatch) || errors.Is(err, transport.ErrAuth) {
			return nil, err
		}
		return nil, fmt.Errorf("failed to reach the API server of cluster %q at %s: %w (%w)", spec.Name, server, err, errAPIUnreachable)
	}
	if dial == nil {
		d := &net.Dialer{Timeout: apiDialTimeout, KeepAlive: 30 * time.Second}
		// Set even when direct: client-go keeps no process-wide transport for
		// a config with its own Dial, so Close releases every connection.
		dial = d.DialContext
	}
	now := time.Now()
	certPEM, keyPEM, err := ca.ClientCert(apiUser, []string{pki.AdminGroup}, apiCertValidity, now)
	if err != nil {
		return nil, err
	}
	cfg := &rest.Config{
		Host:            server,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM(), CertData: certPEM, KeyData: keyPEM},
		Dial:            dial,
		Timeout:         apiRequestTimeout,
		QPS:             20,
		Burst:           40,
		UserAgent:       apiUser,
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to make the API client of cluster %q: %w", spec.Name, err)
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		hc.CloseIdleConnections()
		return nil, fmt.Errorf("failed to make the API client of cluster %q: %w", spec.Name, err)
	}
	return &kubeAPI{cs: cs, cluster: spec.Name, server: server, via: via, hc: hc, renewAt: now.Add(apiCertValidity / 2)}, nil
}

// fail names the action, the cluster, the endpoint and the fix. An error
// that waiting may cure wraps errAPIUnreachable and transport.ErrNotReady,
// so Apply retries it and Status reads it as "not joined yet".
func (k *kubeAPI) fail(action string, err error) error {
	switch {
	case unreachable(err):
		return fmt.Errorf("failed to %s: the API server of cluster %q at %s (dialled by %s) cannot be reached: %w; fix: check that the first control-plane node runs and its kube-apiserver is up (`nodeagent diagnose` on it), and that %s can reach port %s on it (%w, %w)",
			action, k.cluster, k.server, k.via, err, k.via, apiPort, errAPIUnreachable, transport.ErrNotReady)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("failed to %s: the API server of cluster %q at %s refused the provisioner's client certificate: %w; fix: the cluster's CA in the cloud's secret store must be the CA its control plane was made with", action, k.cluster, k.server, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("failed to %s in cluster %q (%s): %w; fix: the group %s needs the ClusterRoleBinding kubeadm:cluster-admins to cluster-admin, which kubeadm init makes", action, k.cluster, k.server, err, pki.AdminGroup)
	case untrusted(err):
		return fmt.Errorf("failed to %s: the server at %s is not the API server of cluster %q (its certificate is not from the cluster's CA): %w; fix: check that the first control-plane instance's address is the cluster's API server", action, k.server, k.cluster, err)
	}
	return fmt.Errorf("failed to %s in cluster %q (%s): %w", action, k.cluster, k.server, err)
}

// unreachable reports whether err is no answer from the API server
// (refused, reset, timed out, no route through the bastion) or an answer
// that says it is not serving yet (429, 503, 504).
func unreachable(err error) bool {
	if err == nil || untrusted(err) || errors.Is(err, transport.ErrIdentityMismatch) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return apierrors.IsServiceUnavailable(err) || apierrors.IsTooManyRequests(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
	}
	return true
}

// untrusted reports whether the server's certificate did not verify.
func untrusted(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}
