use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::event::Event;
use crate::member::Member;

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
    m.counters.insert("purchases".into(), 10.0);
    m.counters.insert("spend_total".into(), 1234.5);
    m.counters.insert("events.checkin".into(), 7.0);
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
        member: "m-42".into(),
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

#[test]
fn an_endless_loop_hits_the_operation_limit() {
    let message = failure("loop { }");
    assert_eq!(message, "script exceeded the limit of 100000 operations");
}

#[test]
fn runaway_recursion_hits_the_call_depth_limit() {
    let message = failure("fn down(n) { down(n + 1) }\ndown(0);");
    assert!(
        message.contains("limit of 32 levels of call depth"),
        "{message}"
    );
}

#[test]
fn a_huge_string_is_refused() {
    let message = failure("let s = \"x\"; for i in 0..20 { s += s; }");
    assert!(message.starts_with("string too long"), "{message}");
}

#[test]
fn a_huge_array_is_refused() {
    let message = failure("let a = []; for i in 0..20000 { a.push(i); }");
    assert!(message.starts_with("array too large"), "{message}");
}

#[test]
fn a_huge_map_is_refused() {
    let message = failure("let m = #{ a: 1 }; for i in 0..20 { m = #{ x: m, y: m }; }");
    assert!(message.starts_with("map too large"), "{message}");
}

#[test]
fn a_deeply_nested_expression_does_not_compile() {
    let text = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    let message = Sandbox::new()
        .compile_expr(&text, inline_at(4))
        .err()
        .unwrap();
    assert!(message.contains("nested too deeply"), "{message}");
}

#[test]
fn division_by_zero_is_an_error_that_says_so() {
    let message = failure("let zero = 0; award(10 / zero);");
    assert!(message.starts_with("division by zero"), "{message}");
}

#[test]
fn eval_is_refused() {
    let message = Sandbox::new()
        .compile_script("eval(\"award(1)\");", file_at())
        .err()
        .unwrap();
    assert!(message.contains("eval"), "{message}");
}

#[test]
fn import_is_refused() {
    let message = Sandbox::new()
        .compile_script("import \"other\" as other;", file_at())
        .err()
        .unwrap();
    assert!(message.contains("import"), "{message}");
}

#[test]
fn an_unknown_variable_is_a_compile_error() {
    let message = Sandbox::new()
        .compile_expr("membr.points > 10", inline_at(4))
        .err()
        .unwrap();
    assert!(message.contains("unknown variable `membr`"), "{message}");
}

#[test]
fn sleep_and_clock_functions_are_not_available() {
    assert!(failure("sleep(1);").contains("Function not found"));
    assert!(failure("let t = timestamp();").contains("Function not found"));
}

#[test]
fn a_script_requests_its_actions_in_order() {
    let actions = run(r#"
        award(5);
        award(2.9, "bonus");
        tag("loyal");
        untag("new");
        badge("big-spender");
        set("favourite", #{ colour: "red", sizes: [38, 39] });
        send("thanks", "email");
        escalate("support", "high", "angry customer");
    "#)
    .unwrap();
    assert_eq!(
        actions,
        vec![
            ScriptAction::Award {
                amount: 5,
                reason: None
            },
            ScriptAction::Award {
                amount: 2,
                reason: Some("bonus".into())
            },
            ScriptAction::Tag("loyal".into()),
            ScriptAction::Untag("new".into()),
            ScriptAction::Badge("big-spender".into()),
            ScriptAction::Set(
                "favourite".into(),
                json!({"colour": "red", "sizes": [38, 39]})
            ),
            ScriptAction::Send {
                template: "thanks".into(),
                channel: "email".into()
            },
            ScriptAction::Escalate {
                policy: "support".into(),
                severity: "high".into(),
                summary: "angry customer".into(),
            },
        ]
    );
}

#[test]
fn a_non_finite_award_is_refused() {
    let message = failure("award(1.0 / 0.0);");
    assert!(message.contains("finite"), "{message}");
}

#[test]
fn an_unknown_severity_is_refused() {
    let message = failure(r#"escalate("support", "urgent", "x");"#);
    assert!(message.contains("low, normal or high"), "{message}");
}

#[test]
fn an_action_called_from_an_expression_is_an_error() {
    let sandbox = Sandbox::new();
    let expr = sandbox
        .compile_expr("award(5) == ()", inline_at(4))
        .unwrap();
    let err = sandbox.eval_bool(&expr, &mut bindings()).unwrap_err();
    assert!(
        err.message.contains("only be called from a script"),
        "{}",
        err.message
    );
}

#[test]
fn no_state_leaks_between_runs() {
    let sandbox = Sandbox::new();
    let script = sandbox
        .compile_script("let seen = 1; award(member.points);", file_at())
        .unwrap();
    let mut b = bindings();
    let first = sandbox.run_script(&script, &mut b).unwrap();
    let second = sandbox.run_script(&script, &mut b).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        first,
        vec![ScriptAction::Award {
            amount: 120,
            reason: None
        }]
    );
    let peek = sandbox
        .compile_expr("is_def_var(\"seen\")", inline_at(4))
        .unwrap();
    assert!(!sandbox.eval_bool(&peek, &mut b).unwrap());
}

#[test]
fn a_script_cannot_modify_the_bindings() {
    let sandbox = Sandbox::new();
    let script = sandbox
        .compile_script("member.points = 0;", file_at())
        .unwrap();
    let mut b = bindings();
    let err = sandbox.run_script(&script, &mut b).unwrap_err();
    assert!(err.message.contains("read-only"), "{}", err.message);
    let points = sandbox.compile_expr("member.points", inline_at(4)).unwrap();
    assert_eq!(sandbox.eval_number(&points, &mut b).unwrap(), 120.0);
}

#[test]
fn member_fields_counters_and_attributes_are_visible_with_their_types() {
    assert!(truth(
        "member.purchases == 10 && type_of(member.purchases) == \"i64\""
    ));
    assert!(truth("member.spend_total == 1234.5"));
    assert!(truth(
        "member.checkin_streak == 0 && member.counters.checkin_streak == 0"
    ));
    assert!(truth("member.counters[\"events.checkin\"] == 7"));
    assert!(truth(
        "\"vip\" in member.tags && member.badges == [\"streak-7\"]"
    ));
    assert!(truth("member.id == \"m-42\" && member.tier == \"silver\""));
    assert!(truth(
        "member.points == 120 && member.points_lifetime == 300"
    ));
    assert!(truth("member.name == \"Lin\" && member.age == 31"));
    assert!(truth(
        "member.joined_at == \"2026-01-02T03:04:05Z\" && member.last_active == ()"
    ));
}

#[test]
fn the_event_is_visible_with_its_data() {
    assert!(truth(
        "event.data.amount > 100.0 && event.type == \"purchase\""
    ));
    assert!(truth(
        "event.at == \"2026-11-11T02:00:00Z\" && event.data.items.len() == 2"
    ));
}

#[test]
fn a_non_event_trigger_sees_event_as_unit() {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr("event == ()", inline_at(4)).unwrap();
    let mut b = Bindings::new(&member(), None, now(), &json!({}));
    assert!(sandbox.eval_bool(&expr, &mut b).unwrap());
}

#[test]
fn now_and_campaign_are_visible() {
    assert!(truth(
        "now.weekday == 3 && now.hour == 2 && now.minute == 30"
    ));
    assert!(truth(
        "now.year == 2026 && now.month == 11 && now.day == 11"
    ));
    assert!(truth(
        "now.iso == \"2026-11-11T02:30:00Z\" && now.ts == 1794364200"
    ));
    assert!(truth("campaign.double11.phase == \"peak\""));
}

#[test]
fn set_member_rebuilds_what_expressions_see() {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr("member.points", inline_at(4)).unwrap();
    let mut b = bindings();
    let mut m = member();
    m.points = 500;
    b.set_member(&m);
    assert_eq!(sandbox.eval_number(&expr, &mut b).unwrap(), 500.0);
}

#[test]
fn a_condition_that_is_not_a_boolean_names_the_type() {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr("member.name", inline_at(4)).unwrap();
    let err = sandbox.eval_bool(&expr, &mut bindings()).unwrap_err();
    assert_eq!(
        err.message,
        "expected a boolean (true or false), got string"
    );
}

#[test]
fn numbers_and_values_evaluate() {
    let sandbox = Sandbox::new();
    let mut b = bindings();
    let amount = sandbox
        .compile_expr("event.data.amount / 10", inline_at(4))
        .unwrap();
    assert_eq!(sandbox.eval_number(&amount, &mut b).unwrap(), 19.9);
    let value = sandbox
        .compile_expr("#{ n: member.purchases, t: member.tags }", inline_at(4))
        .unwrap();
    assert_eq!(
        sandbox.eval_value(&value, &mut b).unwrap(),
        json!({"n": 10, "t": ["vip"]})
    );
    let text = sandbox.compile_expr("member.name", inline_at(4)).unwrap();
    assert!(sandbox.eval_number(&text, &mut b).is_err());
}

#[test]
fn an_inline_script_error_names_the_yaml_line() {
    let sandbox = Sandbox::new();
    let script = sandbox
        .compile_script("award(1);\nlet x = 0;\naward(5 / x);", inline_at(20))
        .unwrap();
    let err = sandbox.run_script(&script, &mut bindings()).unwrap_err();
    assert_eq!(err.line, Some(22));
    assert_eq!(err.location(&script), "rules/shop.yaml:22");
}

#[test]
fn a_script_file_error_names_the_script_line() {
    let sandbox = Sandbox::new();
    let script = sandbox
        .compile_script("fn half(n) {\n  n / 0\n}\naward(half(4));", file_at())
        .unwrap();
    let err = sandbox.run_script(&script, &mut bindings()).unwrap_err();
    assert_eq!(err.location(&script), "rules/scripts/bonus.rhai:2");
    assert!(err.message.contains("in function half"), "{}", err.message);
}

#[test]
fn a_compile_error_names_the_file_line() {
    let message = Sandbox::new()
        .compile_script("award(1);\naward(2;", inline_at(30))
        .err()
        .unwrap();
    assert!(message.ends_with("(line 31)"), "{message}");
}

#[test]
fn a_map_grown_key_by_key_past_the_limit_cannot_be_stored() {
    let message = failure("let m = #{}; for i in 0..10001 { m[`${i}`] = i; } set(\"m\", m);");
    assert!(message.starts_with("map too large"), "{message}");
}

#[test]
fn a_function_pointer_cannot_be_stored() {
    let message = failure("set(\"f\", Fn(\"award\"));");
    assert!(
        message.contains("cannot store a value of type"),
        "{message}"
    );
}

#[test]
fn string_membership_in_arrays_agrees_with_the_array_package() {
    let mut reference = rhai::Engine::new_raw();
    reference.register_global_module(ArithmeticPackage::new().as_shared_module());
    reference.register_global_module(LogicPackage::new().as_shared_module());
    reference.register_global_module(BasicArrayPackage::new().as_shared_module());
    for text in [
        r#""vip" in member.tags"#,
        r#""gold" in member.tags"#,
        r#""a" in ['a', 'b']"#,
        r#""ab" in ['a', 'b']"#,
        r#""1" in [1, 2.0, ()]"#,
        r#""x" in [[ "x" ], "y"]"#,
        r#""" in [""]"#,
    ] {
        let ours = truth(text);
        let plain = text.replace("member.tags", r#"["vip"]"#);
        let expected: bool = reference.eval_expression(&plain).unwrap();
        assert_eq!(ours, expected, "{text}");
    }
}

/// Run by hand (timings mean something only with optimisation):
/// `CARGO_PROFILE_DEV_OPT_LEVEL=2 cargo test --lib script::tests::bench -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench() {
    let n = 200_000;
    let sandbox = Sandbox::new();
    let mut b = bindings();
    for text in [
        "true",
        "member.purchases >= 10",
        "\"vip\" in member.tags",
        "member.purchases >= 10 && \"vip\" in member.tags",
    ] {
        let expr = sandbox.compile_expr(text, inline_at(1)).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..n {
            assert!(sandbox.eval_bool(&expr, &mut b).unwrap());
        }
        println!("eval_bool({text}): {:?}", start.elapsed() / n);
    }
    let (m, e) = (member(), purchase());
    let campaign = json!({"double11": {"phase": "peak"}});
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(Bindings::new(&m, Some(&e), now(), &campaign));
    }
    println!("Bindings::new: {:?}", start.elapsed() / n);
    let start = std::time::Instant::now();
    for _ in 0..n {
        b.set_member(&m);
    }
    println!("set_member: {:?}", start.elapsed() / n);
}
