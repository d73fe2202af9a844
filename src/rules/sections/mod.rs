//! One compiler per top-level section of a rule file.

pub mod campaigns;
pub mod channels;
pub mod counters;
pub mod draw;
pub mod escalations;
mod expiry;
pub mod leaderboards;
pub mod rewards;
pub mod rules;
pub mod settings;
pub mod templates;

mod actions;
mod board_close;
mod credit;
mod triggers;
