# The lab's Azure for examples/azure: `make demo CLOUD=azure` copies
# examples/azure/main.tf and this folder's files into one working folder;
# lab_override.tf points the provider at the lab's ARM, Entra ID and Key
# Vault, and the cluster at its bastion and mirror. hack/demo.sh sets the
# variables from the lab's env file (TF_VAR_*).

variable "azure_resource_manager_endpoint" {
  description = "HTTPS URL of the lab's ARM emulator, e.g. https://127.0.0.1:40123."
  type        = string
}

variable "azure_authority_host" {
  description = "The lab's Entra ID authority (the same server)."
  type        = string
}

variable "azure_ca_bundle_file" {
  description = "PEM file of the CA that signs the ARM emulator's and the Key Vault's certificate."
  type        = string
}

variable "bastion_address" {
  type = string
}

variable "bastion_user" {
  type = string
}

variable "bastion_host_key" {
  type = string
}

variable "bastion_private_key_file" {
  type = string
}

variable "mirror_base_url" {
  type = string
}

output "kubeconfig" {
  value     = mixedk8s_cluster.demo.kubeconfig
  sensitive = true
}
