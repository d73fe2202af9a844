//! The functions scripts call to request actions.
//!
//! Each appends to the collector of the run in progress, which travels as the call's
//! tag (`CallFnOptions::with_tag`): no global or thread-local state, so one engine can
//! run scripts on many threads at once. Outside a script run (in an `if` expression, say)
//! there is no collector, and calling an action is an error.

use std::sync::{Arc, Mutex, PoisonError};

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, INT};
use rust_decimal::Decimal;

use super::{dynamic_to_json, ScriptAction};

type Outcome = Result<(), Box<EvalAltResult>>;

/// The actions one run requested, in order. Behind a lock only because a call tag is
/// shared and read-only: each run has its own collector and one thread writes to it.
#[derive(Clone, Default)]
pub(super) struct Collector(Arc<Mutex<Vec<ScriptAction>>>);

impl Collector {
    pub(super) fn take(&self) -> Vec<ScriptAction> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn push(ctx: &NativeCallContext, action: ScriptAction) -> Outcome {
    let collector = ctx
        .tag()
        .and_then(|tag| tag.read_lock::<Collector>())
        .ok_or_else(|| {
            format!(
                "`{}` requests an action: it can only be called from a script, not an expression",
                ctx.fn_name()
            )
        })?;
    let mut actions = collector.0.lock().unwrap_or_else(PoisonError::into_inner);
    if actions.len() >= super::MAX_SCRIPT_ACTIONS {
        return Err(format!(
            "a script may request at most {} actions in one run",
            super::MAX_SCRIPT_ACTIONS
        )
        .into());
    }
    actions.push(action);
    Ok(())
}

/// Points are integers: a fractional amount is rounded toward zero, exactly as
/// `points:` amounts are (so `award(-2.5)` deducts 2, like `points: -2.5`).
fn whole_points(amount: Decimal) -> Result<i64, Box<EvalAltResult>> {
    crate::money::whole_points(amount)
        .ok_or_else(|| format!("award amount must be a number of points, not {amount}").into())
}

fn non_empty(what: &str, value: &str) -> Result<String, Box<EvalAltResult>> {
    if value.trim().is_empty() {
        Err(format!("{what} must not be empty").into())
    } else {
        Ok(value.to_string())
    }
}

fn award(ctx: &NativeCallContext, amount: i64, reason: Option<&str>) -> Outcome {
    let reason = reason.map(str::to_string);
    push(ctx, ScriptAction::Award { amount, reason })
}

pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("award", |ctx: NativeCallContext, n: INT| {
        award(&ctx, n, None)
    });
    engine.register_fn("award", |ctx: NativeCallContext, n: Decimal| {
        award(&ctx, whole_points(n)?, None)
    });
    engine.register_fn("award", |ctx: NativeCallContext, n: INT, reason: &str| {
        award(&ctx, n, Some(reason))
    });
    engine.register_fn(
        "award",
        |ctx: NativeCallContext, n: Decimal, reason: &str| {
            award(&ctx, whole_points(n)?, Some(reason))
        },
    );
    engine.register_fn("tag", |ctx: NativeCallContext, name: &str| {
        push(&ctx, ScriptAction::Tag(non_empty("tag name", name)?))
    });
    engine.register_fn("untag", |ctx: NativeCallContext, name: &str| {
        push(&ctx, ScriptAction::Untag(non_empty("tag name", name)?))
    });
    engine.register_fn("badge", |ctx: NativeCallContext, name: &str| {
        push(&ctx, ScriptAction::Badge(non_empty("badge name", name)?))
    });
    engine.register_fn(
        "set",
        |ctx: NativeCallContext, key: &str, value: Dynamic| {
            let key = non_empty("attribute name", key)?;
            let value = dynamic_to_json(ctx.engine(), &value)?;
            push(&ctx, ScriptAction::Set(key, value))
        },
    );
    engine.register_fn(
        "send",
        |ctx: NativeCallContext, template: &str, channel: &str| {
            let template = non_empty("template", template)?;
            let channel = non_empty("channel", channel)?;
            push(&ctx, ScriptAction::Send { template, channel })
        },
    );
    engine.register_fn(
        "escalate",
        |ctx: NativeCallContext, policy: &str, severity: &str, summary: &str| {
            if !matches!(severity, "low" | "normal" | "high") {
                return Err(
                    format!("severity must be low, normal or high, not {severity:?}").into(),
                );
            }
            push(
                &ctx,
                ScriptAction::Escalate {
                    policy: non_empty("escalation policy", policy)?,
                    severity: severity.to_string(),
                    summary: summary.to_string(),
                },
            )
        },
    );
}
