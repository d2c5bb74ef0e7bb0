# Everything the lab's env file provides (TF_VAR_<name>).

variable "ec2_endpoint" {
  description = "HTTPS URL of the lab's EC2 emulator, e.g. https://127.0.0.1:39443."
  type        = string
}

variable "ca_bundle_file" {
  description = "PEM file of the lab CA, which signs the emulator's certificate."
  type        = string
}

variable "bastion_address" {
  description = "The lab bastion as host:port on 127.0.0.1."
  type        = string
}

variable "bastion_user" {
  description = "User the lab bastion accepts."
  type        = string
  default     = "mixedk8s"
}

variable "bastion_host_key" {
  description = "The lab bastion's host key, authorized_keys format."
  type        = string
}

variable "bastion_private_key_file" {
  description = "Private key file the lab bastion accepts."
  type        = string
}

variable "mirror_base_url" {
  description = "Base URL of the lab's artifact mirror, e.g. http://127.0.0.1:39080."
  type        = string
}

variable "region" {
  description = "Region the emulator answers for."
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  type    = string
  default = "lab"
}

variable "linux_nodes" {
  type    = number
  default = 2
}

variable "windows_nodes" {
  type    = number
  default = 2
}
