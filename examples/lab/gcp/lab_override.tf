# Merged into examples/gcp/main.tf (Terraform override file): see lab.tf.

provider "mixedk8s" {
  gcp = {
    project      = var.project
    endpoint     = var.gcp_endpoint
    ca_bundle    = file(var.gcp_ca_bundle_file)
    access_token = var.gcp_access_token
  }

  bastion = {
    address     = var.bastion_address
    user        = var.bastion_user
    host_key    = var.bastion_host_key
    private_key = file(var.bastion_private_key_file)
  }
}

resource "mixedk8s_cluster" "demo" {
  # The lab's control plane runs the newest supported release.
  kubernetes_version = "1.36.3"

  # The lab's hosts download from its mirror.
  # The lab's mirror serves stand-ins, not the publishers' files: its checksums, not the pins, decide.
  artifacts = { mirror_base_url = var.mirror_base_url, trust_mirror_checksums = true }

  timeouts = { create = "20m" }
}
