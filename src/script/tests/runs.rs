//! What scripts and expressions see and request.

use super::*;

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
    assert_eq!(
        sandbox.eval_number(&points, &mut b).unwrap(),
        Decimal::from(120)
    );
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
    assert_eq!(
        sandbox.eval_number(&expr, &mut b).unwrap(),
        Decimal::from(500)
    );
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
    assert_eq!(
        sandbox.eval_number(&amount, &mut b).unwrap(),
        Decimal::new(199, 1)
    );
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
/// `CARGO_PROFILE_DEV_OPT_LEVEL=2 cargo test --lib script::tests::runs::bench -- --ignored --nocapture`.
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
