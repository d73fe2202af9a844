//! A member's state: what Rally knows about one person, stored as one sled value.
//!
//! `Member` holds the public state (points, tier, tags, badges, counters, attributes)
//! and the bookkeeping the engine needs to keep its promises (the last check-in day for
//! streaks, points awarded today for the daily cap, rule firings per period for limits).
//! `Member::view` is the shape `sim` prints and the API returns.
//!
//! A counter that resets belongs to the member-local period recorded in
//! `book.counter_periods`; in a later period it reads 0 even before its next event.
//! [`Member::start_periods`] is the one place that applies this: the engine calls it at
//! the start of every step, and [`Member::view_at`] for what is shown.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::localtime;
use crate::money::{self, Decimal};
use crate::rules::RuleSet;

mod bounds;
mod names;
pub(crate) mod stored_time;
pub use bounds::{Size, MAX_ATTRS, MAX_ATTRS_BYTES, MAX_BADGES, MAX_NAME_BYTES, MAX_TAGS};
pub use names::{Name, NameMap};

/// A member's counters by name (see [`Member::counters`]).
pub type Counters = NameMap<Decimal>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    /// Kept inline when it fits ([`Name`]): every step reads it.
    pub id: Name,
    /// When Rally first saw the member: a schedule or phase that fell due before
    /// that instant does not include them.
    #[serde(with = "stored_time::option_utc")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(with = "stored_time::option_utc")]
    pub joined_at: Option<DateTime<Utc>>,
    /// Profile attributes (`name`, `email`, `timezone`, `locale`, and anything set by
    /// `profile` events or `set` actions).
    pub attrs: Map<String, Value>,
    /// Spendable balance; never below zero.
    pub points: i64,
    /// Every point ever awarded (deductions do not lower it): what tiers usually climb on.
    pub points_lifetime: i64,
    /// Kept inline ([`Name`]): every change to the member compares it.
    pub tier: Option<Name>,
    /// Sorted, so output is deterministic.
    pub tags: BTreeSet<String>,
    /// In the order they were awarded; each at most once.
    pub badges: Vec<String>,
    /// Built-in (`purchases`, `spend_total`, `checkin_streak`, `checkin_best`,
    /// `events.<type>`) and custom counters. `points` and `points_lifetime` live in
    /// their own fields and are read through [`Member::counter`]. Exact decimals,
    /// stored as their text (see [`money::counters`]).
    #[serde(with = "money::counters")]
    pub counters: Counters,
    #[serde(with = "stored_time::option_utc")]
    pub last_active: Option<DateTime<Utc>>,
    /// A `leave` event: no inactivity triggers or marketing until active again.
    pub left: bool,
    /// An `unsubscribe` event: marketing messages are suppressed.
    pub unsubscribed: bool,
    /// Boxed: a member is moved a dozen times on its way through a step (out of the
    /// store, into the step, its outcome, the group's write, back into the store), and
    /// the bookkeeping was two thirds of those bytes (408 of 656).
    pub book: Box<Bookkeeping>,
}

/// State the engine keeps to enforce per-period rules. Not part of the public view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bookkeeping {
    /// Member-local day of the last check-in that counted toward the streak.
    #[serde(with = "stored_time::option_day")]
    pub last_checkin_day: Option<NaiveDate>,
    /// Points awarded on one member-local day, for `settings.points.daily_cap`.
    #[serde(with = "stored_time::option_day_and")]
    pub points_day: Option<(NaiveDate, i64)>,
    /// Per rule with a `limit`: the period key and how often it fired in it. Keys
    /// are kept inline (every period key fits), beside the rule's name: a step with
    /// such a rule compares its period's key without chasing a pointer.
    pub rule_limits: NameMap<(Name, u32)>,
    /// Per reward with a `limit`: the period key and how often the member redeemed it
    /// in it.
    pub reward_limits: NameMap<(String, u32)>,
    /// Per custom counter with a `reset`: the period key its value belongs to (set by
    /// [`Member::start_periods`] for every such counter a step has seen), inline:
    /// every step compares each one.
    pub counter_periods: NameMap<Name>,
    /// Marketing messages on one member-local day, for `settings.messaging.max_per_day`.
    #[serde(with = "stored_time::option_day_and")]
    pub messages_day: Option<(NaiveDate, u32)>,
    /// The member's one inactivity timer: its due time (Unix millis). It is never
    /// later than the member's next inactivity deadline, but may be earlier: activity
    /// only moves deadlines later, so it does not re-arm the timer (no timer writes on
    /// the hot path); an early timer pops, finds nothing due and re-arms. A timer that
    /// pops with another due time is stale.
    pub silence_timer: Option<i64>,
    /// Read only, from stores written before `silence_rules`: how far into the
    /// silence that began at `last_active` the inactivity rules had fired,
    /// `(last_active, through)` in Unix millis — every rule whose deadline was at or
    /// before `through`. A step replaces it with `silence_rules`.
    pub silence_fired: Option<(i64, i64)>,
    /// Per milestone rule that has fired, how far it has paid: 1 for an `at` rule, the
    /// highest multiple paid for an `every` rule. A counter that falls and rises again
    /// (points redeemed and re-earned) pays nothing twice. Cleared for a counter's
    /// rules when it resets (a new period, a broken streak).
    pub milestones: NameMap<u64>,
    /// The inactivity rules that fired in the current silence: `(last_active, rule
    /// ids)`. Kept per rule, not as a high-water deadline, so a rule added or
    /// shortened by a reload still reaches a member already past its deadline, and a
    /// rule that fired is not fired again in the same silence when its duration moves.
    pub silence_rules: Option<(i64, Vec<String>)>,
    /// The member's points as lots, for `settings.points.expire` (empty while points
    /// do not expire). See [`crate::expiry::lots`].
    pub points_lots: crate::expiry::lots::Lots,
    /// The member's one expiry timer: its due time (Unix millis) — the next lot due
    /// or `points_expiring` reminder. A timer that pops with another due time is
    /// stale and does nothing.
    pub expiry_timer: Option<i64>,
    /// Per leaderboard, the member's score in the period it last gained in: where its
    /// row in the ranking is, so a step moves it without reading the index (see
    /// [`crate::leaderboard`]).
    pub leaderboards: NameMap<crate::leaderboard::BoardScore>,
    /// What the community metrics last counted the member for (`src/metrics`).
    pub metrics: crate::metrics::Marks,
}

impl Member {
    /// Starts fetching what a step reads first beyond the member itself — its
    /// bookkeeping, counters, id and attributes — into the cache (see
    /// [`crate::prefetch`]). The member must be in the cache already, or this waits
    /// for it.
    pub fn prefetch(&self) {
        crate::prefetch::value(&*self.book);
        self.counters.prefetch();
        crate::prefetch::bytes(self.id.as_ptr(), self.id.len());
        if let Some(first) = self.attrs.iter().next() {
            crate::prefetch::value(first.0);
        }
    }

    /// Starts fetching the bookkeeping's own entries (see [`Member::prefetch`], which
    /// must have run a while before).
    pub fn prefetch_book(&self) {
        self.book.counter_periods.prefetch();
        self.book.rule_limits.prefetch();
        self.book.milestones.prefetch();
    }

    pub fn new(id: &str) -> Self {
        Member {
            id: id.into(),
            ..Member::default()
        }
    }

    /// A counter by the name rule files use, including `points` and `points_lifetime`.
    /// A counter never touched reads as 0.
    pub fn counter(&self, name: &str) -> Decimal {
        match name {
            "points" => Decimal::from(self.points),
            "points_lifetime" => Decimal::from(self.points_lifetime),
            _ => self.counters.get(name).copied().unwrap_or_default(),
        }
    }

    /// The counters `names` name, in their order, where `names` is sorted (as the
    /// milestone index keeps them): what a milestone watch reads after every change
    /// to the member, in one walk of the counters rather than a search per name.
    pub fn sorted_counters<'s, N: AsRef<str>>(
        &'s self,
        names: &'s [N],
    ) -> impl Iterator<Item = Decimal> + 's {
        let mut stored = self.counters.walk();
        names.iter().map(move |name| match name.as_ref() {
            name @ ("points" | "points_lifetime") => self.counter(name),
            name => stored.value(name).copied().unwrap_or_default(),
        })
    }

    /// Adds to a counter; a sum beyond what a decimal holds (about 7.9e28) stays at
    /// the largest value rather than wrapping or panicking.
    pub fn add_to_counter(&mut self, name: &str, amount: Decimal) {
        // Most steps add to counters the member has: the name is copied only for a
        // new one.
        match self.counters.get_mut(name) {
            Some(counter) => *counter = counter.saturating_add(amount),
            None => {
                self.counters.insert(name, amount);
            }
        }
    }

    /// Starts the member-local period of `now` for every counter that resets: one
    /// whose value belongs to an earlier period reads 0 from here on. Returns the
    /// counters that started a new period (their milestones may pay again), inline:
    /// a member's first step of each day restarts their daily counters.
    pub fn start_periods<'r>(
        &mut self,
        rules: &'r RuleSet,
        now: DateTime<Utc>,
    ) -> smallvec::SmallVec<[&'r str; 2]> {
        let mut restarted = smallvec::SmallVec::new();
        if rules.counters.iter().all(|counter| counter.reset.is_none()) {
            return restarted;
        }
        let zone = localtime::member_zone(self.attr_str("timezone"), rules.settings.timezone);
        let day = localtime::local_day(now, zone);
        // Every step checks every resetting counter: no allocation unless a period
        // starts.
        for counter in &rules.counters {
            let Some(period) = counter.reset else {
                continue;
            };
            let key = localtime::PeriodKey::of(period, day);
            let stored = self.book.counter_periods.get_mut(&counter.id);
            if stored
                .as_deref()
                .is_some_and(|stored| stored.as_bytes() == key.as_bytes())
            {
                continue;
            }
            if let Some(value) = self.counters.get_mut(&counter.id) {
                *value = Decimal::ZERO;
            }
            // A member's first step of each day starts their daily counters' periods:
            // the stored key is rewritten in place.
            match stored {
                Some(stored) => {
                    stored.clear();
                    stored.push_str(key.as_str());
                    restarted.push(counter.id.as_str());
                }
                None => {
                    self.book
                        .counter_periods
                        .insert(&counter.id, key.as_str().into());
                }
            }
        }
        restarted
    }

    /// The public view as of `now`: counters whose period has passed read 0 (see
    /// [`Member::start_periods`]). What `sim` prints and the API returns.
    pub fn view_at(&self, rules: &RuleSet, now: DateTime<Utc>) -> Value {
        let mut member = self.clone();
        member.start_periods(rules, now);
        member.view()
    }

    /// `member.points_expiring`: the next lot to expire as `{ amount, expires_at }`
    /// (or, while a `points_expiring` rule runs, the lot it is about); `None` when no
    /// points are set to expire.
    pub fn points_expiring_json(&self) -> Option<Value> {
        self.book.points_lots.points_expiring().map(
            |(amount, due)| serde_json::json!({ "amount": amount, "expires_at": rfc3339(due) }),
        )
    }

    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }

    /// The public shape (SPEC §3.1 `members` entry) of the state as stored; callers
    /// that know the time use [`Member::view_at`].
    pub fn view(&self) -> Value {
        // Serializing a view into a value fails only for a map key that is not a
        // string, and every key here is one.
        serde_json::to_value(View(self)).unwrap_or(Value::Null)
    }
}

/// A member's public shape ([`Member::view`]), written straight to a serializer: a
/// simulation's document holds every member's view, and building each as a JSON value
/// first cost more than writing it.
pub struct View<'a>(pub &'a Member);

impl Serialize for View<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let member = self.0;
        let expiring = member.book.points_lots.points_expiring();
        let fields = 8
            + usize::from(member.joined_at.is_some())
            + 2 * usize::from(expiring.is_some())
            + usize::from(member.left)
            + usize::from(member.unsubscribed);
        let mut map = serializer.serialize_map(Some(fields))?;
        map.serialize_entry("points", &member.points)?;
        map.serialize_entry("points_lifetime", &member.points_lifetime)?;
        map.serialize_entry("tier", &member.tier)?;
        map.serialize_entry("tags", &member.tags)?;
        map.serialize_entry("badges", &member.badges)?;
        map.serialize_entry("counters", &CountersView(&member.counters))?;
        map.serialize_entry("attrs", &member.attrs)?;
        map.serialize_entry("last_active", &member.last_active.map(rfc3339))?;
        if let Some(joined) = member.joined_at {
            map.serialize_entry("joined_at", &rfc3339(joined))?;
        }
        if let Some((amount, due)) = expiring {
            map.serialize_entry("points_expiring", &Expiring(amount, due))?;
            let lots: Vec<Expiring> = member
                .book
                .points_lots
                .iter()
                .map(|lot| Expiring(lot.amount, lot.due))
                .collect();
            map.serialize_entry("points_lots", &lots)?;
        }
        if member.left {
            map.serialize_entry("left", &true)?;
        }
        if member.unsubscribed {
            map.serialize_entry("unsubscribed", &true)?;
        }
        map.end()
    }
}

/// A view's `counters`: each as [`money::to_json`] writes it.
struct CountersView<'a>(&'a Counters);

impl Serialize for CountersView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, money::to_json(*v))))
    }
}

/// `{ "amount": …, "expires_at": … }`, as the view writes a lot.
struct Expiring(i64, DateTime<Utc>);

impl Serialize for Expiring {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("amount", &self.0)?;
        map.serialize_entry("expires_at", &rfc3339(self.1))?;
        map.end()
    }
}

/// Times in output are RFC 3339 UTC with a `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    match rfc3339_whole_seconds(t) {
        // Every byte is an ASCII digit or separator.
        Some(text) => text.iter().map(|&b| char::from(b)).collect(),
        None => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    }
}

/// [`rfc3339`]'s text for whole seconds in years 0–9999 (every time an event or a
/// rule makes), written digit by digit: chrono's formatter costs several times more,
/// and a simulation writes a time for every ledger entry and firing. `None` for any
/// other time, which chrono writes.
pub fn rfc3339_whole_seconds(t: DateTime<Utc>) -> Option<[u8; 20]> {
    use chrono::{Datelike, Timelike};
    let (date, time) = (t.date_naive(), t.time());
    let year = date.year();
    if time.nanosecond() != 0 || !(0..=9999).contains(&year) {
        return None;
    }
    let seconds = time.num_seconds_from_midnight();
    let two = |value: u32| [b'0' + (value / 10) as u8, b'0' + (value % 10) as u8];
    let [c, y] = [year / 100, year % 100].map(|half| two(half.unsigned_abs()));
    let [mo, d] = [date.month(), date.day()].map(two);
    let [h, mi, s] = [seconds / 3600, seconds / 60 % 60, seconds % 60].map(two);
    Some([
        c[0], c[1], y[0], y[1], b'-', mo[0], mo[1], b'-', d[0], d[1], b'T', h[0], h[1], b':',
        mi[0], mi[1], b':', s[0], s[1], b'Z',
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_counters_read_what_a_search_per_name_reads() {
        let mut member = Member::new("m-1");
        member.points = 40;
        member.points_lifetime = 90;
        for (i, name) in ["b", "checkins", "d.e", "posts", "zz", "spend_total"]
            .into_iter()
            .enumerate()
        {
            member.counters.insert(name, Decimal::from(i + 1));
        }
        // Names the member has, names they lack (before, between and after theirs),
        // the built-in counters, and none at all.
        let lists: [&[&str]; 4] = [
            &[
                "a",
                "b",
                "c",
                "checkins",
                "points",
                "points_lifetime",
                "posts",
                "zzz",
            ],
            &["checkins", "d.e", "spend_total", "zz"],
            &["zzzz"],
            &[],
        ];
        for names in lists {
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            names.sort();
            let walked: Vec<Decimal> = member.sorted_counters(&names).collect();
            let searched: Vec<Decimal> = names.iter().map(|n| member.counter(n)).collect();
            assert_eq!(walked, searched, "{names:?}");
        }
    }

    #[test]
    fn a_view_holds_every_public_field_in_order() {
        let at = |s: &str| match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => panic!("{s}: {e}"),
        };
        let bare = Member::new("m-1");
        let mut full = Member::new("m-2");
        full.points = 120;
        full.points_lifetime = 300;
        full.tier = Some("gold".into());
        full.tags.insert("vip".into());
        full.tags.insert("early \"bird\"".into());
        full.badges.push("first-post".into());
        full.counters.insert("events.checkin", Decimal::from(7));
        let Ok(spent) = "12.50".parse::<Decimal>() else {
            panic!("a decimal");
        };
        full.counters.insert("spent", spent);
        full.attrs.insert("city".into(), Value::from("Lyon"));
        full.attrs
            .insert("n".into(), serde_json::json!({"a": [1, 2.5, null]}));
        full.last_active = Some(at("2026-11-02T10:00:00Z"));
        full.joined_at = Some(at("2026-11-01T00:00:00.250Z"));
        let since = at("2026-11-01T00:00:00Z");
        full.book
            .points_lots
            .add(40, since, since + chrono::Duration::days(30));
        full.book
            .points_lots
            .add(80, since, since + chrono::Duration::days(60));
        full.left = true;
        full.unsubscribed = true;
        let text = |member: &Member| serde_json::to_string(&View(member)).ok();
        assert_eq!(
            text(&bare).as_deref(),
            Some(
                r#"{"points":0,"points_lifetime":0,"tier":null,"tags":[],"badges":[],"counters":{},"attrs":{},"last_active":null}"#
            )
        );
        assert_eq!(
            text(&full).as_deref(),
            Some(concat!(
                r#"{"points":120,"points_lifetime":300,"tier":"gold","tags":["early \"bird\"","vip"],"#,
                r#""badges":["first-post"],"counters":{"events.checkin":7,"spent":12.5},"#,
                r#""attrs":{"city":"Lyon","n":{"a":[1,2.5,null]}},"last_active":"2026-11-02T10:00:00Z","#,
                r#""joined_at":"2026-11-01T00:00:00.250Z","#,
                r#""points_expiring":{"amount":40,"expires_at":"2026-12-01T00:00:00Z"},"#,
                r#""points_lots":[{"amount":40,"expires_at":"2026-12-01T00:00:00Z"},"#,
                r#"{"amount":80,"expires_at":"2026-12-31T00:00:00Z"}],"left":true,"unsubscribed":true}"#
            ))
        );
        assert_eq!(
            full.view(),
            serde_json::from_str::<Value>(&text(&full).unwrap_or_default()).unwrap_or_default()
        );
    }

    #[test]
    fn rfc3339_writes_what_chrono_writes() {
        let chrono_text = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let times = [
            "2026-11-01T00:00:00Z",
            "2026-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2024-02-29T12:34:56Z",
            "2026-11-01T00:00:00.5Z",
            "2026-11-01T00:00:00.000001Z",
            "2026-11-01T00:00:00.123456789Z",
        ];
        for text in times {
            let Ok(t) = DateTime::parse_from_rfc3339(text) else {
                panic!("{text} parses");
            };
            let t = t.with_timezone(&Utc);
            assert_eq!(rfc3339(t), chrono_text(t), "{text}");
        }
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            assert_eq!(rfc3339(t), chrono_text(t));
        }
        let mut t = DateTime::<Utc>::UNIX_EPOCH;
        for _ in 0..2_000 {
            assert_eq!(rfc3339(t), chrono_text(t));
            t += chrono::Duration::seconds(86_399 * 13 + 7_777);
        }
        // Before year 0 and after 9999 chrono writes a sign and more digits.
        let far = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(3_000_000);
        assert_eq!(rfc3339(far), chrono_text(far));
    }

    #[test]
    fn untouched_counters_read_as_zero() {
        let m = Member::new("m-1");
        assert_eq!(m.counter("events.checkin"), Decimal::ZERO);
        assert_eq!(m.counter("points"), Decimal::ZERO);
    }

    #[test]
    fn counters_print_exactly_in_the_view() {
        let mut m = Member::new("m-1");
        for _ in 0..3 {
            m.add_to_counter("spend_total", Decimal::new(1, 1));
        }
        m.add_to_counter("purchases", Decimal::from(7));
        let view = m.view();
        assert_eq!(view["counters"]["spend_total"].to_string(), "0.3");
        assert_eq!(view["counters"]["purchases"].to_string(), "7");
    }
}
