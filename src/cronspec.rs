//! Cron expressions as operators write them (SPEC §2.2): crontab's 5 fields (minute
//! first, weekday 0 or 7 = Sunday, 1 = Monday) or 6–7 fields with seconds first.
//! The `cron` crate wants 6–7 fields and numbers weekdays 1 = Sunday, so expressions
//! are translated here, once, at load.
//!
//! Occurrences are wall-clock times in a zone. The crate runs on naive local time (the
//! wall clock read as if it were UTC) and each naive occurrence is mapped to a real
//! instant by [`crate::campaign::local_to_utc`]: a time skipped by a spring-forward gap
//! fires when the gap ends, a time repeated by a fall-back fires once, the first time.
//! Several naive times can land on one instant (all of a gap's); they fire once.

mod weekday;

use std::iter::Peekable;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use cron::{OwnedScheduleIterator, Schedule};

use crate::campaign::local_to_utc;

/// A parsed cron expression.
#[derive(Clone, Debug)]
pub struct CronSpec {
    /// As written in the rule file.
    pub text: String,
    /// The translated expression as the cron crate reads it. When both the day-of-month
    /// and the weekday are restricted the crate requires both to match, where crontab
    /// (and so Rally) accepts either: use [`CronSpec::next_after`], not this directly.
    pub schedule: cron::Schedule,
    /// crontab's "either day field" reading, as two schedules whose union is the
    /// expression; `None` when at most one of the day fields is restricted.
    either_day: Option<Box<[Schedule; 2]>>,
}

/// Hours by which a fall-back can repeat local time (no zone's clocks go back this far
/// in one change): how far past an instant's own local time an earlier-firing repeated
/// time can lie.
const LONGEST_SHIFT: i64 = 3;

impl CronSpec {
    /// Parses a 5-field crontab expression or a 6–7 field one with seconds (and the
    /// crate's `@daily`-style shorthands).
    pub fn parse(text: &str) -> Result<CronSpec, String> {
        let written: Vec<&str> = text.split_whitespace().collect();
        if let [shorthand] = written.as_slice() {
            if shorthand.starts_with('@') {
                return Ok(CronSpec {
                    text: text.to_string(),
                    schedule: compile(text, &[shorthand.to_string()])?,
                    either_day: None,
                });
            }
        }
        let mut fields: Vec<String> = match written.len() {
            5 => std::iter::once("0")
                .chain(written)
                .map(String::from)
                .collect(),
            6 | 7 => written.into_iter().map(String::from).collect(),
            n => {
                return Err(format!(
                    "cron expression {text:?} has {n} fields; write 5 (minute hour day month \
                     weekday) or 6–7 with seconds first"
                ))
            }
        };
        // crontab (vixie) treats a day field starting with `*` (as in `*/2`) as
        // unrestricted: judged on the fields as written, before translation.
        let restricted = |field: &str| !field.starts_with('*') && !field.starts_with('?');
        let both_days_restricted = restricted(&fields[3]) && restricted(&fields[5]);
        fields[5] =
            weekday::translate(&fields[5]).map_err(|e| format!("cron expression {text:?}: {e}"))?;
        let schedule = compile(text, &fields)?;
        let either_day = if both_days_restricted {
            let mut by_month_day = fields.clone();
            by_month_day[5] = "*".to_string();
            let mut by_weekday = fields.clone();
            by_weekday[3] = "*".to_string();
            Some(Box::new([
                compile(text, &by_month_day)?,
                compile(text, &by_weekday)?,
            ]))
        } else {
            None
        };
        Ok(CronSpec {
            text: text.to_string(),
            schedule,
            either_day,
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
        let local = at.with_timezone(&zone).naive_local();
        // A time written in a fall-back overlap fires on its first pass, whose naive time
        // can be later than `at`'s own naive time (when `at` is in the second pass).
        let start = local
            .checked_add_signed(Duration::hours(LONGEST_SHIFT))
            .unwrap_or(local)
            .and_utc();
        self.naive_schedules()
            .iter()
            .filter_map(|schedule| {
                schedule
                    .after_owned(start)
                    .rev()
                    .map(|naive| local_to_utc(naive.naive_utc(), zone))
                    .find(|instant| *instant <= at)
            })
            .max()
    }

    fn occurrences_after(
        &self,
        after: DateTime<Utc>,
        up_to: Option<DateTime<Utc>>,
        zone: Tz,
    ) -> Occurrences {
        // Naive times at or before `after`'s own map to instants at or before `after`
        // (the mapping never runs backwards), so the naive search can start there.
        let start = after.with_timezone(&zone).naive_local().and_utc();
        Occurrences {
            streams: self
                .naive_schedules()
                .iter()
                .map(|schedule| schedule.after_owned(start).peekable())
                .collect(),
            zone,
            last: after,
            up_to,
        }
    }

    fn naive_schedules(&self) -> &[Schedule] {
        match &self.either_day {
            Some(both) => both.as_slice(),
            None => std::slice::from_ref(&self.schedule),
        }
    }
}

fn compile(text: &str, fields: &[String]) -> Result<Schedule, String> {
    fields
        .join(" ")
        .parse::<Schedule>()
        .map_err(|e| format!("cron expression {text:?}: {e}"))
}

/// Occurrences of a [`CronSpec`] as real instants, strictly increasing.
pub struct Occurrences {
    /// Naive local occurrences of each schedule in the union, merged by time.
    streams: Vec<Peekable<OwnedScheduleIterator<Utc>>>,
    zone: Tz,
    /// The last instant yielded (or the search start): later ones only, each once.
    last: DateTime<Utc>,
    up_to: Option<DateTime<Utc>>,
}

impl Iterator for Occurrences {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        loop {
            let earliest = self
                .streams
                .iter_mut()
                .enumerate()
                .filter_map(|(i, stream)| stream.peek().map(|naive| (*naive, i)))
                .min()?
                .1;
            let naive = self.streams[earliest].next()?;
            let at = local_to_utc(naive.naive_utc(), self.zone);
            if at <= self.last {
                continue;
            }
            if self.up_to.is_some_and(|end| at > end) {
                self.streams.clear();
                return None;
            }
            self.last = at;
            return Some(at);
        }
    }
}

#[cfg(test)]
mod tests;
