#!/usr/bin/env bash
# Runs the lab (test/lab/cmd/lab) in the background for demos and other processes.
# Usage: hack/lab.sh start|stop|restart|status
#   start   build the lab program, start it, wait for its env file and print its path;
#           a lab already running from this folder is reused as it is
#   restart stop, then start (to run changed lab code)
#   stop    stop it (SIGTERM), wait until it has exited
#   status  say whether it runs, with its env file and log
# The lab folder is $MIXEDK8S_LAB_DIR (default ./.lab in the repository); it
# holds lab.pid, lab.log and, while the lab runs, lab.env and lab.json.
# LAB_FLAGS passes extra flags to the program, e.g. LAB_FLAGS="-v --pending-delay 3s".
# LAB_CLOUDS lists the clouds emulated beside EC2 (azure, gcp; comma-separated);
# a running lab is reused only when it emulates them (lab.clouds records which).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath -m "${MIXEDK8S_LAB_DIR:-$PWD/.lab}")
pidfile="$dir/lab.pid"
envfile="$dir/lab.env"
cloudsfile="$dir/lab.clouds"
clouds="${LAB_CLOUDS:-}"

# emulates: the running lab emulates every cloud LAB_CLOUDS names.
emulates() {
  local c
  for c in ${clouds//,/ }; do
    [[ "$c" == aws ]] && continue
    grep -qx "$c" "$cloudsfile" 2>/dev/null || return 1
  done
}

# running: the pid file names a live process that is this folder's lab (a
# pid reused by something else after a reboot does not count).
running() {
  local pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  local exe
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ "$exe" == "$dir/lab" || "$exe" == "$dir/lab (deleted)" ]]
}

stop() {
  if ! running; then
    echo "lab not running"
    rm -f "$pidfile"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      echo "lab stopped"
      return 0
    fi
    sleep 0.1
  done
  echo "lab (pid $pid) did not stop within 10s; see $dir/lab.log" >&2
  return 1
}

case "${1:-}" in
start)
  # Reuse a running lab: it keeps the demo's instances and control plane, so
  # a second `make demo` only re-applies. It runs the code it was built from:
  # `hack/lab.sh restart` runs the current one (the lab starts empty).
  if running; then
    if [[ -f "$envfile" ]] && ! emulates; then
      echo "the running lab (pid $(cat "$pidfile")) does not emulate all of: $clouds; fix: make demo-down CLOUD=<the cloud of the demo on it> (destroys it and stops the lab), or hack/lab.sh stop, then start again" >&2
      exit 1
    fi
    if [[ -f "$envfile" ]]; then
      echo "lab already running (pid $(cat "$pidfile"), since $(ps -o lstart= -p "$(cat "$pidfile")")): $envfile"
      echo "  reusing it; 'hack/lab.sh restart' runs the current code (and starts with no instances)"
      exit 0
    fi
    echo "lab (pid $(cat "$pidfile")) runs but $envfile is missing; restarting it" >&2
    stop
  fi
  mkdir -p "$dir"
  rm -f "$envfile" "$dir/lab.json"
  # A built binary, so the pid file names the lab itself rather than `go run`.
  hack/go-build.sh lab -o "$dir/lab" ./test/lab/cmd/lab
  tr ',' '\n' <<<"$clouds" | sed '/^$/d' >"$cloudsfile"
  # shellcheck disable=SC2086 # LAB_FLAGS is a list of flags
  nohup "$dir/lab" --dir "$dir" --clouds "$clouds" ${LAB_FLAGS:-} >"$dir/lab.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 300); do
    if [[ -f "$envfile" ]]; then
      echo "$envfile"
      sed -n 2p "$dir/lab.log"
      exit 0
    fi
    if ! running; then
      echo "lab exited while starting; its log ($dir/lab.log):" >&2
      cat "$dir/lab.log" >&2
      rm -f "$pidfile"
      exit 1
    fi
    sleep 0.2
  done
  echo "lab did not write $envfile within 60s; see $dir/lab.log" >&2
  exit 1
  ;;
stop)
  stop
  ;;
restart)
  "$0" stop
  exec "$0" start
  ;;
status)
  if running; then
    echo "lab running (pid $(cat "$pidfile")): $envfile, log $dir/lab.log"
  else
    echo "lab not running"
    exit 3
  fi
  ;;
*)
  echo "usage: $0 start|stop|restart|status" >&2
  exit 2
  ;;
esac
