//! Times and days in a stored member, written as chrono writes them but without its
//! formatter: chrono serializes through `collect_str`, which formats into a fresh
//! string, and a member carries up to a dozen times and days that are written again at
//! every step that changes it (a sixth of the daemon's cost of encoding a member).
//! Only writing changes: the text is chrono's to the byte (tested), and reading stays
//! chrono's.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Serialize, Serializer};

/// A time as chrono's `Serialize` writes it (RFC 3339, `Z`, fractions as needed).
pub fn utc<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    match super::rfc3339_whole_seconds(*t) {
        Some(text) => serializer.serialize_str(ascii(&text)),
        None => t.serialize(serializer),
    }
}

pub fn option_utc<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serializer.serialize_some(&Time(*t)),
        None => serializer.serialize_none(),
    }
}

/// A day as chrono's `Serialize` writes it (`2026-11-01`).
pub fn day<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
    match day_text(*date) {
        Some(text) => serializer.serialize_str(ascii(&text)),
        None => date.serialize(serializer),
    }
}

pub fn option_day<S: Serializer>(
    date: &Option<NaiveDate>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => serializer.serialize_some(&Day(*date)),
        None => serializer.serialize_none(),
    }
}

/// A day and what goes with it (`points_day`, `messages_day`), as the pair.
pub fn option_day_and<T: Serialize, S: Serializer>(
    pair: &Option<(NaiveDate, T)>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match pair {
        Some((date, value)) => serializer.serialize_some(&(Day(*date), value)),
        None => serializer.serialize_none(),
    }
}

struct Time(DateTime<Utc>);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        utc(&self.0, serializer)
    }
}

struct Day(NaiveDate);

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        day(&self.0, serializer)
    }
}

/// `YYYY-MM-DD` for years 0–9999; `None` for the others, which chrono writes signed.
fn day_text(date: NaiveDate) -> Option<[u8; 10]> {
    let year = u32::try_from(date.year())
        .ok()
        .filter(|year| *year <= 9999)?;
    let two = |value: u32| [b'0' + (value / 10) as u8, b'0' + (value % 10) as u8];
    let [c, y] = [year / 100, year % 100].map(two);
    let [m, d] = [date.month(), date.day()].map(two);
    Some([c[0], c[1], y[0], y[1], b'-', m[0], m[1], b'-', d[0], d[1]])
}

/// The text of digits and separators these functions build.
fn ascii(bytes: &[u8]) -> &str {
    // Digits, `-`, `:`, `T` and `Z` only: always UTF-8.
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Fast {
        #[serde(serialize_with = "utc")]
        time: DateTime<Utc>,
        #[serde(serialize_with = "option_utc")]
        maybe_time: Option<DateTime<Utc>>,
        #[serde(serialize_with = "day")]
        day: NaiveDate,
        #[serde(serialize_with = "option_day")]
        maybe_day: Option<NaiveDate>,
        #[serde(serialize_with = "option_day_and")]
        pair: Option<(NaiveDate, i64)>,
    }

    #[derive(Serialize)]
    struct Chrono {
        time: DateTime<Utc>,
        maybe_time: Option<DateTime<Utc>>,
        day: NaiveDate,
        maybe_day: Option<NaiveDate>,
        pair: Option<(NaiveDate, i64)>,
    }

    /// The same text as chrono's, and the same MessagePack as the store writes.
    #[test]
    fn times_and_days_are_written_as_chrono_writes_them() {
        let times = [
            "2026-11-01T00:00:00Z",
            "2026-11-01T23:59:59.5Z",
            "2026-11-01T12:00:00.123456789Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "1969-12-31T23:59:60Z",
        ]
        .map(|text| text.parse::<DateTime<Utc>>().unwrap());
        let mut days = vec![
            NaiveDate::from_ymd_opt(2026, 1, 9).unwrap(),
            NaiveDate::from_ymd_opt(0, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(-1, 6, 30).unwrap(),
        ];
        days.extend([NaiveDate::MIN, NaiveDate::MAX]);
        let extremes = [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC];
        for time in times.iter().chain(&extremes) {
            for (n, day) in days.iter().enumerate() {
                let fast = Fast {
                    time: *time,
                    maybe_time: (n % 2 == 0).then_some(*time),
                    day: *day,
                    maybe_day: (n % 2 == 1).then_some(*day),
                    pair: (n % 3 != 0).then_some((*day, n as i64)),
                };
                let chrono = Chrono {
                    time: fast.time,
                    maybe_time: fast.maybe_time,
                    day: fast.day,
                    maybe_day: fast.maybe_day,
                    pair: fast.pair,
                };
                assert_eq!(
                    serde_json::to_string(&fast).unwrap(),
                    serde_json::to_string(&chrono).unwrap()
                );
                assert_eq!(
                    rmp_serde::to_vec(&fast).unwrap(),
                    rmp_serde::to_vec(&chrono).unwrap()
                );
            }
        }
    }
}
