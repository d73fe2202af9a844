//! The pure step (DESIGN.md): `(rule set, member, input, now) → Outcome`. No I/O, no
//! clock, no sled: everything here is testable with values alone.

pub mod outcome;

pub use outcome::{Firing, LedgerEntry, Outcome, RuleFailure};
