//! Instructions per Tower hit, for `docs/benchmarks.md`: a loop of
//! requests through `CacheLayer` (each a hit on one entry) or to the bare
//! inner service, run under callgrind. Instruction counts repeat exactly
//! run to run, where timings on a shared VM move by ±10%.
//!
//! ```sh
//! cargo build --release --features tower --example hit_instructions
//! for mode in bare hit; do for n in 10000 20000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$mode.$n \
//!     target/release/examples/hit_instructions $mode $n 2>&1 | grep Collected
//! done; done
//! ```
//!
//! Per request: (the 20,000 run − the 10,000 run) / 10,000, which takes
//! out start-up. `callgrind_annotate --inclusive=yes /tmp/cg.hit.20000`
//! then says where they go. (A `memcpy` counts as one instruction whatever
//! its length: moves of large values cost more time than this shows.)

use bytes::Bytes;
use cachet::{Cache, CacheLayer};
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use tower::{Layer, Service, ServiceExt};

const BODY: &[u8] = &[b'x'; 1024];

type Request = http::Request<Full<Bytes>>;

/// The same handler as `benches/hit_path.rs`: 1 KiB of JSON.
fn origin(
) -> impl Service<Request, Response = http::Response<Full<Bytes>>, Error = Infallible, Future: Send>
       + Clone
       + Send
       + 'static {
    tower::service_fn(|_req: Request| async {
        let mut response = http::Response::new(Full::new(Bytes::from_static(BODY)));
        response.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        Ok::<_, Infallible>(response)
    })
}

async fn send<S, B>(service: &S, request: Request) -> usize
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service.clone().oneshot(request).await.unwrap();
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "hit".to_owned());
    let requests: usize = args.next().map_or(20_000, |n| n.parse().expect("a count"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = Cache::from_toml(
        "[caches.default]\nmax_bytes = \"256MiB\"\nttl = \"1h\"\n\n[[rules]]\npath = '^/api/'\n",
    )
    .unwrap();
    let bare = origin();
    let cached = CacheLayer::new(cache).layer(origin());
    let request = || {
        http::Request::get("/api/items")
            .body(Full::default())
            .unwrap()
    };
    let bytes = runtime.block_on(async {
        send(&cached, request()).await;
        let mut bytes = 0;
        for _ in 0..requests {
            bytes += match mode.as_str() {
                "bare" => send(&bare, request()).await,
                _ => send(&cached, request()).await,
            };
        }
        bytes
    });
    println!("{mode}: {requests} requests, {bytes} bytes");
}
