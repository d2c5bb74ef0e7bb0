package provision_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
	"github.com/mixedk8s/mixedk8s/nodeagent/sandbox"
)

// Given a mixed cluster applied on machines whose first boot installed the
// identity their first-boot data carried, no key or password in that data
// opens any node afterwards: sshd and the WinRM listener present other
// keys, and the first-boot password is refused; after a reboot the
// provisioner reaches every node with the identity that replaced first
// boot's, and first boot's still opens nothing.
func TestFirstBootDataOpensNoNodeAfterApply(t *testing.T) {
	spec := mixedSpec()
	w := newWorld(t, &spec)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w.applyOK(ctx, spec)
	w.checkBootDataStale(ctx, spec)
	// The agent's config reached each Windows node owner-only from its
	// creation: not what C:\ProgramData, or the agent's folder, passes down.
	for _, n := range spec.WithDefaults().Nodes() {
		if n.OS != cluster.Windows {
			continue
		}
		if acl := w.node(n.Name).Sandbox.FolderACL(`C:\ProgramData\mixedk8s\agent.json`); !strings.HasPrefix(acl, "protected") || strings.Contains(acl, "Users") {
			t.Errorf("%s: the agent config's ACL is %q, want SYSTEM and Administrators only", n.Name, acl)
		}
	}

	// The nodes reboot: what replaced first boot's identity is on their disks.
	for _, n := range spec.WithDefaults().Nodes() {
		w.node(n.Name).Host.Reboot()
	}
	ins, err := w.cloud.Instances(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		var node cluster.Node
		for _, n := range spec.WithDefaults().Nodes() {
			if n.Name == in.Name {
				node = n
			}
		}
		if _, err := provision.AwaitAfterReboot(ctx, w.prov, cluster.Target{Spec: spec.WithDefaults(), Node: node, Instance: in, Report: func(string) {}}); err != nil {
			t.Errorf("%s after a reboot: %v", in.Name, err)
		}
	}
	w.checkBootDataStale(ctx, spec)
}

// A run cut after the Windows password changed and before the certificate
// did, and a Linux sshd that fails its first reload, leave nodes that the
// next Apply finishes.
func TestInstallingTheLastingIdentityResumesAfterACut(t *testing.T) {
	spec := mixedSpec()
	spec.NodePools = map[string]cluster.PoolSpec{
		"lin": {OS: cluster.Linux, Count: 1},
		"win": {OS: cluster.Windows, WindowsVersion: "2022", Count: 1},
	}
	w := newWorld(t, &spec)
	var once sync.Map
	w.fault = func(node string, e sandbox.Effect) error {
		// The workers only: their joins wait for the control plane.
		if strings.Contains(node, "-cp-") || e.Kind != sandbox.KindWinRMCertificate && e.Kind != sandbox.KindSSHDReload {
			return nil
		}
		if _, done := once.LoadOrStore(node, true); done {
			return nil
		}
		return fmt.Errorf("injected: %s on %s cut", e.Kind, node)
	}
	var events []cluster.Event
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := cluster.Apply(ctx, spec, w.opts(&events, &mu))
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("first Apply: %v, want the injected cut reported", err)
	}
	if strings.Contains(err.Error(), "Mk8-") || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error carries a secret: %v", err)
	}
	w.applyOK(ctx, spec)
	w.checkBootDataStale(ctx, spec)
}

func (w *world) applyOK(ctx context.Context, spec cluster.Spec) {
	w.t.Helper()
	var events []cluster.Event
	var mu sync.Mutex
	if _, err := cluster.Apply(ctx, spec, w.opts(&events, &mu)); err != nil {
		mu.Lock()
		for _, e := range events {
			w.t.Log(e)
		}
		mu.Unlock()
		w.t.Fatalf("Apply: %v", err)
	}
}

// checkBootDataStale tries what each node's first-boot data carried
// against the node: nothing of it may still work.
func (w *world) checkBootDataStale(ctx context.Context, spec cluster.Spec) {
	w.t.Helper()
	nodes := spec.WithDefaults().Nodes()
	if len(nodes) == 0 {
		w.t.Fatal("no nodes")
	}
	for _, n := range nodes {
		w.mu.Lock()
		boot := w.boot[n.Name]
		w.mu.Unlock()
		short, cancel := context.WithTimeout(ctx, 10*time.Second)
		open, err := w.node(n.Name).StillOpens(short, boot)
		cancel()
		if err != nil {
			w.t.Fatalf("%s: %v", n.Name, err)
		}
		for _, o := range open {
			w.t.Errorf("%s: %s", n.Name, o)
		}
	}
}

// Given a mixed cluster applied at secrets_epoch 0, raising it to 1 plans
// the rotation of every node's identity, one node at a time, with its
// reason; Apply installs the new identities on the same instances, and
// then what each node held at epoch 0 opens nothing: sshd and the WinRM
// listener present other keys, and the old admin password is refused.
// Another plan at epoch 1 has nothing to do.
func TestRaisingTheSecretsEpochRotatesEveryNodeInPlace(t *testing.T) {
	spec := mixedSpec()
	w := newWorld(t, &spec)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w.applyOK(ctx, spec)
	nodes := spec.WithDefaults().Nodes()
	held := map[string]clouds.NodeIdentity{}
	for _, n := range nodes {
		a := w.node(n.Name).Sandbox.Access()
		held[n.Name] = clouds.NodeIdentity{AdminUser: provision.AdminUser, SSHHostKeyPEM: a.SSHHostKeyPEM, WinRMCertPEM: a.WinRMCertPEM, AdminPassword: a.Passwords[provision.AdminUser]}
	}
	before := w.instanceIDs(ctx, spec)

	spec.SecretsEpoch = 1
	var events []cluster.Event
	var mu sync.Mutex
	observed, err := cluster.Observe(ctx, spec, w.opts(&events, &mu))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := cluster.Plan(spec, observed)
	if err != nil {
		t.Fatal(err)
	}
	prev := ""
	for _, n := range nodes {
		var step *cluster.Step
		for i, s := range changes.Steps {
			if s.Kind == cluster.StepRotate && s.Node == n.Name {
				step = &changes.Steps[i]
			}
		}
		if step == nil {
			t.Fatalf("the plan at secrets_epoch 1 does not rotate %s: %v", n.Name, changes.Steps)
		}
		if prev != "" && !slices.Contains(step.After, prev) {
			t.Errorf("%s rotates after %v, want after %s: one node at a time", n.Name, step.After, prev)
		}
		prev = step.ID
		if !slices.ContainsFunc(changes.Summary(), func(l string) bool {
			return strings.HasPrefix(l, "~ rotate "+n.Name+"'s ") && strings.HasSuffix(l, "secrets_epoch 0 -> 1")
		}) {
			t.Errorf("the plan's summary does not say why %s changes:\n%s", n.Name, changes)
		}
	}
	if len(changes.Steps) != len(nodes) {
		t.Errorf("the plan has %d steps, want only the %d rotations: %v", len(changes.Steps), len(nodes), changes.Steps)
	}

	w.applyOK(ctx, spec)
	if after := w.instanceIDs(ctx, spec); !maps.Equal(before, after) {
		t.Errorf("instances changed: %v -> %v, want the identities rotated in place", before, after)
	}
	for _, n := range nodes {
		short, cancel := context.WithTimeout(ctx, 10*time.Second)
		open, err := w.node(n.Name).StillOpens(short, held[n.Name])
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		for _, o := range open {
			t.Errorf("%s after the rotation: %s (epoch 0's identity)", n.Name, strings.Replace(o, "first-boot", "epoch 0", 1))
		}
	}
	w.checkBootDataStale(ctx, spec)
	observed, err = cluster.Observe(ctx, spec, w.opts(&events, &mu))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := cluster.Plan(spec, observed); err != nil || !again.Empty() {
		t.Errorf("a second plan at secrets_epoch 1: %v, %v; want no changes", again, err)
	}
}

func (w *world) instanceIDs(ctx context.Context, spec cluster.Spec) map[string]string {
	w.t.Helper()
	ins, err := w.cloud.Instances(ctx, spec.Name)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for _, in := range ins {
		out[in.Name] = in.ID
	}
	return out
}
