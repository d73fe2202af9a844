//! Partition snapshots in the JetStream object store (docs/cluster.md, "Snapshots"):
//! the owner of a partition uploads its store every so many messages (or minutes), and
//! a node that takes the partition with an older store (or none) restores the latest
//! snapshot and replays the stream only from the snapshot's sequence on.
//!
//! A snapshot is the store between two groups, so it is exactly "the partition's
//! messages up to its sequence, applied in order" (`apply.rs`). An older snapshot is as
//! correct as a newer one, only further behind: a node that lost its lease and uploads
//! late cannot make a new owner wrong, and an upload is skipped when the bucket holds a
//! newer one already. Once every partition has a snapshot past a point, the stream
//! before that point is no longer needed to rebuild any of them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::object_store::{self, ObjectMetadata, ObjectStore};
use tokio::task::JoinHandle;

use super::partition::Partition;
use super::{ClusterError, Node};
use crate::store::compact::sibling;
use crate::store::Store;

/// The object-store bucket of the partitions' snapshots: `p.<n>` each, the latest.
const BUCKET: &str = "rally_snapshots";

/// The object metadata key that holds a snapshot's stream sequence.
const SEQUENCE: &str = "sequence";

/// At most this long between snapshots of a partition that applied something.
const EVERY: Duration = Duration::from_secs(600);

/// The bucket, made if it does not exist yet.
pub async fn bucket(
    jetstream: &async_nats::jetstream::Context,
) -> Result<ObjectStore, ClusterError> {
    if let Ok(bucket) = jetstream.get_object_store(BUCKET).await {
        return Ok(bucket);
    }
    let created = jetstream
        .create_object_store(object_store::Config {
            bucket: BUCKET.to_string(),
            description: Some("Rally partition snapshots".to_string()),
            ..Default::default()
        })
        .await;
    // Two nodes starting together both try; either made it.
    match jetstream.get_object_store(BUCKET).await {
        Ok(bucket) => Ok(bucket),
        Err(get) => Err(super::setup::nats(
            "opening the snapshots bucket",
            created
                .err()
                .map_or_else(|| get.to_string(), |e| e.to_string()),
        )),
    }
}

fn name(partition: Partition) -> String {
    format!("p.{}", partition.0)
}

/// The stream sequence of the partition's latest snapshot; `None` when it has none.
pub async fn latest(bucket: &ObjectStore, partition: Partition) -> Result<Option<u64>, String> {
    match bucket.info(name(partition)).await {
        Ok(info) => info
            .metadata
            .get(SEQUENCE)
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("snapshot {} has no sequence", info.name)),
        Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Replaces the partition store in `dir` with the latest snapshot if that is further
/// on than `applied`; returns the snapshot's sequence when it did. The store in `dir`
/// must be closed.
pub async fn restore_if_newer(
    node: &Node,
    partition: Partition,
    dir: &Path,
    applied: u64,
) -> Result<Option<u64>, String> {
    let Some(sequence) = latest(&node.snapshots, partition).await? else {
        return Ok(None);
    };
    if sequence <= applied {
        return Ok(None);
    }
    let download = sibling(dir, "snapshot");
    let mut object = node
        .snapshots
        .get(name(partition))
        .await
        .map_err(|e| format!("downloading the snapshot: {e}"))?;
    let mut file = tokio::fs::File::create(&download)
        .await
        .map_err(|e| format!("cannot create {}: {e}", download.display()))?;
    tokio::io::copy(&mut object, &mut file)
        .await
        .map_err(|e| format!("downloading the snapshot: {e}"))?;
    drop(file);
    let (dir, restoring, old) = (
        dir.to_path_buf(),
        sibling(dir, "restoring"),
        sibling(dir, "old"),
    );
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        let _ = std::fs::remove_dir_all(&restoring);
        let mut input =
            std::io::BufReader::new(std::fs::File::open(&download).map_err(|e| e.to_string())?);
        Store::restore_snapshot(&restoring, &mut input).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&download);
        // The old store goes aside first: a crash between the renames leaves it
        // there, never a directory with neither.
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(|e| e.to_string())?;
        }
        std::fs::rename(&restoring, &dir).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())??;
    tracing::info!(partition = %partition, sequence, applied, "restored the partition from its snapshot");
    Ok(Some(sequence))
}

/// Removes the partition's snapshot files an earlier applier left in `partitions`
/// (a node that died mid-upload). An upload still reading one keeps its open file.
pub fn remove_leftover_uploads(partitions: &Path, partition: Partition) {
    let prefix = format!("{}.upload-", partition.dir_name());
    let Ok(entries) = std::fs::read_dir(partitions) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// When a partition's owner takes its next snapshot, and the upload under way.
pub struct Snapshots {
    /// The sequence of the latest snapshot taken or restored here (or found).
    last: u64,
    taken_at: Instant,
    uploading: Option<JoinHandle<()>>,
}

impl Snapshots {
    pub fn new(last: u64) -> Snapshots {
        Snapshots {
            last,
            taken_at: Instant::now(),
            uploading: None,
        }
    }

    /// Whether a snapshot at `applied` is due: `every` messages on, or [`EVERY`] after
    /// the last one with something applied since, and no upload still under way.
    pub fn due(&self, applied: u64, every: u64) -> bool {
        let moved = applied > self.last;
        let busy = self.uploading.as_ref().is_some_and(|u| !u.is_finished());
        moved && !busy && (applied - self.last >= every || self.taken_at.elapsed() >= EVERY)
    }

    /// Writes the store (between two groups: nothing commits meanwhile) to a file
    /// beside it, then uploads it on a task of its own while applying goes on.
    pub async fn take(
        &mut self,
        node: &Arc<Node>,
        partition: Partition,
        store: Arc<Store>,
        sequence: u64,
    ) -> Result<(), String> {
        let file = node
            .data
            .join("partitions")
            .join(format!("{}.upload-{sequence}", partition.dir_name()));
        let path = file.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let out = std::fs::File::create(&path).map_err(|e| e.to_string())?;
            let mut out = std::io::BufWriter::new(out);
            store.write_snapshot(&mut out).map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())??;
        self.last = sequence;
        self.taken_at = Instant::now();
        let node = Arc::clone(node);
        self.uploading = Some(tokio::spawn(async move {
            if let Err(error) = upload(&node, partition, &file, sequence).await {
                tracing::warn!(partition = %partition, sequence, %error, "a snapshot was not stored");
            }
            let _ = tokio::fs::remove_file(&file).await;
        }));
        Ok(())
    }

    /// Waits for the upload under way, if any (before the store's directory may go).
    pub async fn finish(self) {
        if let Some(uploading) = self.uploading {
            let _ = uploading.await;
        }
    }
}

async fn upload(
    node: &Node,
    partition: Partition,
    file: &Path,
    sequence: u64,
) -> Result<(), String> {
    if latest(&node.snapshots, partition)
        .await?
        .is_some_and(|stored| stored >= sequence)
    {
        return Ok(());
    }
    let mut input = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let meta = ObjectMetadata {
        name: name(partition),
        description: Some(format!(
            "partition {} at stream sequence {sequence}",
            partition.0
        )),
        metadata: [(SEQUENCE.to_string(), sequence.to_string())].into(),
        ..Default::default()
    };
    node.snapshots
        .put(meta, &mut input)
        .await
        .map_err(|e| format!("uploading: {e}"))?;
    if let Some(progress) = node.serving.get(partition) {
        progress.snapshot_stored(sequence);
    }
    tracing::info!(partition = %partition, sequence, "snapshot stored");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_partitions_leftover_uploads_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, other) = (Partition(3), Partition(13));
        let names = [
            format!("{}.upload-10", mine.dir_name()),
            format!("{}.upload-20", mine.dir_name()),
            format!("{}.upload-10", other.dir_name()),
            format!("{}.snapshot", mine.dir_name()),
        ];
        for name in &names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join(mine.dir_name())).unwrap();
        remove_leftover_uploads(dir.path(), mine);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = vec![names[2].clone(), names[3].clone(), mine.dir_name()];
        expected.sort();
        assert_eq!(left, expected);
    }
}
