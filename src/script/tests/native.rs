//! Simple conditions decided without Rhai: the same answer as Rhai whenever they
//! answer at all, and Rhai's answer (or error) whenever a value is not plain.

use super::*;

/// The native answer for `text` on the fixture member and purchase.
fn native(text: &str, event: Option<&Event>) -> Option<bool> {
    Sandbox::new()
        .compile_expr(text, inline_at(4))
        .unwrap()
        .native_bool(&member(), event)
}

/// Rhai's answer on the same member and event.
fn rhai(text: &str, event: Option<&Event>) -> Result<bool, ScriptError> {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr(text, inline_at(4)).unwrap();
    let mut bindings = Bindings::new(&member(), event, now(), &json!({}));
    sandbox.eval_bool(&expr, &mut bindings)
}

/// An event whose data holds plain values of each kind.
fn plain() -> Event {
    let mut event = purchase();
    event.data = json!({
        "amount": 300, "channel": "web", "gift": true, "nested": {"level": 3},
        "price": 12.5, "none": null
    })
    .as_object()
    .unwrap()
    .clone();
    event
}

#[test]
fn simple_conditions_are_decided_without_rhai_and_agree_with_it() {
    let event = plain();
    for text in [
        "event.data.amount >= 279",
        "event.data.amount < 279",
        "event.data.amount == 300 && event.data.channel == \"web\"",
        "event.data.channel != \"web\" || member.points > 100",
        "event.data.channel == \"app\" || member.points <= 100",
        "!(event.data.amount > 1000) && event.data.gift",
        "event.data.gift == true && !member.left",
        "event.data.nested.level >= 3",
        "event.type == \"purchase\" && event.id != \"e-1\" && event.member == \"m-42\"",
        "member.tier != \"vip\" && member.points_lifetime >= 300",
        "member.purchases > 9 && member.counters.purchases == 10",
        "member.counters.referrals == 0 && member.referrals == 0",
        "member.counters.referrals > 0 || member.name == \"Lin\"",
        "member.age > 30 && member.id == \"m-42\" && !member.unsubscribed",
        "member.points >= event.data.amount",
        "1 < 2 && true",
        "\"vip\" in member.tags && event.data.amount > 1",
        "\"gold\" in member.tags || \"streak-7\" in member.badges",
        "!(\"gold\" in member.tags) && \"vip\" !in member.tags",
        "\"streak\" in member.badges || \"VIP\" in member.tags",
        "contains(member.tags, \"vip\")",
        // Decimals: Rhai compares an integer with a decimal as two decimals.
        "event.data.price > 12",
        "event.data.price >= 12.5 && event.data.price <= 12.5",
        "event.data.price == 12.5 && event.data.price != 12",
        "member.spend_total > 1000",
        "member.spend_total < 1234.5 || member.counters.spend_total == 1234.5",
        "event.data.amount > event.data.price && member.spend_total > event.data.price",
    ] {
        let fast = native(text, Some(&event));
        assert_eq!(
            fast.map(Ok),
            Some(rhai(text, Some(&event)).map_err(|e| e.message)),
            "{text}"
        );
    }
}

#[test]
fn values_that_are_not_plain_are_left_to_rhai() {
    let event = plain();
    for text in [
        // A missing key is `()`, a null too: Rhai's comparison decides (or fails).
        "event.data.missing == 1",
        "event.data.none == \"x\"",
        // Mixed types, an ordering of strings.
        "event.data.channel == 1",
        "event.data.price == \"12.5\"",
        "event.data.channel > \"a\"",
        // A member without a tier has `()` for one.
        "event.data.nested == 3",
    ] {
        assert_eq!(native(text, Some(&event)), None, "{text}");
    }
    // No event: `event` is `()` for the step's other triggers.
    assert_eq!(native("event.data.amount > 1", None), None);
}

#[test]
fn what_the_translation_does_not_know_stays_in_rhai() {
    let event = plain();
    for text in [
        "member.tags.contains(\"vip\")",
        "1 in member.tags",
        "\"vi\" in member.tier",
        "\"vip\" in event.data.channel",
        "now.hour > 8",
        "campaign.double11.phase == \"peak\"",
        "event.data.amount + 1 > 2",
        "member.counters[\"purchases\"] > 1",
        "member.joined_at == \"x\"",
        "event.data?.amount > 1",
        "random() < 0.5",
    ] {
        assert_eq!(native(text, Some(&event)), None, "{text}");
    }
}

/// The native amount for `text` on the fixture member and `event`.
fn native_amount(text: &str, event: &Event) -> Option<Decimal> {
    Sandbox::new()
        .compile_expr(text, inline_at(4))
        .unwrap()
        .native_amount(&member(), Some(event))
}

/// Rhai's amount on the same member and event.
fn rhai_amount(text: &str, event: &Event) -> Result<Decimal, ScriptError> {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr(text, inline_at(4)).unwrap();
    let mut bindings = Bindings::new(&member(), Some(event), now(), &json!({}));
    sandbox.eval_number(&expr, &mut bindings)
}

#[test]
fn simple_amounts_are_computed_without_rhai_to_the_same_decimal() {
    let event = plain();
    for text in [
        "event.data.amount / 10",
        "event.data.amount / 7",
        "event.data.price / 10",
        "event.data.price / 3",
        "event.data.price * 2 + 1",
        "event.data.price - event.data.amount",
        "member.points * 2 - member.points_lifetime / 7",
        "member.spend_total / 100",
        "member.counters.spend_total * event.data.price",
        "member.age + event.data.nested.level",
        "member.points",
        "event.data.price",
        "(event.data.amount - 1) / (member.points - 20)",
        "-7 / 2",
    ] {
        let fast = native_amount(text, &event);
        let slow = rhai_amount(text, &event).map_err(|e| e.message);
        // The same value and the same scale: `163.25`, not `163.250`.
        assert_eq!(
            fast.map(|d| (d, d.to_string())),
            Some(
                slow.map(|d| (d, d.to_string()))
                    .unwrap_or_else(|e| panic!("{text}: {e}"))
            ),
            "{text}"
        );
    }
}

#[test]
fn amounts_rhai_must_decide_are_left_to_it() {
    let mut event = plain();
    event.data.insert("zero".into(), json!(0));
    event.data.insert("huge".into(), json!(i64::MAX));
    event.data.insert("tiny".into(), json!(0.0));
    for text in [
        // Errors, for Rhai's message: a division by zero, an overflow.
        "event.data.amount / event.data.zero",
        "event.data.price / event.data.tiny",
        "event.data.huge + 1",
        "event.data.huge * 2",
        // Not numbers, or missing.
        "event.data.channel + 1",
        "event.data.missing * 2",
        "member.tier",
        // Outside the translation: a call, a remainder, a power.
        "abs(event.data.price)",
        "event.data.amount % 7",
        "event.data.amount ** 2",
    ] {
        assert_eq!(native_amount(text, &event), None, "{text}");
        // And Rhai does decide them (an error or a value): nothing is lost.
        let _ = rhai_amount(text, &event);
    }
}
