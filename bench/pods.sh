#!/usr/bin/env bash
# Pod benchmark (node agent):
#  A. create-to-Ready latency of PODS_A echoserver pods created at once on
#     `svcnet up --nodes 2` (scheduler, two agents in the svcnet process),
#     after smaller bursts of 1, 10, 25 and 50 pods;
#  B. the agent's own cost: `svcnet up --nodes 0` plus two standalone
#     `svcnet agent` processes (nodes bench1, bench2), PODS_B `sleep` pods
#     bound half to each: time to all Ready, agent CPU to start them, idle
#     CPU over 30 s and RSS with them running, then deletion, and RSS after
#     a second round. The pods carry spec.nodeName: nodes advertise 110
#     pods, the kubelet's default maxPods, so the scheduler would place
#     only 220 of 500 on two nodes.
# For each pod svcnet-bench times, from just before its create request:
# the watch seeing it bound, its container process starting (/proc start
# time of the agent's child with that HOSTNAME), its IP and Ready=True.
# Needs root (network namespaces). Every namespace the run creates is
# removed at exit, as are the processes it started.
# Usage: bench/pods.sh [PODS_A] [PODS_B]   (defaults 100 and 500; PODS_B=0
# runs part A alone)
set -euo pipefail
cd "$(dirname "$0")/.."
pods_a=${1:-100}
pods_b=${2:-500}
idle_secs=30
sweep_a="1 10 25 50"
[ "$(id -u)" = 0 ] || { echo "bench/pods.sh needs root (network namespaces)" >&2; exit 1; }
# svcnet-agent's svcnet-echoserver, installed next to svcnet, is the
# program the agent runs for svcnet/echoserver containers.
cargo build --release -q -p svcnet -p svcnet-agent -p svcnet-bench
[ -x target/release/svcnet-echoserver ] || { echo "target/release/svcnet-echoserver is missing" >&2; exit 1; }
bin=./target/release
work=$(mktemp -d)
hz=$(getconf CLK_TCK)
netns_list() { ip netns list | awk '{print $1}' | sort; }
netns_before=$(netns_list)
for n in svcnet-bench1 svcnet-bench2; do
  if grep -qx "$n" <<<"$netns_before"; then
    echo "network namespace $n already exists (a crashed earlier run?); remove it first: ip netns delete $n" >&2
    exit 1
  fi
done

pids=()        # processes this script started, in start order
# "pid starttime" of the processes they started (pods' processes), so a
# leftover is killed only if it is still that very process.
kids_file=$work/kids
: >"$kids_file"
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
note_descendants() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$c $(starttime "$c")" >>"$kids_file"
    note_descendants "$c"
  done
}
stop() { # SIGTERM, up to 40 s to finish, then SIGKILL
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  note_descendants "$pid"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  set +e
  local i p st ns
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
  while read -r p st; do
    [ -n "$p" ] && [ "$(starttime "$p")" = "$st" ] && kill -9 "$p" 2>/dev/null
  done <"$kids_file"
  for ns in $(comm -13 <(echo "$netns_before") <(netns_list)); do
    case $ns in
      svcnet-*) ip netns delete "$ns" 2>/dev/null; rm -rf "/etc/netns/$ns" "/run/svcnet/netns/$ns" ;;
    esac
  done
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # wait_for <file> <text> <seconds>
  for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" "${1%.out}.err" >&2 2>/dev/null || true
  exit 1
}
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }     # utime+stime
child_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $14 + $15}'; }   # reaped children's
secs() { awk -v t="$1" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}'; }
rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
now() { date +%s.%N; }
# The machine is shared: how much of its CPU was busy during a burst, and
# how much of that this benchmark's processes used (by pid: the given
# svcnet processes with the children they reaped, and this script's).
# busy (steal included), all, stolen: /proc/stat's first line.
cpu_stat() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9}' /proc/stat; }
tree_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13 + $14 + $15}'))); done; echo "$t"; }
script_children_ticks() {
  times >"$work/times"   # not in a subshell: it must report this shell's children
  awk -v hz="$hz" 'NR == 2 {n = 0; for (i = 1; i <= 2; i++) {split($i, a, /[ms]/); n += a[1] * 60 + a[2]}; printf "%d", n * hz}' "$work/times"
}
share_begin() { read -r sb_busy sb_all sb_steal < <(cpu_stat); sb_ours=$(($(tree_ticks "$@") + $(script_children_ticks))); }
share_end() {
  local busy all steal ours
  ours=$(($(tree_ticks "$@") + $(script_children_ticks) - sb_ours))
  read -r busy all steal < <(cpu_stat)
  awk -v b="$((busy - sb_busy))" -v a="$((all - sb_all))" -v st="$((steal - sb_steal))" -v o="$ours" -v hz="$hz" \
    'BEGIN {printf "%.1f of %.1f CPU-s busy; this benchmark %.1f, stolen by the hypervisor %.1f, others %.1f", b / hz, a / hz, o / hz, st / hz, (b - o - st) / hz}'
}
# Waits (at most 10 s) until the machine's CPUs are idle: a burst's pods are
# gone from the API when `svcnet-bench` returns, but the kernel may still be
# tearing their network namespaces down in its own worker threads; the next
# burst should not share the CPU with that. Prints how long it waited.
settle() {
  local start b1 a1 b2 a2
  start=$(now)
  for _ in $(seq 50); do
    read -r b1 a1 _ < <(cpu_stat)
    sleep 0.2
    read -r b2 a2 _ < <(cpu_stat)
    awk -v b="$((b2 - b1))" -v a="$((a2 - a1))" 'BEGIN {exit !(a > 0 && b / a < 0.1)}' && break
  done
  awk -v s="$start" -v e="$(now)" 'BEGIN {printf "%.1f s", e - s}'
}
warnings() { # what a process logged at WARN or ERROR so far (before it is stopped)
  local n
  n=$(grep -c "WARN\|ERROR" "$1" || true)
  echo "$(basename "$1"): $n warnings/errors logged during the run"
  [ "$n" = 0 ] || grep "WARN\|ERROR" "$1" | sed 's/\x1b\[[0-9;]*m//g' | sort -k3 | uniq -c -f2 | head -5 || true
}

# --- Part A -----------------------------------------------------------------
echo "## A. $pods_a echoserver pods created at once, svcnet up --nodes 2"
$bin/svcnet up --data-dir "$work/a" --api-port 0 >"$work/a.out" 2>"$work/a.err" &
a_pid=$!; pids+=("$a_pid")
wait_for "$work/a.out" "API server ready" 60
# Smaller bursts first (the first, one pod alone, also warms the cluster up).
for n in $sweep_a; do
  echo "Burst of $n:"
  $bin/svcnet-bench --kubeconfig "$work/a/kubeconfig" --pods "$n" --containers-of "$a_pid" | tee "$work/a$n.table"
  echo "Machine idle again after $(settle)."
  echo
done
load_a=$(cut -d' ' -f1-3 /proc/loadavg)
share_begin "$a_pid"
$bin/svcnet-bench --kubeconfig "$work/a/kubeconfig" --pods "$pods_a" --containers-of "$a_pid" | tee "$work/a.table"
share_a=$(share_end "$a_pid")
echo "Machine CPU during that run (create to all deleted): $share_a"
echo "svcnet up (API server, controllers, DNS, 2 agents) RSS after the run: $(rss "$a_pid") MiB"
warnings "$work/a.err"
stop "$a_pid"
pids=()

# --- Part B -----------------------------------------------------------------
if [ "$pods_b" -gt 0 ]; then
echo
echo "## B. $pods_b sleep pods on 2 standalone agents"
$bin/svcnet up --data-dir "$work/b" --api-port 0 --nodes 0 >"$work/b.out" 2>"$work/b.err" &
cp_pid=$!; pids+=("$cp_pid")
wait_for "$work/b.out" "API server ready" 60
agents=()
for i in 1 2; do
  $bin/svcnet agent --kubeconfig "$work/b/kubeconfig" --node "bench$i" --node-ip "172.18.0.$((i + 1))" \
    --pod-cidr "10.244.$i.0/24" --state-dir "$work/agent$i" --listen 127.0.0.1:0 \
    >"$work/agent$i.out" 2>"$work/agent$i.err" &
  pids+=($!); agents+=($!)
  wait_for "$work/agent$i.out" "ready" 60
done
sleep 2
declare -A rss0 cpu0 kid0 cpu1 kid1 cpu2 rss1 cpu4 kid4 cpu3 kid3 rss2
for a in "${agents[@]}"; do rss0[$a]=$(rss "$a"); cpu0[$a]=$(cpu_ticks "$a"); kid0[$a]=$(child_ticks "$a"); done
cp0=$(cpu_ticks "$cp_pid")
run=pods-b-$$
load_b=$(cut -d' ' -f1-3 /proc/loadavg)
share_begin "$cp_pid" "${agents[@]}"
$bin/svcnet-bench --kubeconfig "$work/b/kubeconfig" --pods "$pods_b" --image sleep \
  --nodes bench1,bench2 --run "$run" --keep --containers-of "$(IFS=,; echo "${agents[*]}")" | tee "$work/b.table"
share_b=$(share_end "$cp_pid" "${agents[@]}")
echo "Machine CPU during that run (create to all Ready): $share_b"
for a in "${agents[@]}"; do cpu1[$a]=$(cpu_ticks "$a"); kid1[$a]=$(child_ticks "$a"); done
cp1=$(cpu_ticks "$cp_pid")
sleep 3   # let the last status writes settle before measuring idle
for a in "${agents[@]}"; do cpu2[$a]=$(cpu_ticks "$a"); done
cp2=$(cpu_ticks "$cp_pid")
t0=$(now)
sleep "$idle_secs"
t1=$(now)
idle_cp=$(awk -v a="$(cpu_ticks "$cp_pid")" -v b="$cp2" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.2f", (a - b) / hz / (t1 - t0) * 100}')
declare -A idle
for a in "${agents[@]}"; do
  idle[$a]=$(awk -v a="$(cpu_ticks "$a")" -v b="${cpu2[$a]}" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.2f", (a - b) / hz / (t1 - t0) * 100}')
  rss1[$a]=$(rss "$a")
  cpu4[$a]=$(cpu_ticks "$a"); kid4[$a]=$(child_ticks "$a")
done
running=$(for a in "${agents[@]}"; do pgrep -P "$a" | wc -l || true; done | paste -sd/)
$bin/svcnet-bench --kubeconfig "$work/b/kubeconfig" --delete-only --run "$run" | tee "$work/b.delete"
for a in "${agents[@]}"; do cpu3[$a]=$(cpu_ticks "$a"); kid3[$a]=$(child_ticks "$a"); done
sleep 2
for a in "${agents[@]}"; do rss2[$a]=$(rss "$a"); done
echo
load_b2=$(cut -d' ' -f1-3 /proc/loadavg)
echo "Second round on the same agents (does their memory keep growing?):"
share_begin "$cp_pid" "${agents[@]}"
$bin/svcnet-bench --kubeconfig "$work/b/kubeconfig" --pods "$pods_b" --image sleep \
  --nodes bench1,bench2 --run "$run-2" --containers-of "$(IFS=,; echo "${agents[*]}")" | tee "$work/b2.table"
share_b2=$(share_end "$cp_pid" "${agents[@]}")
echo "Machine CPU during that run (create to all deleted): $share_b2"
sleep 2
declare -A rss3
for a in "${agents[@]}"; do rss3[$a]=$(rss "$a"); done
for i in 1 2; do warnings "$work/agent$i.err"; done
warnings "$work/b.err"
leftover=$(comm -13 <(echo "$netns_before") <(netns_list) | grep -c '^svcnet-bench[12]-' || true)
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
pids=()
fi

# --- Summary ----------------------------------------------------------------
field() { grep -F "$1" "$2" | head -1 | awk -F'|' -v f="$3" '{gsub(/^ +| +$/, "", $f); print $f}'; }
per_node=$((pods_b / 2))
echo
echo "## Summary"
echo
echo "| measure | value | target / reference |"
echo "| --- | --- | --- |"
echo "| A: create → Ready, $pods_a echoserver pods at once, p50 / p90 / p99 / max | $(field Ready=True "$work/a.table" 4) / $(field Ready=True "$work/a.table" 5) / **$(field Ready=True "$work/a.table" 6)** / $(field Ready=True "$work/a.table" 7) ms | p99 < 500 ms; kubelet SLO: p99 ≤ 5 s |"
sweep=""
for n in $sweep_a; do sweep="$sweep$n: $(field Ready=True "$work/a$n.table" 6), "; done
echo "| A: create → Ready p99 by burst size (pods at once) | ${sweep}$pods_a: $(field Ready=True "$work/a.table" 6) ms | |"
echo "| A: create → bound to a node, p50 / p99 | $(field "bound to" "$work/a.table" 4) / $(field "bound to" "$work/a.table" 6) ms | |"
echo "| A: create → container process started, p50 / p99 | $(field "process started (" "$work/a.table" 4) / $(field "process started (" "$work/a.table" 6) ms | |"
echo "| A: container started → Ready seen, p50 / p99 | $(field "started →" "$work/a.table" 4) / $(field "started →" "$work/a.table" 6) ms | |"
echo "| A: all $pods_a pods Ready | $(field "pods Ready" "$work/a.table" 3) | |"
if [ "$pods_b" -gt 0 ]; then
a1=${agents[0]}; a2=${agents[1]}
echo "| B: create → Ready, $pods_b sleep pods at once, p50 / p99 | $(field Ready=True "$work/b.table" 4) / $(field Ready=True "$work/b.table" 6) ms | |"
echo "| B: create → container process started, p50 / p99 | $(field "process started (" "$work/b.table" 4) / $(field "process started (" "$work/b.table" 6) ms | |"
echo "| B: container started → Ready seen, p50 / p99 | $(field "started →" "$work/b.table" 4) / $(field "started →" "$work/b.table" 6) ms | |"
echo "| B: all $pods_b pods Ready | $(field "pods Ready" "$work/b.table" 3) | |"
echo "| B: agent CPU to start $per_node pods, bench1 / bench2 (own) | $(secs $((cpu1[$a1] - cpu0[$a1]))) / $(secs $((cpu1[$a2] - cpu0[$a2]))) s | |"
echo "| B: CPU of the agents' reaped children (container processes, counted when they end) in that time, bench1 / bench2 | $(secs $((kid1[$a1] - kid0[$a1]))) / $(secs $((kid1[$a2] - kid0[$a2]))) s | |"
echo "| B: control plane (svcnet up --nodes 0) CPU in that time | $(secs $((cp1 - cp0))) s | |"
echo "| B: agent idle CPU with $per_node pods each, over ${idle_secs} s, bench1 / bench2 | ${idle[$a1]} / ${idle[$a2]} % | |"
echo "| B: control plane idle CPU in that time | ${idle_cp} % | |"
echo "| B: agent RSS before, bench1 / bench2 | ${rss0[$a1]} / ${rss0[$a2]} MiB | |"
echo "| B: agent RSS with $per_node pods each, bench1 / bench2 | ${rss1[$a1]} / ${rss1[$a2]} MiB | |"
echo "| B: agent RSS after deleting them, bench1 / bench2 | ${rss2[$a1]} / ${rss2[$a2]} MiB | |"
echo "| B: agent RSS after a second round of $pods_b pods (created, Ready, deleted), bench1 / bench2 | ${rss3[$a1]} / ${rss3[$a2]} MiB | |"
echo "| B: second round, create → Ready p50 / p99; all Ready | $(field Ready=True "$work/b2.table" 4) / $(field Ready=True "$work/b2.table" 6) ms; $(field "pods Ready" "$work/b2.table" 3) | |"
echo "| B: pod processes under each agent while running | $running | |"
echo "| B: deletion of $pods_b pods, until gone | $(field "deleted and gone" "$work/b.delete" 3) | |"
echo "| B: agent CPU for the deletion, own + children, bench1 / bench2 | $(secs $((cpu3[$a1] - cpu4[$a1]))) + $(secs $((kid3[$a1] - kid4[$a1]))) / $(secs $((cpu3[$a2] - cpu4[$a2]))) + $(secs $((kid3[$a2] - kid4[$a2]))) s | |"
echo "| B: pod network namespaces left after the deletion | $leftover | 0 |"
fi
echo
if [ "$pods_b" -gt 0 ]; then
  echo "Machine: $(nproc) CPUs, shared. 1/5/15-min load average when the bursts began: A $load_a, B $load_b, B's second round $load_b2."
  echo "CPU during the bursts: A: $share_a. B: $share_b. B's second round: $share_b2."
else
  echo "Machine: $(nproc) CPUs, shared. 1/5/15-min load average when the burst began: A $load_a."
  echo "CPU during the burst: A: $share_a."
fi
