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
# otherwise the run only links it, in well under a second. The binaries to
# build are built by one `go build`: it compiles the packages they share once
# and links them in parallel. While it runs, a line every 30 seconds says how
# many packages are compiled of how many, the time elapsed and, from the last
# build's times (.times-* in the cache), about how long is left. Builds
# are static (CGO_ENABLED=0, as Kubernetes releases them), stripped, with
# -trimpath, and use the module's go.sum as is (-mod=readonly): after changing
# a pin, run `go mod tidy` in test/lab/k8s and commit go.mod and go.sum.
#
# Environment:
#   MIXEDK8S_K8S_MODULE the tools module to build from, relative to the repo
#                      (default test/lab/k8s; test/lab/k8s/prev pins the
#                      previous minor, which the upgrade tests start from).
#                      Each binary is also linked as bin/k8s-<version>/<name>;
#                      only the default module's are linked as bin/<name>.
#   MIXEDK8S_CACHE     cache root (default $HOME/.cache/mixedk8s)
#   MIXEDK8S_BUILD_P   parallel compile jobs, go build -p (default 2)
#   MIXEDK8S_K8S_BUILD one (default): one go build for all; each: one per binary
#   MIXEDK8S_PROGRESS_EVERY  seconds between progress lines (default 30)
#   GO                 the go command (default go)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/build-progress.sh
. "$repo/hack/build-progress.sh"
modrel=${MIXEDK8S_K8S_MODULE:-test/lab/k8s}
mod="$repo/$modrel"
GO=${GO:-go}
jobs=${MIXEDK8S_BUILD_P:-2}

die() { echo "k8s-bins: $*" >&2; exit 1; }

[[ -f "$mod/go.mod" && -f "$mod/go.sum" ]] ||
	die "$mod/go.mod or go.sum is missing; fix: restore $modrel from git"
modpath=$(awk '$1 == "module" { print $2; exit }' "$mod/go.mod")

version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$mod/go.mod")
[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] ||
	die "cannot read the k8s.io/kubernetes version from $mod/go.mod (got '${version}'); fix: require k8s.io/kubernetes vX.Y.Z there"
major=${BASH_REMATCH[1]}
minor=${BASH_REMATCH[2]}

known="kubeadm etcd kube-apiserver kube-controller-manager hollow-kubelet kubectl kube-scheduler kubelet kube-proxy kubemark"

pkg_of() {
	case "$1" in
	etcd) echo go.etcd.io/etcd/server/v3 ;;
	hollow-kubelet) echo "$modpath/cmd/$1" ;;
	kubeadm | kube-apiserver | kube-controller-manager | kube-scheduler | kubemark | kubelet | kube-proxy | kubectl)
		echo "k8s.io/kubernetes/cmd/$1" ;;
	*) return 1 ;;
	esac
}

# src_of prints a hash of a binary's own sources when they live in this
# repository (<module>/cmd/<name>, symbolic links followed), and nothing for
# pinned upstream ones.
src_of() {
	local dir="$mod/cmd/$1"
	[[ -d "$dir" ]] || return 0
	echo " src=$(find -L "$dir" -type f -name '*.go' -print0 | LC_ALL=C sort -z | xargs -0 cat | sha256sum | cut -c1-16)"
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
if ! flock -n 9; then
	echo "k8s-bins: another build into $cache runs (another clone or make); waiting for it..."
	flock 9
fi

# The binaries to build: those whose key differs.
todo=()
for n in "${names[@]}"; do
	bin="$cache/$n"
	if [[ -x "$bin" && -f "$cache/.$n.key" && "$(cat "$cache/.$n.key")" == "$key$(src_of "$n")" ]]; then
		echo "k8s-bins: $n $version is cached ($bin)"
	else
		todo+=("$n")
	fi
done

# build_failed names the likely cause of a failed build of the binaries in $@.
build_failed() {
	local n
	for n in "$@"; do
		if [[ -d "$mod/cmd/$n" ]]; then
			die "building ${*} failed (output above); fix: correct $mod/cmd/$n, or run 'cd $mod && go mod tidy' after changing its imports"
		fi
	done
	die "building ${*} failed (output above); fix: check the pins in $mod/go.mod, or run 'cd $mod && go mod tidy' after changing them"
}

# go build's name for a main package: its last path element, or the one
# before a major-version suffix (go.etcd.io/etcd/server/v3 -> server).
exe_of() {
	local p=$1 e=${1##*/}
	[[ "$e" =~ ^v[0-9]+$ && "$p" == */* ]] && { p=${p%/*}; e=${p##*/}; }
	echo "$e"
}

# Way "one" (the default): one go build for all missing binaries, so the
# packages they share are loaded and compiled once and the links run in
# parallel. Way "each": one go build per binary, as before (kept to measure).
way=${MIXEDK8S_K8S_BUILD:-one}
[[ "$way" == one || "$way" == each ]] || die "MIXEDK8S_K8S_BUILD=$way is unknown; fix: use one or each"

tmpdir=""
trap 'rm -rf "$tmpdir"' EXIT
total_start=$SECONDS
if [[ ${#todo[@]} -gt 0 ]]; then
	tmpdir=$(mktemp -d "$cache/.build.XXXXXX")
	if [[ "$way" == one ]]; then
		groups=("${todo[*]}")
	else
		groups=("${todo[@]}")
	fi
	g=0
	for group in "${groups[@]}"; do
		g=$((g + 1))
		read -ra bins <<<"$group"
		pkgs=()
		for n in "${bins[@]}"; do pkgs+=("$(pkg_of "$n")"); done
		label="k8s-bins: ${bins[*]}"
		[[ ${#groups[@]} -eq 1 ]] || label="k8s-bins: [$g of ${#groups[@]}] ${bins[*]}"
		# Packages to compile, counted the way go build decides (the build cache;
		# main packages count as stale when only their link is due); a failed
		# count only costs the estimate.
		# shellcheck disable=SC2015
		stale=$(cd "$mod" && GOFLAGS="${GOFLAGS:-} -mod=readonly" "$GO" list -deps -trimpath -ldflags="$ldflags" \
			-f '{{if and .Stale (ne .Name "main")}}{{.ImportPath}}{{end}}' "${pkgs[@]}" 2>/dev/null | grep -c . || true)
		echo "$label: building $version for $goos/$goarch (go build -p $jobs, $stale packages to compile, ${#bins[@]} to link)..."
		times="$cache/.times-$(echo "${bins[*]}" | sha256sum | cut -c1-8)"
		# Only links due: a full build's times would be no guide.
		[[ "$stale" != 0 ]] || times="$tmpdir/no-times"
		mkdir -p "$tmpdir/out"
		(cd "$mod" && progress_build "$label" "$stale" "$times" "$tmpdir/build.log" -- \
			env GOFLAGS="${GOFLAGS:-} -mod=readonly" nice -n 10 \
			"$GO" build -v -p "$jobs" -trimpath -ldflags="$ldflags" -o "$tmpdir/out/" "${pkgs[@]}") ||
			build_failed "${bins[@]}"
		for n in "${bins[@]}"; do
			out="$tmpdir/out/$(exe_of "$(pkg_of "$n")")"
			[[ -x "$out" ]] || die "go build wrote no $out for $n; fix: report this with the output above"
			mv -f "$out" "$cache/$n"
			echo "$key$(src_of "$n")" >"$cache/.$n.key"
			echo "k8s-bins: built $n ($(du -h "$cache/$n" | cut -f1))"
		done
	done
fi
mkdir -p "$repo/bin/k8s-$version"
for n in "${names[@]}"; do
	ln -sfn "$cache/$n" "$repo/bin/k8s-$version/$n"
	[[ -n "${MIXEDK8S_K8S_MODULE:-}" ]] || ln -sfn "$cache/$n" "$repo/bin/$n"
done
echo "k8s-bins: ${names[*]} ready in $repo/bin (${#todo[@]} built, $(progress_dur $((SECONDS - total_start))))"
