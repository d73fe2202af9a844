//! How a cron job meets a daylight-saving change, as Vixie cron decides it (SPEC §2.7).
//!
//! A fixed-time job (minute and hour plain numbers, lists or ranges: `30 2 * * *`) is
//! a promise to run at that time of day: a time skipped by a spring-forward gap runs
//! when the gap ends, a time repeated by a fall-back runs once, the first time. A job
//! whose minute or hour is a wildcard or a step (`30 * * * *`, `*/15 1 * * *`) is a
//! rhythm: it runs at the local times that exist — none in a gap — and again when an
//! hour is repeated, as the clock on the wall shows it.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::campaign::local_to_utc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    FixedTime,
    Wildcard,
}

impl Job {
    /// Vixie cron's test is "the field starts with `*`"; a step anywhere (`0-59/15`)
    /// counts too, since it says "every n" as surely as `*/15` does.
    pub fn of(minute: &str, hour: &str) -> Job {
        let rhythm = |field: &str| field.starts_with('*') || field.contains('/');
        if rhythm(minute) || rhythm(hour) {
            Job::Wildcard
        } else {
            Job::FixedTime
        }
    }

    /// The instants at which the job runs for the local time `local`, earliest first:
    /// none, one, or (a wildcard job in a repeated hour) two.
    pub fn instants(self, local: NaiveDateTime, zone: Tz) -> impl Iterator<Item = DateTime<Utc>> {
        let utc = |at: DateTime<Tz>| at.with_timezone(&Utc);
        let pair = match (self, zone.from_local_datetime(&local)) {
            (_, LocalResult::Single(at)) => [Some(utc(at)), None],
            (Job::FixedTime, _) => [Some(local_to_utc(local, zone)), None],
            (Job::Wildcard, LocalResult::Ambiguous(a, b)) => {
                [Some(utc(a.min(b))), Some(utc(a.max(b)))]
            }
            (Job::Wildcard, LocalResult::None) => [None, None],
        };
        pair.into_iter().flatten()
    }
}

/// No instant of `local`, nor of any later local time, comes before this: the first
/// pass of a repeated time, the end of a gap. It never runs backwards as `local` grows.
pub fn earliest(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    local_to_utc(local, zone)
}

/// No instant of `local`, nor of any earlier local time, comes after this: the second
/// pass of a repeated time, the end of a gap. It never runs backwards either.
pub fn latest(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.max(b).with_timezone(&Utc),
        LocalResult::None => local_to_utc(local, zone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_fixed_time_only_when_minute_and_hour_are_both_fixed() {
        assert_eq!(Job::of("30", "2"), Job::FixedTime);
        assert_eq!(Job::of("0,30", "1-3"), Job::FixedTime);
        assert_eq!(Job::of("30", "*"), Job::Wildcard);
        assert_eq!(Job::of("*/15", "1"), Job::Wildcard);
        assert_eq!(Job::of("0", "*/2"), Job::Wildcard);
        assert_eq!(Job::of("0-59/15", "1"), Job::Wildcard);
    }
}
