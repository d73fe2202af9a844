//! A reload (or a start on edited files) that changes the inactivity rules runs a
//! pass over every member (issue: "new inactivity rules reach members who are already
//! silent"): a new rule reaches members already past its deadline once, at the
//! reload; a changed duration moves armed timers; no rule fires twice in a silence;
//! the pass says whom each new rule reaches, and in the daemon it takes turns with
//! events instead of holding them back.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rally::clock::{Clock, ManualClock};
use rally::member::Member;
use rally::runner::{Pace, Runner, SilencePass};
use rally::store::{StepWrite, Store};
use support::live::Live;
use support::runner::{event, t};

/// Inactivity rules `(id, duration)`, each awarding points so a firing is visible.
fn rules(silences: &[(&str, &str)]) -> String {
    let mut yaml = String::from("rules:\n");
    for (id, after) in silences {
        yaml.push_str(&format!(
            "  - id: {id}\n    trigger: {{ inactive: {after} }}\n    actions: [ {{ points: 1 }} ]\n"
        ));
    }
    yaml
}

fn rule_set(yaml: &str) -> Arc<rally::rules::RuleSet> {
    Arc::new(rally::rules::from_sources(&[("rules.yaml", yaml)], &|_| None).unwrap())
}

fn checkin(runner: &mut Runner, member: &str, at: DateTime<Utc>) {
    let line = format!(
        r#"{{"id":"{member}-{}","type":"checkin","member":"{member}","at":"{}"}}"#,
        at.timestamp(),
        at.to_rfc3339()
    );
    runner.apply_event(&event(&line), at).unwrap();
    runner.commit().unwrap();
}

/// Swaps in `yaml` at `at` the way the daemon's writer does, and runs what that
/// makes due (the pass included, at `sim`'s pace).
fn reload(runner: &mut Runner, yaml: &str, at: DateTime<Utc>) {
    runner.run_due(at).unwrap();
    runner.set_rules(rule_set(yaml));
    runner.arm(at).unwrap();
    runner.commit().unwrap();
    runner.run_due(at).unwrap();
    runner.commit().unwrap();
}

fn run_to(runner: &mut Runner, at: DateTime<Utc>) {
    runner.run_due(at).unwrap();
    runner.commit().unwrap();
}

/// `(rule, member, day of the firing)` of every firing so far.
fn fired(runner: &mut Runner) -> Vec<(String, String, String)> {
    runner
        .take_journal()
        .into_iter()
        .flat_map(|step| step.firings)
        .map(|f| {
            (
                f.rule.into(),
                f.member.into(),
                f.at.format("%m-%d").to_string(),
            )
        })
        .collect()
}

fn fired3(rule: &str, member: &str, day: &str) -> (String, String, String) {
    (rule.into(), member.into(), day.into())
}

/// A runner on `yaml` whose clock started on 1 Oct.
fn started(yaml: &str) -> Runner {
    let mut runner = support::runner::runner(yaml);
    runner.keep_journal();
    runner.arm(t("2026-10-01T00:00:00Z")).unwrap();
    runner.commit().unwrap();
    runner
}

#[test]
fn a_new_rule_reaches_members_already_past_its_deadline_once_at_the_reload() {
    let mut runner = started(&rules(&[("s7", "7d")]));
    checkin(&mut runner, "long-gone", t("2026-10-01T00:00:00Z"));
    checkin(&mut runner, "recent", t("2026-11-25T00:00:00Z"));
    run_to(&mut runner, t("2026-12-01T00:00:00Z"));
    assert_eq!(fired(&mut runner), vec![fired3("s7", "long-gone", "10-08")]);

    reload(
        &mut runner,
        &rules(&[("s7", "7d"), ("s30", "30d")]),
        t("2026-12-01T00:00:00Z"),
    );
    // The new 30-day rule reaches the member silent for two months now, once; the
    // 7-day rule that already reached them does not fire again.
    assert_eq!(
        fired(&mut runner),
        vec![fired3("s30", "long-gone", "12-01")]
    );
    let passes = runner.take_finished_passes();
    assert_eq!(passes.len(), 1);
    let pass: &SilencePass = &passes[0].1;
    assert_eq!(pass.members, 2);
    assert!(pass.done);
    assert_eq!(pass.reach.keys().collect::<Vec<_>>(), vec!["s30"]);
    assert_eq!(pass.reach["s30"].fired_now, 1);
    // "recent" is silent too, with the deadline ahead.
    assert_eq!(pass.reach["s30"].waiting, 1);

    // Later, the member still silent gets nothing more; the recent one gets both
    // rules at their deadlines.
    run_to(&mut runner, t("2027-01-10T00:00:00Z"));
    assert_eq!(
        fired(&mut runner),
        vec![
            fired3("s7", "recent", "12-02"),
            fired3("s30", "recent", "12-25"),
        ]
    );
}

#[test]
fn a_shortened_rule_applies_to_armed_members_without_waiting_for_their_activity() {
    let mut runner = started(&rules(&[("quiet", "30d")]));
    checkin(&mut runner, "m", t("2026-11-25T00:00:00Z"));
    run_to(&mut runner, t("2026-12-01T00:00:00Z"));
    reload(
        &mut runner,
        &rules(&[("quiet", "10d")]),
        t("2026-12-01T00:00:00Z"),
    );
    let pass = runner.take_finished_passes().remove(0).1;
    assert_eq!(pass.reach["quiet"].fired_now, 0);
    assert_eq!(pass.reach["quiet"].waiting, 1);
    run_to(&mut runner, t("2027-01-10T00:00:00Z"));
    assert_eq!(fired(&mut runner), vec![fired3("quiet", "m", "12-05")]);
}

#[test]
fn a_rule_shortened_past_a_members_silence_fires_at_the_reload_and_not_again() {
    let mut runner = started(&rules(&[("quiet", "30d")]));
    checkin(&mut runner, "m", t("2026-11-10T00:00:00Z"));
    run_to(&mut runner, t("2026-12-01T00:00:00Z"));
    reload(
        &mut runner,
        &rules(&[("quiet", "14d")]),
        t("2026-12-01T00:00:00Z"),
    );
    run_to(&mut runner, t("2027-01-10T00:00:00Z"));
    // Not at its old deadline (10 Dec) a second time.
    assert_eq!(fired(&mut runner), vec![fired3("quiet", "m", "12-01")]);
}

#[test]
fn a_rule_that_fired_does_not_fire_again_in_the_same_silence_when_lengthened() {
    let mut runner = started(&rules(&[("quiet", "7d")]));
    checkin(&mut runner, "m", t("2026-11-01T00:00:00Z"));
    run_to(&mut runner, t("2026-11-10T00:00:00Z"));
    assert_eq!(fired(&mut runner), vec![fired3("quiet", "m", "11-08")]);
    reload(
        &mut runner,
        &rules(&[("quiet", "14d")]),
        t("2026-11-10T00:00:00Z"),
    );
    run_to(&mut runner, t("2026-12-31T00:00:00Z"));
    assert_eq!(fired(&mut runner), vec![]);
    // A new silence starts the count again, under the new duration.
    checkin(&mut runner, "m", t("2026-12-31T00:00:00Z"));
    run_to(&mut runner, t("2027-01-31T00:00:00Z"));
    assert_eq!(fired(&mut runner), vec![fired3("quiet", "m", "01-14")]);
}

#[test]
fn an_unchanged_set_of_inactivity_rules_starts_no_pass() {
    let mut runner = started(&rules(&[("quiet", "7d")]));
    checkin(&mut runner, "m", t("2026-11-01T00:00:00Z"));
    // Only the set that ran before differs in something else.
    let edited = format!(
        "{}  - id: other\n    trigger: {{ event: post }}\n    actions: [ {{ points: 2 }} ]\n",
        rules(&[("quiet", "7d")])
    );
    reload(&mut runner, &edited, t("2026-11-02T00:00:00Z"));
    assert!(runner.take_finished_passes().is_empty());
    assert!(runner.silence_pass().is_none());
}

/// A store written before rules were kept one by one: `silence_fired` says how far
/// into the silence rules had fired. The first start of this build runs the pass,
/// honours it (no rule fires twice) and reaches what is past its deadline.
#[test]
fn bookkeeping_written_before_rules_were_kept_one_by_one_is_honoured() {
    let store = Store::open_temporary().unwrap();
    let mut member = Member::new("m");
    let began = t("2026-10-01T00:00:00Z");
    member.last_active = Some(began);
    member.created_at = Some(began);
    member.book.silence_fired = Some((
        began.timestamp_millis(),
        (began + Duration::days(7)).timestamp_millis(),
    ));
    store
        .commit(&[StepWrite {
            members: vec![member],
            meta_put: vec![(
                "clock".into(),
                t("2026-12-01T00:00:00Z")
                    .timestamp_millis()
                    .to_string()
                    .into_bytes(),
            )],
            ..StepWrite::default()
        }])
        .unwrap();
    let mut runner = Runner::new(store, rule_set(&rules(&[("s7", "7d"), ("s14", "14d")]))).unwrap();
    runner.keep_journal();
    runner.arm(t("2026-12-01T00:00:00Z")).unwrap();
    runner.commit().unwrap();
    run_to(&mut runner, t("2026-12-01T00:00:00Z"));
    assert_eq!(fired(&mut runner), vec![fired3("s14", "m", "12-01")]);
    run_to(&mut runner, t("2027-02-01T00:00:00Z"));
    assert_eq!(fired(&mut runner), vec![]);
}

/// In the daemon the pass takes turns with events: an arrival does not run it, the
/// writer's turn between groups runs one batch.
#[test]
fn interleaved_a_pass_over_many_members_does_not_hold_an_arrival_back() {
    let mut runner = started(&rules(&[("s7", "7d")]));
    runner.set_pace(Pace::Interleaved);
    let at = t("2026-11-01T00:00:00Z");
    for n in 0..300 {
        let line = format!(
            r#"{{"id":"e{n}","type":"checkin","member":"m{n:04}","at":"{}"}}"#,
            at.to_rfc3339()
        );
        runner.apply_event(&event(&line), at).unwrap();
    }
    runner.commit().unwrap();
    // Everyone got the 7-day rule on 8 Nov; a 30-day one comes on 5 Dec.
    run_to(&mut runner, t("2026-12-05T00:00:00Z"));
    assert_eq!(fired(&mut runner).len(), 300);
    let reload_at = t("2026-12-05T00:00:00Z");
    runner.set_rules(rule_set(&rules(&[("s7", "7d"), ("s30", "30d")])));
    runner.arm(reload_at).unwrap();
    runner.commit().unwrap();
    assert_eq!(runner.silence_pass().map(|(_, p)| p.members), Some(0));

    // An event arrives: it runs at once; the pass has not moved.
    checkin(&mut runner, "m0000", reload_at);
    assert_eq!(runner.silence_pass().map(|(_, p)| p.members), Some(0));
    // Each turn of the writer's background work is one batch.
    runner.run_background(reload_at).unwrap();
    runner.commit().unwrap();
    let seen = runner.silence_pass().map(|(_, p)| p.members).unwrap();
    assert!(seen > 0 && seen < 300, "{seen}");
    while runner.silence_pass().is_some() {
        runner.run_background(reload_at).unwrap();
        runner.commit().unwrap();
    }
    // Every silent member but the one who just checked in gets the new rule, once.
    let s30 = fired(&mut runner)
        .into_iter()
        .filter(|(rule, _, _)| rule == "s30")
        .count();
    assert_eq!(s30, 299);
    let pass = runner.take_finished_passes().remove(0).1;
    assert_eq!((pass.members, pass.reach["s30"].fired_now), (300, 299));
}

/// Over real HTTP: the reload's answer and `GET /v1/rules` say whom the new rule
/// reached; the member's balance shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reload_answer_and_v1_rules_say_whom_a_new_inactivity_rule_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("rules.yaml"), rules(&[("s7", "7d")])).unwrap();
    let clock = Arc::new(ManualClock::new(t("2026-10-01T00:00:00Z")));
    let live = Live::start(&rules_dir, &dir.path().join("data"), clock.clone()).await;
    for member in ["a", "b", "c"] {
        let body = format!(
            r#"{{"id":"{member}","type":"checkin","member":"{member}","at":"{}"}}"#,
            clock.now().to_rfc3339()
        );
        let (status, _) = live.post("/v1/events", &body).await;
        assert_eq!(status, 200);
    }
    clock.set(t("2026-11-20T00:00:00Z"));
    let (status, _) = live
        .post(
            "/v1/events",
            r#"{"id":"c2","type":"checkin","member":"c","at":"2026-11-20T00:00:00Z"}"#,
        )
        .await;
    assert_eq!(status, 200);
    clock.set(t("2026-12-01T00:00:00Z"));

    std::fs::write(
        rules_dir.join("rules.yaml"),
        rules(&[("s7", "7d"), ("s30", "30d")]),
    )
    .unwrap();
    let (status, answer) = live.post("/v1/rules/reload", "").await;
    assert_eq!(status, 200, "{answer}");
    let pass = &answer["inactivity_pass"];
    assert_eq!(pass["members"], 3, "{answer}");
    assert_eq!(pass["reach"]["s30"]["fired_now"], 2, "{answer}");
    assert_eq!(pass["reach"]["s30"]["waiting"], 1, "{answer}");

    let (status, rules_now) = live.get("/v1/rules").await;
    assert_eq!(status, 200);
    assert_eq!(rules_now["inactivity_pass"]["last"], *pass, "{rules_now}");
    assert!(
        rules_now["inactivity_pass"]["running"].is_null(),
        "{rules_now}"
    );
    // s7 on 8 Oct and s30 at the reload: 2 points.
    let (_, a) = live.get("/v1/members/a").await;
    assert_eq!(a["points"], 2, "{a}");

    // Reloading the same set again starts no pass.
    let (status, again) = live.post("/v1/rules/reload", "").await;
    assert_eq!(status, 200);
    assert!(again["inactivity_pass"].is_null(), "{again}");
    live.stop().await;
}
