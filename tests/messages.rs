//! Messages and tickets through `sim` (SPEC §2.5, §2.6, §3.1): quiet hours and daily
//! caps in the member's local time, suppression, and escalation ladders.

mod support;

use serde_json::Value;

use support::sim::run as sim;

fn statuses(doc: &Value) -> Vec<(String, String)> {
    doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["status"].as_str().unwrap().to_string(),
                m["at"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn s(status: &str, at: &str) -> (String, String) {
    (status.to_string(), at.to_string())
}

const WELCOME: &str = r#"
settings:
  timezone: Asia/Shanghai
  messaging: { quiet_hours: "22:00-08:00", max_per_day: 2 }
templates:
  hello: { subject: "Hi {{ member.name }}", body: "You have {{ member.points }} points." }
channels:
  email: { kind: smtp, host: localhost, from: "club@shop.example" }
rules:
  - id: hello
    trigger: { event: post }
    actions: [ { send: { template: hello, channel: email } } ]
"#;

#[test]
fn a_message_in_quiet_hours_is_deferred_to_their_end_across_local_midnight() {
    let doc = sim(
        WELCOME,
        r#"{"id":"0","type":"join","member":"m","at":"2026-11-01T12:00:00+08:00","data":{"name":"Lin","email":"lin@example.com"}}
{"id":"1","type":"post","member":"m","at":"2026-11-01T23:30:00+08:00"}
{"id":"2","type":"post","member":"m","at":"2026-11-02T00:30:00+08:00"}
{"id":"3","type":"post","member":"m","at":"2026-11-02T09:00:00+08:00"}
"#,
        "2026-11-03T00:00:00Z",
    );
    // 23:30 and 00:30 Shanghai are both quiet: both wait for 08:00 on 2 Nov (00:00Z)
    // and go out then, which is the day they count against — so the 09:00 one is
    // over the cap of 2.
    assert_eq!(
        statuses(&doc),
        [
            s("sent", "2026-11-02T00:00:00Z"),
            s("sent", "2026-11-02T00:00:00Z"),
            s("capped", "2026-11-02T01:00:00Z"),
        ]
    );
    let first = &doc["messages"][0];
    assert_eq!(
        first["to"], "lin@example.com",
        "smtp goes to the member's email"
    );
    assert_eq!(first["subject"], "Hi Lin");
    assert_eq!(first["channel"], "email");
    assert_eq!(first["template"], "hello");
}

#[test]
fn max_per_day_resets_on_the_members_local_day_not_utc() {
    let doc = sim(
        WELCOME,
        // 08:30, 09:00, 10:00 Shanghai on 2 Nov; then 07:30 Shanghai... is quiet, so use
        // 08:10 on 3 Nov: still 2 Nov in UTC (00:10Z), but a new local day.
        r#"{"id":"0","type":"join","member":"m","at":"2026-11-02T08:00:00+08:00","data":{"name":"Lin","email":"lin@example.com"}}
{"id":"1","type":"post","member":"m","at":"2026-11-02T08:30:00+08:00"}
{"id":"2","type":"post","member":"m","at":"2026-11-02T09:00:00+08:00"}
{"id":"3","type":"post","member":"m","at":"2026-11-02T10:00:00+08:00"}
{"id":"4","type":"post","member":"m","at":"2026-11-03T08:10:00+08:00"}
"#,
        "2026-11-04T00:00:00Z",
    );
    let got: Vec<String> = statuses(&doc)
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(got, ["sent", "sent", "capped", "sent"]);
}

#[test]
fn unsubscribe_and_leave_suppress_marketing() {
    let doc = sim(
        WELCOME,
        r#"{"id":"0a","type":"join","member":"a","at":"2026-11-02T08:00:00+08:00","data":{"name":"A","email":"a@example.com"}}
{"id":"0c","type":"join","member":"c","at":"2026-11-02T08:00:00+08:00","data":{"name":"C"}}
{"id":"1","type":"unsubscribe","member":"a","at":"2026-11-02T09:00:00+08:00"}
{"id":"2","type":"post","member":"a","at":"2026-11-02T10:00:00+08:00"}
{"id":"3","type":"leave","member":"b","at":"2026-11-02T09:00:00+08:00"}
{"id":"4","type":"post","member":"c","at":"2026-11-02T10:00:00+08:00"}
"#,
        "2026-11-03T00:00:00Z",
    );
    let got: Vec<String> = statuses(&doc)
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    // `c` has no email: the message cannot go anywhere and is recorded as failed.
    assert_eq!(got, ["suppressed", "failed"]);
}

const SUPPORT: &str = r#"
channels:
  staff: { kind: log }
escalations:
  - id: support
    levels:
      - { notify: { channel: staff, to: support-team }, within: 2h }
      - { notify: { channel: staff, to: lead }, within: 4h }
      - { notify: { channel: staff, to: manager } }
rules:
  - id: low-rating
    trigger: { event: feedback }
    if: "event.data.rating <= 2"
    actions: [ { escalate: { policy: support, severity: high, summary: "low rating" } } ]
"#;

#[test]
fn a_ticket_climbs_three_levels_while_another_is_acked_and_a_third_resolved() {
    let doc = sim(
        SUPPORT,
        r#"{"id":"1","type":"feedback","member":"a","at":"2026-11-04T10:00:00Z","data":{"rating":1}}
{"id":"2","type":"feedback","member":"b","at":"2026-11-04T10:00:00Z","data":{"rating":2}}
{"id":"3","type":"feedback","member":"c","at":"2026-11-04T10:00:00Z","data":{"rating":1}}
{"id":"4","type":"feedback","member":"d","at":"2026-11-04T10:00:00Z","data":{"rating":5}}
{"id":"5","type":"rally.ticket.ack","at":"2026-11-04T11:00:00Z","data":{"ticket":"T-2","by":"amy"}}
{"id":"6","type":"rally.ticket.resolve","at":"2026-11-04T11:30:00Z","data":{"ticket":"T-3"}}
"#,
        "2026-11-05T00:00:00Z",
    );
    let tickets = doc["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 3, "a rating of 5 opens nothing");
    let t1 = &tickets[0];
    assert_eq!(t1["id"], "T-1");
    assert_eq!(t1["status"], "open");
    assert_eq!(t1["level"], 3);
    assert_eq!(t1["severity"], "high");
    assert_eq!(
        t1["levels"],
        serde_json::json!([
            {"level": 1, "at": "2026-11-04T10:00:00Z"},
            {"level": 2, "at": "2026-11-04T12:00:00Z"},
            {"level": 3, "at": "2026-11-04T16:00:00Z"},
        ])
    );
    assert_eq!(tickets[1]["status"], "acked");
    assert_eq!(tickets[1]["level"], 1);
    assert_eq!(tickets[2]["status"], "resolved");
    let notified: Vec<&str> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        notified,
        [
            "support-team",
            "support-team",
            "support-team",
            "lead",
            "manager"
        ]
    );
}

#[test]
fn a_template_that_fails_to_render_fails_its_rule_and_is_reported() {
    let doc = sim(
        WELCOME,
        // No `name`: strict undefined makes `member.name` an error, not an empty string.
        r#"{"id":"1","type":"post","member":"m","at":"2026-11-02T10:00:00+08:00"}"#,
        "2026-11-03T00:00:00Z",
    );
    assert!(doc["messages"].as_array().unwrap().is_empty());
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["rule"], "hello");
}

#[test]
fn acks_of_unknown_or_resolved_tickets_are_rejected_and_change_nothing() {
    let doc = sim(
        SUPPORT,
        r#"{"id":"1","type":"feedback","member":"a","at":"2026-11-04T10:00:00Z","data":{"rating":1}}
{"id":"2","type":"rally.ticket.resolve","at":"2026-11-04T10:10:00Z","data":{"ticket":"T-1"}}
{"id":"3","type":"rally.ticket.ack","at":"2026-11-04T10:20:00Z","data":{"ticket":"T-1"}}
{"id":"4","type":"rally.ticket.ack","at":"2026-11-04T10:30:00Z","data":{"ticket":"T-42"}}
"#,
        "2026-11-05T00:00:00Z",
    );
    let rejected = doc["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["line"], 3);
    assert!(rejected[0]["error"]
        .as_str()
        .unwrap()
        .contains("already resolved"));
    assert_eq!(rejected[1]["line"], 4);
    assert!(rejected[1]["error"].as_str().unwrap().contains("T-42"));
    assert_eq!(doc["tickets"][0]["status"], "resolved");
    assert!(doc["members"]["staff"]["counters"]["events.rally.ticket.ack"].is_null());
}

#[test]
fn a_member_who_left_gets_no_marketing() {
    let yaml = format!(
        "{WELCOME}  - id: goodbye\n    trigger: {{ event: leave }}\n    actions: [ {{ send: {{ template: hello, channel: email }} }} ]\n"
    );
    let doc = sim(
        &yaml,
        r#"{"id":"0","type":"join","member":"m","at":"2026-11-02T08:00:00+08:00","data":{"name":"Lin","email":"lin@example.com"}}
{"id":"1","type":"leave","member":"m","at":"2026-11-02T10:00:00+08:00"}
"#,
        "2026-11-03T00:00:00Z",
    );
    let got: Vec<String> = statuses(&doc)
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(got, ["suppressed"]);
}

#[test]
fn ticket_commands_create_no_member_and_count_on_no_one() {
    let doc = sim(
        SUPPORT,
        r#"{"id":"1","type":"feedback","member":"a","at":"2026-11-04T10:00:00Z","data":{"rating":1}}
{"id":"2","type":"rally.ticket.ack","at":"2026-11-04T10:10:00Z","data":{"ticket":"T-1","by":"amy"}}
{"id":"3","type":"rally.ticket.resolve","member":"a","at":"2026-11-04T10:20:00Z","data":{"ticket":"T-1"}}
"#,
        "2026-11-05T00:00:00Z",
    );
    assert_eq!(doc["rejected"], serde_json::json!([]));
    assert_eq!(doc["tickets"][0]["status"], "resolved");
    let members: Vec<&String> = doc["members"].as_object().unwrap().keys().collect();
    assert_eq!(members, ["a"]);
    let counters = &doc["members"]["a"]["counters"];
    assert!(counters["events.rally.ticket.ack"].is_null(), "{counters}");
    assert!(
        counters["events.rally.ticket.resolve"].is_null(),
        "{counters}"
    );
}

#[test]
fn a_ticket_command_naming_someone_other_than_the_tickets_member_is_rejected() {
    let doc = sim(
        SUPPORT,
        r#"{"id":"1","type":"feedback","member":"a","at":"2026-11-04T10:00:00Z","data":{"rating":1}}
{"id":"2","type":"rally.ticket.ack","member":"staff","at":"2026-11-04T10:10:00Z","data":{"ticket":"T-1"}}
"#,
        "2026-11-04T10:30:00Z",
    );
    let rejected = doc["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 2);
    assert!(
        rejected[0]["error"]
            .as_str()
            .unwrap()
            .contains("\"staff\" is not the member of ticket T-1"),
        "{rejected:?}"
    );
    assert_eq!(doc["tickets"][0]["status"], "open");
    assert!(doc["members"]["staff"].is_null());
}

#[test]
fn a_rule_on_a_ticket_command_runs_for_the_tickets_member() {
    let yaml = format!(
        "{SUPPORT}  - id: sorry\n    trigger: {{ event: rally.ticket.resolve }}\n    actions: [ {{ tag: resolved }} ]\n"
    );
    let doc = sim(
        &yaml,
        r#"{"id":"1","type":"feedback","member":"a","at":"2026-11-04T10:00:00Z","data":{"rating":1}}
{"id":"2","type":"rally.ticket.resolve","at":"2026-11-04T10:10:00Z","data":{"ticket":"T-1","by":"amy"}}
"#,
        "2026-11-04T10:30:00Z",
    );
    assert_eq!(doc["members"]["a"]["tags"], serde_json::json!(["resolved"]));
    assert_eq!(doc["firings"][1]["member"], "a");
}
