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
    region  = "eu-west-1" # for imports by name and lookups; else AWS_REGION, AWS_DEFAULT_REGION, the profile's
    profile = "platform"

    # Optional: act as a role of the target account. The credentials are
    # checked once, with STS GetCallerIdentity, when the provider starts.
    assume_role = {
      role_arn     = "arn:aws:iam::111122223333:role/mixedk8s-deployer"
      session_name = "platform-ci"
      external_id  = "platform-7"
    }

    # Optional: one URL per service (VPC interface endpoints); the others
    # use `endpoint`, else the SDK's resolution.
    endpoints = {
      ec2 = "https://vpce-0a1b2c3d4e5f67890-abcdefgh.ec2.eu-west-1.vpce.amazonaws.com"
    }
  }

  # Optional: Azure. Without a credential attribute the SDK's default chain
  # signs in (AZURE_* variables, workload identity, managed identity, az
  # login); here workload identity federation, with AZURE_CLIENT_ID,
  # AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE set by the CI system.
  azure = {
    key_vault_url = "https://platform-secrets.vault.azure.net"
    use_oidc      = true
  }

  # Optional: tags on every cloud object of every cluster; a cluster's own
  # tags win for the same key.
  default_tags = {
    tags = { cost-center = "platform", owner = "infra" }
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
