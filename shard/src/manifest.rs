//! The shard manifest: which messages a shard holds, where each one's bytes are, and which packs and
//! index files exist. It is a chain of sealed delta objects (one per flush); Raft holds the key of the
//! newest, so the newest committed delta names everything reachable.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::index_files::IndexFile;
use arca_types::ArchiveId;

/// Whether a message was sent or received by the archive's owner: part of a message's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    Received,
    Sent,
}

/// Where the bytes of one stored content live: a pack and the content's record number in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRef {
    pub pack: String,
    pub record: u64,
}

/// One message of the shard as listed in an archive folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The message number within the shard (the `<number>` of `<shard>:<number>`).
    pub number: u64,
    pub archive: ArchiveId,
    /// The key of the message's folder (`records::Archive::folders`): moving the folder keeps it.
    pub folder: String,
    pub direction: Direction,
    #[serde(with = "hex::serde")]
    pub sha256: [u8; 32],
    pub size: u64,
    /// Unix seconds of archiving.
    pub archived_at: i64,
    pub content: ContentRef,
}

/// A pack the shard holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackInfo {
    pub key: String,
    pub bytes: u64,
    pub records: u64,
}

/// One manifest object: the changes of one flush, or (with `previous: None`) everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDelta {
    pub epoch: u64,
    pub sequence: u64,
    /// The delta before this one; `None` for the first or for a compaction.
    pub previous: Option<String>,
    pub packs: Vec<PackInfo>,
    pub entries: Vec<Entry>,
    /// The complete list of index segment files after this flush, each in a bundle object.
    pub index_files: Vec<IndexFile>,
    /// The index's `meta.json` after this flush: it changes with every commit, so it lives here rather
    /// than in an object of its own (objects are never rewritten).
    #[serde(default)]
    pub index_meta: Option<String>,
}

/// The manifest in memory: the chain folded into lookups.
#[derive(Debug, Default, Clone)]
pub struct Manifest {
    pub entries: Vec<Entry>,
    pub packs: Vec<PackInfo>,
    pub index_files: Vec<IndexFile>,
    pub index_meta: Option<String>,
    pub sequence: u64,
    /// Key of the newest delta.
    pub head: Option<String>,
    /// Keys of the objects this manifest was read from, oldest first: from the last compaction on.
    pub chain: Vec<String>,
    by_number: HashMap<u64, usize>,
    by_identity: HashMap<(ArchiveId, [u8; 32], Direction), u64>,
    by_content: HashMap<[u8; 32], ContentRef>,
    /// The highest message number plus one, and the raw bytes of all entries: kept as entries are
    /// added, since every flush asks.
    next_number: u64,
    bytes: u64,
}

impl Manifest {
    /// Folds deltas given newest first (as the chain is walked) into one manifest.
    pub fn from_chain(mut newest_first: Vec<(String, ManifestDelta)>) -> Manifest {
        let mut m = Manifest::default();
        if let Some((key, newest)) = newest_first.first() {
            m.head = Some(key.clone());
            m.sequence = newest.sequence;
            m.index_files = newest.index_files.clone();
            m.index_meta = newest.index_meta.clone();
        }
        newest_first.reverse();
        for (key, delta) in newest_first {
            m.chain.push(key);
            m.packs.extend(delta.packs);
            for e in delta.entries {
                m.insert(e);
            }
        }
        m
    }

    /// Adds an entry to the lookups.
    pub fn insert(&mut self, e: Entry) {
        self.by_identity.insert((e.archive, e.sha256, e.direction), e.number);
        self.by_content.entry(e.sha256).or_insert_with(|| e.content.clone());
        self.by_number.insert(e.number, self.entries.len());
        self.next_number = self.next_number.max(e.number + 1);
        self.bytes += e.size;
        self.entries.push(e);
    }

    /// Applies a delta that was just committed.
    pub fn apply(&mut self, key: String, delta: ManifestDelta) {
        self.chain.push(key.clone());
        self.head = Some(key);
        self.sequence = delta.sequence;
        self.index_files = delta.index_files;
        self.index_meta = delta.index_meta;
        self.packs.extend(delta.packs);
        for e in delta.entries {
            self.insert(e);
        }
    }

    /// The message with this number.
    pub fn entry(&self, number: u64) -> Option<&Entry> {
        self.by_number.get(&number).map(|&i| &self.entries[i])
    }

    /// The number of the message with this identity, if the shard has it.
    pub fn find_identity(&self, archive: ArchiveId, sha256: &[u8; 32], direction: Direction) -> Option<u64> {
        self.by_identity.get(&(archive, *sha256, direction)).copied()
    }

    /// Where content with this hash is stored already, if anywhere in the shard.
    pub fn find_content(&self, sha256: &[u8; 32]) -> Option<&ContentRef> {
        self.by_content.get(sha256)
    }

    /// The next free message number.
    pub fn next_number(&self) -> u64 {
        self.next_number.max(1)
    }

    /// Messages and their raw bytes in total.
    pub fn counters(&self) -> (u64, u64) {
        (self.entries.len() as u64, self.bytes)
    }
}
