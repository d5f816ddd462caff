//! Bodies without a length go to the client frame by frame while the cache
//! records them up to the rule's `max_body`: stored when they end within
//! it, never when they fail, and a client that leaves hands the fetch on.
//! (`streaming_memory.rs` streams 100 MB through the layer.)

mod streams;
mod support;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{fetch, request};
use tower::{Layer, ServiceExt};

use streams::{cache, channel_origin, BOUND};

#[tokio::test]
async fn a_stream_within_max_body_is_stored_when_it_ends() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let (origin, mut new_calls) = channel_origin(Arc::clone(&calls));
    let service = cachet::CacheLayer::new(cache.clone()).layer(origin);
    let get = |service: cachet::tower::CacheService<_>| async move {
        let fetched = fetch(service, "/api/small").await.unwrap();
        (fetched.cache_status, fetched.body)
    };
    let leader = tokio::spawn(get(service.clone()));
    let origin_side = new_calls.recv().await.unwrap();
    for part in ["strea", "med"] {
        origin_side
            .send(Ok(Frame::data(Bytes::from(part))))
            .await
            .unwrap();
    }
    drop(origin_side);
    let (label, body) = leader.await.unwrap();
    assert_eq!(
        (label.as_str(), &body[..]),
        ("cachet; fwd=uri-miss; fwd-status=200", &b"streamed"[..])
    );
    let (label, body) = get(service).await;
    assert!(label.starts_with("cachet; hit"), "{label}");
    assert_eq!(body, "streamed");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_slow_reader_never_holds_up_the_requests_waiting_for_its_key() {
    // Waiting on the slow reader would last the hour of `lock_timeout`.
    let cache = cachet::Cache::from_toml(
        "[[rules]]\npath = '^/api/'\nttl = \"60s\"\nlock_timeout = \"1h\"\n",
    )
    .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (origin, mut new_calls) = channel_origin(Arc::clone(&calls));
    // The origin answers once the gate opens, so the waiters queue first.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let gated = {
        let gate = Arc::clone(&gate);
        tower::service_fn(move |req| {
            let (gate, origin) = (Arc::clone(&gate), origin.clone());
            let answer: futures_util::future::BoxFuture<'static, _> = Box::pin(async move {
                gate.acquire_owned().await.unwrap().forget();
                origin.oneshot(req).await
            });
            answer
        })
    };
    let service = cachet::CacheLayer::new(cache).layer(gated);
    let leader = tokio::spawn(service.clone().oneshot(request("GET", "/api/slow", &[])));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let waiters: Vec<_> = (0..5)
        .map(|_| tokio::spawn(service.clone().oneshot(request("GET", "/api/slow", &[]))))
        .collect();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(100);
    // Every origin call streams a short body; the leader's client never reads.
    tokio::spawn(async move {
        while let Some(origin_side) = new_calls.recv().await {
            let _ = origin_side.send(Ok(Frame::data(Bytes::from("body")))).await;
        }
    });
    let unread = tokio::time::timeout(BOUND, leader)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    for waiter in waiters {
        let body = tokio::time::timeout(Duration::from_secs(10), async move {
            let response = waiter.await.unwrap().unwrap();
            response.into_body().collect().await.unwrap().to_bytes()
        })
        .await
        .expect("not held up by the slow reader");
        assert_eq!(body, "body");
    }
    assert!(calls.load(Ordering::SeqCst) >= 2);
    drop(unread);
}

#[tokio::test]
async fn a_stream_that_fails_reaches_the_client_as_an_error_and_is_not_stored() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let (origin, mut new_calls) = channel_origin(Arc::clone(&calls));
    let service = cachet::CacheLayer::new(cache.clone()).layer(origin);
    let response = tokio::spawn(service.clone().oneshot(request("GET", "/api/fails", &[])));
    let origin_side = new_calls.recv().await.unwrap();
    origin_side
        .send(Ok(Frame::data(Bytes::from("partial"))))
        .await
        .unwrap();
    origin_side
        .send(Err(std::io::Error::other("reset")))
        .await
        .unwrap();
    let mut body = response.await.unwrap().unwrap().into_body();
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        "partial"
    );
    assert_eq!(
        body.frame().await.unwrap().unwrap_err().to_string(),
        "reset"
    );
    drop(body);
    // Not stored: the next request goes to the origin.
    let next = tokio::spawn(service.oneshot(request("GET", "/api/fails", &[])));
    let origin_side = new_calls.recv().await.unwrap();
    drop(origin_side);
    next.await
        .unwrap()
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        cache.stats().caches["default"].inserts,
        1,
        "the second, empty, body"
    );
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_hands_the_fetch_to_a_waiter() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let (origin, mut new_calls) = channel_origin(Arc::clone(&calls));
    let service = cachet::CacheLayer::new(cache.clone()).layer(origin);
    let response = tokio::spawn(service.clone().oneshot(request("GET", "/api/left", &[])));
    let first_origin = new_calls.recv().await.unwrap();
    first_origin
        .send(Ok(Frame::data(Bytes::from("half"))))
        .await
        .unwrap();
    let mut body = response.await.unwrap().unwrap().into_body();
    body.frame().await.unwrap().unwrap();
    let waiter = tokio::spawn(async move { fetch(service, "/api/left").await.unwrap().body });
    tokio::task::yield_now().await;
    // The client disconnects: its body is dropped unfinished.
    drop(body);
    let second_origin = tokio::time::timeout(BOUND, new_calls.recv())
        .await
        .unwrap()
        .unwrap();
    second_origin
        .send(Ok(Frame::data(Bytes::from("whole"))))
        .await
        .unwrap();
    drop(second_origin);
    let body = tokio::time::timeout(BOUND, waiter).await.unwrap().unwrap();
    assert_eq!(body, "whole");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    drop(first_origin);
}
