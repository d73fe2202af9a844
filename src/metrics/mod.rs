//! Community metrics (issue 15): kept exactly and incrementally, in the days of
//! `settings.timezone`, and committed in the same batch as the steps that change them.
//!
//! The runner holds one [`Tally`]: every step's outcome, with what the member was
//! before it ([`Before`]), changes it ([`Tally::step`]), and the rows its steps
//! changed are written, once each, as `meta` rows named `metrics.*` in the batch that
//! commits the group ([`Tally::flush`]). So a crash never splits a step from its
//! metrics, a replay of the journal rebuilds them exactly, and a report reads a few
//! rows per day in its range — never the members.
//!
//! | meta row | holds |
//! |---|---|
//! | `metrics.day.<YYYY-MM-DD>` | what is summed over days: new members, purchases, points, messages, tickets, rules ([`Day`]) |
//! | `metrics.active.<day>`, `.buyers.<day>`, `.rebuyers.<day>` | distinct members over any range of days ([`Presence`]), one row per day |
//! | `metrics.tiers` | members per tier, now |
//! | `metrics.cohorts` | join week × weeks since joining that members were active |
//! | `metrics.reengagement` | per inactivity rule and template: sent, and came back within the window |
//! | `metrics.campaigns` | per campaign phase (by its start): participants, points, GMV, budget |
//! | `metrics.delivery.<day>` | per channel: messages sent, failed, retried, … (written by the dispatcher, see [`deliveries`]) |
//!
//! Distinct counts need to know whether a member was already counted in a day: the
//! member carries the last day of each kind it was counted for ([`Marks`], on its
//! bookkeeping), so each step is O(1) rows, with no set of members per day.
//!
//! Message deliveries (`sent`, `failed`, …) happen in the dispatcher, outside any
//! step: the dispatcher counts them in rows of their own, in the write that changes
//! the message's status ([`deliveries`]); the Tally never holds them.

pub mod deliveries;
mod delta;
#[cfg(test)]
mod delta_tests;
pub mod gauges;
mod marks;
mod presence;
mod range;
pub mod render;
pub mod report;
mod rows;

pub use deliveries::{Delivered, Deliveries, Delivery};
pub use delta::{Before, MetricsSettings, Phases};
pub use marks::Marks;
pub use presence::Presence;
pub use range::{Range, RangeError, Unit, DEFAULT_DAYS, MAX_DAYS};
pub use rows::{Day, PhaseCounts, RuleCounts, Tally, Winback, META};
