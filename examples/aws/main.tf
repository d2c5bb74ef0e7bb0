# A mixed Linux/Windows cluster on AWS. Credentials come from the AWS SDK's
# default chain: AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO,
# or an instance role.
#
#   terraform init && terraform apply -var admin_cidr=203.0.113.0/24

terraform {
  required_providers {
    mixedk8s = {
      source = "mixedk8s/mixedk8s"
    }
  }
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "admin_cidr" {
  description = "Prefix that may reach SSH, WinRM and the API server, e.g. your office's."
  type        = string
}

provider "mixedk8s" {
  aws = { region = var.region }
}

resource "mixedk8s_cluster" "demo" {
  name               = "demo"
  kubernetes_version = "1.36.3"
  aws                = { region = var.region, zones = ["${var.region}a", "${var.region}b"] }

  control_plane = { count = 3, instance_type = "m6i.large" }

  node_pools = {
    linux = { os = "linux", count = 2, instance_type = "m6i.large" }
    win = {
      os              = "windows"
      windows_version = "2022"
      count           = 2
      instance_type   = "m6i.xlarge"
      labels          = { "example.com/team" = "payments" }
      taints          = ["os=windows:NoSchedule"]
    }
    # Hyper-V isolation needs nested virtualisation: on AWS, a metal instance.
    hyperv = {
      os              = "windows"
      windows_version = "2022"
      isolation       = "hyperv"
      count           = 0
      instance_type   = "m5.metal"
    }
  }

  access   = { admin_cidrs = [var.admin_cidr] }
  timeouts = { create = "60m", update = "60m" }
}

output "api_endpoint" {
  value = mixedk8s_cluster.demo.api_endpoint
}

output "nodes" {
  value = { for n in mixedk8s_cluster.demo.nodes : n.name => n.private_ip }
}
