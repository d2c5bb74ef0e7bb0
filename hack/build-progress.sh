# Progress for long go builds, sourced by hack/k8s-bins.sh and
# hack/terraform.sh: what is being built, packages compiled n of N, the time
# elapsed, and an estimate from the last build's times when there is one.
#
#   progress_build LABEL TOTAL TIMES LOG -- go build -v ...
#
# LABEL names what is built; TOTAL is the number of packages the build will
# compile (0: unknown; then the last build's count and length are the guide); TIMES is the file the
# last build's "packages seconds" are read from and written to; LOG receives
# the command's output. The command must print each package it compiles on a
# line of its own (go build -v, go install -v). A line is printed every
# $MIXEDK8S_PROGRESS_EVERY seconds (default 30). On failure the output
# without the package lines is printed to stderr.
# shellcheck shell=bash

# progress_dur prints a number of seconds as 1h02m03s, 4m05s or 6s.
progress_dur() {
	local s=$1
	if ((s >= 3600)); then
		printf '%dh%02dm%02ds' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
	elif ((s >= 60)); then
		printf '%dm%02ds' $((s / 60)) $((s % 60))
	else
		printf '%ds' "$s"
	fi
}

# progress_count prints how many packages the build in LOG has compiled so far:
# go -v prints each as a bare import path, errors always have spaces or colons.
progress_count() {
	grep -c -E '^[A-Za-z0-9._~+/-]+$' "$1" 2>/dev/null || true
}

# progress_line prints one progress line.
progress_line() {
	local label=$1 total=$2 last_n=$3 last_s=$4 log=$5 start=$6
	local n elapsed left="" of="" known=$total
	n=$(progress_count "$log")
	elapsed=$((SECONDS - start))
	((total > 0)) || total=$last_n
	if ((total > 0)); then
		((n <= total)) || total=$n
		of=" of $total"
	fi
	if ((known == 0 && last_s > 0)); then
		# What is left to compile is unknown: go by the last build's length.
		if ((elapsed < last_s)); then
			left=", about $(progress_dur $((last_s - elapsed))) left (last build: $(progress_dur "$last_s"))"
		else
			left=", longer than the last build ($(progress_dur "$last_s"))"
		fi
	elif ((last_n > 0 && last_s > 0 && total > 0)); then
		left=$(((total - n) * last_s / last_n))
		left=", about $(progress_dur "$left") left (last build: $last_n packages in $(progress_dur "$last_s"))"
	elif ((total > 0 && n * 20 >= total && n > 0)); then
		left=", about $(progress_dur $((elapsed * (total - n) / n))) left at this pace"
	fi
	if ((known > 0 && n >= known)); then
		echo "$label: all $known packages compiled, linking, $(progress_dur "$elapsed") elapsed"
		return
	fi
	echo "$label: $n$of packages compiled, $(progress_dur "$elapsed") elapsed$left"
}

progress_build() {
	local label=$1 total=$2 times=$3 log=$4
	shift 4
	[[ "${1:-}" == -- ]] && shift
	local every=${MIXEDK8S_PROGRESS_EVERY:-30} start=$SECONDS last_n=0 last_s=0 rc=0 pid tick n
	if [[ -f "$times" ]]; then
		read -r last_n last_s <"$times" || true
		[[ "$last_n" =~ ^[0-9]+$ && "$last_s" =~ ^[0-9]+$ ]] || { last_n=0; last_s=0; }
	fi
	if ((total > 0 && last_s > 0)); then
		echo "$label: the last build compiled $last_n packages in $(progress_dur "$last_s")"
	fi
	: >"$log"
	"$@" >"$log" 2>&1 &
	pid=$!
	# Short sleeps, with their output elsewhere, so nothing outlives the build
	# holding the caller's pipe open.
	(
		next=$((SECONDS + every))
		while sleep 1 >/dev/null 2>&1; do
			((SECONDS >= next)) || continue
			next=$((SECONDS + every))
			progress_line "$label" "$total" "$last_n" "$last_s" "$log" "$start"
		done
	) &
	tick=$!
	wait "$pid" || rc=$?
	kill "$tick" 2>/dev/null || true
	wait "$tick" 2>/dev/null || true
	n=$(progress_count "$log")
	if ((rc != 0)); then
		grep -v -E '^[A-Za-z0-9._~+/-]+$' "$log" >&2 || true
		return "$rc"
	fi
	# Only a build that compiled most of what it could is a yardstick for the next.
	if ((n > 0 && (total > 0 ? n * 2 >= total : (last_n == 0 || n * 2 >= last_n)))); then
		echo "$n $((SECONDS - start))" >"$times"
	fi
	# A build with nothing to compile (only up to date, or a link) stays quiet.
	if ((n > 0)); then
		echo "$label: $n packages compiled in $(progress_dur $((SECONDS - start)))"
	fi
}
