#!/usr/bin/env bash
# Tests of the build scripts' decisions, with stand-in CLIs and a stand-in go
# that records what it was asked to do: which terraform or tofu the demo
# uses (hack/terraform.sh --find, --find-or-build), that none is built when
# one on the PATH qualifies, what hack/build-progress.sh reports, and when
# hack/lab.sh takes a lab to be running.
# Usage: hack/test-scripts.sh   (make test-scripts; part of make test)
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

# A copy of the scripts, so ./bin of this clone plays no part.
mkdir -p "$tmp/repo/hack"
cp "$src/hack/terraform.sh" "$src/hack/build-progress.sh" "$tmp/repo/hack/"

# fake DIR NAME FIRSTLINE: a CLI whose `version` prints FIRSTLINE.
fake() {
	mkdir -p "$1"
	# shellcheck disable=SC2016 # $1 is the stand-in's own argument
	printf '#!/bin/sh\n[ "$1" = version ] && echo "%s"\n' "$3" >"$1/$2"
	chmod +x "$1/$2"
}

# A go that records its arguments and builds nothing.
mkdir -p "$tmp/go"
cat >"$tmp/go/go" <<'GO'
#!/bin/sh
echo "$*" >>"$GO_CALLS"
case "$1" in
env) case "$2" in GOOS) echo linux ;; GOARCH) echo amd64 ;; GOVERSION) echo go0.0 ;; esac ;;
*) echo "stand-in go: not building" >&2; exit 1 ;;
esac
GO
chmod +x "$tmp/go/go"

# run CASE PATHDIRS ARGS...: runs terraform.sh with PATH=PATHDIRS plus the
# basic tools, an empty cache and the stand-in go; sets out, err, rc, calls.
run() {
	local c=$1 dirs=$2
	shift 2
	export GO_CALLS="$tmp/$c.calls"
	: >"$GO_CALLS"
	rc=0
	PATH="$dirs:/usr/bin:/bin" GO="$tmp/go/go" MIXEDK8S_CACHE="$tmp/$c.cache" \
		bash "$tmp/repo/hack/terraform.sh" "$@" >"$tmp/$c.out" 2>"$tmp/$c.err" || rc=$?
	out=$(cat "$tmp/$c.out")
	err=$(cat "$tmp/$c.err")
	calls=$(cat "$GO_CALLS")
}

fake "$tmp/new" terraform "Terraform v1.9.0"
fake "$tmp/old" terraform "Terraform v0.15.5"
fake "$tmp/tofu" tofu "OpenTofu v1.6.3"
fake "$tmp/oldtofu" tofu "OpenTofu v1.5.7"
fake "$tmp/other" terraform "something else 2.0"

run new "$tmp/new" --find-or-build
if [[ $rc -eq 0 && "$out" == "$tmp/new/terraform" && -z "$calls" && ! -e "$tmp/new.cache" ]]; then
	pass "a terraform >= 1.0.0 on the PATH is used; nothing is built"
else
	fail "terraform 1.9.0 on the PATH: rc=$rc out='$out' go calls='$calls' err='$err'"
fi

run min "$tmp/new" --find
if [[ $rc -eq 0 && "$out" == "$tmp/new/terraform" && "$err" == *"using terraform 1.9.0"* ]]; then
	pass "--find says which CLI it uses"
else
	fail "--find: rc=$rc out='$out' err='$err'"
fi

run oldtf "$tmp/old:$tmp/tofu" --find-or-build
if [[ $rc -eq 0 && "$out" == "$tmp/tofu/tofu" && -z "$calls" && "$err" == *"terraform 0.15.5 is older than 1.0.0"* ]]; then
	pass "a terraform older than 1.0.0 is named and skipped; a tofu >= 1.6.0 is used"
else
	fail "terraform 0.15.5 and tofu 1.6.3: rc=$rc out='$out' go calls='$calls' err='$err'"
fi

run oldtofu "$tmp/oldtofu:$tmp/other" --find
if [[ $rc -ne 0 && -z "$out" && "$err" == *"tofu 1.5.7 is older than 1.6.0"* && "$err" == *"says 'something else 2.0'"* &&
	"$err" == *"fix: install one"* ]]; then
	pass "--find fails, naming each CLI it skipped and the fix, when none qualifies"
else
	fail "tofu 1.5.7 and an unknown terraform: rc=$rc out='$out' err='$err'"
fi

run build "$tmp/old" --find-or-build
if [[ $rc -ne 0 && "$calls" == *"install -v -p 2 -trimpath"*"github.com/hashicorp/terraform@v1.8.5"* ]]; then
	pass "--find-or-build builds the pinned terraform when none qualifies"
else
	fail "terraform 0.15.5 alone: rc=$rc go calls='$calls' err='$err'"
fi

MIXEDK8S_TERRAFORM="$tmp/old/terraform" run env "$tmp/new" --find
if [[ $rc -ne 0 && "$err" == *"MIXEDK8S_TERRAFORM=$tmp/old/terraform cannot run the demo"* ]]; then
	pass "MIXEDK8S_TERRAFORM is checked like the PATH"
else
	fail "MIXEDK8S_TERRAFORM=terraform 0.15.5: rc=$rc out='$out' err='$err'"
fi

# build-progress.sh: counts package lines, prints only the errors on failure,
# and keeps the times of a build that compiled most of what it could.
# shellcheck source=hack/build-progress.sh
. "$src/hack/build-progress.sh"
rc=0
out=$(MIXEDK8S_PROGRESS_EVERY=1 progress_build "pb" 4 "$tmp/times" "$tmp/pb.log" -- \
	sh -c 'echo example.com/a; echo example.com/b; sleep 2.5; echo example.com/c/v2; echo example.com/d' 2>&1) || rc=$?
if [[ $rc -eq 0 && "$out" == *"pb: 2 of 4 packages compiled, "*"s elapsed"* && "$out" == *"pb: 4 packages compiled in"* &&
	"$(cut -d' ' -f1 "$tmp/times")" == 4 ]]; then
	pass "progress: n of N packages, elapsed; the build's times are kept"
else
	fail "progress of a 4-package build: rc=$rc out='$out' times='$(cat "$tmp/times" 2>/dev/null)'"
fi
echo "8 120" >"$tmp/times"
out=$(MIXEDK8S_PROGRESS_EVERY=1 progress_build "pb" 8 "$tmp/times" "$tmp/pb.log" -- \
	sh -c 'echo example.com/a; echo example.com/b; sleep 2.5' 2>&1) || true
if [[ "$out" == *"pb: 2 of 8 packages compiled, "*"s elapsed, about 1m30s left (last build: 8 packages in 2m00s)"* &&
	"$(cat "$tmp/times")" == "8 120" ]]; then
	pass "progress: the estimate comes from the last build; a small build does not replace its times"
else
	fail "estimate from the last build: out='$out' times='$(cat "$tmp/times")'"
fi
echo "8 120" >"$tmp/times3"
out=$(MIXEDK8S_PROGRESS_EVERY=1 progress_build "pb" 0 "$tmp/times3" "$tmp/pb.log" -- \
	sh -c 'echo example.com/a; sleep 2.5' 2>&1) || true
if [[ "$out" == *"pb: 1 of 8 packages compiled, "*"s elapsed, about 1m5"?"s left (last build: 2m00s)"* ]]; then
	pass "progress: with no count of what is left, the estimate is the last build's length"
else
	fail "estimate with an unknown count: out='$out'"
fi
rc=0
err=$(progress_build "pb" 0 "$tmp/times2" "$tmp/pb.log" -- \
	sh -c 'echo example.com/a; echo "# example.com/b"; echo "b.go:3:1: undefined: x"; exit 1' 2>&1 >/dev/null) || rc=$?
if [[ $rc -eq 1 && "$err" == *"b.go:3:1: undefined: x"* && "$err" != *"example.com/a"* && ! -e "$tmp/times2" ]]; then
	pass "progress: a failed build prints its errors and keeps no times"
else
	fail "failed build: rc=$rc err='$err'"
fi

# hack/lab.sh reuses a lab only when the pid file names this folder's lab, not
# a live process that reused the pid.
mkdir -p "$tmp/lab"
sleep 30 &
other=$!
echo "$other" >"$tmp/lab/lab.pid"
rc=0
out=$(MIXEDK8S_LAB_DIR="$tmp/lab" "$src/hack/lab.sh" status 2>&1) || rc=$?
kill "$other" 2>/dev/null || true
if [[ $rc -eq 3 && "$out" == "lab not running" ]]; then
	pass "lab.sh: a pid file naming another live process is not a running lab"
else
	fail "lab.sh status with a pid file naming 'sleep': rc=$rc out='$out'"
fi

if [[ $failures -gt 0 ]]; then
	echo "hack/test-scripts.sh: $failures failed" >&2
	exit 1
fi
echo "hack/test-scripts.sh: all passed"
