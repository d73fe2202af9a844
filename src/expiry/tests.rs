use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;

use super::lots::Lots;
use super::{parse_validity, EndOf, PointsExpiry, Validity};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn months(n: u32, at_end_of: Option<EndOf>) -> PointsExpiry {
    PointsExpiry {
        after: Validity::Months(n),
        at_end_of,
    }
}

#[test]
fn twelve_months_through_the_end_of_the_month_ends_at_the_next_months_first_local_midnight() {
    let policy = months(12, Some(EndOf::Month));
    let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
    // 2026-01-31 10:00 in Shanghai → valid through January 2027.
    let due = policy.due(utc("2026-01-31T02:00:00Z"), shanghai);
    assert_eq!(due, utc("2027-01-31T16:00:00Z")); // 2027-02-01 00:00 +08:00
}

#[test]
fn a_month_from_the_thirty_first_of_january_is_the_last_day_of_february() {
    let due = months(1, None).due(utc("2026-01-31T09:30:00Z"), Tz::UTC);
    assert_eq!(due, utc("2026-02-28T09:30:00Z"));
    let leap = months(1, None).due(utc("2028-01-31T09:30:00Z"), Tz::UTC);
    assert_eq!(leap, utc("2028-02-29T09:30:00Z"));
}

#[test]
fn twelve_months_from_a_leap_day_is_the_last_day_of_the_next_february() {
    let due = months(12, None).due(utc("2028-02-29T12:00:00Z"), Tz::UTC);
    assert_eq!(due, utc("2029-02-28T12:00:00Z"));
    let year_end = months(12, Some(EndOf::Month)).due(utc("2028-02-29T12:00:00Z"), Tz::UTC);
    assert_eq!(year_end, utc("2029-03-01T00:00:00Z"));
}

#[test]
fn an_exact_duration_is_counted_in_real_time_and_then_rounded_to_the_period_end() {
    let exact = PointsExpiry {
        after: Validity::Exactly(Duration::days(365)),
        at_end_of: None,
    };
    assert_eq!(
        exact.due(utc("2027-03-01T08:00:00Z"), Tz::UTC),
        utc("2028-02-29T08:00:00Z")
    );
    let by_day = PointsExpiry {
        at_end_of: Some(EndOf::Day),
        ..exact
    };
    assert_eq!(
        by_day.due(utc("2027-03-01T08:00:00Z"), Tz::UTC),
        utc("2028-03-01T00:00:00Z")
    );
}

#[test]
fn week_and_year_ends_are_the_next_monday_and_the_next_first_of_january() {
    // 2026-12-02 is a Wednesday.
    let week = months(1, Some(EndOf::Week)).due(utc("2026-11-02T08:00:00Z"), Tz::UTC);
    assert_eq!(week, utc("2026-12-07T00:00:00Z"));
    let year = months(1, Some(EndOf::Year)).due(utc("2026-11-02T08:00:00Z"), Tz::UTC);
    assert_eq!(year, utc("2027-01-01T00:00:00Z"));
}

#[test]
fn after_reads_months_years_and_durations() {
    assert_eq!(parse_validity("12 months"), Ok(Validity::Months(12)));
    assert_eq!(parse_validity("1 year"), Ok(Validity::Months(12)));
    assert_eq!(parse_validity("2years"), Ok(Validity::Months(24)));
    assert_eq!(
        parse_validity("365d"),
        Ok(Validity::Exactly(Duration::days(365)))
    );
    assert!(parse_validity("0 months")
        .unwrap_err()
        .contains("longer than zero"));
    assert!(parse_validity("11 years")
        .unwrap_err()
        .contains("120 months"));
    assert!(parse_validity("12 moons")
        .unwrap_err()
        .contains("\"12 months\""));
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap()
}

#[test]
fn spending_takes_the_oldest_lot_first_and_splits_a_lot_when_it_must() {
    let mut lots = Lots::default();
    lots.add(100, at(1), at(20));
    lots.add(50, at(2), at(21));
    lots.add(30, at(3), at(22));
    let taken = lots.spend(120);
    assert_eq!(taken, vec![(at(20), 100), (at(21), 20)]);
    let left: Vec<(i64, DateTime<Utc>)> = lots.iter().map(|l| (l.amount, l.due)).collect();
    assert_eq!(left, vec![(30, at(21)), (30, at(22))]);
    assert_eq!(lots.total(), 60);
}

#[test]
fn awards_expiring_at_the_same_instant_form_one_lot_until_it_is_reminded() {
    let mut lots = Lots::default();
    lots.add(5, at(1), at(28));
    lots.add(5, at(2), at(28));
    assert_eq!(lots.iter().count(), 1);
    lots.mark_warned(0, "remind");
    lots.add(5, at(3), at(28));
    assert_eq!(
        lots.iter().map(|l| l.amount).collect::<Vec<_>>(),
        vec![10, 5]
    );
}

#[test]
fn a_lot_taken_as_due_is_gone_and_cannot_expire_again() {
    let mut lots = Lots::default();
    lots.add(10, at(1), at(10));
    lots.add(20, at(2), at(12));
    assert_eq!(lots.take_due(at(10)).len(), 1);
    assert!(lots.take_due(at(10)).is_empty());
    assert_eq!(lots.total(), 20);
}

#[test]
fn a_balance_the_lots_do_not_cover_forms_one_new_lot_and_a_smaller_one_spends_the_oldest() {
    let mut lots = Lots::default();
    lots.reconcile(70, at(5), at(25));
    assert_eq!(lots.total(), 70);
    lots.add(30, at(6), at(26));
    lots.reconcile(40, at(7), at(27));
    let left: Vec<i64> = lots.iter().map(|l| l.amount).collect();
    assert_eq!(left, vec![10, 30]);
}

#[test]
fn a_reminder_falls_due_once_per_lot_and_the_timer_wakes_for_the_earliest() {
    let mut lots = Lots::default();
    lots.add(10, at(1), at(20));
    lots.add(20, at(2), at(25));
    let rules = [("remind", Duration::days(7))];
    assert_eq!(lots.next_wake(rules.iter().copied()), Some(at(13)));
    assert_eq!(lots.reminders_due(&rules, at(13)), vec![(0, 0)]);
    lots.mark_warned(0, "remind");
    assert!(lots.reminders_due(&rules, at(13)).is_empty());
    assert_eq!(lots.next_wake(rules.iter().copied()), Some(at(18)));
    // A lot already due gets no reminder: it expires instead.
    assert_eq!(
        lots.reminders_due(&rules, at(25)),
        Vec::<(usize, usize)>::new()
    );
}

#[test]
fn a_due_time_is_in_whole_milliseconds_like_the_timer_that_expires_it() {
    let exact = PointsExpiry {
        after: Validity::Exactly(Duration::seconds(3)),
        at_end_of: None,
    };
    let awarded = utc("2026-12-01T17:36:57.476248350Z");
    assert_eq!(exact.due(awarded, Tz::UTC), utc("2026-12-01T17:37:00.476Z"));
}

/// The due remembered for a local hour is the due computed afresh: awards every 7
/// minutes 13 seconds over two years, in zones whose clocks change at 02:00 (New
/// York), at midnight (Santiago), by half an hour (Lord Howe) and never (Shanghai).
#[test]
fn a_due_remembered_for_the_hour_is_the_due_computed_afresh() {
    let zones = [
        chrono_tz::America::New_York,
        chrono_tz::America::Santiago,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Asia::Shanghai,
    ];
    let policies = [
        months(12, Some(EndOf::Month)),
        months(1, Some(EndOf::Day)),
        months(6, Some(EndOf::Week)),
        months(3, Some(EndOf::Year)),
        months(12, None),
    ];
    let from = utc("2026-01-01T00:00:00Z").timestamp();
    for zone in zones {
        for policy in policies {
            for i in 0..(2 * 366 * 24 * 60 / 7) {
                let awarded = DateTime::from_timestamp(from + i * (7 * 60 + 13), 0).unwrap();
                assert_eq!(
                    policy.due(awarded, zone),
                    policy.computed_due(awarded, zone),
                    "{policy:?} awarded {awarded} in {zone}"
                );
            }
        }
    }
}
