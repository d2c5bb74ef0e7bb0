#!/usr/bin/env bash
# The demo: apply examples/lab on a running lab with the locally built
# provider, then print what was built and where to look next.
# Usage: [CLOUD=aws|azure|gcp] hack/demo.sh up|down
#   up    apply (the lab must run: hack/lab.sh start), print the summary
#   down  destroy the demo cluster
# CLOUD=azure or gcp applies examples/azure or examples/gcp instead, with
# examples/lab/<cloud>/ beside it pointing it at the lab's emulator of that
# cloud (the lab must emulate it: LAB_CLOUDS=<cloud> hack/lab.sh start).
# The Terraform working folder is $MIXEDK8S_LAB_DIR/demo (default .lab/demo),
# or demo-<cloud> for azure and gcp.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dir="${MIXEDK8S_LAB_DIR:-$repo/.lab}"
envfile="$dir/lab.env"
cloud="${CLOUD:-aws}"
case "$cloud" in
aws) work="$dir/demo" name=lab ;;
azure | gcp) work="$dir/demo-$cloud" name=demo ;;
*)
  echo "demo: CLOUD=$cloud is not one of aws, azure, gcp" >&2
  exit 2
  ;;
esac
# A terraform or tofu the provider supports: hack/terraform.sh --find says
# which, and why it skipped others.
tf=$(hack/terraform.sh --find)
[[ -x "$repo/bin/terraform-provider-mixedk8s" ]] || { echo "demo: the provider is not built; fix: make build" >&2; exit 1; }
[[ -f "$envfile" ]] || { echo "demo: no running lab ($envfile is missing); fix: hack/lab.sh start" >&2; exit 1; }

# The lab's env file carries the example's TF_VAR_* and the emulator's credentials.
set -a
# shellcheck disable=SC1090 # written by the lab
. "$envfile"
set +a

# The cloud's example and the lab's values for its variables.
mkdir -p "$work"
case "$cloud" in
aws)
  cp "$repo"/examples/lab/*.tf "$work"/
  ;;
azure)
  [[ -n "${AZURE_RESOURCE_MANAGER_ENDPOINT:-}" ]] ||
    { echo "demo: the running lab does not emulate Azure; fix: hack/lab.sh stop, then make demo CLOUD=azure" >&2; exit 1; }
  cp "$repo"/examples/azure/*.tf "$repo"/examples/lab/azure/*.tf "$work"/
  export TF_VAR_subscription_id="$AZURE_SUBSCRIPTION_ID" TF_VAR_key_vault_url="$AZURE_KEY_VAULT_URL" \
    TF_VAR_location="$AZURE_LOCATION" TF_VAR_admin_cidr=127.0.0.0/8 \
    TF_VAR_azure_resource_manager_endpoint="$AZURE_RESOURCE_MANAGER_ENDPOINT" \
    TF_VAR_azure_authority_host="$AZURE_AUTHORITY_HOST" TF_VAR_azure_ca_bundle_file="$AZURE_CA_BUNDLE"
  ;;
gcp)
  [[ -n "${MIXEDK8S_GCP_ENDPOINT:-}" ]] ||
    { echo "demo: the running lab does not emulate Compute Engine; fix: hack/lab.sh stop, then make demo CLOUD=gcp" >&2; exit 1; }
  cp "$repo"/examples/gcp/*.tf "$repo"/examples/lab/gcp/*.tf "$work"/
  export TF_VAR_project="$GOOGLE_CLOUD_PROJECT" TF_VAR_region="$MIXEDK8S_GCP_REGION" TF_VAR_zone="$MIXEDK8S_GCP_REGION-a" \
    TF_VAR_admin_cidr=127.0.0.0/8 TF_VAR_gcp_endpoint="$MIXEDK8S_GCP_ENDPOINT" \
    TF_VAR_gcp_ca_bundle_file="$MIXEDK8S_GCP_CA_BUNDLE" TF_VAR_gcp_access_token="$MIXEDK8S_GCP_ACCESS_TOKEN"
  ;;
esac

# The locally built provider, without a registry: dev_overrides.
cat >"$dir/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "mixedk8s/mixedk8s" = "$repo/bin"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE="$dir/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1

case "${1:-}" in
up)
  kubectl="$repo/bin/kubectl"
  [[ -x "$kubectl" ]] || { echo "demo: $kubectl is missing; fix: make lab-bins" >&2; exit 1; }
  start=$(date +%s)
  "$tf" -chdir="$work" apply -auto-approve -input=false -no-color
  secs=$(( $(date +%s) - start ))
  kubeconfig="$dir/kubeconfig"
  umask 077
  "$tf" -chdir="$work" output -raw kubeconfig >"$kubeconfig"
  endpoint=$("$tf" -chdir="$work" output -raw api_endpoint)
  # The kubeconfig names the private endpoint, which only the lab network
  # reaches; on this machine the lab's API server listens on 127.0.0.1 (its
  # certificate holds that address too).
  local_ep=$(cat "$dir/clusters/$name/api-endpoint" 2>/dev/null) ||
    { echo "demo: the lab runs no control plane for cluster $name ($dir/clusters/$name/api-endpoint is missing); see $dir/lab.log" >&2; exit 1; }
  name=$("$kubectl" --kubeconfig "$kubeconfig" config view -o 'jsonpath={.clusters[0].name}')
  "$kubectl" --kubeconfig "$kubeconfig" config set-cluster "$name" --server="https://$local_ep" >/dev/null
  cat <<SUMMARY

mixedk8s demo: cluster "$name" on the lab ($cloud), applied in ${secs}s

From the API server (kubectl --kubeconfig $kubeconfig get nodes -o wide):
$("$kubectl" --kubeconfig "$kubeconfig" get nodes -o wide -L mixedk8s.io/pool,node.kubernetes.io/windows-build)

RuntimeClasses:
$("$kubectl" --kubeconfig "$kubeconfig" get runtimeclasses)

Every node is a hollow kubelet (real kubelet code, no containers), so OS-IMAGE and
kubernetes.io/os say Linux for all; the Windows nodes are the ones with a windows-build
label and the os=windows:NoSchedule taint their agent set.

API endpoint:  https://$endpoint inside the lab network; https://$local_ep on this machine
kubeconfig:    $kubeconfig (owner-only), pointed at https://$local_ep
agent logs:    each node's sandbox holds what the node agent did, e.g.
                 $dir/nodes/*-$name-cp-0/var/lib/mixedk8s/nodeagent/agent.log
                 $dir/nodes/*-$name-win-0/C/ProgramData/mixedk8s/nodeagent/agent.log
               on a real node: sudo cat /var/lib/mixedk8s/nodeagent/agent.log, or
               nodeagent diagnose --out diag.tar.gz for everything at once
control plane: $dir/clusters/$name/control-plane/logs/ (etcd, kube-apiserver, kube-controller-manager)
lab:           $envfile (endpoints, CA, bastion); inspect with curl \$MIXEDK8S_LAB_API/objects?cluster=$name
tear down:     make demo-down CLOUD=$cloud
SUMMARY
  ;;
down)
  if [[ -f "$work/terraform.tfstate" ]]; then
    "$tf" -chdir="$work" destroy -auto-approve -input=false -no-color
  fi
  ;;
*)
  echo "usage: hack/demo.sh up|down" >&2
  exit 2
  ;;
esac
