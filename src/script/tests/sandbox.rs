//! Limits, refusals and error reporting.

use super::*;

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
        .unwrap()[0]
        .to_string();
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
        .unwrap()[0]
        .to_string();
    assert!(message.contains("eval"), "{message}");
}

#[test]
fn import_is_refused() {
    let message = Sandbox::new()
        .compile_script("import \"other\" as other;", file_at())
        .err()
        .unwrap()[0]
        .to_string();
    assert!(message.contains("import"), "{message}");
}

#[test]
fn an_unknown_variable_is_a_compile_error() {
    let message = Sandbox::new()
        .compile_expr("membr.points > 10", inline_at(4))
        .err()
        .unwrap()[0]
        .to_string();
    assert!(message.contains("unknown variable `membr`"), "{message}");
}

#[test]
fn sleep_and_clock_functions_are_not_available() {
    for text in ["sleep(1);", "let t = timestamp();"] {
        let errors = Sandbox::new()
            .compile_script(text, file_at())
            .err()
            .unwrap();
        assert!(errors[0].message.starts_with("unknown function"), "{text}");
    }
}

#[test]
fn an_award_divided_by_zero_fails_the_script() {
    let message = failure("award(1.0 / 0.0);");
    assert!(message.contains("zero"), "{message}");
}

#[test]
fn an_award_beyond_any_number_of_points_is_refused() {
    let message = failure("award(79228162514264337593543950335.0);");
    assert!(message.contains("number of points"), "{message}");
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
fn a_compile_error_carries_rhais_position_within_the_text() {
    // The rule loader maps this onto the file's line and column.
    let message = Sandbox::new()
        .compile_script("award(1);\naward(2;", inline_at(30))
        .err()
        .unwrap()[0]
        .to_string();
    assert!(message.ends_with("(line 2, position 8)"), "{message}");
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
fn the_sandbox_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shared::<Sandbox>();
    shared::<Expr>();
    movable::<Bindings>();
}
