//! Hostile and careless input (issue 12): every input bounded, every refusal clear.
//! The real binary, over real HTTP and real files.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::daemon::Session;

/// A rule whose script throws the event's text: its failure is logged with that text.
const THROWS_EVENT_TEXT: &str = r#"
rules:
  - id: echo
    trigger: { event: post }
    actions:
      - script: "throw event.data.text;"
"#;

const NO_RULES: &str = "rules: []\n";

fn results(body: &Value) -> &Vec<Value> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
}

/// Waits (at most 10 s) until the daemon's log contains `needle`.
fn wait_for_log(s: &Session, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.daemon.log();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn an_event_id_with_a_line_break_is_rejected_naming_the_id() {
    let s = Session::start(NO_RULES, &[]);
    let event = json!({"id": "e-1\nINFO forged", "type": "checkin", "member": "m-1"});
    let (status, body) = s.post("/v1/events", &event.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let result = &results(&body)[0];
    assert_eq!(result["status"], "rejected", "{body}");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.starts_with("id: must not contain control characters"),
        "{error}"
    );
}

#[tokio::test]
async fn a_rule_failure_carrying_client_text_is_logged_escaped_on_one_line() {
    let s = Session::start(THROWS_EVENT_TEXT, &[]);
    let text = "boom\nERROR rally: forged line";
    let event = json!({"id": "e-1", "type": "post", "member": "m-1", "data": {"text": text}});
    let (status, body) = s.post("/v1/events", &event.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let log = wait_for_log(&s, "rule failed");
    assert!(log.contains("rule failed"), "{log}");
    assert!(
        !log.lines()
            .any(|line| line.starts_with("ERROR rally: forged line")),
        "a client's line break reached the log raw:\n{log}"
    );
    assert!(log.contains(r"boom\nERROR rally: forged line"), "{log}");
}

#[tokio::test]
async fn an_ndjson_line_that_is_not_utf8_is_rejected_alone_and_the_others_apply() {
    let s = Session::start(NO_RULES, &[]);
    let mut body = Vec::new();
    body.extend_from_slice(br#"{"id":"e-1","type":"checkin","member":"m-1"}"#);
    body.extend_from_slice(b"\n{\"id\":\"e-2\xff\",\"type\":\"checkin\",\"member\":\"m-1\"}\n");
    body.extend_from_slice(br#"{"id":"e-3","type":"checkin","member":"m-1"}"#);
    let response = s
        .http
        .post(s.daemon.url("/v1/events"))
        .body(body)
        .send()
        .await
        .expect("the daemon answers");
    let (status, body) = support::daemon::answer(response).await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&str> = results(&body)
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "rejected", "accepted"], "{body}");
    let error = results(&body)[1]["error"].as_str().unwrap();
    assert!(error.contains("line 2 is not valid UTF-8"), "{error}");
}
