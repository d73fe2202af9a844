//! The outbox (SPEC §2.6): messages a step decided to send, stored in the step's own
//! transaction, and the dispatcher that delivers them afterwards.
//!
//! A row's life: the engine writes it `pending` (due now), `deferred` (due when quiet
//! hours end), or — recorded for history, never delivered — `capped` or `suppressed`.
//! The [`Dispatcher`] delivers waiting rows once due and marks them `sent`, or
//! `pending` again with a later `due` after a transient failure, or `failed` with the
//! last error after a permanent one or once the channel's `retry.for` has passed. A
//! row whose channel a reload removed is `held` until the channel returns; a `failed`
//! row can be queued again by hand ([`Dispatcher::requeue`]).

mod dispatch;
mod lanes;
mod retry;
mod row;

pub use dispatch::{record_settled, Clock, Dispatcher, RequeueError, Settled};
pub use retry::{backoff, settle, DispatchConfig};
pub use row::{OutboxRow, RowError, Status};
