package provision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/test/lab/host"
	"github.com/mixedk8s/mixedk8s/test/lab/sshd"
	"github.com/mixedk8s/mixedk8s/transport"
)

// observingCloud is a cloud whose nodes make their own identity, as on GCE.
type observingCloud struct {
	*memory.Cloud
	obs   clouds.ObservedIdentity
	err   error
	calls int
}

func (c *observingCloud) ObservedIdentity(context.Context, clouds.Instance) (clouds.ObservedIdentity, error) {
	c.calls++
	return c.obs, c.err
}

// Given a cloud that observes the node's own host key, the provisioner
// pins that key, refuses another, waits while nothing is published, and
// asks the cloud once per instance.
func TestConnectPinsTheIdentityTheCloudObserved(t *testing.T) {
	ctx := context.Background()
	addr := netip.MustParseAddr("127.0.0.41")
	h, err := host.New("gce-node", host.Linux, addr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, own, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(own)
	mem := memory.New()
	cloud := &observingCloud{Cloud: mem}
	p, err := New(Config{Cloud: cloud, Secrets: mem, ConnectTimeout: 2 * time.Second,
		Dial: func(ctx context.Context, network, a string) (net.Conn, error) { return h.Dial(ctx, 22) }})
	if err != nil {
		t.Fatal(err)
	}
	seed, err := p.seed(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	client, _ := ssh.NewSignerFromKey(clientKey(seed))
	sshd.Serve(h, sshd.Config{HostKey: hostSigner, AuthorizedKeys: map[string][]ssh.PublicKey{AdminUser: {client.PublicKey()}}})
	spec := cluster.Spec{Name: "demo"}
	n := cluster.Node{Name: "demo-cp-0", OS: cluster.Linux}
	in := clouds.Instance{ID: "1", Name: n.Name, PrivateIP: addr.String(), State: clouds.StateRunning}

	cloud.err = &clouds.Error{Kind: clouds.KindTransient, Op: "instances.getGuestAttributes", Err: errors.New("not yet")}
	if _, err := p.connectBoot(ctx, spec, n, in); !errors.Is(err, transport.ErrNotReady) {
		t.Fatalf("connect before the guest published: %v, want ErrNotReady", err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _ := ssh.NewPublicKey(other)
	cloud.err, cloud.obs = nil, clouds.ObservedIdentity{SSHHostKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(otherPub)))}}
	if _, err := p.connectBoot(ctx, spec, n, in); !errors.Is(err, transport.ErrIdentityMismatch) {
		t.Fatalf("connect to a node whose key is not the observed one: %v, want ErrIdentityMismatch", err)
	}
	in.ID = "2" // the instance was replaced: its identity is read again
	cloud.obs = clouds.ObservedIdentity{SSHHostKeys: []string{"ecdsa-sha2-nistp256 garbage", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey())))}}
	conn, err := p.connectBoot(ctx, spec, n, in)
	if err != nil {
		t.Fatalf("connect with the observed key: %v", err)
	}
	conn.Close()
	calls := cloud.calls
	conn, err = p.connectBoot(ctx, spec, n, in)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if cloud.calls != calls {
		t.Fatalf("the identity of one instance was read %d times", cloud.calls-calls+1)
	}
}
