//! The shape of a cron expression: a shorthand (`@daily`), crontab's 5 fields (minute
//! first), or 6–7 fields with seconds first and an optional year. Each field keeps
//! where it was written, so an error can point into the expression.

use super::field::Unit;
use super::CronError;

/// One field as written, and where it starts, in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written<'a> {
    pub unit: Unit,
    pub text: &'a str,
    pub at: usize,
}

const FIVE: [Unit; 5] = [
    Unit::Minute,
    Unit::Hour,
    Unit::DayOfMonth,
    Unit::Month,
    Unit::DayOfWeek,
];
const SEVEN: [Unit; 7] = [
    Unit::Second,
    Unit::Minute,
    Unit::Hour,
    Unit::DayOfMonth,
    Unit::Month,
    Unit::DayOfWeek,
    Unit::Year,
];

/// crontab's shorthands, as the 5 fields they stand for. `@hourly` has a wildcard
/// hour, so it is a wildcard job at DST changes, exactly as in Vixie cron.
const SHORTHANDS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// The fields of `text`, each named by its unit. A shorthand's fields all point at the
/// shorthand itself.
pub fn fields(text: &str) -> Result<Vec<Written<'_>>, CronError> {
    let words = words(text);
    if let Some(&(at, first)) = words.first() {
        if first.starts_with('@') {
            return shorthand(first, at, &words[1..]);
        }
    }
    let units: &[Unit] = match words.len() {
        5 => &FIVE,
        6 => &SEVEN[..6],
        7 => &SEVEN,
        n => {
            // Too many: point at the first field too many; too few: at the start.
            let at = words
                .get(7)
                .map_or_else(|| words.first().map_or(0, |w| w.0), |w| w.0);
            return Err(CronError::new(
                at,
                format!("expected 5 fields (or 6–7 with seconds), got {n}"),
            ));
        }
    };
    Ok(units
        .iter()
        .zip(words)
        .map(|(&unit, (at, text))| Written { unit, text, at })
        .collect())
}

fn shorthand<'a>(
    name: &'a str,
    at: usize,
    rest: &[(usize, &'a str)],
) -> Result<Vec<Written<'a>>, CronError> {
    if let Some(&(extra, _)) = rest.first() {
        return Err(CronError::new(
            extra,
            format!("{name} stands for all five fields; write nothing after it"),
        ));
    }
    let lower = name.to_ascii_lowercase();
    let Some((_, fields)) = SHORTHANDS.iter().find(|(short, _)| *short == lower) else {
        let message = if lower == "@reboot" {
            "@reboot has no meaning for a rule: write a time (e.g. @daily or \"0 9 * * *\")"
                .to_string()
        } else {
            format!(
                "unknown shorthand {name} (use @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight or @hourly)"
            )
        };
        return Err(CronError::new(at, message));
    };
    Ok(FIVE
        .iter()
        .zip(fields.split(' '))
        .map(|(&unit, text)| Written { unit, text, at })
        .collect())
}

/// Whitespace-separated words with where each starts, in characters.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (chars, (byte, c)) in text.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (true, Some((at, from))) => {
                out.push((at, &text[from..byte]));
                start = None;
            }
            (false, None) => start = Some((chars, byte)),
            _ => {}
        }
    }
    if let Some((at, from)) = start {
        out.push((at, &text[from..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_know_their_character_positions() {
        assert_eq!(words(" 0  9\t* "), [(1, "0"), (4, "9"), (6, "*")]);
    }

    #[test]
    fn five_fields_start_with_the_minute() {
        let f = fields("0 9 * * 1").unwrap();
        assert_eq!(f[0].unit, Unit::Minute);
        assert_eq!((f[4].unit, f[4].text, f[4].at), (Unit::DayOfWeek, "1", 8));
    }

    #[test]
    fn six_fields_start_with_the_second_and_a_seventh_is_the_year() {
        assert_eq!(fields("0 0 9 * * *").unwrap()[0].unit, Unit::Second);
        assert_eq!(fields("0 0 9 * * * 2027").unwrap()[6].unit, Unit::Year);
    }

    #[test]
    fn the_wrong_number_of_fields_is_counted_in_crontab_terms() {
        let err = fields("0 9 *").unwrap_err();
        assert_eq!(
            err.message,
            "expected 5 fields (or 6–7 with seconds), got 3"
        );
        assert_eq!(err.at, 0);
    }

    #[test]
    fn a_field_too_many_is_pointed_at() {
        let err = fields("0 0 9 * * * 2027 1").unwrap_err();
        assert_eq!(
            err.message,
            "expected 5 fields (or 6–7 with seconds), got 8"
        );
        assert_eq!(err.at, 17);
    }

    #[test]
    fn shorthands_stand_for_crontab_fields() {
        fn texts(s: &str) -> Vec<&str> {
            fields(s).unwrap().iter().map(|w| w.text).collect()
        }
        assert_eq!(texts("@yearly"), ["0", "0", "1", "1", "*"]);
        assert_eq!(texts("@annually"), texts("@yearly"));
        assert_eq!(texts("@monthly"), ["0", "0", "1", "*", "*"]);
        assert_eq!(texts("@weekly"), ["0", "0", "*", "*", "0"]);
        assert_eq!(texts("@daily"), ["0", "0", "*", "*", "*"]);
        assert_eq!(texts("@midnight"), texts("@daily"));
        assert_eq!(texts("@hourly"), ["0", "*", "*", "*", "*"]);
    }

    #[test]
    fn an_unknown_shorthand_lists_the_known_ones() {
        let err = fields("@fortnightly").unwrap_err();
        assert!(err
            .message
            .starts_with("unknown shorthand @fortnightly (use @yearly"));
    }

    #[test]
    fn reboot_is_refused_as_meaningless_for_a_rule() {
        assert!(fields("@reboot")
            .unwrap_err()
            .message
            .contains("no meaning"));
    }

    #[test]
    fn a_shorthand_stands_alone() {
        let err = fields("@daily 5").unwrap_err();
        assert_eq!(err.at, 7);
    }
}
