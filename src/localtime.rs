//! Member-local calendar: the one place that decides which day, week or month an
//! instant falls in for a member. Streaks, daily caps, limits, counter resets and
//! quiet hours all go through here so they can never disagree.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

mod offsets;

pub use offsets::{single_instant, to_local, utc_offset};

/// How a local wall-clock time may be written, wherever Rally reads one (campaign
/// phases and ends, `sim --until`).
pub const LOCAL_TIME_FORMS: &str =
    "\"2026-11-01T20:00:00\", \"2026-11-01 20:00\" or \"2026-11-01\"";

/// A local wall-clock time without an offset: `YYYY-MM-DDTHH:MM[:SS]`,
/// `YYYY-MM-DD HH:MM[:SS]` or `YYYY-MM-DD` (midnight).
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    let formats = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ];
    formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|day| day.and_hms_opt(0, 0, 0))
        })
}

/// The member's time zone: their `timezone` attribute when it is a valid IANA name,
/// otherwise the rule set's `settings.timezone`.
pub fn member_zone(timezone_attr: Option<&str>, default: Tz) -> Tz {
    timezone_attr
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(default)
}

/// The local calendar day of `at` in `zone`.
pub fn local_day(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    to_local(at, zone).date()
}

/// A calendar period a limit or a counter reset is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    /// ISO weeks: Monday to Sunday.
    Week,
    Month,
    Ever,
}

/// A stable key naming the period containing `at` (e.g. `2026-11-26`, `2026-W48`,
/// `2026-11`, `ever`). Two instants share a period exactly when their keys are equal.
pub fn period_key(period: Period, at: DateTime<Utc>, zone: Tz) -> String {
    PeriodKey::of(period, local_day(at, zone))
        .as_str()
        .to_owned()
}

/// Writes the key of the period containing the local `day` into `key` (emptied
/// first).
pub fn write_period_key(period: Period, day: NaiveDate, key: &mut String) {
    key.clear();
    key.push_str(PeriodKey::of(period, day).as_str());
}

/// A period's key (see [`period_key`]) held in place, not on the heap: every step
/// checks a few of them (resetting counters, limits) against the keys a member
/// holds, and copies one only when a period starts.
#[derive(Clone, Copy)]
pub struct PeriodKey {
    /// Room for the longest key chrono's dates give (`-262143-12-31`).
    bytes: [u8; 16],
    len: usize,
}

impl PeriodKey {
    /// The key of the period containing the local `day`.
    pub fn of(period: Period, day: NaiveDate) -> PeriodKey {
        let mut key = PeriodKey {
            bytes: [0; 16],
            len: 0,
        };
        let (year, second) = match period {
            Period::Day | Period::Month => (day.year(), day.month()),
            Period::Week => {
                let week = day.iso_week();
                (week.year(), week.week())
            }
            Period::Ever => {
                key.push(b"ever");
                return key;
            }
        };
        // Four-digit years (all of them, in practice) skip the formatter; other
        // years take `write!`, which the fast path matches digit for digit.
        if (1000..=9999).contains(&year) {
            key.push_padded(year as u32, 4);
            key.push(if period == Period::Week { b"-W" } else { b"-" });
            key.push_padded(second, 2);
            if period == Period::Day {
                key.push(b"-");
                key.push_padded(day.day(), 2);
            }
            return key;
        }
        use std::fmt::Write as _;
        // Every chrono date fits the buffer, so the writes cannot fail.
        let _ = match period {
            Period::Day => write!(key, "{:04}-{:02}-{:02}", day.year(), day.month(), day.day()),
            Period::Week => write!(key, "{year}-W{second:02}"),
            _ => write!(key, "{year}-{second:02}"),
        };
        key
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and whole `&str`s are ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    /// Appends `bytes` if they fit; returns whether they did.
    fn push(&mut self, bytes: &[u8]) -> bool {
        let Some(room) = self.bytes.get_mut(self.len..self.len + bytes.len()) else {
            return false;
        };
        room.copy_from_slice(bytes);
        self.len += bytes.len();
        true
    }

    /// `value`'s last `width` (at most 4) decimal digits, zero-padded.
    fn push_padded(&mut self, value: u32, width: usize) {
        for digit in crate::digits::padded(value, width) {
            self.push(&[digit]);
        }
    }
}

impl std::fmt::Write for PeriodKey {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if self.push(text.as_bytes()) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn local_day_follows_the_zone_not_utc() {
        let at = utc("2026-11-10T17:00:00Z");
        assert_eq!(local_day(at, Tz::UTC).to_string(), "2026-11-10");
        assert_eq!(
            local_day(at, chrono_tz::Asia::Shanghai).to_string(),
            "2026-11-11"
        );
    }

    #[test]
    fn an_invalid_member_zone_falls_back_to_the_default() {
        assert_eq!(member_zone(Some("Nowhere/Land"), Tz::UTC), Tz::UTC);
        assert_eq!(
            member_zone(Some("Asia/Tokyo"), Tz::UTC),
            chrono_tz::Asia::Tokyo
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        let sunday = utc("2026-11-29T12:00:00Z");
        let monday = utc("2026-11-30T12:00:00Z");
        assert_ne!(
            period_key(Period::Week, sunday, Tz::UTC),
            period_key(Period::Week, monday, Tz::UTC)
        );
        assert_eq!(period_key(Period::Month, sunday, Tz::UTC), "2026-11");
    }

    #[test]
    fn period_keys_keep_the_format_stored_members_hold() {
        let at = utc("2026-03-05T12:00:00Z");
        assert_eq!(period_key(Period::Day, at, Tz::UTC), "2026-03-05");
        assert_eq!(period_key(Period::Week, at, Tz::UTC), "2026-W10");
        assert_eq!(period_key(Period::Month, at, Tz::UTC), "2026-03");
        assert_eq!(period_key(Period::Ever, at, Tz::UTC), "ever");
    }

    #[test]
    fn the_fast_period_keys_match_the_formatter() {
        use std::fmt::Write as _;
        let days = [
            (2026, 1, 1),
            (2026, 12, 31),
            (2027, 1, 3),
            (1000, 1, 1),
            (9999, 12, 31),
            (999, 7, 9),
            (10000, 2, 29),
            (-44, 3, 15),
        ];
        for (y, m, d) in days {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            let week = day.iso_week();
            let mut expected = String::new();
            write!(
                expected,
                "{:04}-{:02}-{:02}",
                day.year(),
                day.month(),
                day.day()
            )
            .unwrap();
            let mut key = String::new();
            write_period_key(Period::Day, day, &mut key);
            assert_eq!(key, expected);
            write_period_key(Period::Week, day, &mut key);
            assert_eq!(key, format!("{}-W{:02}", week.year(), week.week()));
            write_period_key(Period::Month, day, &mut key);
            assert_eq!(key, format!("{}-{:02}", day.year(), day.month()));
        }
    }
}
