//! Moving a shard between nodes (`arca shard move`, CLU-02/CLU-05): a lease handover in which nothing
//! is copied through the old node.
//!
//! 1. **Prepare** on the target: the shard's index is restored from its bundles in object storage into
//!    the target's local directory while the old owner keeps serving (and writing).
//! 2. **Take over** on the target, holding its registry of served shards: ownership changes through
//!    Raft with a compare-and-set on the epoch (`MoveShard`), whose new epoch fences the old writer
//!    (invariant 2); then the shard opens on its committed manifest (only bundles committed since the
//!    prepare are fetched). Requests reaching the target meanwhile wait for the open.
//! 3. **Release** on the old owner: it drops its copy (it also does so by itself as soon as it applies
//!    the change, see [`spawn_release_watcher`]). A request that reached the old owner after the change
//!    is asked once more where the shard is served now (`ArchiveService::search_shard`, `fetch`,
//!    `archive_filed`), so searches are answered throughout.
//!
//! Requests between nodes travel as [`MoveRequest`] under the service [`SHARD_MOVE_SERVICE`], answers
//! as `Result<_, ShardMoveError>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_raft::{MetaNode, RaftNodeError};
use arca_shard::manifest::Manifest;
use arca_types::values::ShardState;
use arca_types::{Command, CommandOutput, MetaError, NodeId, ShardId};
use serde::{Deserialize, Serialize};

use crate::archive::{ArchiveError, ArchiveService};

/// The service name of shard-move requests between nodes.
pub const SHARD_MOVE_SERVICE: &str = "archive.move";

/// How long the target may take to restore a shard's index (one GET per bundle).
const PREPARE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long the target may take to switch ownership and open the shard.
const TAKE_OVER_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the old owner may take to drop its copy.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a shard could not be moved.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum ShardMoveError {
    /// No tenant has a store with this id.
    #[error("store {0} does not exist")]
    UnknownStore(ShardId),
    /// The target is not a node of the catalogue.
    #[error("node {0} is not a node of this cluster (arca cluster status lists them)")]
    UnknownNode(NodeId),
    /// The target is known but not a member of the Raft cluster now.
    #[error("node {0} is not a live member of the cluster")]
    NotMember(NodeId),
    /// The target is draining.
    #[error("node {0} is draining: no store is moved onto it (arca node undrain {0} first)")]
    Draining(NodeId),
    /// A disabled store is not served, so it is not moved.
    #[error("store {id} ('{name}') is disabled: a disabled store is not served, so it is not moved")]
    Disabled { id: ShardId, name: String },
    /// The target serves the store already.
    #[error("store {id} is served by node {node} already")]
    AlreadyThere { id: ShardId, node: NodeId },
    /// No node can take the store (every other node is draining or not a member).
    #[error("no node can take store {0}: every other node is draining or not a member")]
    NoTarget(ShardId),
    /// The target did not answer, or answered something unreadable.
    #[error("node {node} could not be asked to {step} store {id}: {reason}")]
    Unreachable { node: NodeId, id: ShardId, step: String, reason: String },
    /// The target could not restore the index or open the store.
    #[error("node {node} could not {step} store {id}: {reason}")]
    Failed { node: NodeId, id: ShardId, step: String, reason: String },
    /// Raft refused or could not commit the ownership change (e.g. the epoch changed meanwhile).
    #[error("the ownership of store {id} did not change: {reason}")]
    NotMoved { id: ShardId, reason: String },
}

/// A request of the shard-move protocol, sent to one node.
#[derive(Debug, Serialize, Deserialize)]
pub enum MoveRequest {
    /// Restore the shard's index from its bundles into this node's local directory.
    Prepare { tenant: String, shard: ShardId },
    /// Move the shard here if its epoch is still `epoch`, then open it.
    TakeOver { tenant: String, shard: ShardId, epoch: u64 },
    /// Drop this node's copy of the shard if another node owns it now.
    Release { tenant: String, shard: ShardId },
}

/// What the target's prepare did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepared {
    /// Index files the manifest names.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// False when bundles are missing: the shard opens with an empty index, to be rebuilt.
    pub index_complete: bool,
}

/// What the target's takeover did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TakenOver {
    /// The shard's new epoch.
    pub epoch: u64,
}

/// One completed move.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moved {
    pub id: ShardId,
    pub tenant: String,
    pub name: String,
    pub from: Option<NodeId>,
    pub to: NodeId,
    pub epoch: u64,
    pub index_files: usize,
    pub index_bytes: u64,
    /// Restoring the index on the target while the old owner served.
    pub prepare_ms: u64,
    /// Ownership change and open on the target (requests to the shard wait this long at most).
    pub switch_ms: u64,
    pub total_ms: u64,
}

/// Manifests read by a move's prepare, by shard, with the committed head they were read at: the
/// takeover that follows opens the shard on one of them instead of reading it again while requests wait
/// (when no commit came in between). At most [`PREPARED_KEPT`] are kept.
#[derive(Debug, Default)]
pub struct PreparedManifests(std::sync::Mutex<std::collections::HashMap<ShardId, (String, Manifest)>>);

/// How many prepared manifests a node keeps (a move uses its own at once).
const PREPARED_KEPT: usize = 4;

impl PreparedManifests {
    fn put(&self, id: ShardId, head: String, manifest: Manifest) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PREPARED_KEPT && !map.contains_key(&id) {
            map.clear();
        }
        map.insert(id, (head, manifest));
    }

    /// The prepared manifest of shard `id` when it was read at `head` (taken out either way).
    pub(crate) fn take(&self, id: ShardId, head: Option<&str>) -> Option<Manifest> {
        let (at, manifest) = self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id)?;
        (Some(at.as_str()) == head).then_some(manifest)
    }
}

/// A shard as placement sees it.
#[derive(Debug, Clone)]
pub(crate) struct ShardRecord {
    pub tenant: String,
    pub shard: arca_types::records::Shard,
}

/// The owner of shard `id` of `tenant` as this node has applied the catalogue.
pub(crate) fn owner_of(meta: &MetaNode, tenant: &str, id: ShardId) -> Option<NodeId> {
    meta.with_state(|s| s.tenant(tenant).ok().and_then(|t| t.shards.get(&id)).and_then(|sh| sh.owner_node))
}

/// Whether shard `id`'s owner is another than `before` now (after a linearizable read): a request that
/// failed meanwhile is then asked once more where the shard is served now.
pub(crate) async fn owner_changed(
    meta: &MetaNode,
    tenant: &str,
    id: ShardId,
    before: Option<NodeId>,
) -> bool {
    meta.linearizable().await.is_ok() && owner_of(meta, tenant, id) != before
}

/// The members of the Raft cluster now (voters and learners).
pub(crate) fn members(meta: &MetaNode) -> Vec<NodeId> {
    meta.raft().metrics().borrow().membership_config.membership().nodes().map(|(id, _)| *id).collect()
}

/// The nodes that may take shards: members of the cluster, known to the catalogue, not draining.
pub(crate) fn eligible_nodes(meta: &MetaNode) -> Vec<NodeId> {
    let members = members(meta);
    meta.with_state(|s| {
        members.iter().copied().filter(|n| s.nodes.contains_key(n) && !s.draining.contains(n)).collect()
    })
}

/// Every shard of every tenant, by id.
pub(crate) fn all_shards(meta: &MetaNode) -> Vec<ShardRecord> {
    meta.with_state(|s| {
        s.tenants
            .values()
            .flat_map(|t| {
                t.shards.values().map(|sh| ShardRecord { tenant: t.name.clone(), shard: sh.clone() })
            })
            .collect()
    })
}

fn find_shard(meta: &MetaNode, id: ShardId) -> Result<ShardRecord, ShardMoveError> {
    all_shards(meta).into_iter().find(|r| r.shard.id == id).ok_or(ShardMoveError::UnknownStore(id))
}

/// Checks that `node` may take shard `record` now.
fn check_target(meta: &MetaNode, record: &ShardRecord, node: NodeId) -> Result<(), ShardMoveError> {
    let sh = &record.shard;
    if sh.state == ShardState::Disabled {
        return Err(ShardMoveError::Disabled { id: sh.id, name: sh.name.clone() });
    }
    let (known, draining) = meta.with_state(|s| (s.nodes.contains_key(&node), s.draining.contains(&node)));
    if !known {
        return Err(ShardMoveError::UnknownNode(node));
    }
    if !members(meta).contains(&node) {
        return Err(ShardMoveError::NotMember(node));
    }
    if draining {
        return Err(ShardMoveError::Draining(node));
    }
    if sh.owner_node == Some(node) {
        return Err(ShardMoveError::AlreadyThere { id: sh.id, node });
    }
    Ok(())
}

/// The eligible node with the fewest shards, other than the shard's owner.
fn least_loaded(meta: &MetaNode, record: &ShardRecord) -> Result<NodeId, ShardMoveError> {
    let shards = all_shards(meta);
    eligible_nodes(meta)
        .into_iter()
        .filter(|n| Some(*n) != record.shard.owner_node)
        .min_by_key(|n| (shards.iter().filter(|r| r.shard.owner_node == Some(*n)).count(), *n))
        .ok_or(ShardMoveError::NoTarget(record.shard.id))
}

/// Sends `request` to `node` (handled here when it is this node) and decodes its answer.
async fn ask<R: serde::de::DeserializeOwned>(
    meta: &MetaNode,
    node: NodeId,
    id: ShardId,
    step: &str,
    request: &MoveRequest,
    timeout: Duration,
) -> Result<R, ShardMoveError> {
    let unreachable = |reason: String| ShardMoveError::Unreachable { node, id, step: step.into(), reason };
    let payload = serde_json::to_vec(request).map_err(|e| unreachable(e.to_string()))?;
    let answer = meta
        .call_node(node, SHARD_MOVE_SERVICE, payload, timeout)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let answer: Result<R, ShardMoveError> =
        serde_json::from_slice(&answer).map_err(|e| unreachable(format!("unreadable answer: {e}")))?;
    answer
}

/// Moves shard `id` to `target` (or, when `None`, to the eligible node with the fewest shards);
/// `progress` receives one line per step. Runs on any node.
pub async fn move_shard(
    service: &ArchiveService,
    id: ShardId,
    target: Option<NodeId>,
    progress: impl Fn(String),
) -> Result<Moved, ShardMoveError> {
    let meta = &service.meta;
    let started = Instant::now();
    meta.linearizable().await.map_err(|e| ShardMoveError::NotMoved { id, reason: e.to_string() })?;
    let record = find_shard(meta, id)?;
    let node = match target {
        Some(node) => node,
        None => least_loaded(meta, &record)?,
    };
    check_target(meta, &record, node)?;
    let tenant = record.tenant.clone();
    let from = record.shard.owner_node;
    progress(format!(
        "store {id} ('{}'): node {node} restores its index from object storage while {} serves it",
        record.shard.name,
        from.map_or("no node".to_string(), |n| format!("node {n}"))
    ));
    let prepared: Prepared = ask(
        meta,
        node,
        id,
        "prepare",
        &MoveRequest::Prepare { tenant: tenant.clone(), shard: id },
        PREPARE_TIMEOUT,
    )
    .await?;
    let prepare_ms = started.elapsed().as_millis() as u64;
    if !prepared.index_complete {
        progress(format!("store {id}: its index bundles are incomplete; it opens with an index to rebuild"));
    }
    progress(format!(
        "store {id}: {} index files ({} bytes) ready on node {node} in {prepare_ms} ms; switching ownership",
        prepared.files, prepared.bytes
    ));
    // The epoch read after the prepare: a takeover or move meanwhile refuses this move.
    meta.linearizable().await.map_err(|e| ShardMoveError::NotMoved { id, reason: e.to_string() })?;
    let record = find_shard(meta, id)?;
    check_target(meta, &record, node)?;
    let switch = Instant::now();
    let request = MoveRequest::TakeOver { tenant: tenant.clone(), shard: id, epoch: record.shard.epoch };
    let taken: TakenOver = ask(meta, node, id, "take over", &request, TAKE_OVER_TIMEOUT).await?;
    let switch_ms = switch.elapsed().as_millis() as u64;
    let from = record.shard.owner_node.or(from);
    if let Some(old) = record.shard.owner_node.filter(|o| *o != node && members(meta).contains(o)) {
        let release = MoveRequest::Release { tenant: tenant.clone(), shard: id };
        if let Err(e) = ask::<()>(meta, old, id, "release", &release, RELEASE_TIMEOUT).await {
            // Not a failure of the move: the old owner drops its copy when it applies the change.
            tracing::warn!(shard = id, node = old, "the old owner did not drop its copy at once: {e}");
        }
    }
    let total_ms = started.elapsed().as_millis() as u64;
    progress(format!(
        "store {id}: served by node {node} at epoch {} (switch {switch_ms} ms, total {total_ms} ms)",
        taken.epoch
    ));
    Ok(Moved {
        id,
        tenant,
        name: record.shard.name,
        from,
        to: node,
        epoch: taken.epoch,
        index_files: prepared.files,
        index_bytes: prepared.bytes,
        prepare_ms,
        switch_ms,
        total_ms,
    })
}

/// Serves a [`MoveRequest`] another node (or this one) sent.
pub async fn handle(service: &ArchiveService, payload: &[u8]) -> Result<Vec<u8>, String> {
    let request: MoveRequest = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let answer = match request {
        MoveRequest::Prepare { tenant, shard } => serde_json::to_vec(&prepare(service, &tenant, shard).await),
        MoveRequest::TakeOver { tenant, shard, epoch } => {
            serde_json::to_vec(&take_over(service, &tenant, shard, epoch).await)
        }
        MoveRequest::Release { tenant, shard } => {
            release(service, &tenant, shard).await;
            serde_json::to_vec(&Ok::<(), ShardMoveError>(()))
        }
    };
    answer.map_err(|e| e.to_string())
}

fn failed(service: &ArchiveService, id: ShardId, step: &str, e: impl std::fmt::Display) -> ShardMoveError {
    ShardMoveError::Failed { node: service.meta.id(), id, step: step.into(), reason: e.to_string() }
}

/// Restores shard `id`'s index named by its committed manifest into this node's local directory.
async fn prepare(service: &ArchiveService, tenant: &str, id: ShardId) -> Result<Prepared, ShardMoveError> {
    let step = "prepare";
    service.meta.linearizable().await.map_err(|e| failed(service, id, step, e))?;
    let record = service
        .meta
        .with_state(|s| s.tenant(tenant).ok().and_then(|t| t.shards.get(&id).cloned()))
        .ok_or(ShardMoveError::UnknownStore(id))?;
    let Some(head) = record.manifest.clone() else {
        return Ok(Prepared { files: 0, bytes: 0, index_complete: true });
    };
    let key = service
        .shard_data_key(tenant, id, record.wrapped_key.as_deref())
        .await
        .map_err(|e| failed(service, id, step, e))?;
    let manifest = arca_shard::shard::load_manifest(&service.objects, id, &key, Some(head.clone()))
        .await
        .map_err(|e| failed(service, id, step, e))?;
    let dir = service.data_dir.join("shards").join(id.to_string()).join("index");
    let restored =
        service.restore_index(&manifest, &key, &dir).await.map_err(|e| failed(service, id, step, e))?;
    if let Err(why) = &restored {
        tracing::warn!(shard = id, "preparing a move: {why}");
    }
    let prepared = Prepared {
        files: manifest.index_files.len(),
        bytes: manifest.index_files.iter().map(|f| f.size).sum(),
        index_complete: restored.is_ok(),
    };
    service.prepared.put(id, head, manifest);
    Ok(prepared)
}

/// Moves shard `id` here if its epoch is still `epoch` and opens it, holding the registry of served
/// shards so that requests for it wait for the open instead of taking it over again.
async fn take_over(
    service: &ArchiveService,
    tenant: &str,
    id: ShardId,
    epoch: u64,
) -> Result<TakenOver, ShardMoveError> {
    let step = "take over";
    let me = service.meta.id();
    let opening = service.served.opening_lock(id);
    let _one_opening = opening.lock().await;
    // A copy left from an earlier ownership of this node is stale.
    service.served.remove(id);
    let command = Command::MoveShard { tenant: tenant.into(), id, node: me, epoch };
    let new_epoch = match service.meta.write(command).await {
        Ok(CommandOutput::Epoch(e)) => e,
        Ok(other) => {
            return Err(ShardMoveError::NotMoved { id, reason: format!("unexpected answer {other:?}") });
        }
        Err(RaftNodeError::Meta(MetaError::NotFound { kind, .. })) if kind == "node" => {
            return Err(ShardMoveError::UnknownNode(me));
        }
        Err(e) => return Err(ShardMoveError::NotMoved { id, reason: e.to_string() }),
    };
    let switched = Instant::now();
    let opened = service
        .open_served(tenant, id, new_epoch)
        .await
        .map_err(|e: ArchiveError| failed(service, id, step, e))?;
    tracing::info!(
        shard = id,
        epoch = new_epoch,
        open_ms = switched.elapsed().as_millis() as u64,
        "store moved here"
    );
    service.failed_takeovers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    service.served.insert(id, opened);
    Ok(TakenOver { epoch: new_epoch })
}

/// Drops this node's copy of shard `id` when another node owns it now.
async fn release(service: &ArchiveService, tenant: &str, id: ShardId) {
    if service.meta.linearizable().await.is_err() {
        return;
    }
    if owner_of(&service.meta, tenant, id) != Some(service.meta.id()) && service.served.remove(id).is_some() {
        tracing::info!(shard = id, "another node serves this store now: dropped this copy");
    }
}

/// Drops every served copy of a shard another node owns as soon as this node applies the change (the
/// registry is checked after each applied log index).
pub fn spawn_release_watcher(service: &Arc<ArchiveService>) {
    let weak = Arc::downgrade(service);
    let mut metrics = service.meta.raft().metrics();
    tokio::spawn(async move {
        let mut last_applied = None;
        while metrics.changed().await.is_ok() {
            let applied = metrics.borrow().last_applied.map(|l| l.index);
            if applied == last_applied {
                continue;
            }
            let Some(service) = weak.upgrade() else { break };
            last_applied = applied;
            let me = service.meta.id();
            let served = service.served.ids();
            let owners: Vec<(ShardId, Option<NodeId>)> = service.meta.with_state(|s| {
                served
                    .iter()
                    .map(|id| {
                        let owner =
                            s.tenants.values().find_map(|t| t.shards.get(id)).and_then(|sh| sh.owner_node);
                        (*id, owner)
                    })
                    .collect()
            });
            for (id, owner) in owners {
                if owner != Some(me) && service.served.remove(id).is_some() {
                    tracing::info!(shard = id, owner = ?owner, "another node serves this store now: dropped this copy");
                }
            }
        }
    });
}
