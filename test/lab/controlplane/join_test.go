package controlplane_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/test/lab/controlplane"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
)

// TestStackedControlPlane grows a control plane to three stacked members
// as kubeadm join --control-plane does, and checks what kubeadm checks on
// the way: the certificate key must open the uploaded certificates, and
// they are gone once the upload's two hours have passed until a control-plane
// node uploads them again. Then one member's machine goes away: the
// cluster's endpoint keeps answering, etcd lists the member as not running
// until it is removed, and a replacement joins with a new address.
func TestStackedControlPlane(t *testing.T) {
	cptest.Bins(t, controlplane.Binaries...)
	cl := cptest.Sandbox(t)
	cp := cptest.Start(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	wrong := strings.Repeat("ab", 32)
	if _, err := cp.Join(ctx, cl.ControlPlaneNode(t, "demo-cp-1", "10.0.1.5", wrong)); err == nil || !strings.Contains(err.Error(), "error decoding secret data with provided key") {
		t.Fatalf("join with another certificate key: %v, want kubeadm's decoding error", err)
	}
	if err := cp.ExpireUploadedCerts(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Join(ctx, cl.ControlPlaneNode(t, "demo-cp-1", "10.0.1.5", cptest.CertificateKey)); err == nil || !strings.Contains(err.Error(), "This Secret might have expired") {
		t.Fatalf("join after the upload expired: %v, want kubeadm's expired-Secret error", err)
	}
	if err := cp.UploadCerts(ctx, "demo-cp-0", cptest.CertificateKey); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	for i, ip := range []string{"10.0.1.5", "10.0.1.6"} {
		name := []string{"demo-cp-1", "demo-cp-2"}[i]
		if _, err := cp.Join(ctx, cl.ControlPlaneNode(t, name, ip, cptest.CertificateKey)); err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
	}
	t.Logf("two members joined in %s", time.Since(began).Round(100*time.Millisecond))
	wantMembers(t, ctx, cp, []string{"demo-cp-0", "demo-cp-1", "demo-cp-2"}, nil)
	var rss int64
	for _, p := range cp.Processes() {
		r, err := p.RSS()
		if err != nil {
			t.Fatal(err)
		}
		rss += r
	}
	t.Logf("RSS of 3 members (%d processes): %d MiB", len(cp.Processes()), rss>>20)
	checkLoopback(t, cp)

	// The machine of demo-cp-2 is gone: two of three members keep quorum.
	cp.StopMember("demo-cp-2")
	for i := range 10 {
		if code, body, err := cp.Do(ctx, http.MethodGet, "/readyz", nil); err != nil || code != http.StatusOK {
			t.Fatalf("request %d through the cluster's endpoint with a member gone: HTTP %d %v: %s", i, code, err, body)
		}
	}
	wantMembers(t, ctx, cp, []string{"demo-cp-0", "demo-cp-1"}, []string{"demo-cp-2"})
	if err := cp.RemoveMember(ctx, "demo-cp-2"); err != nil {
		t.Fatal(err)
	}
	wantMembers(t, ctx, cp, []string{"demo-cp-0", "demo-cp-1"}, nil)
	if _, err := cp.Join(ctx, cl.ControlPlaneNode(t, "demo-cp-2", "10.0.1.7", cptest.CertificateKey)); err != nil {
		t.Fatalf("join the replacement of demo-cp-2: %v", err)
	}
	wantMembers(t, ctx, cp, []string{"demo-cp-0", "demo-cp-1", "demo-cp-2"}, nil)
}

// wantMembers checks etcd's member list: running voting members, healthy,
// and members etcd still lists whose machine is gone.
func wantMembers(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, running, gone []string) {
	t.Helper()
	ms, err := cp.EtcdMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gotRunning, gotGone []string
	for _, m := range ms {
		switch {
		case m.Learner:
			t.Errorf("etcd member %s (%s) is still a learner", m.Name, m.ID)
		case m.Running && !m.Healthy:
			t.Errorf("etcd member %s is not healthy", m.Name)
		case m.Running:
			gotRunning = append(gotRunning, m.Name)
		default:
			gotGone = append(gotGone, m.Name)
		}
	}
	slices.Sort(gotRunning)
	slices.Sort(gotGone)
	if !slices.Equal(gotRunning, running) || !slices.Equal(gotGone, gone) {
		t.Fatalf("etcd members: running %q, gone %q; want %q and %q", gotRunning, gotGone, running, gone)
	}
}
