# Helpers for the load-run scripts (sourced, not run).
#   run PORT [PATH [WRK-ARGS...]] — requests per second of one wrk run on
#               CPU 1 against http://127.0.0.1:PORT/PATH ($secs seconds,
#               32 connections; PATH defaults to /api/items)
#   median    — the median of the numbers on standard input
#   ratio A B — A / B to three decimals
run() {
  local port=$1 path=${2:-/api/items}
  shift $(($# < 2 ? $# : 2))
  taskset -c 1 wrk -t1 -c32 -d"${secs}s" "$@" "http://127.0.0.1:$port$path" -- "$RANDOM$RANDOM" |
    awk '/Requests\/sec/ {print $2}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk "BEGIN {printf \"%.3f\", $1 / $2}"; }
