use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{oneshot, Notify};

use super::{
    from_unix_millis, millis, unix_millis, BoxFuture, Clock, Delivery, EventId, EventState, Inbox,
    InboxError, InboxStats, ListFilter, RetryOutcome, StoredEvent, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BYTES, DEFAULT_MAX_EVENTS,
};

/// Default for [`SqliteInboxBuilder::max_batch`]: operations committed together.
const DEFAULT_MAX_BATCH: usize = 1024;

const PENDING: i64 = 0;
const IN_FLIGHT: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbox_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    body        BLOB    NOT NULL,
    received_at INTEGER NOT NULL,           -- Unix milliseconds
    attempts    INTEGER NOT NULL DEFAULT 0, -- deliveries so far
    state       INTEGER NOT NULL DEFAULT 0, -- 0 pending, 1 in flight, 2 dead
    due_at      INTEGER NOT NULL,           -- pending: not before; in flight: lease end
    last_error  TEXT
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

/// An [`Inbox`] in an SQLite file: the embedded, durable default.
///
/// The database runs in WAL mode with `synchronous=FULL`, so an acknowledged append
/// survives a crash of the process and a power cut after the commit. One writer
/// thread owns the connection and does **group commit**: every operation waiting
/// when a commit starts goes into the next transaction, so many concurrent appends
/// cost one fsync, and each caller is answered only after that commit. Use
/// [`commits`](Self::commits) to see how many commits were made.
///
/// Several processes may open one file (the `genesys-webhook inbox` command does
/// while a receiver runs); SQLite serialises their writes.
///
/// ```no_run
/// use genesys_webhook::inbox::SqliteInbox;
///
/// let inbox = SqliteInbox::builder("genesys-inbox.db")
///     .max_attempts(10)
///     .max_events(100_000)
///     .open()?;
/// # Ok::<_, genesys_webhook::inbox::InboxError>(())
/// ```
#[derive(Clone)]
pub struct SqliteInbox {
    shared: Arc<Shared>,
}

struct Shared {
    jobs: mpsc::Sender<Job>,
    commits: AtomicU64,
    /// Whether the last batch that tried to write could (a failed write, or a file
    /// removed under the inbox, makes it false until a write succeeds again).
    writable: Arc<AtomicBool>,
    appended: Notify,
    path: PathBuf,
    settings: Settings,
}

#[derive(Debug, Clone)]
struct Settings {
    max_attempts: u32,
    max_events: u64,
    max_bytes: u64,
    max_batch: usize,
    clock: Clock,
}

impl Settings {
    fn now(&self) -> i64 {
        unix_millis(self.clock.now())
    }
}

/// Work for the writer thread: runs inside the batch's transaction and returns what
/// to do once the transaction committed (or failed to). Given `Err(reason)` instead of
/// the connection, it runs nothing: the batch cannot be written.
type Job = Box<dyn FnOnce(Result<(&Connection, &Settings), &str>) -> Completion + Send>;
type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

/// Configures a [`SqliteInbox`]; made by [`SqliteInbox::builder`].
#[derive(Debug, Clone)]
pub struct SqliteInboxBuilder {
    path: PathBuf,
    settings: Settings,
}

impl SqliteInboxBuilder {
    /// Attempts before an event moves to the dead letters (default 10, at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.settings.max_attempts = attempts.max(1);
        self
    }

    /// The most events stored at once, dead ones included (default 100,000). When it
    /// is reached, [`append`](Inbox::append) fails with [`InboxError::Full`].
    pub fn max_events(mut self, events: u64) -> Self {
        self.settings.max_events = events;
        self
    }

    /// The most body bytes stored at once, dead ones included (default 1 GiB).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.settings.max_bytes = bytes;
        self
    }

    /// The most operations committed in one transaction (default 1024). `1` commits
    /// every operation on its own: one fsync per event, for comparison only.
    pub fn max_batch(mut self, operations: usize) -> Self {
        self.settings.max_batch = operations.max(1);
        self
    }

    /// Reads the time from `clock` (default: the system clock), for leases, retry
    /// delays and timestamps.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.settings.clock = clock;
        self
    }

    /// Opens (creating if needed) the database and starts its writer thread.
    ///
    /// # Errors
    ///
    /// [`InboxError::Unavailable`] when the file cannot be opened or set up.
    pub fn open(self) -> Result<SqliteInbox, InboxError> {
        let connection =
            Connection::open(&self.path).map_err(|error| open_error(&self.path, error))?;
        setup(&connection).map_err(InboxError::unavailable)?;
        let file = FileIdentity::of(&self.path);
        let (jobs, queue) = mpsc::channel::<Job>();
        let writable = Arc::new(AtomicBool::new(true));
        let shared = Arc::new(Shared {
            jobs,
            commits: AtomicU64::new(0),
            writable: Arc::clone(&writable),
            appended: Notify::new(),
            path: self.path.clone(),
            settings: self.settings.clone(),
        });
        let weak = Arc::downgrade(&shared);
        let settings = self.settings;
        let path = self.path;
        std::thread::Builder::new()
            .name("genesys-inbox-writer".to_owned())
            .spawn(move || {
                let still_ours = || match &file {
                    Some(file) if FileIdentity::of(&path).as_ref() != Some(file) => Err(format!(
                        "the inbox file {} was removed or replaced while open; restart to open it again",
                        path.display()
                    )),
                    _ => Ok(()),
                };
                write_loop(&connection, &settings, &queue, still_ours, |outcome| {
                    if let Some(shared) = weak.upgrade() {
                        match outcome {
                            Batch::Committed { wrote: false } => {}
                            Batch::Committed { wrote: true } => {
                                shared.commits.fetch_add(1, Ordering::Relaxed);
                                writable.store(true, Ordering::Relaxed);
                            }
                            Batch::Failed => writable.store(false, Ordering::Relaxed),
                        }
                    }
                })
            })
            .map_err(InboxError::unavailable)?;
        Ok(SqliteInbox { shared })
    }
}

fn setup(connection: &Connection) -> rusqlite::Result<()> {
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
    connection.execute_batch(SCHEMA)
}

/// What became of one batch.
enum Batch {
    /// Committed; whether it wrote anything.
    Committed { wrote: bool },
    /// Nothing of it was stored.
    Failed,
}

/// The writer thread: takes every job waiting, runs them in one transaction, commits
/// once, then answers each. Ends when every handle is dropped. `still_ours` says
/// whether the path still names the open file: a batch written into a file that was
/// removed would be lost at the next restart, so it fails instead.
fn write_loop(
    connection: &Connection,
    settings: &Settings,
    queue: &mpsc::Receiver<Job>,
    still_ours: impl Fn() -> Result<(), String>,
    mut outcome: impl FnMut(Batch),
) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < settings.max_batch {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let fail_all = |jobs: Vec<Job>, message: &str| {
            for job in jobs {
                job(Err(message))(Some(message));
            }
        };
        if let Err(message) = still_ours() {
            tracing::error!(reason = %message, "inbox: nothing of this batch was stored");
            outcome(Batch::Failed);
            fail_all(jobs, &message);
            continue;
        }
        let before = connection.total_changes();
        if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
            let message = match error.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    "the inbox database is locked by another process (waited 5 s for it)".to_owned()
                }
                _ => format!("could not begin a transaction: {error}"),
            };
            tracing::error!(reason = %message, "inbox: nothing of this batch was stored");
            outcome(Batch::Failed);
            fail_all(jobs, &message);
            continue;
        }
        let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
        let mut jobs = jobs.into_iter();
        for job in jobs.by_ref() {
            completions.push(job(Ok((connection, settings))));
            // SQLite rolls a whole transaction back by itself on some errors (FULL,
            // IOERR, NOMEM): the jobs after that would run in autocommit, each on its
            // own and unbatched, while the ones before were undone.
            if connection.is_autocommit() {
                break;
            }
        }
        let rolled_back = connection.is_autocommit();
        let committed = if rolled_back {
            Err("the batch's transaction was rolled back by SQLite (disk full, I/O error or out of memory)".to_owned())
        } else {
            connection
                .execute_batch("COMMIT")
                .map_err(|error| format!("commit failed: {error}"))
        };
        match committed {
            Ok(()) => {
                outcome(Batch::Committed {
                    wrote: connection.total_changes() != before,
                });
                for completion in completions {
                    completion(None);
                }
            }
            Err(message) => {
                tracing::error!(reason = %message, "inbox: nothing of this batch was stored");
                if !connection.is_autocommit() {
                    let _ = connection.execute_batch("ROLLBACK");
                }
                outcome(Batch::Failed);
                for completion in completions {
                    completion(Some(&message));
                }
                fail_all(jobs.collect(), &message);
            }
        }
    }
}

/// Which file a path names (device and inode), to notice it being removed or replaced
/// while the inbox holds it open. `None` where the platform does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileIdentity(u64, u64);

impl FileIdentity {
    #[cfg(unix)]
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| Self(m.dev(), m.ino()))
    }

    #[cfg(not(unix))]
    fn of(_path: &Path) -> Option<Self> {
        None
    }
}

/// The error of a file that cannot be opened, naming a missing directory as such.
fn open_error(path: &Path, error: rusqlite::Error) -> InboxError {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) if !parent.is_dir() => {
            InboxError::unavailable(format!("the directory {} does not exist", parent.display()))
        }
        _ => InboxError::unavailable(error),
    }
}

/// Runs `work` in a savepoint and rolls back to it on an SQLite error, so that a job
/// of several statements that fails leaves the batch's other work intact. A job of
/// one statement needs none: SQLite undoes a failed statement by itself.
fn in_savepoint<R>(
    connection: &Connection,
    work: impl FnOnce() -> Result<R, InboxError>,
) -> Result<R, InboxError> {
    cached(connection, "SAVEPOINT job").map_err(sql)?;
    let result = work();
    if matches!(result, Err(InboxError::Unavailable(_))) {
        let _ = cached(connection, "ROLLBACK TO job");
    }
    let _ = cached(connection, "RELEASE job");
    result
}

/// Runs a statement without parameters through the statement cache.
fn cached(connection: &Connection, statement: &str) -> rusqlite::Result<usize> {
    connection.prepare_cached(statement)?.execute([])
}

fn sql(error: rusqlite::Error) -> InboxError {
    InboxError::unavailable(error)
}

impl SqliteInbox {
    /// Opens `path` with the default settings.
    ///
    /// # Errors
    ///
    /// [`InboxError::Unavailable`] when the file cannot be opened or set up.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, InboxError> {
        Self::builder(path).open()
    }

    /// Starts configuring an inbox stored at `path`.
    pub fn builder(path: impl AsRef<Path>) -> SqliteInboxBuilder {
        SqliteInboxBuilder {
            path: path.as_ref().to_owned(),
            settings: Settings {
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                max_events: DEFAULT_MAX_EVENTS,
                max_bytes: DEFAULT_MAX_BYTES,
                max_batch: DEFAULT_MAX_BATCH,
                clock: Clock::system(),
            },
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// How many transactions that wrote something this handle has committed (each one
    /// fsync), since it was opened.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// Sends `work`, a job of several statements, to the writer thread and waits until
    /// its transaction committed.
    fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Settings) -> Result<R, InboxError> + Send + 'static,
    ) -> BoxFuture<'static, Result<R, InboxError>> {
        self.submit(true, work)
    }

    /// Like [`run`](Self::run), for work whose only write is one statement.
    fn run_one<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Settings) -> Result<R, InboxError> + Send + 'static,
    ) -> BoxFuture<'static, Result<R, InboxError>> {
        self.submit(false, work)
    }

    fn submit<R: Send + 'static>(
        &self,
        savepoint: bool,
        work: impl FnOnce(&Connection, &Settings) -> Result<R, InboxError> + Send + 'static,
    ) -> BoxFuture<'static, Result<R, InboxError>> {
        let (reply, answer) = oneshot::channel();
        let writable = Arc::clone(&self.shared.writable);
        let job: Job = Box::new(move |writer| {
            let result = match writer {
                Err(reason) => Err(InboxError::unavailable(reason.to_owned())),
                Ok((connection, settings)) if savepoint => {
                    in_savepoint(connection, || work(connection, settings))
                }
                Ok((connection, settings)) => work(connection, settings),
            };
            if matches!(result, Err(InboxError::Unavailable(_))) {
                // A statement failed (a full disk fails the insert alone, and the batch
                // may still commit): not ready until a write succeeds again.
                writable.store(false, Ordering::Relaxed);
            }
            Box::new(move |commit_error: Option<&str>| {
                let result = match commit_error {
                    Some(message) if result.is_ok() => {
                        Err(InboxError::unavailable(message.to_owned()))
                    }
                    _ => result,
                };
                let _ = reply.send(result);
            })
        });
        let sent = self.shared.jobs.send(job);
        Box::pin(async move {
            if sent.is_err() {
                return Err(InboxError::unavailable("the inbox writer has stopped"));
            }
            answer
                .await
                .map_err(|_| InboxError::unavailable("the inbox writer has stopped"))?
        })
    }
}

fn row_id(id: &EventId) -> Option<i64> {
    id.as_str().parse().ok()
}

fn state_of(code: i64) -> EventState {
    match code {
        PENDING => EventState::Pending,
        IN_FLIGHT => EventState::InFlight,
        _ => EventState::Dead,
    }
}

fn stored_event(row: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<StoredEvent> {
    let id: i64 = row.get(0)?;
    let body: Vec<u8> = row.get(1)?;
    let state: i64 = row.get(4)?;
    let due_at: i64 = row.get(5)?;
    let state = match state_of(state) {
        // A lapsed lease is pending: the next claim delivers it again.
        EventState::InFlight if due_at <= now => EventState::Pending,
        state => state,
    };
    Ok(StoredEvent {
        id: EventId::new(id.to_string()),
        body: Bytes::from(body),
        received_at: from_unix_millis(row.get(2)?),
        attempts: u32::try_from(row.get::<_, i64>(3)?).unwrap_or(u32::MAX),
        state,
        last_error: row.get(6)?,
    })
}

const SELECT_EVENT: &str =
    "SELECT id, body, received_at, attempts, state, due_at, last_error FROM inbox_events";

fn append(
    connection: &Connection,
    settings: &Settings,
    body: &[u8],
) -> Result<EventId, InboxError> {
    let now = settings.now();
    // One statement: the bound check and the insert (its trigger updates the totals).
    let inserted = connection
        .prepare_cached(
            "INSERT INTO inbox_events (body, received_at, due_at, state)
             SELECT ?1, ?2, ?2, 0 FROM inbox_totals
             WHERE id = 0 AND events < ?3 AND bytes + length(?1) <= ?4",
        )
        .and_then(|mut s| {
            s.execute(params![
                body,
                now,
                i64::try_from(settings.max_events).unwrap_or(i64::MAX),
                i64::try_from(settings.max_bytes).unwrap_or(i64::MAX)
            ])
        })
        .map_err(sql)?;
    if inserted == 0 {
        return Err(InboxError::Full);
    }
    Ok(EventId::new(connection.last_insert_rowid().to_string()))
}

fn claim(
    connection: &Connection,
    settings: &Settings,
    max: usize,
    lease: Duration,
) -> Result<Vec<Delivery>, InboxError> {
    let now = settings.now();
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let lease_end = now.saturating_add(millis(lease));
    // Lapsed leases first (a crashed consumer's work), one by one: some may have used
    // their last attempt.
    let mut candidates: Vec<(i64, Vec<u8>, i64, i64)> = Vec::new();
    {
        let mut statement = connection
            .prepare_cached(
                "SELECT id, body, received_at, attempts FROM inbox_events
                 WHERE state = 1 AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
            )
            .map_err(sql)?;
        let rows = statement
            .query_map(params![now, limit], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(sql)?;
        for row in rows {
            candidates.push(row.map_err(sql)?);
        }
    }
    let mut deliveries = Vec::with_capacity(max.min(1024));
    for (id, body, received_at, attempts) in candidates {
        if attempts >= i64::from(settings.max_attempts) {
            connection
                .prepare_cached(
                    "UPDATE inbox_events SET state = 2,
                     last_error = coalesce(last_error, 'lease ended without an answer')
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id]))
                .map_err(sql)?;
            tracing::warn!(
                event_id = id,
                attempts,
                "inbox: event moved to the dead letters"
            );
            continue;
        }
        let attempt = attempts + 1;
        connection
            .prepare_cached(
                "UPDATE inbox_events SET state = 1, attempts = ?2, due_at = ?3 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, attempt, lease_end]))
            .map_err(sql)?;
        deliveries.push(Delivery::new(
            EventId::new(id.to_string()),
            Bytes::from(body),
            from_unix_millis(received_at),
            u32::try_from(attempt).unwrap_or(u32::MAX),
            attempt.to_string(),
        ));
    }
    // Then pending events in order, in one statement: a pending event always has an
    // attempt left (`retry` dead-letters the one that used its last).
    let remaining = limit - deliveries.len() as i64;
    if remaining > 0 {
        let mut statement = connection
            .prepare_cached(
                "UPDATE inbox_events SET state = 1, attempts = attempts + 1, due_at = ?1
                 WHERE id IN (SELECT id FROM inbox_events
                              WHERE state = 0 AND due_at <= ?2 ORDER BY due_at, id LIMIT ?3)
                 RETURNING id, body, received_at, attempts",
            )
            .map_err(sql)?;
        let rows = statement
            .query_map(params![lease_end, now, remaining], |row| {
                let (id, attempt): (i64, i64) = (row.get(0)?, row.get(3)?);
                Ok((
                    id,
                    Delivery::new(
                        EventId::new(id.to_string()),
                        Bytes::from(row.get::<_, Vec<u8>>(1)?),
                        from_unix_millis(row.get(2)?),
                        u32::try_from(attempt).unwrap_or(u32::MAX),
                        attempt.to_string(),
                    ),
                ))
            })
            .map_err(sql)?;
        let mut pending = rows.collect::<Result<Vec<_>, _>>().map_err(sql)?;
        // RETURNING gives no order: the oldest first, as they were due.
        pending.sort_unstable_by_key(|(id, _)| *id);
        deliveries.extend(pending.into_iter().map(|(_, delivery)| delivery));
    }
    Ok(deliveries)
}

fn retry(
    connection: &Connection,
    settings: &Settings,
    id: i64,
    attempt: i64,
    delay: Duration,
    reason: &str,
) -> Result<RetryOutcome, InboxError> {
    let due = settings.now().saturating_add(millis(delay));
    let changed = connection
        .prepare_cached(
            "UPDATE inbox_events
             SET state = CASE WHEN attempts >= ?3 THEN 2 ELSE 0 END, due_at = ?4, last_error = ?5
             WHERE id = ?1 AND state = 1 AND attempts = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                attempt,
                i64::from(settings.max_attempts),
                due,
                reason
            ])
        })
        .map_err(sql)?;
    if changed == 0 {
        return Ok(RetryOutcome::Stale);
    }
    Ok(if attempt >= i64::from(settings.max_attempts) {
        RetryOutcome::Dead
    } else {
        RetryOutcome::Scheduled
    })
}

/// Hands a claim back without using its attempt (`reason` `None`), or moves it to the
/// dead letters at once. Whether this claim still held the event.
fn release_or_bury(
    connection: &Connection,
    settings: &Settings,
    id: i64,
    attempt: i64,
    dead: Option<&str>,
) -> Result<bool, InboxError> {
    let changed = match dead {
        None => connection
            .prepare_cached(
                "UPDATE inbox_events SET state = 0, attempts = attempts - 1, due_at = ?3
                 WHERE id = ?1 AND state = 1 AND attempts = ?2",
            )
            .and_then(|mut s| s.execute(params![id, attempt, settings.now()])),
        Some(reason) => connection
            .prepare_cached(
                "UPDATE inbox_events SET state = 2, last_error = ?3
                 WHERE id = ?1 AND state = 1 AND attempts = ?2",
            )
            .and_then(|mut s| s.execute(params![id, attempt, reason])),
    }
    .map_err(sql)?;
    Ok(changed > 0)
}

fn stats(connection: &Connection, now: i64) -> Result<InboxStats, InboxError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT
               sum(state = 0 OR (state = 1 AND due_at <= ?1)),
               sum(state = 1 AND due_at > ?1),
               sum(state = 2)
             FROM inbox_events",
        )
        .map_err(sql)?;
    statement
        .query_row(params![now], |row| {
            let count = |i: usize| -> rusqlite::Result<u64> {
                Ok(u64::try_from(row.get::<_, Option<i64>>(i)?.unwrap_or(0)).unwrap_or(0))
            };
            Ok(InboxStats {
                pending: count(0)?,
                in_flight: count(1)?,
                dead: count(2)?,
            })
        })
        .map_err(sql)
}

impl Inbox for SqliteInbox {
    fn append(&self, body: Bytes) -> BoxFuture<'_, Result<EventId, InboxError>> {
        let appended =
            self.run_one(move |connection, settings| append(connection, settings, &body));
        Box::pin(async move {
            let id = appended.await?;
            self.shared.appended.notify_one();
            Ok(id)
        })
    }

    fn claim(
        &self,
        max: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, InboxError>> {
        self.run(move |connection, settings| claim(connection, settings, max, lease))
    }

    fn ack<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), InboxError>> {
        self.ack_all(std::slice::from_ref(delivery))
    }

    fn ack_all<'a>(&'a self, deliveries: &'a [Delivery]) -> BoxFuture<'a, Result<(), InboxError>> {
        // Processed is done, whoever holds the lease now: at least once, not twice more.
        // A delete that fails leaves its event to be delivered again.
        let ids: Vec<i64> = deliveries.iter().filter_map(|d| row_id(d.id())).collect();
        self.run_one(move |connection, _| {
            let mut delete = connection
                .prepare_cached("DELETE FROM inbox_events WHERE id = ?1")
                .map_err(sql)?;
            for id in ids {
                delete.execute(params![id]).map_err(sql)?;
            }
            Ok(())
        })
    }

    fn extend_lease<'a>(
        &'a self,
        delivery: &'a Delivery,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        let claimed = row_id(delivery.id()).zip(delivery.receipt().parse::<i64>().ok());
        self.run_one(move |connection, settings| {
            let Some((id, attempt)) = claimed else {
                return Ok(false);
            };
            let lease_end = settings.now().saturating_add(millis(lease));
            let changed = connection
                .prepare_cached(
                    "UPDATE inbox_events SET due_at = ?3
                     WHERE id = ?1 AND state = 1 AND attempts = ?2",
                )
                .and_then(|mut s| s.execute(params![id, attempt, lease_end]))
                .map_err(sql)?;
            Ok(changed > 0)
        })
    }

    fn retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<RetryOutcome, InboxError>> {
        let claimed = row_id(delivery.id()).zip(delivery.receipt().parse::<i64>().ok());
        let reason = reason.to_owned();
        self.run(move |connection, settings| match claimed {
            Some((id, attempt)) => retry(connection, settings, id, attempt, delay, &reason),
            None => Ok(RetryOutcome::Stale),
        })
    }

    fn release<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<bool, InboxError>> {
        let claimed = row_id(delivery.id()).zip(delivery.receipt().parse::<i64>().ok());
        let released = self.run_one(move |connection, settings| match claimed {
            Some((id, attempt)) => release_or_bury(connection, settings, id, attempt, None),
            None => Ok(false),
        });
        Box::pin(async move {
            let released = released.await?;
            if released {
                self.shared.appended.notify_one();
            }
            Ok(released)
        })
    }

    fn dead_letter<'a>(
        &'a self,
        delivery: &'a Delivery,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        let claimed = row_id(delivery.id()).zip(delivery.receipt().parse::<i64>().ok());
        let reason = reason.to_owned();
        self.run_one(move |connection, settings| match claimed {
            Some((id, attempt)) => {
                release_or_bury(connection, settings, id, attempt, Some(&reason))
            }
            None => Ok(false),
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<InboxStats, InboxError>> {
        self.run(|connection, settings| stats(connection, settings.now()))
    }

    fn list(
        &self,
        filter: ListFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, InboxError>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |connection, settings| {
            let condition = match filter {
                ListFilter::Dead => "state = 2",
                _ => "state IN (0, 1)",
            };
            let mut statement = connection
                .prepare(&format!(
                    "{SELECT_EVENT} WHERE {condition} ORDER BY id LIMIT ?1"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map(params![limit], |row| stored_event(row, settings.now()))
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a EventId,
    ) -> BoxFuture<'a, Result<Option<StoredEvent>, InboxError>> {
        let id = row_id(id);
        self.run(move |connection, settings| {
            let Some(id) = id else { return Ok(None) };
            connection
                .query_row(
                    &format!("{SELECT_EVENT} WHERE id = ?1"),
                    params![id],
                    |row| stored_event(row, settings.now()),
                )
                .optional()
                .map_err(sql)
        })
    }

    fn requeue<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<bool, InboxError>> {
        let id = row_id(id);
        let requeued = self.run(move |connection, settings| {
            let Some(id) = id else { return Ok(false) };
            let now = settings.now();
            let changed = connection
                .execute(
                    "UPDATE inbox_events SET state = 0, attempts = 0, due_at = ?2
                     WHERE id = ?1 AND state IN (0, 2)",
                    params![id, now],
                )
                .map_err(sql)?;
            Ok(changed > 0)
        });
        Box::pin(async move {
            let found = requeued.await?;
            self.shared.appended.notify_one();
            Ok(found)
        })
    }

    fn requeue_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>> {
        let requeued = self.run(|connection, settings| {
            let now = settings.now();
            let changed = connection
                .execute(
                    "UPDATE inbox_events SET state = 0, attempts = 0, due_at = ?1 WHERE state = 2",
                    params![now],
                )
                .map_err(sql)?;
            Ok(changed as u64)
        });
        Box::pin(async move {
            let count = requeued.await?;
            self.shared.appended.notify_one();
            Ok(count)
        })
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>> {
        self.run(|connection, _| {
            let changed = connection
                .execute("DELETE FROM inbox_events WHERE state = 2", [])
                .map_err(sql)?;
            Ok(changed as u64)
        })
    }

    fn appended(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.shared.appended.notified())
    }

    /// Ready while writes succeed and the path still names the open file. After a
    /// failed write (a full disk, an I/O error), each ping tries a small write of its
    /// own until one succeeds, so readiness comes back with the disk.
    fn ping(&self) -> BoxFuture<'_, Result<(), InboxError>> {
        if self.shared.writable.load(Ordering::Relaxed) {
            self.run(|connection, settings| stats(connection, settings.now()).map(|_| ()))
        } else {
            // As much as a large event takes, written and removed in one transaction:
            // the commit still has to put it in the write-ahead log.
            self.run(|connection, _| {
                cached(
                    connection,
                    "INSERT INTO inbox_probe (id, data) VALUES (0, zeroblob(65536))",
                )
                .and_then(|_| cached(connection, "DELETE FROM inbox_probe"))
                .map(|_| ())
                .map_err(sql)
            })
        }
    }

    fn commits(&self) -> Option<u64> {
        Some(SqliteInbox::commits(self))
    }
}

impl fmt::Debug for SqliteInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteInbox")
            .field("path", &self.shared.path)
            .field("settings", &self.shared.settings)
            .field("commits", &self.commits())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox() -> (tempfile::TempDir, SqliteInbox) {
        let dir = tempfile::tempdir().unwrap();
        let inbox = SqliteInbox::open(dir.path().join("inbox.db")).unwrap();
        (dir, inbox)
    }

    #[tokio::test]
    async fn jobs_after_a_transaction_rolled_back_by_sqlite_are_failed_not_run_in_autocommit() {
        let (_dir, inbox) = inbox();
        // The next two jobs form one batch.
        let (go, holding) = hold_writer(&inbox);
        // What SQLite does by itself on FULL, IOERR or NOMEM: the whole transaction
        // is gone.
        let rolled_back = inbox.run_one(|connection, _| {
            connection.execute_batch("ROLLBACK").map_err(sql)?;
            Err::<(), _>(InboxError::unavailable("disk full (simulated)"))
        });
        let appended = inbox.append(Bytes::from_static(b"{}"));
        go.send(()).unwrap();
        holding.await.unwrap();
        assert!(rolled_back.await.is_err());
        let error = appended.await.unwrap_err();
        assert!(error.to_string().contains("rolled back"), "{error}");
        assert_eq!(
            inbox.stats().await.unwrap().pending,
            0,
            "nothing stored unbatched"
        );
        // The writer goes on.
        inbox.append(Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(inbox.stats().await.unwrap().pending, 1);
    }

    #[tokio::test]
    async fn a_removed_file_fails_appends_and_readiness() {
        let (dir, inbox) = inbox();
        inbox.append(Bytes::from_static(b"{}")).await.unwrap();
        inbox.ping().await.unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let error = inbox.append(Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(
            error.to_string().contains("was removed or replaced"),
            "{error}"
        );
        assert!(inbox.ping().await.is_err());
    }

    #[tokio::test]
    async fn a_lock_held_by_another_process_is_named_as_such() {
        let (dir, inbox) = inbox();
        let other = Connection::open(dir.path().join("inbox.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let error = inbox.append(Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(
            error.to_string().contains("locked by another process"),
            "{error}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        inbox.append(Bytes::from_static(b"{}")).await.unwrap();
    }

    /// Holds the writer thread until the returned sender is used, so that whatever is
    /// submitted meanwhile waits for the next batch.
    fn hold_writer(
        inbox: &SqliteInbox,
    ) -> (
        std::sync::mpsc::Sender<()>,
        BoxFuture<'static, Result<(), InboxError>>,
    ) {
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let holding = inbox.run_one(move |_, _| {
            let _ = started_tx.send(());
            let _ = wait.recv();
            Ok(())
        });
        started.recv().unwrap();
        (go, holding)
    }

    #[tokio::test]
    async fn group_commit_takes_every_waiting_append_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        for (max_batch, expected) in [(1024, 1), (1, 200)] {
            let inbox = SqliteInbox::builder(dir.path().join(format!("batch-{max_batch}.db")))
                .max_batch(max_batch)
                .open()
                .unwrap();
            let (go, holding) = hold_writer(&inbox);
            let appends: Vec<_> = (0..200)
                .map(|n| inbox.append(Bytes::from(format!("e{n}"))))
                .collect();
            go.send(()).unwrap();
            holding.await.unwrap();
            for append in appends {
                append.await.unwrap();
            }
            assert_eq!(inbox.commits(), expected, "max_batch {max_batch}");
            assert_eq!(inbox.stats().await.unwrap().pending, 200);
        }
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = SqliteInbox::open(dir.path().join("no-such-dir").join("inbox.db")).unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
    }
}
