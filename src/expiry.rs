//! Points expiry (`settings.points.expire`): when points awarded at some instant stop
//! being spendable. The policy is pure calendar arithmetic in the member's zone; the
//! points themselves are tracked as [`lots::Lots`] on the member, and the engine
//! (`engine/expiry.rs`) expires them by a durable per-member timer.
//!
//! Months are calendar months, not 30 days: 12 months from 31 January is 31 January
//! the next year, one month from 31 January is the last day of February (28 or 29).
//! `at_end_of` then carries the due time to the end of that local day, week, month or
//! year — points valid "through the end of the month" expire at the first instant of
//! the next one.

pub mod lots;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use chrono_tz::Tz;

/// The longest validity, in months: ten years, as [`crate::duration::MAX`].
pub const MAX_MONTHS: u32 = 120;

/// The due of a local hour whose awards all share one (see [`PointsExpiry::due`]).
#[derive(Clone, Copy)]
struct HourDue {
    policy: PointsExpiry,
    zone: Tz,
    /// Local wall-clock hours since the epoch.
    hour: i64,
    due: DateTime<Utc>,
}

thread_local! {
    /// The last such hour.
    static LAST_HOUR: std::cell::Cell<Option<HourDue>> = const { std::cell::Cell::new(None) };
}

/// `settings.points.expire`: how long awarded points stay spendable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointsExpiry {
    pub after: Validity,
    /// Extends every lot to the end of the local period its validity ends in.
    pub at_end_of: Option<EndOf>,
}

/// `after:` — an exact duration (`365d`) or whole calendar months (`12 months`,
/// `1 year`), counted in the member's local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    Exactly(Duration),
    Months(u32),
}

/// `at_end_of:` — the local period whose end a lot's validity is rounded up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndOf {
    Day,
    /// ISO weeks: the end of Sunday.
    Week,
    Month,
    Year,
}

impl PointsExpiry {
    /// When points awarded at `awarded` to a member living in `zone` expire, in whole
    /// milliseconds (the precision of timers: a lot must be due when its timer pops).
    /// Always later than `awarded`; saturates at the end of time rather than
    /// overflowing (validity is bounded, so it never does for a real instant).
    pub fn due(&self, awarded: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let (Validity::Months(months), Some(_)) = (self.after, self.at_end_of) else {
            return self.computed_due(awarded, zone);
        };
        // Calendar months carried to the end of a period (`12 months`, `at_end_of:
        // month`) give every award of a local hour the same due, whenever the end of
        // validity's own hour reads once on the clock: then the end's day is its local
        // date's, the same for the whole hour (see `exact_due`). Awards come in runs,
        // so the last such hour is remembered (per thread: it is pure arithmetic).
        let local = crate::localtime::to_local(awarded, zone);
        let hour = local.and_utc().timestamp().div_euclid(3600);
        let known = LAST_HOUR
            .get()
            .filter(|last| last.policy == *self && last.zone == zone && last.hour == hour);
        if let Some(known) = known {
            return known.due;
        }
        let due = self.computed_due(awarded, zone);
        let whole_hour = local
            .checked_add_months(Months::new(months))
            .and_then(|end| crate::localtime::single_instant(end, zone))
            .is_some();
        if whole_hour {
            LAST_HOUR.set(Some(HourDue {
                policy: *self,
                zone,
                hour,
                due,
            }));
        }
        due
    }

    fn computed_due(&self, awarded: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let due = self.exact_due(awarded, zone);
        DateTime::from_timestamp_millis(due.timestamp_millis()).unwrap_or(due)
    }

    fn exact_due(&self, awarded: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let valid_until = match self.after {
            Validity::Exactly(d) => awarded.checked_add_signed(d),
            Validity::Months(n) => {
                let local = crate::localtime::to_local(awarded, zone);
                local
                    .checked_add_months(Months::new(n))
                    .map(|end| crate::campaign::local_to_utc(end, zone))
            }
        }
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
        match self.at_end_of {
            None => valid_until,
            Some(period) => {
                let day = crate::localtime::local_day(valid_until, zone);
                next_period_start(period, day)
                    .and_then(|start| start.and_hms_opt(0, 0, 0))
                    .map(|midnight| crate::campaign::local_to_utc(midnight, zone))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
        }
    }
}

/// The first local day of the period after the one `day` is in.
fn next_period_start(period: EndOf, day: NaiveDate) -> Option<NaiveDate> {
    match period {
        EndOf::Day => day.succ_opt(),
        EndOf::Week => {
            let to_monday = 7 - u64::from(day.weekday().num_days_from_monday());
            day.checked_add_days(chrono::Days::new(to_monday))
        }
        EndOf::Month => day
            .with_day(1)
            .and_then(|first| first.checked_add_months(Months::new(1))),
        EndOf::Year => NaiveDate::from_ymd_opt(day.year() + 1, 1, 1),
    }
}

/// Reads `after:` as written: `12 months`, `1 year`, `2 years`, or a duration
/// (`365d`). The message says what is accepted.
pub fn parse_validity(text: &str) -> Result<Validity, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let per = match unit.trim() {
        "month" | "months" => Some(1),
        "year" | "years" => Some(12),
        _ => None,
    };
    if let (Some(per), false) = (per, digits.is_empty()) {
        let months = digits
            .parse::<u32>()
            .ok()
            .and_then(|n| n.checked_mul(per))
            .filter(|&m| m <= MAX_MONTHS);
        return match months {
            Some(0) => Err(format!("expiry {text:?} must be longer than zero")),
            Some(m) => Ok(Validity::Months(m)),
            None => Err(format!(
                "expiry {text:?} is longer than the longest allowed, 120 months (10 years)"
            )),
        };
    }
    crate::duration::parse(trimmed).map(Validity::Exactly).map_err(|e| {
        format!("{e}; points expiry may also be written in calendar months or years (\"12 months\", \"1 year\")")
    })
}
