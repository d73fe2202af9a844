use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use serde_json::json;

use super::*;
use crate::rules::WebhookChannel;

fn at(line: u32) -> SourcePos {
    SourcePos {
        file: Arc::from("rules/messages.yaml"),
        line,
        col: 5,
    }
}

fn template(id: &str, subject: &str, body: &str, html: bool) -> (String, Template) {
    let template = Template {
        id: id.to_string(),
        subject: subject.to_string(),
        body: body.to_string(),
        html,
        at: at(10),
    };
    (id.to_string(), template)
}

fn compile(templates: Vec<(String, Template)>) -> Result<Templates, Vec<TemplateError>> {
    Templates::compile(&templates.into_iter().collect(), &BTreeMap::new())
}

fn webhook(id: &str, body: &str) -> BTreeMap<String, Channel> {
    let channel = Channel {
        id: id.to_string(),
        kind: ChannelKind::Webhook(WebhookChannel {
            url: "http://127.0.0.1:9/hook".to_string(),
            body: Some(body.to_string()),
            headers: BTreeMap::new(),
            timeout: Duration::seconds(5),
        }),
        retry: Default::default(),
        at: at(30),
    };
    BTreeMap::from([(id.to_string(), channel)])
}

fn ctx() -> serde_json::Value {
    json!({
        "member": {"id": "m-42", "name": "Lin", "points": 120},
        "event": {"type": "purchase", "data": {"amount": 199.0}},
        "campaign": {}, "ticket": null, "now": "2026-11-11T02:00:00Z",
    })
}

#[test]
fn a_template_renders_with_the_member_and_the_event_in_scope() {
    let templates = compile(vec![template(
        "thanks",
        "Thanks, {{ member.name }}",
        "You spent {{ event.data.amount }} and have {{ member.points }} points.",
        false,
    )])
    .unwrap();
    let rendered = templates.render("thanks", &ctx()).unwrap();
    assert_eq!(rendered.subject, "Thanks, Lin");
    assert_eq!(rendered.body, "You spent 199.0 and have 120 points.");
    assert!(!rendered.html);
}

#[test]
fn an_undefined_attribute_fails_the_render_instead_of_printing_nothing() {
    let templates = compile(vec![template(
        "t",
        "Hi",
        "Hi\n{{ member.nickname }}",
        false,
    )])
    .unwrap();
    let err = templates.render("t", &ctx()).unwrap_err();
    let RenderError::Failed { what, at, message } = err else {
        panic!("expected a render failure, got {err:?}");
    };
    assert_eq!(what, "template \"t\" body");
    // The text starts on line 10; the expression is on its second line, column 4.
    assert_eq!(
        (at.file.as_ref(), at.line, at.col),
        ("rules/messages.yaml", 11, 4)
    );
    assert!(message.contains("undefined"), "{message}");
}

#[test]
fn rendering_an_unknown_template_is_an_error_naming_it() {
    let templates = compile(vec![]).unwrap();
    assert_eq!(
        templates.render("nope", &ctx()).unwrap_err(),
        RenderError::UnknownTemplate("nope".to_string())
    );
}

#[test]
fn a_syntax_error_is_reported_at_its_line_in_the_rule_file() {
    let errors = compile(vec![template(
        "t",
        "Hi",
        "line one\nline two\n{% if member.name %}never closed",
        false,
    )])
    .err()
    .unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].at.file.as_ref(), "rules/messages.yaml");
    // The text starts on line 10; the unclosed block is on its third line.
    assert_eq!(errors[0].at.line, 12);
    assert!(
        errors[0]
            .message
            .starts_with("template \"t\" body: syntax error"),
        "{}",
        errors[0]
    );
}

#[test]
fn an_unknown_variable_is_found_at_compile_time_with_a_hint() {
    let errors = compile(vec![template("t", "Hi", "Hi\n{{ membr.name }}", false)])
        .err()
        .unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("\"membr\""), "{}", errors[0]);
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean \"member\"?"));
    assert_eq!((errors[0].at.line, errors[0].at.col), (11, 4));
}

#[test]
fn an_unknown_variable_far_from_every_name_lists_what_is_available() {
    let errors = compile(vec![template("t", "{{ user }}", "x", false)])
        .err()
        .unwrap();
    assert_eq!(
        errors[0].hint.as_deref(),
        Some("templates here can use: member, event, campaign, ticket, now")
    );
}

#[test]
fn every_bad_template_is_reported_in_one_compile() {
    let errors = compile(vec![
        template("a", "{{ membr }}", "x", false),
        template("b", "x", "{% for %}", false),
    ])
    .err()
    .unwrap();
    assert_eq!(errors.len(), 2);
}

#[test]
fn variables_a_template_sets_itself_and_builtin_functions_are_not_unknown() {
    let body = "{% set total = member.points * 2 %}{% for i in range(2) %}{{ loop.index }}{{ i }}{% endfor %}{{ total }}";
    let templates = compile(vec![template("t", "x", body, false)]).unwrap();
    assert_eq!(templates.render("t", &ctx()).unwrap().body, "1021240");
}

#[test]
fn html_bodies_are_escaped_and_plain_bodies_and_subjects_are_not() {
    let mut ctx = ctx();
    ctx["member"]["name"] = json!("<Lin & Co>");
    let templates = compile(vec![
        template(
            "page",
            "Hi {{ member.name }}",
            "<p>{{ member.name }}</p>",
            true,
        ),
        template("text", "Hi {{ member.name }}", "{{ member.name }}", false),
    ])
    .unwrap();
    let page = templates.render("page", &ctx).unwrap();
    assert_eq!(page.body, "<p>&lt;Lin &amp; Co&gt;</p>");
    assert_eq!(page.subject, "Hi <Lin & Co>");
    assert!(page.html);
    assert_eq!(templates.render("text", &ctx).unwrap().body, "<Lin & Co>");
}

#[test]
fn a_runaway_template_runs_out_of_fuel() {
    let body = "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}";
    let templates = compile(vec![template("t", "x", body, false)]).unwrap();
    let err = templates.render("t", &ctx()).unwrap_err();
    assert!(err.to_string().contains("fuel"), "{err}");
}

#[test]
fn a_webhook_body_sees_the_rendered_message() {
    let channels = webhook(
        "wecom",
        r#"{"text": {{ body | tojson }}, "to": {{ to | tojson }}}"#,
    );
    let templates = Templates::compile(&BTreeMap::new(), &channels).unwrap();
    let mut ctx = ctx();
    ctx["body"] = json!("He said \"hi\"");
    ctx["to"] = json!("support-team");
    let body = templates.render_webhook_body("wecom", &ctx).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parsed,
        json!({"text": "He said \"hi\"", "to": "support-team"})
    );
    assert!(templates.has_webhook_body("wecom"));
}

#[test]
fn a_webhook_body_may_not_use_names_outside_its_scope() {
    let channels = webhook("wecom", r#"{"text": {{ bdy | tojson }}}"#);
    let errors = Templates::compile(&BTreeMap::new(), &channels)
        .err()
        .unwrap();
    assert_eq!(errors[0].at.line, 30);
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean \"body\"?"));
}

#[test]
fn a_message_template_may_not_use_the_webhook_only_names() {
    let errors = compile(vec![template("t", "x", "{{ subject }}", false)])
        .err()
        .unwrap();
    assert!(errors[0].message.contains("\"subject\""), "{}", errors[0]);
}

#[test]
fn a_webhook_body_that_does_not_render_to_json_is_an_error() {
    let channels = webhook("wecom", r#"{"text": {{ body }}}"#);
    let templates = Templates::compile(&BTreeMap::new(), &channels).unwrap();
    let mut ctx = ctx();
    ctx["body"] = json!("not quoted");
    let err = templates.render_webhook_body("wecom", &ctx).unwrap_err();
    assert!(matches!(err, RenderError::NotJson { .. }), "{err:?}");
}

#[test]
fn a_channel_without_a_body_template_has_no_webhook_body() {
    let templates = compile(vec![]).unwrap();
    assert!(!templates.has_webhook_body("wecom"));
    assert_eq!(
        templates.render_webhook_body("wecom", &ctx()).unwrap_err(),
        RenderError::NoBodyTemplate("wecom".to_string())
    );
}

#[test]
fn templates_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Templates>();
}

#[test]
fn a_template_error_becomes_a_rule_error_with_its_position_and_hint() {
    let errors = compile(vec![template("t", "{{ evnt }}", "x", false)])
        .err()
        .unwrap();
    let rule_error = RuleError::from(errors[0].clone());
    assert_eq!(
        rule_error.to_string(),
        "rules/messages.yaml:10:8: template \"t\" subject: unknown variable \"evnt\" (did you mean \"event\"?)"
    );
}
