//! The pure step (`rally::engine::step`) on a realistic event mix: events per second
//! and the latency of one step, on the shipped `rules/` and on generated rule sets of
//! growing size that all match the same few rules per event — the rule index should
//! keep the cost flat as rules are added.
//!
//! Run with `cargo bench --bench step`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use rally::engine::{self, Context, Input};
use rally::event::{self, AtPolicy, Event};
use rally::member::Member;
use rally::rules::{self, RuleSet};

/// The same allocator as the `rally` binary.
#[global_allocator]
static ALLOCATOR: rally::allocator::Allocator = rally::allocator::Allocator;

const EVENTS: usize = 200_000;
const MEMBERS: usize = 10_000;

fn main() {
    let events: Vec<Event> = common::events(EVENTS, MEMBERS)
        .iter()
        .map(|line| {
            event::parse_line(line, AtPolicy::Required).expect("generated events are valid")
        })
        .collect();

    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let set = rules::load(&shipped).unwrap_or_else(|errors| {
        for e in errors {
            eprintln!("{e}");
        }
        std::process::exit(1);
    });
    println!("step: {EVENTS} events over {MEMBERS} members (checkin 35%, post 20%, comment 20%, share 15%, purchase 10%)");
    report(
        &format!("shipped rules/ ({} rules)", set.rules.len()),
        &set,
        &events,
    );
    for size in [50, 500] {
        let set = generated(size);
        report(&format!("generated, {size} rules"), &set, &events);
    }
}

/// Runs every event through the step, keeping members in a map as the store would.
fn report(name: &str, set: &RuleSet, events: &[Event]) {
    let mut members: HashMap<String, Member> = HashMap::with_capacity(MEMBERS);
    let mut times: Vec<Duration> = Vec::with_capacity(events.len());
    let mut failures = 0usize;
    let budget_used = BTreeMap::new();
    let all = Instant::now();
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
        let start = Instant::now();
        let outcome = engine::step(&ctx, member, &Input::Event(event));
        times.push(start.elapsed());
        failures += outcome.failures.len();
        members.insert(outcome.member.id.to_string(), outcome.member);
    }
    let elapsed = all.elapsed();
    times.sort_unstable();
    let percentile = |p: f64| {
        let index = ((times.len() as f64 * p) as usize).min(times.len() - 1);
        times[index].as_secs_f64() * 1e6
    };
    println!(
        "  {name:<28} {:>10} events/s   p50 {:>6.1} µs   p99 {:>6.1} µs   ({failures} rule failures)",
        common::rate(events.len(), elapsed),
        percentile(0.50),
        percentile(0.99),
    );
}

/// `size` rules: ten on the event types of the mix (two per type, half with an `if`),
/// the rest on event types the mix never sends.
fn generated(size: usize) -> RuleSet {
    const TYPES: [&str; 5] = ["checkin", "purchase", "post", "share", "comment"];
    let mut yaml = String::from(
        "settings:\n  timezone: Asia/Shanghai\n  points: { daily_cap: 200 }\nrules:\n",
    );
    for i in 0..size {
        let kind = if i < 10 {
            TYPES[i % TYPES.len()].to_string()
        } else {
            format!("other-{i}")
        };
        yaml.push_str(&format!("  - id: r{i}\n    trigger: {{ event: {kind} }}\n"));
        if i % 2 == 1 {
            yaml.push_str(&format!(
                "    if: \"member.points >= {} || member.counters.purchases > 2\"\n",
                i % 7
            ));
        }
        yaml.push_str("    actions:\n      - points: 1\n");
        if i % 3 == 0 {
            yaml.push_str(&format!("      - tag: t{}\n", i % 4));
        }
    }
    rules::from_sources(&[("rules.yaml", &yaml)], &|_| None).unwrap_or_else(|errors| {
        for e in errors {
            eprintln!("{e}");
        }
        std::process::exit(1);
    })
}
