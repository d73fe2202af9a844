//! `random()`, `random_int(a, b)` and `chance(p)`: in range, reproducible, keyed.

use super::*;

fn key(byte: u8) -> RandomKey {
    RandomKey([byte; 16])
}

/// Bindings whose draws are keyed by `key` and come from the step `input`, rule `rule`.
fn drawing(key: RandomKey, input: &str, rule: &str) -> Bindings {
    let mut b = bindings();
    *b.random_mut() = RandomStream::new(key, input.to_string());
    b.random_mut().enter_rule(rule);
    b
}

fn eval(text: &str, b: &mut Bindings) -> Result<Value, ScriptError> {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr(text, inline_at(4)).unwrap();
    sandbox.eval_value(&expr, b)
}

fn draws(text: &str, key: RandomKey, input: &str, rule: &str) -> Vec<Value> {
    let mut b = drawing(key, input, rule);
    (0..20).map(|_| eval(text, &mut b).unwrap()).collect()
}

#[test]
fn random_is_a_decimal_from_zero_up_to_but_not_including_one() {
    let mut b = drawing(key(1), "event\u{1f}e-1", "lottery");
    for _ in 0..500 {
        assert_eq!(eval("type_of(random())", &mut b).unwrap(), json!("decimal"));
        assert_eq!(
            eval("random() >= 0 && random() < 1", &mut b).unwrap(),
            json!(true)
        );
    }
}

#[test]
fn random_int_stays_within_both_bounds_and_reaches_each() {
    let mut b = drawing(key(1), "event\u{1f}e-1", "dice");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..600 {
        let n = eval("random_int(1, 6)", &mut b).unwrap().as_i64().unwrap();
        assert!((1..=6).contains(&n), "{n}");
        seen.insert(n);
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(eval("random_int(7, 7)", &mut b).unwrap(), json!(7));
    let extremes = eval(
        "random_int(-9223372036854775808, 9223372036854775807)",
        &mut b,
    );
    assert!(extremes.is_ok(), "{extremes:?}");
}

#[test]
fn random_int_with_the_bounds_the_wrong_way_round_is_an_error() {
    let mut b = drawing(key(1), "event\u{1f}e-1", "dice");
    let error = eval("random_int(6, 1)", &mut b).unwrap_err();
    assert!(
        error
            .message
            .contains("lower bound is above the upper bound"),
        "{}",
        error.message
    );
}

#[test]
fn chance_of_zero_never_and_of_one_always_holds() {
    let mut b = drawing(key(1), "event\u{1f}e-1", "coin");
    for _ in 0..200 {
        assert_eq!(eval("chance(0)", &mut b).unwrap(), json!(false));
        assert_eq!(eval("chance(1)", &mut b).unwrap(), json!(true));
        assert_eq!(eval("chance(0.0)", &mut b).unwrap(), json!(false));
    }
}

#[test]
fn chance_holds_about_as_often_as_its_probability() {
    let mut b = drawing(key(3), "event\u{1f}e-9", "coin");
    let hits = (0..2000)
        .filter(|_| eval("chance(0.25)", &mut b).unwrap() == json!(true))
        .count();
    assert!((400..600).contains(&hits), "{hits} of 2000");
}

#[test]
fn chance_outside_zero_to_one_is_an_error() {
    let mut b = drawing(key(1), "event\u{1f}e-1", "coin");
    for text in [
        "chance(1.5)",
        "chance(-0.1)",
        "chance(2)",
        "chance(\"half\")",
    ] {
        assert!(eval(text, &mut b).is_err(), "{text}");
    }
}

#[test]
fn the_same_key_input_and_rule_draw_the_same_sequence() {
    let first = draws("random()", key(1), "event\u{1f}e-1", "lottery");
    assert_eq!(
        first,
        draws("random()", key(1), "event\u{1f}e-1", "lottery")
    );
    let distinct: std::collections::BTreeSet<String> =
        first.iter().map(|v| v.to_string()).collect();
    assert_eq!(distinct.len(), first.len(), "draws within a step differ");
}

#[test]
fn another_event_rule_or_key_draws_differently() {
    let base = draws("random()", key(1), "event\u{1f}e-1", "lottery");
    assert_ne!(base, draws("random()", key(1), "event\u{1f}e-2", "lottery"));
    assert_ne!(base, draws("random()", key(1), "event\u{1f}e-1", "raffle"));
    assert_ne!(base, draws("random()", key(2), "event\u{1f}e-1", "lottery"));
}

#[test]
fn a_script_draws_the_same_as_an_expression_would_in_its_place() {
    let sandbox = Sandbox::new();
    let script = sandbox
        .compile_script("award(random_int(1, 1000));", file_at())
        .unwrap();
    let mut b = drawing(key(5), "event\u{1f}e-7", "bonus");
    let actions = sandbox.run_script(&script, &mut b).unwrap();
    let expected = draws("random_int(1, 1000)", key(5), "event\u{1f}e-7", "bonus")[0].clone();
    assert_eq!(
        actions,
        vec![ScriptAction::Award {
            amount: expected.as_i64().unwrap(),
            reason: None
        }]
    );
}

#[test]
fn a_hex_key_reads_back_and_a_phrase_hashes_to_a_key() {
    let k = RandomKey::generate();
    assert_eq!(RandomKey::parse(&k.to_hex()), k);
    assert_eq!(
        RandomKey::parse("lottery-2026"),
        RandomKey::parse("lottery-2026")
    );
    assert_ne!(RandomKey::parse("lottery-2026"), RandomKey::default());
}

#[test]
fn rand_is_not_a_function_and_the_hint_names_random() {
    let errors = match Sandbox::new().compile_expr("rand() < 0.5", inline_at(4)) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].message, "unknown function \"rand\"");
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean \"random\"?"));
}
