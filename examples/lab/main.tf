# A mixed cluster on the lab: the EC2 emulator, the SSH bastion and the
# virtual hosts run in one process on 127.0.0.1, so no cloud account is
# needed. `make demo` applies it. By hand: start the lab (hack/lab.sh start),
# then
#
#   set -a; . .lab/lab.env; set +a
#   terraform apply
#
# The env file sets the variables below as TF_VAR_* and the emulator's
# credentials as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, which the AWS
# SDK's default chain picks up (see README.md beside this file).

terraform {
  required_providers {
    mixedk8s = {
      source = "mixedk8s/mixedk8s"
    }
  }
}

provider "mixedk8s" {
  aws = {
    region    = var.region
    endpoint  = var.ec2_endpoint
    ca_bundle = file(var.ca_bundle_file)
  }

  bastion = {
    address     = var.bastion_address
    user        = var.bastion_user
    host_key    = var.bastion_host_key
    private_key = file(var.bastion_private_key_file)
  }
}

resource "mixedk8s_cluster" "lab" {
  name               = var.cluster_name
  kubernetes_version = "1.36.3"
  aws                = { region = var.region }

  control_plane = { count = 1 }

  node_pools = {
    linux = { os = "linux", count = var.linux_nodes }
    win   = { os = "windows", windows_version = "2022", count = var.windows_nodes }
  }

  # The lab's hosts live in 127.0.0.0/8 and download from its mirror.
  access = { admin_cidrs = ["127.0.0.0/8"] }
  # The lab's mirror serves stand-ins, not the publishers' files: its checksums, not the pins, decide.
  artifacts = { mirror_base_url = var.mirror_base_url, trust_mirror_checksums = true }

  timeouts = { create = "20m" }
}

output "api_endpoint" {
  value = mixedk8s_cluster.lab.api_endpoint
}

output "nodes" {
  description = "Every node with its OS, pool, address and status, one a line."
  value = join("\n", [for n in mixedk8s_cluster.lab.nodes :
    format("%-12s %-8s %-14s %-15s %s", n.name, n.os, n.pool, n.private_ip, n.ready ? "Ready" : "NotReady")
  ])
}

output "kubeconfig" {
  value     = mixedk8s_cluster.lab.kubeconfig
  sensitive = true
}
