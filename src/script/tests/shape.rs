//! The part of `member` a rule set's Rhai reads, and bindings built to that shape.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::*;
use crate::script::{MemberShape, Reads};

fn shape_of(text: &str) -> MemberShape {
    Sandbox::new()
        .compile_script(text, file_at())
        .unwrap()
        .reads()
        .member
}

fn fields(names: &[&str]) -> MemberShape {
    MemberShape::Fields(names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>())
}

#[test]
fn reads_by_name_are_all_a_text_needs() {
    assert_eq!(
        shape_of(
            "member.points > 10 && member.tags.contains(\"vip\") || member.counters[\"x\"] > 1"
        ),
        fields(&["counters", "points", "tags"])
    );
    assert_eq!(shape_of("member.name == \"Lin\""), fields(&["name"]));
    assert_eq!(shape_of("event.data.amount > 1"), fields(&[]));
}

#[test]
fn any_other_use_of_member_needs_all_of_it() {
    for text in [
        "member[\"points\"] > 1",
        "let m = member; m.points > 1",
        "member.keys().len() > 0",
        "\"vip\" in member",
        "type_of(member) == \"map\"",
        "member.points > 1 && member.len() > 1",
    ] {
        assert_eq!(shape_of(text), MemberShape::Whole, "{text}");
    }
}

#[test]
fn shapes_add_up_and_whole_wins() {
    let mut shape = MemberShape::default();
    shape.include(&fields(&["points"]));
    shape.include(&fields(&["tier"]));
    assert_eq!(shape, fields(&["points", "tier"]));
    shape.include(&MemberShape::Whole);
    shape.include(&fields(&["tags"]));
    assert_eq!(shape, MemberShape::Whole);
}

#[test]
fn a_shaped_member_reads_the_same_as_the_whole_one() {
    let sandbox = Sandbox::new();
    let campaign = serde_json::json!({});
    for text in [
        "member.points + member.purchases",
        "member.points_lifetime",
        "member.tier",
        "member.tags",
        "member.badges",
        "member.counters",
        "member.spend_total",
        "member.name",
        "member.age",
        "member.joined_at",
        "member.left",
        "member.missing_attribute",
    ] {
        let expr = sandbox.compile_expr(text, inline_at(4)).unwrap();
        let reads = Arc::new(expr.reads());
        let mut whole = Bindings::new(&member(), None, now(), &campaign);
        let mut shaped = Bindings::reading(&member(), None, now(), || campaign.clone(), reads);
        let expected = sandbox.eval_value(&expr, &mut whole).unwrap();
        let got = sandbox.eval_value(&expr, &mut shaped).unwrap();
        assert_eq!(got, expected, "{text}");
    }
}

#[test]
fn only_the_bindings_a_text_names_are_read() {
    let reads = |text: &str| {
        Sandbox::new()
            .compile_script(text, file_at())
            .unwrap()
            .reads()
    };
    let r = reads("event.data.amount > 1 && now.hour > 8");
    assert!(r.event && r.now && !r.campaign);
    assert_eq!(r.member, MemberShape::Fields(BTreeSet::new()));
    let r = reads("campaign.double11.phase == \"peak\"");
    assert!(r.campaign && !r.event && !r.now);
    let mut all = Reads::default();
    all.include(&reads("event.type"));
    all.include(&reads("member.points"));
    assert!(all.event && !all.now);
    assert_eq!(
        all.member,
        MemberShape::Fields(["points".to_string()].into())
    );
}

#[test]
fn bindings_not_read_are_unit() {
    let sandbox = Sandbox::new();
    let expr = sandbox.compile_expr("member.points", inline_at(4)).unwrap();
    let reads = Arc::new(expr.reads());
    let campaign = serde_json::json!({"double11": {"phase": "peak"}});
    let called = std::cell::Cell::new(false);
    let bindings = Bindings::reading(
        &member(),
        Some(&purchase()),
        now(),
        || {
            called.set(true);
            campaign.clone()
        },
        reads,
    );
    assert!(!called.get(), "the campaign map is built only when read");
    assert!(bindings.get("event").is_some_and(|e| e.is_unit()));
    assert!(bindings.get("now").is_some_and(|e| e.is_unit()));
}
