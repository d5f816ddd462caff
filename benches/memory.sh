#!/usr/bin/env bash
# What a 64 MiB cache really costs: the release cachet-proxy's RSS after
# filling it with distinct responses (see examples/memory_bench.rs).
#
#   benches/memory.sh [requests]     # default 1000000 per case
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-1000000}
cargo build --release -p cachet-proxy >/dev/null 2>&1
cargo build --release --example memory_bench >/dev/null 2>&1
./target/release/examples/memory_bench small "$requests"
./target/release/examples/memory_bench kib "$requests"
./target/release/examples/memory_bench tagged "$((requests / 5))"
# Each entry hit once, so that it holds its prepared header map.
./target/release/examples/memory_bench small-hit "$((requests / 2))"
./target/release/examples/memory_bench kib-hit "$((requests / 2))"
./target/release/examples/memory_bench tagged-hit "$((requests / 10))"
