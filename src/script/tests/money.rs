//! Numbers in expressions are integers or exact decimals: counters compare with
//! integers and decimals as written, and amounts compute without float error.

use super::*;

/// A member with `spend_total` of 0.8 (eight purchases of 0.1) and one purchase.
fn bindings_with(spend_total: &str, purchases: i64) -> Bindings {
    let mut m = Member::new("m-1");
    m.counters
        .insert("spend_total", spend_total.parse().unwrap());
    m.counters.insert("purchases", Decimal::from(purchases));
    Bindings::new(&m, Some(&purchase()), now(), &json!({}))
}

fn eval(text: &str, b: &mut Bindings) -> Decimal {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr(text, inline_at(4)).unwrap();
    sandbox.eval_number(&expr, b).unwrap()
}

fn holds(text: &str, b: &mut Bindings) -> bool {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr(text, inline_at(4)).unwrap();
    sandbox.eval_bool(&expr, b).unwrap()
}

#[test]
fn a_decimal_counter_times_an_integer_is_exact() {
    let mut b = bindings_with("0.8", 1);
    assert_eq!(eval("member.spend_total * 10", &mut b), Decimal::from(8));
}

#[test]
fn decimal_literals_are_exact() {
    let mut b = bindings_with("0", 0);
    assert!(holds("0.1 + 0.2 == 0.3", &mut b));
    assert_eq!(
        eval("member.purchases * 0.29 + 100 * 0.29", &mut b),
        Decimal::from(29)
    );
}

#[test]
fn counters_compare_with_integers_and_decimals() {
    let mut b = bindings_with("100.5", 1);
    assert!(holds("member.spend_total >= 100", &mut b));
    assert!(holds(
        "member.spend_total > 100.25 && member.spend_total < 101",
        &mut b
    ));
    assert!(holds("member.spend_total == 100.5", &mut b));
    assert!(holds(
        "member.purchases == 1 && member.purchases >= 1.0",
        &mut b
    ));
}

#[test]
fn a_whole_counter_reads_as_an_integer() {
    let mut b = bindings_with("1990.0", 3);
    assert!(holds("type_of(member.spend_total) == \"i64\"", &mut b));
    assert_eq!(eval("member.spend_total / 100", &mut b), Decimal::from(19));
    assert_eq!(
        eval("member.spend_total / 100.0", &mut b),
        Decimal::new(199, 1)
    );
}

#[test]
fn a_decimal_event_amount_computes_exactly() {
    let mut b = bindings_with("0", 0);
    // `purchase()` carries an amount of 199.0.
    assert_eq!(
        eval("event.data.amount * 0.15", &mut b),
        Decimal::new(2985, 2)
    );
}

#[test]
fn a_script_award_of_a_decimal_is_rounded_toward_zero() {
    let actions = run("award(member.spend_total * 0.01 * 3, \"cashback\");").unwrap();
    // spend_total 1234.5 → 37.035 → 37.
    assert_eq!(
        actions,
        [ScriptAction::Award {
            amount: 37,
            reason: Some("cashback".into())
        }]
    );
}

#[test]
fn an_expression_can_choose_its_own_rounding() {
    let mut b = bindings_with("0", 0);
    assert_eq!(eval("round_half_up(2.5, 0)", &mut b), Decimal::from(3));
    assert_eq!(eval("ceiling(2.1)", &mut b), Decimal::from(3));
    assert_eq!(eval("floor(-2.1)", &mut b), Decimal::from(-3));
}
