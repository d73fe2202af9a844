//! Cluster mode (docs/cluster.md) against a real `nats-server -js` and real `rally run
//! --cluster` nodes on loopback: failover under load ends with the state `rally sim`
//! computes, a paused owner that lost its lease writes nothing more, settings are
//! recorded once.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rally::cluster::partition::Partition;
use serde_json::{json, Value};
use support::cluster_node::{owned, until_spread, ClusterNode};
use support::daemon::{client, example, get_json, post_until_acknowledged, rally};
use support::nats::Nats;

const LEASE_MS: u64 = 1500;

/// A day `offset` days after three days ago, as `YYYY-MM-DD`: recent enough for the
/// de-duplication window (`settings.retention.event_ids`, 30 days by default), which
/// a node's real clock measures event times against, and never in the future.
fn recent_day(offset: usize) -> String {
    let three_days_ago = chrono::Utc::now().date_naive() - chrono::Days::new(3);
    (three_days_ago + chrono::Days::new(offset as u64)).to_string()
}

/// Client `c`'s events, as in tests/daemon_crash.rs: each client owns its members, and
/// a member's events carry increasing times.
fn events_of(c: usize, count: usize, members: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let member = format!("m-{c}-{}", n % members);
            let at = format!(
                "{}T{:02}:{:02}:00Z",
                recent_day(n / 1440 % 2),
                n / 60 % 24,
                n % 60
            );
            let id = format!("e-{c}-{n}");
            if n % 7 == 6 {
                json!({"id": id, "type": "redeem", "member": member, "at": at,
                       "data": {"points": 40}})
            } else {
                json!({"id": id, "type": "purchase", "member": member, "at": at,
                       "data": {"amount": (n * 37 % 400) as f64 + 0.5}})
            }
        })
        .collect()
}

/// `rally sim` of `events` on purchase-ladder: the members, by id.
fn sim_members(events: &[Value]) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = rally()
        .arg("sim")
        .arg("--rules")
        .arg(example("purchase-ladder"))
        .arg("--events")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["rejected"], json!([]));
    doc["members"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, member)| (id.clone(), member.clone()))
        .collect()
}

/// Reads every expected member through `base` until all equal the simulation (the
/// owners apply moments after the acknowledgement), or fails with the differences.
async fn until_state_equals(
    http: &reqwest::Client,
    base: &str,
    expected: &BTreeMap<String, Value>,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut differences = Vec::new();
        for (id, want) in expected {
            match get_json(http, base, &format!("/v1/members/{id}")).await {
                Some((200, mut got)) => {
                    // The nodes step at their clock (the received time), `sim` at the
                    // events' `at`: only when the member was last active may differ.
                    assert!(got["last_active"].is_string(), "member {id}: {got}");
                    got["last_active"] = want["last_active"].clone();
                    if &got != want {
                        differences.push(format!("{id}: got {got}, want {want}"));
                    }
                }
                other => differences.push(format!("{id}: {other:?}")),
            }
        }
        if differences.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the state never equalled the simulation:\n{}",
            differences.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_lose_one_mid_load_and_end_with_the_state_of_the_simulation() {
    const PARTITIONS: u32 = 12;
    const CLIENTS: usize = 3;
    const EVENTS_PER_CLIENT: usize = 600;
    const BATCH: usize = 25;
    let nats = Nats::start();
    let rules = example("purchase-ladder");
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |n: usize| {
        ClusterNode::start(
            &nats.url,
            &format!("n{n}"),
            &rules,
            dirs[n].path(),
            PARTITIONS,
            LEASE_MS,
        )
    };
    let mut nodes: Vec<ClusterNode> = (0..3).map(start).collect();
    let http = client();
    let all_bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    until_spread(&http, &all_bases, PARTITIONS).await;

    let bases = Arc::new(RwLock::new(all_bases.clone()));
    let posted = Arc::new(AtomicUsize::new(0));
    let events: Vec<Vec<Value>> = (0..CLIENTS)
        .map(|c| events_of(c, EVENTS_PER_CLIENT, 10))
        .collect();
    let mut clients = Vec::new();
    for (c, mine) in events.iter().cloned().enumerate() {
        let (http, bases, posted) = (http.clone(), Arc::clone(&bases), Arc::clone(&posted));
        clients.push(tokio::spawn(async move {
            for (i, batch) in mine.chunks(BATCH).enumerate() {
                // Round robin over the live nodes: any node takes any member's events.
                let pick = || {
                    let bases = bases.read().unwrap();
                    bases[(c + i) % bases.len()].clone()
                };
                let statuses = post_until_acknowledged(&http, pick, batch).await;
                // A batch cut off by the kill is sent again: its stored events come
                // back as duplicates, never as rejected.
                assert!(
                    statuses.iter().all(|s| s == "accepted" || s == "duplicate"),
                    "{statuses:?}"
                );
                posted.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // SIGKILL node 2 halfway through the load.
    let batches = CLIENTS * EVENTS_PER_CLIENT.div_ceil(BATCH);
    while posted.load(Ordering::SeqCst) < batches / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nodes[2].kill();
    bases.write().unwrap().retain(|b| *b != all_bases[2]);
    for client in clients {
        client.await.unwrap();
    }

    // Its partitions moved to the two survivors, which hold all of them.
    let survivors = vec![all_bases[0].clone(), all_bases[1].clone()];
    until_spread(&http, &survivors, PARTITIONS).await;
    let all_events: Vec<Value> = events.concat();
    let expected = sim_members(&all_events);
    assert_eq!(expected.len(), CLIENTS * 10);
    // Read through one node: the members it does not own are forwarded to their owner.
    until_state_equals(&http, &all_bases[0], &expected).await;

    // The dead node comes back on its data directory and gets a share again.
    nodes[2] = start(2);
    let back: Vec<String> = vec![
        all_bases[0].clone(),
        all_bases[1].clone(),
        nodes[2].base.clone(),
    ];
    // Every partition is held as soon as the new node has some of them; the others
    // hand back their surplus one round of the ownership loop after another.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = until_spread(&http, &back, PARTITIONS).await;
        if held.iter().all(|h| h.len() == 4) {
            break;
        }
        assert!(Instant::now() < deadline, "not rebalanced: {held:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_state_equals(&http, &nodes[2].base, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_owner_that_lost_its_lease_writes_nothing_more_to_the_partition() {
    const PARTITIONS: u32 = 4;
    let nats = Nats::start();
    let rules = example("purchase-ladder");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = ClusterNode::start(&nats.url, "a", &rules, dir_a.path(), PARTITIONS, LEASE_MS);
    let b = ClusterNode::start(&nats.url, "b", &rules, dir_b.path(), PARTITIONS, LEASE_MS);
    let http = client();
    let held = until_spread(&http, &[a.base.clone(), b.base.clone()], PARTITIONS).await;
    // A member of a partition that `a` owns.
    let member = (0..)
        .map(|n| format!("m-{n}"))
        .find(|id| held[0].contains(&Partition::of(id, PARTITIONS).0))
        .unwrap();
    let partition = Partition::of(&member, PARTITIONS).0;
    let purchases = |from: usize, to: usize| -> Vec<Value> {
        (from..to)
            .map(|n| {
                json!({"id": format!("e-{n}"), "type": "purchase", "member": member,
                            "at": format!("{}T10:{n:02}:00Z", recent_day(0)), "data": {"amount": 10}})
            })
            .collect()
    };
    post_until_acknowledged(&http, || a.base.clone(), &purchases(0, 10)).await;
    until_purchases(&http, &a.base, &member, 10).await;
    let before = owned(&http, &a.base)
        .await
        .into_iter()
        .find(|(p, _)| *p == partition)
        .map(|(_, applied)| applied)
        .expect("a owns the partition");

    a.signal(libc::SIGSTOP);
    // `b` takes the partition once a's lease expired, and applies what comes next.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !owned(&http, &b.base)
        .await
        .iter()
        .any(|(p, _)| *p == partition)
    {
        assert!(
            Instant::now() < deadline,
            "b never took partition {partition}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    post_until_acknowledged(&http, || b.base.clone(), &purchases(10, 15)).await;
    until_purchases(&http, &b.base, &member, 15).await;
    let log_before_waking = a.log().len();
    a.signal(libc::SIGCONT);

    // Woken, `a` never answers from the store it no longer owns: it forwards to `b`
    // (or, once it owns the partition again, answers after catching up).
    for _ in 0..20 {
        if let Some((200, view)) = get_json(&http, &a.base, &format!("/v1/members/{member}")).await
        {
            assert_eq!(view["counters"]["purchases"], 15, "a stale read: {view}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What `a`'s store holds of the partition: reported by `a` when it takes the
    // partition again, or read from its directory once `a` is gone.
    let opened = format!("applying the partition partition={partition} applied=");
    let deadline = Instant::now() + Duration::from_millis(6 * LEASE_MS);
    let reopened = loop {
        let log = a.log();
        if let Some(line) = log[log_before_waking..]
            .lines()
            .find(|l| l.contains(&opened))
        {
            let applied = line.split(&opened).nth(1).unwrap();
            break Some(
                applied
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let held_by_a = match reopened {
        Some(applied) => applied,
        None => {
            a.kill();
            stored_applied(
                &dir_a
                    .path()
                    .join("partitions")
                    .join(format!("{partition:04}")),
            )
        }
    };
    assert_eq!(
        held_by_a,
        before,
        "a wrote to partition {partition} after losing it:\n{}",
        a.log()
    );
    until_purchases(&http, &b.base, &member, 15).await;
}

/// The stream sequence a partition store records as applied.
fn stored_applied(dir: &Path) -> u64 {
    let store = rally::store::Store::open(dir).unwrap();
    let bytes = store
        .meta_get(rally::cluster::apply::APPLIED_META)
        .unwrap()
        .unwrap();
    u64::from_be_bytes(bytes.try_into().unwrap())
}

async fn until_purchases(http: &reqwest::Client, base: &str, member: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, view)) = get_json(http, base, &format!("/v1/members/{member}")).await {
            if view["counters"]["purchases"] == count {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{member} never had {count} purchases at {base}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_sent_twice_to_two_nodes_is_answered_duplicate() {
    let nats = Nats::start();
    let rules = example("purchase-ladder");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ClusterNode::start(&nats.url, "a", &rules, dir_a.path(), 4, LEASE_MS);
    let b = ClusterNode::start(&nats.url, "b", &rules, dir_b.path(), 4, LEASE_MS);
    let http = client();
    let event = json!({"id": "once", "type": "purchase", "member": "m", "data": {"amount": 10},
                       "at": format!("{}T10:00:00Z", recent_day(0))});
    let bad = json!({"id": "bad", "type": "purchase"});
    let first = post_until_acknowledged(&http, || a.base.clone(), &[event.clone(), bad]).await;
    assert_eq!(first, ["accepted", "rejected"]);
    let second = post_until_acknowledged(&http, || b.base.clone(), &[event]).await;
    assert_eq!(second, ["duplicate"]);
    until_purchases(&http, &b.base, "m", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_route_requires_it_and_forwarded_reads_carry_it() {
    let nats = Nats::start();
    let rules = example("purchase-ladder");
    let env = [("RALLY_TOKEN", "s3cret")];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ClusterNode::start_with_env(&nats.url, "a", &rules, dir_a.path(), 4, LEASE_MS, &env);
    let b = ClusterNode::start_with_env(&nats.url, "b", &rules, dir_b.path(), 4, LEASE_MS, &env);
    let http = client();
    let event = json!({"id": "t1", "type": "purchase", "member": "m", "data": {"amount": 10},
                       "at": format!("{}T10:00:00Z", recent_day(0))});
    for (method, path) in [
        ("POST", "/v1/events"),
        ("GET", "/v1/members/m"),
        ("GET", "/v1/cluster"),
        ("GET", "/metrics"),
    ] {
        let url = format!("{}{path}", a.base);
        let request = match method {
            "POST" => http
                .post(&url)
                .header("content-type", "application/json")
                .body(event.to_string()),
            _ => http.get(&url),
        };
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 401, "{method} {path} without the token");
    }
    let posted = http
        .post(format!("{}/v1/events", a.base))
        .bearer_auth("s3cret")
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    // Liveness stays open to probes, as in the single process.
    let health = http
        .get(format!("{}/healthz", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Both nodes answer the read: the owner from its store, the other by forwarding it
    // with the token (the owner would answer 401 to a forward without it).
    let deadline = Instant::now() + Duration::from_secs(60);
    for base in [&a.base, &b.base] {
        loop {
            let answer = http
                .get(format!("{base}/v1/members/m"))
                .bearer_auth("s3cret")
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status == 200 && body["counters"]["purchases"] == json!(1) {
                break;
            }
            assert_ne!(status, 401, "{base}: {body}");
            assert!(Instant::now() < deadline, "{base}: {status} {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[test]
fn a_node_refuses_a_reachable_address_without_a_token() {
    let data = tempfile::tempdir().unwrap();
    // Refused before NATS is reached: no server is needed to see it.
    let out = support::daemon::rally_within_a_minute(
        &[
            "run",
            "--rules",
            example("purchase-ladder").to_str().unwrap(),
            "--data",
            data.path().to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
            "--cluster",
            "nats://127.0.0.1:1",
            "--node",
            "a",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("without RALLY_TOKEN"), "{stderr}");
}

#[test]
fn a_node_given_another_partition_count_than_the_recorded_one_refuses_to_start() {
    let nats = Nats::start();
    let rules = example("purchase-ladder");
    let dir_a = tempfile::tempdir().unwrap();
    let _a = ClusterNode::start(&nats.url, "a", &rules, dir_a.path(), 4, LEASE_MS);
    let dir_b = tempfile::tempdir().unwrap();
    let out = support::daemon::rally_within_a_minute(
        &[
            "run",
            "--rules",
            rules.to_str().unwrap(),
            "--data",
            dir_b.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--cluster",
            &nats.url,
            "--node",
            "b",
            "--partitions",
            "8",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--partitions 8, but this cluster was created with 4 partitions"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rules_run_in_cluster_mode() {
    let nats = Nats::start();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let dir = tempfile::tempdir().unwrap();
    let node = ClusterNode::start(&nats.url, "a", &shipped, dir.path(), 4, LEASE_MS);
    let http = client();
    until_spread(&http, std::slice::from_ref(&node.base), 4).await;
    let events = [
        json!({"id": "j-1", "type": "join", "member": "m"}),
        json!({"id": "p-1", "type": "post", "member": "m"}),
        json!({"id": "b-1", "type": "purchase", "member": "m", "data": {"amount": 120}}),
    ];
    let statuses = post_until_acknowledged(&http, || node.base.clone(), &events).await;
    assert_eq!(statuses, ["accepted", "accepted", "accepted"]);
    support::until(Duration::from_secs(30), async || {
        match get_json(&http, &node.base, "/v1/members/m").await {
            Some((200, view))
                if view["counters"]["posts_week"] == 1
                    && view["points_lifetime"].as_i64() > Some(0) =>
            {
                Ok(())
            }
            read => Err(format!("m was never applied: {read:?}\n{}", node.log())),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_fires_at_its_time_through_a_tick_without_another_event() {
    let nats = Nats::start();
    let rules = support::daemon::rules_dir(
        "rules:\n  - id: quiet\n    trigger: { inactive: 2s }\n    actions:\n      - tag: quiet\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let node = ClusterNode::start(&nats.url, "a", rules.path(), dir.path(), 4, LEASE_MS);
    let http = client();
    // No `at`: the event happened when the node received it.
    let event = json!({"id": "e-1", "type": "checkin", "member": "m"});
    post_until_acknowledged(&http, || node.base.clone(), &[event]).await;
    // Nothing else reaches the partition: only the owner's tick can run the timer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, view)) = get_json(&http, &node.base, "/v1/members/m").await {
            if view["tags"] == json!(["quiet"]) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the silence never fired:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One rule: a purchase is worth `amount` points.
fn purchase_rules(amount: u32) -> String {
    format!(
        "rules:\n  - id: buy\n    trigger: {{ event: purchase }}\n    actions:\n      - points: {{ amount: {amount}, reason: buy }}\n"
    )
}

/// One purchase for each of `members` members, ids tagged with `phase`.
fn purchases(phase: &str, members: usize) -> Vec<Value> {
    (0..members)
        .map(|m| json!({"id": format!("e-{phase}-{m}"), "type": "purchase", "member": format!("m-{m}")}))
        .collect()
}

/// The rules version of every partition the nodes at `bases` apply under a lease.
async fn partition_rules(http: &reqwest::Client, bases: &[&str]) -> Vec<String> {
    let mut versions = Vec::new();
    for base in bases {
        let Some((200, view)) = get_json(http, base, "/v1/cluster").await else {
            continue;
        };
        for p in view["owned"].as_array().unwrap() {
            if p["lease_held"] == true {
                versions.push(p["rules"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    versions
}

/// Waits until every one of `members` members has `points`, read through `base`.
async fn until_points(http: &reqwest::Client, base: &str, members: usize, points: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut wrong = Vec::new();
        for m in 0..members {
            match get_json(http, base, &format!("/v1/members/m-{m}")).await {
                Some((200, view)) if view["points"] == json!(points) => {}
                other => wrong.push(format!("m-{m}: {other:?}")),
            }
        }
        if wrong.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "members never reached {points} points:\n{}",
            wrong.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rules_change_on_one_node_reaches_every_partition_through_the_stream() {
    const PARTITIONS: u32 = 4;
    const MEMBERS: usize = 12;
    let nats = Nats::start();
    let files: Vec<tempfile::TempDir> = (0..2)
        .map(|_| support::daemon::rules_dir(&purchase_rules(10)))
        .collect();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |n: usize| {
        ClusterNode::start(
            &nats.url,
            &format!("n{n}"),
            files[n].path(),
            dirs[n].path(),
            PARTITIONS,
            LEASE_MS,
        )
    };
    let mut nodes = [start(0), start(1)];
    let http = client();
    let bases = [nodes[0].base.clone(), nodes[1].base.clone()];
    until_spread(&http, &bases, PARTITIONS).await;
    for phase in ["a", "b"] {
        post_until_acknowledged(&http, || bases[0].clone(), &purchases(phase, MEMBERS)).await;
    }
    until_points(&http, &bases[0], MEMBERS, 20).await;
    let before = partition_rules(&http, &[&bases[0], &bases[1]]).await;
    assert_eq!(before.len(), PARTITIONS as usize);
    assert!(before.iter().all(|v| *v == before[0]), "{before:?}");

    // Node 1's files change: every partition, on both nodes, switches to them.
    std::fs::write(files[1].path().join("rules.yaml"), purchase_rules(25)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let now = partition_rules(&http, &[&bases[0], &bases[1]]).await;
        if now.len() == PARTITIONS as usize && now.iter().all(|v| *v != before[0] && *v == now[0]) {
            break now[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the partitions never all switched: {now:?}\n{}",
            nodes[1].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    post_until_acknowledged(&http, || bases[0].clone(), &purchases("c", MEMBERS)).await;
    until_points(&http, &bases[0], MEMBERS, 45).await;

    // Files that do not load change nothing, and the node says why.
    std::fs::write(files[0].path().join("rules.yaml"), "rules: [").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(nodes[0].log().contains("do not load"), "{}", nodes[0].log());
    let now = partition_rules(&http, &[&bases[0], &bases[1]]).await;
    assert!(now.iter().all(|v| *v == after), "{now:?}");

    // Node 1 dies: node 0 applies its partitions again from the stream, where the
    // rules message sits between the second and third purchases, so the replay ends
    // where the live run did.
    nodes[1].kill();
    until_spread(&http, &bases[..1], PARTITIONS).await;
    until_points(&http, &bases[0], MEMBERS, 45).await;
    let now = partition_rules(&http, &[&bases[0]]).await;
    assert!(now.iter().all(|v| *v == after), "{now:?}");

    // Back with the files the cluster runs, node 1 publishes nothing, takes its share
    // again and resumes its own stores under the rules they recorded.
    nodes[1] = start(1);
    let back = [bases[0].clone(), nodes[1].base.clone()];
    until_spread(&http, &back, PARTITIONS).await;
    post_until_acknowledged(&http, || back[1].clone(), &purchases("d", MEMBERS)).await;
    until_points(&http, &back[1], MEMBERS, 70).await;
    assert!(
        !nodes[1].log().contains("rules published"),
        "{}",
        nodes[1].log()
    );
    let now = partition_rules(&http, &[&back[0], &back[1]]).await;
    assert!(now.iter().all(|v| *v == after), "{now:?}");
}

/// The value of the Prometheus sample `name` (with its labels) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_reports_its_health_and_metrics_and_degrades_without_nats() {
    const PARTITIONS: u32 = 3;
    let nats = Nats::start();
    let rules = support::daemon::rules_dir(&purchase_rules(10));
    let dir = tempfile::tempdir().unwrap();
    let node = ClusterNode::start(
        &nats.url,
        "a",
        rules.path(),
        dir.path(),
        PARTITIONS,
        LEASE_MS,
    );
    let http = client();
    until_spread(&http, std::slice::from_ref(&node.base), PARTITIONS).await;
    let mut batch = purchases("a", 5);
    batch.push(json!({"id": "e-a-0", "type": "purchase", "member": "m-0"}));
    batch.push(json!({"id": "bad", "type": "purchase"}));
    let statuses = post_until_acknowledged(&http, || node.base.clone(), &batch).await;
    assert_eq!(
        statuses.iter().filter(|s| *s == "accepted").count(),
        5,
        "{statuses:?}"
    );
    until_points(&http, &node.base, 5, 10).await;

    let (status, health) = get_json(&http, &node.base, "/healthz").await.unwrap();
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["nats"], "connected");
    assert_eq!(health["partitions_applied"], PARTITIONS);
    assert_eq!(health["last_apply_error"], Value::Null);

    let text = http
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&text, r#"rally_events_total{status="accepted"}"#),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"rally_events_total{status="duplicate"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"rally_events_total{status="rejected"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "rally_cluster_partitions_applied"),
        Some(f64::from(PARTITIONS))
    );
    let mut sequences = 0.0;
    for p in 0..PARTITIONS {
        let label = format!(r#"{{partition="{p}"}}"#);
        sequences += sample(&text, &format!("rally_cluster_partition_sequence{label}")).unwrap();
        assert_eq!(
            sample(&text, &format!("rally_cluster_partition_caught_up{label}")),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, &format!("rally_cluster_partition_lease_held{label}")),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, &format!("rally_cluster_partition_snapshot{label}")),
            Some(0.0),
            "no snapshot before --snapshot-every messages"
        );
    }
    // Every stored event is in some partition: the last sequences reach the fifth.
    assert!(sequences >= 5.0, "{text}");
    assert!(text.contains("rally_cluster_group_seconds_count"), "{text}");

    // Without NATS the node can neither take events nor keep its leases: degraded.
    drop(nats);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((503, health)) = get_json(&http, &node.base, "/healthz").await {
            assert_eq!(health["status"], "degraded");
            assert_ne!(health["nats"], "connected");
            break;
        }
        assert!(Instant::now() < deadline, "never degraded:\n{}", node.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stored messages in the cluster's stream (events, ticks, rules and settled
/// messages alike).
async fn stream_messages(nats: &str) -> u64 {
    let client = async_nats::connect(nats).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream.get_stream("RALLY").await.unwrap();
    stream.info().await.unwrap().state.messages
}

/// Waits until `hook` has received `count` requests in all, and returns the
/// idempotency key of each.
async fn until_delivered(
    hook: &mut support::http::HookServer,
    keys: &mut Vec<String>,
    count: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while keys.len() < count {
        for request in hook.received_so_far() {
            let key = request.headers.get("idempotency-key").unwrap();
            keys.push(key.to_str().unwrap().to_string());
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} messages delivered",
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_delivered_before_a_partition_moves_are_not_sent_again_by_its_new_owner() {
    const PARTITIONS: u32 = 4;
    const MEMBERS: usize = 10;
    let nats = Nats::start();
    let mut hook = support::http::HookServer::start(support::http::Reply::Status(200)).await;
    let rules = support::daemon::rules_dir(&format!(
        r#"
channels:
  hook: {{ kind: webhook, url: "{}" }}
templates:
  thanks:
    subject: "Thanks"
    body: "Thanks, {{{{ member.id }}}}"
rules:
  - id: thanks
    trigger: {{ event: purchase }}
    actions:
      - send: {{ template: thanks, channel: hook }}
"#,
        hook.url
    ));
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |n: usize| {
        ClusterNode::start(
            &nats.url,
            &format!("n{n}"),
            rules.path(),
            dirs[n].path(),
            PARTITIONS,
            LEASE_MS,
        )
    };
    let mut nodes = [start(0), start(1)];
    let http = client();
    let bases = [nodes[0].base.clone(), nodes[1].base.clone()];
    until_spread(&http, &bases, PARTITIONS).await;

    // One message per member, each member's partition delivering its own.
    let first: Vec<Value> = (0..MEMBERS)
        .map(|m| json!({"id": format!("a-{m}"), "type": "purchase", "member": format!("m-{m}")}))
        .collect();
    post_until_acknowledged(&http, || bases[0].clone(), &first).await;
    let mut keys = Vec::new();
    until_delivered(&mut hook, &mut keys, MEMBERS).await;
    // How each delivery ended is in the stream too, beside the events.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_messages(&nats.url).await < 2 * MEMBERS as u64 {
        assert!(
            Instant::now() < deadline,
            "the deliveries' outcomes never reached the stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Node 1 dies; node 0 applies its partitions again from the stream, queues their
    // messages again with the steps, and learns from the stream they went out.
    nodes[1].kill();
    until_spread(&http, &bases[..1], PARTITIONS).await;
    let second: Vec<Value> = (0..MEMBERS)
        .map(|m| json!({"id": format!("b-{m}"), "type": "purchase", "member": format!("n-{m}")}))
        .collect();
    post_until_acknowledged(&http, || bases[0].clone(), &second).await;
    until_delivered(&mut hook, &mut keys, 2 * MEMBERS).await;
    // Anything sent again would come within moments of the new messages.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    until_delivered(&mut hook, &mut keys, 2 * MEMBERS).await;
    let mut distinct = keys.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        (keys.len(), distinct.len()),
        (2 * MEMBERS, 2 * MEMBERS),
        "sent again after the move: {keys:?}\n{}",
        nodes[0].log()
    );
}

/// The snapshot sequence of every partition the nodes at `bases` apply.
async fn partition_snapshots(http: &reqwest::Client, bases: &[&str]) -> Vec<u64> {
    let mut snapshots = Vec::new();
    for base in bases {
        if let Some((200, view)) = get_json(http, base, "/v1/cluster").await {
            for p in view["owned"].as_array().unwrap() {
                snapshots.push(p["snapshot"].as_u64().unwrap_or(0));
            }
        }
    }
    snapshots
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_owner_restores_the_latest_snapshot_when_the_stream_before_it_is_gone() {
    const PARTITIONS: u32 = 4;
    const MEMBERS: usize = 12;
    let nats = Nats::start();
    let rules = support::daemon::rules_dir(&purchase_rules(10));
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |n: usize| {
        ClusterNode::start_with(
            &nats.url,
            &format!("n{n}"),
            rules.path(),
            dirs[n].path(),
            PARTITIONS,
            LEASE_MS,
            &[],
            &["--snapshot-every", "5"],
        )
    };
    let mut nodes = [start(0), start(1)];
    let http = client();
    let bases = [nodes[0].base.clone(), nodes[1].base.clone()];
    until_spread(&http, &bases, PARTITIONS).await;
    for phase in ["a", "b", "c"] {
        post_until_acknowledged(&http, || bases[0].clone(), &purchases(phase, MEMBERS)).await;
    }
    until_points(&http, &bases[0], MEMBERS, 30).await;
    // Every partition has a snapshot: each applied more than five messages.
    let deadline = Instant::now() + Duration::from_secs(30);
    let snapshots = loop {
        let snapshots = partition_snapshots(&http, &[&bases[0], &bases[1]]).await;
        if snapshots.len() == PARTITIONS as usize && snapshots.iter().all(|&s| s > 0) {
            break snapshots;
        }
        assert!(
            Instant::now() < deadline,
            "not every partition has a snapshot: {snapshots:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The stream before the oldest snapshot is trimmed (as a retention limit would),
    // then node 1 dies: node 0 cannot rebuild its partitions from the stream alone.
    let oldest = *snapshots.iter().min().unwrap();
    let jetstream = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let stream = jetstream.get_stream("RALLY").await.unwrap();
    let purged = stream.purge().sequence(oldest).await.unwrap();
    assert!(
        purged.purged > 0,
        "nothing trimmed before sequence {oldest}"
    );
    nodes[1].kill();
    until_spread(&http, &bases[..1], PARTITIONS).await;
    post_until_acknowledged(&http, || bases[0].clone(), &purchases("d", MEMBERS)).await;
    until_points(&http, &bases[0], MEMBERS, 40).await;
    assert!(
        nodes[0]
            .log()
            .contains("restored the partition from its snapshot"),
        "{}",
        nodes[0].log()
    );
}
