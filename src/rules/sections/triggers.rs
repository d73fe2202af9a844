//! A rule's `trigger`: exactly one of the kinds of SPEC §2.2.

use crate::cronspec::CronSpec;
use crate::rules::compile::Ctx;
use crate::rules::convert::{
    decimal, did_you_mean, duration, event_type, fields, one_or_many, resolve, string,
};
use crate::rules::sections::counters::{counter_names, is_counter};
use crate::rules::yaml::Value;
use crate::rules::{Threshold, TierChange, Trigger};

const KINDS: [&str; 10] = [
    "event",
    "milestone",
    "inactive",
    "returned",
    "after",
    "tier",
    "phase",
    "schedule",
    "points_expiring",
    "leaderboard",
];
/// Keys that go with one kind only: `at`/`every` with a milestone, `closes`/`top`
/// with a leaderboard.
const EXTRAS: [(&str, &str); 4] = [
    ("at", "milestone"),
    ("every", "milestone"),
    ("closes", "leaderboard"),
    ("top", "leaderboard"),
];

/// The trigger's kind (when exactly one was written) and the compiled trigger (when
/// it is also valid). The kind alone lets the rule check `audience` and `catch_up`.
pub fn compile(ctx: &mut Ctx, value: &Value) -> (Option<&'static str>, Option<Trigger>) {
    let allowed: Vec<&str> = KINDS
        .iter()
        .copied()
        .chain(EXTRAS.iter().map(|(key, _)| *key))
        .collect();
    let Some(f) = fields(&mut ctx.d, value, "trigger", &allowed) else {
        return (None, None);
    };
    let written: Vec<_> = f
        .entries
        .iter()
        .filter_map(|(k, v)| {
            KINDS
                .iter()
                .find(|kind| **kind == k.name)
                .map(|kind| (*kind, k, v))
        })
        .collect();
    let (kind, v) = match written.as_slice() {
        [] => {
            if !f.had_unknown {
                ctx.d.error(
                    &value.at,
                    format!("a trigger needs one of: {}", KINDS.join(", ")),
                );
            }
            return (None, None);
        }
        [(kind, _, v)] => (*kind, *v),
        [(first, _, _), (second, key, _), ..] => {
            ctx.d.error(
                &key.at,
                format!("a trigger has exactly one kind: found both {first:?} and {second:?}"),
            );
            return (None, None);
        }
    };
    for (extra, owner) in EXTRAS {
        if let (Some(key), false) = (f.key(extra), kind == owner) {
            ctx.d.error(
                &key.at,
                format!("{extra:?} only goes with a {owner} trigger"),
            );
        }
    }
    let d = &mut ctx.d;
    let trigger = match kind {
        "event" => one_or_many(d, v, "event").and_then(|items| {
            let types: Vec<String> = items.iter().filter_map(|t| event_type(d, t)).collect();
            (types.len() == items.len()).then_some(Trigger::Event(types))
        }),
        "milestone" => milestone(ctx, v, f.get("at"), f.get("every")),
        "inactive" => duration(d, v, "inactive").map(Trigger::Inactive),
        "returned" => duration(d, v, "returned").map(Trigger::Returned),
        "after" => after(ctx, v),
        "tier" => tier(ctx, v),
        "phase" => phase(ctx, v),
        "points_expiring" => points_expiring(ctx, v),
        "leaderboard" => super::board_close::compile(ctx, v, f.get("closes"), f.get("top")),
        _ => schedule(ctx, v),
    };
    (Some(kind), trigger)
}

fn milestone(
    ctx: &mut Ctx,
    v: &Value,
    at: Option<&Value>,
    every: Option<&Value>,
) -> Option<Trigger> {
    let d = &mut ctx.d;
    let counter = string(d, v, "milestone").and_then(|name| {
        if is_counter(&ctx.names, name) {
            return Some(name.to_string());
        }
        let hint = did_you_mean(name, counter_names(&ctx.names));
        d.error_hint(
            &v.at,
            format!("unknown counter {name:?} (built-ins: points, points_lifetime, spend_total, purchases, checkin_streak, checkin_best, referrals, events.<type>)"),
            hint,
        );
        None
    });
    let threshold = match (at, every) {
        (Some(n), None) => positive_number(ctx, n, "at").map(Threshold::At),
        (None, Some(n)) => positive_number(ctx, n, "every").map(Threshold::Every),
        (None, None) => {
            ctx.d.error(
                &v.at,
                "a milestone needs \"at: N\" (once) or \"every: N\" (each multiple)",
            );
            None
        }
        (Some(_), Some(n)) => {
            ctx.d.error(
                &n.at,
                "a milestone has either \"at\" or \"every\", not both",
            );
            None
        }
    };
    Some(Trigger::Milestone {
        counter: counter?,
        threshold: threshold?,
    })
}

/// `after: { event: join, wait: 3d }`: `event` a type or a list of types, `wait` a
/// duration (bounded like every other).
fn after(ctx: &mut Ctx, v: &Value) -> Option<Trigger> {
    let d = &mut ctx.d;
    let f = fields(d, v, "after trigger", &["event", "wait"])?;
    let event_value = f.require(d, "event");
    let wait_value = f.require(d, "wait");
    let events = event_value.and_then(|ev| {
        let items = one_or_many(d, ev, "event")?;
        let types: Vec<String> = items.iter().filter_map(|t| event_type(d, t)).collect();
        (types.len() == items.len()).then_some(types)
    });
    let wait = wait_value.and_then(|w| duration(d, w, "wait"));
    Some(Trigger::After {
        events: events?,
        wait: wait?,
    })
}

fn positive_number(ctx: &mut Ctx, value: &Value, name: &str) -> Option<crate::money::Decimal> {
    let n = decimal(&mut ctx.d, value, name)?;
    if n <= crate::money::Decimal::ZERO {
        ctx.d.error(
            &value.at,
            format!("{name:?} must be greater than zero, found {n}"),
        );
        return None;
    }
    Some(n)
}

fn tier(ctx: &mut Ctx, v: &Value) -> Option<Trigger> {
    let name = string(&mut ctx.d, v, "tier")?;
    let Some(levels) = &ctx.names.tier_levels else {
        ctx.d.error(
            &v.at,
            "a tier trigger needs a \"tiers\" section, and there is none",
        );
        return None;
    };
    match name {
        "up" => Some(Trigger::Tier(TierChange::Up)),
        "down" => Some(Trigger::Tier(TierChange::Down)),
        _ => {
            let mut choices = levels.clone();
            choices.extend(["up".to_string(), "down".to_string()]);
            resolve(&mut ctx.d, v, name, "tier", &choices)
                .map(|n| Trigger::Tier(TierChange::Named(n)))
        }
    }
}

fn phase(ctx: &mut Ctx, v: &Value) -> Option<Trigger> {
    let d = &mut ctx.d;
    let f = fields(d, v, "phase trigger", &["campaign", "enters"])?;
    let campaign_value = f.require(d, "campaign");
    let enters_value = f.require(d, "enters");
    let campaign_name = string(d, campaign_value?, "campaign")?;
    let known: Vec<String> = ctx.names.campaigns.keys().cloned().collect();
    let campaign = resolve(d, campaign_value?, campaign_name, "campaign", &known)?;
    let enters_value = enters_value?;
    let enters = string(d, enters_value, "enters")?;
    let phases = ctx
        .names
        .campaigns
        .get(&campaign)
        .cloned()
        .unwrap_or_default();
    if !phases.iter().any(|p| p == enters) {
        d.unknown(
            &enters_value.at,
            format!("campaign {campaign:?} has no phase {enters:?}"),
            enters,
            phases.iter().map(String::as_str),
        );
        return None;
    }
    Some(Trigger::Phase {
        campaign,
        enters: enters.to_string(),
    })
}

/// `points_expiring: 30d`: only meaningful when points expire at all.
fn points_expiring(ctx: &mut Ctx, v: &Value) -> Option<Trigger> {
    let before = duration(&mut ctx.d, v, "points_expiring")?;
    if !ctx.names.points_expire {
        ctx.d.error(
            &v.at,
            "a points_expiring trigger needs settings.points.expire (points never expire without it)",
        );
        return None;
    }
    Some(Trigger::PointsExpiring(before))
}

fn schedule(ctx: &mut Ctx, v: &Value) -> Option<Trigger> {
    let text = string(&mut ctx.d, v, "schedule")?;
    CronSpec::parse(text)
        .map(Trigger::Schedule)
        .map_err(|e| {
            ctx.d.error(
                &v.inside(e.at),
                format!("invalid cron expression {text:?}: {e}"),
            )
        })
        .ok()
}
