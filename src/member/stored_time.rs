//! Times and days in a stored member, written and read as chrono writes and reads them
//! but without its formatter and parser for the one form Rally writes. chrono
//! serializes through `collect_str`, which formats into a fresh string, and parses
//! with its relaxed RFC 3339 grammar; a member carries up to a dozen times and days,
//! written again at every step that changes it (a sixth of the daemon's cost of
//! encoding a member) and read at every step that finds it in the store rather than in
//! memory (a timer's pop, a phase reaching every member, `GET /v1/members/{id}`).
//! The text written is chrono's to the byte, and a value read is chrono's reading of
//! it (both tested): anything but the plain form goes to chrono, errors and all.
//!
//! Each module is a field's `#[serde(with = "…")]`.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A time (RFC 3339, `Z`, fractions as needed).
pub mod utc {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        match crate::member::rfc3339_whole_seconds(*t) {
            Some(text) => serializer.serialize_str(ascii(&text)),
            None => t.serialize(serializer),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        deserializer
            .deserialize_str(TextVisitor::<Time>::default())
            .map(|t| t.0)
    }
}

pub mod option_utc {
    use super::*;

    pub fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => serializer.serialize_some(&Time(*t)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Time>::deserialize(deserializer)?.map(|t| t.0))
    }
}

/// A day (`2026-11-01`).
pub mod day {
    use super::*;

    pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        match day_text(*date) {
            Some(text) => serializer.serialize_str(ascii(&text)),
            None => date.serialize(serializer),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        deserializer
            .deserialize_str(TextVisitor::<Day>::default())
            .map(|d| d.0)
    }
}

pub mod option_day {
    use super::*;

    pub fn serialize<S: Serializer>(
        date: &Option<NaiveDate>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => serializer.serialize_some(&Day(*date)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDate>, D::Error> {
        Ok(Option::<Day>::deserialize(deserializer)?.map(|d| d.0))
    }
}

/// A day and what goes with it (`points_day`, `messages_day`), as the pair.
pub mod option_day_and {
    use super::*;

    pub fn serialize<T: Serialize, S: Serializer>(
        pair: &Option<(NaiveDate, T)>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match pair {
            Some((date, value)) => serializer.serialize_some(&(Day(*date), value)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<(NaiveDate, T)>, D::Error> {
        Ok(Option::<(Day, T)>::deserialize(deserializer)?.map(|(d, value)| (d.0, value)))
    }
}

struct Time(DateTime<Utc>);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        utc::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        utc::deserialize(deserializer).map(Time)
    }
}

struct Day(NaiveDate);

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        day::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        day::deserialize(deserializer).map(Day)
    }
}

/// A value read from text: the plain form by hand, anything else as chrono reads it.
trait FromText: Sized {
    /// What chrono's visitor says it expected.
    const EXPECTING: &'static str;
    fn from_text(text: &str) -> Result<Self, String>;
}

impl FromText for Time {
    const EXPECTING: &'static str = "an RFC 3339 formatted date and time string";

    fn from_text(text: &str) -> Result<Self, String> {
        if let Some(t) = plain_time(text.as_bytes()) {
            return Ok(Time(t));
        }
        // What chrono's `Deserialize for DateTime<Utc>` does.
        text.parse::<DateTime<FixedOffset>>()
            .map(|t| Time(t.with_timezone(&Utc)))
            .map_err(|e| e.to_string())
    }
}

impl FromText for Day {
    const EXPECTING: &'static str = "a formatted date string";

    fn from_text(text: &str) -> Result<Self, String> {
        if let Some(date) = plain_day(text.as_bytes()) {
            return Ok(Day(date));
        }
        text.parse::<NaiveDate>()
            .map(Day)
            .map_err(|e| e.to_string())
    }
}

struct TextVisitor<T>(PhantomData<T>);

impl<T> Default for TextVisitor<T> {
    fn default() -> Self {
        TextVisitor(PhantomData)
    }
}

impl<T: FromText> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        T::from_text(text).map_err(E::custom)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form [`crate::member::rfc3339_whole_seconds`] writes;
/// `None` for anything else, including a date or time that does not exist.
fn plain_time(text: &[u8]) -> Option<DateTime<Utc>> {
    let [date @ .., b'T', h1, h2, b':', m1, m2, b':', s1, s2, b'Z'] = text else {
        return None;
    };
    let (hour, minute, second) = (two(*h1, *h2)?, two(*m1, *m2)?, two(*s1, *s2)?);
    // A leap second (`:60`) is chrono's to read.
    let time = chrono::NaiveTime::from_hms_opt(hour, minute, second)?;
    Some(plain_day(date)?.and_time(time).and_utc())
}

/// `YYYY-MM-DD`, the form [`day_text`] writes.
fn plain_day(text: &[u8]) -> Option<NaiveDate> {
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *text else {
        return None;
    };
    let year = two(y1, y2)? * 100 + two(y3, y4)?;
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, two(m1, m2)?, two(d1, d2)?)
}

/// Two ASCII digits as their number.
fn two(tens: u8, ones: u8) -> Option<u32> {
    let digit = |b: u8| b.is_ascii_digit().then(|| u32::from(b - b'0'));
    Some(digit(tens)? * 10 + digit(ones)?)
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

    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Fast {
        #[serde(with = "utc")]
        time: DateTime<Utc>,
        #[serde(with = "option_utc")]
        maybe_time: Option<DateTime<Utc>>,
        #[serde(with = "day")]
        day: NaiveDate,
        #[serde(with = "option_day")]
        maybe_day: Option<NaiveDate>,
        #[serde(with = "option_day_and")]
        pair: Option<(NaiveDate, i64)>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
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
                let packed = rmp_serde::to_vec(&fast).unwrap();
                assert_eq!(packed, rmp_serde::to_vec(&chrono).unwrap());
                let read: Fast = rmp_serde::from_slice(&packed).unwrap();
                assert_eq!(read, fast);
            }
            // What Rally writes by hand it reads by hand.
            if let Some(text) = crate::member::rfc3339_whole_seconds(*time) {
                assert_eq!(plain_time(&text), Some(*time));
            }
        }
        for day in &days {
            if let Some(text) = day_text(*day) {
                assert_eq!(plain_day(&text), Some(*day));
            }
        }
    }

    /// What chrono reads from `text`, as a time and as a day, beside what these read:
    /// the same values, and the same errors word for word.
    fn reads_as_chrono_does(text: &str) {
        let quoted = serde_json::to_string(text).unwrap();
        let time = |json: &str| {
            let fast = serde_json::from_str::<Time>(json).map(|t| t.0);
            let chrono = serde_json::from_str::<DateTime<Utc>>(json);
            (
                fast.map_err(|e| e.to_string()),
                chrono.map_err(|e| e.to_string()),
            )
        };
        let (fast, chrono) = time(&quoted);
        assert_eq!(fast, chrono, "time {text:?}");
        let day = |json: &str| {
            let fast = serde_json::from_str::<Day>(json).map(|d| d.0);
            let chrono = serde_json::from_str::<NaiveDate>(json);
            (
                fast.map_err(|e| e.to_string()),
                chrono.map_err(|e| e.to_string()),
            )
        };
        let (fast, chrono) = day(&quoted);
        assert_eq!(fast, chrono, "day {text:?}");
        let packed = rmp_serde::to_vec(text).unwrap();
        let fast = rmp_serde::from_slice::<Time>(&packed).map(|t| t.0);
        let chrono = rmp_serde::from_slice::<DateTime<Utc>>(&packed);
        assert_eq!(
            fast.map_err(|e| e.to_string()),
            chrono.map_err(|e| e.to_string()),
            "packed time {text:?}"
        );
    }

    #[test]
    fn times_and_days_are_read_as_chrono_reads_them() {
        for text in [
            "2026-11-01T00:00:00Z",
            "2026-11-01T23:59:59Z",
            "2028-02-29T12:30:45Z",
            "2026-02-29T12:30:45Z",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "2026-11-01t00:00:00Z",
            "2026-11-01 00:00:00Z",
            "2026-11-01T00:00:00z",
            "2026-11-01T00:00:00.5Z",
            "2026-11-01T08:00:00+08:00",
            "2026-11-01T00:00:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "+12026-11-01T00:00:00Z",
            "2026-1-01T00:00:00Z",
            "2026-11-01T0a:00:00Z",
            "2026-11-01",
            "2028-02-29",
            "2026-02-29",
            "2026-11-1",
            "20261101",
            "2026/11/01",
            " 2026-11-01",
            "",
            "Z",
        ] {
            reads_as_chrono_does(text);
        }
        // Not a string at all: the same complaint.
        for json in ["12", "null", "[]"] {
            assert_eq!(
                serde_json::from_str::<Time>(json)
                    .map(|t| t.0)
                    .map_err(|e| e.to_string()),
                serde_json::from_str::<DateTime<Utc>>(json).map_err(|e| e.to_string())
            );
            assert_eq!(
                serde_json::from_str::<Day>(json)
                    .map(|d| d.0)
                    .map_err(|e| e.to_string()),
                serde_json::from_str::<NaiveDate>(json).map_err(|e| e.to_string())
            );
        }
    }

    proptest! {
        #[test]
        fn any_text_of_the_plain_forms_shape_is_read_as_chrono_reads_it(
            time in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
            near in "[0-9T:Z .+-]{8,21}",
        ) {
            reads_as_chrono_does(&time);
            reads_as_chrono_does(&time[..10]);
            reads_as_chrono_does(&near);
        }
    }
}
