//! What a step changes of the metrics, on steps written by hand.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Before, Tally};
use crate::engine::LedgerEntry;
use crate::engine::Outcome;
use crate::member::Member;
use crate::money::Decimal;
use crate::rules::RuleSet;

const RULES: &str = r#"
settings: { timezone: Asia/Shanghai }
tiers:
  by: points_lifetime
  levels:
    - { name: bronze, from: 0 }
    - { name: silver, from: 100 }
rules:
  - id: nudge
    trigger: { inactive: 7d }
    actions: [ { tag: silent } ]
  - id: later
    trigger: { inactive: 36h }
    actions: [ { tag: quiet } ]
"#;

fn rules() -> RuleSet {
    crate::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// The outcome of a step that made `member` active at `when`.
fn active(member: &Member, when: &str) -> Outcome {
    let mut after = member.clone();
    after.last_active = Some(at(when));
    Outcome {
        member: after,
        ..Outcome::default()
    }
}

/// Runs `outcome` through the tally as a step at its member's last activity (or
/// `now`), and returns the member as marked.
fn step(tally: &mut Tally, before: Option<&Member>, mut outcome: Outcome, now: &str) -> Member {
    let rules = rules();
    tally.step(&rules, &Before::of(before), &mut outcome, at(now));
    outcome.member
}

#[test]
fn a_member_seen_for_the_first_time_is_new_on_the_local_day() {
    let mut tally = Tally::default();
    // 23:30 UTC on the 1st is the 2nd in Shanghai.
    step(&mut tally, None, Outcome::default(), "2026-11-01T23:30:00Z");
    assert_eq!(tally.days[&day("2026-11-02")].new, 1);
    assert!(!tally.days.contains_key(&day("2026-11-01")));
}

#[test]
fn a_second_activity_on_the_same_local_day_counts_the_member_once() {
    let mut tally = Tally::default();
    let m = step(
        &mut tally,
        None,
        active(&Member::new("m"), "2026-11-02T01:00:00Z"),
        "2026-11-02T01:00:00Z",
    );
    let m = step(
        &mut tally,
        Some(&m.clone()),
        active(&m, "2026-11-02T09:00:00Z"),
        "2026-11-02T09:00:00Z",
    );
    assert_eq!(
        tally.active.distinct(day("2026-11-02"), day("2026-11-02")),
        1
    );
    assert_eq!(m.book.metrics.active_day, Some(day("2026-11-02")));
}

#[test]
fn activity_after_the_shortest_inactive_silence_is_a_return() {
    let mut tally = Tally::default();
    let m = step(
        &mut tally,
        None,
        active(&Member::new("m"), "2026-11-01T00:00:00Z"),
        "2026-11-01T00:00:00Z",
    );
    // 35 hours later: not yet the 36h of `later`.
    let m = step(
        &mut tally,
        Some(&m.clone()),
        active(&m, "2026-11-02T11:00:00Z"),
        "2026-11-02T11:00:00Z",
    );
    let returned = |tally: &Tally, d: &str| tally.days.get(&day(d)).map_or(0, |row| row.returned);
    assert_eq!(returned(&tally, "2026-11-02"), 0);
    // 36 hours after that: a return.
    step(
        &mut tally,
        Some(&m.clone()),
        active(&m, "2026-11-03T23:00:00Z"),
        "2026-11-03T23:00:00Z",
    );
    assert_eq!(returned(&tally, "2026-11-04"), 1);
}

#[test]
fn a_leave_counts_once_and_coming_back_after_it_is_a_return() {
    let mut tally = Tally::default();
    let mut m = step(
        &mut tally,
        None,
        active(&Member::new("m"), "2026-11-01T02:00:00Z"),
        "2026-11-01T02:00:00Z",
    );
    let mut left = m.clone();
    left.left = true;
    let left = step(
        &mut tally,
        Some(&m),
        Outcome {
            member: left,
            ..Outcome::default()
        },
        "2026-11-01T03:00:00Z",
    );
    assert_eq!(tally.days[&day("2026-11-01")].left, 1);
    m = left.clone();
    m.left = false;
    step(
        &mut tally,
        Some(&left),
        active(&m, "2026-11-01T04:00:00Z"),
        "2026-11-01T04:00:00Z",
    );
    assert_eq!(tally.days[&day("2026-11-01")].returned, 1);
}

#[test]
fn a_purchase_within_30_days_of_the_last_makes_a_repeat_buyer() {
    let mut tally = Tally::default();
    let buy = |member: &Member, amount: i64| {
        let mut after = member.clone();
        after.add_to_counter("purchases", Decimal::ONE);
        after.add_to_counter("spend_total", Decimal::from(amount));
        Outcome {
            member: after,
            ..Outcome::default()
        }
    };
    let m = step(
        &mut tally,
        None,
        buy(&Member::new("m"), 100),
        "2026-11-01T02:00:00Z",
    );
    let m = step(
        &mut tally,
        Some(&m.clone()),
        buy(&m, 50),
        "2026-12-01T02:00:00Z",
    );
    // 31 days later: a buyer again, but not a repeat buyer.
    let m = step(
        &mut tally,
        Some(&m.clone()),
        buy(&m, 25),
        "2027-01-01T02:00:00Z",
    );
    assert_eq!(tally.days[&day("2026-11-01")].gmv, Decimal::from(100));
    assert_eq!(
        tally.buyers.distinct(day("2026-11-01"), day("2027-01-31")),
        1
    );
    assert_eq!(
        tally
            .rebuyers
            .distinct(day("2026-12-01"), day("2026-12-01")),
        1
    );
    assert_eq!(
        tally
            .rebuyers
            .distinct(day("2027-01-01"), day("2027-01-01")),
        0
    );
    assert_eq!(
        m.book.metrics.last_purchase,
        Some(at("2027-01-01T02:00:00Z"))
    );
}

#[test]
fn an_expiry_counts_as_expired_not_as_a_deduction() {
    let mut tally = Tally::default();
    let expiry = LedgerEntry {
        member: "m".into(),
        amount: -40,
        balance: 60,
        reason: "expired".into(),
        rule: crate::engine::EXPIRY_RULE.into(),
        event: None,
        at: at("2026-11-01T02:00:00Z"),
        requested: None,
        clipped_by: None,
        operator: None,
        from: None,
    };
    let mut before = Member::new("m");
    before.points = 100;
    let mut after = before.clone();
    after.points = 60;
    let outcome = Outcome {
        member: after,
        ledger: vec![expiry],
        ..Outcome::default()
    };
    step(&mut tally, Some(&before), outcome, "2026-11-01T02:00:00Z");
    let row = &tally.days[&day("2026-11-01")];
    assert_eq!(
        (
            row.issued,
            row.redeemed,
            row.expired,
            row.deducted,
            row.balance_change
        ),
        (0, 0, 40, 0, -40)
    );
}

#[test]
fn points_split_into_issued_redeemed_and_deducted_and_tiers_move() {
    let mut tally = Tally::default();
    let entry = |amount: i64, rule: &str| LedgerEntry {
        member: "m".into(),
        amount,
        balance: 0,
        reason: Default::default(),
        rule: rule.into(),
        event: None,
        at: at("2026-11-01T02:00:00Z"),
        requested: None,
        clipped_by: None,
        operator: None,
        from: None,
    };
    let mut after = Member::new("m");
    after.points = 120;
    after.tier = Some("silver".into());
    let outcome = Outcome {
        member: after.clone(),
        ledger: vec![entry(150, "buy"), entry(-30, "")],
        ..Outcome::default()
    };
    let mut before = Member::new("m");
    before.tier = Some("bronze".into());
    tally.tiers.insert("bronze".into(), 1);
    step(&mut tally, Some(&before), outcome, "2026-11-01T02:00:00Z");
    let row = &tally.days[&day("2026-11-01")];
    assert_eq!(
        (row.issued, row.redeemed, row.deducted, row.balance_change),
        (150, 0, 30, 120)
    );
    assert_eq!(row.rules["buy"].points, 150);
    assert_eq!(
        tally.tiers,
        [("bronze".to_string(), 0), ("silver".to_string(), 1)].into()
    );
}

#[test]
fn a_member_active_in_a_later_week_counts_in_its_join_weeks_cohort() {
    let mut tally = Tally::default();
    // Sunday 1 Nov (W44), then Tuesday 10 Nov (W46): weeks 0 and 2.
    let m = step(
        &mut tally,
        None,
        active(&Member::new("m"), "2026-11-01T02:00:00Z"),
        "2026-11-01T02:00:00Z",
    );
    step(
        &mut tally,
        Some(&m.clone()),
        active(&m, "2026-11-10T02:00:00Z"),
        "2026-11-10T02:00:00Z",
    );
    let cohort = &tally.cohorts["2026-W44"];
    assert_eq!((cohort.size, cohort.active.clone()), (1, vec![1, 0, 1]));
}

#[test]
fn a_changed_row_is_written_once_until_it_changes_again() {
    let mut tally = Tally::default();
    step(
        &mut tally,
        None,
        active(&Member::new("m"), "2026-11-01T02:00:00Z"),
        "2026-11-01T02:00:00Z",
    );
    let mut write = crate::store::StepWrite::default();
    tally.flush(&mut write);
    let names: Vec<&str> = write.meta_put.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "metrics.day.2026-11-01",
            "metrics.active.2026-11-01",
            "metrics.cohorts"
        ]
    );
    let mut again = crate::store::StepWrite::default();
    tally.flush(&mut again);
    assert!(again.meta_put.is_empty());
}

/// A message as a step queued it: on `channel`, in `status`, created at `when`.
fn message(channel: &str, status: crate::outbox::Status, when: &str) -> crate::outbox::OutboxRow {
    crate::outbox::OutboxRow {
        seq: 1,
        key: format!("rule|{when}|m"),
        member: Some("m".into()),
        rule: Some("rule".into()),
        channel: channel.into(),
        template: None,
        to: "m@example.com".into(),
        subject: String::new(),
        body: String::new(),
        html: false,
        webhook_body: None,
        marketing: true,
        status,
        due: at(when),
        attempts: 0,
        first_failed_at: None,
        last_error: None,
        created_at: at(when),
        sent_at: None,
    }
}

#[test]
fn messages_are_counted_by_channel_and_by_their_status_when_queued() {
    use crate::outbox::Status;
    let mut tally = Tally::default();
    let rows = [
        message("email", Status::Pending, "2026-11-02T01:00:00Z"),
        message("email", Status::Deferred, "2026-11-02T02:00:00Z"),
        message("email", Status::Capped, "2026-11-02T03:00:00Z"),
        message("sms", Status::Suppressed, "2026-11-02T04:00:00Z"),
        // 16:30 UTC is the next day in Shanghai.
        message("sms", Status::Pending, "2026-11-02T16:30:00Z"),
    ];
    tally.queued(&rows, chrono_tz::Asia::Shanghai);
    let first = &tally.days[&day("2026-11-02")];
    assert_eq!(first.channels["email"], 3);
    assert_eq!(first.channels["sms"], 1);
    let by = |channel: &str, status: &str| {
        first.channel_statuses[channel]
            .get(status)
            .copied()
            .unwrap_or(0)
    };
    // Deferred by quiet hours is still queued: it goes out later.
    assert_eq!((by("email", "queued"), by("email", "capped")), (2, 1));
    assert_eq!((by("sms", "suppressed"), by("sms", "queued")), (1, 0));
    let next = &tally.days[&day("2026-11-03")];
    assert_eq!(next.channel_statuses["sms"]["queued"], 1);
}
