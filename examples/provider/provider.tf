terraform {
  required_providers {
    mixedk8s = {
      source = "mixedk8s/mixedk8s"
    }
  }
}

# Credentials come from each cloud's standard chain (environment, shared
# config files, CLI logins, instance identities); nothing secret goes here.
provider "mixedk8s" {
  aws = {
    region  = "eu-west-1" # used for imports and data sources without an aws attribute
    profile = "platform"
  }

  # Optional: reach every node through one SSH jump host. Its host key is
  # pinned; the private key may also come from ssh-agent.
  bastion = {
    address     = "bastion.example.com:22"
    user        = "mixedk8s"
    host_key    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    private_key = file("~/.ssh/mixedk8s-bastion")
  }
}
