// Package cluster builds, changes and destroys one self-managed Kubernetes
// cluster: a Linux control plane with Linux and Windows worker pools, on
// exactly one cloud.
//
// A cluster is described by a Spec (Go, JSON or YAML; the same snake_case
// names as the Terraform resource). Validate reports every problem of a spec
// at once, each naming its field and the fix. Work then runs in three
// stages, each usable alone:
//
//   - Observe reads what exists: the cloud's objects found by the cluster's
//     tags, and each node's state in Kubernetes.
//   - Plan compares the spec with what was observed and returns Changes: the
//     steps (network, instances, bootstrap, joins, add-ons, readiness, then
//     drains and deletes) as a dependency graph, and a summary for people.
//     Plan touches nothing; it refuses what it cannot do safely.
//   - Apply runs Observe, Plan and the steps, many at once where the graph
//     allows, retrying what waiting may cure and reporting progress as
//     Events. Re-running Apply after any failure or cancellation converges;
//     Destroy removes everything the cluster's tags find.
//
// Apply acts through two collaborators given in Options: a clouds.Cloud
// (clouds/aws, clouds/azure or clouds/gcp; import the one the spec names)
// creates networks and instances, and a Provisioner (cluster/provision)
// reaches each node over pinned SSH or WinRM and runs the node agent on it.
// Kubeconfig returns an admin kubeconfig for a running cluster.
package cluster
