//! How a served shard reaches the rest of the node: its manifest commits go through Raft, its documents
//! into its tantivy index.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;

use arca_raft::MetaNode;
use arca_search::{IndexEntry, ShardIndex};
use arca_shard::manifest::{Direction, Entry};
use arca_shard::shard::{Catalog, IndexSink, ShardError};
use arca_types::document::MessageDoc;
use arca_types::{Command, ShardId};

use super::ArchiveError;

pub(super) struct RaftCatalog {
    pub(super) meta: MetaNode,
    pub(super) tenant: String,
}

impl Catalog for RaftCatalog {
    fn commit_manifest(
        &self,
        shard: ShardId,
        epoch: u64,
        sequence: u64,
        key: String,
        counters: (u64, u64),
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let cmd = Command::CommitManifest {
                tenant: self.tenant.clone(),
                id: shard,
                epoch,
                sequence,
                manifest: key,
                message_count: counters.0,
                byte_count: counters.1,
            };
            self.meta.write(cmd).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

/// Feeds the writer's documents into the shard's tantivy index.
pub(super) struct SearchSink {
    pub(super) index: Arc<ShardIndex>,
    /// The index directory; segment file names are relative to it.
    pub(super) dir: PathBuf,
}

impl IndexSink for SearchSink {
    fn add(&mut self, entry: &Entry, doc: &MessageDoc) -> Result<(), String> {
        let e = IndexEntry {
            number: entry.number,
            archive: entry.archive,
            folder: entry.folder.clone(),
            archived_at: entry.archived_at,
            sent: entry.direction == Direction::Sent,
        };
        self.index.add(&e, doc).map_err(|e| e.to_string())
    }

    fn reset(&mut self) -> Result<(), String> {
        self.index.delete_all().map_err(|e| e.to_string())
    }

    fn commit(&mut self) -> Result<Vec<(String, PathBuf, u64)>, String> {
        let index = &self.index;
        index.commit().map_err(|e| e.to_string())?;
        let files = index.segment_files().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for relative in files {
            let path = self.dir.join(&relative);
            let size = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            out.push((name, path, size));
        }
        Ok(out)
    }
}

/// Drops what the staging log of a store that is no longer current still holds: never acknowledged
/// (nothing of it was committed), and Raft refuses to add it to a store that is not current, so its
/// senders' retries archive it into the current store instead.
pub(super) fn discard_staged(path: &std::path::Path, id: ShardId) -> Result<(), ArchiveError> {
    if !path.exists() {
        return Ok(());
    }
    let arca_shard::staging::Opened { mut staging, pending, .. } =
        arca_shard::staging::Staging::open(path).map_err(ShardError::from)?;
    if !pending.is_empty() {
        tracing::warn!(
            shard = id,
            messages = pending.len(),
            "the store is not current: dropping unacknowledged messages of its staging log"
        );
        staging.clear().map_err(ShardError::from)?;
    }
    Ok(())
}
