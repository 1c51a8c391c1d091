//! The boxed types the crate's traits and bodies use.

/// The boxed error type that request bodies' errors convert into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, sendable future, as the [`ReplayStore`](crate::replay::ReplayStore) and
/// [`Inbox`](crate::inbox::Inbox) traits return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
