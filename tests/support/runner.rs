//! The `Runner` the daemon uses, driven directly over a temporary store: for tests that
//! look at what reaches the store rather than at `sim`'s document.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rally::event::{self, AtPolicy, Event};
use rally::runner::Runner;
use rally::store::Store;

/// An RFC 3339 instant.
pub fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 time")
        .into()
}

/// A runner on the rules in `yaml`, over an empty temporary store.
pub fn runner(yaml: &str) -> Runner {
    let rules = match rally::rules::from_sources(&[("rules.yaml", yaml)], &|_| None) {
        Ok(rules) => rules,
        Err(errors) => panic!("{errors:?}"),
    };
    let store = Store::open_temporary().expect("a temporary store");
    Runner::new(store, Arc::new(rules)).expect("a runner")
}

/// One event line, as the daemon and `sim` parse it.
pub fn event(line: &str) -> Event {
    event::parse_line(line, AtPolicy::Required).expect("a valid event")
}

/// Opens the store in `dir` that another handle (or a killed process) held a moment
/// ago: sled releases its file lock shortly after the holder is gone, so a reopen
/// right away may find it still taken. Retries for up to 10 s.
pub fn reopen(dir: &std::path::Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot reopen the store in {}: {e}", dir.display()),
        }
    }
}

/// Applies the event `line` when the clock reads `at`, after what fell due, and
/// commits: one arrival as the daemon takes it.
pub fn arrive_and_commit(runner: &mut Runner, line: &str, at: DateTime<Utc>) {
    runner.run_due(at).expect("timers run");
    runner
        .apply_event(&event(line), at)
        .expect("the event applies");
    runner.commit().expect("the commit");
}

/// Every timer in the store, due or not: `(due, kind, id)`.
pub fn timers(store: &Store) -> Vec<(i64, String, String)> {
    store
        .timers_due(i64::MAX, usize::MAX)
        .expect("the timer index")
        .into_iter()
        .map(|(key, _)| (key.due, key.kind.to_string(), key.id.to_string()))
        .collect()
}
