//! The endpoints of the management API, once a request is admitted.

use super::config::AdminConfig;
use super::metrics;
use super::system::Memory;
use bytes::Bytes;
use cachet_core::config::DurationValue;
use cachet_core::persistence::{DumpError, Persistence};
use cachet_core::stats::{CacheStats, Health};
use cachet_core::store::StoreError;
use cachet_core::Cache;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use percent_encoding::percent_decode_str;
use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Keys listed per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// The most keys one page lists, whatever `limit` asks.
const MAX_LIMIT: usize = 1000;

/// An admitted request.
pub(super) struct Call<'a> {
    pub(super) cache: &'a Cache,
    pub(super) config: &'a AdminConfig,
    pub(super) persistence: Option<&'a Persistence>,
    pub(super) method: &'a Method,
    /// The path below the mount point, without its leading `/`.
    pub(super) path: &'a str,
    pub(super) query: &'a str,
    pub(super) body: &'a Bytes,
}

/// A refusal: the status and what to say.
struct Refusal(StatusCode, String);

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
    }
}

type Answer = Result<Response<Bytes>, Refusal>;

impl Call<'_> {
    pub(super) async fn answer(&self) -> Response<Bytes> {
        self.route()
            .await
            .unwrap_or_else(|Refusal(status, message)| error(status, &message))
    }

    async fn route(&self) -> Answer {
        match self.path {
            "stats" => {
                self.only(&Method::GET, "GET")?;
                Ok(self.stats())
            }
            "health" => {
                self.only(&Method::GET, "GET")?;
                Ok(self.health().await)
            }
            "metrics" => {
                self.only(&Method::GET, "GET")?;
                let mut response = Response::new(Bytes::from(metrics::render(self.cache)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                Ok(response)
            }
            "keys" => match *self.method {
                Method::GET => self.list_keys().await,
                Method::DELETE => self.delete_matching().await,
                Method::PUT => self.touch_matching().await,
                _ => Err(not_allowed("GET, DELETE, PUT")),
            },
            "keys/stats" => {
                self.only(&Method::GET, "GET")?;
                self.key_stats().await
            }
            "purge" => {
                self.only(&Method::POST, "POST")?;
                self.purge().await
            }
            "dump" => {
                self.only(&Method::POST, "POST")?;
                self.dump().await
            }
            "auto-dump" => self.auto_dump(),
            "caches" => {
                self.only(&Method::DELETE, "DELETE")?;
                self.clear(None).await
            }
            path => {
                if let Some(key) = path.strip_prefix("keys/") {
                    self.one_key(&decode_segment(key)).await
                } else if let Some(name) = path.strip_prefix("caches/") {
                    self.only(&Method::DELETE, "DELETE")?;
                    self.clear(Some(&decode_segment(name))).await
                } else {
                    Err(Refusal(StatusCode::NOT_FOUND, "no such endpoint".into()))
                }
            }
        }
    }

    fn only(&self, method: &Method, allow: &str) -> Result<(), Refusal> {
        if self.method == method || (*method == Method::GET && *self.method == Method::HEAD) {
            Ok(())
        } else {
            Err(not_allowed(allow))
        }
    }

    fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
    }

    fn pattern(&self) -> Result<Option<Regex>, Refusal> {
        match self.param("pattern") {
            None => Ok(None),
            Some(pattern) => Regex::new(&pattern).map(Some).map_err(|error| {
                Refusal(
                    StatusCode::BAD_REQUEST,
                    format!("invalid pattern `{pattern}`: {error}"),
                )
            }),
        }
    }

    fn required_pattern(&self) -> Result<Regex, Refusal> {
        self.pattern()?.ok_or_else(|| {
            Refusal(
                StatusCode::BAD_REQUEST,
                "give a `pattern` (a regex over keys); DELETE /caches clears everything".into(),
            )
        })
    }

    fn ttl(&self) -> Result<Duration, Refusal> {
        let text = self
            .param("ttl")
            .ok_or_else(|| Refusal(StatusCode::BAD_REQUEST, "give a `ttl`, like 5m".into()))?;
        match DurationValue::Text(text).parse() {
            Ok(ttl) if !ttl.is_zero() => Ok(ttl),
            Ok(_) => Err(Refusal(
                StatusCode::BAD_REQUEST,
                "`ttl` must be above zero".into(),
            )),
            Err(reason) => Err(Refusal(StatusCode::BAD_REQUEST, format!("`ttl`: {reason}"))),
        }
    }

    fn number(&self, name: &str, default: usize) -> Result<usize, Refusal> {
        match self.param(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| {
                Refusal(
                    StatusCode::BAD_REQUEST,
                    format!("`{name}` must be a whole number, not `{text}`"),
                )
            }),
        }
    }

    fn stats(&self) -> Response<Bytes> {
        let snapshot = self.cache.stats();
        let overall = overall(snapshot.caches.values());
        json_response(&json!({
            "uptime_secs": snapshot.uptime_secs,
            "caches": snapshot.caches,
            "overall": overall,
            "bookkeeping_bytes": snapshot.bookkeeping_bytes,
            "memory": Memory::now(),
            "admin": {
                "read_only": self.config.is_read_only(),
            },
            "last_restore": self.persistence.and_then(Persistence::last_restore),
        }))
    }

    async fn health(&self) -> Response<Bytes> {
        let health = self.cache.health().await;
        let mut response = json_response(&json!(health));
        if matches!(health, Health::Failing { .. }) {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        response
    }

    /// The named cache the `cache` parameter names, checked.
    fn cache_param(&self) -> Result<Option<String>, Refusal> {
        match self.param("cache") {
            Some(name) if !self.cache.caches().contains_key(&name) => Err(Refusal(
                StatusCode::NOT_FOUND,
                format!("no cache named `{name}`"),
            )),
            name => Ok(name),
        }
    }

    async fn list_keys(&self) -> Answer {
        let only = self.cache_param()?;
        let pattern = self.pattern()?;
        let limit = self.number("limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT);
        let cursor = self.number("cursor", 0)?;
        let matching: Vec<_> = self
            .cache
            .keys()
            .await?
            .into_iter()
            .filter(|listed| only.as_ref().is_none_or(|name| *name == listed.cache))
            .filter(|listed| {
                pattern
                    .as_ref()
                    .is_none_or(|pattern| pattern.is_match(listed.key.as_str()))
            })
            .collect();
        let page: Vec<_> = matching.iter().skip(cursor).take(limit).collect();
        let next = cursor.saturating_add(limit);
        Ok(json_response(&json!({
            "keys": page,
            "total": matching.len(),
            "next_cursor": (next < matching.len()).then(|| next.to_string()),
        })))
    }

    async fn key_stats(&self) -> Answer {
        let pattern = self.pattern()?;
        let per_cache = self.cache.key_stats(pattern.as_ref()).await?;
        Ok(json_response(&json!({ "caches": per_cache })))
    }

    async fn one_key(&self, key: &str) -> Answer {
        let (found, done) = match *self.method {
            Method::DELETE => (self.cache.delete(key).await?, "deleted"),
            Method::PUT => {
                let ttl = self.ttl()?;
                (self.cache.touch(key, ttl).await?, "touched")
            }
            _ => return Err(not_allowed("DELETE, PUT")),
        };
        if !found {
            return Err(Refusal(StatusCode::NOT_FOUND, "no such key".into()));
        }
        Ok(json_response(&json!({ done: 1 })))
    }

    async fn delete_matching(&self) -> Answer {
        let pattern = self.required_pattern()?;
        let deleted = self.cache.delete_matching(&pattern).await?;
        Ok(json_response(&json!({ "deleted": deleted })))
    }

    async fn touch_matching(&self) -> Answer {
        let pattern = self.required_pattern()?;
        let ttl = self.ttl()?;
        let touched = self.cache.touch_matching(&pattern, ttl).await?;
        Ok(json_response(&json!({ "touched": touched })))
    }

    async fn purge(&self) -> Answer {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Purge {
            #[serde(default)]
            tags: Vec<String>,
            #[serde(default)]
            uris: Vec<String>,
            #[serde(default)]
            patterns: Vec<String>,
            /// Make the entries stale instead of removing them.
            #[serde(default)]
            soft: bool,
        }
        let purge: Purge = serde_json::from_slice(self.body).map_err(|error| {
            Refusal(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"tags\":[…],\"uris\":[…],\"patterns\":[…],\"soft\":false}}: {error}"),
            )
        })?;
        // Every pattern compiles, or nothing is purged.
        let patterns = purge
            .patterns
            .iter()
            .map(|pattern| {
                Regex::new(pattern).map_err(|error| {
                    Refusal(
                        StatusCode::BAD_REQUEST,
                        format!("invalid pattern `{pattern}`: {error}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let soft = purge.soft.then(|| self.cache.soft());
        let mut counts = (0, 0, 0);
        for tag in &purge.tags {
            counts.0 += match &soft {
                Some(soft) => soft.purge_tag(tag).await?,
                None => self.cache.purge_tag(tag).await?,
            };
        }
        for uri in &purge.uris {
            let (path, query) = match uri.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (uri.as_str(), None),
            };
            counts.1 += match &soft {
                Some(soft) => soft.purge_uri(path, query).await?,
                None => self.cache.purge_uri(path, query).await?,
            };
        }
        for pattern in &patterns {
            counts.2 += match &soft {
                Some(soft) => soft.delete_matching(pattern).await?,
                None => self.cache.delete_matching(pattern).await?,
            };
        }
        Ok(json_response(
            &json!({"tags": counts.0, "uris": counts.1, "patterns": counts.2}),
        ))
    }

    /// The persistence handle, or 409: nothing to dump to.
    fn persistence(&self) -> Result<&Persistence, Refusal> {
        self.persistence
            .ok_or_else(|| Refusal(StatusCode::CONFLICT, DumpError::NoDumpFile.to_string()))
    }

    async fn dump(&self) -> Answer {
        let persistence = self.persistence()?.clone();
        let dumped = tokio::task::spawn_blocking(move || persistence.dump_now())
            .await
            .map_err(|error| Refusal(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
        match dumped {
            Ok(report) => Ok(json_response(&json!(report))),
            Err(error @ DumpError::NoDumpFile) => {
                Err(Refusal(StatusCode::CONFLICT, error.to_string()))
            }
            Err(error) => Err(Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                error.to_string(),
            )),
        }
    }

    /// `GET` the auto-dump's status, `POST`/`PUT ?interval=` start it or
    /// change its interval, `DELETE` stop it.
    fn auto_dump(&self) -> Answer {
        match *self.method {
            Method::GET | Method::HEAD => {}
            Method::POST | Method::PUT => {
                let text = self.param("interval").ok_or_else(|| {
                    Refusal(
                        StatusCode::BAD_REQUEST,
                        "give an `interval`, like 5m".into(),
                    )
                })?;
                let interval = DurationValue::Text(text).parse().map_err(|reason| {
                    Refusal(StatusCode::BAD_REQUEST, format!("`interval`: {reason}"))
                })?;
                self.persistence()?
                    .start_auto_dump(interval)
                    .map_err(|error| match error {
                        DumpError::NoDumpFile => Refusal(StatusCode::CONFLICT, error.to_string()),
                        error => Refusal(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
                    })?;
            }
            Method::DELETE => {
                if let Some(persistence) = self.persistence {
                    persistence.stop_auto_dump();
                }
            }
            _ => return Err(not_allowed("GET, POST, PUT, DELETE")),
        }
        // Without a persistence layer nothing runs.
        let status = self
            .persistence
            .map(Persistence::auto_dump_status)
            .unwrap_or_default();
        Ok(json_response(&json!(status)))
    }

    async fn clear(&self, name: Option<&str>) -> Answer {
        let cleared: Vec<&str> = match name {
            Some(name) => {
                let Some((name, _)) = self.cache.caches().get_key_value(name) else {
                    return Err(Refusal(
                        StatusCode::NOT_FOUND,
                        format!("no cache named `{name}`"),
                    ));
                };
                self.cache.clear(name).await?;
                vec![name.as_str()]
            }
            None => {
                self.cache.clear_all().await?;
                self.cache.caches().keys().map(String::as_str).collect()
            }
        };
        Ok(json_response(&json!({ "cleared": cleared })))
    }
}

/// The figures of every named cache together.
fn overall<'a>(caches: impl Iterator<Item = &'a CacheStats>) -> Value {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for stats in caches {
        for (name, value) in [
            ("hits", stats.hits),
            ("misses", stats.misses),
            ("stale", stats.stale),
            ("coalesced", stats.coalesced),
            ("revalidated", stats.revalidated),
            ("bypassed", stats.bypassed),
            ("inserts", stats.inserts),
            ("evictions", stats.evictions),
            ("expirations", stats.expirations),
            ("entries", stats.entries),
            ("bytes", stats.bytes),
            ("max_bytes", stats.max_bytes),
        ] {
            *sums.entry(name).or_default() += value;
        }
    }
    let lookups = sums["hits"] + sums["misses"];
    let mut value = json!(sums);
    value["hit_rate"] = json!(if lookups == 0 {
        0.0
    } else {
        sums["hits"] as f64 / lookups as f64
    });
    value
}

/// A query component, decoded (`+` is a space there).
fn decode(text: &str) -> String {
    decode_segment(&text.replace('+', " "))
}

/// A percent-encoded path segment, decoded (keys hold `/`, so a key in a
/// path is sent as `%2F…`).
fn decode_segment(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn json_response(value: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn not_allowed(allow: &str) -> Refusal {
    Refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allow}"),
    )
}

/// A JSON error answer: `{"error": message}`.
pub(super) fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    let mut response = json_response(&json!({ "error": message }));
    *response.status_mut() = status;
    response
}
