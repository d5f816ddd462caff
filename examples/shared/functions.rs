//! What both demos compute besides their pages: a function cached with
//! `#[cached]`, and a rate limiter on the value cache's counters.

use cachet::values::ValueCache;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An exchange rate, and when it was computed (a cached one keeps its time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Quote {
    currency: String,
    rate: f64,
    computed_at_ms: u128,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// A slow lookup (50 ms), cached for 10 s per currency in the handle the
/// demo installed; an unknown currency is an error, never stored.
#[cachet::cached(ttl = "10s", key = "rate:{currency}")]
pub(crate) async fn exchange_rate(currency: String) -> Result<Quote, String> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let rate = match currency.as_str() {
        "eur" => 0.92,
        "gbp" => 0.79,
        "jpy" => 151.3,
        other => return Err(format!("no rate for {other}\n")),
    };
    Ok(Quote {
        currency,
        rate,
        computed_at_ms: now_ms(),
    })
}

/// How many requests `client` made in the current 10-second window, and
/// whether that is within 5 (a fixed window on `incr`; a failing cache
/// lets the request through).
pub(crate) async fn rate_limit(values: &ValueCache, client: &str) -> (i64, bool) {
    match values
        .incr(&format!("ratelimit:{client}"), 1, Duration::from_secs(10))
        .await
    {
        Ok(seen) => (seen, seen <= 5),
        Err(_) => (0, true),
    }
}

/// A page cached by its handler's own rule (no TOML): when it was made.
pub(crate) fn news() -> String {
    format!("news as of {} ms\n", now_ms())
}
