//! A lingering close: when the server is done with a connection whose client is still
//! sending (a body over the limit answered `413` before it was read, an unsigned upload
//! answered `401`), the socket is not closed at once.
//!
//! Closing a socket with unread bytes makes the kernel send a reset, and a client that
//! writes its whole body before it reads (most HTTP clients) then sees "connection reset"
//! or "broken pipe" instead of the answer that was already on its way. So the write
//! half is shut (the client sees the answer, then the end of the stream) and what the
//! client still sends is read and thrown away, for at most [`LINGER`] and
//! [`LINGER_BYTES`], before the socket is closed. Nothing read is kept.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The longest a closed connection is read and discarded.
pub(super) const LINGER: Duration = Duration::from_secs(1);

/// The most bytes a closed connection is read and discarded.
pub(super) const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// Shuts the write half of `stream`, reads and discards what the client still sends
/// (within [`LINGER`] and [`LINGER_BYTES`]), then closes it. `held` (the connection's
/// slot) is released only then, so lingering sockets count against the cap.
pub(super) async fn linger<H>(mut stream: TcpStream, held: H) {
    let _ = tokio::time::timeout(LINGER, async {
        let _ = stream.shutdown().await;
        let mut buf = [0u8; 16 * 1024];
        let mut read = 0;
        while read < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
    drop(stream);
    drop(held);
}

/// A connection's socket that, once dropped (hyper is done with it, or its upgrade
/// ended), lingers (see the [module](self)) on a task of its own.
pub(super) struct Lingering<H: Send + 'static> {
    stream: Option<TcpStream>,
    held: Option<H>,
}

impl<H: Send + 'static> Lingering<H> {
    pub(super) fn new(stream: TcpStream, held: H) -> Self {
        Self {
            stream: Some(stream),
            held: Some(held),
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        match self.stream.as_mut() {
            Some(stream) => Ok(Pin::new(stream)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl<H: Send + 'static> Drop for Lingering<H> {
    fn drop(&mut self) {
        let (Some(stream), held) = (self.stream.take(), self.held.take()) else {
            return;
        };
        // Outside a runtime (it is being shut down) the socket just closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, held));
        }
    }
}

impl<H: Send + Unpin + 'static> AsyncRead for Lingering<H> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl<H: Send + Unpin + 'static> AsyncWrite for Lingering<H> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}
