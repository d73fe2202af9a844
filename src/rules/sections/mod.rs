//! One compiler per top-level section of a rule file.

pub mod campaigns;
pub mod channels;
pub mod counters;
pub mod escalations;
pub mod leaderboards;
pub mod rules;
pub mod settings;
pub mod templates;

mod actions;
mod triggers;
