#!/usr/bin/env bash
# Cross-builds the node agent for every platform nodes run into
# nodeagent/bundle/bin/, where package bundle embeds it.
# Usage: hack/build-agent-bundle.sh [VERSION]   (default: git describe)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
out=nodeagent/bundle/bin
mkdir -p "$out"
for platform in windows/amd64 linux/amd64 linux/arm64; do
  goos="${platform%/*}" goarch="${platform#*/}"
  name="nodeagent-${goos}-${goarch}"
  [[ "$goos" == windows ]] && name+=".exe"
  CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" hack/go-build.sh "nodeagent-$goos-$goarch" -trimpath \
    -ldflags "-s -w -X github.com/mixedk8s/mixedk8s/nodeagent/agent.Version=${version}" \
    -o "$out/$name" ./nodeagent/cmd/nodeagent
  (cd "$out" && sha256sum "$name" > "$name.sha256")
  echo "$out/$name $(stat -c %s "$out/$name") bytes $(cut -d' ' -f1 "$out/$name.sha256")"
done
