//! # Rally — a rules engine for running member communities
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`event`] | the `Event` type and its validation (SPEC §1) |
//! | [`member`] | a member's state and the shape `sim` and the API print |
//! | [`expiry`] | points expiry: when a lot of points falls due (calendar months, period ends), lots spent oldest first |
//! | [`money`] | exact amounts: decimals for counters and spend, the rounding of points |
//! | [`localtime`] | member-local days, weeks and months: the one place that decides "today" |
//! | [`campaign`] | campaign phase schedules: the current phase, transitions, DST rules |
//! | [`clock`] | time (SPEC §2.7): clock readings, and the one monotone step clock |
//! | [`duration`] | `7d` / `36h` / `90m` durations as written in rule files |
//! | [`rules`] | loading rule files: YAML with spans → validated, compiled `RuleSet` |
//! | [`script`] | the Rhai sandbox: engine limits, scope building, script-requested actions, calls resolved at compile time |
//! | [`engine`] | the pure step: (rule set, member, input, now) → changes |
//! | [`messaging`] | rendering templates; delivering over smtp, webhooks and the log |
//! | [`metrics`] | community metrics kept with each step (`metrics.*` rows); the report built from them |
//! | [`policy`] | whether a marketing message goes now, later (quiet hours), or not at all |
//! | [`leaderboard`] | leaderboards: scores gained per period, the ordered ranking of each board, when a period closes (`close.rs`) |
//! | [`tickets`] | escalation tickets: open, climb the ladder, acknowledge, resolve |
//! | [`outbox`] | queued messages as stored, and the dispatcher that delivers them |
//! | [`store`] | sled: one tree of keyspaces, key encoding, one batch per group of steps |
//! | [`feed`] | a file of events through the engine on the virtual clock: `sim` and `import` |
//! | [`sim`] | the `rally sim` command: the engine on a virtual clock |
//! | [`backtest`] | `rally diff`: two runs compared per rule, member, campaign; `--fail-if` for CI |
//! | [`import`] | `rally import`: history into a data directory, on `sim`'s clock |
//! | [`rewards`] | the rewards catalog: judging a redemption (stock, codes, limits, balance), what was issued |
//! | [`report`] | `rally report`: the community report of a data directory, or of events run as `sim` runs them |
//! | [`replay`] | `rally replay`: the event journal run again — a self-check of the live state, or other rules over real history |
//! | [`ruletest`] | `rally test`: test files next to the rules, run on `sim`'s machinery, reported like `cargo test` |
//! | [`cluster`] | `rally run --cluster`: nodes on NATS JetStream, members partitioned, leases, failover (docs/cluster.md) |
//! | [`daemon`] | `rally run`: the writer thread, the HTTP API, the web dashboard, hot reload, `rally bench` |
//!
//! Invariants that hold everywhere:
//! - nothing but a clock reads the time; the step takes `now` as an argument;
//! - a step is all-or-nothing: its changes commit in one sled batch or not at all;
//! - points are integers and a balance never goes below zero.

pub mod allocator;
pub mod backtest;
pub mod campaign;
pub mod clock;
pub mod cluster;
pub mod cronspec;
pub mod daemon;
mod digits;
pub mod duration;
pub mod engine;
pub mod event;
pub mod expiry;
pub mod feed;
pub mod import;
pub mod leaderboard;
mod lexical;
pub mod localtime;
pub mod member;
pub mod messaging;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod policy;
mod prefetch;
pub mod replay;
pub mod report;
pub mod rewards;
pub mod rules;
pub mod ruletest;
pub mod runner;
pub mod script;
pub mod shares;
pub mod sim;
pub mod store;
pub mod tickets;
