//! The writer thread: group commit. Every job waiting when a commit starts goes into
//! the next transaction, and each is answered once that transaction committed.

use std::sync::mpsc;

use rusqlite::Connection;

use super::sql::Settings;

/// Work for the writer thread: runs inside the batch's transaction and returns what
/// to do once the transaction committed (or failed to). Given `Err(reason)` instead of
/// the connection, it runs nothing: the batch cannot be written.
pub(super) type Job = Box<dyn FnOnce(Result<(&Connection, &Settings), &str>) -> Completion + Send>;
pub(super) type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

/// What became of one batch.
pub(super) enum Batch {
    /// Committed; whether it wrote anything.
    Committed { wrote: bool },
    /// Nothing of it was stored.
    Failed,
}

/// The writer thread: takes every job waiting, runs them in one transaction, commits
/// once, then answers each. Ends when every handle is dropped. `still_ours` says
/// whether the path still names the open file: a batch written into a file that was
/// removed would be lost at the next restart, so it fails instead.
pub(super) fn write_loop(
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
