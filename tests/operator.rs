//! Operator controls over real HTTP (issue 14 item 7): `POST /v1/members/{id}/points`
//! adjusts a balance once per key, refuses what it must, shows in the ledger with
//! reason and operator, and is in the journal, so `rally replay` rebuilds it exactly.

mod support;

use serde_json::{json, Value};
use support::daemon::Session;

const RULES: &str = r#"
settings: { timezone: UTC, points: { daily_cap: 10 } }
tiers:
  by: points
  levels:
    - { name: member, from: 0 }
    - { name: silver, from: 100 }
rules:
  - id: checkin
    trigger: { event: checkin }
    actions: [ { points: 10 } ]
"#;

fn adjustment(key: &str, amount: i64) -> String {
    json!({"key": key, "amount": amount, "reason": "goodwill", "operator": "ana"}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_adjustment_is_idempotent_refused_when_it_must_be_and_replayed_exactly() {
    let mut session = Session::start(RULES, &[]);
    let (status, _) = session
        .post(
            "/v1/events",
            r#"{"id":"e-1","type":"checkin","member":"m-1"}"#,
        )
        .await;
    assert_eq!(status, 200);

    // Adjust: past the daily cap, into silver.
    let (status, body) = session
        .post("/v1/members/m-1/points", &adjustment("adj-1", 110))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["balance"], 120);
    assert_eq!(body["entry"]["amount"], 110);
    assert_eq!(body["entry"]["reason"], "goodwill");
    assert_eq!(body["entry"]["operator"], "ana");

    // The same key again: the same answer, no change.
    let (status, again) = session
        .post("/v1/members/m-1/points", &adjustment("adj-1", 110))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["balance"], 120);
    assert_eq!(again["entry"], body["entry"]);

    // A key another event used is no adjustment of this member's.
    let (status, conflict) = session
        .post("/v1/members/m-1/points", &adjustment("e-1", 5))
        .await;
    assert_eq!(status, 409, "{conflict}");

    // Unknown member: 404, and no member is created.
    let (status, unknown) = session
        .post("/v1/members/nobody/points", &adjustment("adj-2", 5))
        .await;
    assert_eq!(status, 404, "{unknown}");
    assert_eq!(session.get("/v1/members/nobody").await.0, 404);

    // A bad body names the field.
    let (status, bad) = session
        .post(
            "/v1/members/m-1/points",
            r#"{"key":"adj-3","amount":5,"operator":"ana"}"#,
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"].as_str().unwrap().starts_with("reason:"),
        "{bad}"
    );

    // Below zero: refused with the balance, nothing changes, the key stays free.
    let (status, refused) = session
        .post("/v1/members/m-1/points", &adjustment("adj-4", -300))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["error"],
        "insufficient points: balance 120, deduction 300"
    );
    let (status, fixed) = session
        .post("/v1/members/m-1/points", &adjustment("adj-4", -20))
        .await;
    assert_eq!((status, &fixed["balance"]), (200, &json!(100)), "{fixed}");

    // The ledger shows who and why; the member is silver.
    let (_, ledger) = session.get("/v1/members/m-1/ledger").await;
    let adjustments: Vec<&Value> = ledger["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operator"] == "ana")
        .collect();
    assert_eq!(adjustments.len(), 2, "{ledger}");
    assert_eq!(adjustments[1]["amount"], -20);
    assert_eq!(adjustments[1]["reason"], "goodwill");
    let (_, member) = session.get("/v1/members/m-1").await;
    assert_eq!(member["points"], 100);
    assert_eq!(member["tier"], "silver");

    // Stopped, the journal rebuilds it all.
    session.daemon.signal_and_wait(libc::SIGTERM);
    support::daemon::assert_replay_reproduces(session.data.path());
}
