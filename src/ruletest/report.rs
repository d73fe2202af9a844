//! What `rally test` prints, in the shape of `cargo test`'s, and the JUnit XML that CI
//! systems read (`--junit FILE`). Both list tests in the order they ran; neither holds
//! a duration, so the same rules and tests give the same bytes.

use std::fmt::Write as _;

use super::{Outcome, Verdict};

/// `test points: first check-in ... ok`
pub fn line(outcome: &Outcome) -> String {
    let result = if outcome.passed() { "ok" } else { "FAILED" };
    format!("test {} ... {result}", outcome.title())
}

/// The failures in detail, their names again, and the tally.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed()).collect();
    if !failed.is_empty() {
        out.push_str("\nfailures:\n");
        for outcome in &failed {
            let _ = writeln!(out, "\n---- {} ({}) ----", outcome.title(), outcome.at);
            out.push_str(&details(outcome));
        }
        out.push_str("\nfailures:\n");
        for outcome in &failed {
            let _ = writeln!(out, "    {}", outcome.title());
        }
    }
    let passed = outcomes.len() - failed.len();
    let result = if failed.is_empty() { "ok" } else { "FAILED" };
    let _ = writeln!(
        out,
        "\ntest result: {result}. {passed} passed, {} failed",
        failed.len()
    );
    out
}

/// Why a test failed, one expectation per paragraph.
fn details(outcome: &Outcome) -> String {
    let mut out = String::new();
    match &outcome.verdict {
        Verdict::Passed => {}
        Verdict::Failed(mismatches) => {
            for mismatch in mismatches {
                let _ = writeln!(out, "{mismatch}");
            }
        }
        Verdict::Broken(error) => {
            let _ = writeln!(out, "could not run: {error}");
        }
    }
    out
}

/// The JUnit XML document: one `testsuite` per test file, in order.
pub fn junit(outcomes: &[Outcome]) -> String {
    let failures = outcomes.iter().filter(|o| !o.passed()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"rally test\" tests=\"{}\" failures=\"{failures}\">",
        outcomes.len()
    );
    let mut rest = outcomes;
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|o| o.suite == first.suite).count();
        let (suite, after) = rest.split_at(n);
        rest = after;
        let failed = suite.iter().filter(|o| !o.passed()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failed}\" file=\"{}\">",
            escape(&first.suite),
            escape(&first.at.file)
        );
        for outcome in suite {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\"",
                escape(&outcome.name),
                escape(&outcome.suite),
                escape(&outcome.at.file),
                outcome.at.line
            );
            if outcome.passed() {
                out.push_str("/>\n");
                continue;
            }
            let message = match &outcome.verdict {
                Verdict::Failed(m) => format!(
                    "{} expectation{} not met",
                    m.len(),
                    if m.len() == 1 { "" } else { "s" }
                ),
                _ => "the test could not run".to_string(),
            };
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                escape(&message),
                escape(&details(outcome))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text as XML character data or an attribute value: the five special characters as
/// entities, and characters XML 1.0 cannot hold at all (most control characters) as
/// U+FFFD, so a message quoting odd input still gives a well-formed file.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_special_and_control_characters_are_escaped() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}"
        );
        assert_eq!(escape("line\nnext\ttab"), "line\nnext\ttab");
    }
}
