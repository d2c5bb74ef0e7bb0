# A mixed Linux/Windows cluster on Google Cloud. Credentials come from
# Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS,
# `gcloud auth application-default login`, or the metadata server.
#
#   terraform init && terraform apply -var project=my-project -var admin_cidr=203.0.113.0/24

terraform {
  required_providers {
    mixedk8s = {
      source = "mixedk8s/mixedk8s"
    }
  }
}

variable "project" {
  type = string
}

variable "admin_cidr" {
  type = string
}

provider "mixedk8s" {
  gcp = { project = var.project }
}

resource "mixedk8s_cluster" "demo" {
  name = "demo"
  gcp  = { project = var.project, region = "europe-west4", zone = "europe-west4-a" }

  network = { cni = "flannel" }

  node_pools = {
    linux = { count = 1, instance_type = "n2-standard-4" }
    win   = { os = "windows", windows_version = "2022", count = 2, instance_type = "n2-standard-4" }
  }

  access = { admin_cidrs = [var.admin_cidr] }
}

output "api_endpoint" {
  value = mixedk8s_cluster.demo.api_endpoint
}
