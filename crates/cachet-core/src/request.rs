//! The framework-free view of a request that rules and keys are computed from.
//!
//! Adapters implement [`RequestHead`] over their own request type, so the core
//! never copies a header map to look at a request. It is implemented here for
//! `http` 1.x requests; `cachet-actix` implements it for a view of actix-web's
//! `HttpRequest` (`ActixRequest`).
//! Header names are `http` 1.x [`HeaderName`]s, so the hot path never parses one.

use http::HeaderName;
use std::fmt;
use std::sync::Arc;

/// What the cache reads from a request: method, path, query, headers and the
/// identity that the application's authentication put on it.
pub trait RequestHead {
    /// The method, such as `"GET"`.
    fn method(&self) -> &str;
    /// The path, without the query.
    fn path(&self) -> &str;
    /// The raw query string, without the `?`.
    fn query(&self) -> Option<&str>;
    /// The first value of the header `name`.
    fn header(&self, name: &HeaderName) -> Option<&[u8]>;
    /// Calls `each` with every value of the header `name`, in order.
    fn header_values<'a>(&'a self, name: &HeaderName, each: &mut dyn FnMut(&'a [u8]));
    /// The identity set by the application, if any (see [`UserId`]).
    fn user_id(&self) -> Option<UserId>;
    /// Calls `each` with the name of every header the request has (once
    /// per name, in any order) and returns `true`; or returns `false`
    /// without calling it (the default) when the request cannot list them.
    /// The cache reads a request's names once, then answers its lookups of
    /// headers the request does not have without asking it.
    fn header_names(&self, each: &mut dyn FnMut(&str)) -> bool {
        let _ = each;
        false
    }
    /// The request target's authority (host and port) when the URI is in
    /// absolute form, as HTTP/2 requests carry it; `None` by default.
    fn authority(&self) -> Option<&[u8]> {
        None
    }
}

/// The identity of the user a request is made for, put in the request's
/// extensions by the application's authentication layer.
///
/// Rules with `vary_by_user = true` keep one entry per identity. The identity
/// is hashed with a keyed hash before it goes into a key; it is never stored.
///
/// ```
/// use cachet_core::UserId;
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(UserId::new("user-42"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserId(Arc<str>);

impl UserId {
    /// An identity from any string-like value (a user id, a session id, ...).
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The identity as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserId {
    // Identities are credentials of a sort: keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserId(..)")
    }
}

impl<B> RequestHead for http::Request<B> {
    fn method(&self) -> &str {
        self.method().as_str()
    }
    fn path(&self) -> &str {
        self.uri().path()
    }
    fn query(&self) -> Option<&str> {
        self.uri().query()
    }
    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.headers().get(name).map(http::HeaderValue::as_bytes)
    }
    fn header_values<'a>(&'a self, name: &HeaderName, each: &mut dyn FnMut(&'a [u8])) {
        for value in self.headers().get_all(name) {
            each(value.as_bytes());
        }
    }
    fn user_id(&self) -> Option<UserId> {
        self.extensions().get::<UserId>().cloned()
    }
    fn header_names(&self, each: &mut dyn FnMut(&str)) -> bool {
        self.headers().keys().for_each(|name| each(name.as_str()));
        true
    }
    fn authority(&self) -> Option<&[u8]> {
        self.uri()
            .authority()
            .map(|authority| authority.as_str().as_bytes())
    }
}

impl RequestHead for http::request::Parts {
    fn method(&self) -> &str {
        self.method.as_str()
    }
    fn path(&self) -> &str {
        self.uri.path()
    }
    fn query(&self) -> Option<&str> {
        self.uri.query()
    }
    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.headers.get(name).map(http::HeaderValue::as_bytes)
    }
    fn header_values<'a>(&'a self, name: &HeaderName, each: &mut dyn FnMut(&'a [u8])) {
        for value in self.headers.get_all(name) {
            each(value.as_bytes());
        }
    }
    fn user_id(&self) -> Option<UserId> {
        self.extensions.get::<UserId>().cloned()
    }
    fn header_names(&self, each: &mut dyn FnMut(&str)) -> bool {
        self.headers.keys().for_each(|name| each(name.as_str()));
        true
    }
    fn authority(&self) -> Option<&[u8]> {
        self.uri
            .authority()
            .map(|authority| authority.as_str().as_bytes())
    }
}
