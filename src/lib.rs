pub use cachet_core::*;
