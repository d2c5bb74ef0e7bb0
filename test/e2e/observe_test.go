package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mixedk8s/mixedk8s/clouds"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/clustertest"
)

// TestObserveCostIsIndependentOfNodeCount counts the EC2 and SSM calls of
// one cluster.Observe with 20 and with 100 instances: the same. Instances
// are made through clouds/aws directly (without identities, so the lab
// makes no nodes of them) and node state comes from the in-memory
// provisioner, so only the cloud's share is counted.
func TestObserveCostIsIndependentOfNodeCount(t *testing.T) {
	eachCloud(t, []*row{awsRow}, testObserveCost)
}

func testObserveCost(t *testing.T, r *row) {
	w := newWorld(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := w.spec("observe", "10.4.0.0/16")
	spec.NodePools = map[string]cluster.PoolSpec{"lin": {OS: cluster.Linux, Count: 100}}
	spec = spec.WithDefaults()
	cloud := w.cloud(spec)
	opts := cluster.Options{Cloud: cloud, Provisioner: clustertest.NewProvisioner()}

	network, err := cloud.EnsureNetwork(ctx, clouds.NetworkRequest{Cluster: spec.Name, NodeCIDR: spec.Network.NodeCIDR,
		PodCIDR: spec.Network.PodCIDR, AdminCIDRs: spec.Access.AdminCIDRs})
	if err != nil {
		t.Fatal(err)
	}
	nodes := spec.Nodes()
	create := func(from, to int) {
		var g errgroup.Group
		g.SetLimit(16)
		for _, n := range nodes[from:to] {
			g.Go(func() error {
				_, err := cloud.EnsureInstance(ctx, clouds.InstanceRequest{
					Cluster: spec.Name, Name: n.Name, Pool: n.Pool, Role: n.Role, OS: string(n.OS), InstanceType: n.InstanceType,
					DiskGB: n.DiskGB, Network: network,
				})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	observe := func() (map[string]int, int) {
		before := w.calls()
		o, err := cluster.Observe(ctx, spec, opts)
		if err != nil {
			t.Fatal(err)
		}
		return w.callsSince(before), len(o.Instances)
	}

	create(0, 20)
	small, n20 := observe()
	create(20, 101) // the control-plane node and 100 workers
	large, n101 := observe()
	if n20 != 20 || n101 != 101 {
		t.Fatalf("Observe saw %d then %d instances, want 20 then 101", n20, n101)
	}
	if fmt.Sprint(small) != fmt.Sprint(large) {
		t.Errorf("Observe of 20 instances made %s; of 101 instances %s: the cost grows with the nodes", w.formatCalls(small), w.formatCalls(large))
	}
	t.Logf("FIGURE one Observe, cloud calls: 20 instances %s; 101 instances %s", w.formatCalls(small), w.formatCalls(large))

	err = cluster.Destroy(ctx, spec, opts)
	w.heard(err)
	if err != nil {
		t.Fatal(err)
	}
}
