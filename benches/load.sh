#!/usr/bin/env bash
# Load run over loopback: the same 1 KiB handler bare (:3001) and behind
# the cache as a hit (:3002), alternating wrk runs, medians and their ratio.
#
#   benches/load.sh [rounds] [seconds-per-run] [axum|actix]
#
# axum (the default) runs examples/bench_server.rs (CacheLayer), actix runs
# examples/actix_bench_server.rs (ResponseCache). Needs wrk (apt-get install
# -y wrk). The server runs on CPU 0 (one worker per port) and wrk on CPU 1,
# so the two do not compete for a core.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
secs=${2:-5}
case ${3:-axum} in
  axum) example=bench_server; features=tower ;;
  actix) example=actix_bench_server; features=actix ;;
  *) echo "usage: $0 [rounds] [seconds-per-run] [axum|actix]" >&2; exit 2 ;;
esac

cargo build --release --features "$features" --example "$example" >/dev/null 2>&1
TOKIO_WORKER_THREADS=1 taskset -c 0 "./target/release/examples/$example" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 1
curl -s -o /dev/null http://127.0.0.1:3002/api/items   # fill the cache

. benches/wrk.sh

bare=(); hit=()
for ((i = 1; i <= rounds; i++)); do
  bare+=("$(run 3001)")
  hit+=("$(run 3002)")
  echo "round $i: bare ${bare[-1]} req/s, hit ${hit[-1]} req/s"
done
b=$(printf '%s\n' "${bare[@]}" | median)
h=$(printf '%s\n' "${hit[@]}" | median)
echo "median: bare $b req/s, hit $h req/s, hit/bare = $(ratio "$h" "$b")"
