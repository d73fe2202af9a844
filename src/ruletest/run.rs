//! Running one test: a fresh in-memory store holding the test's starting members, the
//! clock started at the test's start, then the events through `rally sim`'s own
//! machinery ([`crate::sim::simulate_on`]) — so a test sees exactly what `sim` (and
//! the daemon) would do — and its output document back.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value as Json;

use super::spec::TestCase;
use crate::engine::INACTIVE;
use crate::member::Member;
use crate::rules::RuleSet;
use crate::runner::Runner;
use crate::store::keys::TimerKey;
use crate::store::{StepWrite, Store};

/// Runs `test` and returns the `sim` document of its end state.
pub fn run(rules: &Arc<RuleSet>, test: &TestCase) -> Result<Json, String> {
    let store = Store::in_memory_without_history().map_err(|e| format!("store: {e}"))?;
    let mut runner = Runner::new(store, rules.clone()).map_err(|e| format!("store: {e}"))?;
    // As `sim` starts just before its first event: a phase that starts at the very
    // start of the test still fires.
    runner
        .arm(test.start - Duration::milliseconds(1))
        .map_err(|e| format!("store: {e}"))?;
    let mut write = StepWrite::default();
    for member in &test.members {
        let (member, timer) = seeded(rules, member.clone(), test.start);
        write.members.push(member);
        write.timers_set.extend(timer);
    }
    runner.push_write(write);
    runner.commit().map_err(|e| format!("store: {e}"))?;
    let mut input = String::new();
    for event in &test.events {
        input.push_str(&event.line);
        input.push('\n');
    }
    let doc =
        crate::sim::simulate_on(runner, input.as_bytes(), test.until).map_err(|e| e.to_string())?;
    Ok(doc.to_value())
}

/// A starting member with the bookkeeping the engine would have kept had it seen them
/// get there, and their inactivity timer:
/// - resetting counters belong to the period the test starts in (else the first step
///   would zero them as left over from an earlier one);
/// - a check-in streak ran through the member-local day before the start, so a
///   check-in on the first day extends it;
/// - a member with `last_active` (and not gone) is silent from then: their first
///   inactivity deadline is armed, as activity would have armed it.
fn seeded(
    rules: &RuleSet,
    mut member: Member,
    start: DateTime<Utc>,
) -> (Member, Option<(TimerKey, Vec<u8>)>) {
    let counters = std::mem::take(&mut member.counters);
    member.start_periods(rules, start);
    member.counters = counters;
    if member.counter("checkin_streak") > crate::money::Decimal::ZERO {
        let zone =
            crate::localtime::member_zone(member.attr_str("timezone"), rules.settings.timezone);
        member.book.last_checkin_day = crate::localtime::local_day(start, zone).pred_opt();
    }
    let deadline = crate::engine::next_silence_deadline(rules, &member);
    member.book.silence_timer = deadline;
    let timer = deadline.map(|due| (TimerKey::new(due, INACTIVE, member.id.clone()), Vec::new()));
    (member, timer)
}
