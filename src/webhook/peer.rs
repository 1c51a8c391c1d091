//! Where a rejected request came from, for the logs.

use std::fmt;
use std::sync::Arc;

/// How the layer finds the address of the peer it rejects, for its logs
/// ([`peer_address`](crate::GenesysSignatureLayerBuilder::peer_address)). Off unless
/// configured: an address can be personal data.
#[derive(Clone)]
pub struct PeerAddress(Arc<FindPeer>);

type FindPeer = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

impl PeerAddress {
    /// The last address in `X-Forwarded-For`: the one the reverse proxy in front of
    /// the receiver saw and appended. Use it only behind a proxy that sets the header;
    /// anything before the last entry is the client's own claim.
    pub fn forwarded_for() -> Self {
        Self::from_fn(|parts| {
            let header = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()?;
            let last = header.to_str().ok()?.rsplit(',').next()?.trim();
            (!last.is_empty()).then(|| last.to_owned())
        })
    }

    /// The socket's address, from the `SocketAddr` that axum's `ConnectInfo` (serve
    /// with `into_make_service_with_connect_info::<SocketAddr>()`) or a hyper server
    /// put in the request's extensions.
    pub fn socket() -> Self {
        Self::from_fn(|parts| {
            crate::http::peer::socket_addr(&parts.extensions).map(|addr| addr.to_string())
        })
    }

    /// Whatever `find` returns for a request's head.
    pub fn from_fn(
        find: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(find))
    }

    pub(crate) fn of(&self, parts: &http::request::Parts) -> Option<String> {
        (self.0)(parts)
    }
}

impl fmt::Debug for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerAddress")
    }
}
