#!/usr/bin/env bash
# Builds containerd from its released sources, at the version the agent's
# built-in manifest installs (nodeagent/manifest/manifest.go), and links it
# into <repo>/bin/containerd. Only tests use it: `containerd --config <file>
# config dump` runs the config the agent writes through containerd's own
# loader and every plugin's config types (the CRI plugin's are internal to
# containerd, internal/cri/config, so no Go test can import them).
#
#   hack/containerd-bin.sh
#
# containerd's go.mod carries exclude directives, which `go install
# pkg@version` refuses, so the build runs in the module's own directory in
# the module cache, as the main module, with its go.sum (-mod=readonly),
# statically (CGO_ENABLED=0, no_btrfs), as containerd's Makefile builds with
# STATIC=1. Cached once under
#   ${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/containerd-v<version>/bin/containerd
# with a key file (version, Go version, platform, tags); a cached binary only
# links. Cold, it took 10 min 10 s (178 s of CPU, load average 8 on 2 cores)
# with its modules downloaded; it is not part of `make demo`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-go}
die() { echo "containerd-bin: $*" >&2; exit 1; }

version=$(grep -o 'Containerd: "[0-9][0-9.]*"' "$repo/nodeagent/manifest/manifest.go" | head -1 | cut -d'"' -f2)
[[ -n "$version" ]] || die "cannot read containerd's version from nodeagent/manifest/manifest.go; fix: keep 'Containerd: \"X.Y.Z\"' in its components table"

export GOWORK=off CGO_ENABLED=0 GOFLAGS=
tags="urfave_cli_no_docs no_btrfs osusergo netgo static_build"
key="v$version $($GO env GOVERSION) $($GO env GOOS)/$($GO env GOARCH) cgo=0 tags=$tags"
cache="${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/containerd-v$version/bin"
mkdir -p "$cache" "$repo/bin"

exec 9>"$cache/.lock"
flock 9
if [[ -x "$cache/containerd" && "$(cat "$cache/.containerd.key" 2>/dev/null)" == "$key" ]]; then
	echo "containerd-bin: containerd $version is cached ($cache/containerd)"
else
	dir=$(cd /tmp && $GO mod download -json "github.com/containerd/containerd/v2@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d "$dir" ]] || die "go mod download github.com/containerd/containerd/v2@v$version gave no directory; fix: check GOPROXY reaches the module proxy"
	echo "containerd-bin: building containerd $version (about 3 minutes of CPU cold)..."
	start=$SECONDS
	(cd "$dir" && $GO build -mod=readonly -trimpath -tags "$tags" \
		-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=v$version" \
		-o "$cache/containerd.new" ./cmd/containerd) ||
		die "building containerd $version failed (output above); fix: check the Go version against its go.mod"
	mv "$cache/containerd.new" "$cache/containerd"
	echo "$key" >"$cache/.containerd.key"
	echo "containerd-bin: built containerd $version in $((SECONDS - start)) s"
fi
ln -sf "$cache/containerd" "$repo/bin/containerd"
