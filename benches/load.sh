#!/usr/bin/env bash
# Load runs over loopback, alternating wrk runs, medians and their ratios.
#
#   benches/load.sh [rounds] [seconds-per-run] [mode]
#
# Modes:
#   axum      the same 1 KiB handler bare (:3001), behind CacheLayer as a
#             hit (:3002) and behind axum-response-cache as a hit (:3003)
#             (examples/bench_server.rs)
#   actix     bare actix-web (:3001) and ResponseCache hits (:3002)
#             (examples/actix_bench_server.rs)
#   proxy     hits through cachet-proxy (its defaults, access log on),
#             Varnish and nginx proxy_cache (one worker, access log off), and
#             the bare origin they all front; then cachet-proxy with the
#             access log off (RUST_LOG=warn)
#   miss      every request a new URL: stored misses against pass-through,
#             through the Tower layer and through cachet-proxy
#   identity  a per-user rule, 1,000 users' Authorization headers (each a
#             hit), against a shared hit sent the same headers (wrk and
#             hyper do the same work for both), 1,000 shared entries sent
#             them (as many entries as the users': what is left is the
#             identity's hashing), and a shared hit without them
#
# Needs wrk (apt-get install -y wrk); proxy mode also varnish and nginx.
# CACHET_PROXY=path runs another build of cachet-proxy (BEFORE_PROXY=path
# adds one more, in proxy mode, alternating with the rest), BENCH_SERVER=path
# and ACTIX_BENCH_SERVER=path other builds of the bench servers (a
# before/after: build them from the earlier commit and copy them aside).
# Servers run on CPU 0 (one worker each), wrk on CPU 1, so the two do not
# compete for a core.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
secs=${2:-5}
mode=${3:-axum}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pidfile in "$work"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

. benches/wrk.sh

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || {
      echo "$0 needs $tool: apt-get install -y $tool" >&2
      exit 2
    }
  done
}

# start NAME COMMAND...: runs COMMAND on CPU 0 in the background.
start() {
  shift
  TOKIO_WORKER_THREADS=1 taskset -c 0 "$@" >"$work/out.$RANDOM" 2>&1 &
  pids+=($!)
}

bench_server() {
  [ -n "${BENCH_SERVER:-}" ] ||
    cargo build --release --features tower --example bench_server >/dev/null 2>&1
  start origin "${BENCH_SERVER:-./target/release/examples/bench_server}"
}

proxy() { # proxy PORT RULE-PATH [RUST_LOG [BINARY]]
  cat >"$work/proxy-$1.toml" <<TOML
[proxy]
listen = "127.0.0.1:$1"
upstream = "http://127.0.0.1:3001"

# One hour, as Varnish (-t) and nginx (proxy_cache_valid) are told.
[[rules]]
path = '$2'
ttl = "1h"
TOML
  RUST_LOG=${3:-info} start proxy "${4:-${CACHET_PROXY:-./target/release/cachet-proxy}}" \
    --config "$work/proxy-$1.toml"
}

# compare LABEL:PORT[:PATH[:ARGS]]...: rounds of one run per target, then
# the medians and each one's ratio to the first; and the median of each
# round's own ratio to the first, which a slow stretch of a shared VM
# moves less (the runs of a round are seconds apart, the rounds minutes).
# Each round starts one target later than the one before, so no target
# always runs first (the first run of a round was seen to lose up to 15%).
compare() {
  local -A results=()
  local -A ratios=()
  local labels=()
  local targets=("$@")
  local n=${#targets[@]}
  for target in "$@"; do labels+=("${target%%:*}"); done
  for ((i = 1; i <= rounds; i++)); do
    local -A round=()
    for ((k = 0; k < n; k++)); do
      IFS=: read -r label port path args <<<"${targets[$(((i - 1 + k) % n))]}"
      # shellcheck disable=SC2086
      local r
      r=$(run "$port" "${path:-/api/items}" $args)
      results[$label]+="$r "
      round[$label]=$r
    done
    local line="round $i:"
    for label in "${labels[@]}"; do
      line+=" $label ${round[$label]}"
      ratios[$label]+="$(ratio "${round[$label]}" "${round[${labels[0]}]}") "
    done
    echo "$line req/s"
  done
  local base=""
  local summary="median req/s:"
  for label in "${labels[@]}"; do
    local m
    m=$(printf '%s\n' ${results[$label]} | median)
    [ -z "$base" ] && base=$m
    summary+=" $label $m ($(ratio "$m" "$base"))"
  done
  echo "$summary"
  local paired="median of the rounds' ratios to ${labels[0]}:"
  for label in "${labels[@]:1}"; do
    # shellcheck disable=SC2086
    paired+=" $label $(printf '%s\n' ${ratios[$label]} | median)"
  done
  echo "$paired"
}

case $mode in
  axum)
    bench_server
    sleep 1
    for port in 3002 3003; do curl -s -o /dev/null "http://127.0.0.1:$port/api/items"; done
    compare bare:3001 cachet:3002 axum-response-cache:3003
    ;;
  actix)
    [ -n "${ACTIX_BENCH_SERVER:-}" ] ||
      cargo build --release --features actix --example actix_bench_server >/dev/null 2>&1
    start server "${ACTIX_BENCH_SERVER:-./target/release/examples/actix_bench_server}"
    sleep 1
    curl -s -o /dev/null http://127.0.0.1:3002/api/items
    compare bare:3001 cachet:3002
    ;;
  proxy)
    need varnishd nginx
    bench_server
    cargo build --release -p cachet-proxy >/dev/null 2>&1
    proxy 3010 '^/'
    proxy 3013 '^/' warn
    before=()
    if [ -n "${BEFORE_PROXY:-}" ]; then
      proxy 3014 '^/' info "$BEFORE_PROXY"
      before=(before:3014)
    fi
    taskset -c 0 varnishd -a 127.0.0.1:3011 -b 127.0.0.1:3001 -s malloc,256m -t 3600 \
      -n "$work/varnish" -P "$work/varnish.pid" -j none >/dev/null
    mkdir -p "$work/nginx"
    cat >"$work/nginx.conf" <<NGINX
user root;
worker_processes 1;
worker_cpu_affinity 01;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  proxy_cache_path $work/nginx/cache keys_zone=bench:10m max_size=256m;
  upstream origin { server 127.0.0.1:3001; keepalive 32; }
  server {
    listen 127.0.0.1:3012;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 1h;
    }
  }
}
NGINX
    nginx -c "$work/nginx.conf" -p "$work/nginx"
    sleep 2
    for port in 3010 3011 3012 3013 3014; do curl -s -o /dev/null "http://127.0.0.1:$port/api/items" || true; done
    compare cachet-proxy:3010 varnish:3011 nginx:3012 origin:3001 cachet-proxy-log-off:3013 "${before[@]}"
    curl -s -D - -o /dev/null http://127.0.0.1:3010/api/items | grep -i '^cache-status' || true
    curl -s -D - -o /dev/null http://127.0.0.1:3011/api/items | grep -iE '^age:' || true
    ;;
  miss)
    bench_server
    cargo build --release -p cachet-proxy >/dev/null 2>&1
    proxy 3010 '^/api/items'
    sleep 1
    # Each run's URLs are new: wrk's script numbers them under a fresh prefix.
    compare \
      "layer-pass:3002:/api/other:-s benches/distinct.lua" \
      "layer-stored-miss:3002:/api/items:-s benches/distinct.lua" \
      "bare:3001:/api/items:-s benches/distinct.lua"
    compare \
      "proxy-pass:3010:/api/other:-s benches/distinct.lua" \
      "proxy-stored-miss:3010:/api/items:-s benches/distinct.lua"
    ;;
  identity)
    bench_server
    sleep 1
    curl -s -o /dev/null http://127.0.0.1:3002/api/items
    secs=2 run 3002 /api/me -s benches/users.lua >/dev/null # every user's entry
    # The 1,000 shared URLs, stored from requests without Authorization.
    for n in $(seq 1000); do
      printf 'url = "http://127.0.0.1:3002/api/items?u=%s"\noutput = /dev/null\n' "$n"
    done >"$work/urls.curl"
    curl -s -K "$work/urls.curl"
    compare "shared-hit:3002:/api/items:-s benches/users.lua" \
      "shared-1000-entries:3002:/:-s benches/users_urls.lua" \
      "per-user-hit:3002:/api/me:-s benches/users.lua" shared-hit-no-authorization:3002
    ;;
  *)
    echo "usage: $0 [rounds] [seconds-per-run] [axum|actix|proxy|miss|identity]" >&2
    exit 2
    ;;
esac
