# A mixed Linux/Windows cluster on Azure. Credentials come from the Azure
# SDK's default chain: AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET,
# workload or managed identity, or `az login`. The nodes' secrets (the
# Windows admin password, the WinRM certificate's key) go to a Key Vault.
#
#   terraform init && terraform apply -var subscription_id=$(az account show --query id -o tsv) \
#     -var key_vault_url=https://my-vault.vault.azure.net -var admin_cidr=203.0.113.0/24
#
# On the lab's Azure: make demo CLOUD=azure (examples/lab/azure points it at the lab).

terraform {
  required_providers {
    mixedk8s = {
      source = "mixedk8s/mixedk8s"
    }
  }
}

variable "subscription_id" {
  type = string
}

variable "key_vault_url" {
  description = "Key Vault for the cluster's secrets; the credentials need Key Vault Secrets Officer on it."
  type        = string
}

variable "location" {
  type    = string
  default = "westeurope"
}

variable "admin_cidr" {
  description = "Prefix that may reach SSH, WinRM and the API server, e.g. your office's."
  type        = string
}

provider "mixedk8s" {
  azure = { subscription_id = var.subscription_id, key_vault_url = var.key_vault_url }
}

resource "mixedk8s_cluster" "demo" {
  name = "demo"
  azure = {
    subscription_id = var.subscription_id
    location        = var.location
    resource_group  = "mixedk8s-demo"
  }

  control_plane = { count = 1, instance_type = "Standard_D4s_v5" }

  node_pools = {
    linux = { count = 2 }
    # Windows Server 2025 needs Kubernetes 1.35 or later, and flannel:
    # Calico for Windows supports 2019 and 2022.
    win = { os = "windows", windows_version = "2022", count = 2, instance_type = "Standard_D4s_v5" }
  }

  access = { admin_cidrs = [var.admin_cidr] }
}

output "api_endpoint" {
  value = mixedk8s_cluster.demo.api_endpoint
}
