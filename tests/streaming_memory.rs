//! A 100 MB response without a length through the layer: the first frame
//! reaches the client before the origin has sent the rest, and the heap
//! never holds more than the rule's `max_body` of it. This binary counts
//! every allocation (`stats_alloc`), so it holds this one test alone.

mod streams;
mod support;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::sync::Arc;
use streams::{cache, channel_origin, BOUND, CHUNK};
use support::request;
use tower::{Layer, ServiceExt};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes live on the heap now.
fn live_bytes() -> i64 {
    let stats = GLOBAL.stats();
    // `stats_alloc` already counts a reallocation's growth or shrinkage in
    // `bytes_allocated` or `bytes_deallocated`.
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_stream_flows_through_in_bounded_memory() {
    let cache = cache();
    let calls = Arc::default();
    let (origin, mut new_calls) = channel_origin(Arc::clone(&calls));
    let service = cachet::CacheLayer::new(cache.clone()).layer(origin);
    let baseline = live_bytes();
    let response = tokio::spawn(service.oneshot(request("GET", "/api/big", &[])));
    let origin_side = new_calls.recv().await.unwrap();
    origin_side
        .send(Ok(Frame::data(Bytes::from(vec![1u8; CHUNK]))))
        .await
        .unwrap();
    // The head and the first frame arrive while the origin is still
    // sending: nothing waits for the whole body.
    let response = tokio::time::timeout(BOUND, response)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        response.headers()["cache-status"],
        "cachet; fwd=uri-miss; fwd-status=200"
    );
    let mut body = response.into_body();
    let first = tokio::time::timeout(BOUND, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap().len(), CHUNK);
    // Now the rest: 100 MB in fresh 64 KiB allocations.
    const TOTAL: usize = 100 * 1024 * 1024;
    let producer = tokio::spawn(async move {
        for _ in 1..TOTAL / CHUNK {
            let chunk = Bytes::from(vec![1u8; CHUNK]);
            if origin_side.send(Ok(Frame::data(chunk))).await.is_err() {
                break;
            }
        }
    });
    let (mut received, mut peak) = (CHUNK, 0i64);
    while let Some(frame) = tokio::time::timeout(BOUND, body.frame()).await.unwrap() {
        received += frame.unwrap().into_data().unwrap().len();
        peak = peak.max(live_bytes() - baseline);
    }
    producer.await.unwrap();
    assert_eq!(received, TOTAL);
    // Recording stopped at `max_body` (1 MiB) and let go of what it held;
    // the live heap stayed a few chunks deep, never near the 100 MB.
    assert!(peak < 8 * 1024 * 1024, "peak live heap {peak} bytes");
    let stats = &cache.stats().caches["default"];
    assert_eq!((stats.inserts, stats.not_stored), (0, 1));
}
