//! The rewards catalog over real HTTP (issue 14 item 2): `POST /v1/members/{id}/redeem`
//! grants or refuses with a reason, `GET /v1/rewards` shows what is left, and the last
//! unit of a reward — or the last code of a pool — goes to exactly one of many
//! members asking for it at once, also after a restart and in a replay.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::daemon::{answer, client, rules_dir, Daemon};

const RULES: &str = r#"
settings: { timezone: UTC }
tiers:
  by: points_lifetime
  levels:
    - { name: member, from: 0 }
    - { name: gold, from: 5000 }
rewards:
  - { id: last-one, name: The last one, cost: 100, stock: 1 }
  - { id: one-code, name: One code, cost: 100, codes: codes.txt }
  - { id: mug, name: A mug, cost: 300, limit: { times: 1, per: month } }
  - { id: lounge, name: Lounge pass, cost: 10, tiers: [gold] }
  - { id: bike, name: A bike, cost: 5000 }
rules:
  - id: welcome
    trigger: { event: join }
    actions: [ { points: 1000 } ]
"#;

/// Members asking for the last unit at the same time.
const MEMBERS: usize = 8;

fn start(rules: &Path, data: &Path) -> Daemon {
    Daemon::start(rules, data, &[])
}

async fn post(daemon: &Daemon, path: &str, body: &str) -> (u16, Value) {
    let response = client()
        .post(daemon.url(path))
        .body(body.to_string())
        .send()
        .await
        .expect("the daemon answers");
    answer(response).await
}

async fn get(daemon: &Daemon, path: &str) -> (u16, Value) {
    let response = client()
        .get(daemon.url(path))
        .send()
        .await
        .expect("the daemon answers");
    answer(response).await
}

async fn join_members(daemon: &Daemon) {
    let joins: Vec<Value> = (0..MEMBERS)
        .map(|i| json!({"id": format!("join-{i}"), "type": "join", "member": format!("m-{i}")}))
        .collect();
    let (status, body) = post(daemon, "/v1/events", &Value::from(joins).to_string()).await;
    assert_eq!(status, 200, "{body}");
}

/// Every member redeems `reward` at once; the answers, by member.
async fn redeem_all_at_once(daemon: &Daemon, reward: &str) -> Vec<(u16, Value)> {
    let mut tasks = Vec::new();
    for i in 0..MEMBERS {
        let url = daemon.url(&format!("/v1/members/m-{i}/redeem"));
        let body = json!({"key": format!("{reward}-{i}"), "reward": reward}).to_string();
        tasks.push(tokio::spawn(async move {
            let response = client()
                .post(url)
                .body(body)
                .send()
                .await
                .expect("the daemon answers");
            answer(response).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the request task"));
    }
    answers
}

/// The reward's line of `GET /v1/rewards`.
async fn reward(daemon: &Daemon, id: &str) -> Value {
    let (status, body) = get(daemon, "/v1/rewards").await;
    assert_eq!(status, 200, "{body}");
    body["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no reward {id} in {body}"))
}

/// Ledger entries of every member made by redemptions of `reward`.
async fn deductions(daemon: &Daemon, reward: &str) -> usize {
    let mut n = 0;
    for i in 0..MEMBERS {
        let (_, ledger) = get(daemon, &format!("/v1/members/m-{i}/ledger")).await;
        n += ledger["ledger"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == format!("redeemed {reward}"))
            .count();
    }
    n
}

fn granted_and_refused(answers: &[(u16, Value)]) -> (Vec<&Value>, Vec<&Value>) {
    let granted = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    let refused = answers
        .iter()
        .filter(|(status, _)| *status == 422)
        .map(|(_, body)| body)
        .collect();
    (granted, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_unit_and_the_last_code_go_to_exactly_one_of_many_concurrent_requests() {
    let rules = rules_dir(RULES);
    std::fs::write(rules.path().join("codes.txt"), "ONLY-CODE\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut daemon = start(rules.path(), data.path());
    join_members(&daemon).await;

    for id in ["last-one", "one-code"] {
        let answers = redeem_all_at_once(&daemon, id).await;
        let (granted, refused) = granted_and_refused(&answers);
        assert_eq!(granted.len(), 1, "{answers:#?}");
        assert_eq!(refused.len(), MEMBERS - 1, "{answers:#?}");
        assert_eq!(granted[0]["redemption"]["status"], "granted");
        for body in refused {
            assert_eq!(body["error"], "out of stock", "{body}");
            assert_eq!(body["redemption"]["status"], "refused");
        }
        let line = reward(&daemon, id).await;
        assert_eq!(line["issued"], 1, "{line}");
        assert_eq!(line["left"], 0, "{line}");
        assert_eq!(deductions(&daemon, id).await, 1);
    }
    // Each member paid for what they got and nothing else.
    let mut balances = Vec::new();
    for i in 0..MEMBERS {
        let (_, member) = get(&daemon, &format!("/v1/members/m-{i}")).await;
        balances.push(member["points"].as_i64().unwrap());
    }
    assert_eq!(balances.iter().sum::<i64>(), 1000 * MEMBERS as i64 - 200);
    let answers = redeem_all_at_once(&daemon, "one-code").await;
    assert!(answers
        .iter()
        .all(|(status, _)| *status == 422 || *status == 200));
    let code_of = |answers: &[(u16, Value)]| -> Vec<String> {
        answers
            .iter()
            .filter_map(|(_, b)| b["redemption"]["code"].as_str().map(str::to_string))
            .collect()
    };
    // The same keys again: duplicates, answered with what was recorded.
    assert_eq!(code_of(&answers), ["ONLY-CODE"]);
    assert!(answers
        .iter()
        .all(|(_, body)| body["status"] == "duplicate"));

    // Restarted, the store still says none is left, and none is handed out.
    daemon.signal_and_wait(libc::SIGTERM);
    let daemon = start(rules.path(), data.path());
    for id in ["last-one", "one-code"] {
        let line = reward(&daemon, id).await;
        assert_eq!(
            (line["issued"].clone(), line["left"].clone()),
            (json!(1), json!(0))
        );
        let (status, body) = post(
            &daemon,
            "/v1/members/m-0/redeem",
            &json!({"key": format!("after-restart-{id}"), "reward": id}).to_string(),
        )
        .await;
        assert_eq!(
            (status, body["error"].clone()),
            (422, json!("out of stock"))
        );
        assert_eq!(deductions(&daemon, id).await, 1);
    }
    let mut daemon = daemon;
    daemon.signal_and_wait(libc::SIGTERM);
    support::daemon::assert_replay_reproduces(data.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_is_refused_with_its_reason_and_changes_nothing() {
    let rules = rules_dir(RULES);
    std::fs::write(rules.path().join("codes.txt"), "ONLY-CODE\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut daemon = start(rules.path(), data.path());
    join_members(&daemon).await;
    let redeem = |key: &str, reward: &str| json!({"key": key, "reward": reward}).to_string();

    let (status, body) = post(&daemon, "/v1/members/m-1/redeem", &redeem("r-1", "mug")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["balance"], 700);
    for (key, reward, reason) in [
        ("r-2", "mug", "limit reached: 1 per month"),
        ("r-3", "lounge", "not for tier member: only gold"),
        ("r-4", "bike", "insufficient points: balance 700, cost 5000"),
        ("r-5", "nope", "unknown reward \"nope\""),
    ] {
        let (status, body) = post(&daemon, "/v1/members/m-1/redeem", &redeem(key, reward)).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"], reason);
        assert_eq!(body["redemption"]["reason"], reason);
        assert_eq!(body["balance"], 700);
    }
    let (_, ledger) = get(&daemon, "/v1/members/m-1/ledger").await;
    let amounts: Vec<i64> = ledger["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [1000, -300]);
    assert_eq!(reward(&daemon, "mug").await["issued"], 1);

    // Bad requests say what is wrong, and never create a member.
    let (status, body) = post(&daemon, "/v1/members/nobody/redeem", &redeem("r-6", "mug")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(&daemon, "/v1/members/m-1/redeem", r#"{"key":"r-7"}"#).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("reward:"),
        "{body}"
    );
    // A key another event used is no redemption.
    let (status, body) = post(&daemon, "/v1/members/m-1/redeem", &redeem("join-1", "mug")).await;
    assert_eq!(status, 409, "{body}");

    daemon.signal_and_wait(libc::SIGTERM);
    support::daemon::assert_replay_reproduces(data.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_handed_out_once_ever_though_a_reload_reorders_the_codes_file() {
    let rules = rules_dir(RULES);
    let codes = rules.path().join("codes.txt");
    std::fs::write(&codes, "A\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut daemon = start(rules.path(), data.path());
    join_members(&daemon).await;
    let mut handed_out = Vec::new();
    for (n, file) in ["A\n", "A\nB\n", "B\nA\nC\n"].into_iter().enumerate() {
        std::fs::write(&codes, file).unwrap();
        let (status, body) = post(&daemon, "/v1/rules/reload", "").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(reward(&daemon, "one-code").await["codes_left"], 1);
        // Sent as an event, the redemption is the same as by the API.
        let event = json!({"id": format!("r-{n}"), "type": "redeem", "member": format!("m-{n}"),
                           "data": {"reward": "one-code"}});
        let (status, body) = post(&daemon, "/v1/events", &event.to_string()).await;
        assert_eq!(status, 200, "{body}");
        let (_, ledger) = get(&daemon, &format!("/v1/members/m-{n}/ledger")).await;
        assert_eq!(ledger["ledger"].as_array().unwrap().len(), 2, "{ledger}");
        let (status, again) = post(
            &daemon,
            &format!("/v1/members/m-{n}/redeem"),
            &json!({"key": format!("r-{n}"), "reward": "one-code"}).to_string(),
        )
        .await;
        assert_eq!((status, &again["status"]), (200, &json!("duplicate")));
        handed_out.push(again["redemption"]["code"].as_str().unwrap().to_string());
    }
    assert_eq!(handed_out, ["A", "B", "C"]);
    assert_eq!(reward(&daemon, "one-code").await["issued"], 3);
    daemon.signal_and_wait(libc::SIGTERM);
    support::daemon::assert_replay_reproduces(data.path());
}
