//! The at-least-once worker: claims deliveries from an [`Inbox`](super::Inbox), runs a tower
//! [`Service`] on each, extends leases while it runs, acknowledges each delivery as
//! soon as its handler succeeded, and retries or dead-letters the ones that failed.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tower_service::Service;

use super::order::{KeyFn, Sequencer, Settled, Turn, RECHECK};
use super::{Delivery, EventState, InboxAdmin, ListFilter, RetryOutcome};
use crate::boxed::BoxError;

/// Default for [`WorkerBuilder::concurrency`]: 16 deliveries at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default for [`WorkerBuilder::lease`]: 30 seconds.
pub const DEFAULT_DELIVERY_LEASE: Duration = Duration::from_secs(30);
/// Default for [`WorkerBuilder::gather`]: 1 millisecond.
const DEFAULT_GATHER: Duration = Duration::from_millis(1);

/// The most acknowledgements sent to the inbox in one operation.
const ACK_BATCH: usize = 1024;
/// How long a worker waits after its first failed claim; doubled up to a minute.
const CLAIM_BACKOFF: Duration = Duration::from_secs(1);
const CLAIM_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How often, at most, a worker whose claims keep failing says so at WARN.
const CLAIM_WARN_EVERY: Duration = Duration::from_secs(60);

/// The most live events read at start to line up [`WorkerBuilder::order_by`]'s keys.
const SEED_LIMIT: usize = 1_000_000;

/// Processes what an [`Inbox`](super::Inbox) holds with a tower [`Service<Delivery>`]: at least once,
/// each delivery acknowledged on its own as soon as its handler succeeds.
///
/// - **Handler:** any `Service<Delivery>` whose response means "processed" and whose
///   error means "retry": `tower::service_fn` works, and so do stacks of tower layers
///   (timeouts, concurrency limits, tracing).
/// - **Concurrency:** up to [`concurrency`](WorkerBuilder::concurrency) deliveries run
///   at once; the worker claims ahead only what its handlers start soon, so one slow
///   handler holds one slot, not a batch, and replicas share a backlog.
/// - **Leases:** each delivery's lease is extended every third of its length while its
///   handler runs ([`Inbox::extend_lease`](super::Inbox::extend_lease)), so a handler slower than the lease is not
///   run a second time by another replica.
/// - **Acknowledgement:** per delivery, the moment its handler succeeded. Those that
///   finish together are sent in one [`Inbox::ack_all`](super::Inbox::ack_all) (one transaction in SQLite, one
///   round trip to Redis); nothing waits for the slowest handler of a claim.
/// - **Failures:** an error or a panic schedules a retry after an exponential backoff
///   with jitter ([`backoff`](WorkerBuilder::backoff)), or after the delay a
///   [`RetryAfter`] error names; the inbox moves an event to the dead letters after its
///   last attempt, or at once when the handler fails with [`Abort`].
/// - **Order (optional):** with [`order_by`](WorkerBuilder::order_by), events of one
///   key (a conversation) are handled one at a time, oldest first, across retries and
///   restarts; events of different keys run in parallel.
/// - **Waking:** 1 ms after an append made through the same inbox handle
///   ([`gather`](WorkerBuilder::gather): the appends of that millisecond are claimed
///   together), otherwise every [`poll_interval`](WorkerBuilder::poll_interval).
/// - **Shutdown:** [`run_until`](Self::run_until) stops claiming when its signal
///   resolves, lets the deliveries in flight finish for up to
///   [`shutdown_timeout`](WorkerBuilder::shutdown_timeout), then hands the rest back to
///   the inbox for another worker ([`Inbox::release`](super::Inbox::release): a delivery handed back has not
///   used an attempt). [`spawn`](Self::spawn) runs it on a task of its own, stopped by
///   [`WorkerHandle::shutdown`].
///
/// ```
/// use std::sync::Arc;
/// use genesys_webhook::inbox::{Delivery, InboxAdmin, MemoryInbox, Worker};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
/// inbox.append(r#"{"type":"Text"}"#.into()).await.unwrap();
///
/// let worker = Worker::builder(Arc::clone(&inbox))
///     .concurrency(8)
///     .build(tower::service_fn(|delivery: Delivery| async move {
///         println!("event {} ({} bytes)", delivery.id(), delivery.body().len());
///         Ok::<_, std::convert::Infallible>(())
///     }));
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let running = tokio::spawn(worker.run_until(async { stopped.await.ok(); }));
/// # while inbox.stats().await.unwrap().pending + inbox.stats().await.unwrap().in_flight > 0 {
/// #     tokio::time::sleep(std::time::Duration::from_millis(5)).await;
/// # }
/// stop.send(()).ok();
/// let report = running.await.unwrap();
/// assert_eq!(report.processed, 1);
/// # }
/// ```
pub struct Worker<S> {
    inbox: Arc<dyn InboxAdmin>,
    service: S,
    settings: Settings,
    order: Option<KeyFn>,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    concurrency: usize,
    prefetch: Option<usize>,
    lease: Duration,
    backoff_base: Duration,
    backoff_max: Duration,
    poll_interval: Duration,
    gather: Duration,
    shutdown_timeout: Duration,
}

/// Configures a [`Worker`]; made by [`Worker::builder`].
#[derive(Clone)]
pub struct WorkerBuilder {
    inbox: Arc<dyn InboxAdmin>,
    settings: Settings,
    order: Option<KeyFn>,
}

/// What a [`Worker`] did, returned when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// Deliveries whose handler succeeded.
    pub processed: u64,
    /// Deliveries whose handler failed or panicked, scheduled again.
    pub retried: u64,
    /// Deliveries that failed their last attempt and moved to the dead letters.
    pub dead_lettered: u64,
    /// Deliveries handed back to the inbox at shutdown, unfinished.
    pub released: u64,
    /// Deliveries handed back to the inbox for later without using an attempt, because
    /// an older event of their key was not done ([`WorkerBuilder::order_by`]).
    pub deferred: u64,
}

#[derive(Debug, Default)]
struct Counts {
    processed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    released: AtomicU64,
    deferred: AtomicU64,
}

impl Counts {
    fn report(&self) -> WorkerReport {
        WorkerReport {
            processed: self.processed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
            deferred: self.deferred.load(Ordering::Relaxed),
        }
    }
}

impl Worker<()> {
    /// Starts configuring a worker on `inbox`.
    pub fn builder(inbox: Arc<dyn InboxAdmin>) -> WorkerBuilder {
        WorkerBuilder {
            inbox,
            settings: Settings {
                concurrency: DEFAULT_CONCURRENCY,
                prefetch: None,
                lease: DEFAULT_DELIVERY_LEASE,
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(300),
                poll_interval: Duration::from_millis(250),
                gather: DEFAULT_GATHER,
                shutdown_timeout: Duration::from_secs(25),
            },
            order: None,
        }
    }
}

impl WorkerBuilder {
    /// How many deliveries run at once (default 16, at least 1).
    pub fn concurrency(mut self, deliveries: usize) -> Self {
        self.settings.concurrency = deliveries.max(1);
        self
    }

    /// The most deliveries that may wait, claimed, for a free handler (default: four
    /// times the concurrency, at least 240). The worker claims ahead only what its
    /// handlers start within about 100 ms at the pace they run (nothing before the
    /// first one finished), so replicas sharing an inbox share its backlog, while quick
    /// handlers still get many deliveries from one claim (one transaction, one round
    /// trip). The leases of waiting deliveries are extended like those of running ones.
    pub fn prefetch(mut self, deliveries: usize) -> Self {
        self.settings.prefetch = Some(deliveries);
        self
    }

    /// The lease each delivery is claimed under and extended by (default 30 s): how
    /// long a crashed worker's deliveries wait before another worker takes them over.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// The delay before the first retry of a failed delivery and the longest one
    /// (default 1 s and 5 minutes). Each attempt doubles it; the wait is chosen at
    /// random between half of it and all of it, so that failures retried together
    /// spread out.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.settings.backoff_base = base;
        self.settings.backoff_max = max.max(base);
        self
    }

    /// How often an idle worker looks for events appended through other handles or
    /// processes (default 250 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.settings.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long an idle worker woken by an append waits before it claims (default
    /// 1 ms), so that the appends of that moment are claimed together: under load, one
    /// wake-up and one claim serve many events instead of one each. `Duration::ZERO`
    /// claims at once.
    pub fn gather(mut self, wait: Duration) -> Self {
        self.settings.gather = wait.min(Duration::from_secs(1));
        self
    }

    /// How long deliveries in flight may take to finish after the shutdown signal
    /// (default 25 s, within a usual 30 s termination grace period); the rest are
    /// handed back to the inbox.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Handles the events of one key one at a time, oldest first: `key` reads it from
    /// a body (a conversation's id), `None` for an event in no order. Events of
    /// different keys, and those of none, still run up to the concurrency.
    ///
    /// The promise, within one worker (one process):
    ///
    /// - an event is handed to the service only once every older live event of its key
    ///   has been acknowledged or dead-lettered, and that is stored in the inbox;
    /// - while an older one waits for a retry, later ones of its key go back to the
    ///   inbox until it is due ([`Inbox::defer`](super::Inbox::defer): no attempt
    ///   used); while it runs, later ones wait in memory, as many for one key as the
    ///   [`concurrency`](Self::concurrency) (at least 2), and the rest go back to the
    ///   inbox until their turn is near, so that one busy key does not hold the claims
    ///   other keys need;
    /// - across a crash or a restart too: at start the worker reads the live events
    ///   ([`InboxAdmin::list`], up to a million) and lines them up first.
    ///
    /// "Older" is the order in which the inbox lists and hands out events: the order
    /// of their appends. A dead letter requeued later joins the end of its key's line.
    /// Several workers on one inbox (replicas sharing Redis) do not order among
    /// themselves.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use genesys_webhook::inbox::{Delivery, InboxAdmin, MemoryInbox, Worker};
    ///
    /// let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
    /// let worker = Worker::builder(inbox)
    ///     .order_by(|body| {
    ///         let event: serde_json::Value = serde_json::from_slice(body).ok()?;
    ///         Some(event.get("conversationId")?.as_str()?.to_owned())
    ///     })
    ///     .build(tower::service_fn(|_: Delivery| async { Ok::<_, std::convert::Infallible>(()) }));
    /// # let _ = worker;
    /// ```
    pub fn order_by(
        mut self,
        key: impl Fn(&[u8]) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.order = Some(Arc::new(key));
        self
    }

    /// The worker, running `service` on each delivery.
    pub fn build<S>(self, service: S) -> Worker<S> {
        Worker {
            inbox: self.inbox,
            service,
            settings: self.settings,
            order: self.order,
        }
    }
}

impl<S> Worker<S>
where
    S: Service<Delivery> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    /// Processes deliveries until `shutdown` resolves, then stops claiming, lets the
    /// deliveries in flight finish (for up to the shutdown timeout), hands back the
    /// rest, sends the last acknowledgements and returns what it did.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> WorkerReport {
        let Self {
            inbox,
            service,
            settings,
            order,
        } = self;

        let counts = Arc::new(Counts::default());
        // Claimed and not yet finished: running, or waiting for one of `running`.
        let prefetch = settings
            .prefetch
            .unwrap_or_else(|| (settings.concurrency * 4).max(240));
        let total = settings.concurrency + prefetch;
        let order = match order {
            // One key may hold as many waiting deliveries as there are handlers: enough to
            // run back to back; the rest go back for later, leaving the claims to others.
            Some(key) => {
                let order = Sequencer::new(key, settings.concurrency.max(2));
                Some(Arc::new(seeded(&*inbox, order).await))
            }
            None => None,
        };
        let slots = Arc::new(Semaphore::new(total));
        // Told each time a delivery's task ends and its slot is free again.
        let finished = Arc::new(Notify::new());
        let pace = Arc::new(Pace::default());
        let handlers = Arc::new(Semaphore::new(settings.concurrency));
        let (acks, queued) = mpsc::unbounded_channel::<Ack>();
        let acknowledging = tokio::spawn(acknowledge(Arc::clone(&inbox), queued));
        // `stopping`: no more handlers start, waiting deliveries go back; `cancel`: the
        // grace period is over, running ones go back too.
        let (stop, stopping) = watch::channel(false);
        let (cancel, cancelled) = watch::channel(false);
        let mut running = JoinSet::new();
        let mut claims = ClaimFailures::default();
        let depth = tokio::spawn(report_depth(Arc::clone(&inbox))).abort_handle();
        tokio::pin!(shutdown);

        'claiming: loop {
            while running.try_join_next().is_some() {}
            // When most of what was claimed went straight back (one busy key's line),
            // claiming again at once would only move the same events back and forth
            // and keep the inbox from Genesys' appends: pause briefly instead.
            if let Some(pause) = order.as_deref().and_then(Sequencer::pressure) {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = &mut shutdown => break,
                }
            }
            // Claim ahead only what the handlers will start soon, so that replicas
            // sharing the inbox share its backlog; while the handlers have work
            // waiting, claim in batches (fewer transactions or round trips).
            let limit = settings.concurrency + pace.prefetch(settings.concurrency, prefetch);
            let claimed = total - slots.available_permits();
            let batch = ((limit - settings.concurrency) / 2).max(1);
            let room = limit.saturating_sub(claimed);
            let free = if room == 0 || (claimed > settings.concurrency && room < batch) {
                None
            } else {
                Arc::clone(&slots)
                    .try_acquire_many_owned(u32::try_from(room).unwrap_or(u32::MAX))
                    .ok()
            };
            let Some(mut free) = free else {
                tokio::select! {
                    () = finished.notified() => continue,
                    () = &mut shutdown => break,
                }
            };
            // Not raced against the shutdown: a claim dropped half-way would leave its
            // deliveries leased to nobody until the lease ends.
            let deliveries = match inbox.claim(free.num_permits(), settings.lease).await {
                Ok(deliveries) => {
                    claims.recovered();
                    deliveries
                }
                Err(error) => {
                    let pause = claims.failed(&error);
                    drop(free);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = &mut shutdown => break,
                    }
                }
            };
            if deliveries.is_empty() {
                drop(free);
                tokio::select! {
                    () = inbox.appended() => {
                        // Let the appends of the next moment gather, so that one claim
                        // (one wake-up of this task, one transaction) takes them all.
                        if !settings.gather.is_zero() {
                            tokio::time::sleep(settings.gather).await;
                        }
                    }
                    () = tokio::time::sleep(idle(settings.poll_interval, order.as_deref())) => {}
                    () = &mut shutdown => break 'claiming,
                }
                continue;
            }
            for delivery in deliveries {
                let Some(slot) = free.split(1) else { break };
                let job = Job {
                    inbox: Arc::clone(&inbox),
                    handlers: Arc::clone(&handlers),
                    settings,
                    acks: acks.clone(),
                    cancelled: cancelled.clone(),
                    stopping: stopping.clone(),
                    counts: Arc::clone(&counts),
                    pace: Arc::clone(&pace),
                    order: order.clone(),
                };
                let service = service.clone();
                let finished = Arc::clone(&finished);
                let mut job = Box::pin(async move {
                    job.run(service, delivery).await;
                    drop(slot);
                    finished.notify_one();
                });
                // Most handlers finish within their first poll: run it here, and give
                // a task of its own only to what is left (a task per event costs a
                // spawn and a wake-up).
                let done = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(job.as_mut().poll(cx).is_ready())
                })
                .await;
                if !done {
                    running.spawn(job);
                }
            }
        }

        // Shutdown: no more claims, nothing more starts; what runs gets the grace
        // period, then is handed back.
        let _ = stop.send(true);
        let finished = tokio::time::timeout(settings.shutdown_timeout, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            let _ = cancel.send(true);
            while running.join_next().await.is_some() {}
        }
        drop(acks);
        let _ = acknowledging.await;
        depth.abort();
        counts.report()
    }

    /// Runs the worker on its own Tokio task until [`WorkerHandle::shutdown`] (or until
    /// the handle is dropped, which stops it the same way without waiting for it).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use genesys_webhook::inbox::{Delivery, InboxAdmin, MemoryInbox, Worker};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
    /// let worker = Worker::builder(Arc::clone(&inbox))
    ///     .build(tower::service_fn(|_: Delivery| async { Ok::<_, std::convert::Infallible>(()) }))
    ///     .spawn();
    /// // ... serve requests ...
    /// let report = worker.shutdown().await;
    /// println!("processed {}", report.processed);
    /// # }
    /// ```
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run_until(async {
            let _ = stopped.await;
        }));
        WorkerHandle {
            stop: Some(stop),
            task,
        }
    }
}

/// A [`Worker`] running on its own task, made by [`Worker::spawn`].
#[derive(Debug)]
pub struct WorkerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<WorkerReport>,
}

impl WorkerHandle {
    /// Stops claiming, lets the deliveries in flight finish (for up to the shutdown
    /// timeout), hands back the rest, and resolves to what the worker did.
    pub async fn shutdown(mut self) -> WorkerReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(report) => report,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => WorkerReport::default(),
        }
    }

    /// Whether the worker's task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<S> std::fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How far ahead of its handlers a worker claims: what they start within this horizon
/// at the pace they run, so that a replica with slow handlers leaves the backlog to
/// the others and one with quick handlers still claims in large batches.
const CLAIM_HORIZON: Duration = Duration::from_millis(100);

/// A moving average of how long handlers take (nanoseconds; 0 before the first one).
#[derive(Debug, Default)]
struct Pace {
    mean_nanos: AtomicU64,
}

impl Pace {
    fn record(&self, took: Duration) {
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        let _ = self
            .mean_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                Some(if mean == 0 {
                    took
                } else {
                    // Weight 1/8 for the newest, in integers that cannot overflow.
                    (mean / 8 * 7).saturating_add(took / 8).max(1)
                })
            });
    }

    /// How many deliveries may wait for a handler: none until the handlers' pace is
    /// known, then what `concurrency` handlers start within the horizon, at most `max`.
    fn prefetch(&self, concurrency: usize, max: usize) -> usize {
        let mean = self.mean_nanos.load(Ordering::Relaxed);
        if mean == 0 {
            return 0;
        }
        let horizon = CLAIM_HORIZON.as_nanos() as u64;
        let per_handler = usize::try_from(horizon / mean).unwrap_or(usize::MAX);
        per_handler.saturating_mul(concurrency).min(max)
    }
}

/// Everything one delivery's task needs besides the service.
struct Job {
    inbox: Arc<dyn InboxAdmin>,
    /// One permit per running handler.
    handlers: Arc<Semaphore>,
    settings: Settings,
    acks: mpsc::UnboundedSender<Ack>,
    cancelled: watch::Receiver<bool>,
    stopping: watch::Receiver<bool>,
    counts: Arc<Counts>,
    pace: Arc<Pace>,
    order: Option<Arc<Sequencer>>,
}

/// A processed delivery to acknowledge, and whom to tell once that is stored.
type Ack = (Delivery, Option<oneshot::Sender<bool>>);

/// How long an idle worker sleeps: the poll interval, or until the first deferred
/// delivery of a line is due back.
fn idle(poll_interval: Duration, order: Option<&Sequencer>) -> Duration {
    let due = order.and_then(Sequencer::next_due);
    due.map_or(poll_interval, |due| {
        let until = due.saturating_duration_since(tokio::time::Instant::now());
        until.clamp(Duration::from_millis(1), poll_interval)
    })
}

/// `order` with the live events a previous process left lined up.
async fn seeded(inbox: &dyn InboxAdmin, order: Sequencer) -> Sequencer {
    match inbox.list(ListFilter::Live, SEED_LIMIT).await {
        Ok(live) => order.seed(&live),
        Err(error) => tracing::warn!(
            %error,
            "could not read the live events at start: events left by a previous process may be handled out of order"
        ),
    }
    order
}

impl Job {
    async fn run<S>(self, mut service: S, delivery: Delivery)
    where
        S: Service<Delivery> + Send + 'static,
        S::Response: Send + 'static,
        S::Error: Into<BoxError> + Send + 'static,
        S::Future: Send + 'static,
    {
        let mut cancelled = self.cancelled.clone();
        let mut stopping = self.stopping.clone();
        // The lease is extended every third of it while the delivery waits or runs. The
        // timer is made only when needed: most handlers start at once and finish
        // within their first poll, and then cost no timer at all.
        let lease_timer = || lease_timer(self.settings.lease);
        let mut extend = None;
        // Once the worker stops, nothing waiting starts.
        if *stopping.borrow() {
            self.release(&delivery).await;
            return;
        }
        // In order: wait for the turn of this delivery's key, or go back for later.
        let mut turn = None;
        if let Some(order) = &self.order {
            if let Some(key) = order.key(delivery.body()) {
                if !self.take_turn(order, &key, &delivery).await {
                    return;
                }
                turn = Some(Running {
                    order,
                    key,
                    id: delivery.id().clone(),
                    settled: Settled::Unknown,
                });
            }
        }
        let permit = match Arc::clone(&self.handlers).try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return,
            // Wait for a handler, keeping the lease meanwhile.
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let timer = extend.get_or_insert_with(lease_timer);
                loop {
                    tokio::select! {
                        biased;
                        () = async { drop(stopping.wait_for(|stopping| *stopping).await) } => {
                            self.release(&delivery).await;
                            return;
                        }
                        permit = Arc::clone(&self.handlers).acquire_owned() => match permit {
                            Ok(permit) => break permit,
                            Err(_) => return,
                        },
                        _ = timer.tick() => self.extend(&delivery).await,
                    }
                }
            }
        };
        // Tokio's clock, which tests can pause.
        let started = tokio::time::Instant::now();
        let given = delivery.clone();
        let mut handler = std::pin::pin!(CatchUnwind {
            future: async move {
                std::future::poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                service.call(given).await.map_err(Into::into)
            }
        });
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(handler.as_mut().poll(cx)));
        let outcome = match first.await {
            std::task::Poll::Ready(outcome) => outcome,
            std::task::Poll::Pending => {
                let timer = extend.get_or_insert_with(lease_timer);
                loop {
                    tokio::select! {
                        outcome = handler.as_mut() => break outcome,
                        _ = timer.tick() => self.extend(&delivery).await,
                        () = async { drop(cancelled.wait_for(|cancelled| *cancelled).await) } => {
                            self.release(&delivery).await;
                            return;
                        }
                    }
                }
            }
        };
        drop(permit);
        self.pace.record(started.elapsed());
        crate::metrics::handler_finished(started.elapsed());
        let error = match outcome {
            Some(Ok(_)) => {
                self.counts.processed.fetch_add(1, Ordering::Relaxed);
                crate::metrics::delivery("processed");
                let Some(turn) = &mut turn else {
                    let _ = self.acks.send((delivery, None));
                    return;
                };
                // The next of its key goes only once this acknowledgement is stored.
                let (stored, acked) = oneshot::channel();
                let _ = self.acks.send((delivery, Some(stored)));
                if acked.await == Ok(true) {
                    turn.settled = Settled::Gone;
                }
                return;
            }
            Some(Err(error)) => error,
            None => {
                let settled = self.retry(&delivery, None, "the handler panicked").await;
                if let Some(turn) = &mut turn {
                    turn.settled = settled;
                }
                return;
            }
        };
        let reason = error.to_string();
        let settled = if find_in_chain::<Abort>(&*error).is_some() {
            self.abort(&delivery, &reason).await
        } else {
            let after = find_in_chain::<RetryAfter>(&*error).map(|r| r.after);
            self.retry(&delivery, after, &reason).await
        };
        if let Some(turn) = &mut turn {
            turn.settled = settled;
        }
    }

    /// Waits for the turn of `delivery` in its key's line: true when it may run; false
    /// when it went back to the inbox (deferred, or released at shutdown).
    async fn take_turn(&self, order: &Sequencer, key: &str, delivery: &Delivery) -> bool {
        let mut stopping = self.stopping.clone();
        let mut extend = None;
        loop {
            let delay = match order.turn(key, delivery.id()) {
                Turn::Go => return true,
                Turn::Defer(delay) => delay,
                Turn::Verify(ahead) => match tokio::select! {
                    biased;
                    () = async { drop(stopping.wait_for(|stopping| *stopping).await) } => {
                        order.deferred(key, delivery.id(), Some(Duration::ZERO));
                        self.release(delivery).await;
                        return false;
                    }
                    found = self.inbox.get(&ahead) => found,
                } {
                    Ok(Some(event)) if event.state != EventState::Dead => continue,
                    Ok(_) => {
                        order.forget(key, &ahead);
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, inbox_id = %ahead, "could not look up an earlier event of a key; deferring the later ones");
                        RECHECK
                    }
                },
                Turn::Wait(mut told) => {
                    let timer = extend.get_or_insert_with(|| lease_timer(self.settings.lease));
                    loop {
                        tokio::select! {
                            biased;
                            () = async { drop(stopping.wait_for(|stopping| *stopping).await) } => {
                                order.deferred(key, delivery.id(), Some(Duration::ZERO));
                                self.release(delivery).await;
                                return false;
                            }
                            _ = &mut told => break,
                            _ = timer.tick() => self.extend(delivery).await,
                        }
                    }
                    continue;
                }
            };
            let deferred = self.defer(delivery, delay).await;
            order.deferred(key, delivery.id(), deferred.then_some(delay));
            return false;
        }
    }

    /// Hands a delivery whose key is busy back to the inbox, due after `delay`.
    /// Whether it went back.
    async fn defer(&self, delivery: &Delivery, delay: Duration) -> bool {
        match self.inbox.defer(delivery, delay).await {
            Ok(true) => {
                self.counts.deferred.fetch_add(1, Ordering::Relaxed);
                crate::metrics::delivery("deferred");
                true
            }
            Ok(false) => {
                tracing::debug!(inbox_id = %delivery.id(), "a delivery's lease had lapsed before it was deferred");
                false
            }
            Err(error) => {
                tracing::warn!(%error, inbox_id = %delivery.id(), "could not defer a delivery; its lease will");
                false
            }
        }
    }

    async fn extend(&self, delivery: &Delivery) {
        match self.inbox.extend_lease(delivery, self.settings.lease).await {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                inbox_id = %delivery.id(),
                "a delivery's lease lapsed while its handler ran; another worker may run it too"
            ),
            Err(error) => tracing::warn!(
                %error, inbox_id = %delivery.id(),
                "could not extend a delivery's lease; trying again"
            ),
        }
    }

    /// Schedules the next attempt after `after`, or after the backoff.
    async fn retry(&self, delivery: &Delivery, after: Option<Duration>, reason: &str) -> Settled {
        let delay = after.unwrap_or_else(|| {
            backoff(
                self.settings.backoff_base,
                self.settings.backoff_max,
                delivery.attempt(),
            )
        });
        let (id, attempt) = (delivery.id(), delivery.attempt());
        match self.inbox.retry(delivery, delay, reason).await {
            Ok(RetryOutcome::Dead) => {
                self.counts.dead_lettered.fetch_add(1, Ordering::Relaxed);
                crate::metrics::delivery("dead_lettered");
                tracing::error!(inbox_id = %id, attempt, %reason, "event failed its last attempt; moved to the dead letters");
                Settled::Gone
            }
            Ok(RetryOutcome::Scheduled) => {
                self.counts.retried.fetch_add(1, Ordering::Relaxed);
                crate::metrics::delivery("retried");
                tracing::warn!(inbox_id = %id, attempt, %reason, retry_in_ms = delay.as_millis() as u64, "event failed; will retry");
                Settled::Again(delay)
            }
            Ok(_) => {
                tracing::warn!(inbox_id = %id, attempt, %reason, "event failed after its lease lapsed; another worker has it");
                Settled::Unknown
            }
            Err(error) => {
                tracing::warn!(%error, inbox_id = %id, attempt, "could not schedule a retry; the lease will deliver it again");
                Settled::Unknown
            }
        }
    }

    /// Hands an unfinished delivery back at shutdown: due again at once, its attempt
    /// not counted (it did not fail). Counted as released only when it went back.
    async fn release(&self, delivery: &Delivery) {
        match self.inbox.release(delivery).await {
            Ok(true) => {
                self.counts.released.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {
                tracing::debug!(inbox_id = %delivery.id(), "a delivery's lease had lapsed before it was handed back")
            }
            Err(error) => {
                tracing::warn!(%error, inbox_id = %delivery.id(), "could not hand a delivery back; its lease will")
            }
        }
    }

    /// Moves a delivery its handler refused for good to the dead letters.
    async fn abort(&self, delivery: &Delivery, reason: &str) -> Settled {
        let (id, attempt) = (delivery.id(), delivery.attempt());
        match self.inbox.dead_letter(delivery, reason).await {
            Ok(true) => {
                self.counts.dead_lettered.fetch_add(1, Ordering::Relaxed);
                crate::metrics::delivery("dead_lettered");
                tracing::error!(inbox_id = %id, attempt, %reason, "the handler refused the event for good; moved to the dead letters");
                Settled::Gone
            }
            Ok(false) => {
                tracing::warn!(inbox_id = %id, attempt, %reason, "event refused after its lease lapsed; another worker has it");
                Settled::Unknown
            }
            Err(error) => {
                tracing::warn!(%error, inbox_id = %id, attempt, "could not move a refused event to the dead letters; the lease will deliver it again");
                Settled::Unknown
            }
        }
    }
}

/// A delivery running as the oldest of its key: on drop, however the run ended, its
/// line learns how its claim was settled.
struct Running<'a> {
    order: &'a Sequencer,
    key: String,
    id: super::EventId,
    settled: Settled,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let settled = std::mem::replace(&mut self.settled, Settled::Unknown);
        self.order.finish(&self.key, &self.id, settled);
    }
}

/// A timer for extending a lease every third of it, first a third from now.
fn lease_timer(lease: Duration) -> tokio::time::Interval {
    let period = lease / 3;
    let mut extend = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    extend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    extend
}

/// A handler's error that moves its delivery to the dead letters at once, with this
/// reason, whatever attempts it has left: for an event no retry can fix, such as valid
/// JSON that is not what the application expects (apalis calls it `Abort`).
///
/// The worker finds it in the error or anywhere in its [`source`](std::error::Error::source)
/// chain, so it survives being wrapped.
///
/// ```
/// use genesys_webhook::inbox::{Abort, Delivery};
///
/// async fn handle(delivery: Delivery) -> Result<(), Abort> {
///     let _order: serde_json::Value = serde_json::from_slice(delivery.body())
///         .map_err(|e| Abort::new(format!("not JSON: {e}")))?;
///     Ok(())
/// }
/// # let _ = tower::service_fn(handle);
/// ```
#[derive(Debug, Clone)]
pub struct Abort {
    reason: String,
}

impl Abort {
    /// Dead-letters the delivery with `reason`, which operators see in the dead letters.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Abort {}

/// A handler's error that schedules its delivery's next attempt after a given delay
/// instead of the worker's backoff: for a downstream that said when to come back (a
/// `Retry-After`). The attempt counts as any failure does.
///
/// ```
/// use std::time::Duration;
/// use genesys_webhook::inbox::RetryAfter;
///
/// let error = RetryAfter::new(Duration::from_secs(20), "rate limited by the CRM");
/// assert_eq!(error.after(), Duration::from_secs(20));
/// ```
#[derive(Debug, Clone)]
pub struct RetryAfter {
    after: Duration,
    reason: String,
}

impl RetryAfter {
    /// Retries after `after`, keeping `reason` for operators.
    pub fn new(after: Duration, reason: impl Into<String>) -> Self {
        Self {
            after,
            reason: reason.into(),
        }
    }

    /// How long the next attempt waits.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl std::fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (retry in {} s)", self.reason, self.after.as_secs())
    }
}

impl std::error::Error for RetryAfter {}

/// The first error of type `E` in `error` and its sources.
fn find_in_chain<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

pin_project_lite::pin_project! {
    /// Resolves to the output of `future`, or to `None` when polling it panicked: a
    /// handler's panic fails its delivery instead of the worker.
    struct CatchUnwind<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let future = self.project().future;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Some(output)),
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}

/// How often a running worker reads the inbox's depth for the metrics.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// Reads the inbox's depth for the `genesys_webhook_inbox_events` gauge while the
/// worker runs (with the `metrics` feature; otherwise it ends at once).
async fn report_depth(inbox: Arc<dyn InboxAdmin>) {
    if !cfg!(feature = "metrics") {
        return;
    }
    loop {
        if let Ok(stats) = inbox.stats().await {
            crate::metrics::inbox_depth(stats.pending, stats.in_flight, stats.dead);
        }
        tokio::time::sleep(DEPTH_EVERY).await;
    }
}

/// Sends acknowledgements as they come: those that arrive while one is being sent go
/// together in the next one.
async fn acknowledge(inbox: Arc<dyn InboxAdmin>, mut queued: mpsc::UnboundedReceiver<Ack>) {
    let (mut batch, mut deliveries, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
    while queued.recv_many(&mut batch, ACK_BATCH).await > 0 {
        for (delivery, told) in batch.drain(..) {
            deliveries.push(delivery);
            waiting.extend(told);
        }
        let stored = match inbox.ack_all(&deliveries).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, events = deliveries.len(), "could not acknowledge processed events; they will be delivered again");
                false
            }
        };
        for told in waiting.drain(..) {
            let _ = told.send(stored);
        }
        deliveries.clear();
    }
}

/// Backs off after failed claims (an unreachable store), and says so at WARN once,
/// then at most once a minute, and once more when claims work again.
#[derive(Default)]
struct ClaimFailures {
    failures: u32,
    last_warning: Option<Instant>,
}

impl ClaimFailures {
    fn failed(&mut self, error: &super::InboxError) -> Duration {
        self.failures += 1;
        let pause = CLAIM_BACKOFF
            .saturating_mul(1 << (self.failures - 1).min(6))
            .min(CLAIM_BACKOFF_MAX);
        let due = self
            .last_warning
            .is_none_or(|at| at.elapsed() >= CLAIM_WARN_EVERY);
        if due {
            self.last_warning = Some(Instant::now());
            tracing::warn!(%error, failures = self.failures, retry_in_ms = pause.as_millis() as u64, "inbox claim failed; backing off (logged at most once a minute)");
        } else {
            tracing::debug!(%error, failures = self.failures, "inbox claim failed");
        }
        pause
    }

    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "inbox claims work again");
            self.failures = 0;
            self.last_warning = None;
        }
    }
}

/// `base` doubled for each attempt after the first, at most `max`, then a random
/// point between half of that and all of it.
fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let full = base
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(max);
    full / 2 + full.mul_f64(random_unit() / 2.0)
}

/// A number in `[0, 1)`, from the operating system's randomness behind `RandomState`.
fn random_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_within_its_bounds() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempt in 1..=10 {
            let full = base.saturating_mul(1 << (attempt - 1)).min(max);
            for _ in 0..50 {
                let wait = backoff(base, max, attempt);
                assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
            }
        }
        assert_eq!(backoff(Duration::ZERO, Duration::ZERO, 3), Duration::ZERO);
    }

    #[test]
    #[tracing_test::traced_test]
    fn failing_claims_back_off_and_warn_once_a_minute_not_each_time() {
        let mut claims = ClaimFailures::default();
        let error = crate::inbox::InboxError::unavailable("connection refused");
        let pauses: Vec<u64> = (0..8).map(|_| claims.failed(&error).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60]);
        logs_assert(|lines| {
            let warnings = lines.iter().filter(|l| l.contains(" WARN ")).count();
            (warnings == 1)
                .then_some(())
                .ok_or(format!("{warnings} warnings"))
        });
        claims.recovered();
        assert!(logs_contain("inbox claims work again"));
        assert_eq!(claims.failed(&error), Duration::from_secs(1));
    }
}
