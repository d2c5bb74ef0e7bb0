package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/nodeagent/contract"
	"github.com/mixedk8s/mixedk8s/transport"
)

// Where the access file waits for `nodeagent access` on a node.
const (
	linuxAccess   = "/etc/mixedk8s/access.json"
	windowsAccess = `C:\ProgramData\mixedk8s\access.json`
)

// connect opens a pinned connection to a node with its lasting identity
// of the spec's secrets epoch.
//
// First-boot data is readable by more than the node (each cloud keeps its
// own copy where others can read it: docs/architecture.md's threat model
// says who, cloud by cloud). So the first time the provisioner
// reaches a node with the identity its first boot installed, it installs a
// lasting one (an SSH host key, or a WinRM certificate and admin password,
// made from the seed under labels of their own) over that connection,
// reconnects pinning it, and records in the secret store that this
// instance holds it. From then on the first-boot identity opens nothing,
// and a node that shows it again is reported at once, as a node that
// changed, never accepted.
//
// A node recorded holding the lasting identity of an older secrets epoch
// is rotated the same way: reached pinning the identity it holds, given
// the spec's epoch's, and pinned to that only once it shows it.
func (p *Provisioner) connect(ctx context.Context, t cluster.Target) (transport.Conn, error) {
	n, in, epoch := t.Node, t.Instance, t.Spec.SecretsEpoch
	ep, err := p.endpoint(ctx, t.Spec, n, in)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	lasting, err := p.lastingLogin(ctx, t.Spec, n, ep.seed, epoch)
	if err != nil {
		return nil, err
	}
	conn, err := p.dialLogin(ctx, n, ep, lasting)
	if err == nil {
		if err := p.markLasting(ctx, t.Spec.Name, n, in, epoch); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	if !errors.Is(err, transport.ErrIdentityMismatch) && !errors.Is(err, transport.ErrAuth) {
		return nil, err
	}
	// One install at a time per instance: a rotation and a join reaching the same node wait for each other.
	unlock := p.lockInstance(instanceKey(in))
	defer unlock()
	// Whoever held the lock may have installed it meanwhile.
	if conn, err = p.dialLogin(ctx, n, ep, lasting); err == nil {
		if err := p.markLasting(ctx, t.Spec.Name, n, in, epoch); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	if !errors.Is(err, transport.ErrIdentityMismatch) && !errors.Is(err, transport.ErrAuth) {
		return nil, err
	}
	held, herr := p.heldEpoch(ctx, t.Spec.Name, n, in, epoch)
	if herr != nil {
		return nil, herr
	}
	switch {
	case held == epoch:
		return nil, fmt.Errorf("%s no longer shows the identity it was given after its first boot (secrets_epoch %d): %w; fix: check instance %s (%s) was not replaced or tampered with; a node restored from an old disk must be deleted and applied again", n.Name, epoch, err, in.ID, in.PrivateIP)
	case held >= 0:
		old, err := p.lastingLogin(ctx, t.Spec, n, ep.seed, held)
		if err != nil {
			return nil, err
		}
		// A run of the agent's access command cut after the password and
		// before the certificate leaves the old certificate with the new password.
		old.passwords = append(old.passwords, lasting.passwords...)
		if conn, err = p.dialLogin(ctx, n, ep, old); err != nil {
			if errors.Is(err, transport.ErrIdentityMismatch) || errors.Is(err, transport.ErrAuth) {
				return nil, fmt.Errorf("%s does not show the identity of secrets_epoch %d it was recorded holding, so it is not given epoch %d's: %w; fix: check instance %s (%s) was not replaced or tampered with; delete it and apply again to make it anew", n.Name, held, epoch, err, in.ID, in.PrivateIP)
			}
			return nil, err
		}
		report(t, "rotating the node's identity from secrets_epoch %d to %d", held, epoch)
	default:
		if conn, err = p.dialBoot(ctx, t.Spec, n, in, ep, epoch); err != nil {
			return nil, err
		}
		report(t, "installing the node's lasting identity in place of first boot's")
	}
	err = p.installAccess(ctx, t, conn, ep.seed, epoch)
	conn.Close()
	if err != nil {
		return nil, err
	}
	conn, err = p.dialLogin(ctx, n, ep, lasting)
	if err != nil {
		return nil, fmt.Errorf("%s does not show the identity just installed: %w", n.Name, err)
	}
	if err := p.markLasting(ctx, t.Spec.Name, n, in, epoch); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// lockInstance serialises identity installs on one instance.
func (p *Provisioner) lockInstance(id string) (unlock func()) {
	p.mu.Lock()
	l, ok := p.installing[id]
	if !ok {
		l = &sync.Mutex{}
		p.installing[id] = l
	}
	p.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Rotate implements the cluster's identity rotation: connect installs the
// spec's epoch's identity on a node holding an older one.
func (p *Provisioner) Rotate(ctx context.Context, t cluster.Target) error {
	conn, err := p.connect(ctx, t)
	if err != nil {
		return err
	}
	return conn.Close()
}

// SecretsEpochs reads, for each running instance, which epoch's lasting
// identity it was recorded holding, and returns those below the spec's.
func (p *Provisioner) SecretsEpochs(ctx context.Context, spec cluster.Spec, instances []clouds.Instance) (map[string]int, error) {
	spec = spec.WithDefaults()
	nodes := map[string]cluster.Node{}
	for _, n := range spec.Nodes() {
		nodes[n.Name] = n
	}
	var (
		mu    sync.Mutex
		out   = map[string]int{}
		first error
		wg    sync.WaitGroup
	)
	for _, in := range instances {
		n, ok := nodes[in.Name]
		if !ok || in.State != clouds.StateRunning {
			continue
		}
		wg.Go(func() {
			held, err := p.heldEpoch(ctx, spec.Name, n, in, spec.SecretsEpoch)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && first == nil:
				first = err
			case err == nil && held >= 0 && held < spec.SecretsEpoch:
				out[n.Name] = held
			}
		})
	}
	wg.Wait()
	return out, first
}

// heldEpoch is the newest secrets epoch, up to epoch, whose lasting
// identity the instance was recorded holding, and -1 when none.
func (p *Provisioner) heldEpoch(ctx context.Context, cluster string, n cluster.Node, in clouds.Instance, epoch int) (int, error) {
	for e := epoch; e >= 0; e-- {
		had, err := p.hadLasting(ctx, cluster, n, in, e)
		if err != nil {
			return 0, err
		}
		if had {
			return e, nil
		}
	}
	return -1, nil
}

// installAccess has the node agent install the lasting identity.
func (p *Provisioner) installAccess(ctx context.Context, t cluster.Target, conn transport.Conn, seed []byte, epoch int) error {
	n := t.Node
	agentPath, _, goos := agentPaths(n.OS)
	bin, err := p.cfg.Agents(goos, agentArch)
	if err != nil {
		return fmt.Errorf("failed to load the node agent for %s/%s: %w", goos, agentArch, err)
	}
	a := contract.Access{APIVersion: contract.APIVersion}
	path := linuxAccess
	if n.OS == cluster.Windows {
		path = windowsAccess
		certPEM, keyPEM, err := p.winrmCert(ctx, t.Spec.Name, n.Name, secretLastingWinRM(n.Name, epoch))
		if err != nil {
			return err
		}
		a.WinRMCertPEM, a.WinRMKeyPEM = string(certPEM), string(keyPEM)
		a.AdminUser, a.AdminPassword = AdminUser, lastingPassword(seed, n.Name, epoch)
	} else if a.SSHHostKeyPEM, err = hostKeyPEM(lastingHostKey(seed, n.Name, epoch)); err != nil {
		return fmt.Errorf("failed to encode the lasting host key of %s: %w", n.Name, err)
	}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	// The secret first: on Windows its upload creates the agent's folder protected.
	if err := conn.Upload(ctx, path, bytes.NewReader(data), int64(len(data)), 0o600); err != nil {
		return fmt.Errorf("failed to upload the access file to %s: %w", n.Name, err)
	}
	if err := conn.Upload(ctx, agentPath, bytes.NewReader(bin.Data), int64(len(bin.Data)), 0o755); err != nil {
		return fmt.Errorf("failed to upload the node agent to %s: %w", n.Name, err)
	}
	var stderr limitedBuffer
	code, err := conn.Run(ctx, agentPath+" access --file "+path, io.Discard, &stderr)
	switch {
	case errors.Is(err, transport.ErrRebooting):
		// Cut before it said how it went: the next connection finds out which identity the node holds.
		return fmt.Errorf("installing the lasting identity of %s: %w: %w", n.Name, err, transport.ErrNotReady)
	case err != nil:
		return fmt.Errorf("failed to run the node agent on %s: %w", n.Name, err)
	case code != contract.ExitOK:
		msg := strings.TrimSpace(stderr.String())
		if a.AdminPassword != "" {
			msg = strings.ReplaceAll(msg, a.AdminPassword, "[redacted]")
		}
		return fmt.Errorf("the node agent on %s could not install the node's lasting identity (exit %d): %s; fix: run `%s diagnose --out diag.tar.gz` on the node and read its agent log", n.Name, code, msg, agentPath)
	}
	return nil
}

// lastingMark names the record that an instance holds its lasting
// identity of a secrets epoch; it holds the instance ID, and the name a
// digest of it, so a replaced instance of the same node, or one made again
// under its ID, starts without one.
func lastingMark(n cluster.Node, in clouds.Instance, epoch int) clouds.SecretName {
	sum := sha256.Sum256([]byte(instanceKey(in)))
	return epochName(clouds.NewSecretName("node", n.Name, "lasting", hex.EncodeToString(sum[:8])), epoch)
}

// instanceKey names one instance, and not a later one made under its ID.
func instanceKey(in clouds.Instance) string {
	if in.Incarnation == "" {
		return in.ID
	}
	return in.ID + "#" + in.Incarnation
}

// markLasting records, once per instance and epoch, that it holds its lasting identity.
func (p *Provisioner) markLasting(ctx context.Context, cluster string, n cluster.Node, in clouds.Instance, epoch int) error {
	key := markKey(cluster, in, epoch)
	p.mu.Lock()
	done := p.lasting[key]
	p.mu.Unlock()
	if done {
		return nil
	}
	if _, err := p.cfg.Secrets.EnsureSecret(ctx, cluster, lastingMark(n, in, epoch), []byte(in.ID)); err != nil {
		return fmt.Errorf("failed to record that %s holds its lasting identity: %w", n.Name, err)
	}
	p.mu.Lock()
	p.lasting[key] = true
	p.mu.Unlock()
	return nil
}

func markKey(cluster string, in clouds.Instance, epoch int) string {
	return cluster + "/" + instanceKey(in) + "/" + strconv.Itoa(epoch)
}

// hadLasting reports whether an instance was recorded holding its lasting identity of an epoch.
func (p *Provisioner) hadLasting(ctx context.Context, cluster string, n cluster.Node, in clouds.Instance, epoch int) (bool, error) {
	p.mu.Lock()
	done := p.lasting[markKey(cluster, in, epoch)]
	p.mu.Unlock()
	if done {
		return true, nil
	}
	_, ok, err := p.cfg.Secrets.Secret(ctx, cluster, lastingMark(n, in, epoch))
	if err != nil {
		return false, fmt.Errorf("failed to read whether %s holds its lasting identity: %w", n.Name, err)
	}
	return ok, nil
}
