//! What a self-check compares between the live store and its replay: members, the
//! ledger and firings, tickets, campaign records, draws, reward records and
//! redemptions, the community metrics (`metrics.*`), armed timers, the messages queued
//! and every leaderboard's rows. Delivery (a message's status, attempts, errors, and
//! the counts of deliveries among the metrics) is not the engine's doing and is left
//! out; so are rows retention removed from the live store.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::outbox::OutboxRow;
use crate::store::{Store, StoreError};

/// Differences reported at most: the first ones say what went wrong.
const MAX_REPORTED: usize = 20;

/// Every difference between `live` and `replayed`, up to [`MAX_REPORTED`].
pub fn stores(live: &Store, replayed: &Store) -> Result<Vec<String>, StoreError> {
    let mut out = Differences::default();
    members(live, replayed, &mut out)?;
    history(live, replayed, &mut out)?;
    out.rows("ticket", tickets(live)?, tickets(replayed)?);
    out.keyed(
        "campaign record",
        meta(live, crate::runner::CAMPAIGN_META)?,
        meta(replayed, crate::runner::CAMPAIGN_META)?,
    );
    out.keyed(
        "draw",
        meta(live, crate::runner::DRAW_META)?,
        meta(replayed, crate::runner::DRAW_META)?,
    );
    out.keyed(
        "reward record",
        meta(live, crate::rewards::REWARD_META)?,
        meta(replayed, crate::rewards::REWARD_META)?,
    );
    out.keyed(
        "redemption",
        meta(live, crate::rewards::REDEMPTION_META)?,
        meta(replayed, crate::rewards::REDEMPTION_META)?,
    );
    out.keyed(
        "metrics row",
        steps_metrics(live)?,
        steps_metrics(replayed)?,
    );
    out.rows("timer", timers(live)?, timers(replayed)?);
    out.keyed("message", messages(live)?, messages(replayed)?);
    out.rows(
        "leaderboard row",
        leaderboard_rows(live)?,
        leaderboard_rows(replayed)?,
    );
    Ok(out.found)
}

#[derive(Default)]
struct Differences {
    found: Vec<String>,
}

impl Differences {
    fn push(&mut self, what: String) {
        if self.found.len() < MAX_REPORTED {
            self.found.push(what);
        }
    }

    /// Two lists that must be equal, element by element.
    fn rows(&mut self, kind: &str, live: Vec<Value>, replayed: Vec<Value>) {
        for (n, (a, b)) in live.iter().zip(&replayed).enumerate() {
            if a != b {
                self.push(format!("{kind} #{}: live {a}, replayed {b}", n + 1));
                return;
            }
        }
        if live.len() != replayed.len() {
            self.push(format!(
                "{kind}s: {} live, {} replayed",
                live.len(),
                replayed.len()
            ));
        }
    }

    /// Two sequences that must be equal, element by element, read as they are
    /// compared; the first difference is reported with the member it belongs to.
    fn streamed<T: serde::Serialize>(
        &mut self,
        kind: &str,
        mut live: impl Iterator<Item = Result<T, StoreError>>,
        mut replayed: impl Iterator<Item = Result<T, StoreError>>,
        member: impl Fn(&T) -> &str,
    ) -> Result<(), StoreError> {
        let (mut live_count, mut replayed_count) = (0u64, 0u64);
        loop {
            match (live.next().transpose()?, replayed.next().transpose()?) {
                (Some(a), Some(b)) => {
                    live_count += 1;
                    replayed_count += 1;
                    let (value_a, value_b) = (value(&a), value(&b));
                    if value_a != value_b {
                        self.push(format!(
                            "{kind} #{live_count} (member {:?}, in id order): live {value_a}, replayed {value_b}",
                            member(&a),
                        ));
                        return Ok(());
                    }
                }
                (Some(_), None) => live_count += 1,
                (None, Some(_)) => replayed_count += 1,
                (None, None) => break,
            }
        }
        if live_count != replayed_count {
            self.push(format!(
                "{kind} count: {live_count} live, {replayed_count} replayed"
            ));
        }
        Ok(())
    }

    /// Two maps that must be equal, key by key.
    fn keyed(
        &mut self,
        kind: &str,
        live: BTreeMap<String, Value>,
        replayed: BTreeMap<String, Value>,
    ) {
        for (key, a) in &live {
            match replayed.get(key) {
                Some(b) if a == b => {}
                Some(b) => self.push(format!("{kind} {key}: live {a}, replayed {b}")),
                None => self.push(format!("{kind} {key}: live {a}, not in the replay")),
            }
        }
        for (key, b) in &replayed {
            if !live.contains_key(key) {
                self.push(format!("{kind} {key}: not live, replayed {b}"));
            }
        }
    }
}

fn value<T: serde::Serialize>(row: &T) -> Value {
    serde_json::to_value(row).unwrap_or(Value::Null)
}

/// The ledger and the firings, compared entry by entry, member by member (in id
/// order), each member's in the order committed. Read a history row at a time from
/// both stores: the history grows with the events, and the self-check must not hold
/// it all (twice) to compare it.
fn history(live: &Store, replayed: &Store, out: &mut Differences) -> Result<(), StoreError> {
    let ledger = |store: &Store| -> Result<_, StoreError> {
        Ok(store.history_by_member()?.flat_map(|row| match row {
            Ok((ledger, _)) => ledger.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        }))
    };
    out.streamed("ledger entry", ledger(live)?, ledger(replayed)?, |e| {
        &e.member
    })?;
    let firings = |store: &Store| -> Result<_, StoreError> {
        Ok(store.history_by_member()?.flat_map(|row| match row {
            Ok((_, firings)) => firings.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        }))
    };
    out.streamed("firing", firings(live)?, firings(replayed)?, |f| &f.member)
}

/// Members, compared field by field, in id order, a batch at a time.
fn members(live: &Store, replayed: &Store, out: &mut Differences) -> Result<(), StoreError> {
    let mut after: Option<String> = None;
    loop {
        let a = live.members_after(after.as_deref(), 512)?;
        let b = replayed.members_after(after.as_deref(), 512)?;
        for (a, b) in a.iter().zip(&b) {
            if a.id != b.id {
                out.push(format!(
                    "members: live has {:?} where the replay has {:?}",
                    a.id, b.id
                ));
                return Ok(());
            }
            if a != b {
                let id = a.id.clone();
                let a = serde_json::to_value(a).unwrap_or(Value::Null);
                let b = serde_json::to_value(b).unwrap_or(Value::Null);
                let fields: Vec<String> = match (&a, &b) {
                    (Value::Object(a), Value::Object(b)) => a
                        .iter()
                        .filter(|(key, value)| b.get(*key) != Some(value))
                        .map(|(key, value)| {
                            format!(
                                "{key}: live {value}, replayed {}",
                                b.get(key).unwrap_or(&Value::Null)
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                out.push(format!("member {id:?}: {}", fields.join("; ")));
            }
        }
        if a.len() != b.len() {
            out.push(format!(
                "members: the live store and the replay differ in number after {:?}",
                after.unwrap_or_default()
            ));
            return Ok(());
        }
        match a.last() {
            Some(last) => after = Some(last.id.clone()),
            None => return Ok(()),
        }
    }
}

fn tickets(store: &Store) -> Result<Vec<Value>, StoreError> {
    Ok(store
        .tickets()?
        .into_iter()
        .map(|(_, bytes)| serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        .collect())
}

fn meta(store: &Store, prefix: &str) -> Result<BTreeMap<String, Value>, StoreError> {
    Ok(store
        .meta_scan(prefix)?
        .into_iter()
        .map(|(name, bytes)| (name, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
        .collect())
}

/// The metrics rows the steps wrote. The dispatcher's delivery counts
/// (`metrics.delivery.*`) are left out: deliveries are not journaled, so a replay
/// delivers nothing and has none, and what it would compare is not the engine's doing.
fn steps_metrics(store: &Store) -> Result<BTreeMap<String, Value>, StoreError> {
    let mut rows = meta(store, crate::metrics::META)?;
    rows.retain(|name, _| !name.starts_with(crate::metrics::deliveries::DELIVERY));
    Ok(rows)
}

/// Every board's rows in ranking order: board, period, score, when reached, member.
fn leaderboard_rows(store: &Store) -> Result<Vec<Value>, StoreError> {
    Ok(store
        .leaderboard_rows()?
        .into_iter()
        .map(|r| serde_json::json!([r.board, r.period, r.score.to_string(), r.reached, r.member]))
        .collect())
}

fn timers(store: &Store) -> Result<Vec<Value>, StoreError> {
    Ok(store
        .timers_due(i64::MAX, usize::MAX)?
        .into_iter()
        .map(|(key, _)| serde_json::json!([key.due, key.kind, key.id]))
        .collect())
}

/// Messages as the engine queued them, by number: what delivery changed is left out.
fn messages(store: &Store) -> Result<BTreeMap<String, Value>, StoreError> {
    let mut out = BTreeMap::new();
    let mut from = 0;
    loop {
        let rows = store.outbox_scan(from, 1024)?;
        let Some((last, _)) = rows.last() else {
            return Ok(out);
        };
        from = last + 1;
        for (seq, bytes) in rows {
            let Ok(row) = OutboxRow::decode(seq, &bytes) else {
                out.insert(seq.to_string(), Value::String("(cannot be read)".into()));
                continue;
            };
            out.insert(
                seq.to_string(),
                serde_json::json!({
                    "member": row.member, "rule": row.rule, "channel": row.channel,
                    "template": row.template, "to": row.to, "subject": row.subject,
                    "body": row.body, "marketing": row.marketing, "created_at": row.created_at.to_rfc3339(),
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Firing, LedgerEntry};
    use crate::store::StepWrite;

    fn entry(member: &str, amount: i64, balance: i64) -> LedgerEntry {
        LedgerEntry {
            member: member.into(),
            amount,
            balance,
            reason: "r".into(),
            rule: "r".into(),
            event: None,
            at: chrono::DateTime::UNIX_EPOCH,
            requested: None,
            clipped_by: None,
            operator: None,
            from: None,
        }
    }

    fn firing(member: &str, rule: &str) -> Firing {
        Firing {
            rule: rule.into(),
            member: member.into(),
            trigger: "event".into(),
            at: chrono::DateTime::UNIX_EPOCH,
            event: None,
            version: String::new(),
        }
    }

    /// One step per (ledger, firings) given, each in its own group.
    fn store(steps: &[(Vec<LedgerEntry>, Vec<Firing>)]) -> Store {
        let store = Store::in_memory().unwrap();
        for (ledger, firings) in steps {
            store
                .commit(&[StepWrite {
                    ledger: ledger.clone(),
                    firings: firings.clone(),
                    ..StepWrite::default()
                }])
                .unwrap();
        }
        store
    }

    fn live() -> Vec<(Vec<LedgerEntry>, Vec<Firing>)> {
        vec![
            (vec![entry("b", 5, 5)], vec![firing("b", "x")]),
            (vec![entry("a", 5, 5)], vec![firing("a", "x")]),
            (vec![entry("a", 3, 8)], vec![firing("a", "y")]),
        ]
    }

    #[test]
    fn the_same_history_has_no_difference() {
        assert_eq!(
            stores(&store(&live()), &store(&live())).unwrap(),
            Vec::<String>::new()
        );
    }

    /// Read a row at a time, member by member: the first entry that differs is
    /// named with its member and its place, and an entry missing is counted.
    #[test]
    fn the_first_ledger_entry_or_firing_that_differs_is_named_with_its_member() {
        let mut replayed = live();
        replayed[2].0[0].amount = 4;
        let found = stores(&store(&live()), &store(&replayed)).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        // Member "a" sorts first: its second entry is the second of the walk.
        assert!(
            found[0].starts_with("ledger entry #2 (member \"a\""),
            "{found:?}"
        );
        assert!(found[0].contains("\"amount\":3") && found[0].contains("\"amount\":4"));

        let mut replayed = live();
        replayed[0].1[0].rule = "z".into();
        let found = stores(&store(&live()), &store(&replayed)).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("firing #3 (member \"b\""), "{found:?}");

        let mut replayed = live();
        replayed.push((vec![entry("b", 1, 6)], vec![]));
        let found = stores(&store(&live()), &store(&replayed)).unwrap();
        assert_eq!(
            found,
            vec!["ledger entry count: 3 live, 4 replayed".to_string()]
        );
    }
}
