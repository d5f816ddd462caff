# Helpers for the load-run scripts (sourced, not run).
#   run PORT  — requests per second of one wrk run on CPU 1 against
#               http://127.0.0.1:PORT/api/items ($secs seconds, 32 connections)
#   median    — the median of the numbers on standard input
#   ratio A B — A / B to three decimals
run() { taskset -c 1 wrk -t1 -c32 -d"${secs}s" "http://127.0.0.1:$1/api/items" | awk '/Requests\/sec/ {print $2}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk "BEGIN {printf \"%.3f\", $1 / $2}"; }
