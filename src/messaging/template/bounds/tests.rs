//! Each test renders one hostile body and expects a clear failure, not an abort.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::super::{RenderError, Templates};
use super::{MAX_EMITTED, MAX_RENDERED, MAX_STRING};
use crate::rules::{SourcePos, Template};

fn templates(body: &str) -> Templates {
    let template = Template {
        id: "t".to_string(),
        subject: "Hi".to_string(),
        body: body.to_string(),
        html: false,
        at: SourcePos {
            file: Arc::from("rules/messages.yaml"),
            line: 10,
            col: 5,
        },
    };
    let map = BTreeMap::from([("t".to_string(), template)]);
    match Templates::compile(&map, &BTreeMap::new()) {
        Ok(t) => t,
        Err(e) => panic!("{e:?}"),
    }
}

fn render(body: &str) -> Result<String, RenderError> {
    let ctx = json!({
        "member": {"id": "m-1", "name": "Lin", "points": 120},
        "event": null, "campaign": {}, "ticket": null, "now": "2026-11-11T02:00:00Z",
    });
    templates(body).render("t", &ctx).map(|r| r.body)
}

fn fails_saying(body: &str, words: &str) {
    match render(body) {
        Err(RenderError::Failed { what, message, at }) => {
            assert_eq!(what, "template \"t\" body");
            assert_eq!(&*at.file, "rules/messages.yaml");
            assert!(message.contains(words), "{message}");
        }
        other => panic!("expected a failed render, got {other:?}"),
    }
}

#[test]
fn a_join_with_a_huge_separator_fails_instead_of_allocating_gigabytes() {
    fails_saying(r#"{{ range(10000) | join("x" * 100000) }}"#, "limit");
}

#[test]
fn the_reported_join_bomb_fails_the_render() {
    fails_saying(r#"{{ range(100000) | join("x" * 100000) }}"#, "limit");
}

#[test]
fn repeating_a_string_past_the_bound_fails() {
    fails_saying(r#"{{ "x" * 300000 }}"#, "repeating this string");
}

#[test]
fn doubling_a_string_with_tilde_in_a_loop_stops_at_the_bound() {
    let body = r#"{% set ns = namespace(s="xxxxxxxxxxxxxxxx") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"#;
    fails_saying(body, "`~`");
}

#[test]
fn doubling_a_string_with_plus_through_macro_arguments_stops_at_the_bound() {
    let body = r#"{% macro grow(s, n) %}{% if n %}{{ grow(s + s, n - 1) }}{% else %}{{ s | length }}{% endif %}{% endmacro %}{{ grow("xxxxxxxx", 40) }}"#;
    fails_saying(body, "`+`");
}

#[test]
fn doubling_a_list_stops_at_the_item_bound() {
    let body = r#"{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}"#;
    fails_saying(body, "items");
}

#[test]
fn a_range_over_ten_thousand_items_fails() {
    fails_saying("{% for i in range(20000) %}{% endfor %}", "range");
}

#[test]
fn replacing_every_gap_with_a_long_text_fails() {
    let body = r#"{{ ("x" * 1000) | replace("", "y" * 1000) }}"#;
    fails_saying(body, "replace");
}

#[test]
fn a_huge_indent_fails() {
    fails_saying(r#"{{ "a\nb" | indent(100000000) }}"#, "indent");
}

#[test]
fn a_huge_format_width_fails() {
    fails_saying(r#"{{ "%999999999s" | format("x") }}"#, "width");
}

#[test]
fn output_over_the_rendered_bound_fails() {
    let body = "{% for i in range(9000) %}{{ \"x\" * 100 }}{% endfor %}";
    const { assert!(9000 * 100 > MAX_RENDERED && 9000 * 100 < MAX_EMITTED) };
    fails_saying(body, "over the limit");
}

#[test]
fn text_captured_again_and_again_counts_toward_the_emitted_bound() {
    let body = r#"{% set ns = namespace(s="x" * 200000) %}{% for i in range(8) %}{% set c %}{{ ns.s }}{% endset %}{% endfor %}done"#;
    fails_saying(body, "prints");
}

#[test]
fn ordinary_arithmetic_and_concatenation_still_work() {
    let body = r#"{{ member.points * 2 }} {{ member.points + 1 }} {{ 7 / 2 }} {{ "a" ~ member.name ~ 1 }} {{ "ab" * 2 }} {{ [1, 2] + [3] }} {{ ([1] * 3) | join(",") }} {{ (1 + 2) * 3 }} {{ -3 ~ "!" }}"#;
    assert_eq!(
        render(body).unwrap(),
        "240 121 3.5 aLin1 abab [1, 2, 3] 1,1,1 9 -3!"
    );
}

#[test]
fn a_string_just_under_the_bound_renders() {
    let body = format!("{{{{ (\"x\" * {}) | length }}}}", MAX_STRING);
    assert_eq!(render(&body).unwrap(), MAX_STRING.to_string());
}

#[test]
fn operators_in_every_kind_of_statement_are_bounded() {
    let body = r#"{% if "x" * 300000 %}{% endif %}"#;
    fails_saying(body, "repeating");
    let body = r#"{% for c in ["x" * 300000] %}{% endfor %}"#;
    fails_saying(body, "repeating");
    let body = r#"{% with s = "x" * 300000 %}{% endwith %}"#;
    fails_saying(body, "repeating");
}

#[test]
fn filters_with_keyword_arguments_still_work() {
    assert_eq!(
        render(r#"{{ "a\nb" | indent(width=2) }}"#).unwrap(),
        "a\n  b"
    );
    assert_eq!(
        render(r#"{{ {"a": 1} | tojson(indent=2) }}"#).unwrap(),
        "{\n  \"a\": 1\n}"
    );
}
