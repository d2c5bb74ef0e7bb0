# The lab's Compute Engine for examples/gcp: `make demo CLOUD=gcp` copies
# examples/gcp/main.tf and this folder's files into one working folder;
# lab_override.tf points the provider at the lab's Compute Engine and Secret
# Manager, and the cluster at its bastion and mirror. hack/demo.sh sets the
# variables from the lab's env file (TF_VAR_*).

variable "gcp_endpoint" {
  description = "HTTPS URL of the lab's Compute Engine emulator (Secret Manager too), e.g. https://127.0.0.1:40124."
  type        = string
}

variable "gcp_ca_bundle_file" {
  description = "PEM file of the CA that signs the emulator's certificate."
  type        = string
}

variable "gcp_access_token" {
  description = "The token the emulator accepts (the lab has no Application Default Credentials)."
  type        = string
  sensitive   = true
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
