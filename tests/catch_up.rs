//! `catch_up` (SPEC §2.2): what a `schedule` rule does with occurrences that fell due
//! while Rally was down — `all` of them, only the `latest`, or `skip` them — driven
//! through the same `Runner` the daemon uses, with the restart time given explicitly.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rally::event::{self, AtPolicy};
use rally::runner::Runner;
use rally::store::Store;

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().into()
}

/// An hourly schedule with `catch_up`, a member created at 00:30, the daemon down from
/// 00:30 and back at 05:30: the 01:00–05:00 occurrences were missed.
fn firings_after_downtime(catch_up: &str) -> Vec<DateTime<Utc>> {
    let yaml = format!(
        r#"
rules:
  - id: hourly
    trigger: {{ schedule: "0 * * * *" }}
    catch_up: {catch_up}
    audience: all
    actions: [ {{ points: 1 }} ]
"#
    );
    let rules = rally::rules::from_sources(&[("rules.yaml", &yaml)], &|_| None).unwrap();
    let mut runner = Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap();
    runner.keep_journal();
    let start = t("2026-11-26T00:30:00Z");
    runner.arm(start).unwrap();
    let join = event::parse_line(
        r#"{"id":"1","type":"join","member":"m","at":"2026-11-26T00:30:00Z"}"#,
        AtPolicy::Required,
    )
    .unwrap();
    runner.apply_event(&join, start).unwrap();
    runner.commit().unwrap();
    let restart = start + Duration::hours(5);
    runner.set_started_at(restart);
    runner.run_due(restart).unwrap();
    runner.commit().unwrap();
    runner
        .take_journal()
        .into_iter()
        .flat_map(|o| o.firings)
        .filter(|f| f.rule == "hourly")
        .map(|f| f.at)
        .collect()
}

#[test]
fn catch_up_all_fires_every_missed_occurrence_in_order() {
    let hours: Vec<String> = firings_after_downtime("all")
        .iter()
        .map(|at| at.format("%H:%M").to_string())
        .collect();
    assert_eq!(hours, ["01:00", "02:00", "03:00", "04:00", "05:00"]);
}

#[test]
fn catch_up_latest_fires_only_the_last_missed_occurrence() {
    assert_eq!(
        firings_after_downtime("latest"),
        [t("2026-11-26T05:00:00Z")]
    );
}

#[test]
fn catch_up_skip_fires_none_of_the_missed_occurrences() {
    assert!(firings_after_downtime("skip").is_empty());
}
