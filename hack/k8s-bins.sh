#!/usr/bin/env bash
# Builds Kubernetes and etcd binaries from the sources pinned in test/lab/k8s
# (a module of its own), and the lab's hollow-kubelet from that module's
# cmd/hollow-kubelet, and links them into <repo>/bin/.
#
#   hack/k8s-bins.sh [name...]     default: kubeadm
#
# The lab and its tests need kubeadm, etcd, kube-apiserver,
# kube-controller-manager, hollow-kubelet and kubectl (`make lab-bins`).
# Also buildable: kube-scheduler, kubelet, kube-proxy and kubemark (the
# upstream hollow node, which hollow-kubelet replaced).
#
# Each binary is built once into a cache outside the clone,
#   ${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/k8s-<version>/bin/<name>
# next to a key file (.<name>.key) holding the Kubernetes version, a hash of
# test/lab/k8s/go.mod and go.sum (and, for hollow-kubelet, of its own
# sources), the Go version, the target platform and the build flags. A
# binary whose key differs (a changed pin or source, a new Go) is rebuilt;
# otherwise the run only links it, in well under a second. Builds
# are static (CGO_ENABLED=0, as Kubernetes releases them), stripped, with
# -trimpath, and use the module's go.sum as is (-mod=readonly): after changing
# a pin, run `go mod tidy` in test/lab/k8s and commit go.mod and go.sum.
#
# Environment:
#   MIXEDK8S_CACHE     cache root (default $HOME/.cache/mixedk8s)
#   MIXEDK8S_BUILD_P   parallel compile jobs, go build -p (default 2)
#   GO                 the go command (default go)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$repo/test/lab/k8s"
GO=${GO:-go}
jobs=${MIXEDK8S_BUILD_P:-2}

die() { echo "k8s-bins: $*" >&2; exit 1; }

[[ -f "$mod/go.mod" && -f "$mod/go.sum" ]] ||
	die "$mod/go.mod or go.sum is missing; fix: restore test/lab/k8s from git"

version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$mod/go.mod")
[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] ||
	die "cannot read the k8s.io/kubernetes version from $mod/go.mod (got '${version}'); fix: require k8s.io/kubernetes vX.Y.Z there"
major=${BASH_REMATCH[1]}
minor=${BASH_REMATCH[2]}

known="kubeadm etcd kube-apiserver kube-controller-manager hollow-kubelet kubectl kube-scheduler kubelet kube-proxy kubemark"

pkg_of() {
	case "$1" in
	etcd) echo go.etcd.io/etcd/server/v3 ;;
	hollow-kubelet) echo "github.com/mixedk8s/mixedk8s/test/lab/k8s/cmd/$1" ;;
	kubeadm | kube-apiserver | kube-controller-manager | kube-scheduler | kubemark | kubelet | kube-proxy | kubectl)
		echo "k8s.io/kubernetes/cmd/$1" ;;
	*) return 1 ;;
	esac
}

# src_of prints a hash of a binary's own sources when they live in this
# repository (test/lab/k8s/cmd/<name>), and nothing for pinned upstream ones.
src_of() {
	local dir="$mod/cmd/$1"
	[[ -d "$dir" ]] || return 0
	echo " src=$(find "$dir" -type f -name '*.go' -print0 | LC_ALL=C sort -z | xargs -0 cat | sha256sum | cut -c1-16)"
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(kubeadm)
for n in "${names[@]}"; do
	pkg_of "$n" >/dev/null || die "unknown binary '$n'; fix: use one of $known"
done

# Build in the module alone, statically, whatever the caller's environment.
export GOWORK=off CGO_ENABLED=0
goos=$($GO env GOOS)
goarch=$($GO env GOARCH)
modhash=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)

cache="${MIXEDK8S_CACHE:-$HOME/.cache/mixedk8s}/k8s-$version/bin"
mkdir -p "$cache" "$repo/bin"

# The version the binaries report (kubeadm compares it with kubernetesVersion),
# set the way Kubernetes' own build does, with a fixed date so a rebuild of the
# same pins gives the same bytes.
ldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
	ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=$major -X $p.gitMinor=$minor"
	ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
key="$version mod=$modhash $($GO env GOVERSION) $goos/$goarch cgo=0 trimpath ldflags=$(echo "$ldflags" | sha256sum | cut -c1-8)"

# One build at a time per cache, also across clones sharing it.
exec 9>"$cache/.lock"
flock 9

tmp=""
trap 'rm -f "$tmp"' EXIT
total_start=$SECONDS
built=0
for n in "${names[@]}"; do
	bin="$cache/$n"
	nkey="$key$(src_of "$n")"
	if [[ -x "$bin" && -f "$cache/.$n.key" && "$(cat "$cache/.$n.key")" == "$nkey" ]]; then
		echo "k8s-bins: $n $version is cached ($bin)"
	else
		pkg=$(pkg_of "$n")
		echo "k8s-bins: building $n from $pkg ($version, $goos/$goarch, -p $jobs)..."
		start=$SECONDS
		tmp="$bin.tmp.$$"
		rm -f "$cache/.$n.key"
		if ! (cd "$mod" && GOFLAGS="${GOFLAGS:-} -mod=readonly" nice -n 10 \
			"$GO" build -p "$jobs" -trimpath -ldflags="$ldflags" -o "$tmp" "$pkg"); then
			rm -f "$tmp"
			if [[ -d "$mod/cmd/$n" ]]; then
				die "building $n failed (output above); fix: correct $mod/cmd/$n, or run 'cd $mod && go mod tidy' after changing its imports"
			fi
			die "building $n failed (output above); fix: check the pins in $mod/go.mod, or run 'cd $mod && go mod tidy' after changing them"
		fi
		mv -f "$tmp" "$bin"
		tmp=""
		echo "$nkey" >"$cache/.$n.key"
		built=$((built + 1))
		size=$(du -h "$bin" | cut -f1)
		echo "k8s-bins: built $n in $((SECONDS - start))s ($size)"
	fi
	ln -sfn "$bin" "$repo/bin/$n"
done
echo "k8s-bins: ${names[*]} ready in $repo/bin ($built built, $((SECONDS - total_start))s)"
