//! `rally sim` as a library call on a rule set written inline: the tests of time,
//! messages and tickets read the output document.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Simulates `events` (JSON Lines) on the rules in `yaml`, up to `until`.
pub fn run(yaml: &str, events: &str, until: &str) -> Value {
    let rules = match rally::rules::from_sources(&[("rules.yaml", yaml)], &|_| None) {
        Ok(rules) => rules,
        Err(errors) => panic!("{errors:?}"),
    };
    let until: DateTime<Utc> = DateTime::parse_from_rfc3339(until)
        .expect("an RFC 3339 time")
        .into();
    rally::sim::simulate(Arc::new(rules), events.as_bytes(), Some(until))
        .expect("sim runs")
        .to_value()
}

/// The firings of `rule`, as (member, time).
pub fn firings_of(doc: &Value, rule: &str) -> Vec<(String, String)> {
    doc["firings"]
        .as_array()
        .expect("firings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| {
            (
                f["member"].as_str().unwrap_or_default().to_string(),
                f["at"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
