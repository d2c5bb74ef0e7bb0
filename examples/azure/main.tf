# A mixed Linux/Windows cluster on Azure. Credentials come from the Azure
# SDK's default chain: AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET,
# workload or managed identity, or `az login`.
#
#   terraform init && terraform apply -var subscription_id=$(az account show --query id -o tsv) -var admin_cidr=203.0.113.0/24

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

variable "admin_cidr" {
  type = string
}

provider "mixedk8s" {
  azure = { subscription_id = var.subscription_id }
}

resource "mixedk8s_cluster" "demo" {
  name = "demo"
  azure = {
    subscription_id = var.subscription_id
    location        = "westeurope"
    resource_group  = "mixedk8s-demo"
  }

  control_plane = { count = 1, instance_type = "Standard_D4s_v5" }

  node_pools = {
    linux = { count = 2 }
    # Windows Server 2025 needs Kubernetes 1.35 or later, and flannel:
    # Calico does not support it yet.
    win = { os = "windows", windows_version = "2022", count = 2, instance_type = "Standard_D4s_v5" }
  }

  access = { admin_cidrs = [var.admin_cidr] }
}

output "api_endpoint" {
  value = mixedk8s_cluster.demo.api_endpoint
}
