//! peer50 (`../shared/bench/peer50/`): one workload — 50 rules, 10,000 events — that
//! other engines were measured on. Runs it through Rally's pure step (members kept in
//! a map, as the peers keep nothing) and through the `rally sim` binary end to end
//! (process start, rules, the store, the output document), printing events/s and the
//! firing count, which must be the peers' 40,130.
//!
//! Run with `cargo bench --bench peer50` (the `shared` folder beside the repository).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use rally::engine::{self, Context, Input};
use rally::event::{self, AtPolicy, Event};
use rally::member::Member;

/// The same allocator as the `rally` binary.
#[global_allocator]
static ALLOCATOR: rally::allocator::Allocator = rally::allocator::Allocator;

/// What every engine fires on this workload.
const PEER_FIRINGS: usize = 40_130;
const ROUNDS: usize = 3;

fn workload() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/peer50")
}

fn main() {
    // As the `rally` binary does for every command that runs to its end.
    rally::allocator::keep_freed_pages();
    let dir = workload();
    let events_file = dir.join("events.jsonl");
    let Ok(text) = std::fs::read_to_string(&events_file) else {
        eprintln!(
            "peer50: {} not found (the shared folder goes beside the repository)",
            events_file.display()
        );
        std::process::exit(1);
    };
    let events: Vec<Event> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| event::parse_line(line, AtPolicy::Required).expect("peer50 events are valid"))
        .collect();
    let set = rally::rules::load(&dir.join("rules")).unwrap_or_else(|errors| {
        for e in errors {
            eprintln!("{e}");
        }
        std::process::exit(1);
    });
    println!(
        "peer50: {} events, {} rules (peers fire {PEER_FIRINGS} times)",
        events.len(),
        set.rules.len()
    );
    for round in 1..=ROUNDS {
        step(round, &set, &events);
        sim(round, &dir, &events_file, events.len());
    }
}

/// The pure step per event, members kept in a map.
fn step(round: usize, set: &rally::rules::RuleSet, events: &[Event]) {
    let mut members: HashMap<String, Member> = HashMap::new();
    let budget_used = BTreeMap::new();
    let mut firings = 0;
    let start = Instant::now();
    for event in events {
        let ctx = Context {
            rules: set,
            now: event.at_utc(),
            budget_used: &budget_used,
            rewards: &Default::default(),
            next_ticket: 1,
            shares: None,
            random_key: Default::default(),
        };
        let member = event.member.as_ref().and_then(|m| members.remove(m));
        let outcome = engine::step(&ctx, member, &Input::Event(event));
        firings += outcome.firings.len();
        members.insert(outcome.member.id.to_string(), outcome.member);
    }
    let elapsed = start.elapsed();
    println!(
        "  round {round}  pure step            {:>8.0} events/s   {firings} firings",
        events.len() as f64 / elapsed.as_secs_f64()
    );
}

/// `rally sim` as a user runs it, output written to a file.
fn sim(round: usize, dir: &std::path::Path, events: &std::path::Path, count: usize) {
    let out = tempfile::NamedTempFile::new().expect("a temporary file");
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_rally"))
        .arg("sim")
        .arg("--rules")
        .arg(dir.join("rules"))
        .arg("--events")
        .arg(events)
        .arg("--out")
        .arg(out.path())
        .status()
        .expect("running rally");
    let elapsed = start.elapsed();
    assert!(status.success(), "rally sim failed: {status}");
    let doc: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(
        std::fs::File::open(out.path()).expect("the output"),
    ))
    .expect("a JSON document");
    let firings = doc["firings"].as_array().map_or(0, Vec::len);
    println!(
        "  round {round}  rally sim (binary)   {:>8.0} events/s   {firings} firings",
        count as f64 / elapsed.as_secs_f64()
    );
}
