//! `counters:` (custom per-member counters) and `tiers:` (the member ladder), which is
//! measured by a counter or an expression.

use crate::localtime::Period;
use crate::rules::compile::{Ctx, Ids, Names, Section};
use crate::rules::convert::{
    choice, compile_rhai, decimal, event_type, fields, ident, one_or_many, string, Diag, RhaiKind,
};
use crate::rules::yaml::{Node, Value};
use crate::rules::{Amount, CounterDef, Measure, TierLevel, Tiers};

/// Counters Rally keeps for every member, besides `events.<type>`.
pub const BUILTIN_COUNTERS: [&str; 7] = [
    "points",
    "points_lifetime",
    "spend_total",
    "purchases",
    "checkin_streak",
    "checkin_best",
    // Members who joined naming this one as `data.referrer` (engine/credit.rs).
    "referrals",
];

/// Whether `name` is a counter a milestone or a tier ladder can use.
pub fn is_counter(names: &Names, name: &str) -> bool {
    BUILTIN_COUNTERS.contains(&name)
        || names.counters.iter().any(|c| c == name)
        || name.strip_prefix("events.").is_some_and(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'))
        })
}

/// Every counter name, for "did you mean" hints.
pub fn counter_names(names: &Names) -> Vec<&str> {
    BUILTIN_COUNTERS
        .iter()
        .copied()
        .chain(names.counters.iter().map(String::as_str))
        .collect()
}

pub fn compile(ctx: &mut Ctx, sections: &[Section]) -> Vec<CounterDef> {
    let mut ids = Ids::new("counter");
    let mut out = Vec::new();
    for section in sections {
        for item in section.list(&mut ctx.d) {
            if let Some(counter) = counter(ctx, &mut ids, item) {
                out.push(counter);
            }
        }
    }
    out
}

fn counter(ctx: &mut Ctx, ids: &mut Ids, item: &Value) -> Option<CounterDef> {
    let d = &mut ctx.d;
    let f = fields(d, item, "counter", &["id", "on", "add", "reset"])?;
    let id_value = f.require(d, "id");
    let id = id_value.and_then(|v| ident(d, v, "counter"));
    if let (Some(id), Some(v)) = (&id, id_value) {
        if BUILTIN_COUNTERS.contains(&id.as_str()) {
            d.error(
                &v.at,
                format!("{id:?} is a built-in counter; choose another id"),
            );
        } else if ids.claim(d, id, &v.at) {
            ctx.names.counters.push(id.clone());
        }
    }
    let on = f.require(d, "on").and_then(|v| one_or_many(d, v, "on"));
    let on: Option<Vec<String>> =
        on.map(|list| list.into_iter().filter_map(|v| event_type(d, v)).collect());
    let add = match f.get("add") {
        None => Some(Amount::Fixed(crate::money::Decimal::ONE)),
        Some(v) => amount(ctx, v, "add"),
    };
    let d = &mut ctx.d;
    let reset = match f.get("reset") {
        None => Some(None),
        Some(v) => {
            choice(d, v, "reset", &["never", "daily", "weekly", "monthly"]).map(|r| match r {
                "daily" => Some(Period::Day),
                "weekly" => Some(Period::Week),
                "monthly" => Some(Period::Month),
                _ => None,
            })
        }
    };
    Some(CounterDef {
        id: id?,
        on: on?,
        add: add?,
        reset: reset?,
        at: item.at.clone(),
    })
}

/// A number as written, or a Rhai expression string computing one.
pub fn amount(ctx: &mut Ctx, value: &Value, name: &str) -> Option<Amount> {
    match &value.node {
        Node::Str(_) if value.unresolved => None,
        Node::Str(text) => compile_rhai(&mut ctx.d, ctx.sandbox, value, text, RhaiKind::Expression)
            .map(Amount::Expr),
        _ => decimal(&mut ctx.d, value, name).map(Amount::Fixed),
    }
}

pub fn tiers(ctx: &mut Ctx, section: Option<&Section>) -> Option<Tiers> {
    let section = section?;
    let f = fields(&mut ctx.d, section.value, "tiers", &["by", "levels"])?;
    let by = f.require(&mut ctx.d, "by").and_then(|v| measure(ctx, v));
    let d = &mut ctx.d;
    let mut written = Vec::new();
    let levels = f
        .require(d, "levels")
        .and_then(|v| levels(d, v, &mut written));
    ctx.names.tier_levels = Some(written);
    Some(Tiers {
        by: by?,
        levels: levels?,
    })
}

/// A counter name, or a Rhai expression over `member`. A bare name that is no counter
/// is reported as an unknown counter (a typo), not compiled as a variable.
pub(crate) fn measure(ctx: &mut Ctx, value: &Value) -> Option<Measure> {
    let text = string(&mut ctx.d, value, "by")?;
    if is_counter(&ctx.names, text) {
        return Some(Measure::Counter(text.to_string()));
    }
    let bare_name = text
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if bare_name && !text.starts_with("member") {
        let known = counter_names(&ctx.names);
        let hint = crate::rules::convert::did_you_mean(text, known);
        ctx.d
            .error_hint(&value.at, format!("unknown counter {text:?}"), hint);
        return None;
    }
    compile_rhai(&mut ctx.d, ctx.sandbox, value, text, RhaiKind::Expression).map(Measure::Expr)
}

/// The ladder; every name written goes to `written`, valid or not, so rules naming a
/// tier are not also reported when only its `from` is wrong.
fn levels(d: &mut Diag, value: &Value, written: &mut Vec<String>) -> Option<Vec<TierLevel>> {
    let Node::Seq(items) = &value.node else {
        d.error(
            &value.at,
            format!("\"levels\" must be a list, found {}", value.kind()),
        );
        return None;
    };
    if items.is_empty() {
        d.error(&value.at, "tiers need at least one level");
        return None;
    }
    let mut ok = true;
    let mut out: Vec<TierLevel> = Vec::new();
    let mut names = Ids::new("tier");
    for item in items {
        let Some(f) = fields(d, item, "tier level", &["name", "from"]) else {
            ok = false;
            continue;
        };
        let name = f.require(d, "name").and_then(|v| {
            let name = string(d, v, "name")?;
            if matches!(name, "up" | "down") {
                d.error(
                    &v.at,
                    format!(
                        "{name:?} cannot name a tier: tier triggers use it for any step {name}"
                    ),
                );
                return None;
            }
            written.push(name.to_string());
            names.claim(d, name, &v.at).then(|| name.to_string())
        });
        let from = f.require(d, "from").and_then(|v| {
            let from = decimal(d, v, "from")?;
            if let Some(prev) = out.last() {
                if from <= prev.from {
                    d.error(&v.at, format!("tier levels must be in ascending order of \"from\": {from} is not above {} ({})", prev.from, prev.name));
                    return None;
                }
            }
            Some(from)
        });
        match (name, from) {
            (Some(name), Some(from)) => out.push(TierLevel { name, from }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}
