#!/usr/bin/env bash
# The demo: apply examples/lab on a running lab with the locally built
# provider, then print what was built and where to look next.
# Usage: hack/demo.sh up|down
#   up    apply (the lab must run: hack/lab.sh start), print the summary
#   down  destroy the demo cluster
# The Terraform working folder is $MIXEDK8S_LAB_DIR/demo (default .lab/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dir="${MIXEDK8S_LAB_DIR:-$repo/.lab}"
work="$dir/demo"
envfile="$dir/lab.env"
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

# The locally built provider, without a registry: dev_overrides.
mkdir -p "$work"
cp "$repo"/examples/lab/*.tf "$work"/
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
  local_ep=$(cat "$dir/clusters/lab/api-endpoint" 2>/dev/null) ||
    { echo "demo: the lab runs no control plane for cluster lab ($dir/clusters/lab/api-endpoint is missing); see $dir/lab.log" >&2; exit 1; }
  name=$("$kubectl" --kubeconfig "$kubeconfig" config view -o 'jsonpath={.clusters[0].name}')
  "$kubectl" --kubeconfig "$kubeconfig" config set-cluster "$name" --server="https://$local_ep" >/dev/null
  cat <<SUMMARY

mixedk8s demo: cluster "lab" on the lab, applied in ${secs}s

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
                 $dir/nodes/*-lab-cp-0/var/lib/mixedk8s/nodeagent/agent.log
                 $dir/nodes/*-lab-win-0/C/ProgramData/mixedk8s/nodeagent/agent.log
               on a real node: sudo cat /var/lib/mixedk8s/nodeagent/agent.log, or
               nodeagent diagnose --out diag.tar.gz for everything at once
control plane: $dir/clusters/lab/control-plane/logs/ (etcd, kube-apiserver, kube-controller-manager)
lab:           $envfile (endpoints, CA, bastion); inspect with curl \$MIXEDK8S_LAB_API/objects?cluster=lab
tear down:     make demo-down
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
