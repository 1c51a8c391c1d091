//! The inbox's tables, how a connection is set up, and which file it holds open.

use std::path::Path;

use rusqlite::Connection;

use crate::inbox::InboxError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbox_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    body        BLOB    NOT NULL,
    received_at INTEGER NOT NULL,           -- Unix milliseconds
    attempts    INTEGER NOT NULL DEFAULT 0, -- deliveries so far
    state       INTEGER NOT NULL DEFAULT 0, -- 0 pending, 1 in flight, 2 dead
    due_at      INTEGER NOT NULL,           -- pending: not before; in flight: lease end
    last_error  TEXT,
    content_type TEXT                       -- as received; added after the first release
);
CREATE INDEX IF NOT EXISTS inbox_events_due ON inbox_events (state, due_at);
-- Written to by readiness probes after a failed write.
CREATE TABLE IF NOT EXISTS inbox_probe (id INTEGER PRIMARY KEY, data BLOB);
-- Running totals, kept by triggers so that every process sees the same bounds.
CREATE TABLE IF NOT EXISTS inbox_totals (
    id     INTEGER PRIMARY KEY CHECK (id = 0),
    events INTEGER NOT NULL,
    bytes  INTEGER NOT NULL
);
INSERT OR IGNORE INTO inbox_totals (id, events, bytes) VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS inbox_events_counted AFTER INSERT ON inbox_events BEGIN
    UPDATE inbox_totals SET events = events + 1, bytes = bytes + length(NEW.body) WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS inbox_events_uncounted AFTER DELETE ON inbox_events BEGIN
    UPDATE inbox_totals SET events = events - 1, bytes = bytes - length(OLD.body) WHERE id = 0;
END;
";

pub(super) fn setup(connection: &Connection) -> rusqlite::Result<()> {
    // WAL with FULL: a commit is fsynced before it returns, so an acknowledged event
    // survives a power cut; NORMAL would only survive a process crash.
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode is {mode}, not wal"
        )));
    }
    connection.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = OFF;",
    )?;
    connection.execute_batch(SCHEMA)?;
    add_content_type(connection)
}

/// A file made before `content_type` existed gets the column (`NULL` for the events it
/// holds). Two processes opening it at once may both try: the second finds it there.
fn add_content_type(connection: &Connection) -> rusqlite::Result<()> {
    let has = |connection: &Connection| -> rusqlite::Result<bool> {
        let mut statement = connection.prepare("PRAGMA table_info(inbox_events)")?;
        let names = statement.query_map([], |row| row.get::<_, String>(1))?;
        for name in names {
            if name? == "content_type" {
                return Ok(true);
            }
        }
        Ok(false)
    };
    if has(connection)? {
        return Ok(());
    }
    match connection.execute_batch("ALTER TABLE inbox_events ADD COLUMN content_type TEXT") {
        Err(_) if has(connection)? => Ok(()),
        result => result,
    }
}

/// Which file a path names (device and inode), to notice it being removed or replaced
/// while the inbox holds it open. `None` where the platform does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileIdentity(u64, u64);

impl FileIdentity {
    #[cfg(unix)]
    pub(super) fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| Self(m.dev(), m.ino()))
    }

    #[cfg(not(unix))]
    pub(super) fn of(_path: &Path) -> Option<Self> {
        None
    }
}

/// The error of a file that cannot be opened, naming a missing directory as such.
pub(super) fn open_error(path: &Path, error: rusqlite::Error) -> InboxError {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) if !parent.is_dir() => {
            InboxError::unavailable(format!("the directory {} does not exist", parent.display()))
        }
        _ => InboxError::unavailable(error),
    }
}
