//! Distinct members present (active, buying, buying again) over any range of days, and
//! members absent since a day, exactly, from counts kept per day — never a member scan.
//!
//! Each member's days present form a sequence `d1 < d2 < … < dn`. Kept: where each
//! sequence starts (`first`), each step from one day present to the next (`closed`),
//! and where each ends so far (`open`). A member's latest day present as of day `E` is
//! `L` exactly when their sequence holds the step `L → A` with `A > E`, or ends at `L`.
//! So "absent since `L` as of `E`" sums `open[..=L]` and `closed[..=L][E+1..]`, and
//! "present in `[F, T]`" is "known by `T`" less "absent since `F - 1` as of `T`".
//! The cost of a query is the number of distinct `(L, A)` steps, not of members.

use std::collections::BTreeMap;
use std::ops::Bound;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::digits::{push_padded, push_u64};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Presence {
    /// Members by the first day they were present.
    first: BTreeMap<NaiveDate, u64>,
    /// Members by their latest day present: the step after it has not happened yet.
    open: BTreeMap<NaiveDate, u64>,
    /// Steps from a day present to the next one: by the earlier day, then the later.
    closed: BTreeMap<NaiveDate, BTreeMap<NaiveDate, u64>>,
}

/// What [`Presence`] holds for one day, stored as one row: a step touches the rows of
/// the two days it links, never the whole history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PresenceDay {
    pub first: u64,
    pub open: u64,
    /// Steps from this day to the next day present, by that day.
    pub closed: BTreeMap<NaiveDate, u64>,
}

impl Presence {
    /// The row of `day`.
    pub fn day(&self, day: NaiveDate) -> PresenceDay {
        PresenceDay {
            first: self.first.get(&day).copied().unwrap_or(0),
            open: self.open.get(&day).copied().unwrap_or(0),
            closed: self.closed.get(&day).cloned().unwrap_or_default(),
        }
    }

    /// The row of `day` as JSON, byte for byte as `serde_json` writes [`Presence::day`]'s
    /// row. A member present again changes the row of the day they were last present,
    /// whose `closed` map holds a date for every later day someone came back on: most
    /// commits rewrite dozens of such rows, and writing their dates through the
    /// formatter (and copying the map first) grew to the largest cost of a long replay.
    pub fn encode_day(&self, day: NaiveDate) -> Vec<u8> {
        let closed = self.closed.get(&day);
        let plain_years = closed.is_none_or(|next| next.keys().all(|d| four_digit_year(*d)));
        if !plain_years {
            // Years the fast path does not write as chrono does: serde's own encoding.
            return serde_json::to_vec(&self.day(day)).unwrap_or_default();
        }
        let mut out = Vec::with_capacity(40 + closed.map_or(0, |next| next.len() * 16));
        out.extend_from_slice(b"{\"first\":");
        push_u64(&mut out, self.first.get(&day).copied().unwrap_or(0));
        out.extend_from_slice(b",\"open\":");
        push_u64(&mut out, self.open.get(&day).copied().unwrap_or(0));
        out.extend_from_slice(b",\"closed\":{");
        for (n, (next, count)) in closed.into_iter().flatten().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.push(b'"');
            push_date(&mut out, *next);
            out.extend_from_slice(b"\":");
            push_u64(&mut out, *count);
        }
        out.extend_from_slice(b"}}");
        out
    }

    /// Puts back the row of `day`, as read.
    pub fn load_day(&mut self, day: NaiveDate, row: PresenceDay) {
        if row.first > 0 {
            self.first.insert(day, row.first);
        }
        if row.open > 0 {
            self.open.insert(day, row.open);
        }
        if !row.closed.is_empty() {
            self.closed.insert(day, row.closed);
        }
    }

    /// A member is present on `day`, last present on `previous` (`None`: never before).
    /// Returns whether this is news: `false` for a day already counted (or an earlier
    /// one, which cannot happen on the monotone step clock but must not corrupt counts).
    pub fn present(&mut self, previous: Option<NaiveDate>, day: NaiveDate) -> bool {
        match previous {
            Some(last) if day <= last => return false,
            Some(last) => {
                if let Some(count) = self.open.get_mut(&last) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.open.remove(&last);
                    }
                }
                *self.closed.entry(last).or_default().entry(day).or_default() += 1;
            }
            None => *self.first.entry(day).or_default() += 1,
        }
        *self.open.entry(day).or_default() += 1;
        true
    }

    /// Members present at least once on or before `end`.
    pub fn known(&self, end: NaiveDate) -> u64 {
        self.first.range(..=end).map(|(_, n)| n).sum()
    }

    /// Members known by `end` whose latest day present on or before `end` is on or
    /// before `last`: absent every day after `last`, through `end`.
    pub fn absent_since(&self, last: NaiveDate, end: NaiveDate) -> u64 {
        let still_open: u64 = self.open.range(..=last).map(|(_, n)| n).sum();
        let ended_after: u64 = self
            .closed
            .range(..=last)
            .map(|(_, next)| {
                next.range((Bound::Excluded(end), Bound::Unbounded))
                    .map(|(_, n)| n)
                    .sum::<u64>()
            })
            .sum();
        still_open + ended_after
    }

    /// Distinct members present at least once in `[from, to]`.
    pub fn distinct(&self, from: NaiveDate, to: NaiveDate) -> u64 {
        if to < from {
            return 0;
        }
        let before = match from.pred_opt() {
            Some(day) => self.absent_since(day, to),
            None => 0,
        };
        self.known(to).saturating_sub(before)
    }
}

fn four_digit_year(day: NaiveDate) -> bool {
    (1000..=9999).contains(&day.year())
}

/// `YYYY-MM-DD`, as chrono writes a day of a four-digit year.
fn push_date(out: &mut Vec<u8>, day: NaiveDate) {
    push_padded(out, day.year() as u32, 4);
    out.push(b'-');
    push_padded(out, day.month(), 2);
    out.push(b'-');
    push_padded(out, day.day(), 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    /// Brute force over each member's days present, to compare with.
    fn by_hand(members: &[Vec<u32>], from: u32, to: u32) -> u64 {
        members
            .iter()
            .filter(|days| days.iter().any(|&x| from <= x && x <= to))
            .count() as u64
    }

    fn built(members: &[Vec<u32>]) -> Presence {
        let mut presence = Presence::default();
        for days in members {
            let mut previous = None;
            for &day in days {
                presence.present(previous, d(day));
                previous = Some(d(day));
            }
        }
        presence
    }

    #[test]
    fn distinct_members_match_a_count_by_hand_for_every_range() {
        let members = vec![
            vec![1, 2, 9],
            vec![3],
            vec![2, 20, 21],
            vec![15, 16, 17, 30],
        ];
        let presence = built(&members);
        for from in 1..=30 {
            for to in from..=30 {
                assert_eq!(
                    presence.distinct(d(from), d(to)),
                    by_hand(&members, from, to),
                    "{from}..={to}"
                );
            }
        }
    }

    #[test]
    fn absent_since_counts_members_silent_after_a_day_as_of_a_later_one() {
        let presence = built(&[vec![1, 9], vec![3], vec![2, 20]]);
        // As of the 10th: latest days 9, 3, 2. Absent since the 5th: the last two.
        assert_eq!(presence.absent_since(d(5), d(10)), 2);
        // As of the 25th: 9, 3, 20.
        assert_eq!(presence.absent_since(d(5), d(25)), 1);
        assert_eq!(presence.absent_since(d(9), d(25)), 2);
    }

    #[test]
    fn the_rows_of_every_day_give_back_the_whole() {
        let presence = built(&[vec![1, 9], vec![3], vec![2, 20]]);
        let mut again = Presence::default();
        for day in 1..=20 {
            again.load_day(d(day), presence.day(d(day)));
        }
        assert_eq!(again, presence);
    }

    /// The fast encoding is serde's, byte for byte: for every day of members' random
    /// days present, counts past one digit, and years the fast path leaves to serde.
    #[test]
    fn a_days_row_encodes_as_serde_writes_it() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(7);
        let start = NaiveDate::from_ymd_opt(2026, 10, 20).unwrap();
        let mut presence = Presence::default();
        for _ in 0..2_000 {
            let mut previous = None;
            for _ in 0..rng.gen_range(1..12) {
                let day = previous.unwrap_or(start) + chrono::Duration::days(rng.gen_range(0..9));
                presence.present(previous, day);
                previous = Some(day);
            }
        }
        let far = [
            NaiveDate::from_ymd_opt(999, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(-5, 3, 1).unwrap(),
        ];
        presence.present(None, far[0]);
        presence.present(Some(far[0]), far[1]);
        presence.present(Some(far[2]), start);
        let days = (0..120)
            .map(|n| start + chrono::Duration::days(n))
            .chain(far);
        for day in days {
            let serde = serde_json::to_vec(&presence.day(day)).unwrap();
            let fast = presence.encode_day(day);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(serde).unwrap(),
                "{day}"
            );
        }
        assert!(presence
            .closed
            .values()
            .any(|next| next.values().any(|n| *n >= 10)));
    }

    #[test]
    fn a_second_presence_on_the_same_day_is_not_news() {
        let mut presence = Presence::default();
        assert!(presence.present(None, d(1)));
        assert!(!presence.present(Some(d(1)), d(1)));
        assert_eq!(presence.distinct(d(1), d(1)), 1);
    }
}
