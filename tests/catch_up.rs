//! `catch_up` (SPEC §2.2): what a `schedule` rule does with occurrences that fell due
//! while Rally was down — `all` of them, only the `latest`, or `skip` them — driven
//! through the same `Runner` the daemon uses, with the restart time given explicitly.

mod support;

use chrono::{DateTime, Duration, Utc};
use support::runner::{event, runner, t};

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
    let mut runner = runner(&yaml);
    runner.keep_journal();
    let start = t("2026-11-26T00:30:00Z");
    runner.arm(start).unwrap();
    let join = event(r#"{"id":"1","type":"join","member":"m","at":"2026-11-26T00:30:00Z"}"#);
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
