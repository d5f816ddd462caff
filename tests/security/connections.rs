//! The proxy under slow and greedy clients: half-sent requests, silent and
//! idle connections, too many connections, oversized heads. These wait in
//! real time, on timeouts of a second or two.

use crate::client::{get, start_proxy, RULES};
use crate::origin::Origin;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: &str = "[proxy]\nheader_read_timeout = \"1s\"\nidle_timeout = \"2s\"\n";

async fn proxy(extra: &str) -> SocketAddr {
    let upstream = Origin::default().start().await;
    start_proxy(&format!("{RULES}\n{LIMITS}{extra}"), upstream).await
}

/// Whether the server closes `stream` within `within` (reads up to EOF or
/// an error, ignoring any response it writes first).
async fn closed_within(mut stream: TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn half_sent_and_silent_connections_are_closed_while_others_are_served() {
    let addr = proxy("").await;
    let mut stalled = Vec::new();
    for n in 0..60 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if n % 3 != 0 {
            // Half a request head; a third send nothing at all.
            stream
                .write_all(b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        stalled.push(stream);
    }
    let served = get(addr, "/api/items/1", &[], "").await;
    assert_eq!(served.body, "item 1", "served while others stall");
    let closed = futures_util::future::join_all(
        stalled
            .into_iter()
            .map(|stream| closed_within(stream, Duration::from_secs(10))),
    )
    .await;
    assert!(closed.iter().all(|closed| *closed), "{closed:?}");
    assert_eq!(get(addr, "/api/items/1", &[], "").await.body, "item 1");
}

#[tokio::test]
async fn the_default_header_count_limit_is_100() {
    let addr = proxy("").await;
    // With `Host` and `Connection`: 92 fields (the origin, which allows
    // 100 too, gets the proxy's own few more), then 101.
    for (fields, refused) in [(90, false), (99, true)] {
        let head: String = (0..fields).map(|n| format!("x-h{n}: v\r\n")).collect();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET /api/items/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{head}\r\n");
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        let ok = answer.starts_with("HTTP/1.1 200");
        // Refused by the proxy itself: nothing went upstream (no `Via`).
        let by_proxy =
            answer.is_empty() || (answer.starts_with("HTTP/1.1 431") && !answer.contains("via:"));
        assert_eq!(
            (ok, by_proxy),
            (!refused, refused),
            "{fields} fields: {answer}"
        );
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let addr = proxy("").await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let read = stream.read(&mut buf).await.unwrap();
    assert!(buf[..read].starts_with(b"HTTP/1.1 200"));
    assert!(closed_within(stream, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_slot() {
    let addr = proxy("max_connections = 3\n").await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // The kernel accepts a fourth; the proxy does not serve it while the
    // three hold every slot (they go after a second of silence)...
    let early = tokio::time::timeout(
        Duration::from_millis(300),
        get(addr, "/api/items/2", &[], ""),
    )
    .await;
    assert!(early.is_err(), "no slot is free yet");
    // ...and serves one once a silent connection has gone.
    let served =
        tokio::time::timeout(Duration::from_secs(10), get(addr, "/api/items/2", &[], "")).await;
    assert_eq!(served.expect("served once a slot was free").body, "item 2");
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let addr = proxy("max_headers = 20\nmax_header_bytes = \"16KiB\"\n").await;
    for head in [
        (0..50)
            .map(|n| format!("x-h{n}: v\r\n"))
            .collect::<String>(),
        format!("x-big: {}\r\n", "v".repeat(64 * 1024)),
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /api/items/1 HTTP/1.1\r\nHost: x\r\n{head}\r\n");
        // The server may close before it has read everything.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "refused: {answer}"
        );
    }
    assert_eq!(get(addr, "/api/items/1", &[], "").await.body, "item 1");
}
