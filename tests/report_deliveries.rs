//! Deliveries in the community report (issue 15): counted by the dispatcher as they
//! happen, in the write that changes the message, and read by `GET /v1/report` from
//! those counts. The real binary over real HTTP, with a real SMTP server (aiosmtpd)
//! and a real webhook receiver that is down, then fails for good, then takes a
//! message queued again by hand.

mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use chrono_tz::Asia::Shanghai;
use serde_json::{json, Value};
use support::daemon::{assert_replay_reproduces, client, rules_dir, Daemon, Session};
use support::http::{HookServer, Reply};
use support::smtp::SmtpServer;

/// A join sends a welcome by email and over the webhook, which retries for two seconds
/// at most, a second apart at most.
fn rules(smtp_port: u16, hook: &str) -> String {
    format!(
        r#"
settings:
  timezone: Asia/Shanghai
channels:
  email: {{ kind: smtp, host: 127.0.0.1, port: {smtp_port}, tls: none, from: "club@shop.example" }}
  hook: {{ kind: webhook, url: "{hook}", retry: {{ for: 2s, max_backoff: 1s }} }}
templates:
  welcome:
    subject: "Welcome"
    body: "Hi {{{{ member.id }}}}"
rules:
  - id: welcome
    trigger: {{ event: join }}
    actions:
      - send: {{ template: welcome, channel: email }}
      - send: {{ template: welcome, channel: hook }}
"#
    )
}

/// `channel`'s message to `member` once `done` holds for it (at most 30 s).
async fn message_until(
    s: &Session,
    member: &str,
    channel: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/v1/members/{member}/history");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = s.get(&path).await;
        let found = body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["channel"] == channel);
        if let Some(message) = found.filter(|m| status == 200 && done(m)) {
            return message.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{path} never got there; last {status} {body}\n{}",
            s.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |message| message["status"] == status
}

/// The report of the three days around today in Shanghai.
async fn report(s: &Session) -> Value {
    let today = Utc::now().with_timezone(&Shanghai).date_naive();
    let (from, to) = (today.pred_opt().unwrap(), today.succ_opt().unwrap());
    let (status, doc) = s.get(&format!("/v1/report?from={from}&to={to}")).await;
    assert_eq!(status, 200, "{doc}");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_each_delivery_once_as_the_dispatcher_saw_it() {
    let smtp = SmtpServer::start();
    let hook = HookServer::start(Reply::Status(503)).await;
    let rules = rules_dir(&rules(smtp.port, &hook.url));
    let data = tempfile::tempdir().expect("a data directory");
    let day = Utc::now().with_timezone(&Shanghai).date_naive();
    let mut s = Session {
        daemon: Daemon::start(rules.path(), data.path(), &[]),
        rules,
        data,
        http: client(),
    };

    let join = json!({"id": "join-m-1", "type": "join", "member": "m-1",
                      "data": {"email": "m-1@example.com"}});
    let (status, body) = s.post("/v1/events", &join.to_string()).await;
    assert_eq!(status, 200, "{body}");
    message_until(&s, "m-1", "email", status_is("sent")).await;
    // The receiver answers 503 until the channel's two seconds of retrying are over.
    let failed = message_until(&s, "m-1", "hook", status_is("failed")).await;
    let attempts = failed["attempts"]
        .as_u64()
        .expect("attempts of a failed message");
    assert!(attempts >= 2, "{failed}");

    // Back up: the failed message, queued again by hand, goes out.
    hook.reply_with(Reply::Status(200));
    let id = failed["id"].as_u64().expect("a message id");
    let (status, body) = s.post(&format!("/v1/messages/{id}/retry"), "").await;
    assert_eq!(status, 200, "{body}");
    message_until(&s, "m-1", "hook", status_is("sent")).await;
    assert_eq!(smtp.messages().len(), 1);

    // Worked out by hand: every attempt but the last was retried; the manual retry
    // sent it; the email went at the first attempt.
    let hook_counts = json!({"sent": 1, "failed": 1, "retried": attempts - 1,
                             "suppressed_at_sending": 0, "requeued": 1});
    let email_counts = json!({"sent": 1, "failed": 0, "retried": 0,
                              "suppressed_at_sending": 0, "requeued": 0});
    let check = |doc: &Value| {
        let messages = &doc["totals"]["messages"];
        assert_eq!(messages["queued"], 2, "{messages}");
        assert_eq!(messages["sent"], 2, "{messages}");
        assert_eq!(messages["failed"], 1, "{messages}");
        assert_eq!(messages["retried"], attempts - 1, "{messages}");
        assert_eq!(messages["requeued"], 1, "{messages}");
        assert_eq!(messages["suppressed_at_sending"], 0, "{messages}");
        assert_eq!(
            messages["deliveries"],
            json!({"email": email_counts, "hook": hook_counts}),
            "{messages}"
        );
    };
    let live = report(&s).await;
    check(&live);
    // Counted on the day of `settings.timezone` (unless the test ran across its
    // midnight).
    if Utc::now().with_timezone(&Shanghai).date_naive() == day {
        let period = live["periods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["period"] == day.to_string())
            .expect("today's period");
        assert_eq!(period["messages"]["sent"], 2, "{period}");
    }

    // The counts are stored with the messages: the same after a restart, and left
    // out of the replay's self-check (a replay delivers nothing).
    s.daemon.signal_and_wait(libc::SIGTERM);
    assert_replay_reproduces(s.data.path());
    s.daemon = Daemon::start(s.rules.path(), s.data.path(), &[]);
    let restarted = report(&s).await;
    check(&restarted);
    assert_eq!(restarted["totals"], live["totals"]);
}
