//! What the runner keeps of the rewards catalog: every reward's [`RewardRecord`], read
//! from the store at start (and again after a failed commit), updated in memory as
//! steps grant redemptions so the next step of the open group sees them, and written
//! in the same group as the step that changed them.

use std::collections::BTreeMap;

use crate::rewards::{Redemption, RewardRecord, REDEMPTION_META, REWARD_META};
use crate::store::{StepWrite, Store, StoreError};

/// Every reward record in `store`, by reward id.
pub fn load(store: &Store) -> Result<BTreeMap<String, RewardRecord>, StoreError> {
    let mut records = BTreeMap::new();
    for (name, bytes) in store.meta_scan(REWARD_META)? {
        let record: RewardRecord = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e))?;
        records.insert(name[REWARD_META.len()..].to_string(), record);
    }
    Ok(records)
}

/// The redemption recorded under event (or request key) `event`, if any.
pub fn redemption(store: &Store, event: &str) -> Result<Option<Redemption>, StoreError> {
    let name = format!("{REDEMPTION_META}{event}");
    match store.meta_get(&name)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::corrupt("meta", name.as_bytes(), e)),
        None => Ok(None),
    }
}

/// Adds a step's redemptions to `records` and to its write: the redemption itself,
/// and for a granted one its reward's new record.
pub fn absorb(
    records: &mut BTreeMap<String, RewardRecord>,
    redemptions: &[Redemption],
    write: &mut StepWrite,
) {
    for redemption in redemptions {
        if redemption.granted() {
            let record = records.entry(redemption.reward.clone()).or_default();
            record.grant(redemption.code());
            write.meta_put.push((
                format!("{REWARD_META}{}", redemption.reward),
                serde_json::to_vec(record).unwrap_or_default(),
            ));
        }
        write.meta_put.push((
            format!("{REDEMPTION_META}{}", redemption.event),
            serde_json::to_vec(redemption).unwrap_or_default(),
        ));
    }
}
