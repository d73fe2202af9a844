//! Removing old journal entries (`settings.retention.journal`), a piece at a time,
//! beside the writer like the rest of retention (`retention.rs`).
//!
//! Entries are numbered in step order and their times never go back, so a pass walks
//! from the oldest and stops at the first entry it keeps. Rule sets armed with their
//! files are kept however old: they are few, and without them the rest of the journal
//! could not be replayed (`rally backtest` starts a window from the rules in force).

use chrono::{DateTime, Utc};

use super::keys;
use super::retention::Trimmed;
use super::write::Batch;
use super::{Store, StoreError, TreeId};

impl Store {
    /// Looks at up to `max` journal entries from `from` on and removes those before
    /// `before`, except rule sets armed with their files, in one batch.
    pub fn trim_journal(
        &self,
        from: u64,
        max: usize,
        before: DateTime<Utc>,
    ) -> Result<Trimmed<u64>, StoreError> {
        let opened = self.opened()?;
        let mut batch = Batch::default();
        let mut removed = 0;
        let mut next = None;
        let mut seen = 0;
        let mut reached_kept = false;
        for row in opened
            .keyspaces
            .journal
            .range(keys::u64_key(from)..)
            .take(max)
        {
            let (key, value) = row.map_err(StoreError::sled("scanning the journal to trim it"))?;
            let seq =
                keys::decode_u64(&key).map_err(|e| StoreError::corrupt("journal", &key, e))?;
            seen += 1;
            let Ok(entry) = serde_json::from_slice::<Head>(&value) else {
                // Unreadable: left for `rally replay` to report, not removed unseen.
                next = Some(seq + 1);
                continue;
            };
            if entry.at >= before {
                reached_kept = true;
                break;
            }
            next = Some(seq + 1);
            if entry.kind == "arm" && entry.files.is_some() {
                continue;
            }
            batch.remove(TreeId::Journal, &key);
            removed += 1;
        }
        // The pass is over at the first entry kept, or at the journal's end.
        if reached_kept || seen < max {
            next = None;
        }
        if removed > 0 {
            opened
                .database
                .apply(batch)
                .map_err(StoreError::sled("removing old journal entries"))?;
        }
        Ok(Trimmed { removed, next })
    }
}

/// What trimming reads of an entry.
#[derive(serde::Deserialize)]
struct Head {
    kind: String,
    #[serde(with = "crate::engine::outcome::utc")]
    at: DateTime<Utc>,
    #[serde(default)]
    files: Option<serde::de::IgnoredAny>,
}
