//! Bodies and headers from the command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::output::Failure;

/// Reads the body from `file`, or from standard input when it is `-` or absent.
pub(crate) async fn read_body(file: Option<&PathBuf>) -> Result<Vec<u8>, Failure> {
    match file {
        Some(path) if path.as_os_str() != "-" => tokio::fs::read(path)
            .await
            .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display()))),
        _ => {
            let mut body = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut body)
                .await
                .map_err(|e| Failure::io(format!("cannot read standard input: {e}")))?;
            Ok(body)
        }
    }
}

/// Splits `Name: value` at the first colon.
pub(crate) fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() && !name.contains(char::is_whitespace) => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("{text:?} is not a header: expected 'Name: value'")),
    }
}

/// The HTTP client of the commands that post to a receiver, also trusting the PEM
/// certificates in `cacert` (a receiver behind a private certificate authority).
pub(crate) async fn http_client(cacert: Option<&Path>) -> Result<reqwest::Client, Failure> {
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("genesys-webhook/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = cacert {
        let pem = tokio::fs::read(path)
            .await
            .map_err(|e| Failure::io(format!("--cacert {}: {e}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Failure::io(format!("--cacert {}: not PEM: {e}", path.display())))?;
        if certificates.is_empty() {
            return Err(Failure::io(format!(
                "--cacert {}: no PEM certificate in it",
                path.display()
            )));
        }
        for certificate in certificates {
            client = client.add_root_certificate(certificate);
        }
    }
    client
        .build()
        .map_err(|e| Failure::io(format!("HTTP client: {e}")))
}
