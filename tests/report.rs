//! The community report (issue 15): every figure of a known history worked out by hand
//! and compared — through `rally report` on events, on an imported data directory, and
//! over real HTTP (`GET /v1/report`, the gauges of `GET /metrics`).
//!
//! The history (tests/fixtures/report/events.jsonl, Asia/Shanghai; W44 ends Sunday
//! 1 Nov, W45 is 2–8 Nov, W46 9–15, W47 16–22):
//! - `a` checks in on 1 and 2 Nov (10 points each), then is silent: nudged on day 7
//!   or so, and given the 14-day coupon on 16 Nov; never back.
//! - `b` buys for 800 on 1 Nov (80 points) and for 300 on 4 Nov in the promo's peak
//!   (30 + a 5-point bonus charged to the budget): a repeat purchase, and silver at 115
//!   lifetime. Redeems the mug (50) on 5 Nov. Nudged on 11 Nov, coupon on 18 Nov.
//! - `c` checks in on 3 Nov, is nudged on 10 Nov, comes back on 12 Nov (within 7 days
//!   of the nudge, after 9 days of silence) and is nudged again on 19 Nov.
//! - `d` is never active: two low ratings open T-1 (acknowledged an hour later) and
//!   T-2 (its 2-hour SLA runs out, it climbs to level 2, then it is resolved); `d`
//!   leaves on 6 Nov.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use support::daemon::{rally, Session};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    rally().args(args).output().expect("run rally")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The report of the fixture's history on `sim`'s clock, run to 20 Nov, by week.
fn weekly_report() -> Value {
    let rules = fixture("");
    let events = fixture("events.jsonl");
    json_of(&run(&[
        "report",
        "--rules",
        path(&rules),
        "--events",
        path(&events),
        "--until",
        "2026-11-20",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-20",
        "--by",
        "week",
        "--json",
    ]))
}

#[test]
fn members_and_silence_per_week_are_the_ones_worked_out_by_hand() {
    let doc = weekly_report();
    assert_eq!(doc["from"], "2026-11-01");
    assert_eq!(doc["to"], "2026-11-20");
    assert_eq!(doc["by"], "week");
    assert_eq!(doc["timezone"], "Asia/Shanghai");
    let periods = doc["periods"].as_array().expect("periods");
    let names: Vec<&str> = periods
        .iter()
        .map(|p| p["period"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["2026-W44", "2026-W45", "2026-W46", "2026-W47"]);
    // total, new, active (distinct), returned, left
    let members = [
        (2, 2, 2, 0, 0), // a, b join and are active
        (4, 2, 3, 0, 1), // c and d join; a, b, c active; d leaves
        (4, 0, 1, 1, 0), // c comes back after 9 days
        (4, 0, 0, 0, 0),
    ];
    for (period, (total, new, active, returned, left)) in periods.iter().zip(members) {
        assert_eq!(
            period["members"],
            json!({"total": total, "new": new, "active": active, "returned": returned, "left": left}),
            "{}",
            period["period"]
        );
    }
    // Silent at the period's end. 8 Nov: nobody 7 days yet (a's last day is the 2nd).
    // 15 Nov: a (2nd) and b (4th) are past 7 days. 20 Nov: a, b, c (12th) past 7 days;
    // a and b past 14.
    let silent = [(0, 0), (0, 0), (2, 0), (3, 2)];
    for (period, (week, fortnight)) in periods.iter().zip(silent) {
        assert_eq!(period["silent"], json!({"7d": week, "14d": fortnight}));
    }
    assert_eq!(
        doc["totals"]["members"],
        json!({"total": 4, "new": 4, "active": 3, "returned": 1, "left": 1})
    );
    assert_eq!(doc["totals"]["silent"], json!({"7d": 3, "14d": 2}));
    assert!(doc["totals"].get("period").is_none());
}

#[test]
fn commerce_points_messages_and_tickets_per_week_are_the_ones_worked_out_by_hand() {
    let doc = weekly_report();
    let periods = doc["periods"].as_array().expect("periods");
    let commerce = [
        json!({"purchases": 1, "gmv": "800", "buyers": 1, "repurchase_rate": 0.0, "repeat_buyers": 0}),
        json!({"purchases": 1, "gmv": "300", "buyers": 1, "repurchase_rate": 1.0, "repeat_buyers": 1}),
        json!({"purchases": 0, "gmv": "0", "buyers": 0, "repurchase_rate": 0.0, "repeat_buyers": 0}),
        json!({"purchases": 0, "gmv": "0", "buyers": 0, "repurchase_rate": 0.0, "repeat_buyers": 0}),
    ];
    // issued, redeemed, outstanding: 10 + 80; 10 + 10 + 35 less the mug; c's 10.
    let points = [(90, 0, 90), (55, 50, 95), (10, 0, 105), (0, 0, 105)];
    // Queued: three ticket notifications; nudges to c, a, b; coupons to a, b and c's
    // second nudge.
    let queued = [0, 3, 3, 3];
    let tickets = [(0, 0, 0), (2, 1, 1), (0, 0, 0), (0, 0, 0)];
    for (i, period) in periods.iter().enumerate() {
        assert_eq!(period["commerce"], commerce[i], "{}", period["period"]);
        let (issued, redeemed, outstanding) = points[i];
        assert_eq!(period["points"]["issued"], issued);
        assert_eq!(period["points"]["redeemed"], redeemed);
        assert_eq!(period["points"]["expired"], 0);
        assert_eq!(period["points"]["outstanding"], outstanding);
        assert_eq!(period["messages"]["queued"], queued[i]);
        // Nothing is delivered on sim's clock.
        assert_eq!(period["messages"]["sent"], 0);
        let (opened, acknowledged, resolved) = tickets[i];
        assert_eq!(
            period["tickets"],
            json!({"opened": opened, "acknowledged": acknowledged, "resolved": resolved})
        );
    }
    let totals = &doc["totals"];
    assert_eq!(
        totals["commerce"],
        json!({"purchases": 2, "gmv": "1100", "buyers": 1, "repurchase_rate": 1.0, "repeat_buyers": 1})
    );
    assert_eq!(
        totals["points"],
        json!({"issued": 155, "redeemed": 50, "expired": 0, "outstanding": 105, "deducted": 0})
    );
    assert_eq!(
        totals["messages"],
        json!({"queued": 9, "sent": 0, "failed": 0, "retried": 0, "requeued": 0,
               "suppressed": 0, "suppressed_at_sending": 0, "capped": 0,
               "by_channel": {"email": 6, "staff": 3},
               "by_channel_status": {"email": {"queued": 6}, "staff": {"queued": 3}},
               "deliveries": {}})
    );
}

#[test]
fn tiers_reengagement_campaigns_cohorts_tickets_and_rules_are_the_ones_worked_out_by_hand() {
    let doc = weekly_report();
    assert_eq!(doc["tiers"], json!({"bronze": 3, "silver": 1}));
    assert_eq!(
        doc["reengagement"],
        json!([
            {"rule": "coupon-14d", "template": "coupon", "sent": 2, "returned": 0, "rate": 0.0},
            {"rule": "nudge-7d", "template": "nudge", "sent": 4, "returned": 1, "rate": 0.25},
        ])
    );
    assert_eq!(
        doc["campaigns"],
        json!([{"id": "promo", "phases": [
            {"name": "warmup", "from": "2026-11-01T16:00:00Z", "to": "2026-11-03T16:00:00Z",
             "participants": 2, "points": 20, "gmv": "0", "budget_used": 0},
            {"name": "peak", "from": "2026-11-03T16:00:00Z", "to": "2026-11-05T16:00:00Z",
             "participants": 1, "points": 35, "gmv": "300", "budget_used": 5},
        ]}])
    );
    // a and b first active in W44, both again in W45; c in W45, again in W46. d was
    // never active: in no cohort.
    assert_eq!(
        doc["cohorts"],
        json!([
            {"week": "2026-W44", "size": 2, "active": [2, 2]},
            {"week": "2026-W45", "size": 1, "active": [1, 1]},
        ])
    );
    assert_eq!(
        doc["tickets"],
        json!({"opened": 2, "acknowledged": 1, "resolved": 1,
               "ack_p50_seconds": 3600, "ack_p90_seconds": 3600, "breaches": {"1": 1}})
    );
    assert_eq!(
        doc["rules"],
        json!([
            {"id": "checkin", "firings": 4, "failures": 0, "points": 40},
            {"id": "purchase-points", "firings": 2, "failures": 0, "points": 110},
            {"id": "peak-bonus", "firings": 1, "failures": 0, "points": 5},
            {"id": "nudge-7d", "firings": 4, "failures": 0, "points": 0},
            {"id": "coupon-14d", "firings": 2, "failures": 0, "points": 0},
            {"id": "low-rating", "firings": 2, "failures": 0, "points": 0},
        ])
    );
}

#[test]
fn a_day_by_day_report_counts_a_member_active_on_two_days_once_in_the_totals() {
    let rules = fixture("");
    let events = fixture("events.jsonl");
    let doc = json_of(&run(&[
        "report",
        "--rules",
        path(&rules),
        "--events",
        path(&events),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        "--json",
    ]));
    let active: Vec<&Value> = doc["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["members"]["active"])
        .collect();
    // a and b on the 1st; a on the 2nd: three member-days, two members.
    assert_eq!(active, [&json!(2), &json!(1)]);
    assert_eq!(doc["totals"]["members"]["active"], 2);
}

#[test]
fn an_imported_data_directory_reports_what_its_events_report_and_replay_rebuilds_it() {
    let rules = fixture("");
    let events = fixture("events.jsonl");
    let data = tempfile::tempdir().expect("a data directory");
    let imported = run(&[
        "import",
        "--rules",
        path(&rules),
        "--data",
        path(data.path()),
        "--events",
        path(&events),
    ]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let range = [
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-12",
        "--by",
        "week",
        "--json",
    ];
    let mut from_data = vec![
        "report",
        "--data",
        path(data.path()),
        "--rules",
        path(&rules),
    ];
    from_data.extend(range);
    let mut from_events = vec!["report", "--events", path(&events), "--rules", path(&rules)];
    from_events.extend(range);
    let stored = json_of(&run(&from_data));
    assert_eq!(stored, json_of(&run(&from_events)));
    assert_eq!(stored["totals"]["members"]["returned"], 1);
    support::daemon::assert_replay_reproduces(data.path());
}

#[test]
fn a_sim_document_reports_exactly_what_its_events_report() {
    let rules = fixture("");
    let events = fixture("events.jsonl");
    let dir = tempfile::tempdir().expect("a temp dir");
    let doc = dir.path().join("sim.json");
    let simulated = run(&[
        "sim",
        "--rules",
        path(&rules),
        "--events",
        path(&events),
        "--until",
        "2026-11-20",
        "--out",
        path(&doc),
    ]);
    assert!(
        simulated.status.success(),
        "{}",
        String::from_utf8_lossy(&simulated.stderr)
    );
    let from_sim = json_of(&run(&[
        "report",
        "--rules",
        path(&rules),
        "--sim",
        path(&doc),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-20",
        "--by",
        "week",
        "--json",
    ]));
    let from_events = weekly_report();
    assert_eq!(from_sim, from_events);
    // Not two empty reports: the history's members, cohorts and funnel are there.
    assert_eq!(from_sim["totals"]["members"]["total"], 4);
    assert_eq!(from_sim["reengagement"].as_array().map(Vec::len), Some(2));
    // Without --to the range ends on the document's clock, as on the run's.
    let default_range = |source: &[&str]| {
        let mut args = vec!["report", "--rules", path(&rules), "--json"];
        args.extend(source);
        json_of(&run(&args))
    };
    assert_eq!(
        default_range(&["--sim", path(&doc)]),
        default_range(&["--events", path(&events), "--until", "2026-11-20"])
    );
}

#[test]
fn a_sim_document_without_metrics_is_refused_saying_what_to_do() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let old = dir.path().join("old.json");
    std::fs::write(&old, r#"{"now": null, "members": {}, "ledger": []}"#).unwrap();
    let out = run(&["report", "--rules", path(&fixture("")), "--sim", path(&old)]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("has no metrics section"), "{said}");
    assert!(said.contains("run rally sim again"), "{said}");

    std::fs::write(&old, "not json").unwrap();
    let out = run(&["report", "--rules", path(&fixture("")), "--sim", path(&old)]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not a sim document"), "{said}");
    assert!(said.contains("line 1 column 2"), "{said}");
}

#[test]
fn bad_parameters_are_refused_naming_the_parameter() {
    let rules = fixture("");
    let events = fixture("events.jsonl");
    for (flag, value, says) in [
        ("--from", "1 Nov", "from:"),
        ("--to", "2026-11-31", "to:"),
        ("--by", "year", "by:"),
    ] {
        let out = run(&[
            "report",
            "--rules",
            path(&rules),
            "--events",
            path(&events),
            flag,
            value,
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{flag}: {stderr}");
    }
}

#[test]
fn the_html_page_is_self_contained_and_holds_the_tables() {
    let rules = fixture("");
    let events = fixture("events.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = run(&[
        "report",
        "--rules",
        path(&rules),
        "--events",
        path(&events),
        "--until",
        "2026-11-20",
        "--by",
        "week",
        "--html",
        path(&page),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("the page is written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<style>"));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="));
    for title in [
        "Messages by channel",
        "Re-engagement",
        "Campaigns",
        "Retention cohorts",
        "Tickets",
        "Rules",
    ] {
        assert!(html.contains(&format!("<h2>{title}")), "{title}");
    }
    assert!(html.contains("<td>nudge-7d</td><td>nudge</td><td>4</td><td>1</td><td>0.250</td>"));
    // Recorded by steps (all 6 queued, none capped or suppressed); nothing is
    // delivered on sim's clock.
    assert!(html.contains(
        "<td>email</td><td>6</td><td>6</td><td>0</td><td>0</td>\
         <td>0</td><td>0</td><td>0</td><td>0</td><td>0</td>"
    ));
    // And the terminal tables went to stdout.
    assert!(String::from_utf8_lossy(&out.stdout).contains("Re-engagement"));
}

#[test]
fn the_shipped_rules_on_their_example_give_the_figures_in_the_readme() {
    let doc = json_of(&run(&[
        "report",
        "--rules",
        "rules",
        "--events",
        "examples/shipped/events.jsonl",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-07",
        "--by",
        "week",
        "--json",
    ]));
    let totals = &doc["totals"];
    assert_eq!(
        totals["members"],
        json!({"total": 4, "new": 4, "active": 4, "returned": 0, "left": 0})
    );
    assert_eq!(totals["commerce"]["purchases"], 6);
    assert_eq!(totals["commerce"]["gmv"], "25700");
    assert_eq!(totals["points"]["issued"], 1121);
    assert_eq!(totals["points"]["redeemed"], 300);
    assert_eq!(totals["points"]["outstanding"], 816);
    assert_eq!(doc["tiers"]["silver"], 1);
    assert_eq!(doc["tiers"]["member"], 3);
}

#[test]
fn expired_points_are_counted_in_the_month_they_expire() {
    // examples/expiry: Mei's 180 points expire at the start of February 2027 and
    // Kai's 200 at the start of April (Asia/Shanghai), by their lots' timers.
    let doc = json_of(&run(&[
        "report",
        "--rules",
        "examples/expiry",
        "--events",
        "examples/expiry/events.jsonl",
        "--until",
        "2027-04-15T00:00:00Z",
        "--from",
        "2026-01-01",
        "--to",
        "2027-04-30",
        "--by",
        "month",
        "--json",
    ]));
    let expired: Vec<(&str, i64)> = doc["periods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["points"]["expired"] != 0)
        .map(|p| {
            (
                p["period"].as_str().unwrap(),
                p["points"]["expired"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(expired, [("2027-02", 180), ("2027-04", 200)]);
    let points = &doc["totals"]["points"];
    assert_eq!(points["expired"], 380);
    // Issued less everything taken is what is left.
    let taken = points["redeemed"].as_i64().unwrap()
        + points["deducted"].as_i64().unwrap()
        + points["expired"].as_i64().unwrap();
    assert_eq!(points["issued"].as_i64().unwrap() - taken, 100);
    assert_eq!(points["outstanding"], 100);
}

const DAEMON_RULES: &str = r#"
settings: { timezone: UTC }
tiers:
  by: points_lifetime
  levels:
    - { name: bronze, from: 0 }
    - { name: silver, from: 50 }
rules:
  - id: checkin
    trigger: { event: checkin }
    actions: [ { points: 10 } ]
  - id: purchase-points
    trigger: { event: purchase }
    actions: [ { points: "event.data.amount / 10" } ]
  - id: nudge
    trigger: { inactive: 7d }
    actions: [ { tag: silent } ]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_report_and_the_community_gauges() {
    let session = Session::start(DAEMON_RULES, &[]);
    for event in [
        r#"{"id":"e-1","type":"checkin","member":"a"}"#,
        r#"{"id":"e-2","type":"purchase","member":"b","data":{"amount":600.5}}"#,
        r#"{"id":"e-3","type":"checkin","member":"a"}"#,
    ] {
        let (status, body) = session.post("/v1/events", event).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, doc) = session.get("/v1/report").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["by"], "day");
    assert_eq!(doc["timezone"], "UTC");
    // The last 30 days, today last.
    let periods = doc["periods"].as_array().expect("periods");
    assert_eq!(periods.len(), 30);
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(doc["to"], today.as_str());
    let totals = &doc["totals"];
    assert_eq!(
        totals["members"],
        json!({"total": 2, "new": 2, "active": 2, "returned": 0, "left": 0})
    );
    assert_eq!(totals["commerce"]["gmv"], "600.5");
    assert_eq!(totals["points"]["issued"], 80);
    assert_eq!(totals["points"]["outstanding"], 80);
    assert_eq!(doc["tiers"], json!({"bronze": 1, "silver": 1}));
    assert_eq!(totals["silent"], json!({"7d": 0}));

    let (status, weekly) = session
        .get(&format!("/v1/report?from={today}&to={today}&by=month"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(weekly["periods"].as_array().unwrap().len(), 1);
    assert_eq!(weekly["periods"][0]["members"]["active"], 2);

    for (query, parameter) in [
        ("from=yesterday", "from:"),
        ("to=2026-02-30", "to:"),
        ("by=fortnight", "by:"),
        ("from=2026-11-02&to=2026-11-01", "from:"),
    ] {
        let (status, body) = session.get(&format!("/v1/report?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(parameter), "{query}: {body}");
    }

    let text = session
        .http
        .get(session.daemon.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "rally_members_total 2",
        "rally_members_active{window=\"day\"} 2",
        "rally_members_active{window=\"month\"} 2",
        "rally_members_silent{band=\"7d\"} 0",
        "rally_points_outstanding 80",
        "rally_tier_members{tier=\"silver\"} 1",
        "rally_tier_members{tier=\"bronze\"} 1",
        "rally_purchases_today 1",
        "rally_gmv_today 600.5",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}

/// The fixture's rules with `extra` added to `settings`, in a directory of their own.
fn rules_with_settings(extra: &str) -> tempfile::TempDir {
    let yaml = std::fs::read_to_string(fixture("rules.yaml")).expect("the fixture's rules");
    let yaml = yaml.replace(
        "  activity: [checkin, purchase]\n",
        &format!("  activity: [checkin, purchase]\n{extra}"),
    );
    support::daemon::rules_dir(&yaml)
}

#[test]
fn a_return_after_the_reengagement_window_is_not_the_messages_success() {
    // c comes back two days after the nudge: inside the default 7 days, not inside 1d.
    let rules = rules_with_settings("  metrics: { reengaged_within: 1d }\n");
    let events = fixture("events.jsonl");
    let doc = json_of(&run(&[
        "report",
        "--rules",
        path(rules.path()),
        "--events",
        path(&events),
        "--until",
        "2026-11-20",
        "--json",
    ]));
    let nudge = &doc["reengagement"][1];
    assert_eq!(nudge["rule"], "nudge-7d");
    assert_eq!((&nudge["sent"], &nudge["returned"]), (&json!(4), &json!(0)));
    // Still a return after a silence, which the window does not decide.
    assert_eq!(doc["totals"]["members"]["returned"], 1);
}

#[test]
fn a_bad_reengagement_window_is_reported_where_it_is_written() {
    let rules = rules_with_settings("  metrics: { reengaged_within: soon }\n");
    let out = run(&["check", "--rules", path(rules.path())]);
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("rules.yaml:6:32:"), "{said}");
    let rules = rules_with_settings("  metrics: { reengaged: 7d }\n");
    let out = run(&["check", "--rules", path(rules.path())]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("rules.yaml:6:14: unknown key \"reengaged\" in settings.metrics"),
        "{said}"
    );
}
