//! The `credit` action: `credit: { member: EXPR, points: N or "expr", reason: TEXT,
//! cap: BOOL, tag: NAME, badge: NAME }` — something for another member, whose id the
//! expression computes (`event.data.referrer`).

use super::actions::{name, whole_points};
use crate::rules::compile::Ctx;
use crate::rules::convert::{boolean, compile_rhai, fields, string, RhaiKind};
use crate::rules::yaml::Node;
use crate::rules::yaml::Value;
use crate::rules::{Action, Amount, Credit};

pub fn compile(ctx: &mut Ctx, value: &Value) -> Option<Action> {
    let f = fields(
        &mut ctx.d,
        value,
        "credit",
        &["member", "points", "reason", "cap", "tag", "badge"],
    )?;
    let member = f.require(&mut ctx.d, "member").and_then(|v| {
        let text = string(&mut ctx.d, v, "member")?;
        compile_rhai(&mut ctx.d, ctx.sandbox, v, text, RhaiKind::Expression)
    });
    let points = match f.get("points") {
        None => Some(None),
        Some(v) => positive_points(ctx, v).map(Some),
    };
    let reason = match f.get("reason") {
        None => Some(None),
        Some(r) => string(&mut ctx.d, r, "reason").map(|s| Some(s.to_string())),
    };
    let daily_cap = match f.get("cap") {
        None => Some(true),
        Some(c) => boolean(&mut ctx.d, c, "cap"),
    };
    let tag = match f.get("tag") {
        None => Some(None),
        Some(v) => name(&mut ctx.d, v, "tag").map(Some),
    };
    let badge = match f.get("badge") {
        None => Some(None),
        Some(v) => name(&mut ctx.d, v, "badge").map(Some),
    };
    if f.get("points").is_none() && f.get("tag").is_none() && f.get("badge").is_none() {
        ctx.d.error(
            &value.at,
            "a credit needs at least one of \"points\", \"tag\" or \"badge\"",
        );
        return None;
    }
    Some(Action::Credit(Credit {
        member: member?,
        points: points?,
        reason: reason?,
        daily_cap: daily_cap?,
        tag: tag?,
        badge: badge?,
    }))
}

/// Credited points are whole and not negative: a rule deducts only from its own member.
fn positive_points(ctx: &mut Ctx, value: &Value) -> Option<Amount> {
    if let Node::Int(n) = value.node {
        if n < 0 {
            ctx.d.error(
                &value.at,
                format!("a credit cannot take points from another member, found {n}"),
            );
            return None;
        }
    }
    whole_points(ctx, value)
}
