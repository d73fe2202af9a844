//! The metrics as stored: one [`Tally`] in memory, the rows it changed written back
//! with the step that changed them.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::presence::{Presence, PresenceDay};
use crate::money::Decimal;
use crate::store::{StepWrite, Store, StoreError};

/// Meta names of the metrics rows start with this.
pub const META: &str = "metrics.";
const DAY: &str = "metrics.day.";
const ACTIVE: &str = "metrics.active.";
const BUYERS: &str = "metrics.buyers.";
const REBUYERS: &str = "metrics.rebuyers.";
const TIERS: &str = "metrics.tiers";
const COHORTS: &str = "metrics.cohorts";
const REENGAGEMENT: &str = "metrics.reengagement";
const CAMPAIGNS: &str = "metrics.campaigns";

/// What happened on one day (`settings.timezone`): everything a report sums.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Day {
    /// Members Rally saw for the first time.
    pub new: u64,
    /// Activity after a silence at least as long as the shortest `inactive` rule, or
    /// after leaving.
    pub returned: u64,
    /// `leave` events of members who had not left.
    pub left: u64,
    pub purchases: u64,
    /// The sum of the purchases' amounts (`spend_total`), exact.
    #[serde(with = "decimal_text")]
    pub gmv: Decimal,
    /// Points awarded (ledger entries above zero).
    pub issued: i64,
    /// Points spent on granted redemptions.
    pub redeemed: i64,
    /// Other deductions: manual adjustments, `points` actions below zero.
    pub deducted: i64,
    /// Points that expired (`settings.points.expire`).
    pub expired: i64,
    /// The change of the sum of all balances: summed from the start, the liability.
    pub balance_change: i64,
    /// Messages queued, by their status when queued (`queued`, `capped`, `suppressed`).
    pub messages: BTreeMap<String, u64>,
    /// Messages queued, by channel.
    pub channels: BTreeMap<String, u64>,
    /// Messages queued, by channel then their status when queued: what `channels`
    /// holds, split as `messages` is.
    pub channel_statuses: BTreeMap<String, BTreeMap<String, u64>>,
    pub tickets_opened: u64,
    pub tickets_acknowledged: u64,
    pub tickets_resolved: u64,
    /// Seconds from opening to acknowledgement, of the tickets acknowledged this day.
    pub ack_seconds: BTreeMap<i64, u64>,
    /// SLA deadlines that ran out, by the level whose deadline it was.
    pub breaches: BTreeMap<usize, u64>,
    /// By rule id. Hashed: every firing and ledger entry of a step counts here, and an
    /// ordered map's string comparisons cost more than the rest of a step's metrics.
    /// Written in id order, so a row's text never depends on the hashing.
    #[serde(serialize_with = "in_id_order")]
    pub rules: HashMap<String, RuleCounts, foldhash::fast::RandomState>,
}

/// `rules` as a map in id order, as an ordered map writes it.
fn in_id_order<S: serde::Serializer>(
    rules: &HashMap<String, RuleCounts, foldhash::fast::RandomState>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut sorted: Vec<(&String, &RuleCounts)> = rules.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    serializer.collect_map(sorted)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleCounts {
    pub firings: u64,
    pub failures: u64,
    pub points: i64,
}

/// One step of a re-engagement ladder: messages sent by an `inactive` rule with one
/// template, and how many of their members came back within the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Winback {
    pub sent: u64,
    pub returned: u64,
}

/// One campaign's phase, from one start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseCounts {
    pub name: String,
    /// Distinct members active while it ran.
    pub participants: u64,
    /// Points awarded to anyone while it ran.
    pub points: i64,
    /// Purchases' amounts while it ran.
    #[serde(with = "decimal_text")]
    pub gmv: Decimal,
    /// Points its campaign's rules charged to the budget while it ran.
    pub budget_used: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cohort {
    pub size: u64,
    /// `active[k]`: members of the cohort active in the k-th week after joining.
    pub active: Vec<u64>,
}

/// The distinct counts kept.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    Active,
    Buyer,
    RepeatBuyer,
}

/// A row of the metrics, to write back after a step changed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    Day(NaiveDate),
    Active(NaiveDate),
    Buyers(NaiveDate),
    Rebuyers(NaiveDate),
    Tiers,
    Cohorts,
    Reengagement,
    Campaigns,
}

/// Every metric, as committed plus what the open group added. The runner forgets it
/// (loads it again) whenever a group fails, as it does its campaign records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub days: BTreeMap<NaiveDate, Day>,
    pub active: Presence,
    pub buyers: Presence,
    pub rebuyers: Presence,
    pub tiers: BTreeMap<String, u64>,
    /// By join week (`2026-W44`).
    pub cohorts: BTreeMap<String, Cohort>,
    /// By rule, then template.
    pub reengagement: BTreeMap<String, BTreeMap<String, Winback>>,
    /// By campaign, then its phase's start (RFC 3339).
    pub campaigns: BTreeMap<String, BTreeMap<String, PhaseCounts>>,
    /// Rows changed since the last flush, each once: a few per group, looked through
    /// on every step (a short vector beats a tree at that size), written in order.
    dirty: Vec<Row>,
}

impl Tally {
    /// The metrics stored in `store` (none yet: all zero).
    pub fn load(store: &Store) -> Result<Tally, StoreError> {
        let mut tally = Tally::default();
        for (name, bytes) in store.meta_scan(META)? {
            let corrupt = |e: serde_json::Error| StoreError::corrupt("meta", name.as_bytes(), e);
            if let Some(day) = name.strip_prefix(DAY) {
                let Ok(day) = day.parse::<NaiveDate>() else {
                    return Err(StoreError::corrupt("meta", name.as_bytes(), "not a day"));
                };
                tally
                    .days
                    .insert(day, serde_json::from_slice(&bytes).map_err(corrupt)?);
                continue;
            }
            let presence = [
                (ACTIVE, &mut tally.active),
                (BUYERS, &mut tally.buyers),
                (REBUYERS, &mut tally.rebuyers),
            ];
            if let Some((day, presence)) = presence
                .into_iter()
                .find_map(|(prefix, presence)| name.strip_prefix(prefix).map(|day| (day, presence)))
            {
                let Ok(day) = day.parse::<NaiveDate>() else {
                    return Err(StoreError::corrupt("meta", name.as_bytes(), "not a day"));
                };
                let row: PresenceDay = serde_json::from_slice(&bytes).map_err(corrupt)?;
                presence.load_day(day, row);
                continue;
            }
            match name.as_str() {
                TIERS => tally.tiers = serde_json::from_slice(&bytes).map_err(corrupt)?,
                COHORTS => tally.cohorts = serde_json::from_slice(&bytes).map_err(corrupt)?,
                REENGAGEMENT => {
                    tally.reengagement = serde_json::from_slice(&bytes).map_err(corrupt)?
                }
                CAMPAIGNS => tally.campaigns = serde_json::from_slice(&bytes).map_err(corrupt)?,
                // A row a later version writes: not ours to judge.
                _ => {}
            }
        }
        Ok(tally)
    }

    /// `row` is to be written back at the next flush.
    fn mark(&mut self, row: Row) {
        if !self.dirty.contains(&row) {
            self.dirty.push(row);
        }
    }

    /// The day's counts, to change: the row is written back at the next flush.
    pub(super) fn day(&mut self, day: NaiveDate) -> &mut Day {
        self.mark(Row::Day(day));
        self.days.entry(day).or_default()
    }

    /// A member present on `day`, last present on `previous`, for the distinct count
    /// `presence` names: whether it is news (see [`Presence::present`]).
    pub(super) fn present(
        &mut self,
        kind: Kind,
        previous: Option<NaiveDate>,
        day: NaiveDate,
    ) -> bool {
        let (presence, row): (&mut Presence, fn(NaiveDate) -> Row) = match kind {
            Kind::Active => (&mut self.active, Row::Active),
            Kind::Buyer => (&mut self.buyers, Row::Buyers),
            Kind::RepeatBuyer => (&mut self.rebuyers, Row::Rebuyers),
        };
        if !presence.present(previous, day) {
            return false;
        }
        if let Some(previous) = previous {
            self.mark(row(previous));
        }
        self.mark(row(day));
        true
    }

    pub(super) fn touch_tiers(&mut self) -> &mut BTreeMap<String, u64> {
        self.mark(Row::Tiers);
        &mut self.tiers
    }

    pub(super) fn touch_cohorts(&mut self) -> &mut BTreeMap<String, Cohort> {
        self.mark(Row::Cohorts);
        &mut self.cohorts
    }

    pub(super) fn touch_reengagement(
        &mut self,
    ) -> &mut BTreeMap<String, BTreeMap<String, Winback>> {
        self.mark(Row::Reengagement);
        &mut self.reengagement
    }

    pub(super) fn touch_campaigns(
        &mut self,
    ) -> &mut BTreeMap<String, BTreeMap<String, PhaseCounts>> {
        self.mark(Row::Campaigns);
        &mut self.campaigns
    }

    /// Puts every row changed since the last flush into `write`, which the runner
    /// commits in the batch of the steps that changed them (one write per row per
    /// group, however many of its steps changed it).
    pub fn flush(&mut self, write: &mut StepWrite) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        for row in dirty {
            let (name, bytes) = match &row {
                Row::Day(day) => (format!("{DAY}{day}"), encode(self.days.get(day))),
                Row::Active(day) => (day_row(ACTIVE, *day), self.active.encode_day(*day)),
                Row::Buyers(day) => (day_row(BUYERS, *day), self.buyers.encode_day(*day)),
                Row::Rebuyers(day) => (day_row(REBUYERS, *day), self.rebuyers.encode_day(*day)),
                Row::Tiers => (TIERS.to_string(), encode(Some(&self.tiers))),
                Row::Cohorts => (COHORTS.to_string(), encode(Some(&self.cohorts))),
                Row::Reengagement => (REENGAGEMENT.to_string(), encode(Some(&self.reengagement))),
                Row::Campaigns => (CAMPAIGNS.to_string(), encode(Some(&self.campaigns))),
            };
            write.meta_put.push((name, bytes));
        }
    }
}

/// The name of a row kept per day: `prefix` and the day as chrono writes it
/// (`YYYY-MM-DD`), which a flush writes dozens of times; the formatter only for years
/// of other than four digits.
fn day_row(prefix: &str, day: NaiveDate) -> String {
    if !(1000..=9999).contains(&day.year()) {
        return format!("{prefix}{day}");
    }
    let mut key = String::with_capacity(10);
    crate::localtime::write_period_key(crate::localtime::Period::Day, day, &mut key);
    let mut name = String::with_capacity(prefix.len() + key.len());
    name.push_str(prefix);
    name.push_str(&key);
    name
}

/// JSON of maps with text, date and number keys and plain fields: it cannot fail.
fn encode<T: Serialize>(value: Option<&T>) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap_or_default()
}

/// An exact amount as its text, as counters are stored (`money::counters`).
mod decimal_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::money::Decimal;

    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_rows_name_is_the_prefix_and_the_day_as_chrono_writes_it() {
        for (y, m, d) in [
            (2026, 11, 3),
            (1000, 1, 1),
            (9999, 12, 31),
            (999, 5, 6),
            (10_000, 2, 7),
            (-3, 4, 5),
        ] {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(day_row(ACTIVE, day), format!("{ACTIVE}{day}"));
        }
    }

    /// A day's rule counts are hashed in memory; stored, they read in id order as an
    /// ordered map wrote them, and read back the same.
    #[test]
    fn a_days_rules_are_written_in_id_order_and_read_back_whole() {
        let mut day = Day::default();
        for (n, rule) in ["welcome", "buy-10", "a", "zeta", "buy-2", "Ünicode"]
            .into_iter()
            .enumerate()
        {
            day.rules.insert(
                rule.to_string(),
                RuleCounts {
                    firings: n as u64 + 1,
                    failures: 0,
                    points: -(n as i64),
                },
            );
        }
        let text = serde_json::to_string(&day).unwrap();
        let at = |rule: &str| text.find(&format!("\"{rule}\":")).unwrap();
        let order = ["a", "buy-10", "buy-2", "welcome", "zeta", "Ünicode"].map(at);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(serde_json::from_str::<Day>(&text).unwrap(), day);
    }
}
