use std::io::{self, BufRead};
use std::sync::Arc;

use super::*;
use crate::store::{Fault, Store};

const RULES: &str =
    "rules:\n  - id: c\n    trigger: { event: checkin }\n    actions: [ { points: 5 } ]\n";

fn runner() -> Runner {
    let rules = crate::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap();
    Runner::new(Store::open_temporary().unwrap(), Arc::new(rules)).unwrap()
}

/// The `n`th check-in (from 0), a second after the one before.
fn checkin(n: usize) -> String {
    let start: DateTime<Utc> = "2026-06-01T09:00:00Z".parse().unwrap();
    let at = start + Duration::seconds(n as i64);
    format!(
        r#"{{"id":"e-{n}","type":"checkin","member":"m-{}","at":"{}"}}"#,
        n % 7,
        crate::member::rfc3339(at)
    )
}

/// Every line as the observer heard of it.
#[derive(Default)]
struct Heard(Vec<String>);

impl Observer for Heard {
    fn seen(&mut self, _: &mut Runner, line: Line) {
        self.0.push(match line {
            Line::Accepted { member } => format!("accepted {member:?}"),
            Line::Duplicate => "duplicate".into(),
            Line::Rejected { line, error } => format!("{line}: {error}"),
        });
    }
}

/// A file whose `n`th line (from 0) is what `line(n)` says: `None` ends it, an error
/// fails the read; a panic in `line` is a panic in the read.
struct Generated<F> {
    line: F,
    next: usize,
    buffer: Vec<u8>,
    consumed: usize,
}

fn generated<F: FnMut(usize) -> Option<io::Result<String>>>(line: F) -> Generated<F> {
    Generated {
        line,
        next: 0,
        buffer: Vec::new(),
        consumed: 0,
    }
}

impl<F: FnMut(usize) -> Option<io::Result<String>>> io::Read for Generated<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.read(out)?;
        self.consume(n);
        Ok(n)
    }
}

impl<F: FnMut(usize) -> Option<io::Result<String>>> BufRead for Generated<F> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed == self.buffer.len() {
            self.buffer.clear();
            self.consumed = 0;
            if let Some(line) = (self.line)(self.next) {
                self.buffer.extend_from_slice(line?.as_bytes());
                self.buffer.push(b'\n');
                self.next += 1;
            }
        }
        Ok(&self.buffer[self.consumed..])
    }

    fn consume(&mut self, amount: usize) {
        self.consumed += amount;
    }
}

#[test]
fn reading_ahead_gives_the_lines_numbers_and_rejections_that_reading_in_place_gives() {
    // Several batches of lines, with every kind of line that is not an event among them.
    let mut file = Vec::new();
    for n in 0..1000 {
        match n % 97 {
            10 => file.extend_from_slice(b"{\"id\":\"bad\xff\"}"),
            20 => {}
            30 => file.extend_from_slice(b"   \t"),
            40 => file.extend_from_slice(b"not json"),
            50 => file.extend_from_slice(br#"{"id":"x","type":"checkin","member":"m-1"}"#),
            60 => file.extend_from_slice(checkin(n - 1).as_bytes()),
            _ => file.extend_from_slice(checkin(n).as_bytes()),
        }
        file.push(b'\n');
    }
    // The last line has no line break.
    file.extend_from_slice(checkin(1000).as_bytes());

    let mut in_place = Heard::default();
    feed(&mut runner(), file.as_slice(), None, &mut in_place).unwrap();
    let mut ahead = Heard::default();
    feed_ahead(&mut runner(), file.as_slice(), None, &mut ahead).unwrap();

    assert_eq!(ahead.0, in_place.0);
    // Blank lines are skipped but counted: 1001 lines, 21 of them blank.
    assert_eq!(ahead.0.len(), 1001 - 21);
    assert_eq!(ahead.0[10], "11: the line is not valid UTF-8 (byte 11)");
    assert!(
        ahead.0[38].starts_with("41: event: not valid JSON"),
        "{}",
        ahead.0[38]
    );
    assert_eq!(ahead.0[58], "duplicate");
    assert_eq!(ahead.0[ahead.0.len() - 1], "accepted Some(\"m-6\")");
}

#[test]
fn a_read_error_ends_the_feed_after_the_lines_before_it() {
    let failing = |n| match n {
        0..300 => Some(Ok(checkin(n))),
        _ => Some(Err(io::Error::other("the disk is gone"))),
    };
    for ahead in [false, true] {
        let mut heard = Heard::default();
        let fed = if ahead {
            feed_ahead(&mut runner(), generated(failing), None, &mut heard)
        } else {
            feed(&mut runner(), generated(failing), None, &mut heard)
        };
        let error = fed.unwrap_err();
        assert!(matches!(error, FeedError::Read(_)), "{error}");
        assert_eq!(error.to_string(), "reading events: the disk is gone");
        assert_eq!(heard.0.len(), 300);
    }
}

#[test]
fn a_reader_thread_that_panics_is_an_error_not_the_end_of_the_file() {
    let panicking = |n| match n {
        0..300 => Some(Ok(checkin(n))),
        _ => panic!("a bug in reading"),
    };
    let mut heard = Heard::default();
    let error = feed_ahead(&mut runner(), generated(panicking), None, &mut heard).unwrap_err();
    assert_eq!(
        error.to_string(),
        "reading events: the reader thread panicked: a bug in reading"
    );
    assert!(heard.0.len() <= 300);
}

#[test]
fn a_runner_stopped_by_an_error_stops_the_reader_of_an_endless_file() {
    let mut runner = runner();
    runner.store().faults().inject(Fault::Commit, 1);
    let endless = generated(|n| Some(Ok(checkin(n))));
    let error = feed_ahead(&mut runner, endless, None, &mut Heard::default()).unwrap_err();
    assert!(matches!(error, FeedError::Store(_)), "{error}");
}
