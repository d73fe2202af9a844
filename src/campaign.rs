//! A campaign's phase schedule (SPEC §2): which phase is current at an instant, and
//! every phase change in a window — pure functions of the campaign and the time, so
//! catching up after downtime is the same computation as running live.
//!
//! Phases start at absolute local times or at each occurrence of a cron expression, in
//! the campaign's zone. The current phase is the one whose latest start is the most
//! recent; two phases starting at the same instant resolve to the one written *last*
//! (a later line in the file overrides an earlier one), and that instant is one
//! transition, into that phase. From `end` on, no phase is current.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;

use crate::rules::model::{Campaign, Phase, PhaseStart};

/// The phase a campaign is in, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseNow {
    pub name: String,
    pub since: DateTime<Utc>,
}

/// A phase change: entering `phase`, or the campaign ending (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub phase: Option<String>,
}

/// The instant a local wall-clock time in `zone` stands for. A time skipped by a
/// spring-forward gap means the instant the gap ends (the first valid time after it);
/// a time repeated by a fall-back means its first, earlier occurrence.
pub fn local_to_utc(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    if let Some(at) = crate::localtime::single_instant(local, zone) {
        return at;
    }
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
        LocalResult::None => end_of_gap(local, zone),
    }
}

/// The first instant whose local time is past `local`, which lies in a gap. Found by
/// bisection over whole seconds: zone data gives no direct access to the transition,
/// and a day either side always brackets it (no offset reaches a day).
fn end_of_gap(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    let day = Duration::days(1);
    let seconds = |naive: Option<NaiveDateTime>| naive.unwrap_or(local).and_utc().timestamp();
    let mut before = seconds(local.checked_sub_signed(day));
    let mut after = seconds(local.checked_add_signed(day));
    let is_past = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .is_some_and(|at| crate::localtime::to_local(at, zone) > local)
    };
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if is_past(mid) {
            after = mid;
        } else {
            before = mid;
        }
    }
    DateTime::from_timestamp(after, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The phase current at `t`: `None` before any phase has started and from `end` on.
pub fn phase_at(c: &Campaign, t: DateTime<Utc>) -> Option<PhaseNow> {
    if end_instant(c).is_some_and(|end| t >= end) {
        return None;
    }
    let mut now: Option<PhaseNow> = None;
    for phase in &c.phases {
        let Some(since) = latest_start(c, phase, t) else {
            continue;
        };
        // `>=`: on a tie the phase written later wins.
        if now.as_ref().is_none_or(|current| since >= current.since) {
            now = Some(PhaseNow {
                name: phase.name.clone(),
                since,
            });
        }
    }
    now
}

/// The first transition strictly after `t`, if any.
pub fn next_transition_after(c: &Campaign, t: DateTime<Utc>) -> Option<Transition> {
    let end = end_instant(c);
    if end.is_some_and(|end| end <= t) {
        return None;
    }
    let mut next: Option<(DateTime<Utc>, &str)> = None;
    for phase in &c.phases {
        let Some(start) = next_start(c, phase, t) else {
            continue;
        };
        if next.is_none_or(|(earliest, _)| start <= earliest) {
            next = Some((start, &phase.name));
        }
    }
    match (next, end) {
        (Some((at, name)), end) if end.is_none_or(|end| at < end) => Some(Transition {
            at,
            phase: Some(name.to_string()),
        }),
        (_, Some(end)) => Some(Transition {
            at: end,
            phase: None,
        }),
        (_, None) => None,
    }
}

/// Every transition in `(after, up_to]`, in time order: each phase start (every
/// occurrence of a recurring one, even into the phase already current) and the end.
pub fn transitions(c: &Campaign, after: DateTime<Utc>, up_to: DateTime<Utc>) -> Vec<Transition> {
    let mut found = Vec::new();
    let mut t = after;
    while let Some(next) = next_transition_after(c, t).filter(|next| next.at <= up_to) {
        t = next.at;
        found.push(next);
    }
    found
}

/// The key `limit: { per: campaign }` counts under at `t`. A campaign whose phases all
/// start at absolute times runs once: its id. A recurring campaign runs once per cycle,
/// a cycle beginning at each start of its first phase: `id@<that start, RFC 3339 UTC>`
/// (e.g. `friday-salon@2026-11-04T01:00:00Z`), `None` before the first phase ever
/// started.
pub fn cycle_key(c: &Campaign, t: DateTime<Utc>) -> Option<String> {
    if c.phases
        .iter()
        .all(|phase| matches!(phase.start, PhaseStart::At(_)))
    {
        return Some(c.id.clone());
    }
    let start = latest_start(c, c.phases.first()?, t)?;
    Some(format!(
        "{}@{}",
        c.id,
        start.to_rfc3339_opts(SecondsFormat::Secs, true)
    ))
}

fn end_instant(c: &Campaign) -> Option<DateTime<Utc>> {
    c.end.map(|end| local_to_utc(end, c.timezone))
}

/// The phase's most recent start at or before `t`.
fn latest_start(c: &Campaign, phase: &Phase, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &phase.start {
        PhaseStart::At(local) => Some(local_to_utc(*local, c.timezone)).filter(|at| *at <= t),
        PhaseStart::Cron(spec) => spec.latest_at_or_before(t, c.timezone),
    }
}

/// The phase's first start strictly after `t`.
fn next_start(c: &Campaign, phase: &Phase, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &phase.start {
        PhaseStart::At(local) => Some(local_to_utc(*local, c.timezone)).filter(|at| *at > t),
        PhaseStart::Cron(spec) => spec.next_after(t, c.timezone),
    }
}

#[cfg(test)]
mod tests;
