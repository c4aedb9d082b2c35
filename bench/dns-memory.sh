#!/usr/bin/env bash
# Cluster DNS memory per object (issue 6): two `svcnet dns` processes, one
# with `--pods insecure` (the default: watches Services, EndpointSlices,
# Namespaces) and one with `--pods verified` (watches Pods too), follow a
# `svcnet up --nodes 0` API server. svcnet-bench creates Services in steps
# (STEPS, comma-separated counts), each selecting one Pod that is marked
# Ready with an address, so the controllers write one EndpointSlice per
# Service; after each step it waits until both DNS processes answer for
# the newest objects and their RSS is steady, and prints each one's RSS
# growth per Service and per object (Services + Pods).
#
# What is counted: the whole DNS process's resident memory — its
# reflectors' copies of the objects (managedFields dropped), the zone
# view, the prepared answers, the update bookkeeping, and whatever the
# allocator keeps. The API server and controllers run in another process.
#
# Usage: bench/dns-memory.sh [STEPS]   (default 10000,20000)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-10000,20000}
cargo build --release -q -p svcnet -p svcnet-bench
work=$(mktemp -d)
pids=()
cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    # What the servers said, to tell a late EndpointSlice from a DNS miss.
    for f in "$work"/dns-*.err "$work/up.err"; do
      [ -f "$f" ] && { echo "--- last lines of $(basename "$f"):"; grep -v ' DEBUG \| TRACE ' "$f" | tail -n 15; }
    done
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
./target/release/svcnet up --data-dir "$work/d" --api-port 0 --nodes 0 >"$work/up.out" 2>"$work/up.err" &
pids+=($!)
for _ in $(seq 300); do grep -q ready "$work/up.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's|.*API server ready at https://\([^ ]*\).*|\1|p' "$work/up.out")
procs=()
for mode in insecure verified; do
  ./target/release/svcnet dns --kubeconfig "$work/d/kubeconfig" --listen 127.0.0.1:0 --metrics "" \
    --pods "$mode" >"$work/dns-$mode.out" 2>"$work/dns-$mode.err" &
  pid=$!
  pids+=($pid)
  for _ in $(seq 100); do grep -q ready "$work/dns-$mode.out" 2>/dev/null && break; sleep 0.1; done
  udp=$(sed -n 's/^svcnet dns ready on \([^ ]*\) (udp).*/\1/p' "$work/dns-$mode.out")
  [ -n "$udp" ] || { echo "svcnet dns --pods $mode did not start:"; cat "$work/dns-$mode.err"; exit 1; }
  procs+=(--dns-process "svcnet dns --pods $mode=$pid=$udp")
done
./target/release/svcnet-bench --dns-memory --addr "$addr" --pki "$work/d/pki" "${procs[@]}" \
  --steps "$steps" --with-pods
echo "svcnet up (API server and controllers) RSS: $(awk '/VmRSS/{printf "%.1f MiB", $2/1024}' /proc/${pids[0]}/status)"
