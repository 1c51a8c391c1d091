use super::layer::{Shared, SourceAllowlistLayer};

crate::http::gate::gate_service! {
    /// The middleware made by [`SourceAllowlistLayer`].
    SourceAllowlist, SourceAllowlistLayer, Shared
}
