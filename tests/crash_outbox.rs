//! SPEC §2.6 + §5 under fire: messages queued by acknowledged events reach a real SMTP
//! server (aiosmtpd) even when the daemon is SIGKILLed between committing them and
//! delivering them, or while it is delivering them; and when the server is down at
//! first, they are retried until it is up.
//!
//! Delivery is at-least-once (src/outbox/dispatch.rs): a row is marked sent only after
//! the server accepted its message, so a kill between the two sends it again. What the
//! daemon guarantees, and these tests demand: each message is queued exactly once, every
//! member gets theirs, and a repeat carries the same Message-ID, so a receiver can drop it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rally::messaging::smtp::message_id;
use rally::outbox::{OutboxRow, Status};
use rally::store::Store;
use serde_json::{json, Value};
use support::daemon::{client, post_until_acknowledged, rules_dir, Daemon};
use support::free_port;
use support::smtp::{header, SmtpServer};

const MEMBERS: usize = 200;
const BATCH: usize = 20;
/// Generous: only a daemon that stopped delivering takes this long.
const PATIENCE: Duration = Duration::from_secs(300);

/// The SMTP port comes from the environment, as an operator's secrets would.
const RULES: &str = r#"
templates:
  welcome:
    subject: "Welcome, {{ member.name }}"
    body: "Hello {{ member.name }}, welcome aboard."
channels:
  email: { kind: smtp, host: 127.0.0.1, port: "${SMTP_PORT}", tls: none,
           from: "Community <club@shop.example>" }
rules:
  - id: welcome
    trigger: { event: join }
    actions:
      - send: { template: welcome, channel: email }
"#;

fn address(i: usize) -> String {
    format!("m-{i:03}@example.com")
}

fn joins(members: usize) -> Vec<Value> {
    (0..members)
        .map(|i| {
            // No `at` (the daemon's clock): a fixed one would fall out of the
            // de-duplication window as the calendar moves on.
            json!({"id": format!("join-{i}"), "type": "join", "member": format!("m-{i:03}"),
                   "data": {"name": format!("Member {i}"), "email": address(i)}})
        })
        .collect()
}

/// Posts every event (no restarts meanwhile) and checks each was accepted.
async fn post_all(daemon: &Daemon, events: &[Value]) {
    let http = client();
    for batch in events.chunks(BATCH) {
        let statuses = post_until_acknowledged(&http, || daemon.base.clone(), batch).await;
        assert!(statuses.iter().all(|s| s == "accepted"), "{statuses:?}");
    }
}

/// The Message-IDs the server received, by recipient.
fn received(server: &SmtpServer) -> BTreeMap<String, Vec<String>> {
    let mut by_recipient: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in server.messages() {
        let to = header(&message, "X-RcptTo").expect("X-RcptTo");
        let id = header(&message, "Message-ID").expect("Message-ID");
        by_recipient.entry(to).or_default().push(id);
    }
    by_recipient
}

/// Waits until at least `members` distinct recipients got mail; returns the mail.
async fn wait_for_recipients(server: &SmtpServer, members: usize) -> BTreeMap<String, Vec<String>> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mail = received(server);
        if mail.len() >= members {
            return mail;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {members} members got mail",
            mail.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The outbox rows of a stopped daemon's store.
fn outbox(data: &Path) -> Vec<OutboxRow> {
    let store = Store::open(data).unwrap();
    store
        .outbox_scan(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(seq, bytes)| OutboxRow::decode(seq, &bytes).unwrap())
        .collect()
}

/// Every member got mail, one Message-ID per member, never shared between members.
fn assert_one_message_id_per_member(mail: &BTreeMap<String, Vec<String>>, members: usize) {
    let expected: BTreeSet<String> = (0..members).map(address).collect();
    assert_eq!(mail.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let mut owners = BTreeMap::new();
    for (to, ids) in mail {
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 1, "{to} got different messages: {ids:?}");
        if let Some(other) = owners.insert(ids[0].clone(), to.clone()) {
            panic!("{to} and {other} got the same Message-ID {}", ids[0]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_queued_before_kill_9_reach_every_member_under_one_message_id_each() {
    let server = SmtpServer::start();
    let port = server.port.to_string();
    let env = [("SMTP_PORT", port.as_str())];
    let rules = rules_dir(RULES);
    let data = tempfile::tempdir().unwrap();

    let mut daemon = Daemon::start(rules.path(), data.path(), &env);
    post_all(&daemon, &joins(MEMBERS)).await;
    // Right after the acks: every message is committed, few (if any) are delivered.
    daemon.kill();
    let before = received(&server).len();
    daemon = Daemon::start(rules.path(), data.path(), &env);
    // Again while the restarted dispatcher is part-way through.
    wait_for_recipients(&server, MEMBERS / 2).await;
    daemon.kill();
    let midway = received(&server).len();
    daemon = Daemon::start(rules.path(), data.path(), &env);

    let mail = wait_for_recipients(&server, MEMBERS).await;
    daemon.signal_and_wait(libc::SIGTERM);
    let total: usize = mail.values().map(Vec::len).sum();
    eprintln!(
        "members with mail at the first kill: {before}, at the second: {midway}; \
         messages received: {total} for {MEMBERS} members"
    );
    assert_one_message_id_per_member(&mail, MEMBERS);

    // Queued exactly once: one row per member, and its key is the Message-ID.
    let rows = outbox(data.path());
    assert_eq!(rows.len(), MEMBERS);
    for row in &rows {
        let ids = &mail[&row.to];
        assert_eq!(ids[0], message_id(&row.key), "{row:?}");
        assert!(
            row.status == Status::Sent || row.status == Status::Pending,
            "{row:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_wait_for_a_server_that_is_down_and_are_delivered_once_it_is_up() {
    const FEW: usize = 20;
    let port = free_port();
    let port_text = port.to_string();
    let env = [("SMTP_PORT", port_text.as_str())];
    let rules = rules_dir(RULES);
    let data = tempfile::tempdir().unwrap();

    let daemon = Daemon::start(rules.path(), data.path(), &env);
    post_all(&daemon, &joins(FEW)).await;
    // Nothing listens yet: wait until the dispatcher has tried and failed.
    let deadline = Instant::now() + PATIENCE;
    while !daemon.log().contains("delivery failed; will retry") {
        assert!(
            Instant::now() < deadline,
            "no failed attempt:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server = SmtpServer::start_on(port);

    let mail = wait_for_recipients(&server, FEW).await;
    assert_one_message_id_per_member(&mail, FEW);
    assert!(
        !daemon.log().contains("giving up"),
        "a message was given up on:\n{}",
        daemon.log()
    );
}

/// How many delivery outcomes the daemon says it has made durable so far.
fn outcomes_synced(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("delivery outcomes synced"))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix("settled="))
                .and_then(|n| n.parse::<usize>().ok())
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mail_delivered_and_recorded_before_kill_9_is_not_sent_again_after_the_restart() {
    const FEW: usize = 40;
    let server = SmtpServer::start();
    let port = server.port.to_string();
    let env = [
        ("SMTP_PORT", port.as_str()),
        ("RUST_LOG", "info,rally::outbox=debug"),
    ];
    let rules = rules_dir(RULES);
    let data = tempfile::tempdir().unwrap();

    let mut daemon = Daemon::start(rules.path(), data.path(), &env);
    let events = joins(FEW + 1);
    post_all(&daemon, &events[..FEW]).await;
    wait_for_recipients(&server, FEW).await;
    // Accepted by the server is not yet recorded as sent: wait until the daemon says
    // every outcome is on disk — and no later, so nothing else syncs them first.
    let deadline = Instant::now() + PATIENCE;
    while outcomes_synced(&daemon.log()) < FEW {
        assert!(
            Instant::now() < deadline,
            "the daemon never said its delivery outcomes were durable:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.kill();

    daemon = Daemon::start(rules.path(), data.path(), &env);
    // A newcomer's welcome is queued after every earlier row, so by the time it
    // arrives the restarted dispatcher has been through them all.
    post_all(&daemon, &events[FEW..]).await;
    wait_for_recipients(&server, FEW + 1).await;
    daemon.signal_and_wait(libc::SIGTERM);

    let mail = received(&server);
    assert_one_message_id_per_member(&mail, FEW + 1);
    let repeats: Vec<_> = mail.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        repeats.is_empty(),
        "sent again after the restart: {repeats:?}"
    );
}
