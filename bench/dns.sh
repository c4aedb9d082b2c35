#!/usr/bin/env bash
# Queries per second of svcnet-dns on loopback with dnsperf, side by side
# with Knot DNS serving the same names when knotd is installed
# (installed from Debian's packages when missing). Bounded: each run lasts
# SECONDS seconds.
#
#   bench/dns.sh [SECONDS] [ROUNDS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dnsperf >/dev/null || ! command -v knotd >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf knot >/dev/null
fi
secs=${1:-5}; rounds=${2:-3}; workers=${3:-1}
port=15353; knot_port=15354
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q -p svcnet-dns --example serve_static
for i in $(seq 1 10); do
  printf 'web.default.svc.cluster.local A\nsvc-%d.bench.svc.cluster.local A\ndb.default.svc.cluster.local A\nkubernetes.default.svc.cluster.local A\n' "$i"
done > "$work/queries"

target/release/examples/serve_static --port "$port" --workers "$workers" --services 1000 > "$work/svcnet.log" 2>&1 &
pids+=($!)

if command -v knotd >/dev/null; then
  {
    printf '$ORIGIN cluster.local.\n$TTL 5\n@ SOA ns.dns hostmaster 1 7200 1800 86400 5\n@ NS ns.dns\nns.dns A 10.96.0.10\n'
    printf 'web.default.svc A 10.96.0.10\nkubernetes.default.svc A 10.96.0.1\ndb.default.svc A 10.1.1.1\ndb.default.svc A 10.1.1.2\n'
    for i in $(seq 0 999); do printf 'svc-%d.bench.svc A 10.97.%d.%d\n' "$i" $((i/250)) $((i%250+1)); done
  } > "$work/zone"
  cat > "$work/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$knot_port
    rundir: $work
    udp-workers: $workers
    tcp-workers: 1
    background-workers: 1
database:
    storage: $work/db
log:
  - target: stderr
    any: error
zone:
  - domain: cluster.local
    file: $work/zone
CONF
  knotd -c "$work/knot.conf" > "$work/knot.log" 2>&1 &
  pids+=($!)
fi
sleep 1

qps() { dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l "$secs" -c 2 -Q 2000000 2>&1 | awk '/Queries per second/ {printf "%.0f", $4}'; }
for r in $(seq 1 "$rounds"); do
  line="round $r: svcnet-dns $(qps $port) q/s"
  if command -v knotd >/dev/null; then line="$line, knot $(qps $knot_port) q/s"; fi
  echo "$line"
done
