//! `campaigns:` — phases switched at absolute local times or on a cron schedule, an
//! optional end and a points budget.
//!
//! A phase `start` that reads as a date (`2026-11-01T00:00:00`, `2026-11-01 00:00`,
//! `2026-11-01`) is an absolute local time; anything else is a cron expression.

use chrono::NaiveDateTime;

use crate::cronspec::CronSpec;
use crate::rules::compile::{Ctx, Ids, Section};
use crate::rules::convert::{fields, ident, positive, string, Diag};
use crate::rules::sections::settings::timezone;
use crate::rules::yaml::{Node, Value};
use crate::rules::{Campaign, Phase, PhaseStart};

pub fn compile(ctx: &mut Ctx, sections: &[Section]) -> Vec<Campaign> {
    let mut ids = Ids::new("campaign");
    let mut out = Vec::new();
    for section in sections {
        for item in section.list(&mut ctx.d) {
            if let Some(campaign) = campaign(ctx, &mut ids, item) {
                out.push(campaign);
            }
        }
    }
    out
}

fn campaign(ctx: &mut Ctx, ids: &mut Ids, item: &Value) -> Option<Campaign> {
    let d = &mut ctx.d;
    let allowed = ["id", "timezone", "phases", "end", "budget"];
    let f = fields(d, item, "campaign", &allowed)?;
    let id_value = f.require(d, "id");
    let id = id_value.and_then(|v| ident(d, v, "campaign"));
    let claimed = match (&id, id_value) {
        (Some(id), Some(v)) => ids.claim(d, id, &v.at),
        _ => false,
    };
    let zone = match f.get("timezone") {
        None => Some(ctx.names.timezone.unwrap_or(chrono_tz::Tz::UTC)),
        Some(v) => timezone(d, v),
    };
    let mut written = Vec::new();
    let phases = f
        .require(d, "phases")
        .and_then(|v| phases(d, v, &mut written));
    if let (Some(id), true) = (&id, claimed) {
        ctx.names.campaigns.insert(id.clone(), written);
    }
    let end = match f.get("end") {
        None => Some(None),
        Some(v) => end(d, v, phases.as_deref()),
    };
    let budget = match f.get("budget") {
        None => Some(None),
        Some(v) => fields(d, v, "campaign budget", &["points"])
            .and_then(|b| b.require(d, "points"))
            .and_then(|p| positive(d, p, "points"))
            .map(Some),
    };
    if !claimed {
        return None;
    }
    Some(Campaign {
        id: id?,
        timezone: zone?,
        phases: phases?,
        end: end?,
        budget_points: budget?,
        at: item.at.clone(),
    })
}

/// The phases in order; every name written goes to `written` so rules naming a phase
/// are resolved even when another phase of the campaign is wrong.
fn phases(d: &mut Diag, value: &Value, written: &mut Vec<String>) -> Option<Vec<Phase>> {
    let Node::Seq(items) = &value.node else {
        d.error(
            &value.at,
            format!("\"phases\" must be a list, found {}", value.kind()),
        );
        return None;
    };
    if items.is_empty() {
        d.error(&value.at, "a campaign needs at least one phase");
        return None;
    }
    let mut names = Ids::new("phase");
    let mut out: Vec<Phase> = Vec::new();
    let mut ok = true;
    let mut last_absolute: Option<(NaiveDateTime, String)> = None;
    for item in items {
        let Some(f) = fields(d, item, "phase", &["name", "start"]) else {
            ok = false;
            continue;
        };
        let name = f.require(d, "name").and_then(|v| {
            let name = string(d, v, "name")?;
            written.push(name.to_string());
            names.claim(d, name, &v.at).then(|| name.to_string())
        });
        let start = f.require(d, "start").and_then(|v| start(d, v));
        if let (Some(PhaseStart::At(at)), Some(v)) = (&start, f.get("start")) {
            if let Some((before, before_name)) = &last_absolute {
                if at <= before {
                    let this = name.as_deref().unwrap_or("this");
                    d.error(
                        &v.at,
                        format!("phase {this:?} starts at {at}, not after the phase before it ({before_name:?} at {before})"),
                    );
                    ok = false;
                }
            }
            last_absolute = Some((*at, name.clone().unwrap_or_default()));
        }
        match (name, start) {
            (Some(name), Some(start)) => out.push(Phase { name, start }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn start(d: &mut Diag, value: &Value) -> Option<PhaseStart> {
    let text = string(d, value, "start")?;
    if looks_like_date(text) {
        return local_time(d, value, text).map(PhaseStart::At);
    }
    match CronSpec::parse(text) {
        Ok(cron) => Some(PhaseStart::Cron(cron)),
        Err(e) => {
            // Only the shape says whether a cron expression was meant at all.
            let cron_shaped = text.trim_start().starts_with('@')
                || (5..=7).contains(&text.split_whitespace().count());
            let message = if cron_shaped {
                format!("invalid cron expression {text:?}: {e}")
            } else {
                format!("\"start\" is neither a local time (\"2026-11-01T00:00:00\") nor a cron expression: {e}")
            };
            d.error(&value.inside(e.at), message);
            None
        }
    }
}

fn end(d: &mut Diag, value: &Value, phases: Option<&[Phase]>) -> Option<Option<NaiveDateTime>> {
    let text = string(d, value, "end")?;
    let end = local_time(d, value, text)?;
    let last_start = phases
        .into_iter()
        .flatten()
        .filter_map(|p| match p.start {
            PhaseStart::At(at) => Some(at),
            PhaseStart::Cron(_) => None,
        })
        .max();
    if let Some(last) = last_start {
        if end <= last {
            d.error(
                &value.at,
                format!("campaign end {end} is not after its last phase starts ({last})"),
            );
            return None;
        }
    }
    Some(Some(end))
}

fn looks_like_date(text: &str) -> bool {
    let b = text.trim().as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// A local wall-clock time: `YYYY-MM-DDTHH:MM:SS`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD`
/// (midnight).
pub fn local_time(d: &mut Diag, value: &Value, text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    let parsed = crate::localtime::parse_local(text);
    if parsed.is_none() {
        d.error(
            &value.at,
            format!(
                "{text:?} is not a local time (write {})",
                crate::localtime::LOCAL_TIME_FORMS
            ),
        );
    }
    parsed
}
