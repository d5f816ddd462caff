//! Instructions per Tower request, for `docs/benchmarks.md`: a loop of
//! requests to the bare inner service (`bare`) or through `CacheLayer`:
//! each a hit on one entry (`hit`), a path no rule matches (`pass`), or a
//! new URL stored (`miss`, in a 4 MiB cache that evicts), run under
//! callgrind. Instruction counts repeat to within about 50 run to run
//! (random hash keys), where timings on a shared VM move by ±10%.
//!
//! ```sh
//! cargo build --release --features tower --example hit_instructions
//! for mode in bare hit pass miss; do for n in 10000 20000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$mode.$n \
//!     target/release/examples/hit_instructions $mode $n 2>&1 | grep Collected
//! done; done
//! ```
//!
//! Per request: (the 20,000 run − the 10,000 run) / 10,000, which takes
//! out start-up. `callgrind_annotate --inclusive=yes /tmp/cg.hit.20000`
//! then says where they go. (A `memcpy` counts as one instruction whatever
//! its length: moves of large values cost more time than this shows.)

#[path = "../benches/support/tower_origin.rs"]
mod tower_origin;

use cachet::{Cache, CacheLayer};
use tower::Layer;
use tower_origin::{origin, request, send};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "hit".to_owned());
    let requests: usize = args.next().map_or(20_000, |n| n.parse().expect("a count"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A budget of a few thousand entries: the stored misses evict from the
    // first few thousand on, as in a cache that has been running a while.
    let budget = if mode == "miss" { "4MiB" } else { "256MiB" };
    let cache = Cache::from_toml(&format!(
        "[caches.default]\nmax_bytes = \"{budget}\"\nttl = \"1h\"\n\n[[rules]]\npath = '^/api/'\n",
    ))
    .unwrap();
    let bare = origin();
    let cached = CacheLayer::new(cache).layer(origin());
    let bytes = runtime.block_on(async {
        send(&cached, request("/api/items")).await;
        let mut bytes = 0;
        for n in 0..requests {
            bytes += match mode.as_str() {
                "bare" => send(&bare, request("/api/items")).await,
                "pass" => send(&cached, request("/static/app.css")).await,
                "miss" => send(&cached, request(&format!("/api/items?n={n}"))).await,
                _ => send(&cached, request("/api/items")).await,
            };
        }
        bytes
    });
    println!("{mode}: {requests} requests, {bytes} bytes");
}
