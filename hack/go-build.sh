#!/usr/bin/env bash
# Runs go build in this module with progress (hack/build-progress.sh): from the
# second build on, a line every 30 seconds says packages compiled n of N, the
# time elapsed and about how long is left, from the last build of NAME. An
# up-to-date build prints nothing.
#
#   hack/go-build.sh NAME [go build flags and packages]
#
# NAME keys the build's times in ${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/times.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/build-progress.sh
. "$repo/hack/build-progress.sh"
[[ $# -ge 2 && "$1" =~ ^[A-Za-z0-9._-]+$ ]] ||
	{ echo "usage: hack/go-build.sh NAME [go build flags] packages (NAME: letters, digits, . _ -)" >&2; exit 2; }
name=$1
shift
times="${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/times"
mkdir -p "$times"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
progress_build "build $name" 0 "$times/$name" "$log" -- "${GO:-go}" build -v "$@"
