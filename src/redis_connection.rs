//! The Redis connection both Redis-backed parts use (the replay store and the inbox):
//! one multiplexed connection that reconnects after a failure, with a deadline on
//! every command and every connection attempt.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;

/// Why a connection could not be set up.
pub(crate) enum ConnectError {
    /// Not a Redis URL. The URL is not kept: it may carry a password.
    InvalidUrl,
    /// The connection manager refused the settings.
    Redis(redis::RedisError),
}

/// A lazily connecting [`ConnectionManager`] for `url`: nothing is sent before the
/// first command. Must be called within a Tokio runtime.
pub(crate) fn connect_lazily(
    url: &str,
    timeout: Duration,
) -> Result<ConnectionManager, ConnectError> {
    let client = Client::open(url).map_err(|_| ConnectError::InvalidUrl)?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(timeout))
        .set_number_of_retries(1);
    ConnectionManager::new_lazy_with_config(client, config).map_err(ConnectError::Redis)
}
