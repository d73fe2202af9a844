//! Hostile and careless clients (issue 12): ids that would forge log lines, bodies
//! with bytes that are not UTF-8, and connections that are slow, idle or too many.
//! The real binary over real TCP.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::daemon::{rally_within_a_minute, Session};

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

// --- slow and idle connections ------------------------------------------------------

/// `host:port` of the session's daemon.
fn addr(s: &Session) -> String {
    s.daemon.base.trim_start_matches("http://").to_string()
}

/// Whether the server has closed `stream`: reads until end of file or an error
/// (whatever it answered first is skipped), `false` while it is merely quiet.
fn server_closed(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if is_quiet(&e) => return false,
            Err(_) => return true,
        }
    }
}

/// A socket timeout: the other side is quiet (or not reading), not gone.
fn is_quiet(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn connect(s: &Session) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(addr(s)).expect("connect to the daemon");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream
}

#[test]
fn a_client_trickling_its_headers_is_disconnected_after_the_header_timeout() {
    use std::io::Write;
    let s = Session::start(NO_RULES, &[("RALLY_HEADER_TIMEOUT_MS", "500")]);
    let mut slow = connect(&s);
    slow.write_all(b"POST /v1/events HTTP/1.1\r\nHost: rally\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in 0.. {
        // A header every 200 ms: always something new, never the end of the headers.
        let wrote = slow.write_all(format!("X-Slow-{line}: 1\r\n").as_bytes());
        let refused = wrote.is_err_and(|e| !is_quiet(&e));
        if refused || server_closed(&mut slow) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still open after 30 s of trickled headers"
        );
    }
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    use std::io::Write;
    let s = Session::start(NO_RULES, &[("RALLY_HEADER_TIMEOUT_MS", "500")]);
    let mut idle = connect(&s);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: rally\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server_closed(&mut idle) {
        assert!(
            Instant::now() < deadline,
            "an idle connection still open after 30 s"
        );
    }
}

#[tokio::test]
async fn idle_sockets_over_the_connection_limit_do_not_lock_a_client_out() {
    // The header timeout is far beyond the test: only the limit's policy can let the
    // client in, by closing the connection that has waited longest.
    let s = Session::start(
        NO_RULES,
        &[
            ("RALLY_MAX_CONNECTIONS", "4"),
            ("RALLY_HEADER_TIMEOUT_MS", "600000"),
        ],
    );
    let mut idle: Vec<std::net::TcpStream> = (0..8).map(|_| connect(&s)).collect();
    let (status, body) = s.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server_closed(&mut idle[0]) {
        assert!(
            Instant::now() < deadline,
            "the oldest idle socket is still open"
        );
    }
}

#[test]
fn run_refuses_a_connection_limit_that_is_not_a_positive_number() {
    let rules = support::daemon::rules_dir(NO_RULES);
    let data = tempfile::tempdir().unwrap();
    let out = rally_within_a_minute(
        &[
            "run",
            "--rules",
            rules.path().to_str().unwrap(),
            "--data",
            data.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("RALLY_MAX_CONNECTIONS", "0")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("RALLY_MAX_CONNECTIONS \"0\" is not a positive whole number"),
        "{stderr}"
    );
}

#[test]
fn a_client_trickling_its_body_is_answered_408_after_the_body_timeout() {
    use std::io::{Read, Write};
    let s = Session::start(NO_RULES, &[("RALLY_BODY_TIMEOUT_MS", "500")]);
    let mut slow = connect(&s);
    slow.write_all(b"POST /v1/events HTTP/1.1\r\nHost: rally\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        // A byte of the body every 200 ms: never all of it.
        let _ = slow.write_all(b" ");
        let mut buffer = [0u8; 1024];
        match slow.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if is_quiet(&e) => {}
            Err(e) => panic!("connection failed: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "no answer after 30 s of a trickled body"
        );
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

// --- what a render may build ---------------------------------------------------------

#[tokio::test]
async fn a_template_that_would_build_gigabytes_fails_its_rule_and_the_daemon_serves_on() {
    let s = Session::start(support::JOIN_BOMB, &[]);
    let event = json!({"id": "e-1", "type": "checkin", "member": "m-1"});
    let (status, body) = s.post("/v1/events", &event.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(results(&body)[0]["status"], "accepted", "{body}");
    let log = wait_for_log(&s, "rule failed");
    assert!(log.contains("bomb"), "{log}");
    let (status, member) = s.get("/v1/members/m-1").await;
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["points"], 5, "{member}");
}
