//! `genesys-webhook inbox`: look into the receiver's durable inbox, and bring dead
//! letters back.

use std::sync::Arc;
use std::time::SystemTime;

use genesys_webhook::inbox::{
    EventId, InboxAdmin, InboxLimits, InboxLocation, ListFilter, StoredEvent,
};
use serde_json::{json, Value};

use crate::output::{printable, Failure, Report};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The inbox, named as the receiver names it: sqlite:PATH, a redis:// URL
    /// [default: $GENESYS_INBOX, else genesys-inbox.db in the working directory].
    #[arg(long, global = true, env = "GENESYS_INBOX", hide_env_values = true)]
    inbox: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Count pending, in-flight and dead events.
    Stats,
    /// List stored events, oldest first: pending and in flight, or dead with --dead.
    List {
        /// The dead letters instead.
        #[arg(long)]
        dead: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one event: its body and its attempts.
    Show {
        /// The event's inbox id.
        id: String,
    },
    /// Put an event (or every dead one) back to pending, its attempts counted anew.
    Retry {
        /// The event's inbox id.
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<String>,
        /// Every dead event.
        #[arg(long)]
        all_dead: bool,
    },
    /// Delete every dead event.
    Purge {
        /// The dead letters (the only events that can be purged).
        #[arg(long, required = true)]
        dead: bool,
        /// Confirm: the events are gone for good.
        #[arg(long)]
        yes: bool,
    },
}

pub(crate) async fn run(args: Args, _json: bool) -> Result<Report, Failure> {
    let inbox = open(args.inbox.as_deref())?;
    let unavailable = |e: genesys_webhook::inbox::InboxError| Failure::io(e.to_string());
    match args.command {
        Command::Stats => {
            let stats = inbox.stats().await.map_err(unavailable)?;
            Ok(Report::passed(
                format!(
                    "pending: {}\nin flight: {}\ndead: {}",
                    stats.pending, stats.in_flight, stats.dead
                ),
                json!({
                    "pending": stats.pending,
                    "in_flight": stats.in_flight,
                    "dead": stats.dead,
                }),
            ))
        }
        Command::List { dead, limit } => {
            let filter = if dead {
                ListFilter::Dead
            } else {
                ListFilter::Live
            };
            let events = inbox.list(filter, limit).await.map_err(unavailable)?;
            let text = if events.is_empty() {
                "no events".to_owned()
            } else {
                events
                    .iter()
                    .map(|e| {
                        format!(
                            "{}  {}  attempts {}  {} bytes  received {}{}",
                            e.id,
                            e.state,
                            e.attempts,
                            e.body.len(),
                            timestamp(e.received_at),
                            e.last_error
                                .as_deref()
                                .map(|r| format!("  last error: {}", printable(r.as_bytes(), 200)))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let json = json!({ "events": events.iter().map(summary).collect::<Vec<_>>() });
            Ok(Report::passed(text, json))
        }
        Command::Show { id } => {
            let Some(event) = inbox
                .get(&EventId::new(id.clone()))
                .await
                .map_err(unavailable)?
            else {
                return Err(Failure::check(format!(
                    "no event {id} in the inbox: processed events are deleted once acknowledged \
                     (only pending, in-flight and dead ones can be shown)"
                )));
            };
            let mut json = summary(&event);
            json["body"] = Value::String(String::from_utf8_lossy(&event.body).into_owned());
            Ok(Report::passed(
                format!(
                    "id: {}\nstate: {}\nattempts: {}\nreceived: {}\ncontent type: {}\nlast error: {}\nbody ({} bytes):\n{}",
                    event.id,
                    event.state,
                    event.attempts,
                    timestamp(event.received_at),
                    event
                        .content_type
                        .as_deref()
                        .map_or("-".to_owned(), |t| printable(t.as_bytes(), 300)),
                    event
                        .last_error
                        .as_deref()
                        .map_or("-".to_owned(), |r| printable(r.as_bytes(), 1000)),
                    event.body.len(),
                    printable(&event.body, usize::MAX),
                ),
                json,
            ))
        }
        Command::Retry { id, all_dead } => {
            let count = match id {
                Some(id) if !all_dead => {
                    let found = inbox
                        .requeue(&EventId::new(id.clone()))
                        .await
                        .map_err(unavailable)?;
                    if !found {
                        return Err(Failure::check(format!(
                            "no dead or waiting event {id} in the inbox"
                        )));
                    }
                    1
                }
                _ => inbox.requeue_dead().await.map_err(unavailable)?,
            };
            Ok(Report::passed(
                format!("{count} event(s) back to pending"),
                json!({ "requeued": count }),
            ))
        }
        Command::Purge { dead: _, yes } => {
            if !yes {
                let dead = inbox.stats().await.map_err(unavailable)?.dead;
                return Err(Failure::io(format!(
                    "purge deletes {dead} dead event(s) for good: add --yes to confirm"
                )));
            }
            let count = inbox.purge_dead().await.map_err(unavailable)?;
            Ok(Report::passed(
                format!("{count} dead event(s) deleted"),
                json!({ "purged": count }),
            ))
        }
    }
}

fn open(location: Option<&str>) -> Result<Arc<dyn InboxAdmin>, Failure> {
    let location: InboxLocation = location
        .unwrap_or_default()
        .parse()
        .map_err(|e| Failure::io(format!("--inbox: {e}")))?;
    if let InboxLocation::Sqlite(path) = &location {
        // Looking must not create an empty inbox where the receiver keeps none.
        if !path.exists() {
            return Err(Failure::io(format!(
                "no inbox at {} (name it with --inbox or GENESYS_INBOX)",
                path.display()
            )));
        }
    }
    if location == InboxLocation::Memory {
        return Err(Failure::io(
            "a memory inbox lives inside the receiver's process; there is nothing to open",
        ));
    }
    location
        .open(InboxLimits::default())
        .map_err(|e| Failure::io(format!("{location}: {e}")))
}

fn summary(event: &StoredEvent) -> Value {
    json!({
        "id": event.id.as_str(),
        "state": event.state.as_str(),
        "attempts": event.attempts,
        "received_at": timestamp(event.received_at),
        "last_error": event.last_error,
        "content_type": event.content_type,
        "body_bytes": event.body.len(),
    })
}

fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
