//! The one place that turns store keys into bytes and back.
//!
//! sled orders keys by their bytes, so every encoding here preserves the order of the
//! values it encodes:
//! - `u64` is big-endian;
//! - `i64` is big-endian with the sign bit flipped, so negative times sort before
//!   positive ones;
//! - a string inside a composite key has each `0x00` escaped as `0x00 0xFF` and ends
//!   with the separator `0x00 0x01`. Escaping (rather than rejecting) keeps every id
//!   storable, and because the separator sorts below every escaped or plain byte, a
//!   string sorts before any longer string it is a prefix of, and `m-1`'s rows can
//!   never be mistaken for `m-10`'s.
//!
//! A key made of a single string (members, seen events, meta) is the string's UTF-8
//! bytes as they are: nothing follows it, so it needs no separator.

use std::borrow::Cow;

use thiserror::Error;

use crate::member::Name;

/// Ends a string component inside a composite key.
const SEPARATOR: [u8; 2] = [0x00, 0x01];
const SEPARATOR_END: u8 = SEPARATOR[1];
/// Follows a `0x00` that belongs to the string itself.
const ESCAPED_NUL: u8 = 0xFF;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("key ends early: expected {expected}")]
    Truncated { expected: &'static str },
    #[error("key has an invalid escape byte {byte:#04x} after 0x00")]
    BadEscape { byte: u8 },
    #[error("key text is not UTF-8")]
    NotUtf8,
    #[error("key has {count} unexpected trailing bytes")]
    Trailing { count: usize },
}

/// Where a due timer lives in the timer index: ordered by due time, then kind, then id.
/// The derived order is the order of the encoded keys (tested below).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    /// Milliseconds since the Unix epoch, UTC.
    pub due: i64,
    /// What kind of timer (`inactive`, `phase`, `schedule`, `sla`, ...): the clock's
    /// dispatch key.
    pub kind: Name,
    /// Which one of its kind (a member id, a rule id, a ticket id, ...). Both kept
    /// inline when short ([`Name`]): most steps arm or pop a timer.
    pub id: Name,
}

impl TimerKey {
    pub fn new(due: i64, kind: impl Into<Name>, id: impl Into<Name>) -> Self {
        TimerKey {
            due,
            kind: kind.into(),
            id: id.into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.kind.len() + self.id.len() + 4);
        out.extend_from_slice(&i64_key(self.due));
        push_str(&mut out, &self.kind);
        push_str(&mut out, &self.id);
        out
    }

    pub fn decode(key: &[u8]) -> Result<Self, KeyError> {
        let mut rest = key;
        let due = take_i64(&mut rest)?;
        let kind = Name::from(take_text(&mut rest)?.as_ref());
        let id = Name::from(take_text(&mut rest)?.as_ref());
        finish(rest)?;
        Ok(TimerKey { due, kind, id })
    }
}

/// The first 8 bytes of every timer key due at `due`: timers due at or before `t` are
/// exactly the keys below `due_prefix(t + 1)`.
pub fn due_prefix(due: i64) -> [u8; 8] {
    i64_key(due)
}

pub fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub fn decode_u64(key: &[u8]) -> Result<u64, KeyError> {
    let mut rest = key;
    let n = take_u64(&mut rest)?;
    finish(rest)?;
    Ok(n)
}

pub fn i64_key(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn decode_i64(key: &[u8]) -> Result<i64, KeyError> {
    let mut rest = key;
    let n = take_i64(&mut rest)?;
    finish(rest)?;
    Ok(n)
}

/// A member row, a seen event id, a meta name: the string's bytes.
pub fn text_key(text: &str) -> &[u8] {
    text.as_bytes()
}

pub fn decode_text(key: &[u8]) -> Result<String, KeyError> {
    String::from_utf8(key.to_vec()).map_err(|_| KeyError::NotUtf8)
}

/// A `seen_by_day` row: the day (days since the Unix epoch, UTC; before 1970 is day
/// 0), then the event id as it is, so a day's rows are contiguous and the days in order.
pub fn day_id(day: u32, id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + id.len());
    out.extend_from_slice(&day.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out
}

/// Every `seen_by_day` row of a day before `day` sorts below this.
pub fn day_prefix(day: u32) -> [u8; 4] {
    day.to_be_bytes()
}

pub fn decode_day_id(key: &[u8]) -> Result<(u32, String), KeyError> {
    let (day, id) = key.split_first_chunk::<4>().ok_or(KeyError::Truncated {
        expected: "a 4-byte day",
    })?;
    Ok((u32::from_be_bytes(*day), decode_text(id)?))
}

/// A history row (or an `outbox_by_member` row): the member, then a sequence number,
/// so one member's rows are contiguous and in the order they were written.
pub fn member_seq(member: &str, seq: u64) -> Vec<u8> {
    let mut out = member_prefix(member);
    out.extend_from_slice(&u64_key(seq));
    out
}

/// Every history row of `member` starts with this, and no other member's does.
pub fn member_prefix(member: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(member.len() + 10);
    push_str(&mut out, member);
    out
}

pub fn decode_member_seq(key: &[u8]) -> Result<(String, u64), KeyError> {
    let mut rest = key;
    let member = take_str(&mut rest)?;
    let seq = take_u64(&mut rest)?;
    finish(rest)?;
    Ok((member, seq))
}

/// A leaderboard row: board, period, then score (highest first), then when the member
/// reached it (earliest first), then member id. One board's period is one contiguous
/// run of keys in ranking order, so its first places are its first rows. Scores are
/// kept to [`RANK_PLACES`] decimal places in the key (what the rounding of points
/// keeps too); the row's removal uses the same rounding, so it always finds the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankKey {
    pub board: String,
    pub period: String,
    pub score: crate::money::Decimal,
    /// Unix millis.
    pub reached: i64,
    pub member: String,
}

/// Decimal places of a score in a [`RankKey`].
pub const RANK_PLACES: u32 = 4;

impl RankKey {
    pub fn encode(&self) -> Vec<u8> {
        RankKey::encode_parts(
            &self.board,
            &self.period,
            self.score,
            self.reached,
            &self.member,
        )
    }

    /// [`RankKey::encode`] of the key with these fields, without building it: a step
    /// that moves a member on a board writes two keys, and owning their names first
    /// cost six copies.
    pub fn encode_parts(
        board: &str,
        period: &str,
        score: crate::money::Decimal,
        reached: i64,
        member: &str,
    ) -> Vec<u8> {
        let mut out = rank_prefix(board, period);
        out.reserve(16 + 8 + member.len() + 2);
        // The score in units of 10^-RANK_PLACES: a decimal's 96-bit mantissa times at
        // most 10^4 fits an i128 whatever its scale.
        let score = score.round_dp(RANK_PLACES);
        let units = score.mantissa() * 10_i128.pow(RANK_PLACES - score.scale());
        // Sign bit flipped: ascending; every bit inverted: descending.
        let ascending = (units as u128) ^ (1 << 127);
        out.extend_from_slice(&(!ascending).to_be_bytes());
        out.extend_from_slice(&i64_key(reached));
        push_str(&mut out, member);
        out
    }

    pub fn decode(key: &[u8]) -> Result<Self, KeyError> {
        let mut rest = key;
        let board = take_str(&mut rest)?;
        let period = take_str(&mut rest)?;
        let (head, tail) = rest.split_first_chunk::<16>().ok_or(KeyError::Truncated {
            expected: "16-byte score",
        })?;
        rest = tail;
        let units = (!u128::from_be_bytes(*head) ^ (1 << 127)) as i128;
        let score = crate::money::Decimal::try_from_i128_with_scale(units, RANK_PLACES)
            .map_err(|_| KeyError::Truncated {
                expected: "a score within a decimal's range",
            })?
            .normalize();
        let reached = take_i64(&mut rest)?;
        let member = take_str(&mut rest)?;
        finish(rest)?;
        Ok(RankKey {
            board,
            period,
            score,
            reached,
            member,
        })
    }
}

/// Every row of one period of one board starts with this, and no other's does.
pub fn rank_prefix(board: &str, period: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(board.len() + period.len() + 4 + 24);
    push_str(&mut out, board);
    push_str(&mut out, period);
    out
}

/// Every row of one board starts with this, and no other board's does.
pub fn board_prefix(board: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(board.len() + 2);
    push_str(&mut out, board);
    out
}

/// The smallest key above every key that starts with `prefix` (a string component's
/// end, as [`rank_prefix`] and [`board_prefix`] give): the end of a prefix's run.
pub fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    if let Some(last) = out.last_mut() {
        // The separator's second byte (0x01) is the smallest after 0x00: one above it
        // is above every continuation of the prefix and below the next string.
        *last = SEPARATOR_END + 1;
    }
    out
}

/// A key as a person reads it, for error messages: decoded when it has the shape the
/// tree expects, escaped bytes otherwise.
pub fn describe(tree: &str, key: &[u8]) -> String {
    let decoded = match tree {
        "members" | "seen" | "meta" => decode_text(key).ok(),
        "history" | "outbox_by_member" => decode_member_seq(key)
            .ok()
            .map(|(member, seq)| format!("{member}#{seq}")),
        "timers" => TimerKey::decode(key)
            .ok()
            .map(|t| format!("{}/{}/{}", t.due, t.kind, t.id)),
        "outbox" | "tickets" => decode_u64(key).ok().map(|n| n.to_string()),
        "seen_by_day" => decode_day_id(key)
            .ok()
            .map(|(day, id)| format!("day {day}/{id}")),
        "leaderboards" => RankKey::decode(key).ok().map(|r| {
            format!(
                "{}/{}/{}/{}/{}",
                r.board, r.period, r.score, r.reached, r.member
            )
        }),
        _ => None,
    };
    decoded.unwrap_or_else(|| key.escape_ascii().to_string())
}

fn push_str(out: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        out.push(byte);
        if byte == 0x00 {
            out.push(ESCAPED_NUL);
        }
    }
    out.extend_from_slice(&SEPARATOR);
}

fn take_str(rest: &mut &[u8]) -> Result<String, KeyError> {
    take_text(rest).map(Cow::into_owned)
}

/// The text up to the next separator, unescaped: borrowed from the key when it holds
/// no escaped NUL (ids almost never do), so a caller that keeps it inline copies
/// nothing to the heap.
fn take_text<'k>(rest: &mut &'k [u8]) -> Result<Cow<'k, str>, KeyError> {
    let bytes = *rest;
    // The text so far, once an escape made it differ from the key's bytes.
    let mut unescaped: Option<Vec<u8>> = None;
    let mut start = 0;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte != 0x00 {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(&ESCAPED_NUL) => {
                let text = unescaped.get_or_insert_with(Vec::new);
                text.extend_from_slice(&bytes[start..i]);
                text.push(0x00);
                i += 2;
                start = i;
            }
            Some(&SEPARATOR_END) => {
                *rest = &bytes[i + 2..];
                return match unescaped {
                    None => std::str::from_utf8(&bytes[..i])
                        .map(Cow::Borrowed)
                        .map_err(|_| KeyError::NotUtf8),
                    Some(mut text) => {
                        text.extend_from_slice(&bytes[start..i]);
                        String::from_utf8(text)
                            .map(Cow::Owned)
                            .map_err(|_| KeyError::NotUtf8)
                    }
                };
            }
            Some(&byte) => return Err(KeyError::BadEscape { byte }),
            None => break,
        }
    }
    Err(KeyError::Truncated { expected: "text" })
}

fn take_u64(rest: &mut &[u8]) -> Result<u64, KeyError> {
    let (head, tail) = rest.split_first_chunk::<8>().ok_or(KeyError::Truncated {
        expected: "8-byte number",
    })?;
    *rest = tail;
    Ok(u64::from_be_bytes(*head))
}

fn take_i64(rest: &mut &[u8]) -> Result<i64, KeyError> {
    take_u64(rest).map(|n| (n ^ (1 << 63)) as i64)
}

fn finish(rest: &[u8]) -> Result<(), KeyError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(KeyError::Trailing { count: rest.len() })
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
