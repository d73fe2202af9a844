//! Messages in cluster mode (docs/cluster.md, "Outbox"): each partition's outbox
//! lives in its store and is delivered by the partition's owner, with the dispatcher
//! the single process uses (its channels, lanes, retries and idempotency keys).
//!
//! What became of a message is recorded in the partition's stream: when a delivery
//! ends (sent, failed, suppressed), the owner publishes a *settled message* with the
//! row as it ended (`Rally-Outbox: <seq>`). Applying it writes that outcome into the
//! store unless the store has it already (it does on the node that delivered). A node
//! that replays the partition after a move recreates every row with the steps that
//! queued it and then, further on, meets its settled message: a message delivered
//! before the move is not delivered again. The owner starts delivering only once its
//! store has caught up with the stream, so it never sends a row whose settled message
//! it has not reached yet.
//!
//! Not exactly once: a delivery that ended on a node that died before its settled
//! message was stored is sent again by the next owner, with the same key (`Message-ID`,
//! `Idempotency-Key`), as after a crash of the single process.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::apply::RECEIVED_HEADER;
use super::partition::Partition;
use crate::clock::{Clock, SystemClock};
use crate::messaging::Channels;
use crate::outbox::{DispatchConfig, Dispatcher, OutboxRow};
use crate::rules::RuleSet;
use crate::store::Store;

/// The header of a settled message: the outbox sequence of the row it carries.
pub const OUTBOX_HEADER: &str = "Rally-Outbox";

/// A partition's dispatcher while its owner applies it.
pub struct Delivering {
    dispatcher: Dispatcher,
    /// The rules whose channels it delivers with.
    version: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Delivering {
    /// Starts delivering `store`'s outbox over the channels of `rules`, each ended
    /// delivery published into `partition`'s subject.
    pub fn start(
        jetstream: async_nats::jetstream::Context,
        partition: Partition,
        store: Arc<Store>,
        rules: &RuleSet,
    ) -> Delivering {
        // Deliveries under way when the partition is let go are abandoned at once, not
        // waited for: the node no longer owns the partition, and the next owner sends
        // them again with the same keys.
        let config = DispatchConfig {
            shutdown_grace: std::time::Duration::ZERO,
            ..DispatchConfig::default()
        };
        let dispatcher = Dispatcher::new(store, Arc::new(channels(rules)), config);
        dispatcher.set_timezone(rules.settings.timezone);
        dispatcher.on_settled(Arc::new(move |row: &OutboxRow| {
            let Ok(payload) = row.encode() else {
                return;
            };
            let (jetstream, seq) = (jetstream.clone(), row.seq);
            tokio::spawn(async move {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(OUTBOX_HEADER, seq.to_string().as_str());
                headers.insert(
                    RECEIVED_HEADER,
                    crate::member::rfc3339(SystemClock.now()).as_str(),
                );
                let published = jetstream
                    .publish_with_headers(partition.subject(), headers, payload.into())
                    .await;
                let stored = match published {
                    Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(error) = stored {
                    tracing::warn!(partition = %partition, seq, %error, "the outcome of a delivery is not in the stream: a later owner of the partition may send it again");
                }
            });
        }));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(dispatcher.clone().run(async move {
            let _ = stopped.await;
        }));
        Delivering {
            dispatcher,
            version: rules.version.clone(),
            stop,
            task,
        }
    }

    /// After a commit: looks at once for rows to deliver, with the channels of `rules`
    /// if they changed.
    pub fn committed(&mut self, rules: &RuleSet) {
        if rules.version != self.version {
            self.version = rules.version.clone();
            self.dispatcher.set_channels(Arc::new(channels(rules)));
            self.dispatcher.set_timezone(rules.settings.timezone);
        }
        self.dispatcher.notifier().notify_one();
    }

    /// Stops delivering, abandoning the deliveries under way, and waits until the
    /// dispatcher let go of the store.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The channels of `rules`; none when they cannot be built (a row of a channel that
/// is missing is held, as after a reload that removed it, until they can).
fn channels(rules: &RuleSet) -> Channels {
    match Channels::new(&rules.channels) {
        Ok(channels) => channels,
        Err(errors) => {
            for error in &errors {
                tracing::warn!(%error, "a channel cannot be built: its messages wait");
            }
            Channels::default()
        }
    }
}
