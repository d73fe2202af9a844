//! Cron expressions as operators write them (SPEC §2.2, §2.7): crontab's 5 fields
//! (minute first, weekday 0 or 7 = Sunday, 1 = Monday, names anywhere a number goes),
//! its `@daily`-style shorthands, or 6–7 fields with seconds first. Every field is
//! checked and expanded here, once, at load ([`field`]), so a mistake is reported at
//! its place in the expression and in crontab's terms; the `cron` crate only ever sees
//! plain lists, and only walks the calendar.
//!
//! Occurrences are wall-clock times in a zone. The crate runs on naive local time (the
//! wall clock read as if it were UTC) and each naive occurrence becomes the instants it
//! stands for as Vixie cron would run it ([`dst`]): a fixed-time job skipped by a gap
//! runs when the gap ends and runs once in a repeated hour; a wildcard or step job runs
//! only at times that exist and runs again in a repeated hour. Several naive times can
//! land on one instant (all of a gap's); they fire once.

mod dst;
mod field;
mod syntax;

use std::collections::BTreeSet;
use std::fmt;
use std::iter::Peekable;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use cron::{OwnedScheduleIterator, Schedule};

use dst::Job;
use field::Unit;

/// A parsed cron expression.
#[derive(Clone, Debug)]
pub struct CronSpec {
    /// As written in the rule file.
    pub text: String,
    /// The expression as the cron crate reads it: one schedule, or two whose union is
    /// the expression when both day fields are restricted (the crate then requires
    /// both to match, where crontab, and so Rally, accepts either).
    schedules: Box<[Schedule]>,
    /// How the job meets DST changes.
    job: Job,
}

/// What is wrong with an expression, and where: `at` counts characters from the start
/// of the text as written, so a rule file can point into its string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError {
    pub at: usize,
    pub message: String,
}

impl CronError {
    fn new(at: usize, message: impl Into<String>) -> CronError {
        CronError {
            at,
            message: message.into(),
        }
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CronError {}

/// Hours by which a fall-back can repeat local time (no zone's clocks go back this far
/// in one change): how far a repeated time's second pass can lie from its naive time.
const LONGEST_SHIFT: i64 = 3;

impl CronSpec {
    /// Parses a 5-field crontab expression, a shorthand, or a 6–7 field one with
    /// seconds first.
    pub fn parse(text: &str) -> Result<CronSpec, CronError> {
        let written = syntax::fields(text)?;
        let mut fields = Vec::with_capacity(written.len());
        for w in &written {
            fields.push((w.unit, field::expand(w.unit, w.text, w.at)?));
        }
        let as_written = |unit: Unit| {
            written
                .iter()
                .find(|w| w.unit == unit)
                .map_or("", |w| w.text)
        };
        let job = Job::of(as_written(Unit::Minute), as_written(Unit::Hour));
        // crontab (vixie) treats a day field starting with `*` (as in `*/2`) as
        // unrestricted: judged on the fields as written, before expansion.
        let restricted = |unit| {
            let text = as_written(unit);
            !text.starts_with('*') && !text.starts_with('?')
        };
        let both_days_restricted = restricted(Unit::DayOfMonth) && restricted(Unit::DayOfWeek);
        if restricted(Unit::DayOfMonth) && !restricted(Unit::DayOfWeek) {
            never_runs(&written, &fields)?;
        }
        let schedules = if both_days_restricted {
            vec![
                compile(&fields, Some(Unit::DayOfWeek))?,
                compile(&fields, Some(Unit::DayOfMonth))?,
            ]
        } else {
            vec![compile(&fields, None)?]
        };
        Ok(CronSpec {
            text: text.to_string(),
            schedules: schedules.into_boxed_slice(),
            job,
        })
    }

    /// The first occurrence strictly after `after`, in wall-clock time in `zone`.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.occurrences_after(after, None, zone).next()
    }

    /// Every occurrence in `(after, up_to]`, in order, each instant once.
    pub fn occurrences(&self, after: DateTime<Utc>, up_to: DateTime<Utc>, zone: Tz) -> Occurrences {
        self.occurrences_after(after, Some(up_to), zone)
    }

    /// The latest occurrence at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = crate::localtime::to_local(at, zone);
        // A time in a fall-back overlap can run on its first pass, whose naive time is
        // later than `at`'s own naive time (when `at` is in the second pass).
        let start = local
            .checked_add_signed(Duration::hours(LONGEST_SHIFT))
            .unwrap_or(local)
            .and_utc();
        self.schedules
            .iter()
            .filter_map(|schedule| {
                let mut best: Option<DateTime<Utc>> = None;
                for naive in schedule.after_owned(start).rev() {
                    let naive = naive.naive_utc();
                    // Earlier naive times cannot run later than this one's last pass.
                    if best.is_some_and(|best| dst::latest(naive, zone) <= best) {
                        break;
                    }
                    let candidate = self.job.instants(naive, zone).filter(|i| *i <= at).max();
                    best = best.max(candidate);
                }
                best
            })
            .max()
    }

    fn occurrences_after(
        &self,
        after: DateTime<Utc>,
        up_to: Option<DateTime<Utc>>,
        zone: Tz,
    ) -> Occurrences {
        let start = naive_search_start(after, zone).and_utc();
        Occurrences {
            streams: self
                .schedules
                .iter()
                .map(|schedule| schedule.after_owned(start).peekable())
                .collect(),
            zone,
            job: self.job,
            found: BTreeSet::new(),
            last: after,
            up_to,
        }
    }
}

/// A naive time before which no naive time can run after `after`. Usually `after`'s
/// own local time; when a fall-back lies just ahead, the second pass of a repeated
/// time can run after `after` although its naive time is earlier, so the search starts
/// as far back as the clock will be set.
fn naive_search_start(after: DateTime<Utc>, zone: Tz) -> NaiveDateTime {
    let local = |at: DateTime<Utc>| crate::localtime::to_local(at, zone);
    let shift = Duration::hours(LONGEST_SHIFT);
    let behind = after
        .checked_add_signed(shift)
        .and_then(|ahead| local(ahead).checked_sub_signed(shift));
    let own = local(after);
    behind.map_or(own, |behind| behind.min(own))
}

/// Refuses days of month that no month in the expression has (`0 0 30 2 *`): such a
/// job never runs, and finding that out would take a walk to the crate's year 2100.
fn never_runs(
    written: &[syntax::Written],
    fields: &[(Unit, BTreeSet<u32>)],
) -> Result<(), CronError> {
    let values = |unit| fields.iter().find(|(u, _)| *u == unit).map(|(_, v)| v);
    let text = |unit| written.iter().find(|w| w.unit == unit);
    let (Some(days), Some(months), Some(day), Some(month)) = (
        values(Unit::DayOfMonth),
        values(Unit::Month),
        text(Unit::DayOfMonth),
        text(Unit::Month),
    ) else {
        return Ok(());
    };
    if field::some_day_exists(days, months) {
        return Ok(());
    }
    Err(CronError::new(
        day.at,
        format!(
            "day of month {} never comes in month {}, so this never runs",
            day.text, month.text
        ),
    ))
}

/// The cron crate's schedule for the expanded fields; `any` (one of the day fields)
/// is read as `*`, for one half of crontab's "either day" union.
fn compile(fields: &[(Unit, BTreeSet<u32>)], any: Option<Unit>) -> Result<Schedule, CronError> {
    let mut text: Vec<String> = Vec::with_capacity(7);
    if fields.len() == 5 {
        text.push("0".to_string());
    }
    for (unit, values) in fields {
        text.push(if Some(*unit) == any {
            "*".to_string()
        } else {
            field::render(*unit, values)
        });
    }
    // Every field was checked by `field::expand`; the crate refusing what is left
    // would be a bug here, and its message would be about text the operator never
    // wrote.
    text.join(" ")
        .parse::<Schedule>()
        .map_err(|_| CronError::new(0, "expression not understood"))
}

/// Occurrences of a [`CronSpec`] as real instants, strictly increasing.
pub struct Occurrences {
    /// Naive local occurrences of each schedule in the union, merged by time.
    streams: Vec<Peekable<OwnedScheduleIterator<Utc>>>,
    zone: Tz,
    job: Job,
    /// Instants found but not yet yielded. Naive order is not instant order: in a
    /// repeated hour the second pass of 01:30 comes after the first pass of 01:45. An
    /// instant waits here until no naive time still to come can run before it.
    found: BTreeSet<DateTime<Utc>>,
    /// The last instant yielded (or the search start): later ones only, each once.
    last: DateTime<Utc>,
    up_to: Option<DateTime<Utc>>,
}

impl Occurrences {
    /// The stream holding the earliest naive time still to come, and that time.
    fn next_naive(&mut self) -> Option<(usize, NaiveDateTime)> {
        self.streams
            .iter_mut()
            .enumerate()
            .filter_map(|(i, stream)| stream.peek().map(|naive| (naive.naive_utc(), i)))
            .min()
            .map(|(naive, i)| (i, naive))
    }
}

impl Iterator for Occurrences {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        loop {
            let coming = self.next_naive();
            let horizon = coming.map(|(_, naive)| dst::earliest(naive, self.zone));
            if let Some(&first) = self.found.first() {
                if horizon.is_none_or(|horizon| first < horizon) {
                    self.found.remove(&first);
                    self.last = first;
                    return Some(first);
                }
            }
            let ((stream, _), horizon) = coming.zip(horizon)?;
            if self.up_to.is_some_and(|end| horizon > end) {
                self.streams.clear();
                return None;
            }
            let naive = self.streams[stream].next()?.naive_utc();
            let (last, up_to) = (self.last, self.up_to);
            self.found.extend(
                self.job
                    .instants(naive, self.zone)
                    .filter(|at| *at > last && up_to.is_none_or(|end| *at <= end)),
            );
        }
    }
}

#[cfg(test)]
mod tests;
