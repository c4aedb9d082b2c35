#!/usr/bin/env bash
# Ingress proxy benchmark (issue 7), side by side in one run, all on
# 127.0.0.1:
#   backend  nginx, one worker, answering every request with a short body
#            (the same backend for both proxies; measured directly too);
#   nginx    nginx as the equivalent reverse proxy (ingress-nginx's proxy
#            settings: HTTP/1.1 upstream keep-alive, X-Forwarded-* and
#            X-Request-ID headers, no access log);
#   svcnet   svcnet-bench-ingress: svcnet's Ingress proxy over the table the
#            controller builds for one Ingress (host bench.test, path /),
#            HTTP/1.1 on its own codec (crates/ingress/src/h1.rs);
#   hyper    the same binary with SVCNET_INGRESS_H1=hyper: HTTP/1.1 through
#            hyper's server and client, as before the fast path (for the
#            before/after comparison in the same run).
# For WORKERS in 1 and 2 (nginx worker_processes, svcnet tokio worker
# threads), wrk -t1 -c50 runs ROUNDS interleaved rounds of DURATION seconds
# against each proxy: plain HTTP and TLS, with keep-alive and with a new
# connection per request (Connection: close). Besides requests/s and p99,
# each run records the proxy's own CPU time per request (user + system,
# from /proc/<pid>/stat; nginx: its workers), which is far less noisy than
# requests/s on a shared machine. Both proxies serve an ECDSA
# P-256 certificate (svcnet its generated default: wrk sends the IP as SNI)
# and prefer their own cipher order, AES-128-GCM first (what svcnet does;
# wrk's OpenSSL would pick AES-256-GCM-SHA384). Both serve bench.test on
# plain HTTP too, without redirecting it to HTTPS (svcnet: `ssl-redirect:
# "false"` on the bench Ingress; before, svcnet answered plain requests
# with its 308 and never reached the backend).
# Then reconfiguration churn: wrk with keep-alive while svcnet swaps in a
# rebuilt table every 10 ms and nginx reloads every 500 ms (nginx -s
# reload, what ingress-nginx does on a change); errors are wrk's socket
# errors and non-2xx answers. RSS: svcnet-bench-ingress and nginx (master
# and workers) idle and at the end of the load; and the real `svcnet
# ingress` controller, idle, following `svcnet up --nodes 0` with 20
# Ingresses.
# Usage: bench/ingress.sh [DURATION] [ROUNDS]   (defaults 5 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
rounds=${2:-3}
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p svcnet -p svcnet-bench
bin=./target/release
work=$(mktemp -d)
pids=()
nginx_pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${nginx_pids[@]}"; do kill -QUIT "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

base=${BENCH_PORT_BASE:-18080}
backend=$base                 # backend nginx
ngx_http=$((base + 1)); ngx_https=$((base + 2))
sv_http=$((base + 3)); sv_https=$((base + 4))
hy_http=$((base + 5)); hy_https=$((base + 6))
openssl req -x509 -nodes -days 2 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$work/tls.key" -out "$work/tls.crt" -subj "/CN=bench.test" \
  -addext "subjectAltName=DNS:bench.test" 2>/dev/null

# nginx, started from its own prefix and config; prints the master's pid.
start_nginx() { # name conf
  mkdir -p "$work/$1/logs"
  printf '%s\n' "$2" >"$work/$1/nginx.conf"
  nginx -p "$work/$1" -c "$work/$1/nginx.conf" -e "$work/$1/logs/error.log"
  for _ in $(seq 50); do [ -s "$work/$1/nginx.pid" ] && break; sleep 0.1; done
  nginx_pids+=("$(cat "$work/$1/nginx.pid")")
}
common='pid nginx.pid; error_log logs/error.log warn; events { worker_connections 4096; }'
start_nginx backend "worker_processes 1; $common
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$backend reuseport; location / { return 200 \"hello from the backend\\n\"; } } }"

proxy_conf() { # workers
  echo "worker_processes $1; $common
http { access_log off; keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$backend; keepalive 64; }
  server { listen 127.0.0.1:$ngx_http; listen 127.0.0.1:$ngx_https ssl;
    ssl_certificate $work/tls.crt; ssl_certificate_key $work/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    server_name bench.test;
    location / {
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";
      proxy_set_header Host \$host; proxy_set_header X-Request-ID \$request_id;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Host \$host; proxy_set_header X-Forwarded-Port \$server_port;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_connect_timeout 5s; proxy_read_timeout 60s; proxy_send_timeout 60s; } } }"
}

rss_of() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done; echo "$t"; }
nginx_tree() { echo "$1" $(pgrep -P "$1"); }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# CPU ticks (user + system) of some processes.
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }

# One wrk run: prints "<req/s> <p99 ms> <errors> <proxy CPU µs per request>"
# (CPU of the processes in $cpu_pids, if any).
cpu_pids=""
run_wrk() { # url extra-args...
  local url=$1; shift
  local out t0 t1
  t0=$(ticks $cpu_pids)
  out=$(wrk -t1 -c50 -d"${duration}s" --latency -H "Host: bench.test" "$@" "$url" 2>&1)
  t1=$(ticks $cpu_pids)
  local rps p99 errs non2xx
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
  errs=$(awk '/Socket errors/{gsub(/,/,""); print $4+$6+$8+$10}' <<<"$out")
  non2xx=$(awk '/Non-2xx/{print $5}' <<<"$out")
  n=$(awk '/requests in/{print $1}' <<<"$out")
  cpu=$(awk -v t=$((t1 - t0)) -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (n > 0) ? (t * 1e6 / hz / n) : 0}')
  echo "${rps:-0} ${p99:-0} $(( ${errs:-0} + ${non2xx:-0} )) $cpu"
}

echo "== direct to the backend =="
direct=$(run_wrk "http://127.0.0.1:$backend/")
echo "backend, keep-alive: $direct"

results="$work/results"
: >"$results"
for workers in 1 2; do
  start_nginx "proxy$workers" "$(proxy_conf "$workers")"
  ngx=${nginx_pids[-1]}
  "$bin/svcnet-bench-ingress" --workers "$workers" --backend "127.0.0.1:$backend" \
    --http "127.0.0.1:$sv_http" --https "127.0.0.1:$sv_https" --cert "$work/tls.crt" --key "$work/tls.key" \
    >"$work/sv$workers.out" &
  sv=$!
  pids+=("$sv")
  SVCNET_INGRESS_H1=hyper "$bin/svcnet-bench-ingress" --workers "$workers" --backend "127.0.0.1:$backend" \
    --http "127.0.0.1:$hy_http" --https "127.0.0.1:$hy_https" --cert "$work/tls.crt" --key "$work/tls.key" \
    >"$work/hy$workers.out" &
  hy=$!
  pids+=("$hy")
  for _ in $(seq 50); do grep -q ready "$work/sv$workers.out" 2>/dev/null && grep -q ready "$work/hy$workers.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  ngx_workers=$(pgrep -P "$ngx" | tr '\n' ' ')
  echo "rss idle $workers svcnet $(rss_of "$sv") nginx $(rss_of $(nginx_tree "$ngx"))" >>"$results"
  for round in $(seq "$rounds"); do
    for mode in plain-keepalive plain-close tls-keepalive tls-close; do
      for proxy in nginx svcnet hyper; do
        case $proxy in
          nginx) hp=$ngx_http; sp=$ngx_https; cpu_pids=$ngx_workers ;;
          svcnet) hp=$sv_http; sp=$sv_https; cpu_pids=$sv ;;
          hyper) hp=$hy_http; sp=$hy_https; cpu_pids=$hy ;;
        esac
        case $mode in
          plain-keepalive) r=$(run_wrk "http://127.0.0.1:$hp/") ;;
          plain-close) r=$(run_wrk "http://127.0.0.1:$hp/" -H "Connection: close") ;;
          tls-keepalive) r=$(run_wrk "https://127.0.0.1:$sp/") ;;
          tls-close) r=$(run_wrk "https://127.0.0.1:$sp/" -H "Connection: close") ;;
        esac
        echo "run $workers $mode $proxy $round $r" >>"$results"
        echo "workers=$workers $mode $proxy round $round: $r"
      done
    done
  done
  echo "rss load $workers svcnet $(rss_of "$sv") nginx $(rss_of $(nginx_tree "$ngx"))" >>"$results"
  cpu_pids=""
  kill "$sv" "$hy"; wait "$sv" "$hy" 2>/dev/null || true
  kill -QUIT "$ngx"; sleep 0.5
done

echo "== reconfiguration churn (1 worker each, keep-alive) =="
start_nginx churn "$(proxy_conf 1)"
ngx=${nginx_pids[-1]}
"$bin/svcnet-bench-ingress" --workers 1 --backend "127.0.0.1:$backend" --churn-ms 10 \
  --http "127.0.0.1:$sv_http" --https "127.0.0.1:$sv_https" >"$work/churn.out" &
sv=$!
pids+=("$sv")
for _ in $(seq 50); do grep -q ready "$work/churn.out" 2>/dev/null && break; sleep 0.1; done
churn_secs=$((duration * 2))
( end=$((SECONDS + churn_secs)); n=0
  while [ $SECONDS -lt $end ] && [ $n -lt 100 ]; do sleep 0.5; nginx -p "$work/churn" -c "$work/churn/nginx.conf" -s reload 2>/dev/null; n=$((n + 1)); done
  echo "$n" >"$work/reloads" ) &
reloader=$!
ngx_churn=$(duration=$churn_secs run_wrk "http://127.0.0.1:$ngx_http/")
wait "$reloader"
sv_churn=$(duration=$churn_secs run_wrk "http://127.0.0.1:$sv_http/")
kill "$sv"; wait "$sv" 2>/dev/null || true
swaps=$(sed -n 's/^swaps=//p' "$work/churn.out")
kill -QUIT "$ngx"; sleep 0.5

echo "== the svcnet ingress controller, idle =="
"$bin/svcnet" up --data-dir "$work/up" --api-port 0 --nodes 0 --http-port 0 --https-port 0 >"$work/up.out" 2>"$work/up.err" &
pids+=($!)
for _ in $(seq 300); do grep -q "API server ready" "$work/up.out" 2>/dev/null && break; sleep 0.1; done
export KUBECONFIG="$work/up/kubeconfig"
for i in $(seq 20); do
  printf 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: app%s}\nspec:\n  rules:\n  - host: app%s.example\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: app%s, port: {number: 80}}}}\n---\n' "$i" "$i" "$i"
done | kubectl apply -f - >/dev/null
"$bin/svcnet" ingress --kubeconfig "$work/up/kubeconfig" --http-addr 127.0.0.1:0 --https-addr 127.0.0.1:0 \
  --metrics "" --workers 1 >"$work/ing.out" 2>"$work/ing.err" &
ing=$!
pids+=("$ing")
for _ in $(seq 100); do grep -q ready "$work/ing.out" 2>/dev/null && break; sleep 0.1; done
sleep 3
ctl_rss=$(rss_of "$ing")

python3 - "$results" "$direct" "$ngx_churn" "$sv_churn" "$(cat "$work/reloads")" "${swaps:-0}" "$ctl_rss" <<'EOF'
import sys, statistics
results, direct, ngx_churn, sv_churn, reloads, swaps, ctl_rss = sys.argv[1:]
runs, rss = {}, {}
for line in open(results):
    f = line.split()
    if f[0] == "run":
        _, w, mode, proxy, _, rps, p99, errs, cpu = f
        runs.setdefault((w, mode, proxy), []).append((float(rps), float(p99), int(errs), float(cpu)))
    else:
        _, phase, w, _, sv, _, ngx = f
        rss[(phase, w)] = (int(sv), int(ngx))
d = direct.split()
print(f"\nDirect to the backend (keep-alive): {float(d[0]):,.0f} requests/s, p99 {d[1]} ms\n")
med = lambda xs, i: statistics.median(x[i] for x in xs)
print("| workers | traffic | nginx req/s | svcnet req/s | ratio | nginx p99 ms | svcnet p99 ms | errors (nginx / svcnet) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for w in ("1", "2"):
    for mode in ("plain-keepalive", "plain-close", "tls-keepalive", "tls-close"):
        n, s = runs.get((w, mode, "nginx")), runs.get((w, mode, "svcnet"))
        if not n or not s:
            continue
        nr, sr = med(n, 0), med(s, 0)
        print(f"| {w} | {mode.replace('-', ', ')} | {nr:,.0f} | {sr:,.0f} | **{sr / nr:.2f}x** | {med(n, 1):.2f} | {med(s, 1):.2f} | {sum(x[2] for x in n)} / {sum(x[2] for x in s)} |")
print("\n(medians of the rounds; errors summed)\n")
print("| workers | traffic | hyper path req/s | hyper path ratio to nginx | hyper path p99 ms | CPU µs/request: nginx | svcnet | hyper path |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for w in ("1", "2"):
    for mode in ("plain-keepalive", "plain-close", "tls-keepalive", "tls-close"):
        n, s, h = (runs.get((w, mode, p)) for p in ("nginx", "svcnet", "hyper"))
        if not n or not s or not h:
            continue
        print(f"| {w} | {mode.replace('-', ', ')} | {med(h, 0):,.0f} | {med(h, 0) / med(n, 0):.2f}x | {med(h, 1):.2f} | {med(n, 3):.1f} | {med(s, 3):.1f} | {med(h, 3):.1f} |")
print("\n(the hyper path: the same binary with SVCNET_INGRESS_H1=hyper; CPU: the proxy's user + system time per request, medians)\n")
print("| RSS | svcnet | nginx (master + workers) |")
print("| --- | --- | --- |")
for w in ("1", "2"):
    for phase in ("idle", "load"):
        if (phase, w) in rss:
            sv, ngx = rss[(phase, w)]
            print(f"| {w} worker(s), {'idle' if phase == 'idle' else 'after the load'} | {sv / 1024:.1f} MiB | {ngx / 1024:.1f} MiB |")
print(f"| `svcnet ingress` controller (API watches, 20 Ingresses), idle | {int(ctl_rss) / 1024:.1f} MiB | |")
nc, sc = ngx_churn.split(), sv_churn.split()
print("\n| under reconfiguration churn (1 worker, keep-alive) | changes | req/s | p99 ms | errors |")
print("| --- | --- | --- | --- | --- |")
print(f"| nginx, `nginx -s reload` every 0.5 s | {reloads} reloads | {float(nc[0]):,.0f} | {nc[1]} | {nc[2]} |")
print(f"| svcnet, table rebuilt and swapped every 10 ms | {swaps} swaps | {float(sc[0]):,.0f} | {sc[1]} | {sc[2]} |")
EOF
