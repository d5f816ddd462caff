//! Builders shared by the unit tests.

use http::HeaderMap;

/// A `GET /` request with `headers`.
pub(crate) fn request(headers: &[(&str, &str)]) -> http::Request<()> {
    let mut builder = http::Request::get("/");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("valid test headers")
}

/// A header map with `headers`, repeated names appended.
pub(crate) fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    request(headers).into_parts().0.headers
}
