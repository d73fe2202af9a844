//! Reload and restart arm campaigns and schedules from their current definition
//! (issue: "reload re-arms"): an inserted phase fires, a moved one fires once at its
//! new time, a changed cron takes effect at once, a removed campaign leaves no timer.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rally::runner::Runner;
use serde_json::Value;
use support::runner::{event, runner, t};

/// Campaign `c` with `phases` and one `phase` rule per phase it has.
fn campaign_rules(phases: &str) -> String {
    let mut yaml = format!(
        r#"
campaigns:
  - id: c
    phases:
{phases}
    end: "2026-11-15T00:00:00"
rules:
"#
    );
    for (phase, points) in [("warmup", 1), ("teaser", 10), ("peak", 100)] {
        if phases.contains(&format!("name: {phase},")) {
            yaml.push_str(&format!(
                "  - id: enter-{phase}\n    trigger: {{ phase: {{ campaign: c, enters: {phase} }} }}\n    audience: all\n    actions: [ {{ points: {points} }} ]\n"
            ));
        }
    }
    yaml
}

const WARMUP_PEAK: &str = r#"      - { name: warmup, start: "2026-11-01T00:00:00" }
      - { name: peak, start: "2026-11-10T00:00:00" }"#;

fn set_rules(runner: &mut Runner, yaml: &str, at: DateTime<Utc>) {
    let rules = rally::rules::from_sources(&[("rules.yaml", yaml)], &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    runner.run_due(at).unwrap();
    runner.set_rules(Arc::new(rules));
    runner.arm(at).unwrap();
    runner.commit().unwrap();
}

/// A runner on `yaml` whose clock starts on 31 Oct with one member.
fn started(yaml: &str) -> Runner {
    let mut runner = runner(yaml);
    runner.keep_journal();
    let start = t("2026-10-31T00:00:00Z");
    runner.arm(start).unwrap();
    let join = event(r#"{"id":"j","type":"join","member":"m","at":"2026-10-31T00:00:00Z"}"#);
    runner.apply_event(&join, start).unwrap();
    runner.commit().unwrap();
    runner
}

/// Every phase entry fired, as (rule, time), after running to `until`.
fn entries(runner: &mut Runner, until: &str) -> Vec<(String, String)> {
    runner.run_due(t(until)).unwrap();
    runner.commit().unwrap();
    runner
        .take_journal()
        .into_iter()
        .flat_map(|o| o.firings)
        .filter(|f| f.rule.starts_with("enter-"))
        .map(|f| (f.rule.into(), rally::member::rfc3339(f.at)))
        .collect()
}

fn transitions(runner: &Runner) -> Vec<(Option<String>, String)> {
    runner.campaigns()["c"]
        .transitions
        .iter()
        .map(|t| (t.phase.clone(), rally::member::rfc3339(t.at)))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The phase entries fired up to 20 Nov when the campaign started as [`WARMUP_PEAK`]
/// and was reloaded on 3 Nov with `phases`.
fn entries_after_reload(phases: &str) -> Vec<(String, String)> {
    let mut runner = started(&campaign_rules(WARMUP_PEAK));
    set_rules(
        &mut runner,
        &campaign_rules(phases),
        t("2026-11-03T00:00:00Z"),
    );
    entries(&mut runner, "2026-11-20T00:00:00Z")
}

#[test]
fn a_phase_inserted_before_the_armed_one_fires_at_its_time() {
    let phases = r#"      - { name: warmup, start: "2026-11-01T00:00:00" }
      - { name: teaser, start: "2026-11-05T00:00:00" }
      - { name: peak, start: "2026-11-10T00:00:00" }"#;
    assert_eq!(
        entries_after_reload(phases),
        pairs(&[
            ("enter-warmup", "2026-11-01T00:00:00Z"),
            ("enter-teaser", "2026-11-05T00:00:00Z"),
            ("enter-peak", "2026-11-10T00:00:00Z"),
        ])
    );
}

#[test]
fn a_phase_moved_later_fires_once_at_its_new_time() {
    let phases = r#"      - { name: warmup, start: "2026-11-01T00:00:00" }
      - { name: peak, start: "2026-11-12T00:00:00" }"#;
    assert_eq!(
        entries_after_reload(phases),
        pairs(&[
            ("enter-warmup", "2026-11-01T00:00:00Z"),
            ("enter-peak", "2026-11-12T00:00:00Z"),
        ])
    );
}

#[test]
fn the_phase_a_campaign_is_in_is_not_entered_again_when_its_start_moves_later() {
    let phases = r#"      - { name: warmup, start: "2026-11-04T00:00:00" }
      - { name: peak, start: "2026-11-10T00:00:00" }"#;
    assert_eq!(
        entries_after_reload(phases),
        pairs(&[
            ("enter-warmup", "2026-11-01T00:00:00Z"),
            ("enter-peak", "2026-11-10T00:00:00Z"),
        ])
    );
}

#[test]
fn a_phase_inserted_before_now_is_entered_once_at_the_reload() {
    let mut runner = started(&campaign_rules(WARMUP_PEAK));
    let phases = r#"      - { name: warmup, start: "2026-11-01T00:00:00" }
      - { name: teaser, start: "2026-11-02T00:00:00" }
      - { name: peak, start: "2026-11-10T00:00:00" }"#;
    set_rules(
        &mut runner,
        &campaign_rules(phases),
        t("2026-11-03T00:00:00Z"),
    );
    // A second reload of the same rules changes nothing.
    set_rules(
        &mut runner,
        &campaign_rules(phases),
        t("2026-11-04T00:00:00Z"),
    );
    assert_eq!(
        entries(&mut runner, "2026-11-20T00:00:00Z"),
        pairs(&[
            ("enter-warmup", "2026-11-01T00:00:00Z"),
            ("enter-teaser", "2026-11-03T00:00:00Z"),
            ("enter-peak", "2026-11-10T00:00:00Z"),
        ])
    );
    assert_eq!(
        transitions(&runner)[1],
        (Some("teaser".into()), "2026-11-03T00:00:00Z".into())
    );
}

#[test]
fn a_removed_campaign_leaves_no_timer_and_enters_no_phase() {
    let mut runner = started(&campaign_rules(WARMUP_PEAK));
    let without = r#"
rules:
  - id: checkin
    trigger: { event: checkin }
    actions: [ { points: 1 } ]
"#;
    set_rules(&mut runner, without, t("2026-11-03T00:00:00Z"));
    let timers = runner.store().timers_due(i64::MAX, 10).unwrap();
    assert!(
        timers.iter().all(|(key, _)| key.kind != "phase"),
        "{timers:?}"
    );
    assert_eq!(
        entries(&mut runner, "2026-11-20T00:00:00Z"),
        pairs(&[("enter-warmup", "2026-11-01T00:00:00Z")])
    );
}

#[test]
fn a_cron_changed_from_monthly_to_daily_runs_daily_from_the_reload() {
    let schedule = |cron: &str| {
        format!(
            r#"
rules:
  - id: bonus
    trigger: {{ schedule: "{cron}" }}
    audience: all
    actions: [ {{ points: 1 }} ]
"#
        )
    };
    let mut runner = started(&schedule("0 9 1 * *"));
    set_rules(
        &mut runner,
        &schedule("0 9 * * *"),
        t("2026-11-03T12:00:00Z"),
    );
    runner.run_due(t("2026-11-06T12:00:00Z")).unwrap();
    runner.commit().unwrap();
    let fired: Vec<String> = runner
        .take_journal()
        .into_iter()
        .flat_map(|o| o.firings)
        .filter(|f| f.rule == "bonus")
        .map(|f| rally::member::rfc3339(f.at))
        .collect();
    assert_eq!(
        fired,
        [
            "2026-11-01T09:00:00Z",
            "2026-11-04T09:00:00Z",
            "2026-11-05T09:00:00Z",
            "2026-11-06T09:00:00Z"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_over_http_re_arms_a_campaign_from_its_new_phases() {
    let dir = support::daemon::rules_dir(&campaign_rules(WARMUP_PEAK));
    let data = tempfile::tempdir().unwrap();
    let daemon = support::daemon::Daemon::start(dir.path(), data.path(), &[]);
    let http = support::daemon::client();
    // The daemon runs on today's clock: move the campaign into the future.
    let today = Utc::now();
    let local = |d: Duration| (today + d).format("%Y-%m-%dT%H:%M:%S").to_string();
    let future = |peak: Duration| {
        format!(
            "      - {{ name: warmup, start: \"{}\" }}\n      - {{ name: peak, start: \"{}\" }}",
            local(Duration::days(10)),
            local(peak)
        )
    };
    let reload = |yaml: String| {
        std::fs::write(dir.path().join("rules.yaml"), yaml).unwrap();
        http.post(daemon.url("/v1/rules/reload")).send()
    };
    let end = |yaml: String| yaml.replace("2026-11-15T00:00:00", &local(Duration::days(30)));
    let answer = reload(end(campaign_rules(&future(Duration::days(20)))))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer = reload(end(campaign_rules(&future(Duration::days(25)))))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let timers = {
        drop(daemon);
        let store = support::runner::reopen(data.path());
        store.timers_due(i64::MAX, 10).unwrap()
    };
    let phase: Vec<&(rally::store::keys::TimerKey, Vec<u8>)> = timers
        .iter()
        .filter(|(key, _)| key.kind == "phase")
        .collect();
    assert_eq!(phase.len(), 1, "one timer per campaign: {timers:?}");
    let payload: Value = serde_json::from_slice(&phase[0].1).unwrap();
    assert_eq!(payload["phase"], "warmup");
}

#[test]
fn a_restart_before_any_step_still_catches_up_on_the_phases_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = campaign_rules(WARMUP_PEAK);
    let rules = Arc::new(rally::rules::from_sources(&[("r.yaml", &yaml)], &|_| None).unwrap());
    {
        let store = rally::store::Store::open(dir.path()).unwrap();
        let mut runner = Runner::new(store, Arc::clone(&rules)).unwrap();
        runner.arm(t("2026-10-31T00:00:00Z")).unwrap();
        runner.commit().unwrap();
    }
    let store = support::runner::reopen(dir.path());
    let mut runner = Runner::new(store, rules).unwrap();
    let restart = t("2026-11-03T00:00:00Z");
    runner.set_started_at(restart);
    runner.arm(restart).unwrap();
    runner.run_due(restart).unwrap();
    runner.commit().unwrap();
    assert_eq!(
        transitions(&runner),
        [(
            Some("warmup".to_string()),
            "2026-11-01T00:00:00Z".to_string()
        )]
    );
}
