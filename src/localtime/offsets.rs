//! A zone's offset from UTC, remembered by the hour.
//!
//! Every step asks for a member's local day, period keys and expiry dates, each a
//! search of the zone's transition table (a quarter of a microsecond apiece, several
//! times a step). Transitions are rare — no zone has two within an hour — so an hour
//! whose first and last second have the same offset has it throughout, and the answer
//! can be kept for the next instant in that hour.
//!
//! The memo is per thread: the answers are the zone data's, whoever asks, so it
//! changes no result and needs no lock.

use std::cell::RefCell;

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

const HOUR: i64 = 3600;

/// Hours remembered per thread and direction (a direct-mapped table: a member's own
/// zone, the rules' zone and a few hours of each stay put).
const SLOTS: usize = 64;

/// An hour of one zone with a single offset throughout.
#[derive(Clone, Copy)]
struct Slot {
    zone: Tz,
    /// Hours since the epoch: of UTC, or of local wall-clock time.
    hour: i64,
    /// Seconds east of UTC.
    offset: i32,
}

struct Memo {
    utc: [Option<Slot>; SLOTS],
    local: [Option<Slot>; SLOTS],
}

thread_local! {
    static MEMO: RefCell<Memo> = const {
        RefCell::new(Memo {
            utc: [None; SLOTS],
            local: [None; SLOTS],
        })
    };
}

fn slot_of(zone: Tz, hour: i64) -> usize {
    // Consecutive hours of one zone land in consecutive slots.
    (hour as u64).wrapping_add((zone as u64).wrapping_mul(0x9E37)) as usize % SLOTS
}

/// `at` on the wall clock of `zone`.
pub fn to_local(at: DateTime<Utc>, zone: Tz) -> NaiveDateTime {
    let offset = utc_offset(at, zone);
    let naive = at.naive_utc();
    naive
        .checked_add_signed(chrono::Duration::seconds(i64::from(offset)))
        .unwrap_or(naive)
}

/// Seconds east of UTC that `zone` is at the instant `at`.
pub fn utc_offset(at: DateTime<Utc>, zone: Tz) -> i32 {
    let hour = at.timestamp().div_euclid(HOUR);
    let index = slot_of(zone, hour);
    let known = MEMO.with(|memo| memo.borrow().utc[index]);
    if let Some(slot) = known.filter(|s| s.zone == zone && s.hour == hour) {
        return slot.offset;
    }
    let offset_at = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .map(|instant| offset_seconds(zone.offset_from_utc_datetime(&instant.naive_utc())))
    };
    let exact = offset_seconds(zone.offset_from_utc_datetime(&at.naive_utc()));
    let start = hour * HOUR;
    if offset_at(start) == Some(exact) && offset_at(start + HOUR - 1) == Some(exact) {
        MEMO.with(|memo| {
            memo.borrow_mut().utc[index] = Some(Slot {
                zone,
                hour,
                offset: exact,
            })
        });
    }
    exact
}

/// The instant the wall clock of `zone` reads `local`, when the hour it lies in has a
/// single offset throughout (no gap, no repeat, no change): then that instant is the
/// only one. `None` near a transition, where the caller decides.
pub fn single_instant(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    let hour = local.and_utc().timestamp().div_euclid(HOUR);
    let index = slot_of(zone, hour);
    let known = MEMO.with(|memo| memo.borrow().local[index]);
    let offset = match known.filter(|s| s.zone == zone && s.hour == hour) {
        Some(slot) => slot.offset,
        None => {
            let start = DateTime::from_timestamp(hour * HOUR, 0)?.naive_utc();
            let end = DateTime::from_timestamp(hour * HOUR + HOUR - 1, 0)?.naive_utc();
            let first = zone.offset_from_local_datetime(&start).single()?;
            let last = zone.offset_from_local_datetime(&end).single()?;
            let offset = offset_seconds(first);
            if offset != offset_seconds(last) {
                return None;
            }
            MEMO.with(|memo| memo.borrow_mut().local[index] = Some(Slot { zone, hour, offset }));
            offset
        }
    };
    local
        .checked_sub_signed(chrono::Duration::seconds(i64::from(offset)))
        .map(|utc| utc.and_utc())
}

fn offset_seconds(offset: impl Offset) -> i32 {
    offset.fix().local_minus_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::LocalResult;

    /// Zones with daylight saving north and south, a half-hour shift (Lord Howe), a
    /// negative one (Dublin), an odd offset (Kathmandu) and none at all.
    const ZONES: [Tz; 7] = [
        chrono_tz::America::New_York,
        chrono_tz::Australia::Sydney,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Europe::Dublin,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::Asia::Shanghai,
        Tz::UTC,
    ];

    /// Every 7 minutes 13 seconds (so every minute of the hour comes round) over
    /// years that hold transitions, zones interleaved so they evict each other.
    fn instants() -> impl Iterator<Item = DateTime<Utc>> {
        let from = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        (0..(2 * 366 * 24 * 60 / 7))
            .map(move |i| DateTime::from_timestamp(from + i * (7 * 60 + 13), 0).unwrap())
    }

    #[test]
    fn the_local_time_of_an_instant_is_chrono_tz_s() {
        for at in instants() {
            for zone in ZONES {
                assert_eq!(
                    to_local(at, zone),
                    at.with_timezone(&zone).naive_local(),
                    "{at} in {zone}"
                );
            }
        }
    }

    #[test]
    fn a_single_instant_is_chrono_tz_s_and_none_where_it_is_not_single() {
        for at in instants() {
            for zone in ZONES {
                let local = at.naive_utc();
                match (
                    zone.from_local_datetime(&local),
                    single_instant(local, zone),
                ) {
                    (LocalResult::Single(expected), Some(got)) => {
                        assert_eq!(got, expected.with_timezone(&Utc), "{local} in {zone}")
                    }
                    // Near a transition the caller asks chrono-tz itself.
                    (_, None) => {}
                    (expected, got) => {
                        panic!("{local} in {zone}: chrono-tz {expected:?}, memo {got:?}")
                    }
                }
            }
        }
    }

    #[test]
    fn an_instant_is_single_away_from_a_transition() {
        let local =
            NaiveDateTime::parse_from_str("2026-07-01 12:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert!(single_instant(local, chrono_tz::America::New_York).is_some());
        // 02:30 on the day clocks go forward does not exist in New York.
        let gap =
            NaiveDateTime::parse_from_str("2026-03-08 02:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(single_instant(gap, chrono_tz::America::New_York), None);
    }
}
