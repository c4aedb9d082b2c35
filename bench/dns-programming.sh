#!/usr/bin/env bash
# DNS programming latency (issue 6): time from a Service's creation (the
# API server's 201) to the first UDP answer from the cluster DNS that
# carries its cluster IP, one Service at a time, in a zone of PREFILL
# other Services. svcnet up serves DNS on loopback.
#
# NODES (default 0) is svcnet up's --nodes. With nodes, each node's
# service proxy re-syncs every Service on every change in the same
# process, on the same two cores: that measures the proxies as much as
# DNS, so the DNS figure is taken without them (pass 2 to see both).
# Usage: bench/dns-programming.sh [PREFILL] [SAMPLES] [NODES]
set -euo pipefail
cd "$(dirname "$0")/.."
prefill=${1:-0}
samples=${2:-300}
nodes=${3:-0}
cargo build --release -q -p svcnet -p svcnet-bench
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$work"; }
trap cleanup EXIT
./target/release/svcnet up --data-dir "$work/d" --api-port 0 --dns-port 0 --nodes "$nodes" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 300); do grep -q ready "$work/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's|.*API server ready at https://\([^ ]*\).*|\1|p' "$work/out")
dns_port=$(sed -n 's/^svcnet cluster DNS on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
./target/release/svcnet-bench --addr "$addr" --pki "$work/d/pki" --dns "127.0.0.1:$dns_port" \
  --dns-services "$samples" --dns-prefill "$prefill"
echo "svcnet up ($nodes nodes; API server, controllers and DNS in one process) after the run:" \
  "RSS $(awk '/VmRSS/{printf "%.1f MiB", $2/1024}' /proc/$pid/status), CPU time $(ps -o time= -p "$pid" | tr -d ' ')"
