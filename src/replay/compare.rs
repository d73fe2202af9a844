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
    out.rows(
        "ledger entry",
        values(live.ledger_all()?),
        values(replayed.ledger_all()?),
    );
    out.rows(
        "firing",
        values(live.firings_all()?),
        values(replayed.firings_all()?),
    );
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

fn values<T: serde::Serialize>(rows: Vec<T>) -> Vec<Value> {
    rows.iter()
        .map(|row| serde_json::to_value(row).unwrap_or(Value::Null))
        .collect()
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
