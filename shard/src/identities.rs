//! The identity table of a tenant's older shards (invariant 3 across stores): a sorted table of 8-byte
//! fingerprints of (archive, SHA-256, direction), each with the shard that holds it, so that the writer of
//! the current shard checks one table per message however many shards the tenant has. A fingerprint is a
//! filter, not a proof: a hit is confirmed against the holding shard's manifest before a message is
//! answered as present.

use arca_types::{ArchiveId, ShardId};

use crate::manifest::{Direction, Entry};

/// The 8-byte fingerprint of a message identity: the SHA-256 already spreads its bits, so the first
/// 8 bytes mixed with archive and direction suffice (a collision only costs one exact lookup).
pub fn fingerprint(archive: ArchiveId, sha256: &[u8; 32], direction: Direction) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&sha256[..8]);
    let dir = match direction {
        Direction::Received => 0,
        Direction::Sent => 0x9e37_79b9_7f4a_7c15,
    };
    u64::from_le_bytes(head) ^ archive.wrapping_mul(0xd6e8_feb8_6659_fd93) ^ dir
}

/// Sorted fingerprints of many shards' entries, with the shard of each: 16 bytes per message.
#[derive(Debug, Default, Clone)]
pub struct IdentityTable {
    /// (fingerprint, shard), sorted.
    rows: Vec<(u64, ShardId)>,
}

impl IdentityTable {
    /// Adds the identities of `entries`, held by `shard`.
    pub fn extend<'a>(&mut self, shard: ShardId, entries: impl IntoIterator<Item = &'a Entry>) {
        let before = self.rows.len();
        self.rows
            .extend(entries.into_iter().map(|e| (fingerprint(e.archive, &e.sha256, e.direction), shard)));
        if self.rows.len() != before {
            // Mostly sorted runs: the standard sort merges them in about linear time.
            self.rows.sort();
        }
    }

    /// Forgets every identity of `shard` (before reloading it whole).
    pub fn remove_shard(&mut self, shard: ShardId) {
        self.rows.retain(|(_, s)| *s != shard);
    }

    /// The shards that may hold this identity (usually none; several only for fingerprint collisions).
    pub fn candidates(&self, archive: ArchiveId, sha256: &[u8; 32], direction: Direction) -> Vec<ShardId> {
        let fp = fingerprint(archive, sha256, direction);
        let start = self.rows.partition_point(|(f, _)| *f < fp);
        let mut out: Vec<ShardId> =
            self.rows[start..].iter().take_while(|(f, _)| *f == fp).map(|(_, s)| *s).collect();
        out.dedup();
        out
    }

    /// Identities held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no identity is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ContentRef;

    fn entry(n: u64, archive: ArchiveId, byte: u8, direction: Direction) -> Entry {
        Entry {
            number: n,
            archive,
            folder: "Inbox".into(),
            direction,
            sha256: [byte; 32],
            size: 1,
            archived_at: 0,
            content: ContentRef { pack: "p".into(), record: n },
        }
    }

    #[test]
    fn identities_of_older_shards_are_found_per_archive_and_direction_and_forgotten_per_shard() {
        let mut t = IdentityTable::default();
        t.extend(4, &[entry(1, 1, 7, Direction::Received), entry(2, 1, 8, Direction::Received)]);
        t.extend(5, &[entry(1, 2, 7, Direction::Received)]);
        assert_eq!(t.candidates(1, &[7; 32], Direction::Received), vec![4]);
        assert_eq!(t.candidates(2, &[7; 32], Direction::Received), vec![5], "another archive");
        assert!(t.candidates(1, &[7; 32], Direction::Sent).is_empty(), "another direction");
        assert!(t.candidates(3, &[7; 32], Direction::Received).is_empty());
        t.remove_shard(4);
        assert!(t.candidates(1, &[8; 32], Direction::Received).is_empty());
        assert_eq!(t.len(), 1);
    }
}
