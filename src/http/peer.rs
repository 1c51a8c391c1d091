//! The connection's address, as servers put it in a request's extensions.

use std::net::SocketAddr;

/// The peer's `SocketAddr`: the one [`server::serve`](crate::server) or a hyper server
/// put in the extensions, or axum's `ConnectInfo` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`).
pub(crate) fn socket_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    if let Some(addr) = extensions.get::<SocketAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    None
}
