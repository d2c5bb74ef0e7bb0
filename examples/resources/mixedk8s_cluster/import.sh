# Import a cluster by its location and name (the value of its cluster tag).
# Import recovers the pools (OS, count, instance type), the control plane,
# the endpoint and the nodes; the configuration must supply the rest and
# match the cluster.
terraform import mixedk8s_cluster.demo eu-west-1/demo

# The same with an import block (Terraform 1.5 or later):
#   import {
#     to = mixedk8s_cluster.demo
#     id = "eu-west-1/demo"
#   }
