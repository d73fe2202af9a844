//! The partition stores this node has open, for reads and for `GET /v1/cluster`: the
//! applier of a partition opens its entry when it starts and closes it when it stops.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::partition::Partition;
use crate::rules::RuleSet;
use crate::store::Store;

/// How far one partition's store has got.
pub struct Progress {
    pub store: Arc<Store>,
    /// The stream sequence of the last message committed to the store.
    applied: AtomicU64,
    /// The store holds at least what the stream held when this node took the
    /// partition: until then a read would show an old state, so reads answer 503.
    caught_up: AtomicBool,
    /// The rules the committed state ran under.
    rules: Mutex<Arc<RuleSet>>,
    /// The stream sequence of the partition's latest snapshot stored or restored here
    /// (0: none).
    snapshot: AtomicU64,
    /// The latest events refused by their step here (id, why), for the answer to the
    /// API command that sent one; kept in memory only, the last [`REFUSALS_KEPT`].
    refusals: Mutex<VecDeque<(String, String)>>,
}

/// How many refusals a partition remembers for the answers to API commands.
const REFUSALS_KEPT: usize = 4096;

impl Progress {
    pub fn new(store: Arc<Store>, applied: u64, rules: Arc<RuleSet>) -> Progress {
        Progress {
            store,
            applied: AtomicU64::new(applied),
            caught_up: AtomicBool::new(false),
            rules: Mutex::new(rules),
            snapshot: AtomicU64::new(0),
            refusals: Mutex::default(),
        }
    }

    pub fn snapshot(&self) -> u64 {
        self.snapshot.load(Ordering::Acquire)
    }

    pub fn snapshot_stored(&self, sequence: u64) {
        self.snapshot.fetch_max(sequence, Ordering::AcqRel);
    }

    /// The rules the committed state ran under: what a read of it is shown with.
    pub fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.rules.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn set_rules(&self, rules: &Arc<RuleSet>) {
        let mut held = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        if held.version != rules.version {
            *held = Arc::clone(rules);
        }
    }

    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    pub fn committed(&self, last: u64) {
        self.applied.store(last, Ordering::Release);
    }

    /// Remembers events refused by their step in a group just committed.
    pub fn refused(&self, refusals: Vec<(String, String)>) {
        if refusals.is_empty() {
            return;
        }
        let mut kept = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        kept.extend(refusals);
        let over = kept.len().saturating_sub(REFUSALS_KEPT);
        kept.drain(..over);
    }

    /// Why event `id` was refused here, if it was and is still remembered.
    pub fn refusal(&self, id: &str) -> Option<String> {
        let kept = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter()
            .rev()
            .find(|(refused, _)| refused == id)
            .map(|(_, why)| why.clone())
    }

    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    pub fn mark_caught_up(&self) {
        self.caught_up.store(true, Ordering::Release);
    }
}

/// Open partition stores by partition. A std `Mutex`: held for one map operation.
#[derive(Default)]
pub struct Serving {
    open: Mutex<BTreeMap<Partition, Arc<Progress>>>,
}

impl Serving {
    pub fn open(&self, partition: Partition, progress: Arc<Progress>) {
        self.lock().insert(partition, progress);
    }

    pub fn close(&self, partition: Partition) {
        self.lock().remove(&partition);
    }

    pub fn get(&self, partition: Partition) -> Option<Arc<Progress>> {
        self.lock().get(&partition).cloned()
    }

    /// Every open partition, in partition order.
    pub fn all(&self) -> Vec<(Partition, Arc<Progress>)> {
        self.lock()
            .iter()
            .map(|(p, progress)| (*p, Arc::clone(progress)))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Partition, Arc<Progress>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
