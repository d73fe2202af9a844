//! `draw: { winners: N }` on a rule: which rules may draw, and how many winners.

use crate::rules::convert::{fields, positive, Diag, Fields};
use crate::rules::Draw;

/// Most winners one draw may have: a draw keeps its best candidates in its job record,
/// rewritten at every batch of the scan, so the record must stay small.
pub const MAX_WINNERS: u32 = 10_000;

/// The rule's `draw`, `Some(None)` without one. Only global triggers (`schedule`,
/// `phase`) draw: a member trigger concerns one member, with nobody to draw among.
pub fn compile(d: &mut Diag, f: &Fields, kind: Option<&str>) -> Option<Option<Draw>> {
    let Some(v) = f.get("draw") else {
        return Some(None);
    };
    if let Some(kind) = kind.filter(|k| !matches!(*k, "schedule" | "phase")) {
        let at = f.key("draw").map_or(&v.at, |k| &k.at);
        d.error(
            at,
            format!("\"draw\" only applies to schedule and phase triggers; a {kind} trigger already concerns one member (use chance(p) in \"if\" for a random pick)"),
        );
        return None;
    }
    let draw = fields(d, v, "draw", &["winners"])?;
    let winners_value = draw.require(d, "winners")?;
    let winners: i64 = positive(d, winners_value, "winners")?;
    let Some(winners) = u32::try_from(winners).ok().filter(|&w| w <= MAX_WINNERS) else {
        d.error(
            &winners_value.at,
            format!("\"winners\" must be at most {MAX_WINNERS}, found {winners}: a draw keeps its candidates in one record"),
        );
        return None;
    };
    Some(Some(Draw { winners }))
}
