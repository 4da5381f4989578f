//! The openraft state machine: the in-memory [`MetaState`] plus its snapshot on disk.
//!
//! Persistence is by snapshot: `apply` changes memory only, every snapshot is written atomically and
//! checksummed, and startup restores the latest snapshot, after which openraft re-applies the log.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use crate::state::MetaState;
use crate::{MetaResponse, TypeConfig};
use arca_types::records::NodeInfo;
use arca_types::wal::{self, WalError};
use arca_types::{CommandOutput, NodeId};

/// Name of the snapshot file inside the node's Raft directory.
pub const SNAPSHOT_FILE: &str = "raft-snapshot.bin";

/// What a snapshot holds: the state and the Raft position it corresponds to.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotBody {
    meta: SnapshotMeta<NodeId, NodeInfo>,
    state: MetaState,
}

/// The shared, readable part of the state machine; the API reads metadata through it.
#[derive(Debug, Default)]
pub struct Applied {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, NodeInfo>,
    pub state: MetaState,
}

/// The latest snapshot: its metadata and serialized body.
type CurrentSnapshot = Option<(SnapshotMeta<NodeId, NodeInfo>, Vec<u8>)>;

#[derive(Debug)]
struct Shared {
    applied: RwLock<Applied>,
    current: RwLock<CurrentSnapshot>,
    path: PathBuf,
    snapshot_seq: std::sync::atomic::AtomicU64,
}

/// The state machine store handed to openraft; clones share state.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

impl StateMachineStore {
    /// Opens the store in `dir`, restoring the snapshot when there is one. A damaged snapshot is an error
    /// naming the file.
    pub fn open(dir: &Path) -> Result<StateMachineStore, WalError> {
        let path = dir.join(SNAPSHOT_FILE);
        let read = wal::read_records(&path)?;
        let corrupt = |reason: String| WalError::Corrupt { path: path.clone(), offset: 0, reason };
        let mut applied = Applied::default();
        let mut current = None;
        match (read.records.as_slice(), read.torn_tail) {
            ([], false) => {}
            ([raw], false) => {
                let body: SnapshotBody = serde_json::from_slice(raw)
                    .map_err(|e| corrupt(format!("snapshot does not decode: {e}")))?;
                applied.last_applied = body.meta.last_log_id;
                applied.membership = body.meta.last_membership.clone();
                applied.state = body.state;
                current = Some((body.meta, raw.clone()));
            }
            _ => return Err(corrupt("expected exactly one complete snapshot record".into())),
        }
        Ok(StateMachineStore {
            shared: Arc::new(Shared {
                applied: RwLock::new(applied),
                current: RwLock::new(current),
                path,
                snapshot_seq: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// Read access to the applied metadata.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        self.shared.applied.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Applied> {
        self.shared.applied.write().unwrap_or_else(|p| p.into_inner())
    }

    fn store_snapshot(
        &self,
        meta: SnapshotMeta<NodeId, NodeInfo>,
        body: Vec<u8>,
    ) -> Result<(), StorageError<NodeId>> {
        wal::write_atomically(&self.shared.path, std::slice::from_ref(&body)).map_err(sm_err)?;
        *self.shared.current.write().unwrap_or_else(|p| p.into_inner()) = Some((meta, body));
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (meta, body) = {
            let applied = self.read();
            let seq = self.shared.snapshot_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let snapshot_id = match applied.last_applied {
                Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, seq),
                None => format!("0-0-{seq}"),
            };
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
                snapshot_id,
            };
            let body = serde_json::to_vec(&SnapshotBody { meta: meta.clone(), state: applied.state.clone() })
                .map_err(sm_err)?;
            (meta, body)
        };
        self.store_snapshot(meta.clone(), body.clone())?;
        tracing::debug!(snapshot = %meta.snapshot_id, bytes = body.len(), "built a metadata snapshot");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(body)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>), StorageError<NodeId>> {
        let applied = self.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self.write();
        let mut out = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => Ok(CommandOutput::Done),
                EntryPayload::Normal(req) => applied.state.apply(&req.request_id, &req.command),
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    Ok(CommandOutput::Done)
                }
            };
            out.push(MetaResponse { result });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let body: SnapshotBody = serde_json::from_slice(&bytes)
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(Some(meta.signature()), &e)))?;
        {
            let mut applied = self.write();
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            applied.state = body.state;
        }
        self.store_snapshot(meta.clone(), bytes)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self.shared.current.read().unwrap_or_else(|p| p.into_inner());
        Ok(current.as_ref().map(|(meta, body)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(body.clone())),
        }))
    }
}
