# Import a cluster by its name (the value of its mixedk8s.io/cluster tag).
# The provider's aws, azure or gcp attribute must point where it runs.
# Import recovers the pools (OS, count, instance type), the control plane,
# the endpoint and the nodes; the configuration must supply the rest and
# match the cluster.
terraform import mixedk8s_cluster.demo demo
