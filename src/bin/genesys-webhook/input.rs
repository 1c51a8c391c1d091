//! Bodies and headers from the command line.

use std::path::PathBuf;

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
