//! Reading a test's `expect:`: members, records (ledger, messages, tickets, errors),
//! firings, campaigns and rejected events, each name checked against the rule set.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use super::parse::{entries, to_json, Ctx};
use super::spec::{
    CampaignExpect, Expect, Field, Firing, MemberExpect, Record, Records, SetWant, Want,
};
use crate::rules::convert::{self, fields};
use crate::rules::yaml::{Node, Value};
use crate::rules::SourcePos;

/// What a record field holds, so its expectation can be read and checked.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    /// Text, or `null` (a message without a rule or a template).
    MaybeText,
    Int,
    Time,
    Rule,
    Template,
    Channel,
    Policy,
    Member,
    Event,
    Choice(&'static [&'static str]),
    /// Text the field must contain.
    Contains,
}

const LEDGER: &[(&str, Kind)] = &[
    ("member", Kind::Member),
    ("amount", Kind::Int),
    ("balance", Kind::Int),
    ("reason", Kind::Text),
    ("rule", Kind::Rule),
    ("event", Kind::Event),
    ("at", Kind::Time),
    ("requested", Kind::Int),
    ("clipped_by", Kind::Text),
];

const STATUSES: &[&str] = &[
    "sent",
    "deferred",
    "capped",
    "suppressed",
    "failed",
    "pending",
    "held",
];

const MESSAGES: &[(&str, Kind)] = &[
    ("member", Kind::Member),
    ("rule", Kind::Rule),
    ("template", Kind::Template),
    ("channel", Kind::Channel),
    ("to", Kind::Text),
    ("subject", Kind::Text),
    ("body", Kind::Text),
    ("status", Kind::Choice(STATUSES)),
    ("at", Kind::Time),
    ("queued_at", Kind::Time),
];

const TICKETS: &[(&str, Kind)] = &[
    ("id", Kind::Text),
    ("member", Kind::Member),
    ("policy", Kind::Policy),
    ("severity", Kind::Choice(&["low", "normal", "high"])),
    ("summary", Kind::Text),
    ("status", Kind::Choice(&["open", "acked", "resolved"])),
    ("level", Kind::Int),
    ("opened_at", Kind::Time),
    ("acked_by", Kind::MaybeText),
    ("resolved_by", Kind::MaybeText),
];

const ERRORS: &[(&str, Kind)] = &[
    ("rule", Kind::Text),
    ("member", Kind::Member),
    ("event", Kind::Event),
    ("error", Kind::Contains),
];

/// Everything the parse of one test's expectations needs to know about the test.
struct Test<'a> {
    start: DateTime<Utc>,
    /// Members the test can have: starting ones and those its events name.
    members: &'a BTreeSet<String>,
    events: &'a BTreeSet<String>,
}

pub fn parse(
    cx: &mut Ctx,
    value: &Value,
    start: DateTime<Utc>,
    members: &BTreeSet<String>,
    events: &BTreeSet<String>,
) -> Option<Expect> {
    let test = Test {
        start,
        members,
        events,
    };
    let f = fields(
        &mut cx.d,
        value,
        "expect",
        &[
            "members",
            "ledger",
            "messages",
            "tickets",
            "errors",
            "fired",
            "not_fired",
            "campaigns",
            "rejected",
            "leaderboards",
        ],
    )?;
    let mut expect = Expect::default();
    if let Some(v) = f.get("members") {
        for (key, value) in entries(cx, v, "members") {
            if !members.contains(&key.name) {
                cx.d.unknown(
                    &key.at,
                    format!(
                        "member {:?} is not in this test (neither a starting member nor named by an event)",
                        key.name
                    ),
                    &key.name,
                    members.iter().map(String::as_str),
                );
            }
            expect.members.push(MemberExpect {
                id: key.name.clone(),
                at: key.at.clone(),
                fields: member(cx, &test, value),
            });
        }
    }
    expect.ledger = f
        .get("ledger")
        .and_then(|v| records(cx, &test, v, "ledger entry", LEDGER));
    expect.messages = f
        .get("messages")
        .and_then(|v| records(cx, &test, v, "message", MESSAGES));
    expect.tickets = f
        .get("tickets")
        .and_then(|v| records(cx, &test, v, "ticket", TICKETS));
    expect.errors = f
        .get("errors")
        .and_then(|v| records(cx, &test, v, "rule failure", ERRORS));
    if let Some(v) = f.get("fired") {
        expect.fired = firings(cx, &test, v, "fired", true);
    }
    if let Some(v) = f.get("not_fired") {
        expect.not_fired = firings(cx, &test, v, "not_fired", false);
    }
    if let Some(v) = f.get("campaigns") {
        for (key, value) in entries(cx, v, "campaigns") {
            if let Some(campaign) = campaign(cx, &key.name, &key.at, value) {
                expect.campaigns.push(campaign);
            }
        }
    }
    if let Some(v) = f.get("rejected") {
        for item in cx.list(v, "rejected").unwrap_or_default() {
            let Some(id) = convert::string(&mut cx.d, item, "rejected") else {
                continue;
            };
            if !events.contains(id) {
                let message = format!("no event of this test has id {id:?}");
                cx.d.unknown(&item.at, message, id, events.iter().map(String::as_str));
            }
            expect.rejected.push((id.to_string(), item.at.clone()));
        }
    }
    if let Some(v) = f.get("leaderboards") {
        expect.leaderboards = super::leaderboards::parse(cx, v);
    }
    Some(expect)
}

const MEMBER_FIELDS: &[&str] = &[
    "points",
    "points_lifetime",
    "tier",
    "tags",
    "badges",
    "counters",
    "attrs",
    "last_active",
    "joined_at",
    "left",
    "unsubscribed",
    "points_expiring",
];

fn member(cx: &mut Ctx, test: &Test, value: &Value) -> Vec<Field> {
    let Some(f) = fields(&mut cx.d, value, "member expectation", MEMBER_FIELDS) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, v) in f.entries {
        let name = key.name.as_str();
        let one = |want: Want, absent: Json| Field {
            path: vec![name.to_string()],
            want,
            absent,
            at: v.at.clone(),
        };
        match name {
            "points" | "points_lifetime" => {
                if let Some(n) = convert::integer(&mut cx.d, v, name) {
                    out.push(one(Want::Exact(json!(n)), Json::Null));
                }
            }
            "tier" => match &v.node {
                Node::Null => out.push(one(Want::Exact(Json::Null), Json::Null)),
                _ => {
                    if let Some(tier) = convert::string(&mut cx.d, v, name) {
                        cx.check_tier(v, tier);
                        out.push(one(Want::Exact(json!(tier)), Json::Null));
                    }
                }
            },
            "tags" | "badges" => {
                if let Some(set) = set(cx, v, name) {
                    out.push(one(Want::Set(set), json!([])));
                }
            }
            "counters" => {
                for (counter, value) in entries(cx, v, name) {
                    cx.check_counter(&counter.at, &counter.name);
                    if let Some(n) = convert::decimal(&mut cx.d, value, &counter.name) {
                        out.push(Field {
                            path: vec![name.to_string(), counter.name.clone()],
                            want: Want::Exact(crate::money::to_json(n)),
                            absent: json!(0),
                            at: value.at.clone(),
                        });
                    }
                }
            }
            "attrs" => {
                for (attr, value) in entries(cx, v, name) {
                    out.push(Field {
                        path: vec![name.to_string(), attr.name.clone()],
                        want: Want::Exact(to_json(value)),
                        absent: Json::Null,
                        at: value.at.clone(),
                    });
                }
            }
            "points_expiring" => points_expiring(cx, test, v, &mut out),
            "last_active" | "joined_at" => match &v.node {
                Node::Null => out.push(one(Want::Exact(Json::Null), Json::Null)),
                _ => {
                    if let Some(at) = cx.time(v, Some(test.start)) {
                        out.push(one(Want::Time(at), Json::Null));
                    }
                }
            },
            _ => {
                if let Some(b) = convert::boolean(&mut cx.d, v, name) {
                    out.push(one(Want::Exact(json!(b)), json!(false)));
                }
            }
        }
    }
    out
}

/// `points_expiring: { amount: N, expires_at: TIME }` (either may be left out), or
/// `null` for "nothing is set to expire".
fn points_expiring(cx: &mut Ctx, test: &Test, value: &Value, out: &mut Vec<Field>) {
    let name = "points_expiring";
    if let Node::Null = value.node {
        out.push(Field {
            path: vec![name.to_string()],
            want: Want::Exact(Json::Null),
            absent: Json::Null,
            at: value.at.clone(),
        });
        return;
    }
    let what = "points_expiring expectation";
    let Some(f) = fields(&mut cx.d, value, what, &["amount", "expires_at"]) else {
        return;
    };
    let field = |key: &str, want: Want, at: &Value| Field {
        path: vec![name.to_string(), key.to_string()],
        want,
        absent: Json::Null,
        at: at.at.clone(),
    };
    if let Some(v) = f.get("amount") {
        if let Some(n) = convert::integer(&mut cx.d, v, "amount") {
            out.push(field("amount", Want::Exact(json!(n)), v));
        }
    }
    if let Some(v) = f.get("expires_at") {
        if let Some(at) = cx.time(v, Some(test.start)) {
            out.push(field("expires_at", Want::Time(at), v));
        }
    }
}

/// `[a, b]` (exactly these) or `{ contains: [a], excludes: [b] }`.
fn set(cx: &mut Ctx, value: &Value, name: &str) -> Option<SetWant> {
    if let Node::Seq(_) = value.node {
        return cx
            .names(value, name)
            .map(|n| SetWant::Exactly(n.into_iter().collect()));
    }
    let what = format!("{name} expectation (a list, or contains/excludes)");
    let f = fields(&mut cx.d, value, &what, &["contains", "excludes"])?;
    let mut part = |key: &str| -> BTreeSet<String> {
        f.get(key)
            .and_then(|v| cx.names(v, key))
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let contains = part("contains");
    let excludes = part("excludes");
    Some(SetWant::Partly { contains, excludes })
}

/// A list (exactly these records, in order) or `{ contains: [...], excludes: [...] }`.
fn records(
    cx: &mut Ctx,
    test: &Test,
    value: &Value,
    what: &str,
    kinds: &[(&str, Kind)],
) -> Option<Records> {
    if let Node::Seq(items) = &value.node {
        let list = items
            .iter()
            .filter_map(|item| record(cx, test, item, what, kinds, false).map(|(r, _)| r))
            .collect();
        return Some(Records::Exactly(list, value.at.clone()));
    }
    let what_list = format!("{what} expectation");
    let f = fields(&mut cx.d, value, &what_list, &["contains", "excludes"])?;
    let mut contains = Vec::new();
    let mut excludes = Vec::new();
    if let Some(v) = f.get("contains") {
        for item in cx.list(v, "contains").unwrap_or_default() {
            contains.extend(record(cx, test, item, what, kinds, true));
        }
    }
    if let Some(v) = f.get("excludes") {
        for item in cx.list(v, "excludes").unwrap_or_default() {
            excludes.extend(record(cx, test, item, what, kinds, false).map(|(r, _)| r));
        }
    }
    Some(Records::Partly { contains, excludes })
}

/// One record pattern; `count` is allowed in a `contains` list.
fn record(
    cx: &mut Ctx,
    test: &Test,
    value: &Value,
    what: &str,
    kinds: &[(&str, Kind)],
    count: bool,
) -> Option<(Record, Option<usize>)> {
    let mut allowed: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
    if count {
        allowed.push("count");
    }
    let f = fields(&mut cx.d, value, what, &allowed)?;
    let mut out = Vec::new();
    let mut times = None;
    for (key, v) in f.entries {
        if key.name == "count" {
            times = convert::integer(&mut cx.d, v, "count").and_then(|n| {
                let n = usize::try_from(n).ok();
                if n.is_none() {
                    cx.d.error(&v.at, "count cannot be negative");
                }
                n
            });
            continue;
        }
        let Some(&(_, kind)) = kinds.iter().find(|(k, _)| *k == key.name) else {
            continue;
        };
        if let Some(want) = field(cx, test, v, &key.name, kind) {
            out.push(Field {
                path: vec![key.name.clone()],
                want,
                absent: Json::Null,
                at: v.at.clone(),
            });
        }
    }
    Some((
        Record {
            fields: out,
            at: value.at.clone(),
        },
        times,
    ))
}

/// One record field's expected value, its name checked against what the rules define.
fn field(cx: &mut Ctx, test: &Test, v: &Value, name: &str, kind: Kind) -> Option<Want> {
    if matches!(v.node, Node::Null) && matches!(kind, Kind::MaybeText | Kind::Rule | Kind::Template)
    {
        return Some(Want::Exact(Json::Null));
    }
    match kind {
        Kind::Int => convert::integer(&mut cx.d, v, name).map(|n| Want::Exact(json!(n))),
        Kind::Time => cx.time(v, Some(test.start)).map(Want::Time),
        Kind::Choice(choices) => {
            convert::choice(&mut cx.d, v, name, choices).map(|c| Want::Exact(json!(c)))
        }
        Kind::Contains => {
            convert::string(&mut cx.d, v, name).map(|t| Want::Contains(t.to_string()))
        }
        _ => {
            let text = convert::string(&mut cx.d, v, name)?;
            check_name(cx, test, v, kind, text);
            Some(Want::Exact(json!(text)))
        }
    }
}

/// Reports a name that the rule set (or the test) does not define.
fn check_name(cx: &mut Ctx, test: &Test, v: &Value, kind: Kind, text: &str) {
    let (what, known): (&str, Vec<&str>) = match kind {
        Kind::Member => ("member", test.members.iter().map(String::as_str).collect()),
        Kind::Event => ("event id", test.events.iter().map(String::as_str).collect()),
        _ => {
            let Some(rules) = cx.rules else { return };
            match kind {
                Kind::Rule => ("rule", rules.rules.iter().map(|r| r.id.as_str()).collect()),
                Kind::Template => (
                    "template",
                    rules.templates.keys().map(String::as_str).collect(),
                ),
                Kind::Channel => (
                    "channel",
                    rules.channels.keys().map(String::as_str).collect(),
                ),
                Kind::Policy => (
                    "escalation policy",
                    rules.escalations.keys().map(String::as_str).collect(),
                ),
                _ => return,
            }
        }
    };
    if !known.contains(&text) {
        let message = match kind {
            Kind::Rule => format!("unknown rule {text:?} (or it is disabled)"),
            Kind::Member | Kind::Event => format!("no {what} {text:?} in this test"),
            _ => format!("unknown {what} {text:?}"),
        };
        cx.d.unknown(&v.at, message, text, known);
    }
}

/// `fired` / `not_fired`: rule ids, or `{ rule, member, times }`.
fn firings(cx: &mut Ctx, test: &Test, value: &Value, name: &str, fired: bool) -> Vec<Firing> {
    let mut out = Vec::new();
    for item in cx.list(value, name).unwrap_or_default() {
        let rule_value;
        let mut firing = Firing {
            rule: String::new(),
            member: None,
            times: None,
            at: item.at.clone(),
        };
        if let Node::Str(rule) = &item.node {
            rule_value = item;
            firing.rule = rule.clone();
        } else {
            let allowed: &[&str] = if fired {
                &["rule", "member", "times"]
            } else {
                &["rule", "member"]
            };
            let Some(f) = fields(&mut cx.d, item, name, allowed) else {
                continue;
            };
            let Some(v) = f.require(&mut cx.d, "rule") else {
                continue;
            };
            let Some(rule) = convert::string(&mut cx.d, v, "rule") else {
                continue;
            };
            rule_value = v;
            firing.rule = rule.to_string();
            if let Some(v) = f.get("member") {
                if let Some(member) = convert::string(&mut cx.d, v, "member") {
                    check_name(cx, test, v, Kind::Member, member);
                    firing.member = Some(member.to_string());
                }
            }
            if let Some(v) = f.get("times") {
                firing.times =
                    convert::integer(&mut cx.d, v, "times").and_then(|n| usize::try_from(n).ok());
            }
        }
        check_name(cx, test, rule_value, Kind::Rule, &firing.rule.clone());
        out.push(firing);
    }
    out
}

fn campaign(cx: &mut Ctx, id: &str, at: &SourcePos, value: &Value) -> Option<CampaignExpect> {
    let defined = cx.rules.map(|r| r.campaigns.iter().find(|c| c.id == id));
    if let Some(None) = defined {
        let known: Vec<String> = cx
            .rules
            .iter()
            .flat_map(|r| r.campaigns.iter().map(|c| c.id.clone()))
            .collect();
        cx.d.unknown(
            at,
            format!("unknown campaign {id:?}"),
            id,
            known.iter().map(String::as_str),
        );
    }
    let phases: Option<Vec<String>> = defined
        .flatten()
        .map(|c| c.phases.iter().map(|p| p.name.clone()).collect());
    let f = fields(
        &mut cx.d,
        value,
        "campaign expectation",
        &["phase", "points_awarded"],
    )?;
    let mut out = Vec::new();
    for (key, v) in f.entries {
        let want = match (key.name.as_str(), &v.node) {
            ("phase", Node::Null) => Want::Exact(Json::Null),
            ("phase", _) => {
                let Some(phase) = convert::string(&mut cx.d, v, "phase") else {
                    continue;
                };
                if let Some(phases) = &phases {
                    if !phases.iter().any(|p| p == phase) {
                        let message = format!("campaign {id:?} has no phase {phase:?}");
                        cx.d.unknown(&v.at, message, phase, phases.iter().map(String::as_str));
                    }
                }
                Want::Exact(json!(phase))
            }
            _ => match convert::integer(&mut cx.d, v, "points_awarded") {
                Some(n) => Want::Exact(json!(n)),
                None => continue,
            },
        };
        out.push(Field {
            path: vec![key.name.clone()],
            want,
            absent: Json::Null,
            at: v.at.clone(),
        });
    }
    Some(CampaignExpect {
        id: id.to_string(),
        fields: out,
    })
}
