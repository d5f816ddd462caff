//! [`ActixRequest`]: the core's view of an actix-web request, read in place.

use actix_web::{HttpMessage, HttpRequest};
use cachet_core::adapter::RequestHead;
use cachet_core::UserId;
use http::HeaderName;

/// An actix-web request as the cache reads it ([`RequestHead`]): method,
/// path, query, headers and the [`UserId`] in the request's extensions,
/// read from the request itself without copying or converting a header.
///
/// The middleware uses it for routing and hits; handlers use it with the
/// core's helpers that take a [`RequestHead`], such as
/// [`Validators::not_modified`](cachet_core::Validators::not_modified)
/// (or [`not_modified`](crate::not_modified), which builds the 304).
#[derive(Debug, Clone, Copy)]
pub struct ActixRequest<'a>(pub &'a HttpRequest);

impl RequestHead for ActixRequest<'_> {
    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn path(&self) -> &str {
        self.0.path()
    }

    fn query(&self) -> Option<&str> {
        self.0.uri().query()
    }

    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        // Both `http` versions spell header names the same (lower case), and
        // actix's map looks a `&str` up without allocating for known names.
        self.0
            .headers()
            .get(name.as_str())
            .map(actix_web::http::header::HeaderValue::as_bytes)
    }

    fn header_values<'a>(&'a self, name: &HeaderName, each: &mut dyn FnMut(&'a [u8])) {
        for value in self.0.headers().get_all(name.as_str()) {
            each(value.as_bytes());
        }
    }

    fn user_id(&self) -> Option<UserId> {
        self.0.extensions().get::<UserId>().cloned()
    }

    fn header_names(&self, each: &mut dyn FnMut(&str)) -> bool {
        self.0.headers().keys().for_each(|name| each(name.as_str()));
        true
    }

    fn authority(&self) -> Option<&[u8]> {
        self.0
            .uri()
            .authority()
            .map(|authority| authority.as_str().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn reads_the_request_in_place() {
        let req = TestRequest::get()
            .uri("/api/items?b=2&a=1")
            .insert_header(("accept-language", "en"))
            .append_header(("x-many", "one"))
            .append_header(("x-many", "two"))
            .to_http_request();
        req.extensions_mut().insert(UserId::new("alice"));
        let head = ActixRequest(&req);
        assert_eq!(RequestHead::method(&head), "GET");
        assert_eq!(RequestHead::path(&head), "/api/items");
        assert_eq!(RequestHead::query(&head), Some("b=2&a=1"));
        assert_eq!(
            head.header(&http::header::ACCEPT_LANGUAGE),
            Some(&b"en"[..])
        );
        let mut many = Vec::new();
        head.header_values(&HeaderName::from_static("x-many"), &mut |v| many.push(v));
        assert_eq!(many, [b"one", b"two"]);
        assert_eq!(head.user_id(), Some(UserId::new("alice")));
        assert_eq!(head.header(&http::header::AUTHORIZATION), None);
        let mut names = Vec::new();
        assert!(head.header_names(&mut |name| names.push(name.to_owned())));
        names.sort();
        assert_eq!(names, ["accept-language", "x-many"], "each name once");
    }
}
