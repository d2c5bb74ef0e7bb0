# Merged into examples/azure/main.tf (Terraform override file): see lab.tf.

provider "mixedk8s" {
  azure = {
    subscription_id           = var.subscription_id
    key_vault_url             = var.key_vault_url
    resource_manager_endpoint = var.azure_resource_manager_endpoint
    authority_host            = var.azure_authority_host
    ca_bundle                 = file(var.azure_ca_bundle_file)
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
