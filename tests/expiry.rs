//! Points expiry through the `Runner` the daemon uses, over a year: monthly awards,
//! two redemptions in between, lots expiring at the end of the month three months
//! on. The ledger adds up to the balance, each lot expires at most once, spending takes
//! the oldest lots first, and a replay of the journal reproduces it all.

mod support;

use chrono::{DateTime, Duration, Utc};
use rally::runner::Runner;
use rally::store::Store;
use support::runner::{t, timers};

const RULES: &str = r#"
settings:
  timezone: UTC
  points: { expire: { after: 3 months, at_end_of: month } }
rules:
  - id: earn
    trigger: { event: purchase }
    actions: [ { points: { amount: "event.data.points" } } ]
  - id: redeem
    trigger: { event: redeem }
    actions: [ { points: { amount: "-event.data.points", reason: redeemed } } ]
  - id: remind
    trigger: { points_expiring: 7d }
    actions: [ { tag: reminded } ]
"#;

fn rules() -> std::sync::Arc<rally::rules::RuleSet> {
    std::sync::Arc::new(rally::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap())
}

fn send(runner: &mut Runner, id: &str, kind: &str, points: i64, at: DateTime<Utc>) {
    let line = format!(
        r#"{{"id":"{id}","type":"{kind}","member":"ana","at":"{}","data":{{"points":{points}}}}}"#,
        at.to_rfc3339()
    );
    support::runner::arrive_and_commit(runner, &line, at);
}

/// A year of the scenario on `runner`, up to 2027-01-01T12:00Z.
fn a_year(runner: &mut Runner) {
    runner.arm(t("2026-01-01T00:00:00Z")).unwrap();
    for month in 1..=12 {
        let at = t(&format!("2026-{month:02}-15T10:00:00Z"));
        send(runner, &format!("p{month}"), "purchase", 100, at);
        if month == 3 {
            send(runner, "r1", "redeem", 150, t("2026-03-20T10:00:00Z"));
        }
        if month == 8 {
            send(runner, "r2", "redeem", 250, t("2026-08-20T10:00:00Z"));
        }
    }
    runner.run_due(t("2027-01-01T12:00:00Z")).unwrap();
    runner.commit().unwrap();
}

#[test]
fn a_year_of_awards_and_redemptions_expires_each_lot_once_oldest_spent_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut runner = Runner::new(store, rules()).unwrap();
    runner.keep_journal();
    a_year(&mut runner);
    let ledger = runner.store().ledger("ana").unwrap();
    let member = runner.member("ana").unwrap().unwrap();
    assert_eq!(ledger.iter().map(|e| e.amount).sum::<i64>(), member.points);
    assert_eq!(ledger.last().unwrap().balance, member.points);
    let expired: Vec<(String, i64)> = ledger
        .iter()
        .filter(|e| e.reason == "expired")
        .map(|e| (rally::member::rfc3339(e.at), e.amount))
        .collect();
    // January's lot was spent whole by the first redemption and February's halved;
    // the second took May's, June's and half of July's.
    assert_eq!(
        expired,
        [
            ("2026-06-01T00:00:00Z".to_string(), -50),
            ("2026-07-01T00:00:00Z".to_string(), -100),
            ("2026-08-01T00:00:00Z".to_string(), -100),
            ("2026-11-01T00:00:00Z".to_string(), -50),
            ("2026-12-01T00:00:00Z".to_string(), -100),
            ("2027-01-01T00:00:00Z".to_string(), -100),
        ]
    );
    assert_eq!(member.points, 1200 - 400 - 500);
    assert_eq!(
        member.view()["points_expiring"],
        serde_json::json!({ "amount": 100, "expires_at": "2027-02-01T00:00:00Z" })
    );
    // One reminder per lot that lived to see it: the six that expired.
    let reminders = runner
        .take_journal()
        .into_iter()
        .flat_map(|o| o.firings)
        .filter(|f| f.rule == "remind")
        .count();
    assert_eq!(reminders, 6);
    // The one timer is armed for the next reminder (October's lot, 7 days before
    // 1 February); running the same time again expires nothing more.
    let armed = timers(runner.store());
    assert_eq!(
        armed,
        [(
            (t("2027-02-01T00:00:00Z") - Duration::days(7)).timestamp_millis(),
            "points_expiry".to_string(),
            "ana".to_string()
        )]
    );
    runner.run_due(t("2027-01-01T12:00:00Z")).unwrap();
    runner.commit().unwrap();
    assert_eq!(runner.store().ledger("ana").unwrap().len(), ledger.len());
}

#[test]
fn a_replay_of_the_journal_reproduces_the_expiries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut runner = Runner::new(store, rules()).unwrap();
        runner.keep_event_journal().unwrap();
        a_year(&mut runner);
        // One event after the last expiry, so the replay runs time up to it.
        send(
            &mut runner,
            "late",
            "purchase",
            1,
            t("2027-01-02T10:00:00Z"),
        );
        runner.store().sync().unwrap();
    }
    let store = support::runner::reopen(dir.path());
    let check = rally::replay::self_check(&store).unwrap();
    assert!(check.differences.is_empty(), "{:?}", check.differences);
    assert_eq!(check.members, 1);
}

#[test]
fn the_expiry_timer_survives_a_reopen_and_fires_at_its_due_time() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut runner = Runner::new(store, rules()).unwrap();
        runner.arm(t("2026-01-01T00:00:00Z")).unwrap();
        send(
            &mut runner,
            "p1",
            "purchase",
            100,
            t("2026-01-15T10:00:00Z"),
        );
    }
    let store = support::runner::reopen(dir.path());
    let mut runner = Runner::new(store, rules()).unwrap();
    runner.run_due(t("2026-05-01T00:00:00Z")).unwrap();
    runner.commit().unwrap();
    let member = runner.member("ana").unwrap().unwrap();
    assert_eq!(member.points, 0);
    assert!(member.tags.contains("reminded"));
    assert!(timers(runner.store()).is_empty());
}
