//! What a member carries for the metrics: which day it was last counted in for each
//! distinct count, so a step knows in O(1) whether it is news.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Stored on the member (`book.metrics`); appended fields read their default from
/// members written before them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Marks {
    /// The last day (`settings.timezone`) the member was counted active.
    #[serde(with = "crate::member::stored_time::option_day")]
    pub active_day: Option<NaiveDate>,
    /// The first day it was active: its cohort's week.
    #[serde(with = "crate::member::stored_time::option_day")]
    pub joined_day: Option<NaiveDate>,
    /// The last day it was counted a buyer, and a repeat buyer.
    #[serde(with = "crate::member::stored_time::option_day")]
    pub bought_day: Option<NaiveDate>,
    #[serde(with = "crate::member::stored_time::option_day")]
    pub rebought_day: Option<NaiveDate>,
    /// Its latest purchase: a purchase within 30 days of it is a repeat purchase.
    #[serde(with = "crate::member::stored_time::option_utc")]
    pub last_purchase: Option<DateTime<Utc>>,
    /// The latest re-engagement message not answered yet: `(rule, template, sent at)`.
    pub winback: Option<(String, String, DateTime<Utc>)>,
    /// Per campaign, the start (RFC 3339) of the phase the member was last counted a
    /// participant of, inline: every active step of a campaign's member compares it.
    pub phases: crate::member::NameMap<crate::member::Name>,
}
