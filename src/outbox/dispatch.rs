//! The dispatcher: delivers the outbox rows that fell due, records what happened, and
//! sleeps until the next one.
//!
//! Delivery is at-least-once. A row is marked `sent` only after its channel accepted
//! the message, so a crash (or a failed store write) between the two sends it again on
//! the next pass; the repeat carries the same key (SMTP Message-ID `<key@rally>`,
//! webhook `Idempotency-Key`) so receivers can recognise it. The store is synced after
//! every round of finished deliveries: sled keeps writes in memory until a flush, so
//! without it a mark would wait for the writer's next commit, and a kill before that
//! would send every message delivered since then again. Enqueueing is exactly-once:
//! the row is written in the transaction of the step that decided to send it.
//!
//! Rows are expected to be appended with increasing sequence numbers (see
//! [`Store::outbox_last`]) and, once written, changed only by the dispatcher. Every row
//! below the oldest open one (waiting, or held) is final, so a pass scans from there
//! rather than from the start of history.
//!
//! Channels are isolated (SPEC §2.6): each has its own lane (concurrency and rate, see
//! `lanes`) and its own share of rows taken from the store, `per_channel_queue`. There
//! is no limit across channels, so a broadcast of 100k emails, or a relay that times
//! out on every one of them, fills only the email channel's share; a pass goes on past
//! those rows and finds the escalation webhook behind them.
//!
//! A row whose channel a reload removed is `held`, not failed: kept as it is until a
//! reload brings the channel back, when it is `pending` again.
//!
//! Every change of a row's status is written with the count of what it was (sent,
//! failed, retried…; `metrics::deliveries`) in one atomic write, decided from the row
//! as stored, so a crash never splits them and nothing is counted twice.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::lanes::Lanes;
use super::retry::{settle, DispatchConfig};
use super::row::{OutboxRow, Status};
use crate::messaging::Channels;
use crate::metrics::deliveries::{self, Delivery};
use crate::store::{Store, StoreError};

mod held;
mod scan;

use held::hold;
pub use held::RequeueError;
use scan::{LowWater, Pass};

/// Rows read from the store at a time while scanning.
const PAGE: usize = 256;
/// The longest the dispatcher sleeps without looking again, so a clock that jumped
/// (a suspended machine) costs at most this much delay.
const MAX_NAP: Duration = Duration::from_secs(60);
/// How long to wait before scanning again after the store failed to answer.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// The dispatcher's notion of now: the real clock in the daemon, a controlled one in
/// tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    /// Replaced whole on a rule reload; a delivery uses the set current when it starts.
    channels: RwLock<Arc<Channels>>,
    /// `settings.timezone`, whose days the deliveries are counted in; replaced on a
    /// rule reload like the channels.
    zone: RwLock<Tz>,
    config: DispatchConfig,
    lanes: Lanes,
    wake: Arc<Notify>,
    now: Clock,
    /// Rows being delivered, with their channel, so no pass starts one twice and each
    /// channel's share is counted. A std `Mutex`: held only to look up, add or remove,
    /// never across an await.
    in_flight: Mutex<HashMap<u64, String>>,
    /// Where the next scan starts.
    low_water: Mutex<LowWater>,
    /// One manual retry at a time, so two requests for one message queue it once.
    requeue: Mutex<()>,
    /// Rows that do not decode, reported once each rather than on every pass.
    corrupt: Mutex<HashSet<u64>>,
    /// Told of every row whose delivery ended (sent, failed, suppressed) once that is
    /// stored: a cluster node records it in the partition's stream (`cluster/outbox.rs`).
    settled: RwLock<Option<Settled>>,
}

/// See [`Dispatcher::on_settled`].
pub type Settled = Arc<dyn Fn(&OutboxRow) + Send + Sync>;

impl Dispatcher {
    /// A dispatcher on the real clock.
    pub fn new(store: Arc<Store>, channels: Arc<Channels>, config: DispatchConfig) -> Dispatcher {
        Dispatcher::with_clock(store, channels, config, Arc::new(Utc::now))
    }

    /// A dispatcher whose "now" (what is due; when a row was sent; when to retry) is
    /// `now`. It still sleeps and paces in real time.
    pub fn with_clock(
        store: Arc<Store>,
        channels: Arc<Channels>,
        config: DispatchConfig,
        now: Clock,
    ) -> Dispatcher {
        let lanes = Lanes::new(config.per_channel_concurrency, config.per_channel_rate);
        Dispatcher {
            inner: Arc::new(Inner {
                store,
                channels: RwLock::new(channels),
                zone: RwLock::new(Tz::UTC),
                config,
                lanes,
                wake: Arc::new(Notify::new()),
                now,
                in_flight: Mutex::new(HashMap::new()),
                low_water: Mutex::new(LowWater {
                    at: 0,
                    reopened: None,
                }),
                requeue: Mutex::new(()),
                corrupt: Mutex::new(HashSet::new()),
                settled: RwLock::new(None),
            }),
        }
    }

    /// Call `notify_one()` on it after committing outbox rows: the dispatcher looks at
    /// once instead of at its next wake-up. A poke while it is busy is not lost.
    pub fn notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.wake)
    }

    /// Uses `channels` for deliveries started from now on (after a rule reload), and
    /// looks at once: rows of a channel the reload removed are held, rows of one it
    /// brought back resume.
    pub fn set_channels(&self, channels: Arc<Channels>) {
        *self
            .inner
            .channels
            .write()
            .unwrap_or_else(PoisonError::into_inner) = channels;
        self.inner.wake.notify_one();
    }

    /// Calls `settled` with every row whose delivery ended (its status no longer open),
    /// once the store holds it.
    pub fn on_settled(&self, settled: Settled) {
        *self
            .inner
            .settled
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(settled);
    }

    /// Counts deliveries from now on in the days of `zone` (`settings.timezone`; UTC
    /// until this is called).
    pub fn set_timezone(&self, zone: Tz) {
        *self
            .inner
            .zone
            .write()
            .unwrap_or_else(PoisonError::into_inner) = zone;
    }

    /// Delivers due rows until `shutdown` completes. Deliveries already under way then
    /// get `config.shutdown_grace` to finish; any still running after that are
    /// abandoned and go out again after a restart.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let share = self.inner.config.per_channel_queue.max(1);
        let mut tasks: JoinSet<Option<DateTime<Utc>>> = JoinSet::new();
        let mut next_due = None;
        let mut truncated = BTreeSet::new();
        let mut rescan = true;
        loop {
            if rescan {
                match self.start_due(share, &mut tasks) {
                    Ok(pass) => (next_due, truncated) = (pass.next_due, pass.truncated),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the outbox; retrying");
                        next_due = Some((self.inner.now)() + STORE_RETRY);
                    }
                }
            }
            let nap = self.nap(next_due);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = self.inner.wake.notified() => rescan = true,
                () = nap => rescan = true,
                Some(done) = tasks.join_next() => {
                    let mut done = Some(done);
                    let mut settled = 0;
                    while let Some(result) = done {
                        settled += 1;
                        if let Some(retry) = finished(result) {
                            next_due = Some(next_due.map_or(retry, |due| due.min(retry)));
                        }
                        done = tasks.try_join_next();
                    }
                    self.sync_outcomes(settled).await;
                    // A channel left rows over for lack of room: look again once it has
                    // room for a good batch, not after every single delivery.
                    let counts = self.inner.in_flight_by_channel();
                    rescan = truncated
                        .iter()
                        .any(|channel| counts.get(channel).copied().unwrap_or(0) <= share / 2);
                }
            }
        }
        let grace = self.inner.config.shutdown_grace;
        let mut settled = 0;
        let finish = async {
            while let Some(result) = tasks.join_next().await {
                finished(result);
                settled += 1;
            }
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            tracing::warn!(
                abandoned = tasks.len(),
                "deliveries still running at shutdown; they will be retried after a restart"
            );
            tasks.shutdown().await;
        }
        self.sync_outcomes(settled).await;
    }

    /// One pass: starts every row due now, waits until each attempt is recorded, and
    /// returns how many were attempted. Rows an attempt puts back for a retry wait for
    /// a later pass.
    pub async fn drain_once(&self) -> usize {
        let mut tasks = JoinSet::new();
        let started = match self.start_due(usize::MAX, &mut tasks) {
            Ok(pass) => pass.started,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                0
            }
        };
        while let Some(result) = tasks.join_next().await {
            finished(result);
        }
        self.sync_outcomes(started).await;
        started
    }

    /// Makes the outcomes of `settled` finished deliveries durable (one sync for all).
    async fn sync_outcomes(&self, settled: usize) {
        if settled == 0 {
            return;
        }
        let store = Arc::clone(&self.inner.store);
        match tokio::task::spawn_blocking(move || store.sync()).await {
            Ok(Ok(())) => tracing::debug!(settled, "delivery outcomes synced"),
            Ok(Err(e)) => tracing::error!(
                settled, error = %e,
                "cannot sync delivery outcomes; after a crash these messages may be sent again"
            ),
            Err(e) => tracing::error!(settled, error = %e, "syncing delivery outcomes panicked"),
        }
    }

    /// Scans for due rows and starts them on `tasks`, up to `share` in flight on each
    /// channel.
    fn start_due(
        &self,
        share: usize,
        tasks: &mut JoinSet<Option<DateTime<Utc>>>,
    ) -> Result<Pass, StoreError> {
        let now = (self.inner.now)();
        let mut due = Vec::new();
        let pass = self.inner.scan(now, share, &mut due)?;
        for row in due {
            tasks.spawn(attempt(Arc::clone(&self.inner), row));
        }
        Ok(pass)
    }

    /// Sleeps until `next_due` (at most [`MAX_NAP`]); never, when nothing waits.
    async fn nap(&self, next_due: Option<DateTime<Utc>>) {
        match next_due {
            Some(due) => {
                let wait = (due - (self.inner.now)())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                tokio::time::sleep(wait.min(MAX_NAP)).await;
            }
            None => std::future::pending().await,
        }
    }
}

impl Inner {
    fn decode(&self, seq: u64, bytes: &[u8]) -> Option<OutboxRow> {
        match OutboxRow::decode(seq, bytes) {
            Ok(row) => Some(row),
            Err(e) => {
                if lock(&self.corrupt).insert(seq) {
                    tracing::error!(error = %e, "skipping an outbox row that cannot be read");
                }
                None
            }
        }
    }

    fn channels(&self) -> Arc<Channels> {
        Arc::clone(&self.channels.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Delivers one row and records the outcome; returns the row's retry time, if any.
async fn attempt(inner: Arc<Inner>, row: OutboxRow) -> Option<DateTime<Utc>> {
    let seq = row.seq;
    // Out of flight however this ends, panics included.
    let _guard = InFlight { inner: &inner, seq };
    // The set current when the delivery starts; a reload meanwhile applies to the next.
    let channels = inner.channels();
    let Some(retry) = channels.retry(&row.channel) else {
        hold(&inner, row);
        return None;
    };
    let lane = inner.lanes.get(&row.channel);
    let permit = lane.enter().await;
    // Consent is checked again as the message goes out (SPEC §2.6): a member who
    // unsubscribed or left since it was queued (say, while quiet hours held it) gets
    // nothing.
    if row.marketing {
        match withheld_consent(&inner.store, &row) {
            Ok(None) => {}
            Ok(Some(why)) => {
                let row = OutboxRow {
                    status: Status::Suppressed,
                    last_error: Some(format!("member {why} before it went out")),
                    ..row
                };
                tracing::info!(seq, key = ?row.key, why, "message suppressed at sending");
                record(&inner, &row);
                return None;
            }
            Err(error) => {
                // Not knowing is not consent: try again shortly.
                tracing::error!(seq, %error, "cannot read the member to check consent");
                return Some((inner.now)() + chrono::Duration::seconds(5));
            }
        }
    }
    let result = channels.deliver(&row.to_outgoing()).await;
    drop(permit);
    let row = settle(
        row,
        result,
        (inner.now)(),
        &inner.config,
        &retry,
        &mut rand::thread_rng(),
    );
    report(&row);
    record(&inner, &row);
    (row.status == Status::Pending).then_some(row.due)
}

/// Why the member of a marketing row withholds consent now, if they do.
fn withheld_consent(
    store: &Store,
    row: &OutboxRow,
) -> Result<Option<&'static str>, crate::store::StoreError> {
    let Some(id) = &row.member else {
        return Ok(None);
    };
    Ok(store
        .member(id)?
        .as_ref()
        .and_then(crate::policy::withheld_consent))
}

/// Stores what became of a row, and counts it in the same write.
fn record(inner: &Inner, row: &OutboxRow) {
    let seq = row.seq;
    let written = row
        .encode()
        .map_err(|e| e.to_string())
        .and_then(|bytes| write_counted(inner, row, &bytes).map_err(|e| e.to_string()));
    match written {
        Ok(true) => {
            if !row.status.is_open() {
                let settled = inner
                    .settled
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(settled) = settled {
                    settled(row);
                }
            }
        }
        // Only retention removes rows, and only final ones, which no delivery holds.
        Ok(false) => tracing::warn!(
            seq,
            "a message was removed by retention while it was being delivered"
        ),
        Err(error) => tracing::error!(
            seq,
            %error,
            "cannot record a delivery attempt; the message may be sent again"
        ),
    }
}

/// Writes `row` (encoded as `bytes`) over the stored row and, in the same atomic
/// write, counts what that change of status was in the day's deliveries
/// (`settings.timezone`); returns whether the row was still there.
fn write_counted(inner: &Inner, row: &OutboxRow, bytes: &[u8]) -> Result<bool, StoreError> {
    let zone = *inner.zone.read().unwrap_or_else(PoisonError::into_inner);
    write_counted_in(&inner.store, zone, (inner.now)(), row, bytes, |_| true)
}

/// Records in `store` how the delivery of `row` ended, as a dispatcher that delivered
/// it would have: the row and its day's count in one write, counted only if the stored
/// row's delivery had not ended yet. A cluster node replaying its partition learns
/// this way what the partition's earlier owner delivered (`cluster/outbox.rs`).
/// Returns whether the row was still there (retention may have removed it).
pub fn record_settled(store: &Store, zone: Tz, row: &OutboxRow) -> Result<bool, StoreError> {
    let bytes = row
        .encode()
        .map_err(|e| StoreError::corrupt("outbox", &row.seq.to_be_bytes(), e))?;
    let now = row.sent_at.unwrap_or(row.due);
    write_counted_in(store, zone, now, row, &bytes, Status::is_open)
}

/// [`write_counted`] on `store`, counted in the days of `zone`, `now` being when an
/// attempt that did not send ended; counted only if `count_if` holds of the stored
/// row's status (the row is written either way).
fn write_counted_in(
    store: &Store,
    zone: Tz,
    now: DateTime<Utc>,
    row: &OutboxRow,
    bytes: &[u8],
    count_if: impl Fn(Status) -> bool,
) -> Result<bool, StoreError> {
    let seq = row.seq;
    let at = row
        .sent_at
        .filter(|_| row.status == Status::Sent)
        .unwrap_or(now);
    let name = deliveries::row_name(crate::localtime::local_day(at, zone));
    // Set when the count row does not read: the row is written without its count
    // rather than not at all (which would send the message again).
    let unreadable = Mutex::new(None);
    let written = store.outbox_update_counted(seq, bytes, &name, |before, current| {
        let before = OutboxRow::decode(seq, before).ok()?.status;
        if !count_if(before) {
            return None;
        }
        let delivery = Delivery::of(before, row.status)?;
        deliveries::counted(current, &row.channel, delivery)
            .map_err(|e| *lock(&unreadable) = Some(e))
            .ok()
    });
    if let Some(error) = lock(&unreadable).take() {
        tracing::error!(seq, row = %name, %error, "a delivery count does not read; this delivery is not counted");
    }
    written
}

struct InFlight<'a> {
    inner: &'a Inner,
    seq: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.inner.in_flight).remove(&self.seq);
    }
}

/// One log line per attempt: quiet on success, louder the worse it went.
fn report(row: &OutboxRow) {
    let (seq, key, channel, attempts) = (row.seq, &row.key, &row.channel, row.attempts);
    let error = row.last_error.as_deref().unwrap_or("");
    match row.status {
        Status::Sent => tracing::debug!(seq, %key, %channel, attempts, "message sent"),
        Status::Pending => tracing::warn!(
            seq, %key, %channel, attempts, retry_at = %row.due, error,
            "delivery failed; will retry"
        ),
        Status::Failed => tracing::error!(
            seq, %key, %channel, attempts, error,
            "delivery failed; giving up"
        ),
        // `settle` produces none of these.
        Status::Deferred | Status::Capped | Status::Suppressed | Status::Held => {}
    }
}

/// A finished delivery task's retry time; a panicked task is reported.
fn finished(
    result: Result<Option<DateTime<Utc>>, tokio::task::JoinError>,
) -> Option<DateTime<Utc>> {
    result.unwrap_or_else(|e| {
        if e.is_panic() {
            tracing::error!(error = %e, "a delivery task panicked");
        }
        None
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single insert, remove or assignment: a panic
    // elsewhere cannot leave the data half-changed.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
