# Terraform 1.10 or later: a cluster-admin kubeconfig that is never stored
# in the plan or the state, with a certificate that lives one run. Provider
# blocks may use ephemeral values, so the kubernetes provider can be
# configured from it. In the plan that creates the cluster its values are
# unknown, and the kubernetes resources are planned as known after apply.
ephemeral "mixedk8s_kubeconfig" "admin" {
  name     = mixedk8s_cluster.demo.name
  aws      = mixedk8s_cluster.demo.aws
  validity = "2h"
}

provider "kubernetes" {
  host                   = ephemeral.mixedk8s_kubeconfig.admin.host
  cluster_ca_certificate = ephemeral.mixedk8s_kubeconfig.admin.ca_certificate
  client_certificate     = ephemeral.mixedk8s_kubeconfig.admin.client_certificate
  client_key             = ephemeral.mixedk8s_kubeconfig.admin.client_key
}
