//! When a board's period closes: at the local midnight, in `settings.timezone`, that
//! starts the next day, ISO week (Monday) or month. The close of a period is the first
//! instant of the next one, so a step at the close already counts for the new period
//! and the closed one's places cannot move.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::localtime::{local_day, Period};

/// The first close strictly after `after`: the start of the period following the one
/// containing `after`. `None` only past the calendar's end.
pub fn next_close(period: Period, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
    let day = local_day(after, zone);
    let next = match period {
        Period::Day => day.succ_opt()?,
        Period::Week => day + Duration::days(7 - i64::from(day.weekday().num_days_from_monday())),
        Period::Month => {
            let (year, month) = match day.month() {
                12 => (day.year() + 1, 1),
                m => (day.year(), m + 1),
            };
            NaiveDate::from_ymd_opt(year, month, 1)?
        }
        Period::Ever => return None,
    };
    start_of(next, zone)
}

/// The first instant of the local `day`: midnight, or, where a clock change skips
/// midnight (some zones spring forward at 00:00), the first hour that exists.
fn start_of(day: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    (0..=3).find_map(|hour| {
        let local = day.and_hms_opt(hour, 0, 0)?;
        zone.from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The key of the period that closes at `close`: the one containing the instant
/// before it.
pub fn closed_period(period: Period, close: DateTime<Utc>, zone: Tz) -> String {
    crate::localtime::period_key(period, close - Duration::milliseconds(1), zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_week_closes_at_monday_midnight_in_the_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        let close = next_close(Period::Week, utc("2026-11-25T12:00:00Z"), berlin).unwrap();
        assert_eq!(close, utc("2026-11-29T23:00:00Z"));
        assert_eq!(closed_period(Period::Week, close, berlin), "2026-W48");
    }

    #[test]
    fn the_close_itself_belongs_to_the_next_period() {
        let close = utc("2026-11-30T00:00:00Z");
        assert_eq!(
            next_close(Period::Week, close, Tz::UTC).unwrap(),
            utc("2026-12-07T00:00:00Z")
        );
        assert_eq!(
            crate::localtime::period_key(Period::Week, close, Tz::UTC),
            "2026-W49"
        );
    }

    #[test]
    fn a_day_closes_at_local_midnight_across_a_daylight_saving_change() {
        let berlin = chrono_tz::Europe::Berlin;
        // Sunday 29 March 2026: clocks go from 02:00 to 03:00, a 23-hour day.
        let close = next_close(Period::Day, utc("2026-03-28T23:30:00Z"), berlin).unwrap();
        assert_eq!(close, utc("2026-03-29T22:00:00Z"));
        assert_eq!(closed_period(Period::Day, close, berlin), "2026-03-29");
        // Sunday 25 October 2026: clocks go back, a 25-hour day.
        let close = next_close(Period::Day, utc("2026-10-24T22:30:00Z"), berlin).unwrap();
        assert_eq!(close, utc("2026-10-25T23:00:00Z"));
    }

    #[test]
    fn a_week_spanning_a_clock_change_closes_at_the_new_offset() {
        let new_york = chrono_tz::America::New_York;
        // DST ends Sunday 1 November 2026: the week closes at Monday 00:00 EST.
        let close = next_close(Period::Week, utc("2026-10-28T12:00:00Z"), new_york).unwrap();
        assert_eq!(close, utc("2026-11-02T05:00:00Z"));
        assert_eq!(closed_period(Period::Week, close, new_york), "2026-W44");
    }

    #[test]
    fn where_midnight_is_skipped_the_day_starts_at_the_first_hour_that_exists() {
        // Santiago springs forward at 00:00 on Sunday 6 September 2026.
        let santiago = chrono_tz::America::Santiago;
        let close = next_close(Period::Day, utc("2026-09-05T12:00:00Z"), santiago).unwrap();
        assert_eq!(close, utc("2026-09-06T04:00:00Z"));
        assert_eq!(closed_period(Period::Day, close, santiago), "2026-09-05");
    }

    #[test]
    fn a_month_closes_on_the_first_and_december_rolls_into_the_next_year() {
        let close = next_close(Period::Month, utc("2026-12-15T00:00:00Z"), Tz::UTC).unwrap();
        assert_eq!(close, utc("2027-01-01T00:00:00Z"));
        assert_eq!(closed_period(Period::Month, close, Tz::UTC), "2026-12");
    }
}
