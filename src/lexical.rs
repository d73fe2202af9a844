//! The order of byte strings — a member's counter names, the in-memory store's keys —
//! compared a word at a time in registers.
//!
//! The standard comparison of two slices calls `memcmp` and then compares their
//! lengths. The names and keys a step compares are short (most under 24 bytes) and
//! mostly differ in their first word, where the call costs more than the comparison:
//! under a profile of a replay, `memcmp` was a tenth of the time, called some forty
//! times an event by map searches alone. Here the bytes are read as big-endian words,
//! whose order as integers is the bytes' order, so a comparison is a few loads and
//! integer compares, inlined where it is used.
//!
//! The order is exactly `<[u8] as Ord>::cmp`'s (a test checks it against every pair of
//! a set of tricky strings and of random ones), so anything sorted either way agrees.

use std::cmp::Ordering;

/// `a.cmp(b)` for byte strings: lexicographic, a prefix before what extends it.
#[inline]
pub fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    let common = a.len().min(b.len());
    let (x, y) = (&a[..common], &b[..common]);
    match compare_equal_lengths(x, y) {
        Ordering::Equal => a.len().cmp(&b.len()),
        order => order,
    }
}

/// Compares two strings of the same length.
#[inline]
fn compare_equal_lengths(x: &[u8], y: &[u8]) -> Ordering {
    debug_assert_eq!(x.len(), y.len());
    let len = x.len();
    if len < 8 {
        return short(x).cmp(&short(y));
    }
    let mut at = 0;
    while at + 8 <= len {
        let (p, q) = (word(x, at), word(y, at));
        if p != q {
            return p.cmp(&q);
        }
        at += 8;
    }
    if at == len {
        return Ordering::Equal;
    }
    // The last word overlaps the one before it, whose bytes were equal: the first
    // difference, if any, is in the part that is new.
    word(x, len - 8).cmp(&word(y, len - 8))
}

/// The eight bytes from `at` as a big-endian number.
#[inline]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// A string shorter than eight bytes as a number that orders as the string among
/// strings of its length: its first and last halves, which overlap when its length is
/// odd — an overlap whose bytes are in both, so the first difference still decides.
#[inline]
fn short(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let four = |at: usize| {
        let mut half = [0; 4];
        half.copy_from_slice(&bytes[at..at + 4]);
        u64::from(u32::from_be_bytes(half))
    };
    let two = |at: usize| {
        let mut half = [0; 2];
        half.copy_from_slice(&bytes[at..at + 2]);
        u64::from(u16::from_be_bytes(half))
    };
    match len {
        0 => 0,
        1 => u64::from(bytes[0]),
        2 | 3 => (two(0) << 16) | two(len - 2),
        _ => (four(0) << 32) | four(len - 4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings() -> Vec<Vec<u8>> {
        let mut strings: Vec<Vec<u8>> = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "events.checkin",
            "events.comment",
            "events.purchase",
            "events.post",
            "checkin_best",
            "checkin_streak",
            "checkins",
            "é",
            "e",
            "B",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // Zero bytes (padding must not make "a" equal "a\0"), high bytes (no sign),
        // and a difference in every position of strings of every length up to 20.
        strings.extend([
            vec![0],
            vec![0, 0],
            b"a\0".to_vec(),
            b"a\0\0\0\0\0\0\0\0".to_vec(),
            vec![0xff],
            vec![0xff; 9],
            vec![0x7f, 0x80],
            vec![0x80, 0x7f],
        ]);
        for len in 1..=20 {
            for at in 0..len {
                let mut s = vec![b'm'; len];
                s[at] = b'a';
                strings.push(s.clone());
                s[at] = b'z';
                strings.push(s);
            }
        }
        strings
    }

    #[test]
    fn orders_every_pair_as_slices_do() {
        let strings = strings();
        for a in &strings {
            for b in &strings {
                assert_eq!(cmp(a, b), a.as_slice().cmp(b.as_slice()), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn orders_random_strings_as_slices_do() {
        // A small linear congruential generator: the same strings every run.
        let mut seed: u64 = 0x5EED;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let strings: Vec<Vec<u8>> = (0..400)
            .map(|_| {
                let len = next() % 30;
                // Few distinct bytes, so many strings share long prefixes.
                (0..len).map(|_| b"ab\0\xff"[next() % 4]).collect()
            })
            .collect();
        for a in &strings {
            for b in &strings {
                assert_eq!(cmp(a, b), a.as_slice().cmp(b.as_slice()), "{a:?} {b:?}");
            }
        }
    }
}
