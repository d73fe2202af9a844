//! Which partition a member belongs to, and the names that follow from a partition:
//! its subject in the stream, its lease key, its store's directory.
//!
//! The hash is 64-bit FNV-1a of the member id's UTF-8 bytes, modulo the partition count
//! recorded when the cluster was created (docs/cluster.md). It must never change: a
//! member's events already in the stream sit on their partition's subject. Rust's
//! `HashMap` hasher is randomised per process and must never be used for this.

use std::fmt;

/// The stream that holds every event of the cluster: the cluster's journal.
pub const STREAM: &str = "RALLY";

/// The stream's subjects: `rally.p.<partition>`.
pub const SUBJECTS: &str = "rally.p.*";

/// One partition, `0..count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition(pub u32);

impl Partition {
    /// The partition of `member` among `count` (which is never 0: see `setup`).
    pub fn of(member: &str, count: u32) -> Partition {
        let index = fnv1a64(member.as_bytes()) % u64::from(count.max(1));
        // Less than `count`, itself a u32.
        Partition(index as u32)
    }

    /// The subject its events are published on.
    pub fn subject(self) -> String {
        format!("rally.p.{}", self.0)
    }

    /// Its lease's key in the leases bucket.
    pub fn lease_key(self) -> String {
        format!("p.{}", self.0)
    }

    /// Its store's directory name under `DATA/partitions/`.
    pub fn dir_name(self) -> String {
        format!("{:04}", self.0)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_member_always_lands_on_the_same_partition() {
        // Fixed here so that a change of hash, which would strand every member's
        // history on the wrong subject, fails a test.
        assert_eq!(Partition::of("m-0-0", 16), Partition(0));
        assert_eq!(Partition::of("alice", 16), Partition(7));
        assert_eq!(Partition::of("bob", 16), Partition(4));
        assert_eq!(Partition::of("alice", 1), Partition(0));
    }

    #[test]
    fn members_spread_over_every_partition() {
        let mut seen = [0usize; 8];
        for n in 0..800 {
            seen[Partition::of(&format!("m-{n}"), 8).0 as usize] += 1;
        }
        assert!(seen.iter().all(|&count| count > 50), "{seen:?}");
    }

    #[test]
    fn names_follow_from_the_number() {
        let p = Partition(7);
        assert_eq!(p.subject(), "rally.p.7");
        assert_eq!(p.lease_key(), "p.7");
        assert_eq!(p.dir_name(), "0007");
    }
}
