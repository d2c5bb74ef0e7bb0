package cluster_test

import (
	"context"
	"fmt"

	"github.com/mixedk8s/mixedk8s/clouds/memory"
	"github.com/mixedk8s/mixedk8s/cluster"
	"github.com/mixedk8s/mixedk8s/cluster/clustertest"
)

// A cluster is a Spec; Apply builds it. Here the cloud and the nodes are
// in-memory doubles; a real program passes clouds/aws (or azure, gcp) and
// the agent-pushing provisioner instead.
func ExampleApply() {
	spec, err := cluster.ParseSpec([]byte(`
name: demo
kubernetes_version: 1.36.3
aws: {region: eu-west-1}
control_plane: {count: 1}
node_pools:
  linux: {os: linux, count: 1}
  win: {os: windows, windows_version: "2022", count: 2}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	opts := cluster.Options{Cloud: memory.New(), Provisioner: clustertest.NewProvisioner()}
	res, err := cluster.Apply(context.Background(), spec, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Changes)
	for _, n := range res.Nodes {
		fmt.Printf("%s %s ready=%v\n", n.Name, n.OS, n.Ready)
	}
	// Output:
	// + network, subnet and firewall rules for cluster "demo"
	// + API load balancer for cluster "demo" (TCP 6443)
	// + 1 linux node in the control plane (demo-cp-0)
	// + 1 linux node in pool "linux" (demo-linux-0)
	// + 2 windows-2022 nodes in pool "win" (demo-win-0, demo-win-1)
	// ~ register demo-cp-0 behind the API load balancer
	// demo-cp-0 linux ready=true
	// demo-linux-0 linux ready=true
	// demo-win-0 windows ready=true
	// demo-win-1 windows ready=true
}

// Plan shows what Apply would do, without doing it: here, a Windows pool
// scaled from 3 nodes down to 1.
func ExamplePlan() {
	spec := cluster.Spec{
		Name:         "demo",
		AWS:          &cluster.AWSSpec{Region: "eu-west-1"},
		ControlPlane: cluster.ControlPlaneSpec{Count: 1},
		NodePools: map[string]cluster.PoolSpec{
			"linux": {OS: cluster.Linux, Count: 1},
			"win":   {OS: cluster.Windows, Count: 3},
		},
	}
	observed := converged(spec)
	spec.NodePools["win"] = cluster.PoolSpec{OS: cluster.Windows, Count: 1}
	changes, err := cluster.Plan(spec, observed)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(changes)
	// Output:
	// - drain and delete demo-win-2
	// - drain and delete demo-win-1
}
