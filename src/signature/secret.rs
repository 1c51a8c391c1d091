use std::fmt;

use zeroize::Zeroizing;

/// A shared signing secret, zeroized when dropped and redacted in [`Debug`](fmt::Debug).
///
/// The secret is used as its exact bytes: Genesys keys the HMAC with the UTF-8 bytes of
/// the secret string, so a stray space or newline pasted along with it changes every
/// signature. [`GenesysSignatureLayerBuilder::build`](crate::GenesysSignatureLayerBuilder::build)
/// warns about such secrets.
///
/// ```
/// use genesys_webhook::signature::Secret;
///
/// let secret = Secret::from("correct horse battery staple");
/// assert_eq!(format!("{secret:?}"), "Secret([redacted])");
/// ```
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps the given bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The secret's bytes, the HMAC key.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether the secret has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the secret is empty or made only of whitespace.
    pub fn is_blank(&self) -> bool {
        self.0.iter().all(u8::is_ascii_whitespace)
    }

    /// Whether the secret starts or ends with whitespace, a classic copy-paste error.
    pub fn has_surrounding_whitespace(&self) -> bool {
        matches!(self.0.first(), Some(b) if b.is_ascii_whitespace())
            || matches!(self.0.last(), Some(b) if b.is_ascii_whitespace())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value.into_bytes())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value.as_bytes())
    }
}

impl From<&String> for Secret {
    fn from(value: &String) -> Self {
        Self::new(value.as_bytes())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(value: Vec<u8>) -> Self {
        Self::new(value)
    }
}

impl From<&[u8]> for Secret {
    fn from(value: &[u8]) -> Self {
        Self::new(value)
    }
}

impl<const N: usize> From<&[u8; N]> for Secret {
    fn from(value: &[u8; N]) -> Self {
        Self::new(value.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::from("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{secret:#?}").contains("hunter2"));
    }

    #[test]
    fn blank_and_whitespace_detection() {
        assert!(Secret::from("").is_blank());
        assert!(Secret::from(" \t\r\n").is_blank());
        assert!(!Secret::from("a").is_blank());
        assert!(Secret::from("secret\n").has_surrounding_whitespace());
        assert!(Secret::from(" secret").has_surrounding_whitespace());
        assert!(!Secret::from("sec ret").has_surrounding_whitespace());
    }
}
