# Read a cluster that another workspace manages.
data "mixedk8s_cluster" "shared" {
  name = "shared"
  aws  = { region = "eu-west-1" }
}

output "windows_nodes" {
  value = [for n in data.mixedk8s_cluster.shared.nodes : n.name if n.os == "windows"]
}
