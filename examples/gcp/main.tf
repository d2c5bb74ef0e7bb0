# A mixed Linux/Windows cluster on Google Cloud. Credentials come from
# Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS,
# `gcloud auth application-default login`, or the metadata server. The
# nodes' secrets go to Secret Manager in the same project.
#
#   terraform init && terraform apply -var project=my-project -var admin_cidr=203.0.113.0/24
#
# On the lab's Compute Engine: make demo CLOUD=gcp (examples/lab/gcp points it at the lab).

terraform {
  required_providers {
    mixedk8s = {
      source = "mixedk8s/mixedk8s"
    }
  }
}

variable "project" {
  description = "Project ID (not its name or number)."
  type        = string
}

variable "region" {
  type    = string
  default = "europe-west4"
}

variable "zone" {
  type    = string
  default = "europe-west4-a"
}

variable "admin_cidr" {
  description = "Prefix that may reach SSH, WinRM and the API server, e.g. your office's."
  type        = string
}

provider "mixedk8s" {
  gcp = { project = var.project }
}

resource "mixedk8s_cluster" "demo" {
  name = "demo"
  gcp  = { project = var.project, region = var.region, zone = var.zone }

  network = { cni = "flannel" }

  node_pools = {
    linux = { count = 1, instance_type = "n2-standard-4" }
    # Hyper-V isolation is refused on GCP: its nested virtualisation is KVM only.
    win = { os = "windows", windows_version = "2022", count = 2, instance_type = "n2-standard-4" }
  }

  access = { admin_cidrs = [var.admin_cidr] }
}

output "api_endpoint" {
  value = mixedk8s_cluster.demo.api_endpoint
}
