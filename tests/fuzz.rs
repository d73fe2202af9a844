//! Fuzzing by property (issue 12): the shipped rules and the examples' events, mutated
//! at random — bytes flipped, lines dropped, doubled or swapped, tokens inserted, text
//! cut short — must never make Rally panic. A rule set either loads or is refused with
//! errors that each say where; `sim` on mutated events rejects every unreadable line
//! by its number and prints valid JSON; the daemon's body parser answers every body.
//!
//! Brief by default (64 cases each); longer on demand:
//! `RALLY_FUZZ_CASES=100000 cargo test --test fuzz`.

use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("RALLY_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of the shipped rules directory, as (path relative to it, text).
fn shipped_rules() -> Vec<(String, String)> {
    let dir = root().join("rules");
    let mut files = Vec::new();
    for sub in [dir.clone(), dir.join("scripts")] {
        let mut entries: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(&dir).unwrap().display().to_string();
            files.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
    files
}

/// A rules directory's files: (path relative to it, text).
type Files = Vec<(String, String)>;

/// Every example with its own events: (its files but the events and the README, such
/// as `rules.yaml` and a codes file it names; events.jsonl).
fn examples() -> Vec<(Files, Vec<u8>)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("rules.yaml").is_file() && p.join("events.jsonl").is_file())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|d: &PathBuf| {
            let mut files: Vec<(String, String)> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
                .filter(|name| name != "events.jsonl" && name != "README.md")
                .map(|name| {
                    let text = std::fs::read_to_string(d.join(&name)).unwrap();
                    (name, text)
                })
                .collect();
            files.sort();
            (files, std::fs::read(d.join("events.jsonl")).unwrap())
        })
        .collect()
}

/// Text worth inserting: the bits YAML, Rhai, minijinja and JSON care about.
const TOKENS: &[&str] = &[
    "\n",
    ": ",
    "- ",
    "  ",
    "\t",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "#",
    "&a",
    "*a",
    "|",
    "\0",
    "{{",
    "}}",
    "{%",
    "%}",
    "~",
    "null",
    "-1",
    "99999999999999999999",
    "1e308",
    "id: x",
    "points: ",
    "trigger: ",
    "script: ",
    "if: ",
    "expr: ",
    "every: ",
    "at: ",
    "\u{feff}",
    "é",
    "\u{202e}",
    ",",
    "\\u0000",
    "\"at\":",
    "\"member\":",
    "\"type\":",
    "\"data\":",
];

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, usize),
    DropLine(usize),
    DoubleLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::DoubleLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(text: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, b) if !bytes.is_empty() => bytes[i % len] = b,
            Mutation::Insert(i, t) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[t].bytes());
            }
            Mutation::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            Mutation::DropLine(i) | Mutation::DoubleLine(i) | Mutation::SwapLines(i, _) => {
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                let i = i % n;
                match *m {
                    Mutation::DropLine(_) => {
                        lines.remove(i);
                    }
                    Mutation::DoubleLine(_) => lines.insert(i, lines[i].clone()),
                    Mutation::SwapLines(_, j) => lines.swap(i, j % n),
                    _ => {}
                }
                bytes = lines.join(&b'\n');
            }
            _ => {}
        }
    }
    bytes
}

fn load(files: &[(String, String)]) -> Result<rally::rules::RuleSet, Vec<rally::rules::RuleError>> {
    let sources: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    rally::rules::from_sources(&sources, &|_| None)
}

/// Lines `sim` must reject: not blank, and not a JSON object.
fn unreadable_lines(events: &[u8]) -> Vec<u64> {
    events
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .filter(|(_, line)| {
            !matches!(
                serde_json::from_slice::<serde_json::Value>(line),
                Ok(serde_json::Value::Object(_))
            )
        })
        .map(|(i, _)| i as u64 + 1)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn mutated_rules_load_or_are_refused_with_every_error_placed(
        file in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let mut files = shipped_rules();
        let i = file.index(files.len());
        let text = mutate(files[i].1.as_bytes(), &mutations);
        files[i].1 = String::from_utf8_lossy(&text).into_owned();
        if let Err(errors) = load(&files) {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert!(e.at.is_some(), "an error without a position: {e}");
            }
        }
    }

    #[test]
    fn sim_on_mutated_events_rejects_every_unreadable_line_and_prints_json(
        example in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let all = examples();
        let (rules, events) = &all[example.index(all.len())];
        let rules = load(rules).expect("the example loads");
        let events = mutate(events, &mutations);
        let sim = rally::sim::simulate(Arc::new(rules), events.as_slice(), None)
            .expect("sim runs");
        let text = serde_json::to_string(&sim).expect("the output serializes");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("the output is JSON");
        let rejected: Vec<u64> = doc["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect();
        for line in unreadable_lines(&events) {
            prop_assert!(rejected.contains(&line), "line {line} not rejected: {rejected:?}");
        }
    }

    #[test]
    fn the_daemon_body_parser_answers_every_mutated_body(
        example in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
        as_array in any::<bool>(),
    ) {
        let all = examples();
        let (_, events) = &all[example.index(all.len())];
        let body = if as_array {
            let lines: Vec<&[u8]> = events.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
            let mut body = b"[".to_vec();
            body.extend(lines.join(&b','));
            body.push(b']');
            body
        } else {
            events.clone()
        };
        let body = mutate(&body, &mutations);
        let received = chrono::DateTime::parse_from_rfc3339("2026-11-11T00:00:00+08:00").unwrap();
        let _ = rally::daemon::ingest::parse_body(&body, received);
    }
}

#[test]
fn the_seeds_themselves_load() {
    assert!(load(&shipped_rules()).is_ok());
    for (rules, _) in examples() {
        assert!(load(&rules).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn sim_on_mutated_rules_that_still_load_never_panics(
        example in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let all = examples();
        let (files, events) = &all[example.index(all.len())];
        // The rule file mutated; the files it names (a codes file) as they are.
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(name, text)| match name.as_str() {
                "rules.yaml" => (
                    name.clone(),
                    String::from_utf8_lossy(&mutate(text.as_bytes(), &mutations)).into_owned(),
                ),
                _ => (name.clone(), text.clone()),
            })
            .collect();
        if let Ok(rules) = load(&files) {
            let sim = rally::sim::simulate(Arc::new(rules), events.as_slice(), None)
                .expect("sim runs");
            let text = serde_json::to_string(&sim).expect("the output serializes");
            prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
        }
    }
}
