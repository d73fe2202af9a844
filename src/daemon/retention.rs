//! Retention (`settings.retention`): the daemon removes messages that reached a final
//! status, ledger and firing history, and journal entries once they are older than the
//! rule set says, and the ids of applied events once they are past the de-duplication
//! window (always: the window has a default, see `store::dedup`).
//!
//! A background task, beside the writer rather than through it: a pass runs when the
//! daemon starts and then every [`EVERY`], as a series of small pieces (at most
//! [`PIECE`] rows looked at, removed in one atomic write), each on the blocking pool
//! with a pause between them, so ingestion is held up by at most one piece at a
//! time (see `store::retention` for why the pieces are safe beside the writer and
//! the dispatcher). The settings are read from the running rule set at every pass, so
//! a reload that changes them applies from the next pass. A store that fails ends the
//! pass; the next one tries again. Removals are made durable by the writer's next
//! sync; lost in a crash, they are simply made again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::reload::Reloader;
use crate::clock::Clock;
use crate::outbox::OutboxRow;
use crate::store::{Store, StoreError, Trimmed};

/// How often a pass runs. Retention is counted in days; an hour late is nothing.
const EVERY: Duration = Duration::from_secs(60 * 60);
/// Rows looked at per piece.
const PIECE: usize = 256;
/// The pause between pieces: the writer gets the store in between.
const PAUSE: Duration = Duration::from_millis(5);

pub(super) struct Retention {
    pub store: Arc<Store>,
    pub reloader: Arc<Reloader>,
    pub clock: Arc<dyn Clock>,
}

/// What a pass removed.
#[derive(Default)]
struct Removed {
    messages: usize,
    history: usize,
    journal: usize,
    event_ids: usize,
}

/// How a pass ended early.
enum Interrupted {
    Shutdown,
    Store(StoreError),
    Panicked(String),
}

impl Retention {
    /// Runs passes until `shutdown` completes. Returns only between pieces, so once it
    /// has returned no piece is running and the store can be closed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.pass(&mut shutdown).await {
                Ok(removed) => removed.report(),
                Err(Interrupted::Shutdown) => return,
                Err(Interrupted::Store(error)) => {
                    tracing::warn!(%error, "retention stopped for now: the store failed; it tries again at the next pass");
                }
                Err(Interrupted::Panicked(error)) => {
                    tracing::error!(%error, "a retention piece panicked; it tries again at the next pass");
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    async fn pass(
        &self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Removed, Interrupted> {
        let kept = self.reloader.rules().settings.retention;
        let now = self.clock.now();
        let mut removed = Removed::default();
        if let Some(before) = kept
            .messages
            .and_then(|period| now.checked_sub_signed(period))
        {
            let mut from = Some(0);
            while let Some(start) = from {
                let piece = self
                    .piece(shutdown, move |store| {
                        store.trim_outbox(start, PIECE, |seq, bytes| {
                            OutboxRow::retention(seq, bytes, before)
                        })
                    })
                    .await?;
                removed.messages += piece.removed;
                from = piece.next;
            }
        }
        if let Some(before) = kept
            .history
            .and_then(|period| now.checked_sub_signed(period))
        {
            let mut after = Some(None::<Vec<u8>>);
            while let Some(start) = after {
                let piece = self
                    .piece(shutdown, move |store| {
                        store.trim_history(start.as_deref(), PIECE, before)
                    })
                    .await?;
                removed.history += piece.removed;
                after = piece.next.map(Some);
            }
        }
        if let Some(before) = kept
            .journal
            .and_then(|period| now.checked_sub_signed(period))
        {
            let mut from = Some(0);
            while let Some(start) = from {
                let piece = self
                    .piece(shutdown, move |store| {
                        store.trim_journal(start, PIECE, before)
                    })
                    .await?;
                removed.journal += piece.removed;
                from = piece.next;
            }
        }
        let first_kept = crate::store::dedup::first_kept_day(now, kept.event_ids);
        loop {
            let piece = self
                .piece(shutdown, move |store| store.trim_seen(PIECE, first_kept))
                .await?;
            removed.event_ids += piece.removed;
            if piece.next.is_none() {
                break;
            }
        }
        Ok(removed)
    }

    /// Runs one piece on the blocking pool, after a pause in which `shutdown` may end
    /// the pass. The piece itself is never abandoned half-way.
    async fn piece<K: Send + 'static>(
        &self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        trim: impl FnOnce(&Store) -> Result<Trimmed<K>, StoreError> + Send + 'static,
    ) -> Result<Trimmed<K>, Interrupted> {
        tokio::select! {
            biased;
            () = shutdown.as_mut() => return Err(Interrupted::Shutdown),
            () = tokio::time::sleep(PAUSE) => {}
        }
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || trim(&store)).await {
            Ok(Ok(piece)) => Ok(piece),
            Ok(Err(error)) => Err(Interrupted::Store(error)),
            Err(panicked) => Err(Interrupted::Panicked(panicked.to_string())),
        }
    }
}

impl Removed {
    /// Logged after every pass, even one that removed nothing: an operator (or
    /// `scripts/scale.sh`) can tell a pass that is over from one still running.
    fn report(&self) {
        tracing::info!(
            messages = self.messages,
            history = self.history,
            journal = self.journal,
            event_ids = self.event_ids,
            "retention pass over: removed records older than settings.retention"
        );
    }
}
