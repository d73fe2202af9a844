//! Points expiry in the real daemon (`rally run`) over HTTP, on its real clock: a lot
//! of a few seconds expires by its timer with no event to wake it, the member view
//! shows what expires next until then, the ledger records the expiry, and
//! `rally replay --data` rebuilds the same state from the journal.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::daemon::Session;

const RULES: &str = r#"
settings:
  points: { expire: { after: 3s } }
rules:
  - id: earn
    trigger: { event: purchase }
    actions: [ { points: 40 } ]
  - id: spend
    trigger: { event: redeem }
    actions: [ { points: { amount: -10, reason: redeemed } } ]
  - id: remind
    trigger: { points_expiring: 2s }
    actions: [ { tag: reminded } ]
"#;

impl Session {
    async fn accept(&self, event: Value) {
        let (status, body) = self.post("/v1/events", &event.to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    }
}

#[tokio::test]
async fn the_daemon_expires_a_lot_by_its_timer_and_the_replay_agrees() {
    let mut s = Session::start(RULES, &[]);
    s.accept(json!({"id": "p-1", "type": "purchase", "member": "m-1"}))
        .await;
    s.accept(json!({"id": "r-1", "type": "redeem", "member": "m-1"}))
        .await;
    let (status, member) = s.get("/v1/members/m-1").await;
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["points"], 30);
    assert_eq!(member["points_expiring"]["amount"], 30, "{member}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let member = loop {
        let (_, member) = s.get("/v1/members/m-1").await;
        if member["points"] == 0 {
            break member;
        }
        assert!(Instant::now() < deadline, "nothing expired: {member}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(member.get("points_expiring").is_none(), "{member}");
    assert_eq!(member["tags"], json!(["reminded"]));
    let (_, ledger) = s.get("/v1/members/m-1/ledger").await;
    let entries: Vec<(i64, String, String)> = ledger["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["amount"].as_i64().unwrap(),
                e["reason"].as_str().unwrap().to_string(),
                e["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (40, "earn".to_string(), "earn".to_string()),
            (-10, "redeemed".to_string(), "spend".to_string()),
            (-30, "expired".to_string(), "(expiry)".to_string()),
        ]
    );

    s.daemon.signal_and_wait(libc::SIGTERM);
    support::daemon::assert_replay_reproduces(s.data.path());
}
