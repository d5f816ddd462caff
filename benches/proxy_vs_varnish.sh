#!/usr/bin/env bash
# Hit throughput of cachet-proxy against Varnish, and against the upstream
# alone, over loopback: alternating wrk runs, medians and their ratios.
#
#   benches/proxy_vs_varnish.sh [rounds] [seconds-per-run]
#
# Needs wrk and varnish (apt-get install -y wrk varnish). The upstream is
# examples/bench_server's bare 1 KiB handler on :3001; cachet-proxy (:3010)
# and varnishd (:3011, -s malloc,256m, default VCL) run in front of it, all
# three pinned to CPU 0; wrk runs on CPU 1. Every request after the first
# is a hit in both caches.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-5}
work=$(mktemp -d)

cargo build --release --example bench_server -p cachet >/dev/null 2>&1
cargo build --release -p cachet-proxy >/dev/null 2>&1

cat >"$work/proxy.toml" <<'TOML'
[proxy]
listen = "127.0.0.1:3010"
upstream = "http://127.0.0.1:3001"

# Varnish's default: 120 s for a response that says nothing.
[[rules]]
path = '^/'
ttl = "120s"
TOML

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/varnish.pid" ] && kill "$(cat "$work/varnish.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

TOKIO_WORKER_THREADS=1 taskset -c 0 ./target/release/examples/bench_server >/dev/null &
pids+=($!)
RUST_LOG=warn taskset -c 0 ./target/release/cachet-proxy --config "$work/proxy.toml" >/dev/null &
pids+=($!)
taskset -c 0 varnishd -a 127.0.0.1:3011 -b 127.0.0.1:3001 -s malloc,256m \
  -n "$work/varnish" -P "$work/varnish.pid" -j none >/dev/null
sleep 2
for port in 3010 3011; do curl -s -o /dev/null "http://127.0.0.1:$port/api/items"; done

. benches/wrk.sh

upstream=(); cachet=(); varnish=()
for ((i = 1; i <= rounds; i++)); do
  cachet+=("$(run 3010)")
  varnish+=("$(run 3011)")
  upstream+=("$(run 3001)")
  echo "round $i: cachet-proxy ${cachet[-1]}, varnish ${varnish[-1]}, upstream alone ${upstream[-1]} req/s"
done
c=$(printf '%s\n' "${cachet[@]}" | median)
v=$(printf '%s\n' "${varnish[@]}" | median)
u=$(printf '%s\n' "${upstream[@]}" | median)
echo "median req/s: cachet-proxy $c, varnish $v, upstream alone $u"
echo "cachet-proxy/varnish = $(ratio "$c" "$v"), cachet-proxy/upstream = $(ratio "$c" "$u"), varnish/upstream = $(ratio "$v" "$u")"
curl -s -D - -o /dev/null http://127.0.0.1:3010/api/items | grep -i cache-status || true
curl -s -D - -o /dev/null http://127.0.0.1:3011/api/items | grep -iE "^(x-varnish|age):" || true
