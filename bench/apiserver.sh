#!/usr/bin/env bash
# API server benchmark: svcnet over HTTPS with 1 and 32 clients
# (create/update/delete), listing 10k Services, 100 watchers, RSS; and, in
# the same run, the same durable create load against etcd (the store
# kube-apiserver uses) through its HTTP gateway, for a ratio.
#
# Usage: bench/apiserver.sh [objects]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-10000}
command -v etcd >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; }
cargo build --release -q -p svcnet -p svcnet-bench
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

./target/release/svcnet apiserver --data-dir "$work/svcnet" --api-port 0 >"$work/svcnet.out" 2>"$work/svcnet.err" &
pids+=($!); svc_pid=$!
for _ in $(seq 100); do grep -q ready "$work/svcnet.out" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'https://[^ ]*' "$work/svcnet.out" | head -1 | sed 's|https://||')
echo "## svcnet API server ($objects objects)"
./target/release/svcnet-bench --addr "$addr" --pki "$work/svcnet/pki" --objects "$objects" --pid "$svc_pid"

etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 >"$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s http://127.0.0.1:23790/health >/dev/null 2>&1 && break; sleep 0.1; done
echo
echo "## etcd, same machine, same run: 32 clients, compare-and-create txn"
./target/release/svcnet-bench --addr 127.0.0.1:23790 --pki "$work/svcnet/pki" --objects "$objects" --etcd 127.0.0.1:23790
