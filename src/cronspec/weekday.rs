//! The weekday field, from crontab's numbering (0 or 7 = Sunday, 1 = Monday … 6 =
//! Saturday) to the cron crate's. Rather than renumber (the crate counts 1 = Sunday and
//! steps over its own range), the field is expanded to the set of days it names and
//! written back as an explicit list of names, which the crate reads unambiguously.

/// Day names as the crate accepts them, indexed by crontab number (0 = Sunday).
const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a crontab weekday field (`1-5`, `0,6`, `Mon-Fri`, `*/2`, `5-7`, `Fri-Sun`)
/// as a list of day names. `*` and `?` pass through unchanged.
pub fn translate(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        for day in expand(item)? {
            days[usize::from(day % 7)] = true;
        }
    }
    let names: Vec<&str> = NAMES
        .iter()
        .zip(days)
        .filter_map(|(name, on)| on.then_some(*name))
        .collect();
    Ok(names.join(","))
}

/// The crontab numbers (0–7) one comma-separated item covers, in range order.
fn expand(item: &str) -> Result<Vec<u8>, String> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => {
            let step: usize = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("weekday step {step:?} in {item:?} is not a positive number")
            })?;
            (base, step)
        }
        None => (item, 1),
    };
    let range: Vec<u8> = if base == "*" {
        (0..=7).collect()
    } else if let Some((from, to)) = base.split_once('-') {
        let (from, to) = (day(from)?, day(to)?);
        if from <= to {
            (from..=to).collect()
        } else {
            // Fri-Sun, 6-1: a range that runs past Saturday wraps into the next week.
            (from..=7).chain(1..=to).collect()
        }
    } else if item.contains('/') {
        // `1/2` as in crontab implementations that accept it: from that day to the end.
        (day(base)?..=7).collect()
    } else {
        vec![day(base)?]
    };
    Ok(range.into_iter().step_by(step).collect())
}

/// One day as a crontab number (0–7) or a name (`Mon`, `monday`, `TUE`, …).
fn day(text: &str) -> Result<u8, String> {
    if let Ok(n) = text.parse::<u8>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!(
                "weekday {n} is out of range (0–7; 0 and 7 are Sunday, 1 is Monday)"
            ))
        };
    }
    let lower = text.to_ascii_lowercase();
    let n = match lower.as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        _ => {
            return Err(format!(
                "{text:?} is not a weekday (write 0–7 or a name such as Mon, Tue … Sun)"
            ))
        }
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn numbers_follow_crontab_with_both_zero_and_seven_meaning_sunday() {
        assert_eq!(translate("1").unwrap(), "MON");
        assert_eq!(translate("0").unwrap(), "SUN");
        assert_eq!(translate("7").unwrap(), "SUN");
        assert_eq!(translate("6").unwrap(), "SAT");
    }

    #[test]
    fn ranges_lists_and_names_expand_to_the_days_they_cover() {
        assert_eq!(translate("1-5").unwrap(), "MON,TUE,WED,THU,FRI");
        assert_eq!(translate("Mon-Fri").unwrap(), "MON,TUE,WED,THU,FRI");
        assert_eq!(translate("0,6").unwrap(), "SUN,SAT");
        assert_eq!(translate("wed,FRIDAY").unwrap(), "WED,FRI");
    }

    #[test]
    fn a_range_ending_on_sunday_or_past_saturday_wraps_into_the_week() {
        assert_eq!(translate("5-7").unwrap(), "SUN,FRI,SAT");
        assert_eq!(translate("Fri-Sun").unwrap(), "SUN,FRI,SAT");
        assert_eq!(translate("Sat-Mon").unwrap(), "SUN,MON,SAT");
    }

    #[test]
    fn steps_count_in_crontab_numbers() {
        assert_eq!(translate("*/2").unwrap(), "SUN,TUE,THU,SAT");
        assert_eq!(translate("1-5/2").unwrap(), "MON,WED,FRI");
        assert_eq!(translate("*/3").unwrap(), "SUN,WED,SAT");
    }

    #[test]
    fn any_passes_through_unchanged() {
        assert_eq!(translate("*").unwrap(), "*");
        assert_eq!(translate("?").unwrap(), "?");
    }

    #[test]
    fn unknown_days_and_bad_steps_are_refused_with_the_offending_text() {
        assert!(translate("8").unwrap_err().contains("out of range"));
        assert!(translate("Funday").unwrap_err().contains("\"Funday\""));
        assert!(translate("*/0").unwrap_err().contains("step"));
        assert!(translate("1-").is_err());
    }
}
