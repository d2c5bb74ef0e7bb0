#!/usr/bin/env bash
# The provider's acceptance tests, once with terraform and once with tofu,
# side by side: each run mostly waits on its own labs, so on 2 cores the
# pair takes little more than the longer of the two. Each CLI's output is
# printed whole when both have ended, then which failed.
# Usage: hack/testacc.sh   (make testacc; part of make test)
set -uo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$src/bin
go=${GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME ENV...: one CLI's pass, its output and exit status kept in $tmp.
run() {
	local name=$1
	shift
	local began=$SECONDS
	(cd "$src" && env "$@" CHECKPOINT_DISABLE=1 TF_ACC=1 "$go" test -count=1 -timeout 20m -run '^TestAcc' ./provider/...) >"$tmp/$name.log" 2>&1
	echo "$? $((SECONDS - began))" >"$tmp/$name.rc"
}

run terraform TF_ACC_TERRAFORM_PATH="$bin/terraform" &
run tofu TF_ACC_TERRAFORM_PATH="$bin/tofu" TF_ACC_PROVIDER_NAMESPACE=hashicorp TF_ACC_PROVIDER_HOST=registry.opentofu.org &
wait

failed=()
for name in terraform tofu; do
	read -r rc took <"$tmp/$name.rc"
	echo "== acceptance tests with $name: exit $rc after ${took}s"
	cat "$tmp/$name.log"
	[ "$rc" = 0 ] || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "acceptance tests failed with: ${failed[*]}" >&2
	exit 1
fi
