//! Times as test files write them: relative to the test's start (`+1d`, `+2h30m`,
//! `-10d`, `+0`), RFC 3339 with an offset, or a local time in `settings.timezone`
//! (`2026-11-11T10:00:00`), the way `rally sim --until` reads one.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::rules::yaml::{Node, Value};

/// Where a test starts when it does not say: Monday 5 January 2026, 10:00 in
/// `settings.timezone` — a fixed instant, so a test gives the same result every day,
/// a Monday so weekly periods begin with it, and mid-morning so that usual quiet hours
/// (`22:00-08:00`) do not hold back the first messages.
pub fn default_start(zone: Tz) -> DateTime<Utc> {
    let local = NaiveDate::from_ymd_opt(2026, 1, 5)
        .and_then(|day| day.and_hms_opt(10, 0, 0))
        .unwrap_or_default();
    crate::campaign::local_to_utc(local, zone)
}

/// Reads a time value. `start` is what relative times count from (`None` while the
/// start itself is read: it cannot be relative).
pub fn parse(
    value: &Value,
    start: Option<DateTime<Utc>>,
    zone: Tz,
) -> Result<DateTime<Utc>, String> {
    let text = match &value.node {
        Node::Str(text) => text.as_str(),
        // YAML reads `+0` as the number 0.
        Node::Int(0) => "+0",
        _ => {
            return Err(format!(
            "a time must be a string such as \"+1d\" or \"2026-11-11T10:00:00+08:00\", found {}",
            value.kind()
        ))
        }
    };
    parse_text(text.trim(), start, zone)
}

fn parse_text(text: &str, start: Option<DateTime<Utc>>, zone: Tz) -> Result<DateTime<Utc>, String> {
    if let Some((sign, rest)) = relative(text) {
        let Some(start) = start else {
            return Err(format!(
                "{text:?}: the start cannot be relative; write RFC 3339 (\"2026-11-01T09:00:00+08:00\") \
                 or a local time (\"2026-11-01T09:00:00\")"
            ));
        };
        let offset = if rest == "0" {
            Duration::zero()
        } else {
            crate::duration::parse(rest).map_err(|e| format!("{text:?}: {e}"))?
        };
        return Ok(start + offset * sign);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Some(local) = crate::localtime::parse_local(text) {
        return Ok(crate::campaign::local_to_utc(local, zone));
    }
    Err(format!(
        "{text:?} is not a time: write one relative to the test's start (\"+1d\", \"+2h30m\", \"-10d\"), \
         RFC 3339 with an offset (\"2026-11-11T10:00:00+08:00\") or a local time in settings.timezone ({})",
        crate::localtime::LOCAL_TIME_FORMS
    ))
}

/// `+DURATION` → (1, DURATION), `-DURATION` → (-1, DURATION).
fn relative(text: &str) -> Option<(i32, &str)> {
    if let Some(rest) = text.strip_prefix('+') {
        return Some((1, rest));
    }
    // A `-` followed by a digit and a unit, not an RFC 3339 date (which starts with digits).
    text.strip_prefix('-').map(|rest| (-1, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::SourcePos;
    use std::sync::Arc;

    fn text(s: &str) -> Value {
        Value {
            at: SourcePos {
                file: Arc::from("t.yaml"),
                line: 1,
                col: 1,
            },
            node: Node::Str(s.into()),
            text_start: Default::default(),
            unresolved: false,
        }
    }

    fn start() -> DateTime<Utc> {
        "2026-01-05T02:00:00Z".parse().unwrap()
    }

    #[test]
    fn relative_times_count_from_the_start() {
        let at = |s: &str| {
            parse(&text(s), Some(start()), Tz::UTC)
                .unwrap()
                .to_rfc3339()
        };
        assert_eq!(at("+1d"), "2026-01-06T02:00:00+00:00");
        assert_eq!(at("+2h30m"), "2026-01-05T04:30:00+00:00");
        assert_eq!(at("-10d"), "2025-12-26T02:00:00+00:00");
        assert_eq!(at("+0"), "2026-01-05T02:00:00+00:00");
    }

    #[test]
    fn absolute_times_are_rfc3339_or_local_in_the_rules_zone() {
        let zone: Tz = "Asia/Shanghai".parse().unwrap();
        let at = |s: &str| parse(&text(s), None, zone).unwrap().to_rfc3339();
        assert_eq!(at("2026-11-11T10:00:00+08:00"), "2026-11-11T02:00:00+00:00");
        assert_eq!(at("2026-11-11T10:00:00"), "2026-11-11T02:00:00+00:00");
    }

    #[test]
    fn a_bad_time_says_what_forms_there_are() {
        let err = parse(&text("tomorrow"), Some(start()), Tz::UTC).unwrap_err();
        assert!(err.contains("is not a time"), "{err}");
        let err = parse(&text("+1y"), Some(start()), Tz::UTC).unwrap_err();
        assert!(err.contains("unknown unit"), "{err}");
        assert!(parse(&text("+1d"), None, Tz::UTC).is_err());
    }

    #[test]
    fn the_default_start_is_ten_in_the_morning_local() {
        let zone: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(default_start(zone), start());
    }
}
