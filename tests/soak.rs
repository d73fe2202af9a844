//! The soak (issue 11): the real `rally run` under a steady `rally bench`-style load
//! while its rules are reloaded every few seconds and its SMTP relay crashes and comes
//! back, over and over. Afterwards nothing acknowledged is missing, each message that
//! must go once per (rule, member) arrived once, and memory and disk stayed bounded.
//!
//! `RALLY_SOAK_SECS` sets how long the load runs: 20 s by default, so the suite stays
//! short; `scripts/soak.sh` runs the full ten minutes. `RALLY_SOAK_RATE` (events/s
//! offered, default 1,000) and `RALLY_SOAK_MEMBERS` (default 4 per second of load,
//! from 100 to 2,000) adjust it.
//!
//! The relay is killed, not shut down: a message it had stored but not yet confirmed
//! when it died is sent again under the same Message-ID (SMTP is at-least-once; the
//! receiver can drop the repeat). Such a repeat is counted and allowed, at most the
//! channel's 4 deliveries in flight per outage; a second *message* — another
//! Message-ID — for the same (rule, member) never is.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rally::outbox::{OutboxRow, Status};
use rally::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::daemon::{client, get_json, rules_dir, Daemon};
use support::footprint::{mib, Sample, Sampler};
use support::free_port;
use support::smtp::{header, Flapping};

const CLIENTS: usize = 4;
const BATCH: usize = 25;
const RELOAD_EVERY: Duration = Duration::from_secs(3);
/// Longest the relay is up, or down, at a stretch.
const OUTAGE: Duration = Duration::from_secs(15);
/// After the load, how long the outbox gets to drain (the relay then stays up).
const DRAIN: Duration = Duration::from_secs(300);
/// Generous bounds: a leak or unbounded growth passes them within minutes.
const MAX_RSS: u64 = 1536 << 20;
const DISK_PER_EVENT: u64 = 4096;
const DISK_BASE: u64 = 64 << 20;
/// The rules that send, each once per member.
const MESSAGE_RULES: [&str; 2] = ["welcome", "points-milestone"];

/// What the run offers, from the environment.
#[derive(Clone, Copy, Debug)]
struct Plan {
    secs: u64,
    rate: u64,
    members: usize,
    /// Members `0..quiet` send events only in the first `quiet_secs`, then fall silent
    /// long enough for the `dormant` inactivity rule.
    quiet: usize,
    quiet_secs: u64,
    /// `points-milestone`'s threshold: about half of what a member earns in the run.
    points_at: u64,
}

impl Plan {
    fn from_env() -> Plan {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
                })
                .unwrap_or(default)
        };
        let secs = number("RALLY_SOAK_SECS", 20);
        let rate = number("RALLY_SOAK_RATE", 1000);
        let members = number("RALLY_SOAK_MEMBERS", (secs * 4).clamp(100, 2000)) as usize;
        // Check-ins earn 5 or 7, purchases a tenth of ~100, posts 2: ~5.2 per event.
        let per_member = rate * secs / members as u64;
        Plan {
            secs,
            rate,
            members,
            quiet: members / 10,
            quiet_secs: (secs / 10).min(60),
            points_at: (per_member * 52 / 20).max(20),
        }
    }

    /// Between two batches of one client.
    fn interval(&self) -> Duration {
        Duration::from_secs_f64((CLIENTS * BATCH) as f64 / self.rate as f64)
    }

    /// Whether the run is long enough for every quiet member to have been found dormant.
    fn expects_dormant(&self) -> bool {
        self.secs >= self.quiet_secs + 200
    }
}

fn member_id(i: usize) -> String {
    format!("m-{i:04}")
}

/// The rule set after `reloads` reloads: the check-in award, a tagging rule and the
/// inactivity period change from one to the next; the sending rules never do.
fn rules_yaml(smtp_port: u16, reloads: u64, points_at: u64) -> String {
    let checkin = if reloads.is_multiple_of(2) { 5 } else { 7 };
    let silence = if (reloads / 5).is_multiple_of(2) {
        "2m"
    } else {
        "3m"
    };
    let poster = if reloads % 3 == 2 {
        ""
    } else {
        "  - id: poster\n    trigger: { event: post }\n    actions:\n      - tag: poster\n"
    };
    format!(
        r#"# reload {reloads}
templates:
  welcome:
    subject: "soak welcome {{{{ member.id }}}}"
    body: "Welcome, {{{{ member.id }}}}: thanks for your first purchase."
  points:
    subject: "soak points-milestone {{{{ member.id }}}}"
    body: "{{{{ member.id }}}} has {{{{ member.points_lifetime }}}} points."
channels:
  email: {{ kind: smtp, host: 127.0.0.1, port: {smtp_port}, tls: none, timeout: 5s,
           from: "Soak <soak@shop.example>", retry: {{ max_backoff: 10s }} }}
rules:
  - id: welcome
    trigger: {{ milestone: purchases, at: 1 }}
    actions:
      - send: {{ template: welcome, channel: email, to: "{{{{ member.id }}}}@example.com" }}
  - id: points-milestone
    trigger: {{ milestone: points_lifetime, at: {points_at} }}
    actions:
      - send: {{ template: points, channel: email, to: "{{{{ member.id }}}}@example.com" }}
  - id: checkin-points
    trigger: {{ event: checkin }}
    actions:
      - points: {checkin}
  - id: purchase-points
    trigger: {{ event: purchase }}
    actions:
      - points: "event.data.amount / 10"
  - id: post-points
    trigger: {{ event: post }}
    actions:
      - points: 2
  - id: dormant
    trigger: {{ inactive: {silence} }}
    actions:
      - tag: dormant
{poster}"#
    )
}

/// Writes the rules as an editor would (a hidden temporary file, then a rename), so the
/// watcher never reads half a file.
fn write_rules(dir: &std::path::Path, yaml: &str) {
    let temporary = dir.join(".rules.yaml.tmp");
    std::fs::write(&temporary, yaml).expect("write the rules");
    std::fs::rename(&temporary, dir.join("rules.yaml")).expect("rename the rules");
}

/// What one member's acknowledged events add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Acked {
    checkins: u64,
    purchases: u64,
    posts: u64,
    spend_cents: u64,
}

/// What one client saw.
#[derive(Debug, Default)]
struct Tally {
    members: BTreeMap<usize, Acked>,
    events: u64,
    accepted: u64,
    duplicates: u64,
    /// Tries answered 503 or 429, or not answered, each retried with the same batch.
    retries: u64,
    slowest: Duration,
}

/// Posts `body` until the daemon acknowledges it (a 503 or a failed request is tried
/// again, so an event the daemon had committed comes back as a duplicate); the
/// per-event statuses.
async fn post_acknowledged(
    http: &reqwest::Client,
    url: &str,
    body: String,
    tally: &mut Tally,
) -> Vec<String> {
    let began = Instant::now();
    loop {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "a batch was not acknowledged for two minutes"
        );
        match http.post(url).body(body.clone()).send().await {
            Ok(response) if response.status().is_success() => {
                // An answer cut off midway is tried again, like no answer.
                if let Ok(text) = response.text().await {
                    let answer: Value = serde_json::from_str(&text).expect("a JSON answer");
                    tally.slowest = tally.slowest.max(began.elapsed());
                    let results = answer["results"].as_array().expect("results");
                    return results
                        .iter()
                        .map(|r| r["status"].as_str().unwrap().to_string())
                        .collect();
                }
            }
            Ok(response) => {
                let status = response.status().as_u16();
                assert!(
                    status == 503 || status == 429,
                    "POST /v1/events answered {status}"
                );
            }
            Err(_) => {}
        }
        tally.retries += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One client: batches of `BATCH` events at its share of the offered rate, for its own
/// members (every `CLIENTS`-th), until `end`.
async fn client_load(plan: Plan, c: usize, base: String, began: Instant, end: Instant) -> Tally {
    let http = client();
    let url = format!("{base}/v1/events");
    let mut rng = StdRng::seed_from_u64(c as u64);
    let mine: Vec<usize> = (c..plan.members).step_by(CLIENTS).collect();
    let loud: Vec<usize> = mine.iter().copied().filter(|&i| i >= plan.quiet).collect();
    let mut tally = Tally::default();
    let mut ticker = tokio::time::interval(plan.interval());
    // A batch answered late is made up for at once: the offered rate holds unless the
    // daemon itself falls behind.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut seq = 0u64;
    while Instant::now() < end {
        ticker.tick().await;
        let quiet_over = began.elapsed() >= Duration::from_secs(plan.quiet_secs);
        let pool = if quiet_over { &loud } else { &mine };
        let mut batch = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            seq += 1;
            let i = pool[rng.gen_range(0..pool.len())];
            let id = format!("c{c}-{seq}");
            let (event, cents) = match rng.gen_range(0..10) {
                0..=3 => (
                    json!({"id": id, "type": "checkin", "member": member_id(i)}),
                    None,
                ),
                4..=5 => {
                    let cents = rng.gen_range(100..20_000u64);
                    let amount = format!("{}.{:02}", cents / 100, cents % 100);
                    let amount: Value = serde_json::from_str(&amount).unwrap();
                    let data = json!({"amount": amount, "order": format!("o-{id}")});
                    (
                        json!({"id": id, "type": "purchase", "member": member_id(i), "data": data}),
                        Some(cents),
                    )
                }
                _ => (
                    json!({"id": id, "type": "post", "member": member_id(i), "data": {"words": rng.gen_range(1..400)}}),
                    None,
                ),
            };
            batch.push((i, event, cents));
        }
        let events: Vec<&Value> = batch.iter().map(|(_, e, _)| e).collect();
        let body = serde_json::to_string(&events).unwrap();
        let statuses = post_acknowledged(&http, &url, body, &mut tally).await;
        assert_eq!(statuses.len(), batch.len());
        for ((i, event, cents), status) in batch.iter().zip(&statuses) {
            match status.as_str() {
                "accepted" => tally.accepted += 1,
                "duplicate" => tally.duplicates += 1,
                other => panic!("{event} was {other}"),
            }
            tally.events += 1;
            let acked = tally.members.entry(*i).or_default();
            match event["type"].as_str().unwrap() {
                "checkin" => acked.checkins += 1,
                "purchase" => {
                    acked.purchases += 1;
                    acked.spend_cents += cents.unwrap();
                }
                _ => acked.posts += 1,
            }
        }
    }
    tally
}

/// Every `RELOAD_EVERY` until `end`: rewrites the rules and asks for a reload, which
/// must be taken (200). The number of reloads.
async fn reloads(
    base: String,
    rules: std::path::PathBuf,
    smtp_port: u16,
    points_at: u64,
    end: Instant,
) -> u64 {
    let http = client();
    let mut done = 0;
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        if Instant::now() >= end {
            return done;
        }
        done += 1;
        write_rules(&rules, &rules_yaml(smtp_port, done, points_at));
        let response = http
            .post(format!("{base}/v1/rules/reload"))
            .send()
            .await
            .expect("the daemon answers a reload");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "reload {done} refused: {text}");
    }
}

/// The (rule, member) a soak message is for, from its subject `soak RULE MEMBER`.
fn addressed(message: &str) -> (String, String) {
    let subject = header(message, "Subject").expect("a Subject");
    let words: Vec<&str> = subject.split_whitespace().collect();
    assert!(
        words.len() == 3 && words[0] == "soak",
        "unexpected subject {subject:?}"
    );
    (words[1].to_string(), words[2].to_string())
}

/// Message-IDs received, by (rule, member).
fn by_recipient(messages: &[String]) -> BTreeMap<(String, String), Vec<String>> {
    let mut received: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for message in messages {
        let id = header(message, "Message-ID").expect("a Message-ID");
        received.entry(addressed(message)).or_default().push(id);
    }
    received
}

/// How many times the daemon's log says each outbox row was delivered.
fn sent_by_log(log: &str) -> BTreeMap<u64, usize> {
    let mut sends = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("message sent")) {
        let seq = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("seq="))
            .and_then(|seq| seq.parse().ok())
            .unwrap_or_else(|| panic!("no seq in {line:?}"));
        *sends.entry(seq).or_insert(0) += 1;
    }
    sends
}

/// A counter from a member's view, 0 when never counted.
fn counter(member: &Value, name: &str) -> f64 {
    member["counters"][name].as_f64().unwrap_or(0.0)
}

/// `name{label}` summed over every line of the Prometheus text that matches.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn summarize(samples: &[Sample], what: impl Fn(&Sample) -> u64) -> String {
    let first = samples.first().map_or(0, &what);
    let max = samples.iter().map(&what).max().unwrap_or(0);
    let last = samples.last().map_or(0, &what);
    format!(
        "start {:.0} MiB, max {:.0} MiB, end {:.0} MiB",
        mib(first),
        mib(max),
        mib(last)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_load_reloads_and_a_flapping_relay_nothing_acknowledged_is_lost_and_no_message_goes_twice(
) {
    let plan = Plan::from_env();
    let smtp_port = free_port();
    let rules = rules_dir(&rules_yaml(smtp_port, 0, plan.points_at));
    let data = tempfile::tempdir().unwrap();
    // The dispatcher's debug lines say which message went out when (`message sent`).
    let env = [("RUST_LOG", "info,rally::outbox=debug")];
    let mut daemon = Daemon::start(rules.path(), data.path(), &env);
    let sampler = Sampler::start(
        daemon.pid(),
        data.path().to_path_buf(),
        Duration::from_secs(5),
    );
    let outage = OUTAGE.min(Duration::from_secs((plan.secs / 4).max(3)));
    let relay = Flapping::start(smtp_port, outage);
    eprintln!(
        "soak: {plan:?}, relay up and down {} s at a time",
        outage.as_secs()
    );

    // The load, the reloads and the relay, for `secs`.
    let began = Instant::now();
    let end = began + Duration::from_secs(plan.secs);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client_load(plan, c, daemon.base.clone(), began, end)))
        .collect();
    let reloader = tokio::spawn(reloads(
        daemon.base.clone(),
        rules.path().to_path_buf(),
        smtp_port,
        plan.points_at,
        end,
    ));
    let mut acked: BTreeMap<usize, Acked> = BTreeMap::new();
    let mut total = Tally::default();
    for handle in clients {
        let tally = handle.await.expect("a client");
        acked.extend(tally.members);
        total.events += tally.events;
        total.accepted += tally.accepted;
        total.duplicates += tally.duplicates;
        total.retries += tally.retries;
        total.slowest = total.slowest.max(tally.slowest);
    }
    let load_secs = began.elapsed().as_secs_f64();
    let reloaded = reloader.await.expect("the reloader");
    let (server, earlier, outages) = relay.finish();

    // (a) Nothing acknowledged is missing: each member's counters are its acked events.
    let http = client();
    let read_began = Instant::now();
    let mut expected = BTreeSet::new();
    let mut quiet_not_dormant = Vec::new();
    for i in 0..plan.members {
        let id = member_id(i);
        let Some(want) = acked.get(&i) else { continue };
        let (status, member) = get_json(&http, &daemon.base, &format!("/v1/members/{id}"))
            .await
            .expect("the daemon answers");
        assert_eq!(status, 200, "{id}: {member}");
        let got = Acked {
            checkins: counter(&member, "events.checkin") as u64,
            purchases: counter(&member, "events.purchase") as u64,
            posts: counter(&member, "events.post") as u64,
            spend_cents: (counter(&member, "spend_total") * 100.0).round() as u64,
        };
        assert_eq!(
            got, *want,
            "{id}: the daemon's counters against the events it acknowledged"
        );
        if want.purchases >= 1 {
            expected.insert(("welcome".to_string(), id.clone()));
        }
        if member["points_lifetime"].as_u64().unwrap() >= plan.points_at {
            expected.insert(("points-milestone".to_string(), id.clone()));
        }
        let dormant = member["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "dormant");
        if i < plan.quiet && plan.expects_dormant() && !dormant {
            quiet_not_dormant.push(id);
        }
    }
    let text = http
        .get(daemon.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let accepted_metric = metric(&text, "rally_events_total{status=\"accepted\"}") as u64;
    let refused = metric(&text, "rally_rule_reloads_total{result=\"refused\"}") as u64;
    let reloads_metric = metric(&text, "rally_rule_reloads_total{result=\"ok\"}") as u64;

    let read_secs = read_began.elapsed().as_secs_f64();
    // (b) The relay stays up now: wait until every expected message arrived.
    let drain_began = Instant::now();
    let all = |server: &support::smtp::SmtpServer| {
        let mut messages = earlier.clone();
        messages.extend(server.messages());
        by_recipient(&messages)
    };
    let mut drained_secs = None;
    while drain_began.elapsed() < DRAIN {
        let received = all(&server);
        if expected.iter().all(|key| received.contains_key(key)) {
            drained_secs = Some(drain_began.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A little longer, for a late repeat to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = all(&server);
    let samples = sampler.finish();
    let status = daemon.signal_and_wait(libc::SIGTERM);
    assert!(
        status.success(),
        "rally run exited with {status}:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    let rows: Vec<OutboxRow> = Store::open(data.path())
        .unwrap()
        .outbox_scan(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(seq, bytes)| OutboxRow::decode(seq, &bytes).unwrap())
        .collect();

    let delivered: usize = received.values().map(Vec::len).sum();
    let repeats = delivered - received.len();
    // What the dispatcher says it delivered (`message sent`, once per delivery), and
    // the rows not recorded as sent.
    let sends = sent_by_log(&log);
    let twice: Vec<u64> = sends
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&seq, _)| seq)
        .collect();
    let unsent: Vec<&OutboxRow> = rows.iter().filter(|r| r.status != Status::Sent).collect();
    let sent_twice: usize = sends.values().map(|n| n - 1).sum();
    let left_open = unsent.iter().filter(|r| sends.contains_key(&r.seq)).count();
    let max_rss = samples.iter().map(|s| s.rss).max().unwrap_or(0);
    let disk = samples.last().map_or(0, |s| s.disk);
    eprintln!(
        "soak figures: {} s of load, {} events acknowledged ({} accepted, {} duplicate after a retry; {} retried tries), \
         {:.0} events/s (offered {}), slowest acknowledgement {:.2} s; {} reloads ({} by the daemon's count, {} refused); \
         {} relay outages; {} messages expected, {} distinct received, {} repeated deliveries, every expected message in {} s after the load (members read in {:.0} s); \
         {} deliveries of rows the dispatcher had already delivered, {} delivered rows left not `sent`, {} rows not `sent` in all; \
         RSS {}; data directory {}; {} delivery failures logged",
        plan.secs, total.events, total.accepted, total.duplicates, total.retries,
        total.events as f64 / load_secs, plan.rate, total.slowest.as_secs_f64(),
        reloaded, reloads_metric, refused, outages, expected.len(), received.len(), repeats, drained_secs.map_or("over DRAIN".to_string(), |s| format!("{s:.0}")), read_secs,
        sent_twice, left_open, unsent.len(),
        summarize(&samples, |s| s.rss), summarize(&samples, |s| s.disk),
        log.matches("delivery failed; will retry").count(),
    );
    // Every 30 s, and the last.
    let shown = samples
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 6 == 0 || *n + 1 == samples.len());
    for (_, sample) in shown {
        eprintln!(
            "soak sample: t={:>5.0} s rss={:>6.1} MiB data={:>7.1} MiB",
            sample.secs,
            mib(sample.rss),
            mib(sample.disk)
        );
    }

    // The evidence for each row delivered twice or left not `sent`.
    for seq in twice
        .iter()
        .take(5)
        .chain(unsent.iter().map(|r| &r.seq).take(5))
    {
        eprintln!(
            "soak: outbox row {seq}: {:?}",
            rows.iter().find(|r| r.seq == *seq)
        );
        for line in log.lines().filter(|l| l.contains(&format!("seq={seq} "))) {
            eprintln!("soak:   {line}");
        }
    }

    // (a) continued: the daemon counted as accepted exactly the events acknowledged.
    // Each acknowledged event was accepted once, on the try that acknowledged it or on
    // an earlier one whose answer was lost (then acknowledged as a duplicate).
    assert_eq!(
        accepted_metric, total.events,
        "events the daemon's metrics count as accepted"
    );
    assert!(
        reloaded >= 1 || plan.secs < RELOAD_EVERY.as_secs(),
        "no reload happened"
    );
    assert_eq!(refused, 0, "a reload was refused:\n{log}");
    assert!(
        quiet_not_dormant.is_empty(),
        "silent members never found dormant: {quiet_not_dormant:?}"
    );

    // (c) Memory and disk stayed within bounds.
    assert!(max_rss <= MAX_RSS, "RSS reached {:.0} MiB", mib(max_rss));
    let disk_bound = DISK_BASE + DISK_PER_EVENT * total.events;
    assert!(
        disk <= disk_bound,
        "the data directory holds {:.0} MiB for {} events",
        mib(disk),
        total.events
    );

    // (b) Each expected message arrived; none other; none twice under two Message-IDs.
    let missing: Vec<_> = expected
        .iter()
        .filter(|k| !received.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} messages never arrived: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let unexpected: Vec<_> = received.keys().filter(|k| !expected.contains(*k)).collect();
    assert!(
        unexpected.is_empty(),
        "messages nobody should have had: {unexpected:?}"
    );
    for (key, ids) in &received {
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "{key:?} got {} different messages: {ids:?}",
            distinct.len()
        );
    }
    let mut queued: BTreeMap<(String, String), usize> = BTreeMap::new();
    for row in &rows {
        let rule = row.rule.clone().expect("a rule's message");
        assert!(MESSAGE_RULES.contains(&rule.as_str()), "{row:?}");
        *queued
            .entry((rule, row.member.clone().unwrap()))
            .or_default() += 1;
    }
    assert_eq!(
        queued.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the outbox against the expected messages"
    );
    assert!(
        queued.values().all(|&n| n == 1),
        "queued twice: {:?}",
        queued.iter().filter(|(_, &n)| n > 1).collect::<Vec<_>>()
    );
    assert!(
        twice.is_empty(),
        "the dispatcher delivered outbox rows {twice:?} more than once (see above)"
    );
    // What is left are repeats of a message the relay stored and died before
    // confirming: at most the deliveries in flight at each kill.
    assert!(
        repeats <= 4 * outages,
        "{repeats} repeated deliveries in {outages} outages"
    );
    assert!(
        unsent.is_empty(),
        "{} outbox rows are not `sent` after the drain, {} of them delivered by the daemon's own log \
         (a restart would send those again): {:?}",
        unsent.len(),
        left_open,
        unsent.iter().map(|r| (r.seq, r.status, sends.get(&r.seq).copied().unwrap_or(0))).collect::<Vec<_>>()
    );
}
