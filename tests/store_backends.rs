//! `sim` on the in-memory stores and on sled's temporary store gives the same document,
//! byte for byte, on the bench mix over the shipped `rules/`: the two backends are two
//! stores behind one interface, and nothing a run decides may depend on which.
//!
//! `RALLY_BACKEND_EVENTS=N` replays N events instead of the default (a release build
//! compares a million in a couple of minutes).

#[allow(dead_code)] // the benches' generator; this uses part of it
#[path = "../benches/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rally::runner::Runner;
use rally::store::Store;

const EVENTS: usize = 3_000;
const MEMBERS: usize = 300;

/// The bench mix, with every 50th line sent again (a duplicate) and every 70th sent
/// again a little later (a duplicate that arrives late), so `seen` is exercised.
fn input(events: usize) -> String {
    let mut text = String::new();
    let mut resend = Vec::new();
    for (i, line) in common::event_lines(events, MEMBERS).enumerate() {
        text.push_str(&line);
        text.push('\n');
        if i % 50 == 0 {
            text.push_str(&line);
            text.push('\n');
        }
        if i % 70 == 0 {
            resend.push(line);
        } else if resend.len() > 3 {
            for line in resend.drain(..) {
                text.push_str(&line);
                text.push('\n');
            }
        }
    }
    text
}

fn document(store: Store, input: &str, until: DateTime<Utc>) -> Vec<u8> {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let rules = rally::rules::load(&rules).unwrap_or_else(|errors| panic!("{errors:?}"));
    let runner = Runner::new(store, Arc::new(rules)).unwrap();
    let doc = rally::sim::simulate_on(runner, input.as_bytes(), Some(until)).unwrap();
    serde_json::to_vec(&doc).unwrap()
}

#[test]
fn sim_on_the_bench_mix_is_the_same_on_both_backends() {
    let events = std::env::var("RALLY_BACKEND_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(EVENTS);
    let input = input(events);
    // Long after the last event, so inactivity timers and schedules fall due.
    let until = "2027-12-31T00:00:00Z".parse().unwrap();
    let sled = document(Store::open_temporary().unwrap(), &input, until);
    assert!(sled.len() > 100_000, "a document of {} bytes", sled.len());
    let memory = document(Store::in_memory().unwrap(), &input, until);
    assert!(sled == memory, "the in-memory store's document differs");
    // What `sim` runs on.
    let without_history = document(Store::in_memory_without_history().unwrap(), &input, until);
    assert!(
        sled == without_history,
        "the history-less store's document differs"
    );
}
