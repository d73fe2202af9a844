//! What every member shares, across the partitions of a real cluster (docs/cluster.md,
//! "Global state"): a campaign budget is never paid beyond, and what it paid adds up
//! with what its pool handed each partition, a
//! reward's stock is handed out once, tickets get numbers no other partition uses and
//! a ticket command finds its ticket — through a failover and a rejoin, with a real
//! `nats-server -js` and real `rally run --cluster` nodes; a member's ledger and
//! history are read from its owner through any node; a draw picks its winners among
//! the members of every partition, and a leaderboard ranks them all; an owner whose
//! partition's grant log another node claimed records no more grants.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rally::cluster::partition::Partition;
use serde_json::{json, Value};
use support::cluster_node::{until_spread, ClusterNode};
use support::daemon::{client, get_json, post_until_acknowledged};
use support::nats::Nats;

const LEASE_MS: u64 = 1500;
const PARTITIONS: u32 = 4;
const MEMBERS: usize = 40;
const BUDGET: i64 = 1000;
const MUGS: usize = 5;

const RULES: &str = r#"
campaigns:
  - id: launch
    phases:
      - { name: on, start: "2020-01-01T00:00:00" }
    budget: { points: 1000 }
rewards:
  - { id: mug, name: Mug, cost: 1, stock: 5 }
channels:
  staff: { kind: log }
escalations:
  - id: support
    levels:
      - { notify: { channel: staff, to: team } }
rules:
  - id: buy
    trigger: { event: purchase }
    during: { campaign: launch }
    actions: [ { points: 30 } ]
  - id: got-mug
    trigger: { event: redeem }
    if: 'event.data.result == "granted"'
    actions: [ { tag: mug } ]
  - id: complaint
    trigger: { event: complaint }
    actions:
      - escalate: { policy: support, severity: normal, summary: complaint }
  - id: acked
    trigger: { event: rally.ticket.ack }
    actions: [ { tag: acked } ]
"#;

/// Node `n` (named `n<n>`) of the cluster on `nats`, on `rules`, its data in `dir`.
fn node(nats: &Nats, n: usize, rules: &std::path::Path, dir: &tempfile::TempDir) -> ClusterNode {
    let name = format!("n{n}");
    ClusterNode::start(&nats.url, &name, rules, dir.path(), PARTITIONS, LEASE_MS)
}

fn purchases(round: &str) -> Vec<Value> {
    (0..MEMBERS)
        .map(|m| json!({"id": format!("{round}-{m}"), "type": "purchase", "member": format!("m-{m}")}))
        .collect()
}

/// Every member's view read through `base`, once all `MEMBERS` exist and `settled`
/// holds for the lot.
async fn members_when(
    http: &reqwest::Client,
    base: &str,
    what: &str,
    settled: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut members = BTreeMap::new();
        for m in 0..MEMBERS {
            let id = format!("m-{m}");
            if let Some((200, view)) = get_json(http, base, &format!("/v1/members/{id}")).await {
                members.insert(id, view);
            }
        }
        if members.len() == MEMBERS && settled(&members) {
            return members;
        }
        assert!(
            Instant::now() < deadline,
            "never {what}: {} members read\n{members:#?}",
            members.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn awarded(members: &BTreeMap<String, Value>) -> i64 {
    members
        .values()
        .map(|m| m["points_lifetime"].as_i64().unwrap())
        .sum()
}

fn tagged(members: &BTreeMap<String, Value>, tag: &str) -> Vec<String> {
    members
        .iter()
        .filter(|(_, m)| m["tags"].as_array().unwrap().contains(&json!(tag)))
        .map(|(id, _)| id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budgets_stock_and_ticket_numbers_hold_across_partitions_through_a_failover() {
    let nats = Nats::start();
    let rules = support::daemon::rules_dir(RULES);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |n: usize| node(&nats, n, rules.path(), &dirs[n]);
    let mut nodes = [start(0), start(1)];
    let http = client();
    let bases = [nodes[0].base.clone(), nodes[1].base.clone()];
    until_spread(&http, &bases, PARTITIONS).await;

    // More is asked of the budget than it holds: the partitions split it between
    // them, and never pay out beyond it.
    post_until_acknowledged(&http, || bases[0].clone(), &purchases("a")).await;
    let first = members_when(&http, &bases[0], "applied the first purchases", |_| true).await;
    // What partitions hold and do not spend is at most what they were last given
    // beyond their need: 1/(2·partitions) of what was left.
    let paid = awarded(&first);
    assert!(
        (BUDGET / 2..=BUDGET).contains(&paid),
        "paid {paid} of a budget of {BUDGET}"
    );

    // Node 1 dies: node 0 replays its partitions from the stream, with the grants they
    // were given where they were given, and ends with the very same members.
    nodes[1].kill();
    until_spread(&http, &bases[..1], PARTITIONS).await;
    let replayed = members_when(&http, &bases[0], "replayed the moved partitions", |m| {
        *m == first
    })
    .await;
    assert_eq!(replayed, first);

    // It comes back and takes its share of partitions again.
    nodes[1] = start(1);
    let bases = [nodes[0].base.clone(), nodes[1].base.clone()];
    until_spread(&http, &bases, PARTITIONS).await;

    // Every member buys again: more is asked than any partition holds. Eight members
    // with points ask for one of five mugs, and six complain.
    let mut events = purchases("b");
    let redeemers: Vec<&String> = first
        .iter()
        .filter(|(_, m)| m["points"].as_i64().unwrap() > 0)
        .map(|(id, _)| id)
        .take(8)
        .collect();
    assert_eq!(redeemers.len(), 8);
    for (n, member) in redeemers.iter().enumerate() {
        events.push(
            json!({"id": format!("r-{n}"), "type": "redeem", "member": member,
                           "data": {"reward": "mug"}}),
        );
    }
    for m in 0..6 {
        events
            .push(json!({"id": format!("c-{m}"), "type": "complaint", "member": format!("m-{m}")}));
    }
    post_until_acknowledged(&http, || bases[1].clone(), &events).await;
    let settled = members_when(
        &http,
        &bases[1],
        "applied the second purchases and five mugs",
        |m| m.values().all(|m| m["counters"]["purchases"] == 2) && tagged(m, "mug").len() == MUGS,
    )
    .await;
    let paid = awarded(&settled);
    assert!(paid <= BUDGET, "paid {paid} of a budget of {BUDGET}");
    // The pool handed out the whole budget (demand was more than twice it), each
    // part is in a partition's grant log, and no partition paid more than it got.
    let (taken, granted) = budget_accounts(&nats.url).await;
    assert_eq!(taken, BUDGET);
    assert_eq!(granted.values().sum::<i64>(), taken, "{granted:?}");
    let mut paid_by = BTreeMap::new();
    for (id, member) in &settled {
        let partition = Partition::of(id, PARTITIONS).0;
        *paid_by.entry(partition).or_insert(0) += member["points_lifetime"].as_i64().unwrap();
    }
    for (partition, paid) in &paid_by {
        let got = granted.get(partition).copied().unwrap_or(0);
        assert!(
            *paid <= got,
            "partition {partition} paid {paid} of {got} granted"
        );
    }
    assert!(tagged(&settled, "mug")
        .iter()
        .all(|id| redeemers.contains(&id)));

    // Each partition numbers its tickets from runs of 100 of its own: an
    // acknowledgement by number goes to the partition holding the ticket.
    let mut acks: Vec<Value> = Vec::new();
    for run in 0..PARTITIONS as u64 {
        for n in 1..=6 {
            let ticket = format!("T-{}", run * 100 + n);
            acks.push(
                json!({"id": format!("ack-{ticket}"), "type": "rally.ticket.ack",
                             "data": {"ticket": ticket}}),
            );
        }
    }
    acks.push(json!({"id": "ack-none", "type": "rally.ticket.ack", "data": {"ticket": "T-9999"}}));
    let text = http
        .post(format!("{}/v1/events", bases[0]))
        .body(Value::from(acks).to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    let results = answer["results"].as_array().unwrap();
    let last = results.last().unwrap();
    assert_eq!(last["status"], "rejected", "{answer}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("no ticket \"T-9999\""),
        "{answer}"
    );
    let acked = members_when(&http, &bases[0], "acknowledged six tickets", |m| {
        tagged(m, "acked").len() == 6
    })
    .await;
    let complainers: Vec<String> = (0..6).map(|m| format!("m-{m}")).collect();
    assert_eq!(tagged(&acked, "acked"), {
        let mut sorted = complainers.clone();
        sorted.sort();
        sorted
    });
    assert_eq!(awarded(&acked), paid);

    // A member's ledger and history are read from the owner, whichever node is asked.
    for m in 0..MEMBERS {
        let id = format!("m-{m}");
        let mut answers = Vec::new();
        for base in &bases {
            let ledger = get_json(&http, base, &format!("/v1/members/{id}/ledger")).await;
            let history = get_json(&http, base, &format!("/v1/members/{id}/history?limit=5")).await;
            answers.push((ledger, history));
        }
        assert_eq!(answers[0], answers[1], "{id}");
        let (Some((200, ledger)), Some((200, history))) = &answers[0] else {
            panic!("{id}: {answers:?}");
        };
        let entries = ledger["ledger"].as_array().unwrap();
        let paid: i64 = entries
            .iter()
            .filter(|e| e["rule"] == "buy")
            .map(|e| e["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(
            paid,
            acked[&id]["points_lifetime"].as_i64().unwrap(),
            "{id}: {ledger}"
        );
        let firings = history["firings"].as_array().unwrap();
        assert!(!firings.is_empty() && firings.len() <= 5, "{id}: {history}");
    }
    let unknown = get_json(&http, &bases[0], "/v1/members/nobody/ledger").await;
    assert_eq!(unknown.map(|(status, _)| status), Some(404));

    // The lists over every partition, the same through either node.
    for path in ["/v1/tickets", "/v1/campaigns", "/v1/rewards"] {
        let answers = [
            get_json(&http, &bases[0], path).await,
            get_json(&http, &bases[1], path).await,
        ];
        assert_eq!(answers[0], answers[1], "{path}");
    }
    let Some((200, tickets)) = get_json(&http, &bases[0], "/v1/tickets?status=acked").await else {
        panic!("no tickets");
    };
    let tickets = tickets["tickets"].as_array().unwrap();
    let owners: Vec<&str> = tickets
        .iter()
        .map(|t| t["member"].as_str().unwrap())
        .collect();
    let mut sorted_owners = owners.clone();
    sorted_owners.sort();
    assert_eq!(sorted_owners, complainers);
    let numbers: Vec<u64> = tickets
        .iter()
        .map(|t| t["number"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    // Resolving by API, through either node, answers with the ticket once it changed;
    // a second time is refused, an unknown ticket is not found.
    let ticket = tickets[0]["id"].as_str().unwrap();
    let path = format!("/v1/tickets/{ticket}/resolve");
    for (base, want) in [(&bases[1], 200), (&bases[0], 409)] {
        let (status, answer) = post_json(&http, base, &path, json!({"by": "ana"})).await;
        assert_eq!(status, want, "{answer}");
        if want == 200 {
            assert_eq!(answer["status"], "resolved", "{answer}");
            assert_eq!(answer["id"], ticket);
        }
    }
    let (status, _) = post_json(&http, &bases[0], "/v1/tickets/T-9999/ack", json!({})).await;
    assert_eq!(status, 404);
    let Some((200, campaigns)) = get_json(&http, &bases[1], "/v1/campaigns").await else {
        panic!("no campaigns");
    };
    assert_eq!(campaigns["campaigns"][0]["points_awarded"], paid);
    assert_eq!(campaigns["campaigns"][0]["phase"], "on");
    let Some((200, rewards)) = get_json(&http, &bases[1], "/v1/rewards").await else {
        panic!("no rewards");
    };
    assert_eq!(rewards["rewards"][0]["issued"], MUGS);
    assert_eq!(rewards["rewards"][0]["left"], 0);
}

/// What the pool of campaign `launch` handed out, and what each partition's grant log
/// holds of it, read from `rally_cluster`.
async fn budget_accounts(nats: &str) -> (i64, BTreeMap<u32, i64>) {
    let client = async_nats::connect(nats).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let config = jetstream.get_key_value("rally_cluster").await.unwrap();
    let hex: String = "launch".bytes().map(|b| format!("{b:02x}")).collect();
    let pool = config.get(format!("budget.{hex}")).await.unwrap().unwrap();
    let pool: Value = serde_json::from_slice(&pool).unwrap();
    let mut granted = BTreeMap::new();
    for p in 0..PARTITIONS {
        let Some(log) = config.get(format!("grants.p{p}")).await.unwrap() else {
            continue;
        };
        let log: Value = serde_json::from_slice(&log).unwrap();
        let mut points = log["base"]["budget"]["launch"].as_i64().unwrap_or(0);
        for entry in log["entries"].as_array().unwrap() {
            if entry["grant"]["kind"] == "budget" {
                points += entry["grant"]["points"].as_i64().unwrap();
            }
        }
        granted.insert(p, points);
    }
    (pool["taken"].as_i64().unwrap(), granted)
}

/// The cluster's `random()` key, as the first node recorded it.
async fn cluster_key(nats: &str) -> rally::script::RandomKey {
    let client = async_nats::connect(nats).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let config = jetstream.get_key_value("rally_cluster").await.unwrap();
    let settings = config.get("config").await.unwrap().unwrap();
    let settings: Value = serde_json::from_slice(&settings).unwrap();
    rally::script::RandomKey::parse(settings["random_key"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draw_and_a_leaderboard_rank_the_members_of_every_partition() {
    const WINNERS: usize = 3;
    const ENTRANTS: usize = 24;
    let nats = Nats::start();
    // The draw runs when the campaign's phase starts, a few seconds from now.
    let start = chrono::Utc::now() + chrono::Duration::seconds(20);
    let start = start
        .with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let rules = support::daemon::rules_dir(&format!(
        r#"
settings: {{ timezone: UTC }}
leaderboards:
  - {{ id: posters, by: events.post, period: weekly, size: 5 }}
campaigns:
  - id: lucky
    timezone: UTC
    phases:
      - {{ name: on, start: "{start}" }}
rules:
  - id: draw
    trigger: {{ phase: {{ campaign: lucky, enters: on }} }}
    audience: all
    draw: {{ winners: {WINNERS} }}
    actions:
      - points: 50
      - tag: lucky
"#
    ));
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<ClusterNode> = (0..2)
        .map(|n| node(&nats, n, rules.path(), &dirs[n]))
        .collect();
    let http = client();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    until_spread(&http, &bases, PARTITIONS).await;
    let entrants: Vec<Value> = (0..ENTRANTS)
        .map(|m| json!({"id": format!("e-{m}"), "type": "checkin", "member": format!("m-{m}")}))
        .collect();
    post_until_acknowledged(&http, || bases[0].clone(), &entrants).await;
    // Member m-i posts i + 1 times: the board's first five are m-23 down to m-19.
    let posts: Vec<Value> = (0..ENTRANTS)
        .flat_map(|m| {
            (0..=m).map(move |n| {
                json!({"id": format!("post-{m}-{n}"), "type": "post", "member": format!("m-{m}")})
            })
        })
        .collect();
    post_until_acknowledged(&http, || bases[1].clone(), &posts).await;
    let expected_board: Vec<Value> = (0..5)
        .map(|rank| json!({"rank": rank + 1, "member": format!("m-{}", ENTRANTS - 1 - rank), "score": ENTRANTS - rank}))
        .collect();
    for base in &bases {
        let board = support::until(Duration::from_secs(60), async || {
            match get_json(&http, base, "/v1/leaderboards/posters").await {
                Some((200, board)) if board["places"] == json!(expected_board) => Ok(board),
                read => Err(format!("the board never ranked every partition: {read:?}")),
            }
        })
        .await;
        assert_eq!(board["every"], "weekly");
        assert_eq!(board["current"], true);
    }

    // The winners: the lowest draw scores among all the entrants, whatever partition
    // each is in.
    let key = cluster_key(&nats.url).await;
    let occurrence = chrono::NaiveDateTime::parse_from_str(&start, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc();
    let mut scored: Vec<(u64, String)> = (0..ENTRANTS)
        .map(|m| {
            let member = format!("m-{m}");
            (
                rally::engine::draw_score(key, "draw", occurrence, &member),
                member,
            )
        })
        .collect();
    scored.sort();
    let mut expected: Vec<String> = scored[..WINNERS].iter().map(|(_, m)| m.clone()).collect();
    expected.sort();

    let deadline = Instant::now() + Duration::from_secs(90);
    let lucky = loop {
        let mut lucky = Vec::new();
        for m in 0..ENTRANTS {
            let id = format!("m-{m}");
            if let Some((200, view)) =
                get_json(&http, &bases[1], &format!("/v1/members/{id}")).await
            {
                if view["tags"].as_array().unwrap().contains(&json!("lucky")) {
                    assert_eq!(view["points"], 50, "{id}: {view}");
                    lucky.push(id);
                }
            }
        }
        lucky.sort();
        if lucky.len() >= WINNERS {
            break lucky;
        }
        assert!(
            Instant::now() < deadline,
            "the draw never paid {WINNERS} winners: {lucky:?}\n{}\n{}",
            nodes[0].log(),
            nodes[1].log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(lucky, expected);

    // The draw's record, once, with the winners in draw order, through either node.
    let in_draw_order: Vec<String> = scored[..WINNERS].iter().map(|(_, m)| m.clone()).collect();
    for base in &bases {
        let Some((200, draws)) = get_json(&http, base, "/v1/draws").await else {
            panic!("no draws at {base}");
        };
        let draws = draws["draws"].as_array().unwrap();
        assert_eq!(draws.len(), 1, "{draws:?}");
        assert_eq!(draws[0]["eligible"], ENTRANTS);
        assert_eq!(draws[0]["winners"], json!(in_draw_order));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_grant_log_was_claimed_by_another_node_cannot_record_a_grant() {
    use rally::cluster::shares::claim;
    use rally::runner::ShareSource;
    use rally::shares::{Grant, Short};

    let nats = Nats::start();
    let joined = rally::cluster::setup::join(&nats.url, Default::default())
        .await
        .unwrap();
    let config = joined.config;
    let rules = Arc::new(rally::rules::from_sources(&[("rules.yaml", RULES)], &|_| None).unwrap());
    let short = Short::Budget {
        campaign: "launch".into(),
        points: 30,
    };
    // Node a claims partition 0 and is granted a part of the budget at message 1.
    let mut a = claim(&config, "a", Partition(0), PARTITIONS, 0, 0)
        .await
        .unwrap()
        .source;
    let (set, wanted) = (Arc::clone(&rules), short.clone());
    let (mut a, first) = tokio::task::spawn_blocking(move || {
        let grant = a.grant(&set, &wanted, 1);
        (a, grant)
    })
    .await
    .unwrap();
    let Ok(Grant::Budget { points, .. }) = first else {
        panic!("{first:?}");
    };
    assert!(points >= 30, "{points}");
    // Node b takes the partition (a was paused): it claims the log, and finds a's
    // grant to apply at message 1.
    let b = claim(&config, "b", Partition(0), PARTITIONS, 0, 0)
        .await
        .unwrap();
    assert_eq!(
        b.pending,
        vec![(
            1,
            Grant::Budget {
                campaign: "launch".into(),
                points
            }
        )]
    );
    // a wakes up and asks again: refused, the log is b's now.
    let (set, wanted) = (Arc::clone(&rules), short.clone());
    let second = tokio::task::spawn_blocking(move || a.grant(&set, &wanted, 2))
        .await
        .unwrap();
    let Err(why) = second else {
        panic!("a stale owner recorded a grant: {second:?}");
    };
    assert!(why.contains("another node claimed the partition"), "{why}");
    // b records its own; a third owner starting from message 1 applied holds a's
    // grant and has b's pending.
    let mut b = b.source;
    let set = Arc::clone(&rules);
    let third = tokio::task::spawn_blocking(move || b.grant(&set, &short, 2))
        .await
        .unwrap()
        .unwrap();
    let c = claim(&config, "c", Partition(0), PARTITIONS, 1, 0)
        .await
        .unwrap();
    assert_eq!(c.shares.budget("launch"), points);
    assert_eq!(c.pending, vec![(2, third)]);
}

/// `POST base + path` with `body`: the status and the JSON answer.
async fn post_json(http: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = http
        .post(format!("{base}{path}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redemptions_and_adjustments_by_api_are_answered_once_their_owner_applied_them() {
    let nats = Nats::start();
    let rules = support::daemon::rules_dir(RULES);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<ClusterNode> = (0..2)
        .map(|n| node(&nats, n, rules.path(), &dirs[n]))
        .collect();
    let http = client();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    until_spread(&http, &bases, PARTITIONS).await;
    post_until_acknowledged(&http, || bases[0].clone(), &purchases("a")).await;
    let members = members_when(&http, &bases[0], "applied the purchases", |_| true).await;
    let rich: Vec<(&String, i64)> = members
        .iter()
        .map(|(id, m)| (id, m["points"].as_i64().unwrap()))
        .filter(|(_, points)| *points > 0)
        .take(MUGS + 1)
        .collect();
    assert_eq!(rich.len(), MUGS + 1);

    // A redemption, answered with what the owner granted, through either node; the
    // same key again is the same redemption.
    let (member, points) = rich[0];
    let path = format!("/v1/members/{member}/redeem");
    let (status, first) = post_json(
        &http,
        &bases[0],
        &path,
        json!({"key": "k-0", "reward": "mug"}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["redemption"]["status"], "granted");
    assert_eq!(first["balance"], points - 1);
    let (status, again) = post_json(
        &http,
        &bases[1],
        &path,
        json!({"key": "k-0", "reward": "mug"}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["redemption"], first["redemption"]);
    // The stock runs out across partitions: four more are granted, the fifth refused.
    let mut answers = Vec::new();
    for (n, (member, _)) in rich[1..].iter().enumerate() {
        let base = &bases[n % 2];
        let body = json!({"key": format!("k-{}", n + 1), "reward": "mug"});
        answers.push(post_json(&http, base, &format!("/v1/members/{member}/redeem"), body).await);
    }
    let granted = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(granted, MUGS - 1, "{answers:?}");
    let (status, refused) = answers.last().unwrap();
    assert_eq!(*status, 422, "{refused}");
    assert_eq!(refused["error"], "out of stock");

    // An adjustment, answered with its ledger entry; one the balance cannot take is
    // refused with why.
    let path = format!("/v1/members/{member}/points");
    let (status, adjusted) = post_json(
        &http,
        &bases[1],
        &path,
        json!({"key": "adj-1", "amount": 50, "reason": "goodwill", "operator": "ana"}),
    )
    .await;
    assert_eq!(status, 200, "{adjusted}");
    assert_eq!(adjusted["entry"]["amount"], 50);
    assert_eq!(adjusted["balance"], points - 1 + 50);
    let (status, refused) = post_json(
        &http,
        &bases[0],
        &path,
        json!({"key": "adj-2", "amount": -100000, "reason": "too much", "operator": "ana"}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("balance"),
        "{refused}"
    );

    // A member whose id needs escaping is read, and forwarded, whole.
    let odd = json!({"id": "odd-1", "type": "purchase", "member": "m/ 1?x"});
    post_until_acknowledged(&http, || bases[0].clone(), &[odd]).await;
    let read = support::until(Duration::from_secs(30), async || {
        let read = [
            get_json(&http, &bases[0], "/v1/members/m%2F%201%3Fx/ledger").await,
            get_json(&http, &bases[1], "/v1/members/m%2F%201%3Fx/ledger").await,
        ];
        match read.iter().all(|r| matches!(r, Some((200, _)))) {
            true => Ok(read),
            false => Err(format!("{read:?}")),
        }
    })
    .await;
    assert_eq!(read[0], read[1]);

    // Nobody and a bad body, refused before anything is published.
    let (status, _) = post_json(
        &http,
        &bases[0],
        "/v1/members/nobody/redeem",
        json!({"key": "k-x", "reward": "mug"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, bad) = post_json(
        &http,
        &bases[0],
        &format!("/v1/members/{member}/redeem"),
        json!({"reward": "mug"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().starts_with("key:"), "{bad}");
}
