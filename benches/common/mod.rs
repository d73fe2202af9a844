//! The synthetic community both benches replay: members checking in, buying, posting,
//! sharing and commenting, in time order, from a fixed seed so every run sees the same
//! events.

use std::fmt::Write as _;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Event types of the mix and their weights (out of 100).
const MIX: [(&str, u32); 5] = [
    ("checkin", 35),
    ("post", 20),
    ("comment", 20),
    ("share", 15),
    ("purchase", 10),
];

/// `count` events as JSON lines over `members` members, 10 seconds apart from
/// 2026-11-01 00:00 Shanghai time (so a run of 100,000 covers about 12 days).
pub fn events(count: usize, members: usize) -> Vec<String> {
    event_lines(count, members).collect()
}

/// The lines of [`events`] one at a time: a million of them held at once would be
/// most of what a replay bench measures as its memory.
pub fn event_lines(count: usize, members: usize) -> impl Iterator<Item = String> {
    let mut rng = StdRng::seed_from_u64(0x5EED);
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00+08:00")
        .expect("a valid start time");
    (0..count).map(move |i| {
        let at = start + chrono::Duration::seconds(10 * i as i64);
        let member = rng.gen_range(0..members);
        let mut pick = rng.gen_range(0..100);
        let kind = MIX
            .iter()
            .find(|(_, weight)| {
                let hit = pick < *weight;
                pick = pick.saturating_sub(*weight);
                hit
            })
            .map_or("checkin", |(kind, _)| *kind);
        let mut line = format!(
            r#"{{"id":"e-{i}","type":"{kind}","member":"m-{member}","at":"{}""#,
            at.to_rfc3339()
        );
        if kind == "purchase" {
            let amount = rng.gen_range(5..2000) as f64 + 0.5;
            let _ = write!(line, r#","data":{{"amount":{amount},"order":"o-{i}"}}"#);
        }
        line.push('}');
        line
    })
}

/// Events per second, with thousands separators.
pub fn rate(events: usize, elapsed: Duration) -> String {
    let per_second = (events as f64 / elapsed.as_secs_f64()) as u64;
    let digits = per_second.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
