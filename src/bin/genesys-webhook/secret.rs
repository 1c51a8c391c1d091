//! Secrets on the command line: taken from the environment or a file rather than from
//! argv (where every local user sees them in `ps`), and never shown by `Debug`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::output::Failure;

/// A secret given as an option's value: `Debug` shows nothing of it.
#[derive(Clone)]
pub(crate) struct Hidden(Zeroizing<String>);

impl Hidden {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Hidden {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(Zeroizing::new(text.to_owned())))
    }
}

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The webhook secrets of `sign`, `verify` and `send`.
#[derive(Debug, clap::Args)]
pub(crate) struct WebhookSecrets {
    /// The webhook secret; repeat for several (rotation). Prefer the environment
    /// variable or --secret-file: a value typed here shows in `ps` and in shell history.
    #[arg(
        long = "secret",
        env = "GENESYS_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    secrets: Vec<Hidden>,
    /// Read the webhook secret from this file (one secret; a final newline is
    /// ignored); repeatable.
    #[arg(long = "secret-file", value_name = "PATH")]
    files: Vec<PathBuf>,
}

impl WebhookSecrets {
    /// Every secret given, files first; at least one.
    pub(crate) fn resolve(&self) -> Result<Vec<String>, Failure> {
        let mut all = Vec::new();
        for path in &self.files {
            all.push(read_secret_file(path)?);
        }
        all.extend(
            self.secrets
                .iter()
                .filter(|s| !s.expose().is_empty())
                .map(|s| s.expose().to_owned()),
        );
        if all.is_empty() {
            return Err(Failure::io(
                "no webhook secret: set GENESYS_WEBHOOK_SECRET, or pass --secret-file PATH",
            ));
        }
        Ok(all)
    }
}

/// A secret kept in a file: its content less one final newline.
pub(crate) fn read_secret_file(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
    let secret = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if secret.trim().is_empty() {
        return Err(Failure::io(format!("{} holds no secret", path.display())));
    }
    Ok(secret.to_owned())
}

/// One optional secret from an option (or its variable) or from a file.
pub(crate) fn one_secret(
    given: Option<&Hidden>,
    file: Option<&Path>,
) -> Result<Option<String>, Failure> {
    match (file, given) {
        (Some(path), _) => read_secret_file(path).map(Some),
        (None, Some(secret)) if !secret.expose().is_empty() => Ok(Some(secret.expose().to_owned())),
        _ => Ok(None),
    }
}

/// Writes `secret` to a new file readable by its owner only (mode 0600).
pub(crate) fn write_secret_file(path: &Path, secret: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Failure::io(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(format!("{secret}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::io(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let hidden: Hidden = "s3cr3t".parse().unwrap();
        assert_eq!(format!("{hidden:?}"), "[redacted]");
    }

    #[test]
    fn secret_files_lose_one_final_newline_and_are_written_0600() {
        let dir = std::env::temp_dir().join(format!("gw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        let _ = std::fs::remove_file(&path);
        write_secret_file(&path, "abc ").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), "abc ");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            write_secret_file(&path, "again").is_err(),
            "never overwrites"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
