package e2e_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mixedk8s/mixedk8s/clouds/gcp"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/provision"
	"github.com/mixedk8s/mixedk8s/test/lab"
	"github.com/mixedk8s/mixedk8s/test/lab/cloudemu"
	"github.com/mixedk8s/mixedk8s/test/lab/controlplane/cptest"
	"github.com/mixedk8s/mixedk8s/test/lab/gcelab"
)

// TestMixedClusterEndToEndOnGCP is the mixed cluster on the lab's Compute
// Engine: clouds/gcp creates the network and instances, the lab runs each
// instance as a virtual node with the identity its guest published, the
// provisioner pins what the cloud observed, and the cluster is Ready through
// the real control plane; a second Apply changes nothing in the cloud, and
// Destroy leaves no instance, disk, firewall, network or secret.
func TestMixedClusterEndToEndOnGCP(t *testing.T) {
	requireBundle(t)
	cptest.Bins(t, lab.Binaries...)
	const token = "lab-gcp-token"
	l, err := lab.Start(context.Background(), lab.Config{Dir: t.TempDir(), Logf: t.Logf,
		Clouds: []cloudemu.Starter{gcelab.Starter(gcelab.Options{Token: token, OperationDelay: 10 * time.Millisecond, BootDelay: 30 * time.Millisecond})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	env, err := lab.ReadEnv(l.EnvFile())
	if err != nil {
		t.Fatal(err)
	}
	emu := l.Emulator("gcp").(*gcelab.Emulator)
	genv := emu.Env()
	ca, err := os.ReadFile(genv["MIXEDK8S_GCP_CA_BUNDLE"])
	if err != nil {
		t.Fatal(err)
	}
	zone := emu.Server.Zones()[0]
	cloud, err := gcp.New(context.Background(), gcp.Config{
		Project: genv["GOOGLE_CLOUD_PROJECT"], Region: genv["MIXEDK8S_GCP_REGION"], Zones: []string{zone},
		Endpoint: genv["MIXEDK8S_GCP_ENDPOINT"], CABundle: ca,
		TokenSource:  oauth2.StaticTokenSource(&oauth2.Token{AccessToken: genv["MIXEDK8S_GCP_ACCESS_TOKEN"]}),
		PollInterval: pollInterval, InitialBackoff: baseBackoff, MaxBackoff: maxBackoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()
	prov, err := provision.New(provision.Config{Cloud: cloud, Secrets: cloud, RebootWait: 50 * time.Millisecond, StatusPoll: 50 * time.Millisecond, ConnectTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	var (
		mu     sync.Mutex
		events []cluster.Event
	)
	opts := cluster.Options{Cloud: cloud, Provisioner: prov, BaseBackoff: baseBackoff, MaxBackoff: maxBackoff, Attempts: 20,
		Progress: func(e cluster.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }}
	spec := cluster.Spec{
		Name: "gcp", KubernetesVersion: "1.36.3",
		GCP:          &cluster.GCPSpec{Project: genv["GOOGLE_CLOUD_PROJECT"], Region: genv["MIXEDK8S_GCP_REGION"], Zone: zone},
		Network:      cluster.NetworkSpec{CNI: cluster.CNIFlannel, NodeCIDR: "10.30.0.0/16"},
		ControlPlane: cluster.ControlPlaneSpec{Count: 1},
		NodePools: map[string]cluster.PoolSpec{
			"lin": {OS: cluster.Linux, Count: 1},
			"win": {OS: cluster.Windows, WindowsVersion: "2022", Count: 1},
		},
		Access: cluster.AccessSpec{AdminCIDRs: []string{"127.0.0.1/32"}, Bastion: &cluster.BastionSpec{
			Address: env.BastionAddress, User: env.BastionUser, HostKey: env.BastionHostKey, PrivateKeyFile: env.BastionPrivateKeyFile}},
		Artifacts: cluster.ArtifactsSpec{MirrorBaseURL: env.MirrorBaseURL},
	}
	apply := func(within time.Duration) *cluster.Result {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		res, err := cluster.Apply(ctx, spec, opts)
		if err != nil {
			mu.Lock()
			for _, e := range events {
				t.Log(e)
			}
			mu.Unlock()
			t.Fatalf("Apply: %v; lab problems: %q", err, l.Problems())
		}
		return res
	}
	res := apply(3 * time.Minute)
	ready := 0
	for _, n := range res.Nodes {
		if n.Ready {
			ready++
		}
	}
	if ready != 3 {
		t.Fatalf("%d of 3 nodes Ready: %+v", ready, res.Nodes)
	}

	emu.ResetCalls()
	res = apply(time.Minute)
	if !res.Changes.Empty() {
		t.Errorf("second Apply planned %s", res.Changes.Summary())
	}
	for m, n := range emu.Calls() {
		if emu.Mutating(m) && n > 0 {
			t.Errorf("second Apply made %d %s calls", n, m)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.Destroy(ctx, spec, opts); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if objs := emu.Objects(spec.Name); len(objs) != 0 {
		t.Errorf("Destroy left %q", objs)
	}
}
