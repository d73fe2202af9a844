//! Hostile and careless input (issue 12): every input bounded, every refusal clear.
//! The real binary, over real HTTP and real files.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::daemon::{rally, Session};

/// A rule whose script throws the event's text: its failure is logged with that text.
const THROWS_EVENT_TEXT: &str = r#"
rules:
  - id: echo
    trigger: { event: post }
    actions:
      - script: "throw event.data.text;"
"#;

const NO_RULES: &str = "rules: []\n";

const ONE_RULE: &str = "
rules:
  - id: checkin-points
    trigger: { event: checkin }
    actions:
      - points: 5
";

/// `rally ARGS` with `env`, killed if it has not finished within 60 s (a hang fails
/// the test instead of stalling the suite).
fn rally_within_a_minute(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = rally()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rally starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll rally").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("rally's output");
            panic!(
                "rally {args:?} still running after 60 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("rally's output")
}

fn check(dir: &Path) -> (Option<i32>, String) {
    let out = rally_within_a_minute(&["check", "--rules", dir.to_str().unwrap()], &[]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A rules directory holding `rules.yaml` with `yaml` and the files given.
fn rules_with(yaml: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = support::daemon::rules_dir(yaml);
    for (rel, text) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

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

// --- symbolic links in the rules directory -----------------------------------------

#[test]
fn check_reports_symbolic_link_loops_by_path_and_finishes() {
    let dir = rules_with(ONE_RULE, &[("a/more.yaml", "rules: []\n")]);
    std::os::unix::fs::symlink(".", dir.path().join("a/loop")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("a/again")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("a/up")).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    let name = |rel: &str| dir.path().join(rel).display().to_string();
    for (link, target) in [
        ("a/again", name("a")),
        ("a/loop", name("a")),
        ("a/up", dir.path().display().to_string()),
    ] {
        let line = format!(
            "{}: symbolic link loop (points back to {target}); remove the link",
            name(link)
        );
        assert!(
            stderr.lines().any(|l| l == line),
            "no {line:?} in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("3 problems found\n"), "{stderr}");
}

#[test]
fn a_folder_linked_twice_is_read_once() {
    let dir = rules_with("rules: []\n", &[("shared/points.yaml", ONE_RULE)]);
    std::os::unix::fs::symlink("shared", dir.path().join("zz-alias")).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn run_with_a_symbolic_link_loop_refuses_to_start_naming_the_link() {
    let rules = support::daemon::rules_dir(ONE_RULE);
    std::os::unix::fs::symlink(".", rules.path().join("loop")).unwrap();
    std::os::unix::fs::symlink(".", rules.path().join("again")).unwrap();
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
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("loop: symbolic link loop"), "{stderr}");
    assert!(!stderr.contains("rally listening"), "{stderr}");
}

#[tokio::test]
async fn a_symbolic_link_loop_added_while_running_is_refused_on_reload() {
    let s = Session::start(ONE_RULE, &[]);
    std::os::unix::fs::symlink(".", s.rules.path().join("loop")).unwrap();
    std::os::unix::fs::symlink(".", s.rules.path().join("again")).unwrap();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(60), s.post("/v1/rules/reload", ""))
            .await
            .expect("the reload answers within 60 s");
    assert_ne!(status, 200, "{body}");
    assert!(
        body.to_string().contains("loop: symbolic link loop"),
        "{body}"
    );
}

/// A template whose body is the file `leak.txt`, sent on check-in. `body_file`'s
/// value is on line 5, column 16.
const BODY_FROM_LEAK: &str = "
templates:
  hello:
    subject: Hi
    body_file: leak.txt
channels:
  console: { kind: log }
rules:
  - id: hello
    trigger: { event: checkin }
    actions:
      - send: { template: hello, channel: console }
";

/// A rule running the script file `leak.rhai`, named on line 6, column 17.
const SCRIPT_FROM_LEAK: &str = "
rules:
  - id: leaky
    trigger: { event: checkin }
    actions:
      - script: leak.rhai
";

/// A file outside any rules directory, to link to.
fn outside(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn the_one_problem(dir: &Path) -> String {
    let (code, stderr) = check(dir);
    assert_eq!(code, Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[1], "1 problem found");
    lines[0].to_string()
}

#[test]
fn a_body_file_linked_to_outside_the_rules_directory_is_an_error_at_its_name() {
    let (_elsewhere, secret) = outside("passwd", "root:x:0:0:root:/root:/bin/sh\n");
    let dir = support::daemon::rules_dir(BODY_FROM_LEAK);
    std::os::unix::fs::symlink(&secret, dir.path().join("leak.txt")).unwrap();
    let problem = the_one_problem(dir.path());
    let at = format!("{}:5:16: ", dir.path().join("rules.yaml").display());
    assert!(problem.starts_with(&at), "{problem}");
    assert!(problem.contains("outside the rules directory"), "{problem}");
}

#[test]
fn a_script_file_linked_to_outside_the_rules_directory_is_an_error_at_its_name() {
    let (_elsewhere, secret) = outside("secret.rhai", "award(1000000, \"free\");\n");
    let dir = support::daemon::rules_dir(SCRIPT_FROM_LEAK);
    std::os::unix::fs::symlink(&secret, dir.path().join("leak.rhai")).unwrap();
    let problem = the_one_problem(dir.path());
    let at = format!("{}:6:17: ", dir.path().join("rules.yaml").display());
    assert!(problem.starts_with(&at), "{problem}");
    assert!(problem.contains("outside the rules directory"), "{problem}");
}

#[test]
fn a_body_file_linked_to_a_file_inside_the_rules_directory_is_read() {
    let dir = rules_with(BODY_FROM_LEAK, &[("texts/hello.txt", "Hello!\n")]);
    std::os::unix::fs::symlink("texts/hello.txt", dir.path().join("leak.txt")).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
}

// --- channel settings: `check` refuses what `run` would ------------------------------

/// An SMTP `from` that is no address (2:49), a header name with a space (7:7) and a
/// header value with a line break (8:15).
const BAD_CHANNELS: &str = r#"channels:
  mail: { kind: smtp, host: smtp.example, from: "not an address" }
  hook:
    kind: webhook
    url: "https://hooks.example/x"
    headers:
      "X Token": s3cret
      X-Note: "a\r\nInjected: 1"
"#;

#[test]
fn check_reports_every_channel_setting_run_would_refuse_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("channels.yaml"), BAD_CHANNELS).unwrap();
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    let file = dir.path().join("channels.yaml").display().to_string();
    for (at, says) in [
        (
            "2:49",
            "channel \"mail\": invalid from address \"not an address\"",
        ),
        ("7:7", "channel \"hook\": invalid header name \"X Token\""),
        (
            "8:15",
            "channel \"hook\": invalid value for header \"X-Note\"",
        ),
    ] {
        let start = format!("{file}:{at}: {says}");
        assert!(
            stderr.lines().any(|l| l.starts_with(&start)),
            "no line starting {start:?} in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("3 problems found\n"), "{stderr}");
}

#[test]
fn run_refuses_bad_channel_settings_without_saying_it_is_listening() {
    let rules = support::daemon::rules_dir(BAD_CHANNELS);
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
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("invalid header name"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
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
