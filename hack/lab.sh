#!/usr/bin/env bash
# Runs the lab (test/lab/cmd/lab) in the background for demos and other processes.
# Usage: hack/lab.sh start|stop|status
#   start   build the lab program, start it, wait for its env file and print its path
#   stop    stop it (SIGTERM), wait until it has exited
#   status  say whether it runs, with its env file and log
# The lab folder is $MIXEDK8S_LAB_DIR (default ./.lab in the repository); it
# holds lab.pid, lab.log and, while the lab runs, lab.env and lab.json.
# LAB_FLAGS passes extra flags to the program, e.g. LAB_FLAGS="-v --pending-delay 3s".
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${MIXEDK8S_LAB_DIR:-$PWD/.lab}"
pidfile="$dir/lab.pid"
envfile="$dir/lab.env"

running() {
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

case "${1:-}" in
start)
  if running; then
    echo "lab already running (pid $(cat "$pidfile")): $envfile"
    exit 0
  fi
  mkdir -p "$dir"
  rm -f "$envfile" "$dir/lab.json"
  # A built binary, so the pid file names the lab itself rather than `go run`.
  go build -o "$dir/lab" ./test/lab/cmd/lab
  # shellcheck disable=SC2086 # LAB_FLAGS is a list of flags
  nohup "$dir/lab" --dir "$dir" ${LAB_FLAGS:-} >"$dir/lab.log" 2>&1 &
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
  if ! running; then
    echo "lab not running"
    rm -f "$pidfile"
    exit 0
  fi
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      echo "lab stopped"
      exit 0
    fi
    sleep 0.1
  done
  echo "lab (pid $pid) did not stop within 10s; see $dir/lab.log" >&2
  exit 1
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
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
