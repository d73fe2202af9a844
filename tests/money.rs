//! Exact money end to end: `rally sim` on the shipped rules with decimal amounts.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const EVENTS: &str = r#"{"id":"p-1","type":"purchase","member":"m-1","at":"2026-11-01T10:00:00Z","data":{"amount":199.99}}
{"id":"p-2","type":"purchase","member":"m-1","at":"2026-11-02T10:00:00Z","data":{"amount":9.99}}
{"id":"p-3","type":"purchase","member":"m-1","at":"2026-11-03T10:00:00Z","data":{"amount":0.1}}
{"id":"p-4","type":"purchase","member":"m-1","at":"2026-11-03T11:00:00Z","data":{"amount":0.2}}
{"id":"p-5","type":"purchase","member":"m-1","at":"2026-11-03T12:00:00Z","data":{"amount":0.00001}}
"#;

/// `rally sim` with the shipped `rules/` on [`EVENTS`].
fn shipped_sim() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, EVENTS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(["sim", "--rules", "rules", "--events"])
        .arg(&events)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("rally starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn decimal_spend_adds_up_and_prints_exactly() {
    let doc = shipped_sim();
    let spend = &doc["members"]["m-1"]["counters"]["spend_total"];
    assert_eq!(spend.to_string(), "210.28");
    assert_eq!(doc["members"]["m-1"]["counters"]["purchases"], 4);
}

#[test]
fn shipped_purchase_points_are_a_tenth_of_a_decimal_amount_rounded_toward_zero() {
    let doc = shipped_sim();
    let purchase_points: Vec<(String, i64)> = doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rule"] == "purchase-points")
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    // 199.99 / 10 → 19; 9.99 is under the rule's `event.data.amount >= 10`.
    assert_eq!(purchase_points, [("p-1".to_string(), 19)]);
}

#[test]
fn an_amount_with_five_decimal_places_is_rejected_naming_the_field() {
    let doc = shipped_sim();
    let rejected = doc["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    assert_eq!(rejected[0]["line"], 5);
    assert!(rejected[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("data.amount: "));
}
