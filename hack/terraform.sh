#!/usr/bin/env bash
# Builds the Terraform and OpenTofu CLIs the provider's acceptance tests and
# examples run with, from source through the Go module proxy, and links them
# into <repo>/bin/.
#
#   hack/terraform.sh [name...]     default: terraform tofu
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
# 3-4 minutes per CLI on a quiet 2-core machine.
#
# Environment:
#   MIXEDK8S_CACHE     cache root (default $HOME/.cache/mixedk8s)
#   MIXEDK8S_BUILD_P   parallel compile jobs, go build -p (default 2)
#   GO                 the go command (default go)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-go}
jobs=${MIXEDK8S_BUILD_P:-2}

TERRAFORM_VERSION=v1.8.5
TOFU_VERSION=v1.6.3

die() { echo "terraform.sh: $*" >&2; exit 1; }

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
		flock 9
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
		if ! (cd "$tmpdir" && GOBIN="$tmpdir" nice -n 10 \
			"$GO" install -p "$jobs" -trimpath -ldflags="$ldflags" "$pkg"); then
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
