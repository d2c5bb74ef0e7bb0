package lab

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
	"sigs.k8s.io/yaml"

	"github.com/mixedk8s/mixedk8s/nodeagent/kubeadm"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
)

// signatureWait bounds the wait for kube-controller-manager's bootstrapsigner
// to sign cluster-info for a token whose Secret exists: kubeadm's default
// discovery timeout. It signs a fresh token within about 5 s, later on a
// loaded machine; a token with no Secret fails at once.
const signatureWait = 5 * time.Minute

// joinDiscovery is the bootstrap-token discovery of a JoinConfiguration.
type joinDiscovery struct {
	endpoint string
	token    string
	pins     []string
}

func readDiscovery(jc map[string]any) (joinDiscovery, error) {
	d, _ := jc["discovery"].(map[string]any)
	bt, _ := d["bootstrapToken"].(map[string]any)
	if bt == nil {
		return joinDiscovery{}, errors.New("the JoinConfiguration has no discovery.bootstrapToken; the lab discovers with bootstrap tokens only")
	}
	out := joinDiscovery{}
	out.endpoint, _ = bt["apiServerEndpoint"].(string)
	out.token, _ = bt["token"].(string)
	hashes, _ := bt["caCertHashes"].([]any)
	for _, h := range hashes {
		if s, ok := h.(string); ok {
			out.pins = append(out.pins, s)
		}
	}
	return out, nil
}

// discover fetches cluster-info as an anonymous client would and checks
// it as kubeadm does: a JWS signature for the token's ID that verifies with
// its secret, and a CA whose public key matches a pin. It returns the CA.
func discover(ctx context.Context, cp *controlplane.ControlPlane, d joinDiscovery) ([]byte, error) {
	id, secret, ok := strings.Cut(d.token, ".")
	if !ok {
		return nil, errors.New("the bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}")
	}
	deadline := time.Now().Add(signatureWait)
	for {
		code, body, err := cp.Do(ctx, http.MethodGet, "/api/v1/namespaces/kube-public/configmaps/cluster-info", nil)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET cluster-info: HTTP %d", code)
		}
		var cm struct {
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(body, &cm); err != nil {
			return nil, fmt.Errorf("cluster-info does not parse: %w", err)
		}
		kc := cm.Data["kubeconfig"]
		sig, signed := cm.Data["jws-kubeconfig-"+id]
		if signed {
			if !jws.DetachedTokenIsValid(sig, kc, id, secret) {
				return nil, fmt.Errorf("failed to verify JWS signature of received cluster info object, can't trust this API Server")
			}
			_, caPEM, err := kubeconfigCluster([]byte(kc))
			if err != nil || len(caPEM) == 0 {
				return nil, errors.New("cluster-info holds no kubeconfig with a CA")
			}
			if err := checkPins(caPEM, d.pins); err != nil {
				return nil, err
			}
			return caPEM, nil
		}
		// A token with no signature is unknown or expired, or not signed yet.
		// The lab, unlike an anonymous client, can tell the first two at once.
		if err := checkToken(ctx, cp, d.token); err != nil {
			return nil, fmt.Errorf("could not find a JWS signature in the cluster-info ConfigMap for token ID %q; the token is unknown or has expired: %w", id, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("could not find a JWS signature in the cluster-info ConfigMap for token ID %q after %s; is kube-controller-manager's bootstrapsigner running?", id, signatureWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// kubeconfigCluster is the server and CA of a kubeconfig's first cluster.
func kubeconfigCluster(kc []byte) (server string, caPEM []byte, err error) {
	var c struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CA     []byte `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
	}
	if err := yaml.Unmarshal(kc, &c); err != nil || len(c.Clusters) == 0 {
		return "", nil, errors.New("it holds no cluster")
	}
	return c.Clusters[0].Cluster.Server, c.Clusters[0].Cluster.CA, nil
}

// checkPins compares the CA's public key with the sha256:<hex> pins.
func checkPins(caPEM []byte, pins []string) error {
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return errors.New("the cluster CA in cluster-info is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("the cluster CA in cluster-info does not parse: %w", err)
	}
	got := kubeadm.CACertHash(cert)
	if slices.Contains(pins, got) {
		return nil
	}
	return fmt.Errorf("cluster CA found in cluster-info ConfigMap is invalid: none of the public keys %q are pinned", got)
}

// tokenCheck asks the control plane, with a consistent read, whether the
// bootstrap kubeconfig's token is one its authenticator accepts: a 401 to a
// kubelet that starts moments after its token was created can come from the
// API server's Secret cache lagging behind, and a real kubelet retries.
func tokenCheck(cp *controlplane.ControlPlane, bootstrap []byte) func(context.Context) error {
	return func(ctx context.Context) error {
		var kc struct {
			Users []struct {
				User struct {
					Token string `json:"token"`
				} `json:"user"`
			} `json:"users"`
		}
		if err := yaml.Unmarshal(bootstrap, &kc); err != nil || len(kc.Users) == 0 {
			return errors.New("the bootstrap kubeconfig holds no user")
		}
		return checkToken(ctx, cp, kc.Users[0].User.Token)
	}
}

// checkToken reads the token's Secret as the bootstrap authenticator
// would, but consistently: nil means the token is good now.
func checkToken(ctx context.Context, cp *controlplane.ControlPlane, token string) error {
	id, secret, ok := strings.Cut(token, ".")
	if !ok {
		return errors.New("the bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}")
	}
	secretName := bootstrapapi.BootstrapTokenSecretPrefix + id
	name := "kube-system/" + secretName
	code, body, err := cp.Do(ctx, http.MethodGet, "/api/v1/namespaces/kube-system/secrets/"+secretName, nil)
	if err != nil {
		return err
	}
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return fmt.Errorf("the cluster has no Secret %s: the token was never issued, or was deleted", name)
	default:
		return fmt.Errorf("GET Secret %s: HTTP %d", name, code)
	}
	var sec struct {
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal(body, &sec); err != nil {
		return fmt.Errorf("the Secret %s does not parse: %w", name, err)
	}
	expiry := sec.Data[bootstrapapi.BootstrapTokenExpirationKey]
	exp, err := time.Parse(time.RFC3339, string(expiry))
	switch {
	case subtle.ConstantTimeCompare(sec.Data[bootstrapapi.BootstrapTokenSecretKey], []byte(secret)) != 1:
		return fmt.Errorf("the Secret %s holds another token-secret", name)
	case string(sec.Data[bootstrapapi.BootstrapTokenUsageAuthentication]) != "true":
		return fmt.Errorf("the Secret %s lacks usage-bootstrap-authentication", name)
	case len(expiry) > 0 && (err != nil || time.Now().After(exp)):
		return fmt.Errorf("the Secret %s has expired", name)
	}
	return nil
}

// bootstrapKubeconfig is what kubeadm writes to bootstrap-kubelet.conf.
func bootstrapKubeconfig(server string, caPEM []byte, token string) ([]byte, error) {
	kc := map[string]any{
		"apiVersion": "v1", "kind": "Config",
		"clusters":        []any{map[string]any{"name": "kubernetes", "cluster": map[string]any{"server": server, "certificate-authority-data": caPEM}}},
		"users":           []any{map[string]any{"name": "tls-bootstrap-token-user", "user": map[string]any{"token": token}}},
		"contexts":        []any{map[string]any{"name": "tls-bootstrap-token-user@kubernetes", "context": map[string]any{"cluster": "kubernetes", "user": "tls-bootstrap-token-user"}}},
		"current-context": "tls-bootstrap-token-user@kubernetes",
	}
	return yaml.Marshal(kc)
}
