//! Every folder in `examples/` promises figures in its README; these tests run
//! `rally sim` on it as the README says and hold it to them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// The example folders with a test below. A new example needs a test and an entry here.
const TESTED: &[&str] = &[
    "checkin-streak",
    "content-caps",
    "double11",
    "expiry",
    "feedback-escalation",
    "late-events",
    "leaderboard",
    "lottery",
    "newcomer",
    "operator-controls",
    "purchase-ladder",
    "reengagement",
    "referral",
    "rewards",
    "shipped",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `rally sim --rules RULES --events EVENTS`, from the repository root as in the READMEs.
fn sim(rules: &str, events: &str) -> Value {
    sim_until(rules, events, None)
}

fn sim_until(rules: &str, events: &str, until: Option<&str>) -> Value {
    let mut args = vec!["sim", "--rules", rules, "--events", events];
    if let Some(until) = until {
        args.extend(["--until", until]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("rally starts");
    assert!(
        out.status.success(),
        "rally sim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sim prints JSON")
}

fn example(name: &str) -> Value {
    example_until(name, None)
}

fn example_until(name: &str, until: Option<&str>) -> Value {
    let dir = format!("examples/{name}");
    sim_until(&dir, &format!("{dir}/events.jsonl"), until)
}

/// The firings of `rule`, as (member, time).
fn firings_of(doc: &Value, rule: &str) -> Vec<(String, String)> {
    doc["firings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| {
            (
                f["member"].as_str().unwrap().to_string(),
                f["at"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The ledger entries of `member`, as (amount, balance, rule, event).
fn ledger_of(doc: &Value, member: &str) -> Vec<(i64, i64, String, String)> {
    doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["member"] == member)
        .map(|e| {
            (
                e["amount"].as_i64().unwrap(),
                e["balance"].as_i64().unwrap(),
                e["rule"].as_str().unwrap().to_string(),
                e["event"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_example_folder_has_a_test() {
    let mut missing = Vec::new();
    for entry in fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !TESTED.contains(&name.as_str()) {
            missing.push(name);
        }
        assert!(
            path.join("events.jsonl").exists() && path.join("README.md").exists(),
            "{} needs events.jsonl and README.md",
            path.display()
        );
    }
    assert!(
        missing.is_empty(),
        "examples without a test in tests/examples.rs: {missing:?}"
    );
    for name in TESTED {
        assert!(
            Path::new(&repo().join("examples").join(name)).is_dir(),
            "{name} is listed but has no folder"
        );
    }
}

#[test]
fn checkin_streak() {
    let doc = example("checkin-streak");
    let lin = &doc["members"]["m-42"];
    assert_eq!(lin["points"], 55);
    assert_eq!(lin["counters"]["checkin_streak"], 7);
    assert_eq!(lin["badges"], json!(["streak-7"]));
    assert_eq!(lin["attrs"]["name"], "Lin");
    // 23:30 and 00:10 Shanghai time are one UTC day but two local days: both count.
    let lin_ledger = ledger_of(&doc, "m-42");
    assert_eq!(lin_ledger[0].3, "e-2");
    assert_eq!(lin_ledger[1].3, "e-3");
    // The second check-in on 2 Nov earns nothing; the duplicate e-6 neither.
    assert!(lin_ledger.iter().all(|e| e.3 != "e-4"));
    assert_eq!(lin_ledger.iter().filter(|e| e.3 == "e-6").count(), 1);
    // 8 check-in events reached the engine: e-2..e-9 less the duplicate e-6.
    assert_eq!(lin["counters"]["events.checkin"], 8);
    let m7 = &doc["members"]["m-7"];
    assert_eq!(m7["counters"]["checkin_streak"], 1);
    assert_eq!(m7["counters"]["checkin_best"], 2);
    let rejected = doc["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 14);
    assert!(
        rejected[0]["error"].as_str().unwrap().starts_with("at: "),
        "{}",
        rejected[0]
    );
}

#[test]
fn late_events() {
    let doc = example("late-events");
    let paid: Vec<(String, i64, String)> = doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["amount"].as_i64().unwrap(),
                e["at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let paid: Vec<(&str, i64, &str)> = paid
        .iter()
        .map(|(e, a, t)| (e.as_str(), *a, t.as_str()))
        .collect();
    assert_eq!(
        paid,
        [
            ("l-2", 10, "2026-11-02T01:00:00Z"),
            ("l-3", 20, "2026-11-02T02:00:00Z"),
            ("l-5", 10, "2026-11-06T01:00:00Z"),
            ("l-6", 25, "2026-11-06T01:00:00Z"),
        ]
    );
    let quiet: Vec<&Value> = doc["firings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "quiet-3d")
        .collect();
    assert_eq!(quiet.len(), 1);
    assert_eq!(quiet[0]["at"], "2026-11-05T02:00:00Z");
    assert_eq!(doc["members"]["m-1"]["points"], 55);
}

#[test]
fn content_caps() {
    let doc = example("content-caps");
    let a = &doc["members"]["m-a"];
    assert_eq!(a["points"], 29);
    assert_eq!(a["counters"]["posts_week"], 1);
    assert_eq!(a["badges"], json!(["weekly-poster"]));
    assert_eq!(a["tags"], json!(["poster-of-the-week"]));
    let ledger = doc["ledger"].as_array().unwrap();
    // Wednesday: 5 of 8 posts paid (15), then shares at 2 each up to the cap of 20.
    let posts_wed = ledger
        .iter()
        .filter(|e| e["rule"] == "post-points" && e["at"].as_str().unwrap() < "2026-11-26")
        .count();
    assert_eq!(posts_wed, 5);
    let clipped: Vec<&Value> = ledger
        .iter()
        .filter(|e| e.get("clipped_by").is_some())
        .collect();
    assert_eq!(clipped.len(), 1, "{clipped:#?}");
    assert_eq!(clipped[0]["event"], "c-11");
    assert_eq!(clipped[0]["amount"], 1);
    assert_eq!(clipped[0]["requested"], 2);
    assert_eq!(clipped[0]["clipped_by"], "daily_cap");
    assert_eq!(clipped[0]["balance"], 20);
    // The fourth share fails `shares_day <= 3`.
    assert!(ledger.iter().all(|e| e["event"] != "c-12"));
}

#[test]
fn operator_controls() {
    let doc = example("operator-controls");
    assert_eq!(doc["members"]["m-1"]["points"], 90);
    assert!(
        doc["members"].get("m-9").is_none(),
        "no member by adjustment"
    );
    let ledger = doc["ledger"].as_array().unwrap();
    let by_event = |id: &str| ledger.iter().find(|e| e["event"] == id).unwrap();
    assert_eq!(by_event("o-4")["clipped_by"], "daily_cap");
    assert_eq!(by_event("o-5")["amount"], 100, "cap: false");
    assert!(by_event("o-5").get("clipped_by").is_none());
    let adjusted = by_event("adj-1");
    assert_eq!(
        (&adjusted["amount"], &adjusted["balance"]),
        (&json!(30), &json!(150))
    );
    assert_eq!(adjusted["operator"], "ana");
    assert_eq!(adjusted["reason"], "apology for a late delivery");
    assert_eq!(
        doc["rejected"],
        json!([
            {"line": 8, "error": "insufficient points: balance 100, deduction 500"},
            {"line": 9, "error": "member: \"m-9\" is unknown: an adjustment never creates a member"}
        ])
    );
    let messages: Vec<(String, String, String)> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (text("template"), text("at"), text("status"))
        })
        .collect();
    let expected = [
        ("welcome", "2026-12-01T01:00:00Z", "sent"),
        // Transactional: inside quiet hours, yet at once.
        ("code", "2026-12-01T15:30:00Z", "sent"),
        ("thanks", "2026-12-02T00:00:00Z", "sent"),
        ("promo", "2026-12-02T04:00:00Z", "capped"),
        // Transactional: past max_per_day, yet sent.
        ("code", "2026-12-02T04:05:00Z", "sent"),
        ("thanks", "2026-12-02T04:05:00Z", "capped"),
    ]
    .map(|(t, at, s)| (t.to_string(), at.to_string(), s.to_string()));
    assert_eq!(messages, expected);
}

#[test]
fn purchase_ladder() {
    let doc = example("purchase-ladder");
    let m1 = &doc["members"]["m-1"];
    assert_eq!(m1["points"], 40);
    assert_eq!(m1["points_lifetime"], 340);
    assert_eq!(m1["tier"], "gold");
    assert_eq!(m1["tags"], json!(["gold-perks"]));
    assert_eq!(m1["badges"], json!(["first-purchase", "loyal-10"]));
    let ledger = ledger_of(&doc, "m-1");
    // 199.0 / 10 → 19 points per purchase.
    assert_eq!(ledger[0], (19, 19, "purchase-points".into(), "p-1".into()));
    assert_eq!(ledger[1], (50, 69, "first-purchase".into(), "p-1".into()));
    // The tenth purchase: 19, then the milestone's 100 in the same step.
    let tenth: Vec<_> = ledger.iter().filter(|e| e.3 == "p-10").collect();
    assert_eq!(tenth.len(), 2);
    assert_eq!(tenth[1].2, "tenth-purchase");
    assert_eq!(tenth[1].1, 340);
    // Only r-2's deduction is in the ledger; r-1's failed.
    assert!(ledger.iter().all(|e| e.3 != "r-1"));
    assert_eq!(
        ledger.last().unwrap(),
        &(-300, 40, "redeem".into(), "r-2".into())
    );
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["rule"], "redeem");
    assert_eq!(errors[0]["event"], "r-1");
    assert_eq!(errors[0]["at"], "examples/purchase-ladder/rules.yaml:35");
    assert_eq!(
        doc["rejected"],
        json!([{"line": 13, "error": doc["rejected"][0]["error"]}])
    );
    assert!(doc["rejected"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("data.amount: "));
    assert!(doc["members"].get("m-2").is_none());
}

#[test]
fn shipped() {
    let doc = sim("rules", "examples/shipped/events.jsonl");
    let members = &doc["members"];

    let lin = &members["m-lin"];
    assert_eq!(lin["points"], 55);
    assert_eq!(lin["counters"]["checkin_streak"], 7);
    assert_eq!(lin["badges"], json!(["streak-7"]));
    assert_eq!(lin["tier"], "member");

    let bo = &members["m-bo"];
    assert_eq!(bo["points"], 720);
    assert_eq!(bo["points_lifetime"], 1020);
    assert_eq!(bo["tier"], "silver");
    assert_eq!(bo["tags"], json!(["big-spender", "customer"]));
    assert_eq!(bo["badges"], json!(["first-purchase"]));
    assert_eq!(bo["attrs"]["tier_changed_at"], "2026-11-06T02:00:00Z");
    let clipped: Vec<(i64, i64)> = doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["clipped_by"] == "daily_cap")
        .map(|e| {
            (
                e["requested"].as_i64().unwrap(),
                e["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(clipped, [(900, 200), (500, 200), (500, 200), (500, 200)]);
    let errors = doc["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    // The gift card is for gold and vip members; the coffee costs 300 of 1020.
    let redemptions: Vec<(&str, &str, &str)> = doc["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reward"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
                r["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        redemptions,
        [
            ("gift50", "refused", "not for tier silver: only gold, vip"),
            ("coffee", "granted", "")
        ]
    );
    assert_eq!(doc["rewards"][0]["id"], "coffee");
    assert_eq!(doc["rewards"][0]["issued"], 1);

    let cy = &members["m-cy"];
    assert_eq!(cy["points"], 41);
    assert_eq!(cy["badges"], json!(["reviewer"]));
    let cy_ledger = ledger_of(&doc, "m-cy");
    assert_eq!(
        cy_ledger.last().unwrap(),
        &(20, 41, "review-points".into(), "s-29".into())
    );
    assert_eq!(
        doc["leaderboards"]["top_posters"],
        json!({"2026-W45": [{"rank": 1, "member": "m-cy", "score": 6}]})
    );

    let dee = &members["m-dee"];
    assert_eq!(dee["points"], 0);
    assert_eq!(dee["tags"], json!(["muted", "warned"]));
    // The resent violation (line 35, id s-32) is a duplicate.
    assert_eq!(dee["counters"]["violations"], 3);
    assert_eq!(
        ledger_of(&doc, "m-dee"),
        [
            (5, 5, "daily-checkin".into(), "s-31".into()),
            (-5, 0, "violation-warning".into(), "s-32".into())
        ]
    );

    let rejected = doc["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 36);
    assert_eq!(rejected[0]["error"], "member: is required");
}

#[test]
fn expiry() {
    let doc = example_until("expiry", Some("2027-04-15T00:00:00Z"));
    let ledger: Vec<(String, i64, i64, String, String)> = doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["member"] == "m-mei")
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_string(),
                e["amount"].as_i64().unwrap(),
                e["balance"].as_i64().unwrap(),
                e["at"].as_str().unwrap().to_string(),
                e["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expired: Vec<_> = ledger.iter().filter(|e| e.0 == "expired").collect();
    assert_eq!(
        expired,
        [
            &(
                "expired".to_string(),
                -180,
                300,
                "2027-01-31T16:00:00Z".to_string(),
                "(expiry)".to_string()
            ),
            &(
                "expired".to_string(),
                -200,
                100,
                "2027-03-31T16:00:00Z".to_string(),
                "(expiry)".to_string()
            ),
        ]
    );
    assert_eq!(ledger.iter().map(|e| e.1).sum::<i64>(), 100);
    assert_eq!(doc["members"]["m-mei"]["points"], 100);
    assert_eq!(
        doc["members"]["m-mei"]["points_expiring"],
        json!({ "amount": 100, "expires_at": "2027-12-31T16:00:00Z" })
    );
    let messages = doc["messages"].as_array().unwrap();
    let sent: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m["at"].as_str().unwrap(), m["body"].as_str().unwrap()))
        .collect();
    assert_eq!(
        sent,
        [
            (
                "2027-01-01T16:00:00Z",
                "Hi Mei, 180 of your 480 points expire at 2027-01-31T16:00:00Z."
            ),
            (
                "2027-03-01T16:00:00Z",
                "Hi Mei, 200 of your 300 points expire at 2027-03-31T16:00:00Z."
            ),
        ]
    );
    // Kai spent his one lot before its reminder: nothing left to remind of or expire.
    assert_eq!(doc["members"]["m-kai"]["points"], 0);
    assert!(doc["members"]["m-kai"].get("points_expiring").is_none());
    assert!(firings_of(&doc, "expiry-reminder")
        .iter()
        .all(|(member, _)| member == "m-mei"));
}

#[test]
fn newcomer() {
    let doc = example_until("newcomer", Some("2026-05-10T00:00:00Z"));
    // Only the member who had not bought 3 days after joining gets the coupon.
    assert_eq!(
        firings_of(&doc, "newcomer-coupon"),
        pairs(&[("m-ben", "2026-05-04T12:00:00Z")])
    );
    assert_eq!(doc["firings"][0]["trigger"], "after");
    assert_eq!(doc["members"]["m-ben"]["points"], 50);
    assert_eq!(doc["members"]["m-ben"]["tags"], json!(["newcomer-coupon"]));
    assert_eq!(doc["members"]["m-ana"]["points"], 0);
    let messages = doc["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["to"], "ben@example.com");
    assert_eq!(messages[0]["at"], "2026-05-04T12:00:00Z");
    // Before the wait is over, nothing has fired.
    let early = example("newcomer");
    assert!(firings_of(&early, "newcomer-coupon").is_empty());
}

#[test]
fn referral() {
    let doc = example("referral");
    let ada = &doc["members"]["m-ada"];
    assert_eq!(ada["points"], 350);
    assert_eq!(ada["tier"], "silver");
    assert_eq!(ada["tags"], json!(["silver"]));
    assert_eq!(ada["badges"], json!(["ambassador"]));
    assert_eq!(ada["counters"]["referrals"], 5);
    for newcomer in ["m-bo", "m-cy", "m-di", "m-ed", "m-fay"] {
        assert_eq!(doc["members"][newcomer]["points"], 10, "{newcomer}");
    }
    let ledger = doc["ledger"].as_array().unwrap();
    assert_eq!(ledger.len(), 11);
    let credited: Vec<(&str, &str)> = ledger
        .iter()
        .filter(|e| e["member"] == "m-ada" && e["reason"] == "referral")
        .map(|e| (e["from"].as_str().unwrap(), e["event"].as_str().unwrap()))
        .collect();
    assert_eq!(
        credited,
        [
            ("m-bo", "r-1"),
            ("m-cy", "r-2"),
            ("m-di", "r-3"),
            ("m-ed", "r-4"),
            ("m-fay", "r-5")
        ]
    );
    assert_eq!(
        firings_of(&doc, "silver-welcome"),
        pairs(&[("m-ada", "2026-06-05T09:00:00Z")])
    );
    assert_eq!(
        firings_of(&doc, "ambassador"),
        pairs(&[("m-ada", "2026-06-06T09:00:00Z")])
    );
    assert_eq!(doc["members"]["m-gus"]["points"], 0);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["member"], "m-gus");
    assert!(errors[0]["error"]
        .as_str()
        .unwrap()
        .contains("a member cannot credit themself"));
}

#[test]
fn reengagement() {
    let doc = example_until("reengagement", Some("2026-12-31T00:00:00Z"));
    assert_eq!(doc["now"], "2026-12-31T00:00:00Z");
    let lin_at = |rule: &str| -> Vec<String> {
        firings_of(&doc, rule)
            .into_iter()
            .filter(|(m, _)| m == "m-lin")
            .map(|(_, at)| at)
            .collect()
    };
    // Exactly 7, 14 and 30 days after the check-in, then again after the return.
    assert_eq!(
        lin_at("silent-7d"),
        ["2026-09-08T01:00:00Z", "2026-10-17T04:00:00Z"]
    );
    assert_eq!(
        lin_at("silent-14d"),
        ["2026-09-15T01:00:00Z", "2026-10-24T04:00:00Z"]
    );
    assert_eq!(
        lin_at("silent-30d"),
        ["2026-10-01T01:00:00Z", "2026-11-09T04:00:00Z"]
    );
    let back: Vec<&Value> = doc["firings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "welcome-back")
        .collect();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["member"], "m-lin");
    assert_eq!(back[0]["trigger"], "returned");
    assert_eq!(back[0]["at"], "2026-10-10T04:00:00Z");
    // m-wu left: no inactivity rule fires for them.
    assert!(doc["firings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["member"] != "m-wu"));
    assert_eq!(doc["members"]["m-lin"]["points"], 60);
    assert_eq!(doc["members"]["m-zhao"]["points"], 30);
}

#[test]
fn double11() {
    let doc = example_until("double11", Some("2026-11-20T00:00:00Z"));
    let campaign = &doc["campaigns"]["double11"];
    assert_eq!(
        campaign["transitions"],
        json!([
            {"phase": "warmup", "at": "2026-10-31T16:00:00Z"},
            {"phase": "peak", "at": "2026-11-10T12:00:00Z"},
            {"phase": "wrapup", "at": "2026-11-11T16:00:00Z"},
            {"phase": null, "at": "2026-11-14T16:00:00Z"}
        ])
    );
    assert_eq!(campaign["phase"], Value::Null);
    assert_eq!(campaign["points_awarded"], 100);
    // Double points only in the peak; m-2's bonus is cut by the budget of 100.
    assert_eq!(
        ledger_of(&doc, "m-1")[1..],
        [
            (60, 90, "purchase-points".into(), "d-4".into()),
            (60, 150, "peak-double".into(), "d-4".into())
        ]
    );
    let clipped: Vec<&Value> = doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("clipped_by").is_some())
        .collect();
    assert_eq!(clipped.len(), 1);
    assert_eq!(clipped[0]["member"], "m-2");
    assert_eq!(clipped[0]["amount"], 40);
    assert_eq!(clipped[0]["requested"], 80);
    assert_eq!(clipped[0]["clipped_by"], "budget:double11");
    // The phase trigger's audience is whoever existed when the peak began.
    assert_eq!(
        firings_of(&doc, "peak-starts"),
        pairs(&[
            ("m-1", "2026-11-10T12:00:00Z"),
            ("m-2", "2026-11-10T12:00:00Z")
        ])
    );
    assert_eq!(doc["members"]["m-3"]["tags"], json!(["reminded"]));
    // Mondays 09:00 Shanghai; on 9 Nov only m-1 has points.
    assert_eq!(
        firings_of(&doc, "monday-reminder"),
        pairs(&[
            ("m-1", "2026-11-09T01:00:00Z"),
            ("m-1", "2026-11-16T01:00:00Z"),
            ("m-2", "2026-11-16T01:00:00Z"),
            ("m-3", "2026-11-16T01:00:00Z")
        ])
    );
}

#[test]
fn feedback_escalation() {
    let doc = example_until("feedback-escalation", Some("2026-11-05T00:00:00Z"));
    let messages = doc["messages"].as_array().unwrap();
    let welcome: Vec<(&str, &str, &str)> = messages
        .iter()
        .filter(|m| m["rule"] == "welcome")
        .map(|m| {
            (
                m["member"].as_str().unwrap(),
                m["status"].as_str().unwrap(),
                m["at"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        welcome,
        [
            // Joined at 23:30 local: held by quiet hours, out at 08:00 local.
            ("m-1", "sent", "2026-11-03T00:00:00Z"),
            ("m-1", "capped", "2026-11-03T01:00:00Z"),
            ("m-1", "capped", "2026-11-03T02:00:00Z"),
            ("m-2", "suppressed", "2026-11-03T03:00:00Z"),
        ]
    );
    let tickets = doc["tickets"].as_array().unwrap();
    let states: Vec<(&str, &str, u64)> = tickets
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap(),
                t["status"].as_str().unwrap(),
                t["level"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("T-1", "open", 3),
            ("T-2", "acked", 1),
            ("T-3", "resolved", 1)
        ]
    );
    assert_eq!(
        tickets[0]["levels"],
        json!([
            {"level": 1, "at": "2026-11-04T02:00:00Z"},
            {"level": 2, "at": "2026-11-04T04:00:00Z"},
            {"level": 3, "at": "2026-11-04T08:00:00Z"}
        ])
    );
    let t1_notified: Vec<&str> = messages
        .iter()
        .filter(|m| m["member"] == "m-7")
        .map(|m| m["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        t1_notified,
        ["support-team", "lead@shop.example", "manager@shop.example"]
    );
    let rejected: Vec<u64> = doc["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [11, 12]);
    assert!(doc["rejected"][1]["error"]
        .as_str()
        .unwrap()
        .contains("T-99"));
}

#[test]
fn lottery() {
    let doc = example_until("lottery", Some("2026-03-16T00:00:00Z"));
    assert_eq!(
        doc["draws"],
        json!([
            {"rule": "weekly-lottery", "occurrence": "2026-03-08T12:00:00Z", "wanted": 3,
             "eligible": 8, "winners": ["m-01", "m-07", "m-03"]},
            {"rule": "weekly-lottery", "occurrence": "2026-03-15T12:00:00Z", "wanted": 3,
             "eligible": 2, "winners": ["m-08", "m-02"]},
        ])
    );
    for (member, points, lucky) in [
        ("m-01", 60, true),
        ("m-02", 70, true),
        ("m-03", 60, true),
        ("m-04", 10, false),
        ("m-05", 15, false),
        ("m-06", 10, false),
        ("m-07", 60, true),
        ("m-08", 65, true),
        ("m-09", 10, false),
        ("m-10", 15, false),
    ] {
        let view = &doc["members"][member];
        assert_eq!(view["points"], points, "{member}");
        let badges = if lucky {
            json!(["lucky-week"])
        } else {
            json!([])
        };
        assert_eq!(view["badges"], badges, "{member}");
    }
    assert_eq!(doc["errors"], json!([]));
}

#[test]
fn rewards() {
    let doc = example("rewards");
    let redemptions: Vec<(&str, &str, &str, &str)> = doc["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
                r["code"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        redemptions,
        [
            ("r-1", "granted", "G50-AAAA", ""),
            ("r-2", "granted", "G50-BBBB", ""),
            ("r-3", "refused", "", "out of stock"),
            ("r-4", "refused", "", "out of stock"),
            ("r-5", "granted", "", ""),
            ("r-6", "refused", "", "limit reached: 1 per month"),
            ("r-7", "refused", "", "not for tier member: only gold"),
            ("r-8", "granted", "", ""),
            (
                "r-9",
                "refused",
                "",
                "not available now: campaign flash is not in phase sale"
            ),
            ("r-10", "granted", "", ""),
            (
                "r-11",
                "refused",
                "",
                "insufficient points: balance 20, cost 100"
            ),
        ]
    );
    let gift = &doc["rewards"][0];
    assert_eq!(gift["id"], "gift50");
    assert_eq!(
        (&gift["issued"], &gift["left"], &gift["codes_left"]),
        (&json!(2), &json!(0), &json!(1))
    );
    let members = &doc["members"];
    assert_eq!(members["m-ana"]["points"], 1700);
    assert_eq!(members["m-ana"]["tier"], "gold");
    assert_eq!(members["m-bo"]["points"], 150);
    assert_eq!(members["m-cy"]["points"], 20);
    for id in ["m-ana", "m-bo", "m-cy"] {
        assert_eq!(members[id]["badges"], json!(["first-reward"]), "{id}");
    }
    let bodies: Vec<&str> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "Code G50-AAAA (500 points). Enjoy!",
            "Code G50-BBBB (500 points). Enjoy!"
        ]
    );
    let ledger = doc["ledger"].as_array().unwrap();
    let deductions = ledger.iter().filter(|e| e["amount"].as_i64() < Some(0));
    assert_eq!((ledger.len(), deductions.count()), (8, 5));
}

/// `[(member, score)]` of one period of one board in a sim document.
fn places_of(doc: &Value, board: &str, period: &str) -> Vec<(String, i64)> {
    doc["leaderboards"][board][period]
        .as_array()
        .unwrap_or_else(|| panic!("no {board} {period}"))
        .iter()
        .map(|p| {
            (
                p["member"].as_str().unwrap().to_string(),
                p["score"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn leaderboard() {
    let doc = example("leaderboard");
    let places = |board: &str, period: &str| places_of(&doc, board, period);
    let want = |items: &[(&str, i64)]| -> Vec<(String, i64)> {
        items.iter().map(|(m, s)| (m.to_string(), *s)).collect()
    };
    assert_eq!(
        places("top_posters", "2026-W48"),
        want(&[("m-dan", 3), ("m-ben", 2), ("m-ana", 2)])
    );
    assert_eq!(
        places("top_posters", "2026-W49"),
        want(&[("m-ben", 2), ("m-ana", 1)])
    );
    assert_eq!(
        places("daily_earners", "2026-11-25"),
        want(&[("m-cat", 20), ("m-ana", 5)])
    );
    assert_eq!(
        places("daily_earners", "2026-11-23"),
        want(&[("m-ana", 5), ("m-ben", 5)])
    );
    // The week's prizes, paid at its close (Monday 00:00 Berlin), are earned that day.
    assert_eq!(
        places("daily_earners", "2026-11-30"),
        want(&[("m-dan", 100), ("m-ben", 70)])
    );
    let points: Vec<i64> = ["m-ana", "m-ben", "m-cat", "m-dan"]
        .iter()
        .map(|m| doc["members"][m]["points"].as_i64().unwrap())
        .collect();
    assert_eq!(points, [45, 80, 25, 115]);
    let podium: Vec<(String, String, String)> = doc["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rule"] == "weekly-podium")
        .map(|e| {
            (
                e["member"].as_str().unwrap().to_string(),
                e["amount"].to_string(),
                e["at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let at = "2026-11-29T23:00:00Z".to_string();
    assert_eq!(
        podium,
        [
            ("m-dan".to_string(), "100".to_string(), at.clone()),
            ("m-ben".to_string(), "60".to_string(), at.clone()),
            ("m-ana".to_string(), "30".to_string(), at),
        ]
    );
    let badges = |m: &str| doc["members"][m]["badges"].clone();
    assert_eq!(badges("m-dan"), serde_json::json!(["poster-of-the-week"]));
    assert_eq!(badges("m-ben"), serde_json::json!([]));
}
