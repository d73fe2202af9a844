//! Draws and leaderboard closes over every partition, the node's side
//! (docs/cluster.md, "Draws and leaderboard closes"; the runner's side is
//! `runner/gather.rs`). A partition's runner offers its part of a result under the
//! result's key (`gather.<key>.p<n>` in `rally_cluster`, written once); an owner whose
//! partition waits for a result merges the parts once every partition has offered one
//! (or, for partitions that never do — they have no members, or have not reached the
//! draw — once the first part is `3 × lease TTL` old), stores the merge once
//! (`gather.<key>.all`, first writer wins, so every partition gets the same), and
//! publishes it into its partition as a *gathered message*.
//!
//! Invariants:
//! - every partition takes the same result for a key: the one stored first;
//! - a partition goes on with the result where its gathered message stands in its
//!   stream, so a replay goes on at the same point;
//! - a part is a function of the partition's stream up to the job, so offering it
//!   again (a replay, a new owner) offers the same.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::kv;
use tokio::runtime::Handle;

use super::apply::RECEIVED_HEADER;
use super::partition::Partition;
use super::Node;
use crate::clock::{Clock, SystemClock};
use crate::runner::gather::{Gathered, Gatherer};

/// The header of a gathered message: the result's key (the payload is the result).
pub const GATHERED_HEADER: &str = "Rally-Gathered";

fn hex(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn part_key(key: &str, partition: Partition) -> String {
    format!("gather.{}.p{}", hex(key), partition.0)
}

fn result_key(key: &str) -> String {
    format!("gather.{}.all", hex(key))
}

/// Offers a partition's parts to the cluster's bucket, on the runner's thread.
pub struct KvGatherer {
    pub handle: Handle,
    pub config: kv::Store,
    pub partition: Partition,
}

impl Gatherer for KvGatherer {
    fn contribute(&mut self, key: &str, part: &Gathered) -> Result<(), String> {
        let bytes = serde_json::to_vec(part).map_err(|e| e.to_string())?;
        let name = part_key(key, self.partition);
        self.handle.block_on(async {
            match self.config.create(name.clone(), bytes.into()).await {
                Ok(_) => Ok(()),
                // Offered before (a replay, an earlier owner): the same part.
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(format!("offering {name}: {e}")),
            }
        })
    }
}

/// For each result `awaited` by `partition`'s runner: if it can be had — stored, or
/// every part offered, or waited for long enough — publishes it into the partition,
/// once per key for this applier (`published`).
pub async fn settle(
    node: &Node,
    partition: Partition,
    awaited: &[String],
    published: &mut BTreeSet<String>,
) -> Result<(), String> {
    for key in awaited {
        if published.contains(key) {
            continue;
        }
        let Some(result) = result(node, key).await? else {
            continue;
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(GATHERED_HEADER, key.as_str());
        let now = crate::member::rfc3339(SystemClock.now());
        headers.insert(RECEIVED_HEADER, now.as_str());
        let id = format!("gathered.{}.p{}", hex(key), partition.0);
        headers.insert("Nats-Msg-Id", id.as_str());
        let ack = node
            .jetstream
            .publish_with_headers(partition.subject(), headers, result.into())
            .await
            .map_err(|e| format!("publishing {key}: {e}"))?;
        ack.await.map_err(|e| format!("publishing {key}: {e}"))?;
        tracing::info!(partition = %partition, key = %key, "result over every partition published");
        published.insert(key.clone());
    }
    Ok(())
}

/// The result `key` as stored, or merged and stored now if every partition offered its
/// part or the first part has waited long enough; `None`: not yet.
async fn result(node: &Node, key: &str) -> Result<Option<Vec<u8>>, String> {
    let config = &node.config;
    let stored = result_key(key);
    if let Some(bytes) = config
        .get(stored.clone())
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(Some(bytes.to_vec()));
    }
    let count = node.settings.partitions;
    let mut parts = Vec::new();
    let mut first = None::<i64>;
    for p in 0..count {
        let name = part_key(key, Partition(p));
        let entry = config
            .entry(name.clone())
            .await
            .map_err(|e| e.to_string())?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            continue;
        };
        let part: Gathered = serde_json::from_slice(&entry.value)
            .map_err(|e| format!("{name} is not a part: {e}"))?;
        parts.push(part);
        let created = entry.created.unix_timestamp();
        first = Some(first.map_or(created, |t| t.min(created)));
    }
    let waited = first.is_some_and(|first| {
        let wait = 3 * node.settings.lease_ttl();
        let age = SystemClock.now().timestamp() - first;
        Duration::from_secs(u64::try_from(age).unwrap_or(0)) >= wait
    });
    if parts.len() < count as usize && !waited {
        return Ok(None);
    }
    let Some(merged) = Gathered::merge(&parts) else {
        return Ok(None);
    };
    if parts.len() < count as usize {
        tracing::warn!(key = %key, offered = parts.len(), partitions = count, "merging without the partitions that did not offer a part in time");
    }
    let bytes = serde_json::to_vec(&merged).map_err(|e| e.to_string())?;
    match config.create(stored.clone(), bytes.clone().into()).await {
        Ok(_) => Ok(Some(bytes)),
        // Another owner stored it first: that one is the result.
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(config
            .get(stored)
            .await
            .map_err(|e| e.to_string())?
            .map(|bytes| bytes.to_vec())),
        Err(e) => Err(format!("storing {stored}: {e}")),
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
settings: { timezone: UTC }
leaderboards:
  - { id: posters, by: events.post, period: daily, size: 5 }
rules:
  - id: podium
    trigger: { leaderboard: posters, closes: true, top: 2 }
    actions:
      - points: "if event.data.rank == 1 { 10 } else { 5 }"
"#;

    const KEY: &str = "close.posters.2026-11-01";

    /// Every part offered, by key and partition.
    type Parts = Arc<Mutex<BTreeMap<(String, u32), Gathered>>>;

    struct InMemory {
        parts: Parts,
        partition: u32,
    }

    impl Gatherer for InMemory {
        fn contribute(&mut self, key: &str, part: &Gathered) -> Result<(), String> {
            let mut parts = self.parts.lock().unwrap();
            let previous = parts.insert((key.to_string(), self.partition), part.clone());
            // Offered again (a replay): the same part.
            assert!(previous.is_none_or(|previous| previous == *part));
            Ok(())
        }
    }

    fn runner(parts: &Parts, partition: u32) -> Runner {
        let rules = crate::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap();
        let mut runner = Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap();
        runner.gather_with(Box::new(InMemory {
            parts: Arc::clone(parts),
            partition,
        }));
        runner
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// `posts` posts of each member, one message each, from sequence 1.
    fn posts(posts: &[(&str, usize)]) -> Vec<Delivered> {
        let mut messages = Vec::new();
        for (member, count) in posts {
            for _ in 0..*count {
                let sequence = messages.len() as u64 + 1;
                let line = format!(
                    r#"{{"id":"p-{sequence}-{member}","type":"post","member":"{member}","at":"2026-11-01T10:00:00Z"}}"#
                );
                let event = event::parse_line(&line, AtPolicy::Required).unwrap();
                let received =
                    at("2026-11-01T10:00:01Z") + chrono::Duration::seconds(sequence as i64);
                messages.push(Delivered {
                    sequence,
                    body: Body::Event(event, received),
                });
            }
        }
        messages
    }

    fn tick(sequence: u64) -> Delivered {
        Delivered {
            sequence,
            body: Body::Tick(at("2026-11-02T00:00:01Z")),
        }
    }

    fn result(sequence: u64, result: &Gathered) -> Delivered {
        Delivered {
            sequence,
            body: Body::Gathered(KEY.to_string(), result.clone(), at("2026-11-02T00:00:02Z")),
        }
    }

    fn points(runner: &Runner) -> BTreeMap<String, i64> {
        let members = runner.store().members_after(None, 100).unwrap();
        members
            .into_iter()
            .map(|m| (m.id.to_string(), m.points))
            .collect()
    }

    fn apply(runner: &mut Runner, messages: &[Delivered]) {
        let applied = messages[0].sequence - 1;
        apply_group(runner, applied, messages, || true).unwrap();
    }

    #[test]
    fn a_close_waits_for_the_places_of_every_partition_and_pays_only_its_own_members() {
        let parts = Parts::default();
        // Partition 0 holds a (3 posts) and b (1); partition 1 holds c (2) and d (5).
        let members = [[("a", 3), ("b", 1)], [("c", 2), ("d", 5)]];
        let streams = members.map(|held| posts(&held));
        let mut live = [runner(&parts, 0), runner(&parts, 1)];
        for (runner, stream) in live.iter_mut().zip(&streams) {
            apply(runner, stream);
            let next = stream.len() as u64 + 1;
            apply(runner, &[tick(next)]);
            // Its own first places offered, the close waits.
            assert_eq!(runner.awaited(), [KEY]);
        }
        let offered: Vec<Gathered> = parts.lock().unwrap().values().cloned().collect();
        assert_eq!(offered.len(), 2);
        let merged = Gathered::merge(&offered).unwrap();
        let Gathered::Close { places, .. } = &merged else {
            panic!("not a close");
        };
        let order: Vec<&str> = places.iter().map(|p| p.member.as_str()).collect();
        assert_eq!(order, ["d", "a"]);
        // Nobody is paid before the result arrives; then each pays its own winner, once.
        assert!(points(&live[0]).values().all(|p| *p == 0));
        for (runner, stream) in live.iter_mut().zip(&streams) {
            let next = stream.len() as u64 + 2;
            apply(runner, &[result(next, &merged), result(next + 1, &merged)]);
            assert!(runner.awaited().is_empty());
        }
        assert_eq!(
            points(&live[0]),
            BTreeMap::from([("a".into(), 5), ("b".into(), 0)])
        );
        assert_eq!(
            points(&live[1]),
            BTreeMap::from([("c".into(), 0), ("d".into(), 10)])
        );

        // A replay of each partition, the whole stream in one group, pays the same.
        for (n, stream) in streams.iter().enumerate() {
            let mut replay = runner(&parts, n as u32);
            let mut messages = posts(&members[n]);
            let next = stream.len() as u64 + 1;
            messages.push(tick(next));
            messages.push(result(next + 1, &merged));
            apply(&mut replay, &messages);
            assert_eq!(points(&replay), points(&live[n]), "partition {n}");
        }

        // The result may reach a partition before its close starts (it was behind):
        // the close then goes on at once when it starts.
        let mut behind = runner(&parts, 1);
        apply(&mut behind, &posts(&members[1]));
        let next = streams[1].len() as u64 + 1;
        apply(&mut behind, &[result(next, &merged), tick(next + 1)]);
        assert!(behind.awaited().is_empty());
        assert_eq!(points(&behind), points(&live[1]));
    }

    #[test]
    fn keys_hold_any_board_or_rule_id() {
        assert_eq!(
            part_key("close.a b", Partition(3)),
            "gather.636c6f73652e612062.p3"
        );
        assert_eq!(result_key("x"), "gather.78.all");
    }
}
