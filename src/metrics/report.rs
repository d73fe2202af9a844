//! The report document (`GET /v1/report`, `rally report --json`): the metrics of a
//! range of days, by day, week or month, in `settings.timezone`.
//!
//! Everything comes from the `metrics.*` rows: the runner's ([`Tally`]) and the
//! dispatcher's deliveries ([`Deliveries`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::deliveries::{self, Delivered, Deliveries};
use super::range::Range;
use super::rows::{Day, Tally};
use crate::rules::{RuleSet, Trigger};

/// The report document for `range`, at `now` (for phases still running).
pub fn build(
    tally: &Tally,
    deliveries: &Deliveries,
    rules: &RuleSet,
    range: Range,
    now: DateTime<Utc>,
) -> Value {
    let periods: Vec<Value> = range
        .periods()
        .into_iter()
        .map(|(name, from, to)| {
            let mut section = period(tally, deliveries, rules, from, to);
            let mut with_name = Map::new();
            with_name.insert("period".into(), json!(name));
            with_name.append(&mut section);
            Value::Object(with_name)
        })
        .collect();
    let sum = summed(tally, range.from, range.to);
    json!({
        "from": range.from.to_string(),
        "to": range.to.to_string(),
        "by": range.by.name(),
        "timezone": rules.settings.timezone.name(),
        "periods": periods,
        "totals": period(tally, deliveries, rules, range.from, range.to),
        "tiers": tiers(tally, rules),
        "reengagement": reengagement(tally),
        "campaigns": campaigns(tally, rules, now),
        "cohorts": cohorts(tally),
        "tickets": tickets(&sum),
        "rules": rules_section(&sum, rules),
    })
}

/// The days `[from, to]` summed.
fn summed(tally: &Tally, from: NaiveDate, to: NaiveDate) -> Day {
    let mut sum = Day::default();
    for day in tally.days.range(from..=to).map(|(_, d)| d) {
        sum.new += day.new;
        sum.returned += day.returned;
        sum.left += day.left;
        sum.purchases += day.purchases;
        sum.gmv += day.gmv;
        sum.issued += day.issued;
        sum.redeemed += day.redeemed;
        sum.deducted += day.deducted;
        sum.expired += day.expired;
        sum.balance_change += day.balance_change;
        add_all(&mut sum.messages, &day.messages);
        add_all(&mut sum.channels, &day.channels);
        for (channel, statuses) in &day.channel_statuses {
            add_all(
                sum.channel_statuses.entry(channel.clone()).or_default(),
                statuses,
            );
        }
        sum.tickets_opened += day.tickets_opened;
        sum.tickets_acknowledged += day.tickets_acknowledged;
        sum.tickets_resolved += day.tickets_resolved;
        add_all(&mut sum.ack_seconds, &day.ack_seconds);
        add_all(&mut sum.breaches, &day.breaches);
        for (rule, counts) in &day.rules {
            let total = sum.rules.entry(rule.clone()).or_default();
            total.firings += counts.firings;
            total.failures += counts.failures;
            total.points += counts.points;
        }
    }
    sum
}

fn add_all<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, n) in from {
        *into.entry(key.clone()).or_default() += n;
    }
}

/// One period's sections (also the totals, over the whole range).
fn period(
    tally: &Tally,
    deliveries: &Deliveries,
    rules: &RuleSet,
    from: NaiveDate,
    to: NaiveDate,
) -> Map<String, Value> {
    let sum = summed(tally, from, to);
    let ever = summed_scalar(tally, to);
    let buyers = tally.buyers.distinct(from, to);
    let rebuyers = tally.rebuyers.distinct(from, to);
    let delivered = deliveries::summed(deliveries, from, to);
    let mut all = Delivered::default();
    delivered.values().for_each(|channel| all.add(channel));
    let count = |status: &str| sum.messages.get(status).copied().unwrap_or(0);
    let mut silent = Map::new();
    for (name, days) in silent_bands(rules) {
        let count = match to.checked_sub_signed(Duration::days(days)) {
            Some(last) => tally.active.absent_since(last, to),
            None => 0,
        };
        silent.insert(name, json!(count));
    }
    let mut section = Map::new();
    section.insert(
        "members".into(),
        json!({
            "total": ever.0,
            "new": sum.new,
            "active": tally.active.distinct(from, to),
            "returned": sum.returned,
            "left": sum.left,
        }),
    );
    section.insert("silent".into(), Value::Object(silent));
    section.insert(
        "commerce".into(),
        json!({
            "purchases": sum.purchases,
            "gmv": sum.gmv.normalize().to_string(),
            "buyers": buyers,
            "repurchase_rate": ratio(rebuyers, buyers),
            "repeat_buyers": rebuyers,
        }),
    );
    section.insert(
        "points".into(),
        json!({
            "issued": sum.issued,
            "redeemed": sum.redeemed,
            "expired": sum.expired,
            "outstanding": ever.1,
            "deducted": sum.deducted,
        }),
    );
    section.insert(
        "messages".into(),
        json!({
            "queued": count("queued"),
            "sent": all.sent,
            "failed": all.failed,
            "retried": all.retried,
            "requeued": all.requeued,
            "suppressed": count("suppressed"),
            "suppressed_at_sending": all.suppressed_at_sending,
            "capped": count("capped"),
            "by_channel": sum.channels,
            "by_channel_status": sum.channel_statuses,
            "deliveries": delivered,
        }),
    );
    section.insert(
        "tickets".into(),
        json!({
            "opened": sum.tickets_opened,
            "acknowledged": sum.tickets_acknowledged,
            "resolved": sum.tickets_resolved,
        }),
    );
    section
}

/// Members seen and the points outstanding, from the first day through `to`.
fn summed_scalar(tally: &Tally, to: NaiveDate) -> (u64, i64) {
    tally
        .days
        .range(..=to)
        .fold((0, 0), |(members, points), (_, day)| {
            (members + day.new, points + day.balance_change)
        })
}

/// The `inactive` rules' durations as written (`7d`), each once, shortest first, with
/// the whole days a member must have been silent: a duration of part of a day counts
/// as the whole day.
pub fn silent_bands(rules: &RuleSet) -> Vec<(String, i64)> {
    let mut durations: Vec<Duration> = rules
        .rules
        .iter()
        .filter_map(|r| match r.trigger {
            Trigger::Inactive(d) => Some(d),
            _ => None,
        })
        .collect();
    durations.sort();
    durations.dedup();
    durations
        .into_iter()
        .map(|d| {
            let day = Duration::days(1);
            let days = d.num_seconds().div_euclid(day.num_seconds())
                + i64::from(d.num_seconds() % day.num_seconds() != 0);
            (crate::duration::format(d), days)
        })
        .collect()
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Members per tier now: every tier of the ladder, in its order, then any a member
/// still holds from an earlier rule set.
fn tiers(tally: &Tally, rules: &RuleSet) -> Value {
    let mut out = Map::new();
    for level in rules.tiers.iter().flat_map(|t| &t.levels) {
        let count = tally.tiers.get(&level.name).copied().unwrap_or(0);
        out.insert(level.name.clone(), json!(count));
    }
    for (name, count) in &tally.tiers {
        if !out.contains_key(name) && *count > 0 {
            out.insert(name.clone(), json!(count));
        }
    }
    Value::Object(out)
}

fn reengagement(tally: &Tally) -> Value {
    let mut out = Vec::new();
    for (rule, templates) in &tally.reengagement {
        for (template, counts) in templates {
            out.push(json!({
                "rule": rule,
                "template": template,
                "sent": counts.sent,
                "returned": counts.returned,
                "rate": ratio(counts.returned, counts.sent),
            }));
        }
    }
    Value::Array(out)
}

fn campaigns(tally: &Tally, rules: &RuleSet, now: DateTime<Utc>) -> Value {
    let mut out = Vec::new();
    for campaign in &rules.campaigns {
        let phases: Vec<Value> = tally
            .campaigns
            .get(&campaign.id)
            .into_iter()
            .flatten()
            .map(|(since, counts)| {
                let to = DateTime::parse_from_rfc3339(since)
                    .ok()
                    .and_then(|since| {
                        crate::campaign::next_transition_after(campaign, since.with_timezone(&Utc))
                    })
                    .map(|t| t.at)
                    .filter(|at| *at <= now)
                    .map(crate::member::rfc3339);
                json!({
                    "name": counts.name,
                    "from": since,
                    "to": to,
                    "participants": counts.participants,
                    "points": counts.points,
                    "gmv": counts.gmv.normalize().to_string(),
                    "budget_used": counts.budget_used,
                })
            })
            .collect();
        out.push(json!({ "id": campaign.id, "phases": phases }));
    }
    Value::Array(out)
}

fn cohorts(tally: &Tally) -> Value {
    tally
        .cohorts
        .iter()
        .map(|(week, cohort)| json!({ "week": week, "size": cohort.size, "active": cohort.active }))
        .collect()
}

fn tickets(sum: &Day) -> Value {
    let breaches: Map<String, Value> = sum
        .breaches
        .iter()
        .map(|(level, n)| (level.to_string(), json!(n)))
        .collect();
    json!({
        "opened": sum.tickets_opened,
        "acknowledged": sum.tickets_acknowledged,
        "resolved": sum.tickets_resolved,
        "ack_p50_seconds": percentile(&sum.ack_seconds, 50),
        "ack_p90_seconds": percentile(&sum.ack_seconds, 90),
        "breaches": breaches,
    })
}

/// The nearest-rank percentile of a histogram: the smallest value with at least
/// `p`% of the counts at or below it. `None` for no counts.
pub fn percentile(histogram: &BTreeMap<i64, u64>, p: u64) -> Option<i64> {
    let total: u64 = histogram.values().sum();
    if total == 0 {
        return None;
    }
    let rank = (p * total).div_ceil(100).max(1);
    let mut seen = 0;
    for (value, count) in histogram {
        seen += count;
        if seen >= rank {
            return Some(*value);
        }
    }
    None
}

/// Every rule of the set in run order, then any other that fired in the range.
fn rules_section(sum: &Day, rules: &RuleSet) -> Value {
    let mut out = Vec::new();
    let row = |id: &str| {
        let counts = sum.rules.get(id).cloned().unwrap_or_default();
        json!({ "id": id, "firings": counts.firings, "failures": counts.failures, "points": counts.points })
    };
    for rule in &rules.rules {
        out.push(row(&rule.id));
    }
    for id in sum.rules.keys() {
        if !rules.rules.iter().any(|r| &r.id == id) {
            out.push(row(id));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let histogram: BTreeMap<i64, u64> = [(10, 1), (20, 1), (30, 1), (40, 1), (100, 1)].into();
        assert_eq!(percentile(&histogram, 50), Some(30));
        assert_eq!(percentile(&histogram, 90), Some(100));
        assert_eq!(percentile(&BTreeMap::new(), 50), None);
    }
}
