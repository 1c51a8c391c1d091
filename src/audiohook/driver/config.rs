//! [`DriverConfig`]: the session's settings and the connection's.

use std::time::Duration;

use crate::audiohook::protocol::MediaFormat;
use crate::audiohook::session::SessionConfig;

/// Settings of the driver: the session's ([`SessionConfig`]: media, languages, idle
/// and close timeouts) and the connection's.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub(super) queue: usize,
    pub(super) session: SessionConfig,
    pub(super) read_buffer: usize,
    pub(super) max_message: usize,
    pub(super) write_timeout: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            queue: 64,
            session: SessionConfig::default(),
            read_buffer: 4096,
            max_message: 256 * 1024,
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl DriverConfig {
    /// Events the handler may fall behind by before the session is disconnected
    /// (default 64: 12.8 s of 200 ms frames).
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events.max(1);
        self
    }

    /// The session's settings: media, languages and timers.
    pub fn session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// How long `closed` waits for [`AudioHookHandler::close`](super::AudioHookHandler::close), and a `disconnect`
    /// waits for Genesys' `close` before the WebSocket is closed: the session's
    /// [`SessionConfig::close_timeout`] (default 5 s; at most 1 s after a client error).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.session = self.session.close_timeout(timeout);
        self
    }

    /// Formats the default selection accepts: the session's [`SessionConfig::formats`].
    pub fn formats(mut self, formats: &[MediaFormat]) -> Self {
        self.session = self.session.formats(formats);
        self
    }

    /// Languages listed in `opened` when `open` asks for them: the session's
    /// [`SessionConfig::supported_languages`].
    pub fn supported_languages(mut self, languages: Vec<String>) -> Self {
        self.session = self.session.supported_languages(languages);
        self
    }

    /// The WebSocket read buffer (default 4 KiB; it grows for larger frames). The main
    /// share of a session's memory.
    pub fn read_buffer(mut self, bytes: usize) -> Self {
        self.read_buffer = bytes.max(256);
        self
    }

    /// The largest WebSocket message accepted (default 256 KiB).
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// A session that receives nothing for this long is closed: the session's
    /// [`SessionConfig::idle_timeout`] (default 60 s; Genesys pings every few seconds,
    /// so silence means the peer is gone).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.session = self.session.idle_timeout(timeout);
        self
    }

    /// How long one write to the socket may wait for the peer to read (default 10 s):
    /// a peer that stops reading is disconnected, its socket buffers freed, instead of
    /// holding the session forever.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout.max(Duration::from_millis(1));
        self
    }
}
