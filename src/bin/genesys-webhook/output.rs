//! What a command prints: text for people on stdout (progress on stderr), or one JSON
//! document with `--json`; and its exit code.

use std::process::ExitCode;

use serde_json::Value;

/// A finished command: what to print, and whether the check passed.
pub(crate) struct Report {
    pub(crate) passed: bool,
    pub(crate) text: String,
    pub(crate) json: Value,
}

impl Report {
    pub(crate) fn passed(text: impl Into<String>, json: Value) -> Self {
        Self {
            passed: true,
            text: text.into(),
            json,
        }
    }

    pub(crate) fn failed(text: impl Into<String>, json: Value) -> Self {
        Self {
            passed: false,
            text: text.into(),
            json,
        }
    }

    pub(crate) fn print(self, json: bool) -> ExitCode {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.json).unwrap_or_default()
            );
        } else {
            println!("{}", self.text);
        }
        ExitCode::from(if self.passed { 0 } else { 1 })
    }
}

/// A command that could not do its work.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Usage or I/O error: exit 2.
    pub(crate) fn io(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Adds a sentence after the message.
    pub(crate) fn with_note(mut self, note: impl AsRef<str>) -> Self {
        self.message.push_str("; ");
        self.message.push_str(note.as_ref());
        self
    }

    /// The remote side said no: exit 1.
    pub(crate) fn check(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    pub(crate) fn report(self, json: bool) -> ExitCode {
        if json {
            let doc = serde_json::json!({ "error": self.message, "exitCode": self.code });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// Progress for people, on stderr; silent with `--json`.
pub(crate) fn progress(json: bool, message: impl AsRef<str>) {
    if !json {
        eprintln!("{}", message.as_ref());
    }
}

/// Text safe to print on a terminal: control characters escaped (a receiver cannot
/// clear the screen or retitle the terminal), at most `max` characters.
pub(crate) fn printable(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n >= max {
            out.push_str("… (cut)");
            break;
        }
        if c.is_control() && c != '\n' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_terminal_controls_and_caps_the_length() {
        let hostile = b"ok\x1b[2J\x1b]0;owned\x07\rdone";
        let shown = printable(hostile, 100);
        assert!(!shown.contains('\x1b') && !shown.contains('\x07') && !shown.contains('\r'));
        assert!(shown.contains("\\u{1b}[2J"), "{shown}");
        assert_eq!(
            printable(&[b'a'; 50], 10),
            format!("{}… (cut)", "a".repeat(10))
        );
    }
}
