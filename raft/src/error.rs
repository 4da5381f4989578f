//! Errors of the metadata node: startup, storage, network, and writes that could not be committed.

use std::path::PathBuf;

use arca_types::MetaError;

/// Why a metadata operation or node startup failed.
#[derive(Debug, thiserror::Error)]
pub enum RaftNodeError {
    /// A local file (log, snapshot, node id) is unreadable or damaged; the node refuses to start.
    #[error(transparent)]
    Storage(#[from] arca_types::wal::WalError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The command was applied and refused by validation.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// No leader could be reached, or the write could not be committed in time.
    #[error("the metadata cluster is unavailable: {0}")]
    Unavailable(String),
    /// A membership operation was refused.
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("raft failed: {0}")]
    Fatal(String),
    /// This node holds no lease on its stores (its latest renewal through Raft is too old): it serves
    /// none of them until it has renewed.
    #[error(
        "this node holds no lease on its stores (no renewal through Raft within the last {lease_ms} ms * 3/4); retry shortly"
    )]
    NoLease { lease_ms: u64 },
}
