//! A rule's `actions`: each list item is a mapping with exactly one action key.

use crate::rules::compile::Ctx;
use crate::rules::convert::{
    boolean, choice, compile_rhai, compile_script_file, fields, resolve, string, Diag, RhaiKind,
};
use crate::rules::sections::counters::amount;
use crate::rules::yaml::{Node, Value};
use crate::rules::{Action, Address, Amount, RuleError, SetValue, Severity, SourcePos};

const KINDS: [&str; 9] = [
    "points", "tag", "untag", "badge", "set", "send", "escalate", "script", "credit",
];

/// The list of actions; `None` if it is empty or any action is wrong.
pub fn compile(ctx: &mut Ctx, value: &Value) -> Option<Vec<Action>> {
    let Node::Seq(items) = &value.node else {
        ctx.d.error(
            &value.at,
            format!("\"actions\" must be a list, found {}", value.kind()),
        );
        return None;
    };
    if items.is_empty() {
        ctx.d.error(&value.at, "a rule needs at least one action");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match action(ctx, item) {
            Some(a) => out.push(a),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn action(ctx: &mut Ctx, item: &Value) -> Option<Action> {
    let f = fields(&mut ctx.d, item, "action", &KINDS)?;
    let known: Vec<_> = f
        .entries
        .iter()
        .filter(|(k, _)| KINDS.contains(&k.name.as_str()))
        .collect();
    let (key, v) = match known.as_slice() {
        [(key, v)] => (key, v),
        [] => {
            if !f.had_unknown {
                ctx.d.error(
                    &item.at,
                    format!("an action needs one of: {}", KINDS.join(", ")),
                );
            }
            return None;
        }
        [(first, _), (second, _), ..] => {
            ctx.d.error(
                &second.at,
                format!(
                    "one action per list item: found both {:?} and {:?} (start another item with \"-\")",
                    first.name, second.name
                ),
            );
            return None;
        }
    };
    let d = &mut ctx.d;
    match key.name.as_str() {
        "points" => points(ctx, v),
        "tag" => name(d, v, "tag").map(Action::Tag),
        "untag" => name(d, v, "untag").map(Action::Untag),
        "badge" => name(d, v, "badge").map(Action::Badge),
        "set" => set(ctx, v),
        "send" => send(ctx, v),
        "escalate" => escalate(ctx, v),
        "credit" => super::credit::compile(ctx, v),
        _ => script(ctx, v),
    }
}

pub(super) fn name(d: &mut Diag, value: &Value, what: &str) -> Option<String> {
    let text = string(d, value, what)?;
    if text.trim().is_empty() {
        d.error(&value.at, format!("{what:?} needs a name"));
        return None;
    }
    Some(text.to_string())
}

/// `points: N`, `points: "expr"` or
/// `points: { amount: N or "expr", reason: TEXT, cap: BOOL }`.
fn points(ctx: &mut Ctx, value: &Value) -> Option<Action> {
    if let Node::Map(_) = value.node {
        let f = fields(&mut ctx.d, value, "points", &["amount", "reason", "cap"])?;
        let amount_value = f.require(&mut ctx.d, "amount");
        let reason = match f.get("reason") {
            None => Some(None),
            Some(r) => string(&mut ctx.d, r, "reason").map(|s| Some(s.to_string())),
        };
        let daily_cap = match f.get("cap") {
            None => Some(true),
            Some(c) => boolean(&mut ctx.d, c, "cap"),
        };
        let amount = whole_points(ctx, amount_value?)?;
        return Some(Action::Points {
            amount,
            reason: reason?,
            daily_cap: daily_cap?,
        });
    }
    Some(Action::Points {
        amount: whole_points(ctx, value)?,
        reason: None,
        daily_cap: true,
    })
}

/// Points are integers: a fixed amount must be a whole number.
pub(super) fn whole_points(ctx: &mut Ctx, value: &Value) -> Option<Amount> {
    if let Node::Float(n) = value.node {
        ctx.d
            .error(&value.at, format!("points are whole numbers, found {n}"));
        return None;
    }
    amount(ctx, value, "points")
}

/// `set: { KEY: VALUE, KEY: { expr: "rhai" } }`.
fn set(ctx: &mut Ctx, value: &Value) -> Option<Action> {
    let Node::Map(entries) = &value.node else {
        ctx.d.error(
            &value.at,
            format!(
                "\"set\" must be a mapping of attribute names to values, found {}",
                value.kind()
            ),
        );
        return None;
    };
    if entries.is_empty() {
        ctx.d
            .error(&value.at, "\"set\" needs at least one attribute");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (key, v) in entries {
        ctx.d.set_keys.insert(key.name.clone());
        let computed = match &v.node {
            Node::Map(inner) if inner.len() == 1 && inner[0].0.name == "expr" => {
                let expr_value = &inner[0].1;
                Some(
                    string(&mut ctx.d, expr_value, "expr")
                        .and_then(|text| {
                            compile_rhai(
                                &mut ctx.d,
                                ctx.sandbox,
                                expr_value,
                                text,
                                RhaiKind::Expression,
                            )
                        })
                        .map(SetValue::Expr),
                )
            }
            _ => None,
        };
        match computed.unwrap_or_else(|| Some(SetValue::Literal(to_json(v)))) {
            Some(set_value) => out.push((key.name.clone(), set_value)),
            None => ok = false,
        }
    }
    ok.then_some(Action::Set(out))
}

fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match &value.node {
        Node::Null => J::Null,
        Node::Bool(b) => J::Bool(*b),
        Node::Int(i) => J::from(*i),
        Node::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Node::Str(s) => J::String(s.clone()),
        Node::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Node::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}

fn send(ctx: &mut Ctx, value: &Value) -> Option<Action> {
    let d = &mut ctx.d;
    let f = fields(d, value, "send", &["template", "channel", "to", "kind"])?;
    let names = &ctx.names;
    let template = f.require(d, "template").and_then(|v| {
        let name = string(d, v, "template")?;
        resolve(d, v, name, "template", &names.templates)
    });
    let channel = f.require(d, "channel").and_then(|v| {
        let name = string(d, v, "channel")?;
        resolve(d, v, name, "channel", &names.channels)
    });
    let to = match f.get("to") {
        None => Some(None),
        Some(v) => string(d, v, "to").and_then(|text| address(ctx, v, text).map(Some)),
    };
    let transactional = match f.get("kind") {
        None => Some(false),
        Some(v) => choice(&mut ctx.d, v, "kind", &["marketing", "transactional"])
            .map(|kind| kind == "transactional"),
    };
    Some(Action::Send {
        template: template?,
        channel: channel?,
        to: to?,
        transactional: transactional?,
    })
}

/// `send.to`, compiled as a template with the message scope, so a mistake in it is
/// reported now, at its place in the scalar.
fn address(ctx: &mut Ctx, value: &Value, text: &str) -> Option<Address> {
    let at = SourcePos {
        file: value.at.file.clone(),
        line: value.text_start.line,
        col: value.text_start.col,
    };
    if text.trim().is_empty() {
        ctx.d.error(
            &value.at,
            "\"to\" must not be empty (leave it out to send to the member)",
        );
        return None;
    }
    // Without compiled templates (they have errors, already reported) there is
    // nowhere to add it; the rule set is refused anyway.
    if let Some(messages) = &mut ctx.messages {
        if let Err(errors) = messages.add_address(text, &at) {
            ctx.d.errors.extend(errors.into_iter().map(RuleError::from));
            return None;
        }
    }
    Some(Address {
        text: text.to_string(),
        at,
    })
}

fn escalate(ctx: &mut Ctx, value: &Value) -> Option<Action> {
    let d = &mut ctx.d;
    let f = fields(d, value, "escalate", &["policy", "severity", "summary"])?;
    let policy = f.require(d, "policy").and_then(|v| {
        let name = string(d, v, "policy")?;
        resolve(d, v, name, "escalation policy", &ctx.names.escalations)
    });
    let severity = match f.get("severity") {
        None => Some(Severity::Normal),
        Some(v) => choice(d, v, "severity", &["low", "normal", "high"]).and_then(Severity::parse),
    };
    let summary = f.req_str(d, "summary");
    Some(Action::Escalate {
        policy: policy?,
        severity: severity?,
        summary: summary?.to_string(),
    })
}

/// `script: path/to/file.rhai` (relative to the rules directory) or inline Rhai.
fn script(ctx: &mut Ctx, value: &Value) -> Option<Action> {
    let text = string(&mut ctx.d, value, "script")?;
    let trimmed = text.trim();
    let is_path = trimmed.ends_with(".rhai") && !trimmed.contains(['\n', ' ', ';', '(']);
    if is_path {
        let (at, source) = ctx.read_file(value, trimmed)?;
        return compile_script_file(&mut ctx.d, ctx.sandbox, at, &source).map(Action::Script);
    }
    compile_rhai(&mut ctx.d, ctx.sandbox, value, text, RhaiKind::Script).map(Action::Script)
}
