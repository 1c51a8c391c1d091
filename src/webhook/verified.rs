use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::signature::Scheme;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// The request body handed to the inner service once its signature verified: the
/// exact bytes that were signed, already in memory.
///
/// It is an [`http_body::Body`], so axum's `Json<T>`, `Bytes` and `String` extractors
/// work unchanged, and plain hyper handlers can take the bytes with
/// [`into_bytes`](Self::into_bytes). Trailers sent with a chunked body are kept.
#[derive(Debug, Default)]
pub struct VerifiedBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl VerifiedBody {
    pub(crate) fn new(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        Self {
            data: (!data.is_empty()).then_some(data),
            trailers,
        }
    }

    /// The body's bytes, without copying them.
    pub fn bytes(&self) -> Bytes {
        self.data.clone().unwrap_or_default()
    }

    /// Takes the body's bytes.
    pub fn into_bytes(self) -> Bytes {
        self.data.unwrap_or_default()
    }

    /// The number of bytes left in the body.
    pub fn len(&self) -> usize {
        self.data.as_ref().map_or(0, Bytes::len)
    }

    /// Whether no bytes are left in the body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The trailers that followed the body, if any.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }
}

impl Body for VerifiedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len() as u64)
    }
}

/// Collects the body's frames as they arrive, without copying them: a lone frame is
/// passed on as it is, and several are joined once, into a buffer of exactly their
/// total length, when the body has ended. Memory grows with the bytes that arrived,
/// whatever `Content-Length` announced, and the body ends up held once.
#[derive(Debug, Default)]
pub(crate) enum Buffer {
    #[default]
    Empty,
    One(Bytes),
    Many {
        frames: Vec<Bytes>,
        len: usize,
    },
}

impl Buffer {
    /// Appends `data`.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        match self {
            Self::Empty => *self = Self::One(data),
            Self::One(first) => {
                let first = std::mem::take(first);
                let len = first.len() + data.len();
                *self = Self::Many {
                    frames: vec![first, data],
                    len,
                };
            }
            Self::Many { frames, len } => {
                *len += data.len();
                frames.push(data);
            }
        }
    }

    pub(crate) fn freeze(self) -> Bytes {
        match self {
            Self::Empty => Bytes::new(),
            Self::One(data) => data,
            Self::Many { frames, len } => {
                let mut all = BytesMut::with_capacity(len);
                for frame in frames {
                    all.extend_from_slice(&frame);
                }
                all.freeze()
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_frame_is_kept_without_copying() {
        let data = Bytes::from_static(b"hello world");
        let mut buffer = Buffer::default();
        buffer.push(data.clone());
        let out = buffer.freeze();
        assert_eq!(out.as_ptr(), data.as_ptr());
    }

    #[test]
    fn frames_are_kept_as_they_arrive_and_joined_once_at_the_end() {
        let mut buffer = Buffer::default();
        let frame = Bytes::from(vec![7u8; 16 * 1024]);
        for _ in 0..64 {
            buffer.push(frame.clone());
        }
        let Buffer::Many { frames, len } = &buffer else {
            panic!("frames are kept")
        };
        assert_eq!((frames.len(), *len), (64, 1024 * 1024));
        let body = buffer.freeze();
        assert_eq!(body.len(), 1024 * 1024);
    }

    #[test]
    fn many_frames_are_joined_in_order() {
        let mut buffer = Buffer::default();
        for part in ["a", "", "bc", "def"] {
            buffer.push(Bytes::from(part));
        }
        assert_eq!(buffer.freeze(), "abcdef");
    }

    #[test]
    fn verified_body_yields_data_then_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-t", http::HeaderValue::from_static("1"));
        let mut body = VerifiedBody::new(Bytes::from_static(b"abc"), Some(trailers));
        assert_eq!(body.size_hint().exact(), Some(3));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) else {
            panic!("expected data")
        };
        assert_eq!(frame.into_data().unwrap(), "abc");
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) else {
            panic!("expected trailers")
        };
        assert!(frame.is_trailers());
        assert!(body.is_end_stream());
    }
}
