//! Timers fall due in due order even when a timer's own step arms an earlier one than
//! the rest of the batch popped with it: `sim --until` over months pops many timers
//! in one batch, and an inactivity deadline re-armed by its pop (or a lot's expiry
//! re-armed by a timed award) must not wait for a campaign's phase months later.

mod support;

const RULES: &str = r#"
settings: { timezone: UTC }
campaigns:
  - id: sale
    timezone: UTC
    phases:
      - { name: on, start: "2026-11-01T00:00:00" }
    end: "2026-11-02T00:00:00"
rules:
  - id: silent-7d
    trigger: { inactive: 7d }
    actions: [ { tag: nudged } ]
  - id: silent-14d
    trigger: { inactive: 14d }
    actions: [ { tag: coupon } ]
"#;

#[test]
fn a_deadline_armed_by_a_timer_step_runs_before_a_later_timer_of_the_same_batch() {
    let events = r#"{"id":"c1","type":"checkin","member":"m","at":"2026-01-01T00:00:00Z"}"#;
    let doc = support::sim::run(RULES, events, "2026-12-01T00:00:00Z");
    assert_eq!(
        support::sim::firings_of(&doc, "silent-14d"),
        [("m".to_string(), "2026-01-15T00:00:00Z".to_string())]
    );
}
