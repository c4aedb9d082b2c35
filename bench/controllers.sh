#!/usr/bin/env bash
# Controller benchmark (issue 3):
#  1. pod Ready -> Endpoints / EndpointSlice latency with 1,000 Services of
#     10 pods each (svcnet up: API server + controllers in one process);
#  2. CPU time of a full controller resync at 10,000 Services: a standalone
#     `svcnet controller-manager` started against an API server that already
#     holds 10,000 Services, 10,000 Ready pods and their Endpoints/slices,
#     measured from start until it goes idle.
# Usage: bench/controllers.sh [services-for-latency] [services-for-resync]
set -euo pipefail
cd "$(dirname "$0")/.."
lat_services=${1:-1000}
resync_services=${2:-10000}
cargo build --release -q -p svcnet -p svcnet-bench
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
hz=$(getconf CLK_TCK)
cpu_secs() { awk -v hz="$hz" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat"; }
start() { # start <name> <args...>: runs svcnet, waits for "ready", sets $pid and $addr
  local name=$1; shift
  ./target/release/svcnet "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 300); do grep -q ready "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
  addr=$(sed -n 's|.*API server ready at https://\([^ ]*\).*|\1|p' "$work/$name.out")
}

echo "## pod Ready -> Endpoints latency"
start lat up --data-dir "$work/lat" --api-port 0
./target/release/svcnet-bench --addr "$addr" --pki "$work/lat/pki" --endpoint-services "$lat_services" --pods-per-service 10 --samples 300
kill "$pid"; wait "$pid" 2>/dev/null || true

echo
echo "## full resync of $resync_services Services"
start fill up --data-dir "$work/resync" --api-port 0
./target/release/svcnet-bench --addr "$addr" --pki "$work/resync/pki" --endpoint-services "$resync_services" --pods-per-service 1 --samples 0 >/dev/null
sleep 10   # let the controllers converge before stopping
kill "$pid"; wait "$pid" 2>/dev/null || true
start api apiserver --data-dir "$work/resync" --api-port 0
api_pid=$pid
t0=$(date +%s.%N)
start cm controller-manager --kubeconfig "$work/resync/kubeconfig"
cm_pid=$pid
# Idle = no CPU used for 3 consecutive seconds.
last=""; still=0
while [ $still -lt 3 ]; do
  sleep 1
  now=$(cpu_secs "$cm_pid")
  if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; fi
  last=$now
done
t1=$(date +%s.%N)
echo "| measure | value |"
echo "| --- | --- |"
echo "| controller-manager CPU for a full resync of $resync_services Services (start to idle) | ${last} s |"
echo "| API server CPU during that resync | $(cpu_secs "$api_pid") s (includes its own start-up) |"
echo "| wall time, start to idle (includes the 3 s idle check) | $(echo "$t1 - $t0" | bc) s |"
echo "| controller-manager RSS when idle | $(awk '/VmRSS/{printf "%.1f MiB", $2/1024}' /proc/$cm_pid/status) |"
