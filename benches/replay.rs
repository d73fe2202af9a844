//! Replay: 1,000,000 events of the bench mix on the shipped `rules/`, through a
//! [`Runner`] fed by `rally::feed` (parsing, timers, the step, group commits) over a
//! store, with no output document: what `sim`, backtest and replay cost before any
//! output. Prints events per second and the process's resident memory as the run
//! goes, which should level off once every member has been seen (memory bounded by
//! the members, not by the events).
//!
//! Run with `cargo bench --bench replay` (the in-memory store), or
//! `cargo bench --bench replay -- sled` for sled's temporary store to compare.
//! `-- --events N` replays N events instead; `-- --write-events PATH` only writes the
//! events to PATH (to run `rally sim` on them, say) and exits.

#[allow(dead_code)] // each bench uses its own part of the generator
mod common;

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rally::feed::{self, Line, Observer};
use rally::runner::Runner;
use rally::store::Store;

/// The same allocator as the `rally` binary.
#[global_allocator]
static ALLOCATOR: rally::allocator::Allocator = rally::allocator::Allocator;

const EVENTS: usize = 1_000_000;
const MEMBERS: usize = 10_000;
/// Resident memory is reported this many times over the run.
const SAMPLES: usize = 4;

fn main() {
    // As the `rally` binary does for every command that runs to its end.
    rally::allocator::keep_freed_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sled = args.iter().any(|a| a == "sled");
    let events = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(EVENTS);

    let write_only = args
        .iter()
        .position(|a| a == "--write-events")
        .and_then(|i| args.get(i + 1));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = match write_only {
        Some(path) => path.into(),
        None => dir.path().join("events.jsonl"),
    };
    {
        let file = std::fs::File::create(&path).expect("creating the events file");
        let mut out = BufWriter::new(file);
        for line in common::event_lines(events, MEMBERS) {
            writeln!(out, "{line}").expect("writing the events file");
        }
        out.flush().expect("writing the events file");
    }
    if write_only.is_some() {
        return;
    }
    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let set = rally::rules::load(&rules_dir).unwrap_or_else(|errors| {
        for e in errors {
            eprintln!("{e}");
        }
        std::process::exit(1);
    });
    let (name, store) = if sled {
        ("sled (temporary)", Store::open_temporary())
    } else {
        (
            "in memory, without history",
            Store::in_memory_without_history(),
        )
    };
    let store = store.expect("opening the store");
    println!("replay: {events} events over {MEMBERS} members on the shipped rules/, store {name}");
    let before = memory();
    println!("  before the run: rss {} MiB", before.rss_kib / 1024,);

    let mut runner = Runner::new(store, Arc::new(set)).expect("a runner");
    let file = std::fs::File::open(&path).expect("opening the events file");
    let mut progress = Progress {
        lines: 0,
        every: (events / SAMPLES).max(1),
        start: Instant::now(),
        rejected: 0,
    };
    let start = Instant::now();
    let cpu_start = cpu_time();
    feed::feed_ahead(&mut runner, BufReader::new(file), None, &mut progress)
        .expect("the replay runs");
    let elapsed = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_start);
    let after = memory();
    println!(
        "  replay                 {:>10} events/s   ({:.2} s, {} rejected)",
        common::rate(events, elapsed),
        elapsed.as_secs_f64(),
        progress.rejected,
    );
    // On a shared machine the wall clock counts time spent waiting for a core; the
    // process's own CPU time does not.
    println!(
        "  per CPU second         {:>10} events/s   ({:.2} s of CPU)",
        common::rate(events, cpu),
        cpu.as_secs_f64(),
    );
    println!(
        "  memory: rss {} MiB at the end, peak {} MiB ({} MiB before the run)",
        after.rss_kib / 1024,
        after.peak_kib / 1024,
        before.rss_kib / 1024,
    );
}

/// Counts lines and reports the rate and resident memory every `every` of them.
struct Progress {
    lines: usize,
    every: usize,
    start: Instant,
    rejected: usize,
}

impl Observer for Progress {
    fn seen(&mut self, _runner: &mut Runner, line: Line) {
        if matches!(line, Line::Rejected { .. }) {
            self.rejected += 1;
        }
        self.lines += 1;
        if self.lines.is_multiple_of(self.every) {
            let now = memory();
            println!(
                "    {:>9} events   {:>10} events/s so far   rss {} MiB",
                self.lines,
                common::rate(self.lines, self.start.elapsed()),
                now.rss_kib / 1024,
            );
        }
    }
}

/// CPU time this process has used, user and system.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

/// This process's resident memory now and at its peak, from `/proc/self/status`
/// (zero where that is not available).
fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
    }
}
