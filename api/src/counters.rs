//! Work a node has served since it started: searches and archived batches, counted where they are
//! served, so that `GetServerInfo` can show per node how load spreads over the cluster (OPS-07).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The counters of one node (all tenants; counts only, nothing that names a tenant's data).
#[derive(Debug, Default)]
pub struct Counters {
    /// Searches this node answered to a client (as the root that asks every shard).
    searches: AtomicU64,
    /// Shard searches run on this node (as the leaf serving a shard, asked locally or by another node).
    shard_searches: AtomicU64,
    /// Batches archived into a shard served by this node.
    batches_archived: AtomicU64,
    /// Messages those batches carried (new, already present and refused alike).
    messages_archived: AtomicU64,
}

/// A copy of [`Counters`] at one moment, as `GetServerInfo` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    pub searches: u64,
    pub shard_searches: u64,
    pub batches_archived: u64,
    pub messages_archived: u64,
}

impl Counters {
    /// Counts a search this node answers to a client.
    pub fn search(&self) {
        self.searches.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a shard search run on this node.
    pub fn shard_search(&self) {
        self.shard_searches.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a batch of `messages` archived into a shard served here.
    pub fn batch_archived(&self, messages: usize) {
        self.batches_archived.fetch_add(1, Ordering::Relaxed);
        self.messages_archived.fetch_add(messages as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            searches: self.searches.load(Ordering::Relaxed),
            shard_searches: self.shard_searches.load(Ordering::Relaxed),
            batches_archived: self.batches_archived.load(Ordering::Relaxed),
            messages_archived: self.messages_archived.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_work_counts_in_its_own_counter() {
        let c = Counters::default();
        c.search();
        c.shard_search();
        c.shard_search();
        c.batch_archived(7);
        assert_eq!(
            c.snapshot(),
            CounterSnapshot { searches: 1, shard_searches: 2, batches_archived: 1, messages_archived: 7 }
        );
    }
}
