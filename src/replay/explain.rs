//! `rally explain --data DIR MEMBER [--event ID]` and `GET /v1/members/{id}/explain`:
//! why a member got — or did not get — what they got, traced by re-running the journal.
//!
//! The whole journal is replayed, not only the member's events: campaign budgets,
//! ticket numbers, fan-out batches and the timers that fell due depend on every
//! member, and only a full replay gives each of the member's steps exactly as it ran.
//! It costs a replay of the journal (see the replay figure in the README).

use std::sync::Arc;

use crate::engine::explain::{Explanation, InputView, Options, StepTrace, Tap};
use crate::runner::Runner;
use crate::store::Store;

use super::{each_line, placeholder_rules, Quiet, ReplayError, Replayer};

/// Why an explanation could not be given.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("no member {0:?}")]
    UnknownMember(String),
    #[error("event {event:?} is not one of member {member:?}'s steps in the journal")]
    UnknownEvent { member: String, event: String },
}

/// Every step of `member` in `live`'s journal (or only the one that applied `event`),
/// traced.
pub fn explain(
    live: &Store,
    member: &str,
    event: Option<&str>,
    options: Options,
) -> Result<Explanation, ExplainError> {
    if live.member(member).map_err(ReplayError::from)?.is_none() {
        return Err(ExplainError::UnknownMember(member.to_string()));
    }
    let tap = Arc::new(Tap::new(member, options));
    let store = Store::in_memory_without_history().map_err(ReplayError::from)?;
    let mut runner = Runner::new(store, placeholder_rules()?).map_err(ReplayError::from)?;
    let mut replayer = Replayer::new(None).with_tap(Arc::clone(&tap));
    let mut first = None;
    each_line(live, 0, |line| {
        first.get_or_insert(line.seq);
        replayer.apply(&mut runner, &line, &mut Quiet)
    })?;
    let clock = crate::runner::stored_clock(live).map_err(ReplayError::from)?;
    replayer.finish(&mut runner, clock)?;
    let mut steps: Vec<StepTrace> = tap.take();
    if let Some(event) = event {
        steps.retain(|step| matches!(&step.input, InputView::Event { id, .. } if id == event));
        if steps.is_empty() {
            return Err(ExplainError::UnknownEvent {
                member: member.to_string(),
                event: event.to_string(),
            });
        }
    }
    if first.is_some_and(|seq| seq != 1) {
        let note = "the journal's oldest entries were removed by settings.retention.journal: \
                    steps before what is left are not shown, and the ones shown start from \
                    no state, so they may differ from what ran";
        for step in &mut steps {
            step.caveats.push(note.to_string());
        }
    }
    Ok(Explanation::new(member, steps))
}
