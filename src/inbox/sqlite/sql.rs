//! The SQL of each operation, run by the writer thread inside a batch's transaction
//! (or on a reader's own connection).

use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection};

use crate::inbox::{
    from_unix_millis, millis, unix_millis, Clock, Delivery, EventId, EventState, InboxError,
    InboxLimits, InboxStats, RetryOutcome, StoredEvent,
};

#[derive(Debug, Clone)]
/// What every operation of the writer reads: the bounds, the batch size, the clock.
pub(super) struct Settings {
    pub(super) limits: InboxLimits,
    pub(super) max_batch: usize,
    pub(super) clock: Clock,
}

impl Settings {
    pub(super) fn now(&self) -> i64 {
        unix_millis(self.clock.now())
    }
}

pub(super) const PENDING: i64 = 0;
pub(super) const IN_FLIGHT: i64 = 1;

/// Runs `work` in a savepoint and rolls back to it on an SQLite error, so that a job
/// of several statements that fails leaves the batch's other work intact. A job of
/// one statement needs none: SQLite undoes a failed statement by itself.
pub(super) fn in_savepoint<R>(
    connection: &Connection,
    work: impl FnOnce() -> Result<R, InboxError>,
) -> Result<R, InboxError> {
    cached(connection, "SAVEPOINT job").map_err(sql_error)?;
    let result = work();
    if matches!(result, Err(InboxError::Unavailable(_))) {
        let _ = cached(connection, "ROLLBACK TO job");
    }
    let _ = cached(connection, "RELEASE job");
    result
}

/// Runs a statement without parameters through the statement cache.
pub(super) fn cached(connection: &Connection, statement: &str) -> rusqlite::Result<usize> {
    connection.prepare_cached(statement)?.execute([])
}

pub(super) fn sql_error(error: rusqlite::Error) -> InboxError {
    InboxError::unavailable(error)
}

pub(super) fn row_id(id: &EventId) -> Option<i64> {
    id.as_str().parse().ok()
}

pub(super) fn state_of(code: i64) -> EventState {
    match code {
        PENDING => EventState::Pending,
        IN_FLIGHT => EventState::InFlight,
        _ => EventState::Dead,
    }
}

pub(super) fn stored_event(row: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<StoredEvent> {
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
        content_type: row.get(7)?,
    })
}

pub(super) const SELECT_EVENT: &str =
    "SELECT id, body, received_at, attempts, state, due_at, last_error, content_type FROM inbox_events";

pub(super) fn append(
    connection: &Connection,
    settings: &Settings,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<EventId, InboxError> {
    let now = settings.now();
    // One statement: the bound check and the insert (its trigger updates the totals).
    let inserted = connection
        .prepare_cached(
            "INSERT INTO inbox_events (body, received_at, due_at, state, content_type)
             SELECT ?1, ?2, ?2, 0, ?5 FROM inbox_totals
             WHERE id = 0 AND events < ?3 AND bytes + length(?1) <= ?4",
        )
        .and_then(|mut s| {
            s.execute(params![
                body,
                now,
                i64::try_from(settings.limits.max_events).unwrap_or(i64::MAX),
                i64::try_from(settings.limits.max_bytes).unwrap_or(i64::MAX),
                content_type
            ])
        })
        .map_err(sql_error)?;
    if inserted == 0 {
        return Err(InboxError::Full);
    }
    Ok(EventId::new(connection.last_insert_rowid().to_string()))
}

pub(super) fn claim(
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
    type Candidate = (i64, Vec<u8>, i64, i64, Option<String>);
    let mut candidates: Vec<Candidate> = Vec::new();
    {
        let mut statement = connection
            .prepare_cached(
                "SELECT id, body, received_at, attempts, content_type FROM inbox_events
                 WHERE state = 1 AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
            )
            .map_err(sql_error)?;
        let rows = statement
            .query_map(params![now, limit], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .map_err(sql_error)?;
        for row in rows {
            candidates.push(row.map_err(sql_error)?);
        }
    }
    let mut deliveries = Vec::with_capacity(max.min(1024));
    for (id, body, received_at, attempts, content_type) in candidates {
        if attempts >= i64::from(settings.limits.max_attempts) {
            connection
                .prepare_cached(
                    "UPDATE inbox_events SET state = 2,
                     last_error = coalesce(last_error, 'lease ended without an answer')
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id]))
                .map_err(sql_error)?;
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
            .map_err(sql_error)?;
        deliveries.push(
            Delivery::new(
                EventId::new(id.to_string()),
                Bytes::from(body),
                from_unix_millis(received_at),
                u32::try_from(attempt).unwrap_or(u32::MAX),
                attempt.to_string(),
            )
            .with_content_type(content_type),
        );
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
                 RETURNING id, body, received_at, attempts, content_type",
            )
            .map_err(sql_error)?;
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
                    )
                    .with_content_type(row.get(4)?),
                ))
            })
            .map_err(sql_error)?;
        let mut pending = rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)?;
        // RETURNING gives no order: the oldest first, as they were due.
        pending.sort_unstable_by_key(|(id, _)| *id);
        deliveries.extend(pending.into_iter().map(|(_, delivery)| delivery));
    }
    Ok(deliveries)
}

pub(super) fn retry(
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
                i64::from(settings.limits.max_attempts),
                due,
                reason
            ])
        })
        .map_err(sql_error)?;
    if changed == 0 {
        return Ok(RetryOutcome::Stale);
    }
    Ok(if attempt >= i64::from(settings.limits.max_attempts) {
        RetryOutcome::Dead
    } else {
        RetryOutcome::Scheduled
    })
}

/// Moves a claim to the dead letters at once (`Ok(reason)`), or hands it back due after
/// a delay without using its attempt (`Err(delay)`). Whether this claim still held the
/// event.
pub(super) fn release_or_bury(
    connection: &Connection,
    settings: &Settings,
    id: i64,
    attempt: i64,
    dead: Result<&str, Duration>,
) -> Result<bool, InboxError> {
    let changed = match dead {
        Err(delay) => connection
            .prepare_cached(
                "UPDATE inbox_events SET state = 0, attempts = attempts - 1, due_at = ?3
                 WHERE id = ?1 AND state = 1 AND attempts = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    attempt,
                    settings.now().saturating_add(millis(delay))
                ])
            }),
        Ok(reason) => connection
            .prepare_cached(
                "UPDATE inbox_events SET state = 2, last_error = ?3
                 WHERE id = ?1 AND state = 1 AND attempts = ?2",
            )
            .and_then(|mut s| s.execute(params![id, attempt, reason])),
    }
    .map_err(sql_error)?;
    Ok(changed > 0)
}

pub(super) fn stats(connection: &Connection, now: i64) -> Result<InboxStats, InboxError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT
               sum(state = 0 OR (state = 1 AND due_at <= ?1)),
               sum(state = 1 AND due_at > ?1),
               sum(state = 2)
             FROM inbox_events",
        )
        .map_err(sql_error)?;
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
        .map_err(sql_error)
}
