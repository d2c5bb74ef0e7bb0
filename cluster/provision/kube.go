package provision

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/internal/pki"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
)

// adminConf is the kubeconfig kubeadm writes on control-plane nodes.
const adminConf = "/etc/kubernetes/admin.conf"

// statusConcurrency bounds how many nodes are asked for their status at once.
const statusConcurrency = 16

// firstControlPlane finds the node that holds the cluster's admin credentials.
func firstControlPlane(spec cluster.Spec, instances []clouds.Instance) (cluster.Target, error) {
	name := cluster.NodeName(spec.Name, clouds.ControlPlanePool, 0)
	for _, in := range instances {
		if in.Name == name && in.State == clouds.StateRunning {
			return cluster.Target{Spec: spec, Node: nodeOf(in), Instance: in}, nil
		}
	}
	return cluster.Target{}, fmt.Errorf("%w (%s)", errNoControlPlane, name)
}

// nodeOf is what reaching a node needs, read from its instance's tags and
// platform, so that a cluster known only by name (an import) can be read.
func nodeOf(in clouds.Instance) cluster.Node {
	return cluster.Node{Name: in.Name, Pool: in.Pool, Role: in.Role, OS: cluster.OS(in.OS)}
}

// onControlPlane runs a command as root on the first control-plane node.
func (p *Provisioner) onControlPlane(ctx context.Context, spec cluster.Spec, cmd string) (string, error) {
	instances, err := p.cfg.Cloud.Instances(ctx, spec.Name)
	if err != nil {
		return "", fmt.Errorf("failed to list the instances of cluster %q: %w", spec.Name, err)
	}
	t, err := firstControlPlane(spec, instances)
	if err != nil {
		return "", err
	}
	return p.runOn(ctx, t, cmd)
}

func (p *Provisioner) runOn(ctx context.Context, t cluster.Target, cmd string) (string, error) {
	conn, err := p.connect(ctx, t.Spec, t.Node, t.Instance)
	if err != nil {
		return "", fmt.Errorf("failed to connect to %s: %w", t.Node.Name, err)
	}
	defer conn.Close()
	var out bytes.Buffer
	var stderr limitedBuffer
	code, err := conn.Run(ctx, cmd, &out, &stderr)
	if err != nil {
		return "", fmt.Errorf("failed to run %q on %s: %w", firstWords(cmd), t.Node.Name, err)
	}
	if code != 0 {
		return "", fmt.Errorf("%q on %s exited %d: %s", firstWords(cmd), t.Node.Name, code, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// firstWords names a command in errors without its arguments, which may hold secrets.
func firstWords(cmd string) string {
	f := strings.Fields(cmd)
	return strings.Join(f[:min(len(f), 3)], " ")
}

// joinToken issues a fresh, short-lived bootstrap token on the control plane.
func (p *Provisioner) joinToken(ctx context.Context, t cluster.Target) (string, error) {
	out, err := p.runOn(ctx, t, "kubeadm token create --ttl 1h --description mixedk8s-join")
	if err != nil {
		return "", fmt.Errorf("failed to create a join token: %w", err)
	}
	tok := strings.TrimSpace(out)
	if !pki.ValidBootstrapToken(tok) {
		return "", fmt.Errorf("kubeadm token create on %s printed something that is not a bootstrap token", t.Node.Name)
	}
	return tok, nil
}

func (p *Provisioner) joinInfo(cp0 clouds.Instance, ca *pki.CA, token, certKey string) cluster.JoinInfo {
	return cluster.JoinInfo{
		APIEndpoint:    cp0.PrivateIP + ":6443",
		BootstrapToken: token,
		CACertHashes:   []string{pki.CACertHash(ca.Cert)},
		CACertPEM:      string(ca.CertPEM()),
		CertificateKey: certKey,
	}
}

// Status implements cluster.Provisioner: each running node's agent reports
// whether it finished. A node that cannot be reached counts as not joined.
func (p *Provisioner) Status(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (map[string]cluster.NodeStatus, error) {
	out := map[string]cluster.NodeStatus{}
	var g errgroup.Group
	g.SetLimit(statusConcurrency)
	results := make([]contract.Status, len(instances))
	for i, in := range instances {
		if in.Name == "" || in.State != clouds.StateRunning {
			continue
		}
		n := nodeOf(in)
		g.Go(func() error {
			// A short bound: Observe must not wait for a node that is still booting.
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			st, err := p.agentStatus(sctx, cluster.Target{Spec: spec, Node: n, Instance: in})
			if err == nil {
				results[i] = st
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, st := range results {
		if st.Phase == contract.NodeReady {
			out[instances[i].Name] = cluster.NodeStatus{Joined: true, Ready: true}
		}
	}
	return out, nil
}

// WaitReady implements cluster.Provisioner by polling the nodes' agents.
func (p *Provisioner) WaitReady(ctx context.Context, spec cluster.Spec, names []string) error {
	for {
		instances, err := p.cfg.Cloud.Instances(ctx, spec.Name)
		if err != nil {
			return err
		}
		st, err := p.Status(ctx, spec, instances)
		if err != nil {
			return err
		}
		var waiting []string
		for _, n := range names {
			if !st[n].Ready {
				waiting = append(waiting, n)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		t := time.NewTimer(p.cfg.StatusPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%d nodes are not Ready (%s): %w", len(waiting), strings.Join(waiting[:min(len(waiting), 5)], ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// Drain implements cluster.Provisioner with kubectl on the control plane.
func (p *Provisioner) Drain(ctx context.Context, spec cluster.Spec, name string) error {
	_, err := p.onControlPlane(ctx, spec, "kubectl --kubeconfig "+adminConf+" drain "+name+" --ignore-daemonsets --delete-emptydir-data --force --timeout=10m")
	return err
}

// Remove implements cluster.Provisioner with kubectl on the control plane.
func (p *Provisioner) Remove(ctx context.Context, spec cluster.Spec, name string) error {
	_, err := p.onControlPlane(ctx, spec, "kubectl --kubeconfig "+adminConf+" delete node "+name+" --ignore-not-found")
	return err
}

// Endpoint implements cluster.Provisioner from the first control-plane
// instance and the stored CA, without contacting any node.
func (p *Provisioner) Endpoint(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (cluster.Endpoint, bool, error) {
	t, err := firstControlPlane(spec, instances)
	if err != nil {
		return cluster.Endpoint{}, false, nil
	}
	ca, ok, err := p.storedCA(ctx, spec.Name)
	if err != nil || !ok {
		return cluster.Endpoint{}, false, err
	}
	return cluster.Endpoint{APIEndpoint: t.Instance.PrivateIP + ":6443", CACertPEM: string(ca.CertPEM())}, true, nil
}

// AdminKubeconfig implements cluster.Provisioner: the provisioner holds the
// CA, so it issues the kubeconfig itself instead of copying one off a node.
func (p *Provisioner) AdminKubeconfig(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) ([]byte, error) {
	ep, ok, err := p.Endpoint(ctx, spec, instances)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("cluster %q has no control plane yet; fix: apply it first", spec.Name)
	}
	ca, _, err := p.storedCA(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	return ca.AdminKubeconfig(spec.Name, "https://"+ep.APIEndpoint, time.Now())
}

func (p *Provisioner) storedCA(ctx context.Context, cluster string) (*pki.CA, bool, error) {
	b, ok, err := p.cfg.Secrets.Secret(ctx, cluster, secretCA)
	if err != nil || !ok {
		return nil, false, err
	}
	certPEM, keyPEM := splitPEM(b)
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, false, fmt.Errorf("the CA of cluster %q in the secret store is damaged: %w", cluster, err)
	}
	return ca, true, nil
}
