//! Invalidation after unsafe requests (RFC 9111 §4.4): [`InvalidationLayer`],
//! [`InvalidationService`] and their [`InvalidationFuture`].

mod future;
mod layer;
mod service;

pub use self::future::InvalidationFuture;
pub use self::layer::InvalidationLayer;
pub use self::service::InvalidationService;
