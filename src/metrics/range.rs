//! The days a report covers and how they are grouped: `from`, `to` and `by` as
//! `GET /v1/report` and `rally report` take them, checked once.

use chrono::{Datelike, Duration, NaiveDate};

use super::delta::{week_key, week_start};

/// Days a report covers when `from` is not given: the last 30, ending at `to`.
pub const DEFAULT_DAYS: i64 = 30;

/// What a period of a report is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Day,
    Week,
    Month,
}

impl Unit {
    pub fn parse(text: &str) -> Result<Unit, RangeError> {
        match text {
            "day" => Ok(Unit::Day),
            "week" => Ok(Unit::Week),
            "month" => Ok(Unit::Month),
            other => Err(RangeError::By(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
        }
    }
}

/// A report's parameters, as given, wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("from: {0:?} is not a day (YYYY-MM-DD)")]
    From(String),
    #[error("to: {0:?} is not a day (YYYY-MM-DD)")]
    To(String),
    #[error("by: {0:?} is not day, week or month")]
    By(String),
    #[error("from: {from} is after to: {to}")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("from: a report covers at most {max} days ({from} to {to} is {days})")]
    TooLong {
        from: NaiveDate,
        to: NaiveDate,
        days: i64,
        max: i64,
    },
}

/// The most days one report covers: ten years of days is plenty, and bounds the work
/// a request can ask for.
pub const MAX_DAYS: i64 = 3660;

/// The days a report covers, both ends included, and how they are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: Unit,
}

impl Range {
    /// From the parameters as given; `today` (Rally's clock, in `settings.timezone`)
    /// fills what is missing: the 30 days ending today, by day.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        by: Option<&str>,
        today: NaiveDate,
    ) -> Result<Range, RangeError> {
        let day = |text: &str| text.parse::<NaiveDate>();
        let to = match to {
            Some(text) => day(text).map_err(|_| RangeError::To(text.to_string()))?,
            None => today,
        };
        let from = match from {
            Some(text) => day(text).map_err(|_| RangeError::From(text.to_string()))?,
            None => to - Duration::days(DEFAULT_DAYS - 1),
        };
        let by = by.map_or(Ok(Unit::Day), Unit::parse)?;
        if from > to {
            return Err(RangeError::Reversed { from, to });
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_DAYS {
            return Err(RangeError::TooLong {
                from,
                to,
                days,
                max: MAX_DAYS,
            });
        }
        Ok(Range { from, to, by })
    }

    /// The periods in order: each one's name and its days within the range.
    pub fn periods(&self) -> Vec<(String, NaiveDate, NaiveDate)> {
        let mut periods = Vec::new();
        let mut start = self.from;
        while start <= self.to {
            let (name, end) = match self.by {
                Unit::Day => (start.to_string(), start),
                Unit::Week => (week_key(start), week_start(start) + Duration::days(6)),
                Unit::Month => (
                    format!("{:04}-{:02}", start.year(), start.month()),
                    month_end(start),
                ),
            };
            let end = end.min(self.to);
            periods.push((name, start, end));
            match end.succ_opt() {
                Some(next) => start = next,
                None => break,
            }
        }
        periods
    }
}

fn month_end(day: NaiveDate) -> NaiveDate {
    let (year, month) = match day.month() {
        12 => (day.year() + 1, 1),
        m => (day.year(), m + 1),
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|first| first.pred_opt())
        .unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_missing_range_is_the_thirty_days_ending_today_by_day() {
        let range = Range::parse(None, None, None, d("2026-11-30")).unwrap();
        assert_eq!(
            (range.from, range.to, range.by),
            (d("2026-11-01"), d("2026-11-30"), Unit::Day)
        );
        assert_eq!(range.periods().len(), 30);
    }

    #[test]
    fn weeks_are_iso_weeks_cut_at_the_ends_of_the_range() {
        let range = Range::parse(
            Some("2026-11-01"),
            Some("2026-11-10"),
            Some("week"),
            d("2026-12-01"),
        )
        .unwrap();
        let periods = range.periods();
        assert_eq!(
            periods,
            vec![
                ("2026-W44".to_string(), d("2026-11-01"), d("2026-11-01")),
                ("2026-W45".to_string(), d("2026-11-02"), d("2026-11-08")),
                ("2026-W46".to_string(), d("2026-11-09"), d("2026-11-10")),
            ]
        );
    }

    #[test]
    fn months_run_to_their_last_day() {
        let range = Range::parse(
            Some("2026-11-15"),
            Some("2027-01-02"),
            Some("month"),
            d("2027-01-02"),
        )
        .unwrap();
        let names: Vec<String> = range.periods().into_iter().map(|p| p.0).collect();
        assert_eq!(names, ["2026-11", "2026-12", "2027-01"]);
        assert_eq!(range.periods()[1].2, d("2026-12-31"));
    }

    #[test]
    fn bad_parameters_name_the_parameter() {
        let today = d("2026-11-30");
        let err = |f, t, b| Range::parse(f, t, b, today).unwrap_err().to_string();
        assert!(err(Some("yesterday"), None, None).starts_with("from:"));
        assert!(err(None, Some("2026-13-01"), None).starts_with("to:"));
        assert!(err(None, None, Some("year")).starts_with("by:"));
        assert!(err(Some("2026-12-01"), Some("2026-11-01"), None).starts_with("from:"));
    }
}
