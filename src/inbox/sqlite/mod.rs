use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{oneshot, Notify};

mod schema;
mod sql;
mod writer;

use self::schema::{open_error, setup, FileIdentity};
use self::sql::{
    append, cached, claim, in_savepoint, release_or_bury, retry, row_id, sql_error, stats,
    stored_event, Settings, SELECT_EVENT,
};
use self::writer::{write_loop, Batch, Job};
use super::{
    millis, BoxFuture, Clock, Delivery, EventId, Inbox, InboxAdmin, InboxError, InboxLimits,
    InboxStats, ListFilter, RetryOutcome, StoredEvent,
};

/// Default for [`SqliteInboxBuilder::max_batch`]: operations committed together.
const DEFAULT_MAX_BATCH: usize = 1024;

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
/// use genesys_webhook::inbox::{InboxLimits, SqliteInbox};
///
/// let inbox = SqliteInbox::builder("genesys-inbox.db")
///     .limits(InboxLimits::default().max_attempts(10).max_events(100_000))
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

/// Configures a [`SqliteInbox`]; made by [`SqliteInbox::builder`].
#[derive(Debug, Clone)]
pub struct SqliteInboxBuilder {
    path: PathBuf,
    settings: Settings,
}

impl SqliteInboxBuilder {
    /// The bounds it enforces (default [`InboxLimits::default`]).
    pub fn limits(mut self, limits: InboxLimits) -> Self {
        self.settings.limits = limits;
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
                limits: InboxLimits::default(),
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

impl Inbox for SqliteInbox {
    fn append(&self, body: Bytes) -> BoxFuture<'_, Result<EventId, InboxError>> {
        self.append_with_content_type(body, None)
    }

    fn append_with_content_type<'a>(
        &'a self,
        body: Bytes,
        content_type: Option<&str>,
    ) -> BoxFuture<'a, Result<EventId, InboxError>> {
        let content_type = content_type.map(str::to_owned);
        let appended = self.run_one(move |connection, settings| {
            append(connection, settings, &body, content_type.as_deref())
        });
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
                .map_err(sql_error)?;
            for id in ids {
                delete.execute(params![id]).map_err(sql_error)?;
            }
            Ok(())
        })
    }

    fn extend_lease<'a>(
        &'a self,
        delivery: &'a Delivery,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        let claimed = row_id(delivery.id()).zip(delivery.claim_token().parse::<i64>().ok());
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
                .map_err(sql_error)?;
            Ok(changed > 0)
        })
    }

    fn retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<RetryOutcome, InboxError>> {
        let claimed = row_id(delivery.id()).zip(delivery.claim_token().parse::<i64>().ok());
        let reason = reason.to_owned();
        self.run(move |connection, settings| match claimed {
            Some((id, attempt)) => retry(connection, settings, id, attempt, delay, &reason),
            None => Ok(RetryOutcome::Stale),
        })
    }

    fn defer<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        let claimed = row_id(delivery.id()).zip(delivery.claim_token().parse::<i64>().ok());
        let released = self.run_one(move |connection, settings| match claimed {
            Some((id, attempt)) => release_or_bury(connection, settings, id, attempt, Err(delay)),
            None => Ok(false),
        });
        Box::pin(async move {
            let released = released.await?;
            if released && delay.is_zero() {
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
        let claimed = row_id(delivery.id()).zip(delivery.claim_token().parse::<i64>().ok());
        let reason = reason.to_owned();
        self.run_one(move |connection, settings| match claimed {
            Some((id, attempt)) => release_or_bury(connection, settings, id, attempt, Ok(&reason)),
            None => Ok(false),
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
                .map_err(sql_error)
            })
        }
    }
}

impl InboxAdmin for SqliteInbox {
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
                .map_err(sql_error)?;
            let rows = statement
                .query_map(params![limit], |row| stored_event(row, settings.now()))
                .map_err(sql_error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
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
                .map_err(sql_error)
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
                .map_err(sql_error)?;
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
                .map_err(sql_error)?;
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
                .map_err(sql_error)?;
            Ok(changed as u64)
        })
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
    use super::schema::SCHEMA;
    use super::*;

    fn inbox() -> (tempfile::TempDir, SqliteInbox) {
        let dir = tempfile::tempdir().unwrap();
        let inbox = SqliteInbox::open(dir.path().join("inbox.db")).unwrap();
        (dir, inbox)
    }

    #[tokio::test]
    async fn a_file_from_before_the_content_type_gets_the_column_and_keeps_its_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.db");
        {
            // The schema as it was, with one event waiting.
            let old = SCHEMA.replace(
                "last_error  TEXT,\n    content_type TEXT                       -- as received; added after the first release",
                "last_error  TEXT",
            );
            assert!(!old.contains("content_type"));
            let connection = Connection::open(&path).unwrap();
            connection.execute_batch(&old).unwrap();
            connection
                .execute(
                    "INSERT INTO inbox_events (body, received_at, due_at) VALUES (x'7b7d', 0, 0)",
                    [],
                )
                .unwrap();
        }
        // Opened twice, as two processes starting at once would.
        let inbox = SqliteInbox::open(&path).unwrap();
        let second = SqliteInbox::open(&path).unwrap();
        let typed = inbox
            .append_with_content_type(Bytes::from_static(b"{}"), Some("application/json"))
            .await
            .unwrap();
        let claimed = second.claim(10, Duration::from_secs(30)).await.unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(claimed[0].content_type(), None);
        assert_eq!(claimed[1].id(), &typed);
        assert_eq!(claimed[1].content_type(), Some("application/json"));
    }

    #[tokio::test]
    async fn jobs_after_a_transaction_rolled_back_by_sqlite_are_failed_not_run_in_autocommit() {
        let (_dir, inbox) = inbox();
        // The next two jobs form one batch.
        let (go, holding) = hold_writer(&inbox);
        // What SQLite does by itself on FULL, IOERR or NOMEM: the whole transaction
        // is gone.
        let rolled_back = inbox.run_one(|connection, _| {
            connection.execute_batch("ROLLBACK").map_err(sql_error)?;
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
