//! Step 1, route: the rule that matches a request and the key of its
//! entry — or a pass-through, or a bypass of the cache.

use super::scanned::{self, Scan, Scanned};
use crate::cache::{Cache, CacheUse};
use crate::config::rules::{CompiledRule, Rule, DEFAULT_CACHE};
use crate::config::ConfigError;
use crate::identity::Resolved;
use crate::key::{combine_header_values, CacheKey, HeaderPart, KeyBuilder};
use crate::protocol::cache_status::ForwardReason;
use crate::protocol::directives::{ClientNoCache, RequestDirectives};
use crate::protocol::host::{normalize_host, request_host};
use crate::protocol::storability::RequestFacts;
use crate::protocol::tags::uri_term;
use crate::protocol::target::{canonical_path, differs};
use crate::request::RequestHead;
use crate::stats::Counters;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use std::sync::Arc;
use std::time::SystemTime;

/// What the origin must receive in the key's form, not the request's.
#[derive(Debug, Clone)]
pub(super) struct Respelled {
    /// The host as keyed, when it is keyed and the request spelled it
    /// otherwise.
    host: Option<HeaderValue>,
    /// Headers the rule keys on that came in several lines, as keyed: the
    /// lines combined into one.
    combined: Vec<(HeaderName, HeaderValue)>,
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Route {
    /// No rule matches: pass it through untouched (no headers added).
    Pass,
    /// A rule matches but the cache is not used for this request; label the
    /// response with [`adapter::bypassed`](crate::adapter::bypassed).
    Bypass(ForwardReason),
    /// Serve from or fill the cache.
    Cache(Plan),
}

/// What the cache will do with one request that matched a rule: the rule and
/// the key, and what the storage policy needs to know later.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(super) rule: Arc<CompiledRule>,
    pub(super) key: CacheKey,
    /// How long the target (canonical path and query) at the key's start is.
    pub(super) target_len: usize,
    /// The canonical target, when it differs from the request's own;
    /// boxed, since most requests are canonical (and a plan is moved
    /// between the steps of every hit).
    pub(super) rewrite: Option<Box<PathAndQuery>>,
    /// Whether the canonical path differs from the request's own.
    pub(super) changes_path: bool,
    /// The host and headers the origin must receive in another form than
    /// the request's own; boxed, since most requests need none.
    pub(super) respelled: Option<Box<Respelled>>,
    pub(super) head: bool,
    /// Whether the request may carry preconditions the cache evaluates
    /// (`If-None-Match`, `If-Modified-Since`) and a `Range`: false when its
    /// scanned names show none, so a hit skips looking for them.
    pub(super) asks: Asks,
    pub(super) facts: RequestFacts,
    pub(super) directives: RequestDirectives,
    /// The scan of the request's names routing made, for the lookup after
    /// it; `None` when [`retarget`](Self::retarget) adds a `Host` the
    /// request did not have, which the scan would deny.
    pub(super) scan: Option<Scan>,
    /// When the request arrived, for rules that refresh early (which need
    /// to know how long a fetch takes) and for requests that must
    /// revalidate (`no-cache`: a response received after they arrived
    /// answers them).
    pub(super) started: Option<SystemTime>,
}

/// What a request may ask of a hit beyond the entry; see [`Plan::asks`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asks {
    pub(crate) preconditions: bool,
    pub(crate) range: bool,
}

impl Plan {
    /// The matching rule.
    pub(crate) fn rule(&self) -> &CompiledRule {
        &self.rule
    }
    /// Which configured rule matched: its position in the configuration,
    /// from 0; `None` for a rule attached to one handler.
    pub fn rule_index(&self) -> Option<usize> {
        self.rule.is_configured().then(|| self.rule.index())
    }
    /// The entry's key.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }
    /// The canonical path and query the origin must receive, when they
    /// differ from the request's own (`/api/m%65` is `/api/me`,
    /// `/static/../api/me` is `/api/me`, a `normalize_query` rule's query
    /// is sorted): the adapter puts it in the request it forwards, so the
    /// application answers exactly what was keyed. `None` when the request
    /// is already canonical.
    pub fn target(&self) -> Option<&PathAndQuery> {
        self.rewrite.as_deref()
    }
    /// Whether [`target`](Self::target) changes the path, not only the
    /// query. An adapter that cannot make the application route on the
    /// canonical path (it runs after routing) must not cache the request:
    /// it bypasses it ([`adapter::bypass_plan`](crate::adapter::bypass_plan)).
    pub fn changes_path(&self) -> bool {
        self.changes_path
    }
    /// The `Host` the origin must receive, when the key holds the host
    /// and the request spelled it otherwise (`Example.COM:80` is keyed and
    /// forwarded as `example.com`): the adapter sets it, and the target's
    /// authority when it has one, so that an origin that reflects the host
    /// builds what every request of that key is answered with.
    pub fn host(&self) -> Option<&HeaderValue> {
        self.respelled.as_ref()?.host.as_ref()
    }
    /// The headers the rule keys on that the request sent in several
    /// field lines, each with the one value the key holds (the lines
    /// combined, RFC 9110 §5.3): the adapter replaces the lines with it,
    /// so that an origin reading only the first line cannot answer for
    /// less than was keyed.
    pub fn combined_headers(&self) -> &[(HeaderName, HeaderValue)] {
        self.respelled
            .as_ref()
            .map_or(&[], |respelled| &respelled.combined)
    }
    /// Makes `req` what was keyed: its path and query become
    /// [`target`](Self::target), its `Host` (and the URI's authority,
    /// which absolute-form and HTTP/2 requests have) [`host`](Self::host),
    /// and each of [`combined_headers`](Self::combined_headers) one line.
    /// `false` when no such URI can be made: the request must then bypass
    /// the cache, since the origin would not receive what was keyed.
    #[must_use]
    pub fn retarget<B>(&self, req: &mut http::Request<B>) -> bool {
        for (name, value) in self.combined_headers() {
            req.headers_mut().insert(name, value.clone());
        }
        let host = self.host();
        if self.rewrite.is_none() && host.is_none() {
            return true;
        }
        let mut parts = req.uri().clone().into_parts();
        if let Some(target) = &self.rewrite {
            parts.path_and_query = Some(PathAndQuery::clone(target));
        }
        if let (Some(host), Some(_)) = (host, &parts.authority) {
            match http::uri::Authority::try_from(host.as_bytes()) {
                Ok(authority) => parts.authority = Some(authority),
                Err(_) => return false,
            }
        }
        match http::Uri::from_parts(parts) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return false,
        }
        if let Some(host) = host {
            req.headers_mut().insert(header::HOST, host.clone());
        }
        true
    }
    /// The index term of the entry's URI, for purges by URI: the target,
    /// and the host when keys hold it.
    pub(crate) fn uri_term(&self, key_host: bool) -> Arc<str> {
        let key = self.key.as_str();
        let target = &key[..self.target_len];
        let host = key_host.then(|| key.split(' ').nth(2)).flatten();
        uri_term(target, host)
    }
    /// Whether the request is a `HEAD`: a hit is answered without a body.
    pub fn is_head(&self) -> bool {
        self.head
    }
    /// Whether the client said `only-if-cached`: a miss is answered 504
    /// without forwarding.
    pub fn only_if_cached(&self) -> bool {
        self.directives.only_if_cached
    }
}

/// Headers that may carry a credential: a rule that keys on one keys on
/// its keyed hash, so keys never show it.
fn is_credential(name: &HeaderName) -> bool {
    matches!(
        *name,
        header::AUTHORIZATION | header::COOKIE | header::PROXY_AUTHORIZATION
    )
}

/// `Connection` options that name no end-to-end header.
const CONNECTION_OPTIONS: [&str; 3] = ["close", "keep-alive", "te"];

/// Whether `req` must skip the cache whatever its key: it carries one of
/// `bypass_headers`; it has a body (a GET or HEAD with one may be answered
/// from it, and an origin that reads it would be keyed on less than it
/// sees); it upgrades the protocol; or `Connection`
/// names a header, which a proxy would drop after the key was made from it.
fn bypasses(req: &Scanned<'_>, bypass_headers: &[HeaderName]) -> bool {
    if bypass_headers.iter().any(|name| req.header(name).is_some()) {
        return true;
    }
    if !req.may_have(scanned::SKIPS) {
        return false;
    }
    let has_body = req.header(&header::TRANSFER_ENCODING).is_some()
        || req
            .header(&header::CONTENT_LENGTH)
            .is_some_and(|length| length.trim_ascii() != b"0");
    if has_body || req.header(&header::UPGRADE).is_some() {
        return true;
    }
    let mut names_a_header = false;
    req.header_values(&header::CONNECTION, &mut |value| {
        names_a_header |= value
            .split(|&byte| byte == b',')
            .map(<[u8]>::trim_ascii)
            .any(|option| {
                !option.is_empty()
                    && !CONNECTION_OPTIONS
                        .iter()
                        .any(|known| option.eq_ignore_ascii_case(known.as_bytes()))
            });
    });
    names_a_header
}

impl Cache {
    /// Steps 1 and 3 of the design: the rule that matches `req` and the key
    /// of its entry.
    ///
    /// Rules match the canonical path (see [`Plan::target`]), the one the
    /// key holds and the origin receives. The request bypasses the cache
    /// when the rule does not cache its method, when it is a range request,
    /// a protocol upgrade, carries a body, names a header in `Connection`,
    /// carries one of the bypass headers, has an ambiguous path, a host
    /// that is not one, a key longer than `max_key_bytes`, or (on a
    /// `vary_by_user` rule) a credential without a clear identity.
    pub(crate) fn route(&self, req: &dyn RequestHead) -> Route {
        let raw_path = req.path();
        let req = &Scanned::new(req);
        let path = match canonical_path(raw_path) {
            Ok(path) => path,
            Err(_) => {
                // Origins disagree on what it names: never cached.
                return match self.inner.rules.find(raw_path) {
                    Some(rule) => self.bypass(rule, ForwardReason::Bypass),
                    None => Route::Pass,
                };
            }
        };
        match self.inner.rules.find(&path) {
            Some(rule) => self.route_under(req, rule, &path),
            None => Route::Pass,
        }
    }

    /// [`route`](Self::route) for a request a handler's router sent to
    /// `rule` ([`Cache::handler_rule`]): the same steps, without matching.
    pub(crate) fn route_handler(&self, rule: &Arc<CompiledRule>, req: &dyn RequestHead) -> Route {
        let req = &Scanned::new(req);
        match canonical_path(req.path()) {
            Ok(path) => self.route_under(req, rule, &path),
            Err(_) => self.bypass(rule, ForwardReason::Bypass),
        }
    }

    /// A request under `rule` on its canonical `path`: cached under a plan,
    /// or a counted bypass.
    fn route_under(&self, req: &Scanned<'_>, rule: &Arc<CompiledRule>, path: &str) -> Route {
        match self.plan(req, rule, path) {
            Ok(plan) => Route::Cache(plan),
            Err(reason) => self.bypass(rule, reason),
        }
    }

    /// `rule` compiled for one handler, its entries counted with its
    /// cache's, the cache claimed for responses.
    pub(crate) fn handler_rule(&self, rule: &Rule) -> Result<Arc<CompiledRule>, ConfigError> {
        let caches = &self.inner.caches;
        let name = rule.cache.as_deref().unwrap_or(DEFAULT_CACHE);
        let position = caches.keys().position(|known| known == name).unwrap_or(0);
        let index = self.inner.rules.rules().len() + position;
        let compiled = CompiledRule::for_handler(index, rule, caches)?;
        self.claim(
            name,
            CacheUse::Responses("a handler's rule".into()),
            "cache",
        )?;
        Ok(Arc::new(compiled))
    }

    /// The route for a request whose plan the adapter cannot carry out (it
    /// cannot forward the canonical path, for one): a bypass, counted.
    pub(crate) fn bypass_plan(&self, plan: &Plan) -> Route {
        self.bypass(&plan.rule, ForwardReason::Bypass)
    }

    /// A [`Route::Bypass`] of a request `rule` matched, counted.
    fn bypass(&self, rule: &CompiledRule, reason: ForwardReason) -> Route {
        Counters::bump(&self.inner.rule_counters[rule.index()].bypassed);
        Route::Bypass(reason)
    }

    /// The plan for a request `rule` matched on its canonical `path`, or
    /// why the request bypasses the cache.
    fn plan(
        &self,
        req: &Scanned<'_>,
        rule: &Arc<CompiledRule>,
        path: &str,
    ) -> Result<Plan, ForwardReason> {
        let method = req.method();
        let raw_path = req.path();
        let head = match method {
            "GET" => false,
            "HEAD" => true,
            _ => return Err(ForwardReason::Method),
        };
        if !rule.caches_method(method) {
            return Err(ForwardReason::Method);
        }
        let limits = &self.inner.limits;
        let bypass_headers = rule.bypass_headers().unwrap_or(&limits.bypass_headers);
        if bypasses(req, bypass_headers) {
            return Err(ForwardReason::Bypass);
        }
        let query = req.query();
        if path.len() + query.map_or(0, str::len) > limits.max_key_bytes {
            return Err(ForwardReason::Bypass);
        }
        let target = KeyBuilder::for_canonical(path, query, rule.normalize_query());
        let target_len = target.len();
        let changes_path = path != raw_path;
        let rewrite = if differs(target.as_str(), raw_path, query) {
            match PathAndQuery::try_from(target.as_str()) {
                Ok(target) => Some(Box::new(target)),
                Err(_) => return Err(ForwardReason::Bypass),
            }
        } else {
            None
        };
        let key_method = if rule.vary_by_method() { method } else { "GET" };
        let mut key = target.method(key_method);
        let mut rehost = None;
        if self.inner.key_host {
            // Two hosts, or none that is one: never keyed (a proxy answers 400).
            let host = request_host(req).map_err(|_| ForwardReason::Bypass)?;
            let normalized = match host {
                Some(raw) => {
                    let normalized = normalize_host(raw).ok_or(ForwardReason::Bypass)?;
                    if normalized.as_bytes() != raw {
                        let value = HeaderValue::from_str(&normalized)
                            .map_err(|_| ForwardReason::Bypass)?;
                        rehost = Some(value);
                    }
                    Some(normalized)
                }
                None => None,
            };
            key = key.host(normalized.as_deref());
        }
        let mut shared = true;
        if rule.vary_by_user() {
            let identity = match self.inner.identity.resolve(req) {
                Resolved::User(hash) => Some(hash),
                Resolved::Anonymous => None,
                Resolved::Unresolved => return Err(ForwardReason::Bypass),
            };
            shared = identity.is_none();
            key = key.user(identity);
        }
        let mut combined = Vec::new();
        for name in rule.vary_headers() {
            let mut values: Vec<&[u8]> = Vec::new();
            req.header_values(name, &mut |value| values.push(value));
            let value = combine_header_values(&values);
            if values.len() > 1 {
                // Cookie lines join with `; `, not `, `: not combined here.
                if is_credential(name) {
                    return Err(ForwardReason::Bypass);
                }
                let one = value.as_deref().map(HeaderValue::from_bytes);
                let Some(Ok(one)) = one else {
                    return Err(ForwardReason::Bypass);
                };
                combined.push((name.clone(), one));
            }
            key = match value {
                // A credential is keyed by a keyed hash, never as it is.
                Some(value) if is_credential(name) => key.header_part(
                    name.as_str(),
                    HeaderPart::Hashed(self.inner.identity.hash_header(name, &value)),
                ),
                value => key.header(name.as_str(), value.as_deref()),
            };
        }
        let key = key.finish();
        if key.as_str().len() > limits.max_key_bytes {
            return Err(ForwardReason::Bypass);
        }
        let mut directives = if req.may_have(scanned::DIRECTIVES) {
            RequestDirectives::of(req)
        } else {
            RequestDirectives::default()
        };
        if limits.client_no_cache == ClientNoCache::Ignore {
            directives = directives.ignoring_no_cache();
        }
        // Early refresh times fetches; a request that must revalidate may
        // take a response received after it arrived.
        let started =
            (rule.early_refresh().is_some() || directives.no_cache).then(|| self.inner.clock.now());
        // Retargeting respells a `Host` the request has, or adds one.
        let adds_host = rehost.is_some() && !req.may_have(scanned::HOST);
        let scan = (!adds_host).then(|| req.scan());
        Ok(Plan {
            rule: Arc::clone(rule),
            key,
            target_len,
            rewrite,
            changes_path,
            respelled: (rehost.is_some() || !combined.is_empty()).then(|| {
                Box::new(Respelled {
                    host: rehost,
                    combined,
                })
            }),
            head,
            asks: Asks {
                preconditions: req.may_have(scanned::PRECONDITIONS),
                range: req.may_have(scanned::RANGE),
            },
            facts: RequestFacts {
                shared,
                authorized: req.header(&header::AUTHORIZATION).is_some(),
                head_as_get: head && !rule.vary_by_method(),
                no_store: directives.no_store,
                cookie: req.header(&header::COOKIE).is_some(),
            },
            directives,
            scan,
            started,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::DEFAULT_MAX_KEY_BYTES;
    use crate::{Identity, Rule};

    fn cache() -> Cache {
        Cache::builder()
            .rule(Rule::new("^/api/me$").vary_by_user(true))
            .rule(Rule::new("^/api/long$").vary_headers([HeaderName::from_static("x-long")]))
            .rule(Rule::new("^/api/"))
            .identity(Identity::none().header(http::HeaderName::from_static("x-api-key")))
            .build()
            .unwrap()
    }

    fn route(target: &str, headers: &[(&str, &str)]) -> Route {
        let mut req = http::Request::get(target);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        cache().route(&req.body(()).unwrap())
    }

    fn rule_of(route: &Route) -> Option<usize> {
        match route {
            Route::Cache(plan) => Some(plan.rule().index()),
            _ => None,
        }
    }

    #[test]
    fn the_lookup_reuses_the_scan_of_names_unless_retargeting_adds_a_host() {
        let cache = Cache::builder()
            .key_host(true)
            .rule(Rule::new("^/"))
            .build()
            .unwrap();
        let plan = |req: http::Request<()>| match cache.route(&req) {
            Route::Cache(plan) => plan,
            other => panic!("{other:?}"),
        };
        let hosted = http::Request::get("/page")
            .header("host", "Shop.Example")
            .body(())
            .unwrap();
        let hosted = plan(hosted);
        assert_eq!(hosted.host().unwrap(), "shop.example");
        assert!(hosted.scan.is_some(), "Host is respelled, not added");
        // Absolute form without Host: retargeting adds one, so the names
        // the scan saw are not the request's any more.
        let mut absolute = http::Request::get("http://Shop.Example/page")
            .body(())
            .unwrap();
        let plan = plan(absolute.clone());
        assert!(plan.scan.is_none());
        assert!(plan.retarget(&mut absolute));
        assert_eq!(absolute.headers()["host"], "shop.example");
    }

    #[test]
    fn rules_match_the_canonical_path_the_origin_receives() {
        for target in ["/api/m%65", "/api/./me", "/static/../api/me", "/api/%6De"] {
            let route = route(target, &[]);
            assert_eq!(rule_of(&route), Some(0), "{target}");
            let Route::Cache(plan) = route else {
                unreachable!()
            };
            assert_eq!(plan.target().map(PathAndQuery::as_str), Some("/api/me"));
            assert!(plan.changes_path());
        }
        let Route::Cache(plan) = route("/api/me", &[]) else {
            panic!("cached")
        };
        assert_eq!(plan.target(), None);
    }

    #[test]
    fn requests_the_key_cannot_describe_bypass() {
        let bypassed = |headers: &[(&str, &str)]| {
            matches!(
                route("/api/items", headers),
                Route::Bypass(ForwardReason::Bypass)
            )
        };
        assert!(!bypassed(&[
            ("connection", "keep-alive, close"),
            ("content-length", "0")
        ]));
        // A range is answered from a stored response (RFC 9110 §14).
        assert!(!bypassed(&[("range", "bytes=0-1")]));
        for headers in [
            &[("content-length", "5")][..],
            &[("transfer-encoding", "chunked")],
            &[("connection", "accept-language")],
            &[("connection", "keep-alive, x-secret")],
            &[("upgrade", "websocket")],
            &[("x-http-method-override", "DELETE")],
            &[("x-original-url", "/admin")],
        ] {
            assert!(bypassed(headers), "{headers:?}");
        }
    }

    #[test]
    fn an_unclear_identity_bypasses_a_per_user_rule() {
        assert!(matches!(
            route("/api/me", &[("x-api-key", "")]),
            Route::Bypass(_)
        ));
        let mut req = http::Request::get("/api/me");
        req = req.header("x-api-key", "a").header("x-api-key", "b");
        assert!(matches!(
            cache().route(&req.body(()).unwrap()),
            Route::Bypass(_)
        ));
        assert!(matches!(
            route("/api/me", &[("x-api-key", "a")]),
            Route::Cache(_)
        ));
        assert!(matches!(route("/api/me", &[]), Route::Cache(_)));
    }

    #[test]
    fn keys_longer_than_max_key_bytes_bypass() {
        let long = "v".repeat(DEFAULT_MAX_KEY_BYTES);
        assert!(matches!(
            route("/api/long", &[("x-long", "short")]),
            Route::Cache(_)
        ));
        assert!(matches!(
            route("/api/long", &[("x-long", &long)]),
            Route::Bypass(_)
        ));
        let target = format!("/api/items?{long}");
        assert!(matches!(route(&target, &[]), Route::Bypass(_)));
    }

    #[test]
    fn credentials_a_rule_keys_on_are_hashed() {
        let cache = Cache::builder()
            .rule(Rule::new("^/").vary_headers([header::COOKIE, header::AUTHORIZATION]))
            .build()
            .unwrap();
        let req = http::Request::get("/a")
            .header("cookie", "sessionid=SECRET")
            .header("authorization", "Bearer SECRET")
            .body(())
            .unwrap();
        let Route::Cache(plan) = cache.route(&req) else {
            panic!("cached")
        };
        assert!(!plan.key().as_str().contains("SECRET"), "{}", plan.key());
    }
}
