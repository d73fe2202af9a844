//! One field of a cron expression, read as crontab reads it: `*`, numbers, names
//! (months and weekdays, any case, mixed freely with numbers: `FEB-4`, `Mon-5`), ranges
//! `a-b`, steps `/n` and lists `a,b`. Each field is expanded here to the set of values
//! it names, so every mistake is found with its place in the expression, and the
//! schedule handed to the cron crate is plain lists that it cannot read differently
//! (the crate numbers weekdays 1 = Sunday and steps over its own ranges).

use std::collections::BTreeSet;

use super::CronError;

/// Which field, in crontab's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

/// Month names by number − 1, as crontab accepts them (three letters; full names too).
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Day names as the cron crate reads them, indexed by crontab number (0 = Sunday).
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Unit {
    /// The field's name in messages.
    fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::DayOfMonth => "day of month",
            Unit::Month => "month",
            Unit::DayOfWeek => "day of week",
            Unit::Year => "year",
        }
    }

    /// Bounds as written; the weekday field takes 7 for Sunday as well as 0, and years
    /// are the cron crate's.
    fn range(self) -> (u32, u32) {
        match self {
            Unit::Second | Unit::Minute => (0, 59),
            Unit::Hour => (0, 23),
            Unit::DayOfMonth => (1, 31),
            Unit::Month => (1, 12),
            Unit::DayOfWeek => (0, 7),
            Unit::Year => (1970, 2100),
        }
    }

    /// "minute must be 0–59": the true bounds in crontab terms.
    fn bounds(self) -> String {
        let (min, max) = self.range();
        let names = match self {
            Unit::Month => " or JAN–DEC",
            Unit::DayOfWeek => " or SUN–SAT",
            _ => "",
        };
        format!("{} must be {min}–{max}{names}", self.name())
    }

    fn error(self, at: usize, found: &str) -> CronError {
        let found = if found.is_empty() {
            "nothing".to_string()
        } else {
            format!("{found:?}")
        };
        CronError::new(at, format!("{}, found {found}", self.bounds()))
    }

    /// One value, a number or a name.
    fn value(self, text: &str, at: usize) -> Result<u32, CronError> {
        let (min, max) = self.range();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| self.error(at, text));
        }
        let lower = text.to_ascii_lowercase();
        let named = match self {
            Unit::Month => MONTHS
                .iter()
                .position(|m| *m == lower)
                .or_else(|| MONTH_NAMES.iter().position(|m| *m == lower))
                .map(|i| i + 1),
            Unit::DayOfWeek => weekday(&lower),
            _ => None,
        };
        named
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.error(at, text))
    }
}

/// A weekday name: three letters, the whole word, or the common `tues`/`thurs`.
fn weekday(lower: &str) -> Option<usize> {
    let n = match lower {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        _ => return None,
    };
    Some(n)
}

/// Characters in `text`: positions in an expression count characters, as columns do.
fn width(text: &str) -> usize {
    text.chars().count()
}

/// The values a field names; `at` is where the field starts in the expression, in
/// characters. Weekdays come out 0–6 (7 is folded into Sunday).
pub fn expand(unit: Unit, text: &str, at: usize) -> Result<BTreeSet<u32>, CronError> {
    let mut values = BTreeSet::new();
    let mut item_at = at;
    for item in text.split(',') {
        expand_item(unit, item, item_at, &mut values)?;
        item_at += width(item) + 1;
    }
    Ok(values)
}

fn expand_item(
    unit: Unit,
    item: &str,
    at: usize,
    values: &mut BTreeSet<u32>,
) -> Result<(), CronError> {
    let (min, max) = unit.range();
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => {
            let step_at = at + width(base) + 1;
            let step = step
                .parse::<usize>()
                .ok()
                .filter(|s| *s > 0 && step.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    CronError::new(
                        step_at,
                        format!(
                            "step in {} must be a whole number from 1, found {step:?}",
                            unit.name()
                        ),
                    )
                })?;
            (base, step)
        }
        None => (item, 1),
    };
    let any = base == "*" || (base == "?" && matches!(unit, Unit::DayOfMonth | Unit::DayOfWeek));
    let range: Vec<u32> = if any {
        (min..=max).collect()
    } else if let Some((from_text, to_text)) = base.split_once('-') {
        let from = unit.value(from_text, at)?;
        let to = unit.value(to_text, at + width(from_text) + 1)?;
        if from <= to {
            (from..=to).collect()
        } else if unit == Unit::DayOfWeek {
            // Fri-Sun, 6-1: a weekday range that runs past Saturday wraps into the
            // next week (Sunday counted once, as 7).
            (from..=7).chain(1..=to).collect()
        } else {
            return Err(CronError::new(
                at,
                format!(
                    "{} range {base} runs backwards (write {from_text}-{max},{min}-{to_text})",
                    unit.name()
                ),
            ));
        }
    } else if item.contains('/') {
        // `5/15` as cronie reads it: from that value to the end of the field.
        (unit.value(base, at)?..=max).collect()
    } else {
        vec![unit.value(base, at)?]
    };
    let fold = |v: u32| if unit == Unit::DayOfWeek { v % 7 } else { v };
    values.extend(range.into_iter().step_by(step).map(fold));
    Ok(())
}

/// Whether some month in `months` has some day in `days`: `30 2` (the 30th of
/// February) never comes, which crontab accepts in silence and a rule should not.
/// February counts 29 days, as it has in leap years.
pub fn some_day_exists(days: &BTreeSet<u32>, months: &BTreeSet<u32>) -> bool {
    const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let shortest_day = days.first().copied().unwrap_or(1);
    months.iter().any(|&m| {
        (m as usize)
            .checked_sub(1)
            .and_then(|i| LONGEST.get(i))
            .is_some_and(|&len| shortest_day <= len)
    })
}

/// The field as the cron crate reads it: `*` when every value is named, otherwise an
/// explicit list (weekdays by name, since the crate numbers them 1 = Sunday).
pub fn render(unit: Unit, values: &BTreeSet<u32>) -> String {
    let (min, max) = match unit {
        Unit::DayOfWeek => (0, 6),
        _ => unit.range(),
    };
    if values.len() == (min..=max).count() {
        return "*".to_string();
    }
    let items: Vec<String> = values
        .iter()
        .map(|&v| match unit {
            Unit::DayOfWeek => DAYS[v as usize % 7].to_string(),
            _ => v.to_string(),
        })
        .collect();
    items.join(",")
}

#[cfg(test)]
mod tests;
