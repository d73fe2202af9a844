//! Durable timers at scale: a store with 1,000,000 members, 10,000 of whom fall silent
//! at the same instant. Measures the time to process those 10,000 inactivity timers,
//! and shows that a tick with nothing due costs the same with 1,000 and 1,000,000
//! members in the store (the timer index is read from its smallest key; members are
//! never scanned).
//!
//! Run with `cargo bench --bench timers` (MEMBERS=… to change the store size).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rally::member::Member;
use rally::rules;
use rally::runner::Runner;
use rally::store::keys::TimerKey;
use rally::store::{StepWrite, Store};

/// The same allocator as the `rally` binary.
#[global_allocator]
static ALLOCATOR: rally::allocator::Allocator = rally::allocator::Allocator;

const RULES: &str = r#"
rules:
  - id: silent-7d
    trigger: { inactive: 7d }
    actions: [ { tag: silent } ]
"#;

fn main() {
    let big: usize = std::env::var("MEMBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let silent = 10_000.min(big);
    let small_idle = idle_tick_cost(1_000, 100);
    println!("idle tick, 1,000 members: {} ns", small_idle.as_nanos());

    let dir = tempdir();
    let (mut runner, t0) = populate(&dir, big, silent);
    let idle = time_idle(&mut runner, t0, 1_000);
    println!("idle tick, {big} members: {} ns", idle.as_nanos());

    let due = t0 + chrono::Duration::days(7);
    let start = Instant::now();
    let steps = runner.run_due(due).expect("run due timers");
    let elapsed = start.elapsed();
    println!(
        "{silent} members falling silent at one instant: {steps} timer steps in {:.2} s ({:.0} timers/s)",
        elapsed.as_secs_f64(),
        steps as f64 / elapsed.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rally-timers-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A store with `members` members; the first `silent` were last active at t0 and have
/// an armed inactivity timer at t0 + 7d.
fn populate(dir: &std::path::Path, members: usize, silent: usize) -> (Runner, DateTime<Utc>) {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let store = Store::open(dir).expect("open store");
    let due = (t0 + chrono::Duration::days(7)).timestamp_millis();
    let started = Instant::now();
    let mut group = Vec::with_capacity(1024);
    for i in 0..members {
        let mut member = Member::new(&format!("m-{i:07}"));
        member.created_at = Some(t0);
        let mut write = StepWrite::default();
        if i < silent {
            member.last_active = Some(t0);
            member.book.silence_timer = Some(due);
            write.timers_set.push((
                TimerKey::new(due, rally::engine::INACTIVE, member.id.clone()),
                Vec::new(),
            ));
        }
        write.members.push(member);
        group.push(write);
        if group.len() == 1024 {
            store.commit(&group).expect("commit");
            group.clear();
        }
    }
    store.commit(&group).expect("commit");
    store.sync().expect("sync");
    println!(
        "populated {members} members ({silent} silent) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let set = rules::from_sources(&[("rules.yaml", RULES)], &|_| None).expect("rules");
    (Runner::new(store, Arc::new(set)).expect("runner"), t0)
}

/// The cost of one tick with nothing due: `run_due` at an instant before any timer.
fn time_idle(runner: &mut Runner, t0: DateTime<Utc>, rounds: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..rounds {
        runner.run_due(t0).expect("idle tick");
    }
    start.elapsed() / rounds
}

fn idle_tick_cost(members: usize, silent: usize) -> Duration {
    let dir = tempdir().with_extension("small");
    let (mut runner, t0) = populate(&dir, members, silent);
    let cost = time_idle(&mut runner, t0, 1_000);
    let _ = std::fs::remove_dir_all(&dir);
    cost
}
