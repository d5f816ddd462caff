//! Conversions at the edge between actix-web's `http` 0.2 types and the
//! `http` 1.x types of the core. Both versions accept the same names,
//! values, methods and status codes, so a conversion only fails on input
//! neither would have built; such a header is skipped.

use crate::body::{CachedBody, FromActix};
use actix_web::body::MessageBody;
use actix_web::http::header as actix_header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use cachet_core::adapter::{Answer, ResponseBody};
use cachet_core::{CacheTags, UserId};
use std::cell::RefCell;

/// The request head in `http` 1.x types, for the steps past a hit: the
/// method, URI, version, headers and the [`UserId`]. `None` if the URI or
/// method does not convert (the request then goes on uncached).
pub(crate) fn request_head(req: &HttpRequest) -> Option<http::Request<()>> {
    let mut head = http::Request::new(());
    *head.method_mut() = http::Method::from_bytes(req.method().as_str().as_bytes()).ok()?;
    *head.uri_mut() = http::Uri::try_from(req.uri().to_string()).ok()?;
    *head.version_mut() = version(req.version());
    *head.headers_mut() = headers_from_actix(req.headers());
    if let Some(user) = req.extensions().get::<UserId>() {
        head.extensions_mut().insert(user.clone());
    }
    Some(head)
}

fn version(version: actix_web::http::Version) -> http::Version {
    use actix_web::http::Version as V;
    match version {
        V::HTTP_09 => http::Version::HTTP_09,
        V::HTTP_10 => http::Version::HTTP_10,
        V::HTTP_2 => http::Version::HTTP_2,
        V::HTTP_3 => http::Version::HTTP_3,
        _ => http::Version::HTTP_11,
    }
}

pub(crate) fn headers_from_actix(from: &actix_header::HeaderMap) -> http::HeaderMap {
    let mut headers = http::HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        let name = http::HeaderName::from_bytes(name.as_str().as_bytes());
        let value = http::HeaderValue::from_bytes(value.as_bytes());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    headers
}

pub(crate) fn headers_to_actix(from: &http::HeaderMap) -> actix_header::HeaderMap {
    let mut headers = actix_header::HeaderMap::with_capacity(from.keys_len());
    for (name, value) in header_pairs(from) {
        headers.append(name, value);
    }
    headers
}

/// `from`'s fields in actix-web's types, in order.
fn header_pairs(
    from: &http::HeaderMap,
) -> impl Iterator<Item = (actix_header::HeaderName, actix_header::HeaderValue)> + '_ {
    from.iter().filter_map(|(name, value)| {
        let name = actix_header::HeaderName::from_bytes(name.as_str().as_bytes());
        let value = actix_header::HeaderValue::from_bytes(value.as_bytes());
        name.ok().zip(value.ok())
    })
}

/// An entry's headers in actix-web's types: its prepared form. A list, not
/// a map: a hit appends them to the map of the response head actix-web
/// takes from its pool, which keeps its room from one response to the
/// next, where a map of the entry's own would be cloned into a new
/// allocation and the pooled one freed.
pub(crate) struct ActixHeaders(Vec<(actix_header::HeaderName, actix_header::HeaderValue)>);

impl ActixHeaders {
    /// Without `Content-Length`: actix-web writes the body's length (a
    /// `HEAD`'s from [`CachedBody`]) and skips the field of a sized body.
    ///
    /// [`CachedBody`]: crate::body::CachedBody
    fn of(headers: &http::HeaderMap) -> Self {
        Self(
            header_pairs(headers)
                .filter(|(name, _)| name != actix_header::CONTENT_LENGTH)
                .collect(),
        )
    }
}

pub(crate) fn status_from_actix(status: actix_web::http::StatusCode) -> http::StatusCode {
    http::StatusCode::from_u16(status.as_u16()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

pub(crate) fn status_to_actix(status: http::StatusCode) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// The origin's response for the core: status, headers, the [`CacheTags`]
/// a handler put in the response's extensions, and the body.
pub(crate) fn response_from_actix<B: MessageBody>(
    response: HttpResponse<B>,
) -> http::Response<FromActix<B>> {
    let status = status_from_actix(response.status());
    let headers = headers_from_actix(response.headers());
    let tags = response.extensions().get::<CacheTags>().cloned();
    let mut converted = http::Response::new(FromActix::new(response.into_body()));
    *converted.status_mut() = status;
    *converted.headers_mut() = headers;
    if let Some(tags) = tags {
        converted.extensions_mut().insert(tags);
    }
    converted
}

/// A response of the core as actix-web's, for a request of `method`.
pub(crate) fn response_to_actix<B: MessageBody>(
    response: http::Response<ResponseBody<FromActix<B>>>,
    method: &actix_web::http::Method,
) -> HttpResponse<CachedBody<B>> {
    let (parts, body) = response.into_parts();
    to_actix(parts.status, &parts.headers, body, method)
}

/// A response the cache made itself (a hit), as actix-web's, for a request
/// of `method`: built from the answer directly, without an `http` 1.x
/// response in between.
pub(crate) fn answer_to_actix<B: MessageBody>(
    mut answer: Answer,
    method: &actix_web::http::Method,
) -> HttpResponse<CachedBody<B>> {
    let Some(stored) = answer.prepared(ActixHeaders::of) else {
        let answer = answer.complete();
        let body = ResponseBody::full(answer.body);
        return to_actix(answer.status, &answer.headers, body, method);
    };
    let length = (method == actix_web::http::Method::HEAD)
        .then(|| answer.content_length())
        .flatten();
    let body = ResponseBody::full(std::mem::take(&mut answer.body));
    let body = CachedBody::new(body, method, || length);
    let mut converted = HttpResponse::with_body(status_to_actix(answer.status), body);
    let headers = converted.headers_mut();
    headers.reserve(stored.0.len() + STATUS_SLOTS);
    // The entry's headers were converted on its first hit: only the status
    // headers this hit sets are converted now.
    for (name, value) in &stored.0 {
        headers.append(name.clone(), value.clone());
    }
    for (slot, value) in answer.status_headers() {
        if let Some(value) = status_value(slot, &value) {
            headers.append(ACTIX_STATUS_HEADERS[slot].clone(), value);
        }
    }
    converted
}

/// How many [`STATUS_HEADERS`] there are (their `const` cannot be
/// measured at compile time: its names have a destructor).
///
/// [`STATUS_HEADERS`]: cachet_core::adapter::STATUS_HEADERS
const STATUS_SLOTS: usize = 3;

thread_local! {
    /// The status header values this thread converted last, by their
    /// position in `STATUS_HEADERS`. Hits in a row mostly carry the same
    /// `Age` and `Cache-Status` (an entry's change once a second), and a
    /// clone of a converted value counts a reference where converting
    /// copies it into a new allocation.
    static CONVERTED: RefCell<[Option<(http::HeaderValue, actix_header::HeaderValue)>; STATUS_SLOTS]> =
        const { RefCell::new([const { None }; STATUS_SLOTS]) };
}

/// `value` of the status header at `slot`, in actix-web's type.
fn status_value(slot: usize, value: &http::HeaderValue) -> Option<actix_header::HeaderValue> {
    CONVERTED.with(|converted| {
        let mut converted = converted.borrow_mut();
        let last = converted.get_mut(slot)?;
        if let Some((seen, actix)) = last.as_ref() {
            if seen == value {
                return Some(actix.clone());
            }
        }
        let actix = actix_header::HeaderValue::from_bytes(value.as_bytes()).ok()?;
        *last = Some((value.clone(), actix.clone()));
        Some(actix)
    })
}

/// [`STATUS_HEADERS`] in actix-web's type, in the same order (a `static`:
/// built once, not on every hit).
///
/// [`STATUS_HEADERS`]: cachet_core::adapter::STATUS_HEADERS
static ACTIX_STATUS_HEADERS: [actix_header::HeaderName; STATUS_SLOTS] = [
    actix_header::AGE,
    actix_header::HeaderName::from_static("cache-status"),
    actix_header::HeaderName::from_static("x-cache"),
];

fn to_actix<B: MessageBody>(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: ResponseBody<FromActix<B>>,
    method: &actix_web::http::Method,
) -> HttpResponse<CachedBody<B>> {
    let body = CachedBody::new(body, method, || {
        cachet_core::adapter::content_length(headers)
    });
    let mut converted = HttpResponse::with_body(status_to_actix(status), body);
    *converted.headers_mut() = headers_to_actix(headers);
    converted
}

#[cfg(test)]
mod tests {
    use super::*;
    use cachet_core::adapter::STATUS_HEADERS;

    #[test]
    fn every_status_header_has_its_actix_name_and_slot() {
        assert_eq!(STATUS_HEADERS.len(), STATUS_SLOTS);
        for (name, actix) in STATUS_HEADERS.iter().zip(&ACTIX_STATUS_HEADERS) {
            assert_eq!(name.as_str(), actix.as_str());
        }
    }
}
