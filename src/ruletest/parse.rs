//! Reading a test file: YAML with positions (the rule files' parser) → [`TestCase`]s,
//! every problem collected as `path:line:col: message`, checked against the rule set
//! when there is one (rule ids, templates, tiers, counters).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value as Json};

use super::expect;
use super::spec::{TestCase, TestEvent};
use super::time;
use crate::member::Member;
use crate::rules::convert::{self, fields, Diag};
use crate::rules::yaml::{self, Node, Value};
use crate::rules::{RuleError, RuleSet, SourcePos};

/// Events one `repeat` may stand for: a year of daily check-ins, with room.
const MAX_REPEAT: i64 = 1000;

/// What parsing needs to know beyond the file: the rule set its names refer to, if it
/// loaded, and the zone local times are read in.
pub struct Ctx<'a> {
    pub d: Diag,
    pub rules: Option<&'a RuleSet>,
    pub zone: Tz,
}

impl<'a> Ctx<'a> {
    pub fn new(rules: Option<&'a RuleSet>) -> Self {
        Ctx {
            d: Diag::default(),
            rules,
            zone: rules.map_or(Tz::UTC, |r| r.settings.timezone),
        }
    }

    /// A time; reported and `None` when it is not one.
    pub fn time(&mut self, value: &Value, start: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        time::parse(value, start, self.zone)
            .map_err(|e| self.d.error(&value.at, e))
            .ok()
    }

    /// A list's items; reported and `None` when it is not a list.
    pub fn list<'v>(&mut self, value: &'v Value, name: &str) -> Option<&'v [Value]> {
        match &value.node {
            Node::Seq(items) => Some(items),
            _ => {
                let found = value.kind();
                self.d
                    .error(&value.at, format!("{name:?} must be a list, found {found}"));
                None
            }
        }
    }

    /// A list of strings.
    pub fn names(&mut self, value: &Value, name: &str) -> Option<Vec<String>> {
        let items = self.list(value, name)?;
        let names = items
            .iter()
            .filter_map(|item| convert::string(&mut self.d, item, name).map(str::to_string))
            .collect::<Vec<_>>();
        (names.len() == items.len()).then_some(names)
    }

    /// A name that must be a tier of the ladder.
    pub fn check_tier(&mut self, value: &Value, name: &str) {
        let Some(rules) = self.rules else { return };
        let levels: Vec<&str> = rules
            .tiers
            .iter()
            .flat_map(|t| t.levels.iter().map(|l| l.name.as_str()))
            .collect();
        if !levels.contains(&name) {
            let message = if levels.is_empty() {
                format!("unknown tier {name:?}: the rules define no tiers")
            } else {
                format!("unknown tier {name:?} (tiers: {})", levels.join(", "))
            };
            self.d.unknown(&value.at, message, name, levels);
        }
    }

    /// A name that must be a counter members can have.
    pub fn check_counter(&mut self, at: &SourcePos, name: &str) {
        let Some(rules) = self.rules else { return };
        const BUILT_IN: [&str; 4] = ["spend_total", "purchases", "checkin_streak", "checkin_best"];
        if name.starts_with("events.") || BUILT_IN.contains(&name) {
            return;
        }
        if rules.counters.iter().any(|c| c.id == name) {
            return;
        }
        let known = BUILT_IN
            .iter()
            .copied()
            .chain(rules.counters.iter().map(|c| c.id.as_str()));
        let message = if matches!(name, "points" | "points_lifetime") {
            format!("{name:?} is not under counters: write it as a member field (`{name}: N`)")
        } else {
            format!("unknown counter {name:?} (built-in, `events.<type>`, or one under counters:)")
        };
        self.d.unknown(at, message, name, known);
    }
}

/// Parses one test file. `None` when it holds no document (only comments).
pub fn file(
    file: Arc<str>,
    text: &str,
    rules: Option<&RuleSet>,
    errors: &mut Vec<RuleError>,
) -> Vec<TestCase> {
    let env = |name: &str| std::env::var(name).ok();
    let source = yaml::Source {
        file,
        text,
        env: &env,
    };
    let Some(root) = yaml::parse(&source, errors) else {
        return Vec::new();
    };
    let mut cx = Ctx::new(rules);
    let mut tests = Vec::new();
    if let Some(top) = fields(&mut cx.d, &root, "test file", &["tests"]) {
        if let Some(list) = top.require(&mut cx.d, "tests") {
            let mut names = BTreeMap::new();
            for item in cx.list(list, "tests").unwrap_or_default() {
                if let Some(test) = test(&mut cx, item, &mut names) {
                    tests.push(test);
                }
            }
        }
    }
    errors.append(&mut cx.d.errors);
    tests
}

fn test(cx: &mut Ctx, value: &Value, names: &mut BTreeMap<String, SourcePos>) -> Option<TestCase> {
    let f = fields(
        &mut cx.d,
        value,
        "test",
        &[
            "name",
            "description",
            "start",
            "members",
            "events",
            "until",
            "expect",
        ],
    )?;
    let name = f.req_str(&mut cx.d, "name").map(str::to_string);
    if let (Some(name), Some(key)) = (&name, f.get("name")) {
        if let Some(first) = names.get(name) {
            cx.d.error(
                &key.at,
                format!("a second test named {name:?} (first at {first}): names tell tests apart"),
            );
        } else {
            names.insert(name.clone(), key.at.clone());
        }
    }
    if let Some(description) = f.get("description") {
        convert::string(&mut cx.d, description, "description");
    }
    let start = match f.get("start") {
        Some(v) => cx.time(v, None),
        None => Some(time::default_start(cx.zone)),
    };
    // Go on with a stand-in start, so one run reports the file's other problems too.
    let ok_start = start.is_some();
    let start = start.unwrap_or_else(|| time::default_start(cx.zone));
    let mut members = Vec::new();
    if let Some(list) = f.get("members") {
        let mut seen = BTreeSet::new();
        for item in cx.list(list, "members").unwrap_or_default() {
            if let Some(member) = starting_member(cx, item, start, &mut seen) {
                members.push(member);
            }
        }
    }
    let mut events = Vec::new();
    if let Some(list) = f.get("events") {
        let mut last = start;
        for item in cx.list(list, "events").unwrap_or_default() {
            event(cx, item, start, &mut last, &mut events);
        }
    }
    let until = f.get("until").and_then(|v| {
        let until = cx.time(v, Some(start))?;
        if until < start {
            cx.d.error(&v.at, "until is before the test's start");
        }
        Some(until)
    });
    let known: BTreeSet<String> = members
        .iter()
        .map(|m: &Member| m.id.to_string())
        .chain(
            events
                .iter()
                .filter_map(|e: &(TestEvent, Option<String>)| e.1.clone()),
        )
        .collect();
    let event_ids: BTreeSet<String> = events.iter().map(|(e, _)| e.id.clone()).collect();
    let expect = match f.get("expect") {
        Some(v) => expect::parse(cx, v, start, &known, &event_ids)?,
        None => {
            cx.d.error(&value.at, "test has no expect: a test must check something");
            return None;
        }
    };
    Some(TestCase {
        name: name?,
        at: value.at.clone(),
        start: ok_start.then_some(start)?,
        members,
        events: events.into_iter().map(|(e, _)| e).collect(),
        until,
        expect,
    })
}

const MEMBER_KEYS: &[&str] = &[
    "id",
    "points",
    "points_lifetime",
    "tier",
    "tags",
    "badges",
    "counters",
    "attrs",
    "last_active",
    "joined_at",
    "created_at",
    "left",
    "unsubscribed",
];

/// A member as the store holds them at the start. Bookkeeping that depends on the rule
/// set (counter periods, the inactivity timer, the streak's last day) is set when the
/// test runs.
fn starting_member(
    cx: &mut Ctx,
    value: &Value,
    start: DateTime<Utc>,
    seen: &mut BTreeSet<String>,
) -> Option<Member> {
    let f = fields(&mut cx.d, value, "starting member", MEMBER_KEYS)?;
    let id_value = f.require(&mut cx.d, "id")?;
    let id = convert::string(&mut cx.d, id_value, "id")?;
    // As SPEC §1 has it for an event's `member`.
    if id.is_empty() || id.chars().count() > 128 || id.chars().any(char::is_control) {
        cx.d.error(
            &id_value.at,
            "a member id is 1–128 characters, without control characters",
        );
    }
    if !seen.insert(id.to_string()) {
        cx.d.error(&id_value.at, format!("member {id:?} is listed twice"));
    }
    let mut member = Member::new(id);
    let mut ok = true;
    let count = |cx: &mut Ctx, name: &str| -> Option<i64> {
        let v = f.get(name)?;
        match convert::integer(&mut cx.d, v, name) {
            Some(n) if n >= 0 => Some(n),
            Some(_) => {
                cx.d.error(&v.at, format!("{name:?} cannot be negative"));
                None
            }
            None => None,
        }
    };
    member.points = count(cx, "points").unwrap_or(0);
    // A balance is part of what was ever earned.
    member.points_lifetime = count(cx, "points_lifetime").unwrap_or(member.points);
    if member.points_lifetime < member.points {
        if let Some(v) = f.get("points_lifetime") {
            cx.d.error(&v.at, "points_lifetime cannot be less than points");
        }
    }
    if let Some(v) = f.get("tier") {
        if let Some(tier) = convert::string(&mut cx.d, v, "tier") {
            cx.check_tier(v, tier);
            member.tier = Some(tier.into());
        }
    }
    if let Some(v) = f.get("tags") {
        member.tags = cx
            .names(v, "tags")
            .unwrap_or_default()
            .into_iter()
            .collect();
    }
    if let Some(v) = f.get("badges") {
        for badge in cx.names(v, "badges").unwrap_or_default() {
            if !member.badges.contains(&badge) {
                member.badges.push(badge);
            }
        }
    }
    if let Some(v) = f.get("counters") {
        for (key, value) in entries(cx, v, "counters") {
            cx.check_counter(&key.at, &key.name);
            match convert::decimal(&mut cx.d, value, &key.name) {
                Some(n) => {
                    member.counters.insert(&key.name, n);
                }
                None => ok = false,
            }
        }
    }
    if let Some(v) = f.get("attrs") {
        for (key, value) in entries(cx, v, "attrs") {
            if key.name == "timezone" {
                let zone = value.as_str().and_then(|z| z.parse::<Tz>().ok());
                if zone.is_none() {
                    cx.d.error(
                        &value.at,
                        "timezone must be an IANA zone such as \"Asia/Shanghai\"",
                    );
                }
            }
            member.attrs.insert(key.name.clone(), to_json(value));
        }
    }
    let when = |cx: &mut Ctx, name: &str| f.get(name).and_then(|v| cx.time(v, Some(start)));
    member.last_active = when(cx, "last_active");
    member.joined_at = when(cx, "joined_at");
    // Known since the start, or since whatever the test says happened earlier.
    member.created_at = when(cx, "created_at").or_else(|| {
        [Some(start), member.last_active, member.joined_at]
            .into_iter()
            .flatten()
            .min()
    });
    for (name, flag) in [
        ("left", &mut member.left),
        ("unsubscribed", &mut member.unsubscribed),
    ] {
        if let Some(v) = f.get(name) {
            *flag = convert::boolean(&mut cx.d, v, name).unwrap_or(false);
        }
    }
    ok.then_some(member)
}

/// One event as written, expanded by `repeat`, appended to `out` with its member.
/// `last` is the time of the event before, which an event without `at` happens at.
fn event(
    cx: &mut Ctx,
    value: &Value,
    start: DateTime<Utc>,
    last: &mut DateTime<Utc>,
    out: &mut Vec<(TestEvent, Option<String>)>,
) {
    let Some(f) = fields(
        &mut cx.d,
        value,
        "event",
        &["id", "type", "member", "at", "data", "repeat", "every"],
    ) else {
        return;
    };
    let Some(kind) = f.req_str(&mut cx.d, "type") else {
        return;
    };
    let member = f
        .get("member")
        .and_then(|v| convert::string(&mut cx.d, v, "member"));
    if member.is_none() && f.get("member").is_none() && !kind.starts_with("rally.ticket.") {
        cx.d.error(&value.at, "event is missing required key \"member\"");
        return;
    }
    let at = match f.get("at") {
        Some(v) => {
            let Some(at) = cx.time(v, Some(start)) else {
                return;
            };
            if at < start {
                cx.d.error(&v.at, "the event is before the test's start");
                return;
            }
            at
        }
        None => *last,
    };
    let data = match f.get("data") {
        Some(v) if matches!(v.node, Node::Map(_)) => Some(to_json(v)),
        Some(v) => {
            let found = v.kind();
            cx.d.error(&v.at, format!("\"data\" must be a mapping, found {found}"));
            return;
        }
        None => None,
    };
    let repeat = match f.get("repeat") {
        Some(v) => match convert::positive::<i64>(&mut cx.d, v, "repeat") {
            Some(n) if n <= MAX_REPEAT => n,
            Some(_) => {
                cx.d.error(&v.at, format!("repeat is at most {MAX_REPEAT}"));
                return;
            }
            None => return,
        },
        None => 1,
    };
    let every = match (f.get("every"), f.get("repeat")) {
        (Some(v), Some(_)) => match convert::duration(&mut cx.d, v, "every") {
            Some(every) => every,
            None => return,
        },
        (Some(v), None) => {
            cx.d.error(
                &v.at,
                "\"every\" goes with \"repeat\": how many times, how far apart",
            );
            return;
        }
        (None, Some(v)) if repeat > 1 => {
            cx.d.error(&v.at, "\"repeat\" needs \"every\" (e.g. every: 1d)");
            return;
        }
        (None, _) => Duration::zero(),
    };
    let id = match f.get("id") {
        Some(v) => match convert::string(&mut cx.d, v, "id") {
            Some(id) => Some(id),
            None => return,
        },
        None => None,
    };
    for k in 0..repeat {
        let when = at + every * i32::try_from(k).unwrap_or(i32::MAX);
        let id = match id {
            Some(id) if repeat == 1 => id.to_string(),
            Some(id) => format!("{id}-{}", k + 1),
            None => format!("event-{}", out.len() + 1),
        };
        let mut line = Map::new();
        line.insert("id".into(), json!(id));
        line.insert("type".into(), json!(kind));
        if let Some(member) = member {
            line.insert("member".into(), json!(member));
        }
        line.insert("at".into(), json!(crate::member::rfc3339(when)));
        if let Some(data) = &data {
            line.insert("data".into(), data.clone());
        }
        let line = Json::Object(line).to_string();
        if let Err(e) = crate::event::parse_line(&line, crate::event::AtPolicy::Required) {
            cx.d.error(&value.at, format!("invalid event: {e}"));
            return;
        }
        *last = when;
        let event = TestEvent {
            id,
            line,
            at: value.at.clone(),
        };
        out.push((event, member.map(str::to_string)));
    }
}

/// A mapping's entries; reported and empty when it is not a mapping.
pub fn entries<'v>(cx: &mut Ctx, value: &'v Value, name: &str) -> &'v [(yaml::Key, Value)] {
    match &value.node {
        Node::Map(entries) => entries,
        _ => {
            let found = value.kind();
            cx.d.error(
                &value.at,
                format!("{name:?} must be a mapping, found {found}"),
            );
            &[]
        }
    }
}

/// A YAML value as JSON, the way an event's `data` or a member attribute holds it.
pub fn to_json(value: &Value) -> Json {
    match &value.node {
        Node::Null => Json::Null,
        Node::Bool(b) => Json::Bool(*b),
        Node::Int(i) => Json::from(*i),
        Node::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Node::Str(s) => Json::String(s.clone()),
        Node::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Node::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}
