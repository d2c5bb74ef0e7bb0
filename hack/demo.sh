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
tf="$repo/bin/terraform"

[[ -x "$tf" ]] || { echo "demo: $tf is missing; fix: make terraform-bins" >&2; exit 1; }
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
  start=$(date +%s)
  "$tf" -chdir="$work" apply -auto-approve -input=false -no-color
  secs=$(( $(date +%s) - start ))
  kubeconfig="$dir/kubeconfig"
  umask 077
  "$tf" -chdir="$work" output -raw kubeconfig >"$kubeconfig"
  endpoint=$("$tf" -chdir="$work" output -raw api_endpoint)
  cat <<SUMMARY

mixedk8s demo: cluster "lab" on the lab, applied in ${secs}s

NAME         OS       POOL           ADDRESS         STATUS
$("$tf" -chdir="$work" output -raw nodes)

API endpoint:  https://$endpoint (inside the lab network)
kubeconfig:    $kubeconfig (owner-only)
agent logs:    each node's sandbox holds what the node agent did, e.g.
                 $dir/nodes/*-lab-cp-0/var/lib/mixedk8s/nodeagent/agent.log
                 $dir/nodes/*-lab-win-0/C/ProgramData/mixedk8s/nodeagent/agent.log
               on a real node: sudo cat /var/lib/mixedk8s/nodeagent/agent.log, or
               nodeagent diagnose --out diag.tar.gz for everything at once
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
