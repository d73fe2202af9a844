//! `rules:` — each rule's trigger, conditions, scope, limit, audience and actions.

use crate::rules::compile::{Ctx, Ids, Section};
use crate::rules::convert::{
    boolean, choice, compile_rhai, fields, ident, integer, positive, resolve, string, Diag, Fields,
    RhaiKind,
};
use crate::rules::sections::{actions, triggers};
use crate::rules::yaml::{Node, Value};
use crate::rules::{Audience, CatchUp, During, Limit, LimitPer, Rule};

const KEYS: [&str; 12] = [
    "id",
    "description",
    "enabled",
    "priority",
    "trigger",
    "catch_up",
    "if",
    "during",
    "limit",
    "audience",
    "draw",
    "actions",
];

/// The enabled rules, in file order then position (the caller sorts by priority).
/// Disabled rules are compiled too, so their mistakes show before they are enabled.
pub fn compile(ctx: &mut Ctx, sections: &[Section]) -> Vec<Rule> {
    let mut ids = Ids::new("rule");
    let mut out = Vec::new();
    for section in sections {
        for item in section.list(&mut ctx.d) {
            if let Some((rule, true)) = rule(ctx, &mut ids, item) {
                out.push(rule);
            }
        }
    }
    out
}

fn rule(ctx: &mut Ctx, ids: &mut Ids, item: &Value) -> Option<(Rule, bool)> {
    let f = fields(&mut ctx.d, item, "rule", &KEYS)?;
    let d = &mut ctx.d;
    let id_value = f.require(d, "id");
    let id = id_value.and_then(|v| ident(d, v, "rule"));
    let claimed = match (&id, id_value) {
        (Some(id), Some(v)) => ids.claim(d, id, &v.at),
        _ => false,
    };
    let description = match f.get("description") {
        None => Some(None),
        Some(v) => string(d, v, "description").map(|s| Some(s.to_string())),
    };
    let enabled = f
        .get("enabled")
        .map_or(Some(true), |v| boolean(d, v, "enabled"));
    let priority = f
        .get("priority")
        .map_or(Some(0), |v| integer(d, v, "priority"));
    let (kind, trigger) = match f.require(d, "trigger") {
        Some(v) => triggers::compile(ctx, v),
        None => (None, None),
    };
    let catch_up = catch_up(&mut ctx.d, &f, kind);
    let condition = match f.get("if") {
        None => Some(None),
        Some(v) => string(&mut ctx.d, v, "if")
            .and_then(|text| compile_rhai(&mut ctx.d, ctx.sandbox, v, text, RhaiKind::Expression))
            .map(Some),
    };
    let during = match f.get("during") {
        None => Some(None),
        Some(v) => during(ctx, v).map(Some),
    };
    let limit = match f.get("limit") {
        None => Some(None),
        Some(v) => limit(&mut ctx.d, v, f.get("during").is_some()).map(Some),
    };
    let audience = audience(ctx, &f, kind);
    let draw = super::draw::compile(&mut ctx.d, &f, kind);
    let actions = match f.require(&mut ctx.d, "actions") {
        Some(v) => actions::compile(ctx, v),
        None => None,
    };
    if !claimed {
        return None;
    }
    let rule = Rule {
        id: id?,
        description: description?,
        priority: priority?,
        trigger: trigger?,
        condition: condition?,
        during: during?,
        limit: limit?,
        audience: audience?,
        catch_up: catch_up?,
        draw: draw?,
        actions: actions?,
        at: item.at.clone(),
    };
    Some((rule, enabled?))
}

/// What a schedule rule does with occurrences missed while Rally was down.
fn catch_up(d: &mut Diag, f: &Fields, kind: Option<&str>) -> Option<CatchUp> {
    let Some(v) = f.get("catch_up") else {
        return Some(CatchUp::All);
    };
    let choice = choice(d, v, "catch_up", &["all", "latest", "skip"])?;
    if kind.is_some_and(|k| k != "schedule") {
        let at = f.key("catch_up").map_or(&v.at, |k| &k.at);
        d.error(at, "\"catch_up\" only applies to schedule triggers");
        return None;
    }
    Some(match choice {
        "latest" => CatchUp::Latest,
        "skip" => CatchUp::Skip,
        _ => CatchUp::All,
    })
}

/// Global triggers (`phase`, `schedule`) fire for nobody in particular and must say
/// whom the rule runs for; member triggers must not, as they already have one member.
fn audience(ctx: &mut Ctx, f: &Fields, kind: Option<&str>) -> Option<Option<Audience>> {
    let global = matches!(kind, Some("phase" | "schedule"));
    match f.get("audience") {
        None if global => {
            let kind = kind.unwrap_or_default();
            ctx.d.error(
                &f.value.at,
                format!("a {kind} trigger fires for no member in particular: add \"audience: all\" or a Rhai condition over member"),
            );
            None
        }
        None => Some(None),
        Some(v) if kind.is_some() && !global => {
            let at = f.key("audience").map_or(&v.at, |k| &k.at);
            ctx.d.error(
                at,
                format!("\"audience\" only applies to schedule and phase triggers; a {} trigger already concerns one member (use \"if\" to filter)", kind.unwrap_or_default()),
            );
            None
        }
        Some(v) => audience_value(ctx, v).map(Some),
    }
}

/// `all`, a Rhai condition, or `{ if: CONDITION, include_left: true }`. Members who
/// left are skipped unless `include_left` says otherwise: a `leave` stops marketing
/// and inactivity, and a nightly `audience: all` award should not go on for years to
/// people who are gone.
fn audience_value(ctx: &mut Ctx, v: &Value) -> Option<Audience> {
    if let Node::Map(_) = v.node {
        let f = fields(&mut ctx.d, v, "audience", &["if", "include_left"])?;
        let include_left = f
            .get("include_left")
            .map_or(Some(false), |b| boolean(&mut ctx.d, b, "include_left"));
        let condition = match f.get("if") {
            None => Some(None),
            Some(c) => string(&mut ctx.d, c, "if")
                .and_then(|text| {
                    compile_rhai(&mut ctx.d, ctx.sandbox, c, text, RhaiKind::Expression)
                })
                .map(Some),
        };
        return Some(Audience {
            condition: condition?,
            include_left: include_left?,
        });
    }
    let text = match &v.node {
        Node::Str(_) => string(&mut ctx.d, v, "audience")?,
        _ => {
            ctx.d.error(
                &v.at,
                format!(
                    "\"audience\" must be all, a Rhai condition over member, or {{ if: CONDITION, include_left: true }}; found {}",
                    v.kind()
                ),
            );
            return None;
        }
    };
    let condition = if text.trim() == "all" {
        None
    } else {
        Some(compile_rhai(
            &mut ctx.d,
            ctx.sandbox,
            v,
            text,
            RhaiKind::Expression,
        )?)
    };
    Some(Audience {
        condition,
        include_left: false,
    })
}

/// `{ campaign: ID, phase: NAME or [NAMES] }`; without `phase`, the whole campaign.
pub(super) fn during(ctx: &mut Ctx, value: &Value) -> Option<During> {
    let d = &mut ctx.d;
    let f = fields(d, value, "during", &["campaign", "phase"])?;
    let campaign_value = f.require(d, "campaign")?;
    let campaign_name = string(d, campaign_value, "campaign")?;
    let known: Vec<String> = ctx.names.campaigns.keys().cloned().collect();
    let campaign = resolve(d, campaign_value, campaign_name, "campaign", &known)?;
    let phase_names = ctx
        .names
        .campaigns
        .get(&campaign)
        .cloned()
        .unwrap_or_default();
    let phases = match f.get("phase") {
        None => Vec::new(),
        Some(v) => {
            let items: Vec<&Value> = match &v.node {
                Node::Seq(items) => items.iter().collect(),
                _ => vec![v],
            };
            let mut out = Vec::new();
            for item in items {
                let name = string(d, item, "phase")?;
                if !phase_names.iter().any(|p| p == name) {
                    d.unknown(
                        &item.at,
                        format!("campaign {campaign:?} has no phase {name:?}"),
                        name,
                        phase_names.iter().map(String::as_str),
                    );
                    return None;
                }
                out.push(name.to_string());
            }
            out
        }
    };
    Some(During { campaign, phases })
}

pub(super) fn limit(d: &mut Diag, value: &Value, has_during: bool) -> Option<Limit> {
    let f = fields(d, value, "limit", &["times", "per"])?;
    let times = f.require(d, "times").and_then(|v| positive(d, v, "times"));
    let per_value = f.require(d, "per")?;
    let per = choice(
        d,
        per_value,
        "per",
        &["day", "week", "month", "campaign", "ever"],
    )?;
    let per = match per {
        "day" => LimitPer::Day,
        "week" => LimitPer::Week,
        "month" => LimitPer::Month,
        "ever" => LimitPer::Ever,
        _ if !has_during => {
            d.error(
                &per_value.at,
                "\"per: campaign\" needs the rule to name its campaign with \"during\"",
            );
            return None;
        }
        _ => LimitPer::Campaign,
    };
    Some(Limit { times: times?, per })
}
