//! The main community figures as Prometheus gauges, appended to `GET /metrics`, so
//! Grafana can chart what the report shows. Computed from the metrics rows at each
//! scrape, as of Rally's clock: "today", "this week" are `settings.timezone`'s.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use super::delta::week_start;
use super::report::silent_bands;
use super::Tally;
use crate::rules::RuleSet;

/// The gauges in the Prometheus text format, each with its `HELP` and `TYPE`.
pub fn render(tally: &Tally, rules: &RuleSet, today: NaiveDate) -> String {
    let mut out = String::new();
    let (members, outstanding) = tally
        .days
        .range(..=today)
        .fold((0u64, 0i64), |(m, p), (_, day)| {
            (m + day.new, p + day.balance_change)
        });
    gauge(
        &mut out,
        "rally_members_total",
        "Members Rally has seen.",
        &[("", members.to_string())],
    );
    let month_start = today.with_day(1).unwrap_or(today);
    let active = [
        ("day", tally.active.distinct(today, today)),
        ("week", tally.active.distinct(week_start(today), today)),
        ("month", tally.active.distinct(month_start, today)),
    ];
    let active: Vec<(String, String)> = active
        .iter()
        .map(|(window, n)| (format!("window=\"{window}\""), n.to_string()))
        .collect();
    gauge_labelled(
        &mut out,
        "rally_members_active",
        "Distinct members active today, this ISO week, this month.",
        &active,
    );
    let silent: Vec<(String, String)> = silent_bands(rules)
        .into_iter()
        .map(|(band, days)| {
            let count = today
                .checked_sub_signed(chrono::Duration::days(days))
                .map_or(0, |last| tally.active.absent_since(last, today));
            (format!("band=\"{band}\""), count.to_string())
        })
        .collect();
    gauge_labelled(
        &mut out,
        "rally_members_silent",
        "Members silent at least as long as an inactive rule waits.",
        &silent,
    );
    gauge(
        &mut out,
        "rally_points_outstanding",
        "Points held by all members: the liability.",
        &[("", outstanding.to_string())],
    );
    let tiers: Vec<(String, String)> = tally
        .tiers
        .iter()
        .map(|(tier, n)| (format!("tier=\"{}\"", escape(tier)), n.to_string()))
        .collect();
    gauge_labelled(&mut out, "rally_tier_members", "Members per tier.", &tiers);
    let today_row = tally.days.get(&today).cloned().unwrap_or_default();
    gauge(
        &mut out,
        "rally_purchases_today",
        "Purchases today.",
        &[("", today_row.purchases.to_string())],
    );
    gauge(
        &mut out,
        "rally_gmv_today",
        "The amount of today's purchases.",
        &[("", today_row.gmv.normalize().to_string())],
    );
    out
}

fn gauge(out: &mut String, name: &str, help: &str, values: &[(&str, String)]) {
    let values: Vec<(String, String)> = values
        .iter()
        .map(|(labels, value)| (labels.to_string(), value.clone()))
        .collect();
    gauge_labelled(out, name, help, &values);
}

fn gauge_labelled(out: &mut String, name: &str, help: &str, values: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in values {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
