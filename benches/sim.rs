//! `rally sim` end to end: 100,000 generated events on the shipped `rules/`, through
//! `rally::sim::simulate` (parsing, the step, in-memory commits, serializing the output
//! document) and through the `rally` binary (adding rule loading and writing the file).
//!
//! Run with `cargo bench --bench sim`.

mod common;

use std::io::BufReader;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// The same allocator as the `rally` binary.
#[global_allocator]
static ALLOCATOR: rally::allocator::Allocator = rally::allocator::Allocator;

const EVENTS: usize = 100_000;
const MEMBERS: usize = 10_000;

fn main() {
    // As the `rally` binary does for every command that runs to its end.
    rally::allocator::keep_freed_pages();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let events = dir.path().join("events.jsonl");
    let mut text = common::events(EVENTS, MEMBERS).join("\n");
    text.push('\n');
    std::fs::write(&events, text).expect("writing the events file");
    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let set = rally::rules::load(&rules_dir).unwrap_or_else(|errors| {
        for e in errors {
            eprintln!("{e}");
        }
        std::process::exit(1);
    });
    println!("sim: {EVENTS} events over {MEMBERS} members on the shipped rules/");

    let file = std::fs::File::open(&events).expect("opening the events file");
    let start = Instant::now();
    let doc = rally::sim::simulate(Arc::new(set), BufReader::new(file), None)
        .expect("the simulation runs");
    // The document is part of the work: serialize it, as the binary does, into a sink.
    serde_json::to_writer_pretty(std::io::sink(), &doc).expect("serializing the document");
    let elapsed = start.elapsed();
    let members = doc.members().len();
    println!(
        "  rally::sim::simulate   {:>10} events/s   ({:.2} s, {members} members)",
        common::rate(EVENTS, elapsed),
        elapsed.as_secs_f64()
    );

    let out = dir.path().join("out.json");
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_rally"))
        .arg("sim")
        .arg("--rules")
        .arg(&rules_dir)
        .arg("--events")
        .arg(&events)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("running rally");
    let elapsed = start.elapsed();
    assert!(status.success(), "rally sim failed: {status}");
    println!(
        "  rally sim (binary)     {:>10} events/s   ({:.2} s, output {} KiB)",
        common::rate(EVENTS, elapsed),
        elapsed.as_secs_f64(),
        std::fs::metadata(&out).map_or(0, |m| m.len() / 1024)
    );
}
