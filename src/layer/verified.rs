use std::fmt;

use crate::signature::Scheme;

/// Request extension set on every request that passed verification: which scheme and
/// which secret the first signature verified with.
///
/// ```
/// use axum::Extension;
/// use genesys_webhook::{signature::Scheme, VerifiedSignature};
///
/// async fn handler(Extension(verified): Extension<VerifiedSignature>) {
///     if verified.secret_index() > 0 {
///         tracing::info!("sender still signs with an older secret");
///     }
///     let _is_genesys_cloud = verified.scheme() == Scheme::OpenMessaging;
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub(crate) scheme: Scheme,
    pub(crate) secret_index: usize,
}

impl VerifiedSignature {
    /// The scheme of the first signature header.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The position of the secret it verified with, counting from 0 in the order the
    /// secrets were given to the builder.
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

impl fmt::Debug for VerifiedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSignature")
            .field("scheme", &self.scheme)
            .field("secret_index", &self.secret_index)
            .finish_non_exhaustive()
    }
}
