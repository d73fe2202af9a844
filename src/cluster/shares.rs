//! Campaign budgets, reward stock and codes, and ticket numbers across partitions
//! (docs/cluster.md, "Global state"). Each pool is a key of `rally_cluster` changed
//! only by compare-and-set on its revision; a partition's owner takes a part of it
//! (a [`Grant`]) when a step runs short, and records the grant in the partition's
//! *grant log* (`grants.p<n>`) at the sequence of the message that asked, before the
//! step that spends it can be committed.
//!
//! Invariants:
//! - what a pool hands out is never handed out again: the pool's counter (or claimed
//!   codes) moves before the grant exists, by compare-and-set, so two partitions
//!   asking at once get disjoint parts;
//! - a replay holds every grant from the message it was recorded at, as the owner
//!   that asked did (`crate::shares`), so it spends the same;
//! - an owner claims the grant log when it starts applying (a write at the log's
//!   revision), so an old owner that lost the partition can no longer record in it:
//!   its next append fails, and the group that needed it is not committed;
//! - a grant taken from a pool but never recorded (the owner died in between) is lost
//!   to the pool: an under-spend, never a double spend.

use std::time::Duration;

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::partition::Partition;
use crate::rules::RuleSet;
use crate::runner::ShareSource;
use crate::shares::{Grant, Shares, Short};

/// Ticket numbers are granted in runs of this many, aligned: run `i` holds
/// `i·TICKET_RUN + 1 ..= (i+1)·TICKET_RUN`, and `ticket.<i>` names its partition.
pub const TICKET_RUN: u64 = 100;

/// How often a compare-and-set that lost a race is tried again before the step's
/// group is given up (and the partition restarted).
const ATTEMPTS: usize = 20;

/// A partition's grant log as stored: the grants folded into `base` (those taken
/// effect by the latest snapshot), then each later one at its sequence.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Log {
    /// The node that last claimed the log.
    owner: String,
    #[serde(default)]
    base: Shares,
    /// The sequence `base` is the state at.
    #[serde(default)]
    base_at: u64,
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    at: u64,
    grant: Grant,
}

/// The grant log as claimed by a new owner: the shares at its store's sequence, the
/// grants recorded for messages after it, and the source that asks for more.
pub struct Claimed {
    pub shares: Shares,
    pub pending: Vec<(u64, Grant)>,
    pub source: KvShares,
}

fn log_key(partition: Partition) -> String {
    format!("grants.p{}", partition.0)
}

/// Pools are keyed by their id in hex: ids may hold what a key may not.
fn pool_key(kind: &str, id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{kind}.{hex}")
}

/// The key naming the partition that holds ticket run `run`.
pub fn ticket_run_key(run: u64) -> String {
    format!("ticket.{run}")
}

/// The ticket run holding ticket `number`.
pub fn ticket_run(number: u64) -> u64 {
    number.saturating_sub(1) / TICKET_RUN
}

/// Claims `partition`'s grant log for `node` (which has just taken its lease and
/// holds its store at `applied`). Grants recorded at or before `settled` (no store
/// this partition starts from is older: the latest snapshot's sequence, or the store
/// itself) are folded into the log's base.
pub async fn claim(
    config: &kv::Store,
    node: &str,
    partition: Partition,
    partitions: u32,
    applied: u64,
    settled: u64,
) -> Result<Claimed, String> {
    let key = log_key(partition);
    for _ in 0..ATTEMPTS {
        let found = config
            .entry(key.clone())
            .await
            .map_err(|e| format!("reading {key}: {e}"))?;
        let (mut log, revision) = match found {
            Some(entry) if entry.operation == kv::Operation::Put => (
                serde_json::from_slice::<Log>(&entry.value)
                    .map_err(|e| format!("{key} is not a grant log: {e}"))?,
                Some(entry.revision),
            ),
            _ => (Log::default(), None),
        };
        log.owner = node.to_string();
        fold(&mut log, settled);
        let bytes = serde_json::to_vec(&log).map_err(|e| e.to_string())?;
        let written = match revision {
            Some(revision) => config
                .update(key.clone(), bytes.into(), revision)
                .await
                .ok(),
            None => config.create(key.clone(), bytes.into()).await.ok(),
        };
        // Another node wrote it since we read it: read again.
        let Some(revision) = written else { continue };
        let (shares, pending) = split(&log, applied);
        return Ok(Claimed {
            shares,
            pending,
            source: KvShares {
                handle: Handle::current(),
                config: config.clone(),
                partition,
                partitions,
                log,
                revision,
            },
        });
    }
    Err(format!("{key}: lost the race to claim it {ATTEMPTS} times"))
}

/// Moves the entries at or before `settled` into the base.
fn fold(log: &mut Log, settled: u64) {
    if settled <= log.base_at {
        return;
    }
    let later = log
        .entries
        .split_off(log.entries.partition_point(|e| e.at <= settled));
    for entry in std::mem::replace(&mut log.entries, later) {
        log.base.add(&entry.grant);
    }
    log.base_at = settled;
}

/// The shares in effect once the message at `applied` is applied, and the grants of
/// later messages.
fn split(log: &Log, applied: u64) -> (Shares, Vec<(u64, Grant)>) {
    let mut shares = log.base.clone();
    let mut pending = Vec::new();
    for entry in &log.entries {
        if entry.at <= applied {
            shares.add(&entry.grant);
        } else {
            pending.push((entry.at, entry.grant.clone()));
        }
    }
    (shares, pending)
}

/// Asks the cluster's pools for more, on the runner's (blocking) thread.
pub struct KvShares {
    handle: Handle,
    config: kv::Store,
    partition: Partition,
    partitions: u32,
    log: Log,
    /// The log's revision as this node last wrote it.
    revision: u64,
}

/// A pool's counter as stored under its key.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Pool {
    /// Points of a budget, or units of a stock, or ticket runs, handed out so far.
    taken: u64,
    /// Codes of a pool handed out so far.
    codes: Vec<String>,
}

impl ShareSource for KvShares {
    fn grant(&mut self, rules: &RuleSet, short: &Short, at: u64) -> Result<Grant, String> {
        let handle = self.handle.clone();
        handle.block_on(async {
            let grant = self
                .take(rules, short)
                .await?
                .unwrap_or_else(|| Grant::Spent {
                    pool: short.pool(),
                    rules: rules.version.clone(),
                });
            self.record(at, &grant).await?;
            Ok(grant)
        })
    }
}

/// The key of the pool `short` draws from.
fn pool_of(short: &Short) -> String {
    match short {
        Short::Budget { campaign, .. } => pool_key("budget", campaign),
        Short::Stock { reward } | Short::Codes { reward } => pool_key("reward", reward),
        Short::Tickets => "tickets".to_string(),
    }
}

/// Takes from `pool` a part for what `short` lacks: what the step lacks, and at
/// least 1/`spread` of what is left, so a busy partition asks seldom and the last of
/// a pool is spread thin. `None` (and `pool` unchanged): the pool is spent, or the
/// rules no longer make it a pool.
fn take_from(pool: &mut Pool, rules: &RuleSet, short: &Short, spread: u64) -> Option<Grant> {
    let reward = |id: &str| rules.rewards.iter().find(|r| r.id == id);
    match short {
        Short::Budget { campaign, points } => {
            let budget = rules
                .campaigns
                .iter()
                .find(|c| c.id == *campaign)?
                .budget_points?;
            let left = u64::try_from(budget).ok()?.saturating_sub(pool.taken);
            let wanted = u64::try_from(*points).unwrap_or(1).max(1);
            let take = left.min(wanted.max(left / spread));
            pool.taken += take;
            (take > 0).then(|| Grant::Budget {
                campaign: campaign.clone(),
                points: i64::try_from(take).unwrap_or(i64::MAX),
            })
        }
        Short::Stock { reward: id } => {
            let left = reward(id)?.stock?.saturating_sub(pool.taken);
            let take = left.min(1.max(left / spread));
            pool.taken += take;
            (take > 0).then(|| Grant::Stock {
                reward: id.clone(),
                units: take,
            })
        }
        Short::Codes { reward: id } => {
            let codes = reward(id)?.codes.as_ref()?;
            let free: Vec<&String> = codes.iter().filter(|c| !pool.codes.contains(*c)).collect();
            let count = 1.max(free.len() / usize::try_from(spread).unwrap_or(1));
            let take: Vec<String> = free.into_iter().take(count).cloned().collect();
            pool.codes.extend(take.iter().cloned());
            (!take.is_empty()).then(|| Grant::Codes {
                reward: id.clone(),
                codes: take,
            })
        }
        Short::Tickets => {
            let run = pool.taken;
            pool.taken += 1;
            Some(Grant::Tickets {
                first: run * TICKET_RUN + 1,
                count: TICKET_RUN,
            })
        }
    }
}

impl KvShares {
    /// Takes a part of the pool `short` names ([`take_from`]).
    async fn take(&self, rules: &RuleSet, short: &Short) -> Result<Option<Grant>, String> {
        let spread = 2 * u64::from(self.partitions.max(1));
        let grant = self
            .change(&pool_of(short), |pool| {
                take_from(pool, rules, short, spread)
            })
            .await?;
        if let Some(Grant::Tickets { first, .. }) = &grant {
            // Where a ticket command for a number of this run is published.
            let run = ticket_run(*first);
            self.config
                .put(ticket_run_key(run), self.partition.0.to_string().into())
                .await
                .map_err(|e| format!("recording ticket run {run}: {e}"))?;
        }
        Ok(grant)
    }

    /// Changes the pool under `key` by compare-and-set, trying again when another
    /// partition changed it first; what `change` took, or `None` (nothing written).
    async fn change<T>(
        &self,
        key: &str,
        change: impl Fn(&mut Pool) -> Option<T>,
    ) -> Result<Option<T>, String> {
        for attempt in 0..ATTEMPTS {
            let found = self
                .config
                .entry(key.to_string())
                .await
                .map_err(|e| format!("reading {key}: {e}"))?;
            let (mut pool, revision) = match found {
                Some(entry) if entry.operation == kv::Operation::Put => (
                    serde_json::from_slice::<Pool>(&entry.value)
                        .map_err(|e| format!("{key} is not a pool: {e}"))?,
                    Some(entry.revision),
                ),
                _ => (Pool::default(), None),
            };
            let Some(taken) = change(&mut pool) else {
                return Ok(None);
            };
            let bytes = serde_json::to_vec(&pool).map_err(|e| e.to_string())?;
            let written = match revision {
                Some(revision) => self
                    .config
                    .update(key.to_string(), bytes.into(), revision)
                    .await
                    .is_ok(),
                None => self
                    .config
                    .create(key.to_string(), bytes.into())
                    .await
                    .is_ok(),
            };
            if written {
                return Ok(Some(taken));
            }
            // Another partition took its part first: read again, after a moment.
            tokio::time::sleep(Duration::from_millis(attempt as u64)).await;
        }
        Err(format!("{key}: lost the race for it {ATTEMPTS} times"))
    }

    /// Appends `grant` at `at` to the grant log, at the revision this node wrote: if
    /// another node claimed the log since, this fails and the grant is lost.
    async fn record(&mut self, at: u64, grant: &Grant) -> Result<(), String> {
        let key = log_key(self.partition);
        self.log.entries.push(Entry {
            at,
            grant: grant.clone(),
        });
        let bytes = serde_json::to_vec(&self.log).map_err(|e| e.to_string())?;
        match self
            .config
            .update(key.clone(), bytes.into(), self.revision)
            .await
        {
            Ok(revision) => {
                self.revision = revision;
                Ok(())
            }
            Err(e) => {
                self.log.entries.pop();
                Err(format!(
                    "recording a grant in {key} ({e}): another node claimed the partition"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::cluster::apply::{apply_group, Body, Delivered};
    use crate::event::{self, AtPolicy};
    use crate::runner::Runner;
    use crate::store::Store;

    const RULES: &str = r#"
campaigns:
  - id: launch
    phases:
      - { name: on, start: "2026-10-01T00:00:00" }
    budget: { points: 100 }
rewards:
  - { id: mug, name: Mug, cost: 1, stock: 3 }
  - id: card
    name: Card
    cost: 1
    codes: codes.txt
channels:
  staff: { kind: log }
escalations:
  - id: support
    levels:
      - { notify: { channel: staff, to: team } }
rules:
  - id: buy
    trigger: { event: purchase }
    during: { campaign: launch }
    actions: [ { points: 30 } ]
  - id: complaint
    trigger: { event: complaint }
    actions:
      - escalate: { policy: support, severity: normal, summary: complaint }
"#;

    /// The cluster's pools in memory, and every grant recorded, by partition.
    #[derive(Default)]
    struct Pools {
        pools: BTreeMap<String, Pool>,
        recorded: BTreeMap<usize, Vec<(u64, Grant)>>,
    }

    /// Takes from the shared pools as `KvShares` does, without NATS.
    struct InMemory {
        pools: Arc<Mutex<Pools>>,
        partition: usize,
    }

    impl ShareSource for InMemory {
        fn grant(&mut self, rules: &RuleSet, short: &Short, at: u64) -> Result<Grant, String> {
            let mut pools = self.pools.lock().unwrap();
            let pool = pools.pools.entry(pool_of(short)).or_default();
            let grant = take_from(pool, rules, short, 4).unwrap_or_else(|| Grant::Spent {
                pool: short.pool(),
                rules: rules.version.clone(),
            });
            let log = pools.recorded.entry(self.partition).or_default();
            log.push((at, grant.clone()));
            Ok(grant)
        }
    }

    /// A replay has every grant recorded: it never asks.
    struct Replaying;

    impl ShareSource for Replaying {
        fn grant(&mut self, _: &RuleSet, short: &Short, at: u64) -> Result<Grant, String> {
            Err(format!("a replay asked for {short:?} at {at}"))
        }
    }

    fn runner() -> Runner {
        let codes = "C1\nC2\nC3\nC4\nC5\nC6\nC7\nC8\n";
        let sources = [("rules.yaml", RULES), ("codes.txt", codes)];
        let rules = crate::rules::from_sources(&sources, &|_| None).unwrap();
        Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap()
    }

    fn message(sequence: u64, kind: &str, member: &str, data: &str) -> Delivered {
        let line = format!(
            r#"{{"id":"{kind}-{sequence}","type":"{kind}","member":"{member}","at":"2026-11-01T10:00:00Z","data":{data}}}"#
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

    /// Each partition's messages: five members each buy, redeem a mug and a card, and
    /// complain, in that order.
    fn messages(partition: usize) -> Vec<Delivered> {
        let mut messages = Vec::new();
        for (kind, data) in [
            ("purchase", "{}"),
            ("redeem", r#"{"reward":"mug"}"#),
            ("redeem", r#"{"reward":"card"}"#),
            ("complaint", "{}"),
        ] {
            for m in 0..5 {
                let sequence = messages.len() as u64 + 1;
                let member = format!("p{partition}-m{m}");
                messages.push(message(sequence, kind, &member, data));
            }
        }
        messages
    }

    /// Every member of `runner`'s store as JSON, with its ledger and tickets.
    fn state(runner: &Runner) -> Vec<String> {
        let store = runner.store();
        let mut rows = Vec::new();
        for member in store.members_after(None, 1000).unwrap() {
            rows.push(serde_json::to_string(&member).unwrap());
        }
        for (name, bytes) in store.meta_scan(crate::rewards::REDEMPTION_META).unwrap() {
            rows.push(format!("{name} {}", String::from_utf8_lossy(&bytes)));
        }
        for ticket in runner.all_tickets().unwrap() {
            rows.push(format!("{} {}", ticket.id, ticket.member));
        }
        rows.push(format!("{:?}", runner.shares()));
        rows
    }

    #[test]
    fn partitions_split_the_pools_exactly_and_a_replay_spends_the_same_without_asking() {
        let pools = Arc::new(Mutex::new(Pools::default()));
        let mut live: Vec<Runner> = (0..2).map(|_| runner()).collect();
        for (partition, runner) in live.iter_mut().enumerate() {
            let source = InMemory {
                pools: Arc::clone(&pools),
                partition,
            };
            runner.share(Shares::default(), Vec::new(), Box::new(source));
        }
        // The two partitions take turns, message by message.
        let streams: Vec<Vec<Delivered>> = (0..2).map(messages).collect();
        for at in 0..streams[0].len() {
            for (runner, stream) in live.iter_mut().zip(&streams) {
                let message = std::slice::from_ref(&stream[at]);
                let applied = at as u64;
                apply_group(runner, applied, message, || true).unwrap();
            }
        }
        let members: Vec<_> = live
            .iter()
            .flat_map(|r| r.store().members_after(None, 100).unwrap())
            .collect();
        // The budget is paid out to the point, never beyond.
        let awarded: i64 = members.iter().map(|m| m.points_lifetime).sum();
        assert_eq!(awarded, 100);
        // Three mugs, and distinct cards, across both partitions.
        let redemptions: Vec<_> = live
            .iter()
            .flat_map(|r| {
                r.store()
                    .meta_scan(crate::rewards::REDEMPTION_META)
                    .unwrap()
            })
            .map(|(_, bytes)| serde_json::from_slice::<crate::rewards::Redemption>(&bytes).unwrap())
            .collect();
        let mugs = redemptions
            .iter()
            .filter(|r| r.reward == "mug" && r.granted())
            .count();
        assert_eq!(mugs, 3, "{redemptions:#?}");
        let mut cards: Vec<_> = redemptions.iter().filter_map(|r| r.code()).collect();
        let handed = cards.len();
        cards.sort();
        cards.dedup();
        assert_eq!(cards.len(), handed, "a code handed out twice");
        // Ten tickets, numbered apart by partition.
        let mut numbers: Vec<u64> = live
            .iter()
            .flat_map(|r| r.all_tickets().unwrap())
            .map(|t| t.number)
            .collect();
        numbers.sort();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 101, 102, 103, 104, 105]);

        // A replay of each partition from scratch, with its recorded grants.
        let recorded = std::mem::take(&mut pools.lock().unwrap().recorded);
        for (partition, stream) in streams.iter().enumerate() {
            let mut replay = runner();
            let grants = recorded.get(&partition).cloned().unwrap_or_default();
            replay.share(Shares::default(), grants, Box::new(Replaying));
            apply_group(&mut replay, 0, stream, || true).unwrap();
            assert_eq!(
                state(&replay),
                state(&live[partition]),
                "partition {partition}"
            );
        }
    }

    fn entry(at: u64, points: i64) -> Entry {
        Entry {
            at,
            grant: Grant::Budget {
                campaign: "c".into(),
                points,
            },
        }
    }

    #[test]
    fn folding_keeps_the_shares_at_every_later_sequence() {
        let mut log = Log {
            entries: vec![entry(5, 10), entry(9, 20), entry(12, 40)],
            ..Log::default()
        };
        let before: Vec<_> = [9, 11, 12, 20].map(|at| split(&log, at)).into();
        fold(&mut log, 9);
        assert_eq!(log.base.budget("c"), 30);
        assert_eq!(log.entries.len(), 1);
        let after: Vec<_> = [9, 11, 12, 20].map(|at| split(&log, at)).into();
        assert_eq!(before, after);
        // Folding back to an earlier point changes nothing.
        fold(&mut log, 4);
        assert_eq!(log.base.budget("c"), 30);
        let (shares, pending) = split(&log, 11);
        assert_eq!(shares.budget("c"), 30);
        assert_eq!(pending, vec![(12, entry(12, 40).grant)]);
    }

    #[test]
    fn pool_keys_hold_any_id_and_ticket_runs_are_aligned() {
        assert_eq!(pool_key("budget", "a.b/c"), "budget.612e622f63");
        assert_eq!(ticket_run(1), 0);
        assert_eq!(ticket_run(100), 0);
        assert_eq!(ticket_run(101), 1);
    }
}
