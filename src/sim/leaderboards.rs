//! The document's `leaderboards`: every board's ranking in every period the simulation
//! went through (its first `size` places), read from the store's index as the daemon
//! reads it.

use serde_json::{json, Map, Value};

use crate::runner::Runner;
use crate::store::StoreError;

/// board id → period key → places; `None` when the rule set has no boards.
pub(super) fn view(runner: &Runner) -> Result<Option<Value>, StoreError> {
    let boards = &runner.rules().leaderboards;
    if boards.is_empty() {
        return Ok(None);
    }
    let store = runner.store();
    let mut out = Map::new();
    for board in boards {
        let mut periods = Map::new();
        for period in store.leaderboard_periods(&board.id)? {
            let places = store.leaderboard_top(&board.id, &period, board.size)?;
            periods.insert(period, crate::leaderboard::places_json(&places));
        }
        out.insert(board.id.clone(), Value::Object(periods));
    }
    Ok(Some(json!(out)))
}
