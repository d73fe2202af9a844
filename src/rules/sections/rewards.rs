//! `rewards:` — the catalog members spend points on (see [`crate::rewards`]).

use std::sync::Arc;

use crate::rewards::Reward;
use crate::rules::compile::{Ctx, Ids, Section};
use crate::rules::convert::{fields, ident, integer, resolve, string};
use crate::rules::yaml::{Node, Value};
use crate::rules::SourcePos;

const KEYS: [&str; 8] = [
    "id", "name", "cost", "stock", "limit", "tiers", "during", "codes",
];

/// Largest cost a reward may have: what one points action may move.
const MAX_COST: i64 = 1_000_000_000;

pub fn compile(ctx: &mut Ctx, sections: &[Section]) -> Vec<Reward> {
    let mut ids = Ids::new("reward");
    let mut out = Vec::new();
    for section in sections {
        for item in section.list(&mut ctx.d) {
            if let Some(reward) = reward(ctx, &mut ids, item) {
                out.push(reward);
            }
        }
    }
    out
}

fn reward(ctx: &mut Ctx, ids: &mut Ids, item: &Value) -> Option<Reward> {
    let d = &mut ctx.d;
    let f = fields(d, item, "reward", &KEYS)?;
    let id_value = f.require(d, "id");
    let id = id_value.and_then(|v| ident(d, v, "reward"));
    let id = match (id, id_value) {
        (Some(id), Some(v)) if ids.claim(d, &id, &v.at) => Some(id),
        _ => None,
    };
    let name = f.req_str(d, "name").map(str::to_string);
    let cost = f.require(d, "cost").and_then(|v| {
        let n = integer(d, v, "cost")?;
        if n <= 0 || n > MAX_COST {
            d.error(
                &v.at,
                format!(
                    "\"cost\" must be a whole number of points from 1 to {MAX_COST}, found {n}"
                ),
            );
            return None;
        }
        Some(n)
    });
    let stock = match f.get("stock") {
        None => Some(None),
        Some(v) => integer(d, v, "stock").and_then(|n| match u64::try_from(n) {
            Ok(n) => Some(Some(n)),
            Err(_) => {
                d.error(&v.at, format!("\"stock\" must be 0 or more, found {n}"));
                None
            }
        }),
    };
    let tiers = match f.get("tiers") {
        None => Some(Vec::new()),
        Some(v) => tiers(ctx, v),
    };
    let during = match f.get("during") {
        None => Some(None),
        Some(v) => super::rules::during(ctx, v).map(Some),
    };
    let limit = match f.get("limit") {
        None => Some(None),
        Some(v) => super::rules::limit(&mut ctx.d, v, f.get("during").is_some()).map(Some),
    };
    let codes = match f.get("codes") {
        None => Some(None),
        Some(v) => codes(ctx, v).map(Some),
    };
    Some(Reward {
        id: id?,
        name: name?,
        cost: cost?,
        stock: stock?,
        limit: limit?,
        tiers: tiers?,
        during: during?,
        codes: codes?,
        at: item.at.clone(),
    })
}

/// `tiers: [gold, platinum]` (or one name): levels of the tier ladder.
fn tiers(ctx: &mut Ctx, value: &Value) -> Option<Vec<String>> {
    let d = &mut ctx.d;
    let items: Vec<&Value> = match &value.node {
        Node::Seq(items) => items.iter().collect(),
        _ => vec![value],
    };
    let Some(levels) = ctx.names.tier_levels.clone() else {
        d.error(
            &value.at,
            "\"tiers\" needs a tier ladder (a tiers: section)",
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match string(d, item, "tiers").and_then(|name| resolve(d, item, name, "tier", &levels)) {
            Some(name) => out.push(name),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `codes: codes/gift50.txt`: one code per line, relative to the rules directory.
/// Blank lines and lines starting with `#` are skipped; a code written twice is an
/// error at its second line (it could be handed out only once anyway).
fn codes(ctx: &mut Ctx, value: &Value) -> Option<Vec<String>> {
    let written = string(&mut ctx.d, value, "codes")?;
    let (at, text) = ctx.read_file(value, written)?;
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut ok = true;
    for (n, line) in text.lines().enumerate() {
        let code = line.trim();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let here = SourcePos {
            file: Arc::clone(&at.file),
            line: line_no,
            col: 1,
        };
        if let Some(first) = seen.insert(code.to_string(), line_no) {
            ctx.d.error(
                &here,
                format!("code {code:?} is already listed on line {first}"),
            );
            ok = false;
            continue;
        }
        out.push(code.to_string());
    }
    ok.then_some(out)
}
