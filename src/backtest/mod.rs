//! Comparing two runs of the rules over the same events (`rally diff`, and later
//! `rally backtest` over a daemon's event journal): what each rule did, which members
//! ended differently, what campaigns spent and what the community owes, with
//! thresholds for CI. docs/backtest.md is the operator's reference.
//!
//! | module | owns |
//! |---|---|
//! | [`summary`] | [`Summary`]: one run as counts and sums, fed fact by fact |
//! | [`document`] | a `rally sim` document (or file) read into a summary |
//! | [`diff`] | summary A × summary B → [`Difference`], the `--json` schema |
//! | [`members`] | members whose tier, badges, tags or points differ |
//! | [`table`] | the terminal table |
//! | [`fail_if`] | `--fail-if` thresholds and their verdicts |
//!
//! A is the baseline and B the candidate throughout: a change is B − A.

pub mod diff;
pub mod document;
pub mod fail_if;
pub mod members;
pub mod summary;
pub mod table;

#[cfg(test)]
mod tests;

use serde_json::{json, Value};

pub use diff::Difference;
pub use document::{load, DocumentError, LoadError};
pub use fail_if::{Threshold, ThresholdError, Verdict};
pub use summary::Summary;

/// The `format` of the `--json` document; bumped when a field changes meaning or goes.
pub const JSON_FORMAT: &str = "rally-diff/1";

/// The `--json` document: the two inputs, the difference, and each threshold's verdict.
pub fn json_report(a: &str, b: &str, diff: &Difference, verdicts: &[Verdict]) -> Value {
    let mut doc = json!({"format": JSON_FORMAT, "a": a, "b": b});
    if let (Value::Object(doc), Ok(Value::Object(fields))) = (&mut doc, serde_json::to_value(diff))
    {
        doc.extend(fields);
    }
    doc["fail_if"] = json!(verdicts);
    doc
}
