//! The core's header helpers for actix-web handlers: `Cache-Control` and
//! `Vary` ([`cache_headers`](cachet_core::cache_headers),
//! [`never_cache`](cachet_core::never_cache)), entity-tags and
//! `Last-Modified` ([`Validators`]), and cache tags.

use crate::convert::headers_to_actix;
use crate::request::ActixRequest;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use cachet_core::{CacheHeaders, CacheTags, Validators};

/// Cache headers on an actix-web [`HttpResponseBuilder`].
///
/// ```
/// use actix_web::HttpResponse;
/// use cachet_actix::ResponseBuilderExt;
/// use cachet_core::{CacheTags, Validators, Visibility, cache_headers};
/// use std::time::Duration;
///
/// let response = HttpResponse::Ok()
///     .cache_headers(cache_headers(Duration::from_secs(60), Visibility::Public).vary(["Accept-Language"]))
///     .validators(&Validators::new().strong_etag("article-42-v7"))
///     .cache_tags(CacheTags::new(["article:42"]))
///     .body("the article");
/// assert_eq!(response.headers().get("cache-control").unwrap(), "public, max-age=60");
/// assert_eq!(response.headers().get("vary").unwrap(), "accept-language");
/// assert_eq!(response.headers().get("etag").unwrap(), "\"article-42-v7\"");
/// ```
pub trait ResponseBuilderExt {
    /// Adds `Cache-Control` (and `Vary`) from [`cache_headers`](cachet_core::cache_headers).
    fn cache_headers(&mut self, headers: CacheHeaders) -> &mut Self;

    /// Keeps every cache from storing the response ([`never_cache`](cachet_core::never_cache)).
    fn never_cache(&mut self) -> &mut Self;

    /// Adds `ETag` and `Last-Modified` from `validators`.
    fn validators(&mut self, validators: &Validators) -> &mut Self;

    /// Tags the response, for invalidation by tag.
    fn cache_tags(&mut self, tags: CacheTags) -> &mut Self;
}

impl ResponseBuilderExt for HttpResponseBuilder {
    fn cache_headers(&mut self, headers: CacheHeaders) -> &mut Self {
        insert_all(self, &headers.into_header_map())
    }

    fn never_cache(&mut self) -> &mut Self {
        insert_all(self, &cachet_core::never_cache())
    }

    fn validators(&mut self, validators: &Validators) -> &mut Self {
        insert_all(self, &validators.headers())
    }

    fn cache_tags(&mut self, tags: CacheTags) -> &mut Self {
        self.extensions_mut().insert(tags);
        self
    }
}

fn insert_all<'b>(
    builder: &'b mut HttpResponseBuilder,
    headers: &http::HeaderMap,
) -> &'b mut HttpResponseBuilder {
    for (name, value) in headers_to_actix(headers) {
        builder.insert_header((name, value));
    }
    builder
}

/// A `304 Not Modified` when `req`'s preconditions (`If-None-Match`,
/// `If-Modified-Since`) show the client already has the representation
/// `validators` describe; `None` when the handler should answer in full.
///
/// ```
/// use actix_web::test::TestRequest;
/// use cachet_core::Validators;
///
/// let validators = Validators::new().strong_etag("v7");
/// let req = TestRequest::get().insert_header(("if-none-match", "\"v7\"")).to_http_request();
/// let response = cachet_actix::not_modified(&validators, &req).expect("the client's copy is current");
/// assert_eq!(response.status(), 304);
/// assert!(cachet_actix::not_modified(&validators, &TestRequest::get().to_http_request()).is_none());
/// ```
pub fn not_modified(validators: &Validators, req: &HttpRequest) -> Option<HttpResponse> {
    let headers = validators.not_modified(&ActixRequest(req))?;
    let mut response = HttpResponse::build(StatusCode::NOT_MODIFIED);
    insert_all(&mut response, &headers);
    Some(response.finish())
}
