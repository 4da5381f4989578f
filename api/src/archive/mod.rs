//! The archive service of a node: the tenant's current shard (created when needed), the shards this node
//! serves, archiving parsed messages into them, fan-out search over them, and fetching messages.
//! Keys: the node's master key unwraps tenant keys held in Raft, which unwrap shard data keys.
//!
//! One module per job: [`keys`], [`placement`] (where a shard is served; only it takes a shard over),
//! [`protocol`] (the typed node-to-node requests), [`write`], [`read`] (the root of a fan-out search and
//! the leaf on each shard), [`admin`] (stores), and [`catalog`] (a served shard's links to Raft and its
//! index).

mod admin;
mod catalog;
mod keys;
mod placement;
mod protocol;
mod read;
mod write;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arca_ingest::Limits;
use arca_raft::{MetaNode, RaftNodeError};
use arca_search::ShardIndex;
use arca_shard::MasterKey;
use arca_shard::objects::{ObjectError, Objects};
use arca_shard::shard::{Shard, ShardError};
use arca_types::{MetaError, ShardId};

pub(crate) use placement::Placement;
pub use protocol::{ARCHIVE_SERVICE, max_forward_bytes};

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Meta(#[from] RaftNodeError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    /// The node serving a shard could not be reached (or had no service to answer with).
    #[error("node {node}, which serves the store, cannot be reached: {reason}")]
    Unreachable { node: arca_types::NodeId, reason: String },
    /// The node serving a shard did not finish within the request's deadline.
    #[error("store {shard} on node {node} did not answer within {after:?}")]
    Deadline { shard: ShardId, node: arca_types::NodeId, after: std::time::Duration },
    /// The node serving a shard failed the request; its message.
    #[error("node {node}: {message}")]
    Remote { node: arca_types::NodeId, message: String },
    #[error("keys: {0}")]
    Keys(String),
    #[error("search: {0}")]
    Search(String),
    /// A request forwarded here names a shard that another node serves (never forwarded twice).
    #[error("store {shard} is served by node {node}, not by this one")]
    ServedElsewhere { shard: ShardId, node: arca_types::NodeId },
    /// Taking a shard over failed a moment ago; it is retried after a back-off, not on every request.
    #[error("store {shard} cannot be opened (retried in {retry_in_ms} ms): {reason}")]
    TakeoverFailed { shard: ShardId, retry_in_ms: u64, reason: String },
    /// The node serving a shard answered something unreadable.
    #[error("the answer of node {node}, which serves the store, is unreadable: {reason}")]
    Forward { node: arca_types::NodeId, reason: String },
    /// The search is over a `[search]` bound: the caller's error, never a missing store.
    #[error(transparent)]
    QueryLimit(#[from] arca_types::query::QueryLimitError),
    /// The store a batch was sent to is no longer the tenant's current store (STO-02): only the current
    /// store accepts new mail; the sender re-reads the catalogue and sends the batch there.
    #[error("store {shard} is not the current store; new mail goes to the current store")]
    NotCurrent { shard: ShardId },
    /// A tenant with a disabled store takes no imports: duplicates of its messages could not be
    /// excluded (STO-03).
    #[error(
        "store {id} ('{name}') is disabled: imports do not start while a store is disabled, because duplicates of its messages could not be excluded; enable it (SetStoreRequestedState) first"
    )]
    StoreDisabled { id: ShardId, name: String },
}

impl ArchiveError {
    /// The HTTP status of the data API for this error: a refusal the caller can act on is a 409,
    /// anything else means the cluster could not do it now (503).
    pub fn http_status(&self) -> axum::http::StatusCode {
        match self {
            ArchiveError::StoreDisabled { .. } => axum::http::StatusCode::CONFLICT,
            _ => axum::http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<MetaError> for ArchiveError {
    fn from(e: MetaError) -> Self {
        ArchiveError::Meta(RaftNodeError::Meta(e))
    }
}

/// The reason a folder refusal gives, as the data API names arguments: `folder: <rule broken>`.
pub fn folder_refusal(e: &MetaError) -> String {
    match e {
        MetaError::Invalid { field, reason } => format!("{field}: {reason}"),
        other => format!("folder: {other}"),
    }
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub folder: String,
    pub raw: Vec<u8>,
    pub sent: bool,
}

/// What happened to one message handed to [`ArchiveService::archive`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Archived {
    /// Stored as `<shard>:<number>`.
    New { shard: ShardId, number: u64 },
    /// The archive already had it.
    Present { shard: ShardId, number: u64 },
    /// Over a limit; not archived.
    Refused { reason: String },
}

/// A served shard and its index.
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) shard: Shard,
    pub(crate) index: Arc<ShardIndex>,
    /// False when the index files named by the manifest could not be restored: searches then list
    /// the shard as missing until `RebuildStoreIndex` has run (invariant 5).
    pub(crate) complete: Arc<std::sync::atomic::AtomicBool>,
}

/// The archive service of this node.
pub struct ArchiveService {
    pub(crate) meta: MetaNode,
    /// Serialises the creation of a tenant's first shard on this node.
    creating: tokio::sync::Mutex<()>,
    /// Shards marked by `SelectAllStoreIndexesForRebuild`, rebuilt by `RebuildSelectedStoreIndexes`.
    pub selected_for_rebuild: std::sync::Mutex<std::collections::BTreeSet<ShardId>>,
    pub(crate) objects: Objects,
    master: MasterKey,
    pub(crate) data_dir: PathBuf,
    limits: Limits,
    /// The shards this node serves.
    pub(crate) served: placement::Registry,
    /// Takeovers that failed, by shard (see [`ArchiveService::take_over`]).
    pub(crate) failed_takeovers: std::sync::Mutex<HashMap<ShardId, placement::FailedTakeover>>,
    /// The identities of the tenants' other shards, for dedupe across stores (invariant 3).
    pub(crate) older: crate::older_shards::OlderShards,
    /// Searches and batches served by this node (`GetServerInfo`).
    pub counters: crate::counters::Counters,
    /// Manifests read by the prepare step of a shard move, used by its takeover when still current.
    pub(crate) prepared: crate::shard_move::PreparedManifests,
}

impl std::fmt::Debug for ArchiveService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchiveService({:?})", self.objects)
    }
}

impl ArchiveService {
    /// The service of a node with this master key and object store.
    pub fn new(meta: MetaNode, objects: Objects, master: MasterKey, data_dir: PathBuf) -> ArchiveService {
        ArchiveService {
            meta,
            selected_for_rebuild: std::sync::Mutex::new(Default::default()),
            creating: tokio::sync::Mutex::new(()),
            objects,
            master,
            data_dir,
            limits: Limits::default(),
            served: placement::Registry::default(),
            failed_takeovers: std::sync::Mutex::new(HashMap::new()),
            older: crate::older_shards::OlderShards::new(
                arca_types::config::StorageConfig::default().identity_cache_entries,
            ),
            counters: Default::default(),
            prepared: Default::default(),
        }
    }

    /// Bounds the read-only manifests kept for confirming identities of other shards
    /// (`storage.identity_cache_entries`).
    pub fn with_identity_cache_entries(mut self, entries: usize) -> ArchiveService {
        self.older = crate::older_shards::OlderShards::new(entries);
        self
    }

    /// Where objects live, for statistics and messages.
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// The limits messages are parsed within (also for showing them).
    pub fn limits(&self) -> Limits {
        self.limits
    }
}
