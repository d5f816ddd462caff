//! The response cache: [`CacheLayer`], [`CacheService`] and their
//! [`ResponseFuture`].

mod future;
mod layer;
mod service;

pub use self::future::ResponseFuture;
pub use self::layer::CacheLayer;
pub use self::service::CacheService;
