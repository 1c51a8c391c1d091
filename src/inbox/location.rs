use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::{InboxAdmin, InboxConfigError, InboxError, InboxLimits, MemoryInbox};

/// The file an inbox is stored in when nothing else is named: `genesys-inbox.db` in
/// the working directory.
pub const DEFAULT_SQLITE_FILE: &str = "genesys-inbox.db";

/// Where an inbox lives, named the way the example receiver's `GENESYS_INBOX` and the
/// `genesys-webhook inbox --inbox` option name it:
///
/// | text | location |
/// |---|---|
/// | (empty) | [`DEFAULT_SQLITE_FILE`] in the working directory |
/// | `sqlite:PATH` | an SQLite file at `PATH` |
/// | `redis://…` | a Redis stream |
/// | `memory` | process memory: lost with the process |
///
/// `Display` hides a password in a Redis URL, so a location can be logged.
///
/// ```
/// use genesys_webhook::inbox::InboxLocation;
///
/// let location: InboxLocation = "redis://:hunter2@cache:6379/0".parse()?;
/// assert_eq!(location.to_string(), "redis://:***@cache:6379/0");
/// assert_eq!("".parse::<InboxLocation>()?, InboxLocation::default());
/// # Ok::<_, genesys_webhook::inbox::InboxError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InboxLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A Redis URL.
    Redis(String),
    /// Process memory.
    Memory,
}

impl Default for InboxLocation {
    fn default() -> Self {
        Self::Sqlite(PathBuf::from(DEFAULT_SQLITE_FILE))
    }
}

impl FromStr for InboxLocation {
    type Err = InboxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        if text == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(InboxError::Config(InboxConfigError::MissingPath));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("redis://") || text.starts_with("rediss://") {
            return Ok(Self::Redis(text.to_owned()));
        }
        // Anything else with a scheme is a mistake (and is not echoed: a mistyped URL may
        // carry a password); a bare path names an SQLite file.
        if text.contains("://") || text.starts_with("redis") {
            return Err(InboxError::Config(InboxConfigError::UnknownLocation));
        }
        Ok(Self::Sqlite(PathBuf::from(text)))
    }
}

/// Hides the password of a URL's userinfo (`user:***@host`).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{scheme}://{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

impl fmt::Display for InboxLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Redis(url) => f.write_str(&redact(url)),
            Self::Memory => f.write_str("memory"),
        }
    }
}

impl fmt::Debug for InboxLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InboxLocation({self})")
    }
}

impl InboxLocation {
    /// Opens the inbox with `limits`. A Redis inbox must be opened within a Tokio
    /// runtime. The `Arc<dyn InboxAdmin>` coerces to the `Arc<dyn Inbox>` the endpoints
    /// take.
    ///
    /// # Errors
    ///
    /// [`InboxError::Config`] when the backend's Cargo feature (`sqlite`, `redis`) is
    /// not enabled or the URL is malformed; [`InboxError::Unavailable`] when the store
    /// cannot be opened.
    pub fn open(&self, limits: InboxLimits) -> Result<Arc<dyn InboxAdmin>, InboxError> {
        self.open_in(limits, None)
    }

    /// Opens a second inbox beside this one, for a step of its own (the Open Messaging
    /// receipts): in the same store under `name` (letters, digits, `-` and `_`). An
    /// SQLite file `inbox.db` gets a sibling `inbox.NAME.db`; a Redis inbox the key
    /// prefix `genesys-webhook:NAME:`; memory a new memory inbox.
    ///
    /// ```
    /// use genesys_webhook::inbox::{InboxLimits, InboxLocation};
    ///
    /// let receipts = InboxLocation::Memory.open_companion("receipts", InboxLimits::default())?;
    /// # Ok::<_, genesys_webhook::inbox::InboxError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`InboxError::Config`] for a name with other
    /// characters.
    pub fn open_companion(
        &self,
        name: &str,
        limits: InboxLimits,
    ) -> Result<Arc<dyn InboxAdmin>, InboxError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(InboxError::Config(InboxConfigError::InvalidCompanionName));
        }
        self.open_in(limits, Some(name))
    }

    /// The SQLite file of the companion `name` of the inbox at `path`.
    #[cfg(feature = "sqlite")]
    fn companion_file(path: &std::path::Path, name: &str) -> PathBuf {
        let stem = path.file_stem().map_or_else(
            || "genesys-inbox".into(),
            |s| s.to_string_lossy().into_owned(),
        );
        let file = match path.extension() {
            Some(ext) => format!("{stem}.{name}.{}", ext.to_string_lossy()),
            None => format!("{stem}.{name}"),
        };
        path.with_file_name(file)
    }

    #[cfg_attr(
        not(any(feature = "sqlite", feature = "redis")),
        allow(unused_variables)
    )]
    fn open_in(
        &self,
        limits: InboxLimits,
        companion: Option<&str>,
    ) -> Result<Arc<dyn InboxAdmin>, InboxError> {
        match self {
            Self::Memory => Ok(Arc::new(MemoryInbox::new().limits(limits))),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) => Ok(Arc::new(
                super::SqliteInbox::builder(match companion {
                    Some(name) => Self::companion_file(path, name),
                    None => path.clone(),
                })
                .limits(limits)
                .open()?,
            )),
            #[cfg(not(feature = "sqlite"))]
            Self::Sqlite(_) => Err(InboxError::Config(InboxConfigError::FeatureDisabled {
                feature: "sqlite",
            })),
            #[cfg(feature = "redis")]
            Self::Redis(url) => {
                let mut builder = super::RedisInbox::builder(url.as_str()).limits(limits);
                if let Some(name) = companion {
                    builder = builder.prefix(format!("genesys-webhook:{name}:"));
                }
                Ok(Arc::new(builder.open()?))
            }
            #[cfg(not(feature = "redis"))]
            Self::Redis(_) => Err(InboxError::Config(InboxConfigError::FeatureDisabled {
                feature: "redis",
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            "sqlite:/var/lib/inbox.db".parse::<InboxLocation>().unwrap(),
            InboxLocation::Sqlite("/var/lib/inbox.db".into())
        );
        assert_eq!(
            "sqlite:relative.db".parse::<InboxLocation>().unwrap(),
            InboxLocation::Sqlite("relative.db".into())
        );
        assert_eq!(
            " memory ".parse::<InboxLocation>().unwrap(),
            InboxLocation::Memory
        );
        assert!(matches!(
            "redis://127.0.0.1:6379/".parse::<InboxLocation>().unwrap(),
            InboxLocation::Redis(_)
        ));
        assert!("sqlite:".parse::<InboxLocation>().is_err());
        // A bare path is an SQLite file, as `GENESYS_INBOX=genesys-inbox.db` means.
        for bare in ["genesys-inbox.db", "./data/inbox.db", "/var/lib/inbox.db"] {
            assert_eq!(
                bare.parse::<InboxLocation>().unwrap(),
                InboxLocation::Sqlite(bare.into())
            );
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_companion_file_sits_beside_the_inbox() {
        let file = |p: &str| InboxLocation::companion_file(std::path::Path::new(p), "receipts");
        assert_eq!(
            file("/var/lib/inbox.db"),
            PathBuf::from("/var/lib/inbox.receipts.db")
        );
        assert_eq!(file("inbox"), PathBuf::from("inbox.receipts"));
        assert!(InboxLocation::Memory
            .open_companion("../x", InboxLimits::default())
            .is_err());
    }

    #[test]
    fn never_shows_a_password() {
        let location: InboxLocation = "redis://user:hunter2pw@h:1/".parse().unwrap();
        assert_eq!(location.to_string(), "redis://user:***@h:1/");
        assert!(!format!("{location:?}").contains("hunter2pw"));
        let error = "redis//:hunter2pw@h:1"
            .parse::<InboxLocation>()
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2pw"), "{error}");
        let error = "memcached://:hunter2pw@h:1"
            .parse::<InboxLocation>()
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2pw"), "{error}");
    }
}
