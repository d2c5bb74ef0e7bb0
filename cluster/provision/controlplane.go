package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
)

const (
	// uploadedCertsSecret is where kubeadm's upload-certs phase keeps the
	// control-plane certificates, encrypted with the certificate key; it
	// is owned by a bootstrap token that expires two hours after the
	// upload, and the garbage collector then deletes it
	// (kubernetes/cmd/kubeadm/app/phases/copycerts/copycerts.go,
	// constants.DefaultCertTokenDuration).
	uploadedCertsSecret = "kubeadm-certs"
	// uploadedCertsMargin is how long the uploaded certificates must still
	// live for a control-plane join to start on them; less, and they are
	// uploaded again.
	uploadedCertsMargin = 30 * time.Minute
	// uploadCertsConfig is the owner-only kubeadm configuration that hands
	// the certificate key to `kubeadm init phase upload-certs`, never its
	// command line.
	uploadCertsConfig = "/etc/mixedk8s/upload-certs.yaml"
	// etcdctlFlags reach the node's own etcd member from inside its
	// container, with the health-check client certificate kubeadm makes.
	etcdctlFlags = "--endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key"
)

// ensureUploadedCerts makes sure the kubeadm-certs Secret a joining
// control-plane node downloads exists for at least uploadedCertsMargin,
// and otherwise uploads the certificates again on the first control-plane
// node with the cluster's stored key: `kubeadm init phase upload-certs
// --upload-certs` with the key in an owner-only configuration file.
func (p *Provisioner) ensureUploadedCerts(ctx context.Context, t cluster.Target, key string) error {
	k, err := p.kube(ctx, t.Spec, nil)
	if err != nil {
		return fmt.Errorf("failed to check the uploaded control-plane certificates: %w", err)
	}
	left, err := p.uploadedCertsLeft(ctx, k)
	if err != nil {
		return err
	}
	if left >= uploadedCertsMargin {
		return nil
	}
	instances, err := p.cfg.Cloud.Instances(ctx, t.Spec.Name)
	if err != nil {
		return fmt.Errorf("failed to list the instances of cluster %q: %w", t.Spec.Name, err)
	}
	first, err := firstControlPlane(t.Spec, instances)
	if err != nil {
		return fmt.Errorf("failed to upload the control-plane certificates again: %w", err)
	}
	report(t, "the uploaded control-plane certificates expire in %s; uploading them again on %s", left.Round(time.Second), first.Node.Name)
	conf := fmt.Appendf(nil, "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\ncertificateKey: %q\n", key)
	if _, err := p.runOn(ctx, first, uploadCertsConfig, conf, "kubeadm init phase upload-certs --upload-certs --config "+uploadCertsConfig); err != nil {
		return fmt.Errorf("failed to upload the control-plane certificates on %s: %w; fix: check that its kube-apiserver runs (`nodeagent diagnose` on it), then apply again", first.Node.Name, err)
	}
	return nil
}

// uploadedCertsLeft is how long the kubeadm-certs Secret lives on: until
// the earliest expiration of the bootstrap tokens that own it; 0 when it
// is gone or owned by a token that is gone.
func (p *Provisioner) uploadedCertsLeft(ctx context.Context, k *kubeAPI) (time.Duration, error) {
	sec, err := k.cs.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, uploadedCertsSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, k.fail("read Secret kube-system/"+uploadedCertsSecret, err)
	}
	left, owned := time.Duration(0), false
	for _, o := range sec.OwnerReferences {
		tok, err := k.cs.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		if err != nil {
			return 0, k.fail("read Secret kube-system/"+o.Name, err)
		}
		exp, err := time.Parse(time.RFC3339, string(tok.Data[bootstrapapi.BootstrapTokenExpirationKey]))
		if err != nil {
			continue // a token without expiration keeps the Secret
		}
		if d := time.Until(exp); !owned || d < left {
			left, owned = d, true
		}
	}
	if !owned {
		return 24 * time.Hour, nil // no owner that expires
	}
	return max(left, 0), nil
}

// removeEtcdMember removes a control-plane node's etcd member through
// another running control-plane node, with etcdctl in that node's etcd
// container (the way kubeadm's documentation removes a member whose
// machine is gone). A member etcd does not list is removed already.
func (p *Provisioner) removeEtcdMember(ctx context.Context, spec cluster.Spec, name string) error {
	instances, err := p.cfg.Cloud.Instances(ctx, spec.Name)
	if err != nil {
		return fmt.Errorf("failed to list the instances of cluster %q: %w", spec.Name, err)
	}
	// The lowest-numbered running control-plane node other than name.
	var via *cluster.Target
	for _, in := range instances {
		if in.Role != clouds.RoleControlPlane || in.Name == name || in.State != clouds.StateRunning || !isControlPlane(spec, in.Name) {
			continue
		}
		if via == nil || in.Name < via.Node.Name {
			via = &cluster.Target{Spec: spec, Node: nodeOf(in), Instance: in}
		}
	}
	if via == nil {
		return fmt.Errorf("failed to remove the etcd member of %s: no other control-plane node of cluster %q runs; fix: start one, then apply again", name, spec.Name)
	}
	out, err := p.runOn(ctx, *via, "", nil, "crictl ps --name etcd -q")
	if err != nil {
		return fmt.Errorf("failed to find the etcd container on %s: %w", via.Node.Name, err)
	}
	container := strings.TrimSpace(out)
	if container == "" || strings.ContainsAny(container, " \n;&|") {
		return fmt.Errorf("failed to remove the etcd member of %s: no etcd container runs on %s (crictl ps printed %q); fix: check its kubelet and etcd (`nodeagent diagnose` on it), then apply again", name, via.Node.Name, container)
	}
	out, err = p.runOn(ctx, *via, "", nil, "crictl exec "+container+" etcdctl "+etcdctlFlags+" member list -w json")
	if err != nil {
		return fmt.Errorf("failed to list the etcd members on %s: %w", via.Node.Name, err)
	}
	var list struct {
		Members []struct {
			ID   uint64 `json:"ID"`
			Name string `json:"name"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return fmt.Errorf("failed to read the etcd members listed on %s: %w", via.Node.Name, err)
	}
	for _, m := range list.Members {
		if m.Name != name {
			continue
		}
		id := strconv.FormatUint(m.ID, 16)
		if _, err := p.runOn(ctx, *via, "", nil, "crictl exec "+container+" etcdctl "+etcdctlFlags+" member remove "+id); err != nil {
			return fmt.Errorf("failed to remove etcd member %s (%s) through %s: %w", name, id, via.Node.Name, err)
		}
	}
	return nil
}

// runOn runs one command on a Linux node over SSH (as root), after
// uploading data to file owner-only when file is set, and removes the file
// after. It returns the command's output.
func (p *Provisioner) runOn(ctx context.Context, t cluster.Target, file string, data []byte, cmd string) (string, error) {
	conn, err := p.connect(ctx, t)
	if err != nil {
		return "", fmt.Errorf("failed to connect to %s: %w", t.Node.Name, err)
	}
	defer conn.Close()
	if file != "" {
		if err := conn.Upload(ctx, file, bytes.NewReader(data), int64(len(data)), 0o600); err != nil {
			return "", fmt.Errorf("failed to upload %s to %s: %w", file, t.Node.Name, err)
		}
		defer func() { _, _ = conn.Run(context.WithoutCancel(ctx), "rm -f "+file, &bytes.Buffer{}, &bytes.Buffer{}) }()
	}
	var stdout, stderr limitedBuffer
	code, err := conn.Run(ctx, cmd, &stdout, &stderr)
	if err != nil {
		return "", err
	}
	if code != 0 {
		verb, _, _ := strings.Cut(cmd, " --")
		return "", fmt.Errorf("`%s` exited %d: %s", verb, code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
