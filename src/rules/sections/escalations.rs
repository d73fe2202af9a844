//! `escalations:` — ladders a ticket climbs while nobody acknowledges it.
//!
//! Every level but the last needs `within` (the time to acknowledge before climbing);
//! the last level has nowhere to climb, so a `within` there is an error rather than a
//! setting silently ignored.

use std::collections::BTreeMap;

use crate::rules::compile::{Ctx, Ids, Names, Section};
use crate::rules::convert::{duration, fields, ident, resolve, string, Diag};
use crate::rules::yaml::{Node, Value};
use crate::rules::{EscalationLevel, EscalationPolicy};

pub fn compile(ctx: &mut Ctx, sections: &[Section]) -> BTreeMap<String, EscalationPolicy> {
    let mut ids = Ids::new("escalation policy");
    let mut out = BTreeMap::new();
    for section in sections {
        for item in section.list(&mut ctx.d) {
            if let Some(policy) = policy(&mut ctx.d, &mut ctx.names, &mut ids, item) {
                out.insert(policy.id.clone(), policy);
            }
        }
    }
    out
}

fn policy(
    d: &mut Diag,
    names: &mut Names,
    ids: &mut Ids,
    item: &Value,
) -> Option<EscalationPolicy> {
    let f = fields(d, item, "escalation policy", &["id", "levels"])?;
    let id_value = f.require(d, "id");
    let id = id_value.and_then(|v| ident(d, v, "escalation policy"));
    let mut claimed = false;
    if let (Some(id), Some(v)) = (&id, id_value) {
        claimed = ids.claim(d, id, &v.at);
        if claimed {
            names.escalations.push(id.clone());
        }
    }
    let levels = f.require(d, "levels").and_then(|v| levels(d, names, v));
    let id = id.filter(|_| claimed)?;
    Some(EscalationPolicy {
        id,
        levels: levels?,
        at: item.at.clone(),
    })
}

fn levels(d: &mut Diag, names: &Names, value: &Value) -> Option<Vec<EscalationLevel>> {
    let Node::Seq(items) = &value.node else {
        d.error(
            &value.at,
            format!("\"levels\" must be a list, found {}", value.kind()),
        );
        return None;
    };
    if items.is_empty() {
        d.error(&value.at, "an escalation policy needs at least one level");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        match level(d, names, item, last) {
            Some(level) => out.push(level),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn level(d: &mut Diag, names: &Names, item: &Value, last: bool) -> Option<EscalationLevel> {
    let f = fields(d, item, "escalation level", &["notify", "within"])?;
    let within = match (f.get("within"), last) {
        (Some(v), false) => duration(d, v, "within").map(Some),
        (None, false) => {
            d.error(&item.at, "every escalation level but the last needs \"within\" (the time to acknowledge before climbing)");
            None
        }
        (Some(v), true) => {
            let at = f.key("within").map_or(&v.at, |k| &k.at);
            d.error(
                at,
                "the last escalation level has nowhere to climb: remove \"within\"",
            );
            None
        }
        (None, true) => Some(None),
    };
    let notify = f.require(d, "notify")?;
    let n = fields(d, notify, "notify", &["channel", "to", "template"])?;
    let channel = n.require(d, "channel").and_then(|v| {
        let name = string(d, v, "channel")?;
        resolve(d, v, name, "channel", &names.channels)
    });
    let to = n.req_str(d, "to");
    let template = match n.get("template") {
        None => Some(None),
        Some(v) => string(d, v, "template")
            .and_then(|name| resolve(d, v, name, "template", &names.templates))
            .map(Some),
    };
    Some(EscalationLevel {
        channel: channel?,
        to: to?.to_string(),
        within: within?,
        template: template?,
    })
}
