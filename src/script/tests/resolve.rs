//! Calls resolved and member fields collected when rules load.

use super::*;

fn expr_errors(text: &str) -> Vec<CompileError> {
    match Sandbox::new().compile_expr(text, inline_at(4)) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

fn script_errors(text: &str) -> Vec<CompileError> {
    match Sandbox::new().compile_script(text, file_at()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

#[test]
fn a_call_to_a_function_that_does_not_exist_does_not_compile() {
    let errors = expr_errors("rand() > 0.5");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].message, "unknown function \"rand\"");
    assert_eq!(errors[0].pos, Some((1, 1)));
}

#[test]
fn every_unknown_call_is_reported_at_its_own_place() {
    let errors = script_errors("award(1);\nlet h = hash(member.id);\nfoo();");
    let found: Vec<_> = errors.iter().map(|e| (e.message.as_str(), e.pos)).collect();
    assert_eq!(
        found,
        [
            ("unknown function \"hash\"", Some((2, 9))),
            ("unknown function \"foo\"", Some((3, 1)))
        ]
    );
}

#[test]
fn an_unknown_function_close_to_a_known_one_gets_a_hint() {
    let errors = expr_errors("roud(member.points / 3.0) > 1");
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean \"round\"?"));
}

#[test]
fn an_unknown_method_does_not_compile() {
    let errors = expr_errors("member.tags.lenn() > 0");
    assert_eq!(errors[0].message, "unknown function \"lenn\"");
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean \"len\"?"));
}

#[test]
fn built_in_functions_methods_operators_and_accessors_compile() {
    let texts = [
        r#""vip" in member.tags"#,
        r#"member.tags.contains("vip") && member.name.contains("L")"#,
        "member.tags.len() > 0 && member.tags.len > 0",
        "member.points.to_string() != \"\" && `${member.points}` != \"\"",
        "member.tags[0] == \"vip\" && member.counters[\"events.checkin\"] > 1",
        "(member.counters.likes ?? 0) < 1 && !(member.points < 0)",
        "type_of(event.data.amount) == \"decimal\" && abs(-1) == 1 && round(1.5) == 2.0",
        "is_def_var(\"member\") && max(1, 2) == 2 && \"a b\".split(\" \").len() == 2",
        "range(0, 3).len() == 3 && (1..3).contains(2) && now.hour.to_decimal() >= 0.0",
    ];
    for text in texts {
        assert_eq!(expr_errors(text), Vec::new(), "{text}");
    }
}

#[test]
fn a_function_the_script_defines_may_be_called() {
    let text = "award(double(member.points));\nfn double(n) { n * 2 }";
    assert_eq!(script_errors(text), Vec::new());
}

#[test]
fn a_closure_stored_in_a_map_may_be_called_as_a_method() {
    let text =
        "let m = #{ bump: |n| n + 1 };\naward(m.bump(1));\nlet f = |n| n * 2;\naward(f.call(2));";
    assert_eq!(script_errors(text), Vec::new());
}

#[test]
fn actions_are_known_functions_in_scripts() {
    let text = r#"award(1, "x"); tag("a"); untag("a"); badge("b"); set("k", 1);
send("welcome", "email"); escalate("support", "high", "s");"#;
    assert_eq!(script_errors(text), Vec::new());
}

#[test]
fn a_single_quoted_string_gets_a_hint_to_use_double_quotes() {
    let errors = expr_errors("'vip' in member.tags");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("Invalid character"),
        "{errors:?}"
    );
    assert_eq!(
        errors[0].hint.as_deref(),
        Some("Rhai strings use double quotes: \"vip\"")
    );
}

#[test]
fn other_syntax_errors_get_no_quote_hint() {
    let errors = expr_errors("member.points >");
    assert_eq!(errors[0].hint, None);
}

#[test]
fn member_reads_are_listed_with_their_place_in_the_text() {
    let expr = Sandbox::new()
        .compile_expr(
            "member.point > 1 && member.tags[0] == \"x\" && member.counters.likes > 0 && event.member != ()",
            inline_at(4),
        )
        .unwrap();
    let reads: Vec<_> = expr
        .member_reads()
        .into_iter()
        .map(|r| (r.name, r.pos))
        .collect();
    assert_eq!(
        reads,
        [
            ("point".to_string(), Some((1, 8))),
            ("tags".to_string(), Some((1, 28))),
            ("counters".to_string(), Some((1, 53)))
        ]
    );
}

#[test]
fn literal_keys_a_script_sets_are_listed() {
    let script = Sandbox::new()
        .compile_script(
            "set(\"vip_since\", 1);\nlet k = \"x\";\nset(k, 2);",
            file_at(),
        )
        .unwrap();
    assert_eq!(script.literal_set_keys(), ["vip_since"]);
}

#[test]
fn left_and_unsubscribed_are_booleans_on_member() {
    assert!(truth(
        "member.left == false && member.unsubscribed == false"
    ));
    let mut gone = member();
    gone.left = true;
    gone.unsubscribed = true;
    let sandbox = Sandbox::new();
    let expr = sandbox
        .compile_expr("member.left && member.unsubscribed", inline_at(4))
        .unwrap();
    let mut bindings = Bindings::new(&gone, None, now(), &serde_json::json!({}));
    assert!(sandbox.eval_bool(&expr, &mut bindings).unwrap());
}
