#!/usr/bin/env bash
# Builds the Terraform and OpenTofu CLIs the provider's acceptance tests and
# examples run with, from source through the Go module proxy, and links them
# into <repo>/bin/.
#
#   hack/terraform.sh [name...]     default: terraform tofu
#   hack/terraform.sh --find        print the CLI the demo uses; build nothing
#   hack/terraform.sh --find-or-build   the same, building terraform if none
#
# The demo needs one CLI, not these pins: --find takes $MIXEDK8S_TERRAFORM,
# else the first of `terraform` and `tofu` on the PATH, whose version is at
# least the oldest the provider supports: terraform 1.0.0 (the provider
# speaks plugin protocol 6, "compatible with Terraform CLI version 1.0 and
# later": https://developer.hashicorp.com/terraform/plugin/terraform-plugin-protocol)
# and tofu 1.6.0 (its first release, protocol 6 included). A CLI below that
# is named and skipped. Only when none qualifies does --find-or-build build
# the pinned terraform. After the PATH, --find also tries ./bin/terraform and
# ./bin/tofu, for callers that do not have ./bin on their PATH.
#
# Pins:
#   terraform   github.com/hashicorp/terraform@v1.8.5
#   tofu        github.com/opentofu/opentofu/cmd/tofu@v1.6.3
#
# Each CLI is built once into a cache outside the clone,
#   ${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/terraform-v1.8.5/bin/terraform
#   ${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/tofu-v1.6.3/bin/tofu
# next to a key file (.<name>.key) holding the version, the Go version, the
# target platform and the build flags. A binary whose key differs (a new Go,
# a changed pin) is rebuilt; otherwise the run only links it. A build takes
# 3-4 minutes per CLI on a quiet 2-core machine; while it runs, a line every
# 30 seconds says how far it is (hack/build-progress.sh).
#
# Environment:
#   MIXEDK8S_CACHE     cache root (default $HOME/.cache/mixedk8s)
#   MIXEDK8S_BUILD_P   parallel compile jobs, go build -p (default 2)
#   GO                 the go command (default go)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/build-progress.sh
. "$repo/hack/build-progress.sh"
GO=${GO:-go}
jobs=${MIXEDK8S_BUILD_P:-2}

TERRAFORM_VERSION=v1.8.5
TOFU_VERSION=v1.6.3

die() { echo "terraform.sh: $*" >&2; exit 1; }

# The oldest CLIs the provider works with (see the top of this file).
TERRAFORM_MIN=1.0.0
TOFU_MIN=1.6.0

# cli_ok prints "<kind> <version>" for a terraform or tofu at least the
# minimum for its kind, and fails, saying why on stderr, for anything else.
cli_ok() {
	local cli=$1 line kind ver min
	line=$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$cli" version 2>/dev/null | head -n 1) || true
	if [[ "$line" =~ ^Terraform\ v([0-9]+\.[0-9]+\.[0-9]+) ]]; then
		kind=terraform min=$TERRAFORM_MIN
	elif [[ "$line" =~ ^OpenTofu\ v([0-9]+\.[0-9]+\.[0-9]+) ]]; then
		kind=tofu min=$TOFU_MIN
	else
		echo "terraform.sh: skipping $cli: '$cli version' says '${line}', not Terraform vX.Y.Z or OpenTofu vX.Y.Z" >&2
		return 1
	fi
	ver=${BASH_REMATCH[1]}
	if [[ "$(printf '%s\n%s\n' "$min" "$ver" | sort -V | head -n 1)" != "$min" ]]; then
		echo "terraform.sh: skipping $cli: $kind $ver is older than $min, the oldest the provider supports" >&2
		return 1
	fi
	echo "$kind $ver"
}

# find_cli prints the path of the CLI the demo uses, or fails.
find_cli() {
	local c path found
	if [[ -n "${MIXEDK8S_TERRAFORM:-}" ]]; then
		path=$(command -v "$MIXEDK8S_TERRAFORM") ||
			die "MIXEDK8S_TERRAFORM=$MIXEDK8S_TERRAFORM is not an executable; fix: set it to a terraform >= $TERRAFORM_MIN or tofu >= $TOFU_MIN, or unset it"
		found=$(cli_ok "$path") ||
			die "MIXEDK8S_TERRAFORM=$path cannot run the demo (above); fix: set it to a terraform >= $TERRAFORM_MIN or tofu >= $TOFU_MIN, or unset it"
		echo "terraform.sh: using $found at $path (MIXEDK8S_TERRAFORM)" >&2
		echo "$path"
		return 0
	fi
	# Then what `make terraform-bins` linked, for callers without ./bin on the PATH.
	for c in terraform tofu "$repo/bin/terraform" "$repo/bin/tofu"; do
		path=$(command -v "$c") || continue
		found=$(cli_ok "$path") || continue
		echo "terraform.sh: using $found at $path" >&2
		echo "$path"
		return 0
	done
	return 1
}

case "${1:-}" in
--find)
	find_cli || die "no terraform >= $TERRAFORM_MIN or tofu >= $TOFU_MIN on the PATH; fix: install one, set MIXEDK8S_TERRAFORM, or run 'make terraform-bins'"
	exit 0
	;;
--find-or-build)
	find_cli && exit 0
	echo "terraform.sh: no terraform >= $TERRAFORM_MIN or tofu >= $TOFU_MIN on the PATH; building terraform $TERRAFORM_VERSION" >&2
	"$0" terraform >&2
	echo "$repo/bin/terraform"
	exit 0
	;;
-*) die "unknown option '$1'; fix: use --find, --find-or-build or CLI names (terraform, tofu)" ;;
esac

pkg_of() {
	case "$1" in
	terraform) echo "github.com/hashicorp/terraform@$TERRAFORM_VERSION" ;;
	tofu) echo "github.com/opentofu/opentofu/cmd/tofu@$TOFU_VERSION" ;;
	*) return 1 ;;
	esac
}

version_of() {
	case "$1" in
	terraform) echo "$TERRAFORM_VERSION" ;;
	tofu) echo "$TOFU_VERSION" ;;
	esac
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(terraform tofu)
for n in "${names[@]}"; do
	pkg_of "$n" >/dev/null || die "unknown CLI '$n'; fix: use terraform or tofu"
done

# Build outside any workspace, statically, whatever the caller's environment.
export GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-}"
goos=$($GO env GOOS)
goarch=$($GO env GOARCH)
ldflags="-s -w"
cacheroot="${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}"
mkdir -p "$repo/bin"

total_start=$SECONDS
built=0
for n in "${names[@]}"; do
	version=$(version_of "$n")
	pkg=$(pkg_of "$n")
	cache="$cacheroot/$n-$version/bin"
	mkdir -p "$cache"
	key="$n $version $($GO env GOVERSION) $goos/$goarch cgo=0 trimpath ldflags=$ldflags"
	bin="$cache/$n"
	(
		# One build at a time per CLI and cache, also across clones sharing it.
		exec 9>"$cache/.lock"
		if ! flock -n 9; then
			echo "terraform.sh: another build into $cache runs (another clone or make); waiting for it..."
			flock 9
		fi
		if [[ -x "$bin" && -f "$cache/.$n.key" && "$(cat "$cache/.$n.key")" == "$key" ]]; then
			echo "terraform.sh: $n $version is cached ($bin)"
			exit 0
		fi
		echo "terraform.sh: building $n from $pkg ($goos/$goarch, -p $jobs)..."
		start=$SECONDS
		rm -f "$cache/.$n.key"
		tmpdir=$(mktemp -d "$cache/.gobin.XXXXXX")
		trap 'rm -rf "$tmpdir"' EXIT
		# go install pkg@version builds the module as its own main module, with
		# its go.sum and replace-free requirements, ignoring any go.mod around.
		if ! (cd "$tmpdir" && progress_build "terraform.sh: $n $version" 0 "$cache/.times" "$tmpdir/build.log" -- \
			env GOBIN="$tmpdir" nice -n 10 "$GO" install -v -p "$jobs" -trimpath -ldflags="$ldflags" "$pkg"); then
			die "building $n failed (output above); fix: check that the Go module proxy is reachable and that $pkg builds with $($GO env GOVERSION)"
		fi
		mv -f "$tmpdir/$n" "$bin" || die "cannot move the built $n into $cache"
		echo "$key" >"$cache/.$n.key"
		echo "terraform.sh: built $n $version in $((SECONDS - start))s ($(du -h "$bin" | cut -f1))"
		exit 10
	) || rc=$?
	case "${rc:-0}" in
	0) ;;
	10) built=$((built + 1)) ;;
	*) exit "$rc" ;;
	esac
	unset rc
	ln -sfn "$bin" "$repo/bin/$n"
done
echo "terraform.sh: ${names[*]} ready in $repo/bin ($built built, $((SECONDS - total_start))s)"
