//! Fixtures shared by the sandbox tests.

mod money;
mod native;
mod random;
mod resolve;
mod runs;
mod sandbox;
mod shape;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::event::Event;
use crate::member::Member;
use crate::money::Decimal;

fn inline_at(line: u32) -> SourcePos {
    SourcePos {
        file: "rules/shop.yaml".into(),
        line,
        col: 13,
    }
}

fn file_at() -> SourcePos {
    SourcePos {
        file: "rules/scripts/bonus.rhai".into(),
        line: 1,
        col: 1,
    }
}

fn member() -> Member {
    let mut m = Member::new("m-42");
    m.points = 120;
    m.points_lifetime = 300;
    m.tier = Some("silver".into());
    m.tags.insert("vip".into());
    m.badges.push("streak-7".into());
    m.counters.insert("purchases", Decimal::from(10));
    m.counters.insert("spend_total", Decimal::new(12345, 1));
    m.counters.insert("events.checkin", Decimal::from(7));
    m.attrs.insert("name".into(), json!("Lin"));
    m.attrs.insert("age".into(), json!(31));
    m.attrs.insert("points".into(), json!("attrs must not win"));
    m.joined_at = Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
    m
}

fn purchase() -> Event {
    let data = json!({"amount": 199.0, "order": "o-77", "items": [1, 2]});
    Event {
        id: "e-1001".into(),
        kind: "purchase".into(),
        member: Some("m-42".into()),
        at: Some(chrono::DateTime::parse_from_rfc3339("2026-11-11T10:00:00+08:00").unwrap()),
        data: data.as_object().unwrap().clone(),
    }
}

fn now() -> DateTime<Utc> {
    // A Wednesday.
    Utc.with_ymd_and_hms(2026, 11, 11, 2, 30, 0).unwrap()
}

fn bindings() -> Bindings {
    let campaign = json!({"double11": {"phase": "peak"}});
    Bindings::new(&member(), Some(&purchase()), now(), &campaign)
}

fn run(text: &str) -> Result<Vec<ScriptAction>, ScriptError> {
    let sandbox = Sandbox::new();
    let script = sandbox.compile_script(text, file_at()).unwrap();
    sandbox.run_script(&script, &mut bindings())
}

fn truth(text: &str) -> bool {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr(text, inline_at(4)).unwrap();
    sandbox.eval_bool(&expr, &mut bindings()).unwrap()
}

fn failure(text: &str) -> String {
    run(text).unwrap_err().message
}
