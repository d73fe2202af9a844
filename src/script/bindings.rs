//! What an expression or script sees: `member`, `event`, `campaign` and `now`.
//!
//! The bindings are scope constants: a script cannot change them, so one `Bindings`
//! serves every rule of a step.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rhai::{Dynamic, Map, Scope};
use serde_json::Value;

use super::convert::{json_to_dynamic, number};
use super::{MemberShape, Reads};
use crate::event::Event;
use crate::member::{rfc3339, Member};

/// The names every expression may use (strict variables reject any other).
pub(super) const NAMES: [&str; 4] = ["member", "event", "campaign", "now"];

/// The fields `member` always has (profile attributes come on top, never over them).
/// The rule loader checks `member.<name>` against these for typos.
pub const MEMBER_FIELDS: [&str; 16] = [
    "id",
    "points",
    "points_lifetime",
    "tier",
    "tags",
    "badges",
    "purchases",
    "spend_total",
    "checkin_streak",
    "checkin_best",
    "counters",
    "joined_at",
    "last_active",
    "left",
    "unsubscribed",
    "points_expiring",
];

/// Built-in counters, present on `member` (and in `member.counters`) even at zero.
pub(super) const BUILTIN_COUNTERS: [&str; 5] = [
    "purchases",
    "spend_total",
    "checkin_streak",
    "checkin_best",
    "referrals",
];

/// The variables an evaluation sees. Built once per step (and rebuilt only when the
/// member changed) and shared by every rule that runs.
pub struct Bindings {
    scope: Scope<'static>,
    /// Where `random()` and friends draw from: the step sets it (the default stream,
    /// with the zero key and no input, serves tools that evaluate outside a step).
    random: super::random::Stream,
    /// What the rule set's Rhai reads: all the bindings carry.
    reads: Arc<Reads>,
}

impl Bindings {
    /// `event` is `()` for triggers that are not events; `campaign` is the JSON map of
    /// campaign id → `{ phase: .. }`. `member` carries every field.
    pub fn new(
        member: &Member,
        event: Option<&Event>,
        now: DateTime<Utc>,
        campaign: &Value,
    ) -> Bindings {
        Bindings::reading(
            member,
            event,
            now,
            || campaign.clone(),
            Arc::new(Reads::all()),
        )
    }

    /// As [`Bindings::new`], building only what `reads` says the rule set reads (see
    /// [`Reads`]); the others are `()`. `campaign` is called only when it is read.
    pub fn reading(
        member: &Member,
        event: Option<&Event>,
        now: DateTime<Utc>,
        campaign: impl FnOnce() -> Value,
        reads: Arc<Reads>,
    ) -> Bindings {
        let mut scope = Scope::with_capacity(8);
        let event = match event {
            Some(event) if reads.event => event_value(event),
            _ => Dynamic::UNIT,
        };
        scope.push_constant_dynamic("event", event);
        let campaign = match reads.campaign {
            true => json_to_dynamic(&campaign()),
            false => Dynamic::UNIT,
        };
        scope.push_constant_dynamic("campaign", campaign);
        let now = match reads.now {
            true => now_value(now),
            false => Dynamic::UNIT,
        };
        scope.push_constant_dynamic("now", now);
        // Last, so replacing it in `set_member` removes the last entry: no shifting.
        scope.push_constant_dynamic("member", member_value(member, &reads.member));
        Bindings {
            scope,
            random: super::random::Stream::default(),
            reads,
        }
    }

    /// Rebuilds only `member`, after an action changed it.
    pub fn set_member(&mut self, member: &Member) {
        // Constants cannot be assigned in place; remove and push again.
        let _ = self.scope.remove::<Dynamic>("member");
        self.scope
            .push_constant_dynamic("member", member_value(member, &self.reads.member));
    }

    /// A binding by name (`member`, `event`, `campaign`, `now`).
    pub(super) fn get(&self, name: &str) -> Option<&Dynamic> {
        self.scope.get(name)
    }

    /// The draws of the step: set once when the bindings are built, told which rule
    /// evaluates before each rule runs.
    pub fn random_mut(&mut self) -> &mut super::random::Stream {
        &mut self.random
    }

    pub(super) fn parts(&mut self) -> (&mut Scope<'static>, &mut super::random::Stream) {
        (&mut self.scope, &mut self.random)
    }
}

pub(super) fn member_value(m: &Member, shape: &MemberShape) -> Dynamic {
    let mut map = Map::new();
    let mut put = |name: &str, value: &dyn Fn() -> Dynamic| {
        if shape.wants(name) {
            map.insert(name.into(), value());
        }
    };
    put("id", &|| m.id.as_str().into());
    put("points", &|| Dynamic::from_int(m.points));
    put("points_lifetime", &|| Dynamic::from_int(m.points_lifetime));
    put("tier", &|| {
        m.tier.as_deref().map_or(Dynamic::UNIT, |t| t.into())
    });
    put("tags", &|| strings(m.tags.iter()));
    put("badges", &|| strings(m.badges.iter()));
    put("counters", &|| {
        let mut counters: Map = m
            .counters
            .iter()
            .map(|(name, v)| (name.into(), number(*v)))
            .collect();
        for name in BUILTIN_COUNTERS {
            counters.insert(name.into(), number(m.counter(name)));
        }
        Dynamic::from_map(counters)
    });
    for name in BUILTIN_COUNTERS {
        put(name, &|| number(m.counter(name)));
    }
    put("joined_at", &|| time(m.joined_at));
    put("last_active", &|| time(m.last_active));
    // Always booleans, so `!member.left` reads as it should for everyone.
    put("left", &|| Dynamic::from_bool(m.left));
    put("unsubscribed", &|| Dynamic::from_bool(m.unsubscribed));
    // `{ amount, expires_at }` of the next lot to expire; `()` when none.
    put("points_expiring", &|| {
        m.points_expiring_json()
            .as_ref()
            .map_or(Dynamic::UNIT, json_to_dynamic)
    });
    for (key, value) in &m.attrs {
        if shape.wants(key) {
            map.entry(key.as_str().into())
                .or_insert_with(|| json_to_dynamic(value));
        }
    }
    Dynamic::from_map(map)
}

fn event_value(e: &Event) -> Dynamic {
    let mut map = Map::new();
    map.insert("id".into(), e.id.as_str().into());
    map.insert("type".into(), e.kind.as_str().into());
    map.insert(
        "member".into(),
        e.member.as_deref().map_or(Dynamic::UNIT, Into::into),
    );
    map.insert("at".into(), time(e.at.map(|t| t.with_timezone(&Utc))));
    let data = e
        .data
        .iter()
        .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
        .collect();
    map.insert("data".into(), Dynamic::from_map(data));
    Dynamic::from_map(map)
}

/// `now` in UTC; weekday 1 = Monday … 7 = Sunday.
fn now_value(now: DateTime<Utc>) -> Dynamic {
    let mut map = Map::new();
    map.insert("iso".into(), rfc3339(now).into());
    map.insert("ts".into(), Dynamic::from_int(now.timestamp()));
    let parts = [
        ("year", i64::from(now.year())),
        ("month", i64::from(now.month())),
        ("day", i64::from(now.day())),
        ("hour", i64::from(now.hour())),
        ("minute", i64::from(now.minute())),
        ("weekday", i64::from(now.weekday().number_from_monday())),
    ];
    for (name, value) in parts {
        map.insert(name.into(), Dynamic::from_int(value));
    }
    Dynamic::from_map(map)
}

fn strings<'a>(items: impl Iterator<Item = &'a String>) -> Dynamic {
    Dynamic::from_array(items.map(|s| s.as_str().into()).collect())
}

fn time(t: Option<DateTime<Utc>>) -> Dynamic {
    t.map_or(Dynamic::UNIT, |t| rfc3339(t).into())
}
