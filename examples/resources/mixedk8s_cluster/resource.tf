# A Linux control plane, a Linux pool and a Windows Server 2022 pool on AWS.
resource "mixedk8s_cluster" "demo" {
  name               = "demo"
  kubernetes_version = "1.36.3"
  aws                = { region = "eu-west-1" } # exactly one of aws, azure, gcp

  network = {
    cni          = "flannel"
    node_cidr    = "10.0.0.0/16"
    pod_cidr     = "10.244.0.0/16"
    service_cidr = "10.96.0.0/12"
  }

  control_plane = { count = 1, instance_type = "m6i.large" }

  node_pools = {
    linux = { os = "linux", count = 2, instance_type = "m6i.large" }
    win = {
      os              = "windows"
      windows_version = "2022"
      isolation       = "process"
      count           = 2
      instance_type   = "m6i.xlarge"
      taints          = ["os=windows:NoSchedule"]
    }
  }

  access   = { admin_cidrs = ["203.0.113.0/24"] }
  timeouts = { create = "60m" }

  # On every object the cloud creates (AWS tags, Azure tags, GCP labels:
  # lowercase keys and values there), over the provider's default_tags.
  tags = { team = "payments", env = "prod" }
}

output "api_endpoint" {
  value = mixedk8s_cluster.demo.api_endpoint
}
