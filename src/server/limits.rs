//! [`ServerLimits`]: how the server protects itself.

use std::time::Duration;

/// How the server protects itself ([`serve`](super::serve)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Deadline of each request, head and body (default 10 s: Genesys' own timeout).
    pub request_timeout: Duration,
    /// Connections served at once (default 768).
    pub max_connections: usize,
    /// How long requests in flight may finish after the shutdown signal (default 5 s).
    pub drain: Duration,
    /// Put the peer's `SocketAddr` in each request's extensions, for
    /// [`PeerAddress::socket`](crate::PeerAddress::socket) (an extension map allocated
    /// per request: only when asked; default off).
    pub peer_address: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_connections: 768,
            drain: Duration::from_secs(5),
            peer_address: false,
        }
    }
}

impl ServerLimits {
    /// The deadline of each request, head and body.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Connections served at once (at least 1).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// How long requests in flight may finish after the shutdown signal.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// Whether each request carries the peer's `SocketAddr` in its extensions.
    pub fn peer_address(mut self, on: bool) -> Self {
        self.peer_address = on;
        self
    }
}
