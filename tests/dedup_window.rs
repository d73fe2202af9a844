//! The de-duplication window (`settings.retention.event_ids`) over real HTTP: a
//! re-sent event inside it is a `duplicate`, one older than it is `rejected` naming
//! the window, and the daemon's retention pass forgets the ids past it.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, Utc};
use rally::clock::ManualClock;
use rally::rules::{self, RuleError, RuleSet};
use rally::store::Store;
use serde_json::{json, Value};
use support::live::Live;

const RULES: &str = r#"
settings:
  timezone: UTC
rules:
  - id: posted
    trigger: { event: post }
    actions:
      - points: 5
"#;

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().into()
}

fn event(id: &str, at: DateTime<Utc>) -> String {
    json!({"id": id, "type": "post", "member": "m-1", "at": at.to_rfc3339()}).to_string()
}

/// The one result of posting `event`.
async fn result(live: &Live, event: &str) -> Value {
    let (status, answer) = live.post("/v1/events", event).await;
    assert_eq!(status, 200, "{answer}");
    answer["results"][0].clone()
}

/// Whether the data directory still remembers each id, read once no daemon holds it.
fn remembered(data: &std::path::Path, ids: &[&str]) -> Vec<bool> {
    let store = Store::open(data).unwrap();
    ids.iter().map(|id| store.seen(id).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_remembered_for_the_window_and_an_event_older_than_it_is_refused() {
    let start = t("2026-03-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let rules = support::daemon::rules_dir(RULES);
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    assert_eq!(
        result(&live, &event("e-1", start)).await["status"],
        "accepted"
    );
    assert_eq!(
        result(&live, &event("e-1", start)).await["status"],
        "duplicate"
    );
    live.stop().await;

    // Forty days on, past the default window of 30 days.
    let later = start + Days::new(40);
    clock.set(later);
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    let recent = later - Days::new(29);
    assert_eq!(
        result(&live, &event("e-2", recent)).await["status"],
        "accepted"
    );
    assert_eq!(
        result(&live, &event("e-2", recent)).await["status"],
        "duplicate"
    );
    for id in ["e-1", "e-3"] {
        // e-1 sent again, or an event never seen: neither can be told from a
        // duplicate whose id was forgotten, so neither is applied. e-1 is still a
        // `duplicate` while the retention pass that started with the daemon, beside
        // the writer, has not reached it yet.
        let refused = result(&live, &event(id, start)).await;
        if id == "e-1" && refused["status"] == "duplicate" {
            continue;
        }
        assert_eq!(refused["status"], "rejected", "{refused}");
        assert_eq!(
            refused["error"],
            "at: 2026-03-01T10:00:00Z is older than the de-duplication window: more than 30d \
             before Rally's clock (2026-04-10T10:00:00Z), so it can no longer be told from a \
             duplicate (settings.retention.event_ids)",
        );
    }
    let (_, member) = live.get("/v1/members/m-1").await;
    assert_eq!(member["points"], 10, "e-1 and e-2, once each: {member}");
    live.stop().await;

    // The pass that runs at start forgets e-1 and keeps e-2; it runs beside the
    // writer, so give it the time it needs, a start at a time.
    let deadline = Instant::now() + Duration::from_secs(30);
    while remembered(data.path(), &["e-1", "e-2"]) != [false, true] {
        assert!(Instant::now() < deadline, "e-1 still remembered after 30 s");
        let live = Live::start(rules.path(), data.path(), clock.clone()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        live.stop().await;
    }
    // Forgotten now, e-1 sent again is refused, never applied a second time.
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    let refused = result(&live, &event("e-1", start)).await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    let (_, member) = live.get("/v1/members/m-1").await;
    assert_eq!(member["points"], 10, "{member}");
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_inside_the_window_survive_the_pass() {
    let start = t("2026-03-01T10:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let rules = support::daemon::rules_dir(&RULES.replace(
        "timezone: UTC",
        "timezone: UTC\n  retention: { event_ids: 90d }",
    ));
    let data = tempfile::tempdir().unwrap();
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    assert_eq!(
        result(&live, &event("e-1", start)).await["status"],
        "accepted"
    );
    live.stop().await;

    clock.set(start + Days::new(40));
    let live = Live::start(rules.path(), data.path(), clock.clone()).await;
    // Give a pass time to run, were there anything to remove.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        result(&live, &event("e-1", start)).await["status"],
        "duplicate"
    );
    live.stop().await;
    assert_eq!(remembered(data.path(), &["e-1"]), [true]);
}

fn load(yaml: &str) -> Result<RuleSet, Vec<RuleError>> {
    rules::from_sources(&[("a.yaml", yaml)], &|_| None)
}

#[test]
fn the_window_is_read_from_settings_and_defaults_to_a_month() {
    let set = load("settings:\n  retention: { event_ids: 7d }\n").unwrap();
    assert_eq!(set.settings.retention.event_ids, chrono::Duration::days(7));
    let set = load("settings:\n  retention: { history: 90d }\n").unwrap();
    assert_eq!(set.settings.retention.event_ids, chrono::Duration::days(30));
    let set = load("settings:\n  timezone: UTC\n").unwrap();
    assert_eq!(set.settings.retention.event_ids, chrono::Duration::days(30));
}

#[test]
fn a_window_shorter_than_a_day_is_refused_as_a_likely_slip() {
    let Err(refused) = load("settings:\n  retention: { event_ids: 90m }\n") else {
        panic!("expected the rule set to be refused");
    };
    let refused: Vec<String> = refused.iter().map(ToString::to_string).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("a.yaml:2:27: retention.event_ids must be at least 1d"),
        "{refused:?}"
    );
}

#[test]
fn sim_refuses_a_line_more_than_the_window_out_of_order_as_the_daemon_would() {
    let events = [
        event("e-1", t("2026-03-01T10:00:00Z")),
        event("e-2", t("2026-04-15T10:00:00Z")),
        // 44 days behind the clock: refused. 26 days behind: applied, late.
        event("e-3", t("2026-03-02T10:00:00Z")),
        event("e-4", t("2026-03-20T10:00:00Z")),
    ]
    .join("\n");
    let doc = support::sim::run(RULES, &events, "2026-04-16T00:00:00Z");
    let rejected = doc["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["line"], 3);
    assert!(
        rejected[0]["error"]
            .as_str()
            .unwrap()
            .contains("older than the de-duplication window: more than 30d"),
        "{rejected:?}"
    );
    assert_eq!(doc["members"]["m-1"]["points"], 15, "{}", doc["members"]);
}

/// A run on a store held in memory (`sim`, replay, backtest) forgets the ids past the
/// window as its clock passes each day, as the daemon's retention does: its memory
/// holds a window of ids, not one per event. Inside the window an id is still a
/// duplicate; past it, the event is refused by its `at` all the same.
#[test]
fn a_run_in_memory_forgets_the_ids_past_the_window_and_refuses_the_same() {
    use rally::runner::{Applied, Runner};
    let text = RULES.replace(
        "settings:\n  timezone: UTC\n",
        "settings:\n  timezone: UTC\n  retention: { event_ids: 3d }\n",
    );
    let rules = rules::from_sources(&[("rules.yaml", text.as_str())], &|_| None).unwrap();
    let mut runner =
        Runner::new(Store::in_memory_without_history().unwrap(), Arc::new(rules)).unwrap();
    let start = t("2026-03-01T10:00:00Z");
    let apply = |runner: &mut Runner, id: &str, at: DateTime<Utc>, now: DateTime<Utc>| {
        let event =
            rally::event::parse_line(&event(id, at), rally::event::AtPolicy::Required).unwrap();
        let applied = runner.apply_event(&event, now).unwrap();
        runner.commit().unwrap();
        applied
    };
    for day in 0..10u64 {
        let at = start + Days::new(day);
        assert!(matches!(
            apply(&mut runner, &format!("e-{day}"), at, at),
            Applied::Accepted(_)
        ));
    }
    let store = runner.shared_store();
    let remembered: Vec<bool> = (0..10)
        .map(|day| store.seen(&format!("e-{day}")).unwrap())
        .collect();
    // The clock reads day 9: days 5 to 9 are kept (the window and a spare day).
    assert_eq!(
        remembered,
        [false, false, false, false, false, true, true, true, true, true]
    );
    let now = start + Days::new(9);
    assert!(matches!(
        apply(&mut runner, "e-8", start + Days::new(8), now),
        Applied::Duplicate
    ));
    assert!(matches!(
        apply(&mut runner, "e-1", start + Days::new(1), now),
        Applied::Rejected(_)
    ));
}
