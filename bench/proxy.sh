#!/usr/bin/env bash
# Service proxy benchmark: the three data planes side by side in one run,
# on a mini node built in network namespaces by the proxy crate's
# `dataplane` bench binary (crates/proxy/benches/dataplane/):
#  1. connections per second and connect latency, direct vs each mode's
#     Service VIP (sequential short connections from a client pod);
#  2. TCP throughput with iperf3: direct, the userspace proxy, HAProxy in
#     the same position (in the node), and the kernel modes for reference;
#  3. kernel modes at first packet: a new connection's first echo with
#     100 vs SERVICES Services programmed;
#  4. kernel modes at scale: SERVICES Services x 10 endpoints programmed
#     from scratch, one change, restart, cleanup, and the proxy's RSS.
# Prints markdown tables; takes about 7 minutes on 2 CPUs. Needs root.
# Every namespace (svbench-<pid>-*) and process the run creates is removed
# at exit; each step is bounded by `timeout`, and the binary bounds its
# own loops.
# Usage: bench/proxy.sh [SERVICES] [CONNECTIONS]   (defaults 10000 and 5000)
#        STREAMS="1 4" (iperf3 parallel streams to run), ROUNDS=5 (interleaved
#        rounds of the connect and throughput parts)
set -euo pipefail
cd "$(dirname "$0")/.."
services=${1:-10000}
conns=${2:-5000}
streams=${STREAMS:-1 4}
rounds=${ROUNDS:-5}
[ "$(id -u)" = 0 ] || { echo "bench/proxy.sh needs root (network namespaces)" >&2; exit 1; }
need=()
for pkg_cmd in ip:iproute2 nft:nftables iptables-restore:iptables conntrack:conntrack iperf3:iperf3 haproxy:haproxy; do
  command -v "${pkg_cmd%%:*}" >/dev/null 2>&1 || need+=("${pkg_cmd##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

bin=$(cargo build --release -q -p svcnet-proxy --bench dataplane --message-format=json-render-diagnostics \
  | grep -o '"executable":"[^"]*dataplane[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bin" ] || { echo "bench/proxy.sh: the dataplane bench did not build" >&2; exit 1; }

netns_list() { ip netns list 2>/dev/null | awk '{print $1}' | sort; }
netns_before=$(netns_list)
cleanup() { # a safety net: the binary removes its own namespaces, even on SIGTERM
  set +e
  local ns p
  for ns in $(comm -13 <(echo "$netns_before") <(netns_list) | grep '^svbench-'); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns delete "$ns" 2>/dev/null
  done
}
trap cleanup EXIT
step() { # step <seconds> <args...>: one bounded run of the binary
  local limit=$1; shift
  # --foreground: the binary stays in the terminal's process group, so Ctrl-C
  # reaches it (it cleans up and exits 130).
  timeout --foreground -k 30 "$limit" "$bin" "$@"
}
load() { echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs)"; }

echo "## 1. Connections per second and connect latency"
load
step 240 connect --connections "$conns" --rounds "$rounds"

for s in $streams; do
  echo
  echo "## 2. TCP throughput, $s stream(s)"
  load
  step 420 throughput --seconds 5 --rounds "$rounds" --streams "$s"
done

echo
echo "## 3. First-packet latency at 100 and $services Services (kernel modes)"
load
step 300 first-packet --services "100,$services" --probes 500

echo
echo "## 4. Programming $services Services x 10 endpoints, and memory (kernel modes)"
load
step 480 program --services "$services" --endpoints 10 --changes 30
echo
echo "Run of $(date +%F) on $(nproc) CPUs; nft $(nft --version | awk '{print $2}'), $(iptables --version), kernel $(uname -r)."
