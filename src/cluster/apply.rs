//! The owner's side of a partition: read its subject in stream order and apply each
//! event through the same [`Runner`] `rally run` and `rally import` use, committing
//! each group together with the stream sequence of its last message (docs/cluster.md,
//! "Applying").
//!
//! Invariants:
//! - the store's `cluster.applied` row and the state it describes are written in one
//!   batch, so after any crash the store is exactly "the partition's messages up to
//!   that sequence, applied in order";
//! - a group is committed only while this node holds the partition's lease
//!   ([`Leases::holds`], checked right before the commit); a group found fenced is
//!   dropped with the runner that holds it, and the applier stops.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::Message;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use thiserror::Error;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::gather::{self, KvGatherer, GATHERED_HEADER};
use super::outbox::{Delivering, OUTBOX_HEADER};
use super::partition::Partition;
use super::rules::{RuleFiles, RULES_HEADER, RULES_META};
use super::serving::Progress;
use super::shares;
use super::snapshot::{self, Snapshots};
use super::Node;
use crate::clock::{Clock, SystemClock};
use crate::event::{self, AtPolicy, Event};
use crate::outbox::OutboxRow;
use crate::rules::RuleSet;
use crate::runner::gather::Gathered;
use crate::runner::{Applied, Runner};
use crate::script::RandomKey;
use crate::store::{CacheSize, StepWrite, Store, StoreError};

/// The store row that records the last stream sequence applied: 8 bytes, big-endian.
pub const APPLIED_META: &str = "cluster.applied";

/// The header that carries the ingesting node's clock reading (RFC 3339).
pub const RECEIVED_HEADER: &str = "Rally-Received";

/// The header of a tick: the owner's clock reading, at which timers due by then run.
pub const TICK_HEADER: &str = "Rally-Tick";

/// Most messages in one group (one sled batch), as the daemon's writer groups.
const GROUP: usize = 128;

/// How long a partition stays quiet before its owner looks for timers that fell due
/// and, if any did, publishes a tick.
const TICK_IDLE: Duration = Duration::from_secs(1);

/// How often a busy owner looks whether the results its parked jobs wait for can be
/// had (a quiet one looks at every idle tick).
const SETTLE_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the partition store in {dir} is unreadable: {why}")]
    Corrupt { dir: String, why: String },
    #[error("NATS, {doing}: {error}")]
    Nats { doing: &'static str, error: String },
    #[error("the applier's blocking task failed: {0}")]
    Task(String),
}

/// A running applier of one partition.
pub struct Applier {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Applier {
    /// Starts applying `partition` on `node` (whose lease on it was just written).
    pub fn start(node: Arc<Node>, partition: Partition) -> Applier {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            if let Err(error) = apply(&node, partition, stopped).await {
                tracing::warn!(partition = %partition, %error, "stopped applying the partition");
                let failure = serde_json::json!({
                    "partition": partition.0,
                    "error": error.to_string(),
                    "at": crate::member::rfc3339(SystemClock.now()),
                });
                *node
                    .last_apply_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(failure);
            }
            node.serving.close(partition);
        });
        Applier { stop, task }
    }

    /// It stopped by itself (an error): the partition should be handed on.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops it and waits until its store is closed, so the partition can be opened
    /// again (sled locks a store's directory).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn apply(
    node: &Arc<Node>,
    partition: Partition,
    stopped: oneshot::Receiver<()>,
) -> Result<(), ApplyError> {
    let mut delivering = None;
    let applied = apply_and_deliver(node, partition, stopped, &mut delivering).await;
    // However applying ended, delivering ends with it, before the store closes: only
    // the partition's owner delivers its messages.
    if let Some(delivering) = delivering {
        delivering.stop().await;
    }
    applied
}

/// Applies the partition until stopped, fenced or failed, delivering its messages
/// (in `delivering`) from the moment its store has caught up with the stream.
async fn apply_and_deliver(
    node: &Arc<Node>,
    partition: Partition,
    mut stopped: oneshot::Receiver<()>,
    delivering: &mut Option<Delivering>,
) -> Result<(), ApplyError> {
    let dir = node.data.join("partitions").join(partition.dir_name());
    snapshot::remove_leftover_uploads(&node.data.join("partitions"), partition);
    let (mut runner, mut applied) = open_in_pool(node, &dir).await?;
    // A snapshot further on than this store (or a store that is not here) saves
    // replaying the stream up to it, and the only way when the stream was trimmed.
    let stored = snapshot::latest(&node.snapshots, partition)
        .await
        .map_err(|e| nats("reading the partition's snapshot", e))?;
    if stored.is_some_and(|stored| stored > applied) {
        drop(runner);
        snapshot::restore_if_newer(node, partition, &dir, applied)
            .await
            .map_err(|why| ApplyError::Corrupt {
                dir: dir.display().to_string(),
                why: format!("restoring its snapshot: {why}"),
            })?;
        (runner, applied) = open_in_pool(node, &dir).await?;
    }
    // No store this partition starts from later is older than the latest snapshot.
    let settled = stored.unwrap_or(0).min(applied);
    let claimed = shares::claim(
        &node.config,
        &node.name,
        partition,
        node.settings.partitions,
        applied,
        settled,
    )
    .await
    .map_err(|why| nats("claiming the partition's grant log", why))?;
    runner.share(claimed.shares, claimed.pending, Box::new(claimed.source));
    runner.gather_with(Box::new(KvGatherer {
        handle: tokio::runtime::Handle::current(),
        config: node.config.clone(),
        partition,
    }));
    // Results over every partition published into this one by this applier.
    let mut published = BTreeSet::new();
    let mut settled_at = Instant::now();
    let mut snapshots = Snapshots::new(stored.unwrap_or(0));
    let progress = Arc::new(Progress::new(
        runner.shared_store(),
        applied,
        Arc::clone(runner.rules()),
    ));
    progress.snapshot_stored(stored.unwrap_or(0));
    // What the stream held when we took the partition: reads wait until we have it.
    let target = last_on_subject(node, partition).await?;
    if applied >= target {
        progress.mark_caught_up();
        *delivering = Some(start_delivering(node, partition, &runner));
    }
    node.serving.open(partition, Arc::clone(&progress));
    tracing::info!(partition = %partition, applied, stream_last = target, "applying the partition");
    let deliver_policy = match applied {
        0 => DeliverPolicy::All,
        n => DeliverPolicy::ByStartSequence {
            start_sequence: n + 1,
        },
    };
    let messages = node
        .stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: partition.subject(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| nats("creating the partition's consumer", e))?;
    let mut messages = messages
        .messages()
        .await
        .map_err(|e| nats("reading the partition", e))?;
    loop {
        let first = tokio::select! {
            _ = &mut stopped => return Ok(()),
            next = messages.next() => next,
            _ = tokio::time::sleep(TICK_IDLE) => {
                runner = tick_if_due(node, partition, runner, applied).await?;
                settle_awaited(node, partition, runner.awaited(), &mut published).await;
                settled_at = Instant::now();
                continue;
            }
        };
        let first = first.ok_or_else(|| nats("reading the partition", "the consumer ended"))?;
        let mut group = vec![Delivered::read(&first.map_err(|e| nats("reading", e))?)];
        // Whatever else has already arrived joins the group, without waiting.
        while group.len() < GROUP {
            match tokio::time::timeout(Duration::ZERO, messages.next()).await {
                Ok(Some(Ok(message))) => group.push(Delivered::read(&message)),
                Ok(Some(Err(e))) => return Err(nats("reading the partition", e)),
                Ok(None) | Err(_) => break,
            }
        }
        let fence = Arc::clone(node);
        let started = Instant::now();
        let (back, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = apply_group(&mut runner, applied, &group, || {
                fence.leases.holds(partition, Instant::now())
            });
            (runner, outcome)
        })
        .await
        .map_err(|e| ApplyError::Task(e.to_string()))?;
        runner = back;
        match outcome? {
            Group::Committed { last, rejected } => {
                node.metrics.cluster_group(started.elapsed());
                applied = last;
                progress.refused(rejected);
                progress.set_rules(runner.rules());
                progress.committed(last);
                if last >= target {
                    progress.mark_caught_up();
                }
                if snapshots.due(applied, node.snapshot_every) {
                    let store = runner.shared_store();
                    if let Err(error) = snapshots.take(node, partition, store, applied).await {
                        tracing::warn!(partition = %partition, applied, %error, "cannot take a snapshot");
                    }
                }
                if settled_at.elapsed() >= SETTLE_EVERY {
                    settle_awaited(node, partition, runner.awaited(), &mut published).await;
                    settled_at = Instant::now();
                }
                match delivering {
                    Some(delivering) => delivering.committed(runner.rules()),
                    None if last >= target => {
                        *delivering = Some(start_delivering(node, partition, &runner));
                    }
                    None => {}
                }
            }
            Group::AlreadyApplied => {}
            Group::Fenced => {
                tracing::warn!(partition = %partition, applied, "lease lapsed before the commit: the group is dropped, nothing more is written");
                return Ok(());
            }
        }
    }
}

/// Publishes the results over every partition that the runner's parked draws and
/// closes wait for, those that can be had now (`gather.rs`). A failure is logged and
/// tried again later: the jobs wait meanwhile.
async fn settle_awaited(
    node: &Node,
    partition: Partition,
    awaited: Vec<String>,
    published: &mut BTreeSet<String>,
) {
    if awaited.is_empty() {
        return;
    }
    if let Err(error) = gather::settle(node, partition, &awaited, published).await {
        tracing::warn!(partition = %partition, %error, "cannot gather a result over every partition yet");
    }
}

/// [`open`] on the blocking pool.
async fn open_in_pool(node: &Node, dir: &Path) -> Result<(Runner, u64), ApplyError> {
    let (dir, rules, key, cache) = (
        dir.to_path_buf(),
        Arc::clone(&node.rules),
        node.settings.random_key(),
        node.partition_cache,
    );
    tokio::task::spawn_blocking(move || open(&dir, rules, key, cache))
        .await
        .map_err(|e| ApplyError::Task(e.to_string()))?
}

fn start_delivering(node: &Node, partition: Partition, runner: &Runner) -> Delivering {
    Delivering::start(
        node.jetstream.clone(),
        partition,
        runner.shared_store(),
        runner.rules(),
    )
}

/// Publishes a tick into the partition if a timer fell due, so that time reaches the
/// partition through the stream and every replay runs the timer at the same point.
/// The publish is fenced by the server: it expects `applied` to be the partition's
/// last sequence, so it fails if anything reached the partition since, including a
/// tick of a new owner.
async fn tick_if_due(
    node: &Node,
    partition: Partition,
    mut runner: Runner,
    applied: u64,
) -> Result<Runner, ApplyError> {
    let (runner, due) = tokio::task::spawn_blocking(move || {
        let due = runner.next_due();
        (runner, due)
    })
    .await
    .map_err(|e| ApplyError::Task(e.to_string()))?;
    let now = SystemClock.now();
    let due = due?.is_some_and(|due| due <= now);
    if !due || applied == 0 || !node.leases.holds(partition, Instant::now()) {
        return Ok(runner);
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(TICK_HEADER, crate::member::rfc3339(now).as_str());
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        applied.to_string().as_str(),
    );
    let published = node
        .jetstream
        .publish_with_headers(partition.subject(), headers, bytes::Bytes::new())
        .await;
    if let Ok(ack) = published {
        if let Err(error) = ack.await {
            tracing::debug!(partition = %partition, %error, "tick not stored (the partition moved on)");
        }
    }
    Ok(runner)
}

/// Opens (or makes) the partition's store; returns its runner and the sequence it
/// holds.
fn open(
    dir: &Path,
    rules: Arc<RuleSet>,
    key: RandomKey,
    cache: CacheSize,
) -> Result<(Runner, u64), ApplyError> {
    // The store may have been closed a moment ago (the partition handed back and
    // taken again, or replaced by its snapshot).
    let store = Store::open_after_drop_with(dir, cache)?;
    let applied = match store.meta_get(APPLIED_META)? {
        None => 0,
        Some(bytes) => decode_sequence(&bytes).ok_or_else(|| ApplyError::Corrupt {
            dir: dir.display().to_string(),
            why: format!("{APPLIED_META} is {} bytes, not 8", bytes.len()),
        })?,
    };
    // A partition that applied a rules message runs what it carried.
    let rules = match store.meta_get(RULES_META)? {
        None => rules,
        Some(bytes) => RuleFiles::from_bytes(&bytes)
            .and_then(|files| files.compile().map_err(|errors| errors.join("; ")))
            .map(Arc::new)
            .map_err(|why| ApplyError::Corrupt {
                dir: dir.display().to_string(),
                why: format!("the rules it recorded ({RULES_META}) do not load here: {why}"),
            })?,
    };
    let mut runner = Runner::new(store, rules)?;
    // Every partition store draws under the cluster's key, so any node replaying the
    // partition draws the same; the first arming stores it.
    runner.set_random_key(key);
    Ok((runner, applied))
}

fn decode_sequence(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The stream sequence of the last message on the partition's subject (0: none).
async fn last_on_subject(node: &Node, partition: Partition) -> Result<u64, ApplyError> {
    match node
        .stream
        .get_last_raw_message_by_subject(&partition.subject())
        .await
    {
        Ok(message) => Ok(message.sequence),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(e) => Err(nats("reading the partition's last sequence", e)),
    }
}

/// One message of the partition, read.
#[derive(Debug)]
pub struct Delivered {
    pub sequence: u64,
    pub body: Body,
}

/// What a message of a partition holds.
#[derive(Debug)]
pub enum Body {
    /// An event and the ingesting node's clock reading.
    Event(Event, DateTime<Utc>),
    /// A tick: the owner's clock reading, at which timers due by then run.
    Tick(DateTime<Utc>),
    /// A rule set to run from here on, and the publishing node's clock reading
    /// (`rules.rs`).
    Rules(RuleFiles, DateTime<Utc>),
    /// An outbox row as its delivery ended (`outbox.rs`).
    Settled(OutboxRow),
    /// A result over every partition (`gather.rs`): its key, the result, and the
    /// publishing node's clock reading.
    Gathered(String, Gathered, DateTime<Utc>),
    /// Why the message is neither (one not published by Rally): skipped, by every
    /// replay alike.
    Skipped(String),
}

impl Delivered {
    fn read(message: &Message) -> Delivered {
        let sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
        Delivered {
            sequence,
            body: parse(message),
        }
    }
}

fn parse(message: &Message) -> Body {
    match read_body(message) {
        Ok(body) => body,
        Err(why) => Body::Skipped(why),
    }
}

fn read_body(message: &Message) -> Result<Body, String> {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .map(|value| {
                DateTime::parse_from_rfc3339(value.as_str())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| format!("{name}: {e}"))
            })
    };
    if let Some(tick) = header(TICK_HEADER) {
        return Ok(Body::Tick(tick?));
    }
    let received =
        header(RECEIVED_HEADER).ok_or_else(|| format!("no {RECEIVED_HEADER} header"))??;
    if let Some(key) = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(GATHERED_HEADER))
    {
        let result = serde_json::from_slice(&message.payload)
            .map_err(|e| format!("{GATHERED_HEADER}: not a result: {e}"))?;
        return Ok(Body::Gathered(key.as_str().to_string(), result, received));
    }
    let rules = message
        .headers
        .as_ref()
        .is_some_and(|headers| headers.get(RULES_HEADER).is_some());
    if let Some(seq) = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(OUTBOX_HEADER))
    {
        let seq = seq
            .as_str()
            .parse::<u64>()
            .map_err(|e| format!("{OUTBOX_HEADER}: {e}"))?;
        let row = OutboxRow::decode(seq, &message.payload).map_err(|e| e.to_string())?;
        return Ok(Body::Settled(row));
    }
    if rules {
        return Ok(Body::Rules(
            RuleFiles::from_bytes(&message.payload)?,
            received,
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&message.payload).map_err(|e| format!("not JSON: {e}"))?;
    let event = event::from_value(value, AtPolicy::Required).map_err(|e| e.to_string())?;
    Ok(Body::Event(event, received))
}

/// What became of a group.
#[derive(Debug, PartialEq)]
pub enum Group {
    /// Committed, up to and including this sequence, with the events their steps
    /// refused (id, why): an API command waits for its answer.
    Committed {
        last: u64,
        rejected: Vec<(String, String)>,
    },
    /// Every message was at or below the sequence already applied.
    AlreadyApplied,
    /// The lease lapsed: nothing was committed, and the open group must be dropped
    /// with the runner.
    Fenced,
}

/// Applies the messages of `group` not yet applied (sequence above `applied`), then
/// commits them with the last sequence — if `holds()` still says the lease is ours.
pub fn apply_group(
    runner: &mut Runner,
    applied: u64,
    group: &[Delivered],
    holds: impl Fn() -> bool,
) -> Result<Group, StoreError> {
    let mut last = applied;
    // Recorded once the group is committed: the steps that queued them may be in it.
    let mut settled = Vec::new();
    let mut rejected = Vec::new();
    for delivered in group {
        if delivered.sequence <= last {
            continue;
        }
        runner.reach_message(delivered.sequence);
        match &delivered.body {
            Body::Event(event, received) => {
                if runner.now().is_none() {
                    // As `sim` and `import` start: just before the first step, so a phase
                    // change at that very instant still fires.
                    runner.arm(*received - chrono::Duration::milliseconds(1))?;
                }
                if let Applied::Rejected(why) = runner.apply_event(event, *received)? {
                    tracing::info!(event = %event.id, %why, "event refused by its step");
                    rejected.push((event.id.clone(), why));
                }
            }
            Body::Tick(at) => {
                // Before the first event there is nothing to run and no clock to move.
                if runner.now().is_some() {
                    runner.arrive(*at)?;
                }
            }
            Body::Rules(files, at) => switch_rules(runner, files, *at)?,
            Body::Settled(row) => settled.push(row),
            Body::Gathered(key, result, at) => {
                runner.gathered(key, result.clone())?;
                // The job that waited goes on now, as everything due by then.
                if runner.now().is_some() {
                    runner.run_due(*at)?;
                }
            }
            Body::Skipped(why) => {
                tracing::warn!(sequence = delivered.sequence, %why, "skipping a message that is not a Rally event");
            }
        }
        last = delivered.sequence;
    }
    if last == applied {
        return Ok(Group::AlreadyApplied);
    }
    runner.push_write(StepWrite {
        meta_put: vec![(APPLIED_META.to_string(), last.to_be_bytes().to_vec())],
        ..StepWrite::default()
    });
    if !holds() {
        return Ok(Group::Fenced);
    }
    runner.commit()?;
    let zone = runner.rules().settings.timezone;
    for row in settled {
        if let Err(error) = crate::outbox::record_settled(runner.store(), zone, row) {
            // Only a resend can come of it, with the same key.
            tracing::error!(seq = row.seq, %error, "cannot record how a delivery ended: this node may send it again");
        }
    }
    Ok(Group::Committed { last, rejected })
}

/// From here on the partition runs `files`: what fell due by `at` runs under the rules
/// before, then the new ones are swapped in and armed, as a reload of the single
/// process does, and recorded in the partition store with the group. A set this node
/// cannot compile is skipped, as every replay on a node like it skips it; one already
/// running (published twice, by two nodes that saw the same change) changes nothing.
fn switch_rules(
    runner: &mut Runner,
    files: &RuleFiles,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if runner.rules().version == files.version {
        return Ok(());
    }
    let set = match files.compile() {
        Ok(set) => Arc::new(set),
        Err(errors) => {
            tracing::warn!(version = %files.version, problems = %errors.join("; "), "a rule set in the stream does not load here: skipped");
            return Ok(());
        }
    };
    let Ok(recorded) = serde_json::to_vec(files) else {
        return Ok(());
    };
    if runner.now().is_some() {
        runner.run_due(at)?;
        runner.set_rules(set);
        runner.arm(at)?;
    } else {
        // Armed with the first event, as every fresh store is.
        runner.set_rules(set);
    }
    runner.push_write(StepWrite {
        meta_put: vec![(RULES_META.to_string(), recorded)],
        ..StepWrite::default()
    });
    tracing::info!(version = %files.version, "the partition runs new rules");
    Ok(())
}

fn nats(doing: &'static str, error: impl std::fmt::Display) -> ApplyError {
    ApplyError::Nats {
        doing,
        error: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "rules:\n  - id: p\n    trigger: { event: purchase }\n    actions:\n      - points: { amount: 10, reason: buy }\n";

    fn runner() -> Runner {
        let rules = crate::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap();
        Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap()
    }

    fn purchase(sequence: u64, id: &str) -> Delivered {
        let line = format!(
            r#"{{"id":"{id}","type":"purchase","member":"m","at":"2026-11-01T10:00:00Z"}}"#
        );
        let event = event::parse_line(&line, AtPolicy::Required).unwrap();
        let received = DateTime::parse_from_rfc3339("2026-11-01T10:00:01Z")
            .unwrap()
            .with_timezone(&Utc);
        Delivered {
            sequence,
            body: Body::Event(event, received),
        }
    }

    fn points(runner: &Runner) -> i64 {
        runner.store().member("m").unwrap().map_or(0, |m| m.points)
    }

    fn applied(runner: &Runner) -> Option<u64> {
        runner
            .store()
            .meta_get(APPLIED_META)
            .unwrap()
            .and_then(|bytes| decode_sequence(&bytes))
    }

    #[test]
    fn a_group_commits_its_steps_and_its_last_sequence_together() {
        let mut runner = runner();
        let group = [purchase(4, "a"), purchase(9, "b")];
        let outcome = apply_group(&mut runner, 0, &group, || true).unwrap();
        assert!(
            matches!(outcome, Group::Committed { last: 9, .. }),
            "{outcome:?}"
        );
        assert_eq!(points(&runner), 20);
        assert_eq!(applied(&runner), Some(9));
    }

    #[test]
    fn messages_at_or_below_the_applied_sequence_are_skipped() {
        let mut runner = runner();
        apply_group(&mut runner, 0, &[purchase(4, "a")], || true).unwrap();
        // Delivered again (a consumer restarted), plus one new message.
        let outcome = apply_group(
            &mut runner,
            4,
            &[purchase(4, "a"), purchase(5, "b")],
            || true,
        )
        .unwrap();
        assert!(
            matches!(outcome, Group::Committed { last: 5, .. }),
            "{outcome:?}"
        );
        assert_eq!(points(&runner), 20);
        let again = apply_group(&mut runner, 5, &[purchase(5, "b")], || true).unwrap();
        assert_eq!(again, Group::AlreadyApplied);
    }

    #[test]
    fn a_group_whose_lease_lapsed_commits_nothing() {
        let mut runner = runner();
        let outcome = apply_group(&mut runner, 0, &[purchase(1, "a")], || false).unwrap();
        assert_eq!(outcome, Group::Fenced);
        drop(runner.store().sync());
        assert_eq!(points(&runner), 0);
        assert_eq!(applied(&runner), None);
    }

    #[test]
    fn a_tick_runs_the_timers_due_by_its_time() {
        let yaml = "rules:\n  - id: quiet\n    trigger: { inactive: 2s }\n    actions:\n      - tag: quiet\n";
        let rules = crate::rules::from_sources(&[("rules.yaml", yaml)], &|_| None).unwrap();
        let mut runner = Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap();
        apply_group(&mut runner, 0, &[purchase(1, "a")], || true).unwrap();
        let tick = |sequence, at: &str| Delivered {
            sequence,
            body: Body::Tick(
                DateTime::parse_from_rfc3339(at)
                    .unwrap()
                    .with_timezone(&Utc),
            ),
        };
        let tags = |runner: &Runner| runner.store().member("m").unwrap().unwrap().tags;
        apply_group(&mut runner, 1, &[tick(2, "2026-11-01T10:00:02Z")], || true).unwrap();
        assert!(tags(&runner).is_empty(), "not silent for 2 s yet");
        apply_group(&mut runner, 2, &[tick(3, "2026-11-01T10:00:04Z")], || true).unwrap();
        assert_eq!(tags(&runner).into_iter().collect::<Vec<_>>(), ["quiet"]);
    }

    fn rules_message(sequence: u64, amount: u32) -> Delivered {
        let yaml = RULES.replace("amount: 10", &format!("amount: {amount}"));
        let set = crate::rules::from_sources(&[("rules.yaml", &yaml)], &|_| None).unwrap();
        let at = DateTime::parse_from_rfc3339("2026-11-01T10:00:01Z")
            .unwrap()
            .with_timezone(&Utc);
        Delivered {
            sequence,
            body: Body::Rules(RuleFiles::of(&set), at),
        }
    }

    #[test]
    fn a_rules_message_switches_the_partition_at_its_place_and_is_recorded_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let base =
            Arc::new(crate::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap());
        let (mut runner, applied) = open(
            dir.path(),
            Arc::clone(&base),
            RandomKey::default(),
            CacheSize::mib(8),
        )
        .unwrap();
        assert_eq!(applied, 0);
        let group = [purchase(1, "a"), rules_message(2, 25), purchase(3, "b")];
        apply_group(&mut runner, 0, &group, || true).unwrap();
        assert_eq!(points(&runner), 35);
        let switched = runner.rules().version.clone();
        assert_ne!(switched, base.version);
        // The same message again (a second node published the same change) is a no-op.
        apply_group(
            &mut runner,
            3,
            &[rules_message(4, 25), purchase(5, "c")],
            || true,
        )
        .unwrap();
        assert_eq!(points(&runner), 60);
        drop(runner);
        // Reopened, the partition resumes under the rules it recorded, not the base.
        let (mut again, applied) = open(
            dir.path(),
            Arc::clone(&base),
            RandomKey::default(),
            CacheSize::mib(8),
        )
        .unwrap();
        assert_eq!(applied, 5);
        assert_eq!(again.rules().version, switched);
        apply_group(&mut again, 5, &[purchase(6, "d")], || true).unwrap();
        assert_eq!(points(&again), 85);
    }

    #[test]
    fn a_rules_message_that_does_not_load_here_is_skipped() {
        let mut runner = runner();
        let at = DateTime::parse_from_rfc3339("2026-11-01T10:00:01Z")
            .unwrap()
            .with_timezone(&Utc);
        let broken = RuleFiles {
            version: "broken".into(),
            files: std::collections::BTreeMap::from([("rules.yaml".into(), "rules: [".into())]),
        };
        let group = [
            purchase(1, "a"),
            Delivered {
                sequence: 2,
                body: Body::Rules(broken, at),
            },
            purchase(3, "b"),
        ];
        let outcome = apply_group(&mut runner, 0, &group, || true).unwrap();
        assert!(
            matches!(outcome, Group::Committed { last: 3, .. }),
            "{outcome:?}"
        );
        assert_eq!(points(&runner), 20);
        assert_eq!(runner.store().meta_get(RULES_META).unwrap(), None);
    }

    /// A purchase that queues a message on a log channel.
    const SENDING: &str = "channels:\n  email: { kind: log }\ntemplates:\n  thanks: { subject: Thanks, body: Thanks }\nrules:\n  - id: p\n    trigger: { event: purchase }\n    actions:\n      - send: { template: thanks, channel: email }\n";

    fn outbox(runner: &Runner) -> Vec<OutboxRow> {
        runner
            .store()
            .outbox_scan(0, 100)
            .unwrap()
            .into_iter()
            .map(|(seq, bytes)| OutboxRow::decode(seq, &bytes).unwrap())
            .collect()
    }

    #[test]
    fn a_settled_message_records_how_the_delivery_ended_once_even_in_the_group_that_queued_it() {
        let rules = crate::rules::from_sources(&[("rules.yaml", SENDING)], &|_| None).unwrap();
        let mut runner = Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap();
        // Replaying: the step that queued the row and, further on, how its delivery
        // ended on the node that owned the partition then.
        apply_group(&mut runner, 0, &[purchase(1, "a")], || true).unwrap();
        let queued = outbox(&runner);
        assert_eq!(queued.len(), 1);
        assert!(queued[0].status.is_open(), "{:?}", queued[0].status);
        let mut sent = queued[0].clone();
        sent.status = crate::outbox::Status::Sent;
        sent.sent_at = Some(sent.due);
        sent.attempts = 1;
        let settled = |sequence| Delivered {
            sequence,
            body: Body::Settled(sent.clone()),
        };
        apply_group(&mut runner, 1, &[purchase(2, "b"), settled(3)], || true).unwrap();
        let rows = outbox(&runner);
        assert_eq!(rows[0].status, crate::outbox::Status::Sent);
        assert!(
            rows[1].status.is_open(),
            "the second purchase's message still waits"
        );
        let counts = crate::metrics::deliveries::load(runner.store()).unwrap();
        let count = serde_json::to_value(&counts).unwrap().to_string();
        // Published twice (or replayed again): counted once.
        apply_group(&mut runner, 3, &[settled(4)], || true).unwrap();
        let again = crate::metrics::deliveries::load(runner.store()).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap().to_string(), count);
        assert!(count.contains("\"sent\":1"), "{count}");

        // A new owner replaying all of it in one group ends with the same outbox.
        let rules = crate::rules::from_sources(&[("rules.yaml", SENDING)], &|_| None).unwrap();
        let mut replay = Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap();
        let all = [purchase(1, "a"), purchase(2, "b"), settled(3)];
        apply_group(&mut replay, 0, &all, || true).unwrap();
        let statuses =
            |runner: &Runner| -> Vec<_> { outbox(runner).iter().map(|r| r.status).collect() };
        assert_eq!(statuses(&replay), statuses(&runner));
    }

    #[test]
    fn a_message_that_is_not_an_event_is_skipped_but_counted_as_applied() {
        let mut runner = runner();
        let junk = Delivered {
            sequence: 3,
            body: Body::Skipped("not JSON".to_string()),
        };
        let outcome = apply_group(&mut runner, 0, &[junk, purchase(4, "a")], || true).unwrap();
        assert!(
            matches!(outcome, Group::Committed { last: 4, .. }),
            "{outcome:?}"
        );
        assert_eq!(points(&runner), 10);
    }
}
