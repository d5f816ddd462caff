//! The opaque error of a store.

use std::fmt;

/// A failure of a cache store (for example a lost Redis connection).
///
/// cachet never fails a request because of it: the request goes to the origin,
/// the error is logged and counted.
#[derive(Debug)]
pub struct StoreError {
    inner: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// Wraps any error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            inner: error.into(),
        }
    }

    /// The wrapped error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync> {
        self.inner
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cache store error: {}", self.inner)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.inner)
    }
}
