//! What a self-check compares between the live store and its replay: members, the
//! ledger and firings (as the replay makes them, [`History`]), tickets, campaign
//! records, draws, reward records and redemptions, the community metrics
//! (`metrics.*`), armed timers, the messages queued and every leaderboard's rows.
//! Delivery (a message's status, attempts, errors, and the counts of deliveries among
//! the metrics) is not the engine's doing and is left out.
//!
//! Rows that `retention.messages` or `retention.history` removed from the live store
//! (both keep everything unless set) are made again by the replay: one missing live
//! counts as removed when it is older than the live rules' window as of the live
//! clock (a day's slack besides), and as a difference otherwise.
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::engine::{Firing, LedgerEntry};
use crate::outbox::OutboxRow;
use crate::runner::Journaled;
use crate::store::{Store, StoreError};

/// Differences reported at most: the first ones say what went wrong.
const MAX_REPORTED: usize = 20;

/// Every difference between `live` and `replayed`, up to [`MAX_REPORTED`]. A replayed
/// message missing from the live store counts as removed by `retention.messages` when
/// it was queued before `messages_removed_before` (see [`History`] for the history).
pub fn stores(
    live: &Store,
    replayed: &Store,
    messages_removed_before: Option<DateTime<Utc>>,
) -> Result<Vec<String>, StoreError> {
    let mut out = Differences::default();
    members(live, replayed, &mut out)?;
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
    messages(live, replayed, messages_removed_before, &mut out)?;
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

fn value<T: serde::Serialize>(row: &T) -> Value {
    serde_json::to_value(row).unwrap_or(Value::Null)
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
            Some(last) => after = Some(last.id.to_string()),
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

/// Messages as the engine queued them, by number, a batch of each store at a time
/// (the outbox grows with the events): what delivery changed is left out.
fn messages(
    live: &Store,
    replayed: &Store,
    removed_before: Option<DateTime<Utc>>,
    out: &mut Differences,
) -> Result<(), StoreError> {
    let mut live = Messages::new(live);
    let mut replayed = Messages::new(replayed);
    loop {
        match (live.peek()?, replayed.peek()?) {
            (None, None) => return Ok(()),
            (Some((a, _)), Some((b, _))) if a == b => {
                let (seq, a) = live.take();
                let (_, b) = replayed.take();
                if a != b {
                    out.push(format!("message {seq}: live {a}, replayed {b}"));
                }
            }
            (Some((a, _)), b) if b.is_none_or(|(b, _)| a < b) => {
                let (seq, a) = live.take();
                out.push(format!("message {seq}: live {a}, not in the replay"));
            }
            _ => {
                let (seq, b) = replayed.take();
                let queued = b["created_at"]
                    .as_str()
                    .and_then(|at| at.parse::<DateTime<Utc>>().ok());
                let removed = removed_before
                    .zip(queued)
                    .is_some_and(|(before, queued)| queued < before);
                if !removed {
                    out.push(format!("message {seq}: not live, replayed {b}"));
                }
            }
        }
    }
}

/// One store's outbox, in number order, read a batch at a time.
struct Messages<'s> {
    store: &'s Store,
    batch: std::collections::VecDeque<(u64, Value)>,
    from: u64,
    done: bool,
}

impl<'s> Messages<'s> {
    fn new(store: &'s Store) -> Self {
        Messages {
            store,
            batch: Default::default(),
            from: 0,
            done: false,
        }
    }

    /// The next message, reading the next batch when this one is used up.
    fn peek(&mut self) -> Result<Option<&(u64, Value)>, StoreError> {
        if self.batch.is_empty() && !self.done {
            let rows = self.store.outbox_scan(self.from, 1024)?;
            match rows.last() {
                Some((last, _)) => self.from = last + 1,
                None => self.done = true,
            }
            self.batch.extend(
                rows.into_iter()
                    .map(|(seq, bytes)| (seq, queued(seq, &bytes))),
            );
        }
        Ok(self.batch.front())
    }

    /// The message [`Messages::peek`] saw.
    fn take(&mut self) -> (u64, Value) {
        self.batch.pop_front().unwrap_or((0, Value::Null))
    }
}

/// A message as the engine queued it.
fn queued(seq: u64, bytes: &[u8]) -> Value {
    let Ok(row) = OutboxRow::decode(seq, bytes) else {
        return Value::String("(cannot be read)".into());
    };
    serde_json::json!({
        "member": row.member, "rule": row.rule, "channel": row.channel,
        "template": row.template, "to": row.to, "subject": row.subject,
        "body": row.body, "marketing": row.marketing, "created_at": row.created_at.to_rfc3339(),
    })
}

/// The replay's ledger entries and firings, compared with the live store's history as
/// the replay makes them, step by step: each member's entries must be the live ones
/// of that member, in the same order. What is held is one cursor per member into the
/// live history (the row it is in), never the history itself: a self-check of a long
/// journal needs memory for its members, not its events.
///
/// `retention.history` removes a member's oldest rows first, so a live history may
/// lack what the replay makes first. Replayed entries before a member's first match
/// are set aside (their count and the newest's time, per member); [`History::finish`]
/// takes them as removed only when the live rules keep history for less than their
/// age, and reports them otherwise.
pub struct History<'a> {
    live: &'a Store,
    cursors: HashMap<String, Cursors>,
    ledger: Progress,
    firings: Progress,
    out: Differences,
}

/// How far the check of one kind of entry has come, across members.
#[derive(Default)]
struct Progress {
    /// Entries of this kind the replay made.
    replayed: u64,
    /// A difference was reported: the rest of this kind is only counted.
    differs: bool,
}

/// A kind of history entry the check walks: ledger entries and firings alike.
trait Entry: serde::Serialize + Sized {
    /// How a difference names it.
    const KIND: &'static str;
    fn member(&self) -> &str;
    fn at(&self) -> DateTime<Utc>;
    /// This kind's cursor among a member's, and the row either cursor read last.
    fn parts(cursors: &mut Cursors) -> (&mut Cursor<Self>, &mut Option<LastRow>);
    /// This kind's part of a history row, taken out of it.
    fn pick(row: &mut LastRow) -> Option<Vec<Self>>;
}

impl Entry for LedgerEntry {
    const KIND: &'static str = "ledger entry";
    fn member(&self) -> &str {
        &self.member
    }
    fn at(&self) -> DateTime<Utc> {
        self.at
    }
    fn parts(cursors: &mut Cursors) -> (&mut Cursor<Self>, &mut Option<LastRow>) {
        (&mut cursors.ledger, &mut cursors.last)
    }
    fn pick(row: &mut LastRow) -> Option<Vec<Self>> {
        row.ledger.take()
    }
}

impl Entry for Firing {
    const KIND: &'static str = "firing";
    fn member(&self) -> &str {
        &self.member
    }
    fn at(&self) -> DateTime<Utc> {
        self.at
    }
    fn parts(cursors: &mut Cursors) -> (&mut Cursor<Self>, &mut Option<LastRow>) {
        (&mut cursors.firings, &mut cursors.last)
    }
    fn pick(row: &mut LastRow) -> Option<Vec<Self>> {
        row.firings.take()
    }
}

#[derive(Default)]
struct Cursors {
    ledger: Cursor<LedgerEntry>,
    firings: Cursor<Firing>,
    /// The row one cursor read last, for the other, which walks the same rows: each
    /// row is read and decoded once, not once per kind.
    last: Option<LastRow>,
}

/// A member's history row as read, with what of it is not taken yet.
struct LastRow {
    /// The key it was read after (`None`: the member's first row).
    after: Option<Vec<u8>>,
    key: Vec<u8>,
    ledger: Option<Vec<LedgerEntry>>,
    firings: Option<Vec<Firing>>,
}

/// Where the walk of one member's live entries of one kind is: the history row it is
/// in (by key), the next entry of it, and what was set aside before the first match.
struct Cursor<T> {
    row: Option<Vec<u8>>,
    entries: std::vec::IntoIter<T>,
    /// Entries of this member and kind taken so far.
    taken: u64,
    /// Whether a replayed entry has matched a live one yet.
    matched: bool,
    aside: Aside,
}

/// Replayed entries of a member found before any matched the live history: perhaps
/// what retention removed.
#[derive(Default)]
struct Aside {
    count: u64,
    newest: Option<DateTime<Utc>>,
    /// The first, as it would be reported: the live entry then next, and the replayed.
    first: Option<(Option<Value>, Value)>,
}

impl<T> Default for Cursor<T> {
    fn default() -> Self {
        Cursor {
            row: None,
            entries: Vec::new().into_iter(),
            taken: 0,
            matched: false,
            aside: Aside::default(),
        }
    }
}

impl<T: Entry> Cursor<T> {
    /// The member's next live entry of this kind, not taken, reading history rows as
    /// needed — or taking this kind's part of the row the other cursor read last.
    fn peek(
        &mut self,
        live: &Store,
        member: &str,
        last: &mut Option<LastRow>,
    ) -> Result<Option<&T>, StoreError> {
        while self.entries.as_slice().is_empty() {
            let cached = last
                .as_mut()
                .filter(|row| row.after == self.row)
                .and_then(|row| T::pick(row).map(|part| (row.key.clone(), part)));
            let (key, part) = match cached {
                Some(found) => found,
                None => {
                    let Some((key, (ledger, firings))) =
                        live.member_history_after(member, self.row.as_deref())?
                    else {
                        return Ok(None);
                    };
                    let mut row = LastRow {
                        after: self.row.take(),
                        key: key.clone(),
                        ledger: Some(ledger),
                        firings: Some(firings),
                    };
                    let part = T::pick(&mut row).unwrap_or_default();
                    *last = Some(row);
                    (key, part)
                }
            };
            self.row = Some(key);
            self.entries = part.into_iter();
        }
        Ok(self.entries.as_slice().first())
    }

    /// Compares a replayed entry with its member's next live one; reports and
    /// returns true when they differ.
    fn compare(
        &mut self,
        live: &Store,
        last: &mut Option<LastRow>,
        entry: &T,
        out: &mut Differences,
    ) -> Result<bool, StoreError> {
        let (member, at) = (entry.member(), entry.at());
        let replayed = value(entry);
        let next = self.peek(live, member, last)?.map(value);
        if next.as_ref() == Some(&replayed) {
            self.entries.next();
            self.taken += 1;
            self.matched = true;
            return Ok(false);
        }
        if !self.matched {
            let aside = &mut self.aside;
            aside.count += 1;
            aside.newest = Some(aside.newest.map_or(at, |newest| newest.max(at)));
            aside.first.get_or_insert((next, replayed));
            return Ok(false);
        }
        report(out, T::KIND, self.taken + 1, member, next, &replayed);
        Ok(true)
    }
}

impl<'a> History<'a> {
    pub fn new(live: &'a Store) -> Self {
        History {
            live,
            cursors: HashMap::new(),
            ledger: Progress::default(),
            firings: Progress::default(),
            out: Differences::default(),
        }
    }

    /// What the replay's steps since the last call recorded, in step order.
    pub fn check(&mut self, steps: &[Journaled]) -> Result<(), StoreError> {
        let History {
            live,
            cursors,
            ledger,
            firings,
            out,
        } = self;
        for step in steps {
            for entry in &step.ledger {
                check_entry(live, cursors, ledger, out, entry)?;
            }
            for firing in &step.firings {
                check_entry(live, cursors, firings, out, firing)?;
            }
        }
        Ok(())
    }

    /// The differences found, and the counts when they differ: every replayed entry
    /// matched its member's next live one or was set aside, so equal counts mean the
    /// live history has nothing the replay did not make. What was set aside counts
    /// as removed when `removed_before` (from the live rules' `retention.history`,
    /// `None` when they keep everything) is later than its newest; else it is
    /// reported, members in id order.
    pub fn finish(
        mut self,
        removed_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<String>, StoreError> {
        let mut members: Vec<(&String, &Cursors)> = self
            .cursors
            .iter()
            .filter(|(_, c)| c.ledger.aside.count + c.firings.aside.count > 0)
            .collect();
        members.sort_by(|a, b| a.0.cmp(b.0));
        let mut removed = (0, 0);
        for (member, cursors) in members {
            for (kind, aside, removed) in [
                (LedgerEntry::KIND, &cursors.ledger.aside, &mut removed.0),
                (Firing::KIND, &cursors.firings.aside, &mut removed.1),
            ] {
                let Some((live, replayed)) = &aside.first else {
                    continue;
                };
                let gone = removed_before
                    .zip(aside.newest)
                    .is_some_and(|(before, newest)| newest < before);
                if gone {
                    *removed += aside.count;
                } else {
                    report(&mut self.out, kind, 1, member, live.clone(), replayed);
                }
            }
        }
        let live = self.live.history_counts()?;
        for (kind, live, replayed) in [
            (LedgerEntry::KIND, live.0, self.ledger.replayed - removed.0),
            (Firing::KIND, live.1, self.firings.replayed - removed.1),
        ] {
            if live != replayed {
                self.out
                    .push(format!("{kind} count: {live} live, {replayed} replayed"));
            }
        }
        Ok(self.out.found)
    }
}

/// One replayed entry against its member's next live one, until the first difference
/// of its kind; after that, only counted.
fn check_entry<T: Entry>(
    live: &Store,
    cursors: &mut HashMap<String, Cursors>,
    progress: &mut Progress,
    out: &mut Differences,
    entry: &T,
) -> Result<(), StoreError> {
    progress.replayed += 1;
    if progress.differs {
        return Ok(());
    }
    let member = cursors.entry(entry.member().to_string()).or_default();
    let (cursor, last) = T::parts(member);
    progress.differs = cursor.compare(live, last, entry, out)?;
    Ok(())
}

/// Reports a replayed entry that is not the member's `at`-th live one (`live`: what is
/// there instead, `None` when nothing is).
fn report(
    out: &mut Differences,
    kind: &str,
    at: u64,
    member: &str,
    live: Option<Value>,
    replayed: &Value,
) {
    out.push(match live {
        Some(live) => format!("member {member:?}'s {kind} #{at}: live {live}, replayed {replayed}"),
        None => format!(
            "member {member:?}'s {kind} #{at}: not in the live history, replayed {replayed}"
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Status;
    use crate::store::StepWrite;

    fn entry(member: &str, amount: i64) -> LedgerEntry {
        LedgerEntry {
            member: member.into(),
            amount,
            balance: amount,
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
            version: Default::default(),
        }
    }

    fn step(ledger: Vec<LedgerEntry>, firings: Vec<Firing>) -> Journaled {
        Journaled {
            ledger,
            firings,
            ..Journaled::default()
        }
    }

    /// The live run: three steps of two members, each step committed on its own.
    fn steps() -> Vec<Journaled> {
        vec![
            step(vec![entry("b", 5)], vec![firing("b", "x")]),
            step(vec![entry("a", 5), entry("a", 1)], vec![firing("a", "x")]),
            step(vec![entry("a", 3)], vec![firing("a", "y")]),
        ]
    }

    fn live(steps: &[Journaled]) -> Store {
        let store = Store::in_memory().unwrap();
        for step in steps {
            store
                .commit(&[StepWrite {
                    ledger: step.ledger.clone(),
                    firings: step.firings.clone(),
                    ..StepWrite::default()
                }])
                .unwrap();
        }
        store
    }

    /// The replay's steps checked a few at a time, as the self-check does.
    fn check(live: &Store, replayed: &[Journaled]) -> Vec<String> {
        let mut history = History::new(live);
        for steps in replayed.chunks(2) {
            history.check(steps).unwrap();
        }
        history.finish(None).unwrap()
    }

    #[test]
    fn the_same_steps_as_the_live_history_have_no_difference() {
        assert_eq!(check(&live(&steps()), &steps()), Vec::<String>::new());
    }

    /// Each member's entries are walked in the live history's order, a row at a time:
    /// the first that differs is named with its member and its place among theirs.
    #[test]
    fn the_first_ledger_entry_or_firing_that_differs_is_named_with_its_member() {
        let live = live(&steps());
        let mut replayed = steps();
        replayed[2].ledger[0].amount = 4;
        let found = check(&live, &replayed);
        assert_eq!(found.len(), 1, "{found:?}");
        // Member "a"'s third entry: the second row's two, then this one.
        assert!(
            found[0].starts_with("member \"a\"'s ledger entry #3: live"),
            "{found:?}"
        );
        assert!(found[0].contains("\"amount\":3") && found[0].contains("\"amount\":4"));

        let mut replayed = steps();
        replayed[0].firings[0].rule = "z".into();
        let found = check(&live, &replayed);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("member \"b\"'s firing #1: live"),
            "{found:?}"
        );
    }

    /// An entry the live history lacks is said so; one the replay lacks shows in the
    /// counts, which are compared over the whole history.
    #[test]
    fn an_entry_more_or_less_than_live_is_found() {
        let live = live(&steps());
        let mut more = steps();
        more.push(step(vec![entry("b", 1)], vec![]));
        assert_eq!(
            check(&live, &more),
            vec![
                format!(
                    "member \"b\"'s ledger entry #2: not in the live history, replayed {}",
                    value(&entry("b", 1))
                ),
                "ledger entry count: 4 live, 5 replayed".to_string(),
            ]
        );
        let mut fewer = steps();
        fewer[2].firings.clear();
        assert_eq!(
            check(&live, &fewer),
            vec!["firing count: 3 live, 2 replayed".to_string()]
        );
    }

    fn at_day(mut entry: LedgerEntry, day: i64) -> LedgerEntry {
        entry.at = chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(day);
        entry
    }

    /// `retention.history` removed member "a"'s oldest rows live: the replay makes
    /// them again. They count as removed when older than the window as of the live
    /// clock, and are reported when the rules keep everything or they are too new.
    #[test]
    fn entries_retention_removed_live_count_as_removed_only_when_old_enough() {
        let replayed = vec![
            step(vec![at_day(entry("a", 5), 1)], vec![]),
            step(vec![at_day(entry("a", 2), 2)], vec![]),
            step(
                vec![at_day(entry("a", 7), 9), at_day(entry("b", 1), 9)],
                vec![],
            ),
        ];
        // Live kept only the day-9 rows.
        let live = live(&replayed[2..]);
        let finish = |removed_before: Option<i64>| {
            let mut history = History::new(&live);
            history.check(&replayed).unwrap();
            history
                .finish(
                    removed_before
                        .map(|day| chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(day)),
                )
                .unwrap()
        };
        assert_eq!(finish(Some(5)), Vec::<String>::new());
        for too_early in [None, Some(2)] {
            let found = finish(too_early);
            assert_eq!(found.len(), 2, "{found:?}");
            assert!(
                found[0].starts_with("member \"a\"'s ledger entry #1: live"),
                "{found:?}"
            );
            assert_eq!(found[1], "ledger entry count: 2 live, 4 replayed");
        }
        // Set aside only before a member's first match: a gap later is a difference.
        let mut gap = replayed.clone();
        gap.insert(3, step(vec![at_day(entry("b", 9), 1)], vec![]));
        let mut history = History::new(&live);
        history.check(&gap).unwrap();
        let found = history
            .finish(Some(
                chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(5),
            ))
            .unwrap();
        assert!(
            found[0].starts_with("member \"b\"'s ledger entry #2: not in the live history"),
            "{found:?}"
        );
    }

    fn message(seq: u64, body: &str) -> (u64, Vec<u8>) {
        let row = crate::outbox::OutboxRow {
            seq,
            key: format!("r|{seq}|m"),
            member: Some("m".into()),
            rule: Some("r".into()),
            channel: "console".into(),
            template: None,
            to: "m".into(),
            subject: String::new(),
            body: body.into(),
            html: false,
            webhook_body: None,
            marketing: true,
            status: Status::Pending,
            due: chrono::DateTime::UNIX_EPOCH,
            attempts: 0,
            first_failed_at: None,
            last_error: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            sent_at: None,
        };
        (seq, row.encode().unwrap())
    }

    fn outbox(rows: Vec<(u64, Vec<u8>)>) -> Store {
        let store = Store::in_memory_without_history().unwrap();
        store
            .commit(&[StepWrite {
                outbox_put: rows,
                ..StepWrite::default()
            }])
            .unwrap();
        store
    }

    /// Messages are read a batch at a time from both stores and matched by number,
    /// past the first batch too: a changed body, one only live, one only replayed.
    #[test]
    fn messages_are_matched_by_number_batch_by_batch() {
        let rows = |n: u64| (1..=n).map(|seq| message(seq, "hi")).collect::<Vec<_>>();
        let mut live_rows = rows(3_000);
        live_rows.retain(|(seq, _)| *seq != 1_500);
        live_rows[2_500] = message(2_502, "changed");
        let mut replayed_rows = rows(3_000);
        replayed_rows.retain(|(seq, _)| *seq != 2_999);
        let mut out = Differences::default();
        messages(&outbox(live_rows), &outbox(replayed_rows), None, &mut out).unwrap();
        assert_eq!(out.found.len(), 3, "{:?}", out.found);
        assert!(out.found[0].starts_with("message 1500: not live, replayed"));
        assert!(out.found[1].starts_with("message 2502: live") && out.found[1].contains("changed"));
        assert!(
            out.found[2].starts_with("message 2999: live")
                && out.found[2].ends_with("not in the replay")
        );
        // Missing live and queued before the retention's cutoff: removed, not reported.
        let mut removed = Differences::default();
        let cutoff = chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(1);
        messages(
            &outbox(rows(10)[5..].to_vec()),
            &outbox(rows(10)),
            Some(cutoff),
            &mut removed,
        )
        .unwrap();
        assert!(removed.found.is_empty(), "{:?}", removed.found);
        let mut too_new = Differences::default();
        let cutoff = chrono::DateTime::UNIX_EPOCH;
        messages(
            &outbox(rows(10)[5..].to_vec()),
            &outbox(rows(10)),
            Some(cutoff),
            &mut too_new,
        )
        .unwrap();
        assert_eq!(too_new.found.len(), 5, "{:?}", too_new.found);
        let mut none = Differences::default();
        messages(&outbox(rows(2_100)), &outbox(rows(2_100)), None, &mut none).unwrap();
        assert!(none.found.is_empty());
    }
}
