//! Durations as operators write them in rule files: `7d`, `36h`, `90m`, `45s`, or a
//! sum such as `1d12h`. Parsed once at load into a `chrono::Duration`, and bounded by
//! [`MAX`]: a deadline is a rule's start plus its duration, and with the bound every
//! such sum stays far inside the range of a timestamp.

use chrono::Duration;

/// The longest duration a rule file may hold: ten years (`3650d`). Anything longer is
/// a typo (`20000000w` for `2w`), not a wait anyone means.
pub const MAX: Duration = Duration::days(3650);

/// Parses `7d`, `36h`, `90m`, `30s`, `2w` or combinations (`1d12h`). Zero is refused:
/// every duration in a rule file is a positive wait. So is anything over [`MAX`].
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration (write e.g. \"7d\", \"36h\", \"90m\")".into());
    }
    let too_long = || {
        format!(
            "duration {text:?} is longer than the longest allowed, {} (10 years)",
            format(MAX)
        )
    };
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: expected a number before {c:?} (e.g. \"7d\", \"36h\", \"90m\")"
            ));
        }
        // Only digits: the one way to fail is a number too big for an i64.
        let n: i64 = digits.parse().map_err(|_| too_long())?;
        digits.clear();
        let part = match c {
            'w' => Duration::try_weeks(n),
            'd' => Duration::try_days(n),
            'h' => Duration::try_hours(n),
            'm' => Duration::try_minutes(n),
            's' => Duration::try_seconds(n),
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {c:?} (use w, d, h, m or s)"
                ))
            }
        };
        total = part
            .and_then(|p| total.checked_add(&p))
            .filter(|sum| *sum <= MAX)
            .ok_or_else(too_long)?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: a number needs a unit (w, d, h, m or s), e.g. \"{digits}d\""
        ));
    }
    if total <= Duration::zero() {
        return Err(format!("duration {text:?} must be longer than zero"));
    }
    Ok(total)
}

/// Formats a duration the way it is written in rule files (largest units first).
pub fn format(d: Duration) -> String {
    let mut secs = d.num_seconds();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_units_parse() {
        assert_eq!(parse("7d").unwrap(), Duration::days(7));
        assert_eq!(parse("36h").unwrap(), Duration::hours(36));
        assert_eq!(parse("90m").unwrap(), Duration::minutes(90));
        assert_eq!(parse("1d12h").unwrap(), Duration::hours(36));
        assert_eq!(parse("2w").unwrap(), Duration::days(14));
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse("7").unwrap_err().contains("needs a unit"));
        assert!(parse("7y").unwrap_err().contains("unknown unit"));
        assert!(parse("d").unwrap_err().contains("expected a number"));
        assert!(parse("0h").unwrap_err().contains("longer than zero"));
        assert!(parse("").is_err());
    }

    #[test]
    fn ten_years_is_the_longest_duration() {
        assert_eq!(parse("3650d").unwrap(), MAX);
        assert_eq!(parse("521w3d").unwrap(), MAX);
    }

    #[test]
    fn a_duration_over_ten_years_is_refused_naming_the_bound() {
        assert_eq!(
            parse("20000000w").unwrap_err(),
            "duration \"20000000w\" is longer than the longest allowed, 3650d (10 years)"
        );
        assert!(parse("3650d1s").unwrap_err().contains("longest allowed"));
    }

    #[test]
    fn a_number_too_big_for_any_arithmetic_is_refused_as_too_long() {
        let err = parse("99999999999999999999999d").unwrap_err();
        assert!(err.contains("longest allowed"), "{err}");
        let err = parse("9223372036854775807s1s").unwrap_err();
        assert!(err.contains("longest allowed"), "{err}");
    }

    #[test]
    fn format_round_trips() {
        for text in ["7d", "36h", "1h30m", "45s"] {
            let d = parse(text).unwrap();
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }
}
