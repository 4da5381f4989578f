//! Where a shard is served: the one decision "here or there", and taking a shard over (a new epoch,
//! then the shard opened on its committed manifest with its index restored from bundles).

use std::collections::HashMap;
use std::sync::Arc;

use arca_raft::RaftNodeError;
use arca_search::ShardIndex;
use arca_shard::DataKey;
use arca_shard::index_files::IndexFilesError;
use arca_shard::manifest::Manifest;
use arca_shard::objects::ObjectError;
use arca_shard::pack::PackConfig;
use arca_shard::shard::{Shard, ShardParams};
use arca_types::values::ShardState;
use arca_types::{Command, CommandOutput, MetaError, ShardId};

use super::catalog::{RaftCatalog, SearchSink, discard_staged};
use super::keys::wrapped;
use super::{ArchiveError, ArchiveService, Served};

impl ArchiveService {
    /// The one place that decides where shard `id` is served: here when this node serves it and holds
    /// its lease; on its owner when that is another live member with a live lease (reads and
    /// administration never move a shard, so no node answers from a stale copy: invariant 5); here,
    /// taking it over, only when the shard has no live owner (never assigned, its node left the cluster
    /// or stopped renewing its lease, or this node restarted or lost its own lease).
    pub(crate) async fn place(&self, tenant: &str, id: ShardId) -> Result<Placement, ArchiveError> {
        crate::tenant_scope::shard_of_tenant(&self.meta, tenant, id).await?;
        let here = self.served.get(id);
        if let Some(s) = here {
            // The locally applied state suffices here (no quorum round per request): a node that took
            // the shard over has fenced this copy's writes already, and it is dropped as soon as this
            // node learns of it, so that reads stop answering from it.
            let me = self.meta.id();
            let owner = self.meta.with_state(|st| {
                st.tenant(tenant).ok().and_then(|t| t.shards.get(&id)).and_then(|sh| sh.owner_node)
            });
            // A node whose lease lapsed (paused, cut off) may have lost the shard without having
            // learnt it yet: it answers nothing from this copy until it renewed and re-read the catalogue.
            if owner == Some(me) && self.meta.leases().holding() {
                return Ok(Placement::Here(s));
            }
            if owner == Some(me) {
                tracing::warn!(shard = id, "this node's lease lapsed: dropping its copy of the store");
            } else {
                tracing::info!(shard = id, owner = ?owner, "another node serves this store now: dropping this copy");
            }
            self.served.remove(id);
        }
        if let Some(node) = self.live_owner(tenant, id).await? {
            return Ok(Placement::There(node));
        }
        match self.take_over(tenant, id).await {
            Ok(s) => Ok(Placement::Here(s)),
            // Another node took it over first (compare-and-set): it serves the shard now.
            Err(e @ ArchiveError::Meta(RaftNodeError::Meta(MetaError::ClaimLost { .. }))) => {
                match self.live_owner(tenant, id).await? {
                    Some(node) => Ok(Placement::There(node)),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// [`Self::place`] for a request another node forwarded here: served here, or refused naming the
    /// node that serves the shard (a forwarded request is never forwarded again).
    pub(super) async fn place_here(&self, tenant: &str, id: ShardId) -> Result<Served, ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(s) => Ok(s),
            Placement::There(node) => Err(ArchiveError::ServedElsewhere { shard: id, node }),
        }
    }

    /// Takes shard `id` over on this node: a new epoch (`AssignShard`), then the shard opened on its
    /// committed manifest. A takeover that fails is remembered: requests within its back-off answer
    /// its error at once, and the retry reuses the epoch it was given while this node is still the
    /// owner at that epoch (no writer ever ran under it), so failing requests never raise the epoch.
    ///
    /// The takeover is a compare-and-set (`ClaimShard`): it names the epoch it read and, when the owner
    /// is another member, the renewal counter by which its lease was judged lapsed; it loses when either
    /// changed. Only a node holding its own lease takes a shard over.
    async fn take_over(&self, tenant: &str, id: ShardId) -> Result<Served, ArchiveError> {
        let leases = self.meta.leases();
        if !leases.wait_holding(leases.lease()).await {
            return Err(RaftNodeError::NoLease { lease_ms: leases.lease().as_millis() as u64 }.into());
        }
        // One opening at a time per shard; requests for other shards never wait for it.
        let opening = self.served.opening_lock(id);
        let _one_opening = opening.lock().await;
        if let Some(s) = self.served.get(id) {
            return Ok(s);
        }
        let failed = self.failed_takeovers.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
        if let Some(f) = &failed
            && f.at.elapsed() < f.wait
        {
            return Err(ArchiveError::TakeoverFailed {
                shard: id,
                retry_in_ms: (f.wait - f.at.elapsed()).as_millis() as u64,
                reason: f.reason.clone(),
            });
        }
        self.meta.linearizable().await?;
        let me = self.meta.id();
        let current = self.meta.with_state(|s| {
            s.tenant(tenant).and_then(|t| {
                t.shards
                    .get(&id)
                    .map(|sh| (sh.owner_node, sh.epoch))
                    .ok_or_else(|| MetaError::not_found("store", id.to_string()))
            })
        })?;
        let owner_renewals = match current.0 {
            Some(owner) if owner != me && self.members().contains(&owner) => {
                match self.meta.lease_dead(owner) {
                    Some(counter) => Some(counter),
                    None => return Err(ArchiveError::ServedElsewhere { shard: id, node: owner }),
                }
            }
            _ => None,
        };
        let claim = Command::ClaimShard {
            tenant: tenant.into(),
            id,
            node: me,
            expected_epoch: current.1,
            owner_renewals,
        };
        let epoch = match &failed {
            Some(f) if current == (Some(me), f.epoch) => f.epoch,
            _ => match self.meta.write(claim).await? {
                CommandOutput::Epoch(e) => e,
                other => {
                    return Err(ArchiveError::Keys(format!(
                        "unexpected answer assigning a store: {other:?}"
                    )));
                }
            },
        };
        match self.open_served(tenant, id, epoch).await {
            Ok(s) => {
                self.failed_takeovers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                self.served.insert(id, s.clone());
                Ok(s)
            }
            Err(e) => {
                let wait =
                    failed.map(|f| f.wait * 2).unwrap_or(TAKEOVER_BACKOFF_FIRST).min(TAKEOVER_BACKOFF_MAX);
                tracing::error!(shard = id, epoch, retry_in = ?wait, "taking the store over failed: {e}");
                let f = FailedTakeover { epoch, at: std::time::Instant::now(), wait, reason: e.to_string() };
                self.failed_takeovers.lock().unwrap_or_else(|p| p.into_inner()).insert(id, f);
                Err(e)
            }
        }
    }

    /// Opens shard `id` for serving under `epoch`: its data key, committed manifest (read after the
    /// epoch was assigned, so no earlier writer can publish past it), index and staging log.
    pub(crate) async fn open_served(
        &self,
        tenant: &str,
        id: ShardId,
        epoch: u64,
    ) -> Result<Served, ArchiveError> {
        self.meta.linearizable().await?;
        let record = self.meta.with_state(|s| {
            s.tenant(tenant).and_then(|t| {
                t.shards.get(&id).cloned().ok_or_else(|| MetaError::not_found("store", id.to_string()))
            })
        })?;
        let tenant_key = self.tenant_key(tenant).await?;
        let json = record
            .wrapped_key
            .as_deref()
            .ok_or_else(|| ArchiveError::Keys(format!("store {id} has no data key")))?;
        let key =
            tenant_key.unwrap_data_key(&wrapped(json)?).map_err(|e| ArchiveError::Keys(e.to_string()))?;
        let local = self.data_dir.join("shards").join(id.to_string());
        if record.state != ShardState::Current {
            discard_staged(&local.join("staging.log"), id)?;
        }
        let index_dir = local.join("index");
        std::fs::create_dir_all(&index_dir)
            .map_err(|e| ArchiveError::Search(format!("{}: {e}", index_dir.display())))?;
        // A shard move's prepare read this manifest a moment ago when it is still the committed one.
        let manifest = match self.prepared.take(id, record.manifest.as_deref()) {
            Some(manifest) => manifest,
            None => {
                arca_shard::shard::load_manifest(&self.objects, id, &key, record.manifest.clone()).await?
            }
        };
        let complete = match self.restore_index(&manifest, &key, &index_dir).await? {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(shard = id, "{why}: the store's index must be rebuilt");
                std::fs::remove_dir_all(&index_dir).ok();
                std::fs::create_dir_all(&index_dir)
                    .map_err(|e| ArchiveError::Search(format!("{}: {e}", index_dir.display())))?;
                false
            }
        };
        let index =
            ShardIndex::open_or_create_in_dir(&index_dir).map_err(|e| ArchiveError::Search(e.to_string()))?;
        let index = Arc::new(index);
        let shard = Shard::open(ShardParams {
            tenant: tenant.into(),
            id,
            epoch,
            key,
            objects: self.objects.clone(),
            catalog: Arc::new(RaftCatalog { meta: self.meta.clone(), tenant: tenant.into() }),
            index: Box::new(SearchSink { index: index.clone(), dir: index_dir.clone() }),
            manifest,
            local_dir: local,
            flush_bytes: arca_shard::shard::DEFAULT_FLUSH_BYTES,
            flush_delay: arca_shard::shard::DEFAULT_FLUSH_DELAY,
            pack: PackConfig::default(),
        })
        .await?;
        Ok(Served { shard, index, complete: Arc::new(std::sync::atomic::AtomicBool::new(complete)) })
    }

    /// Makes the local index directory hold exactly the index the committed manifest names: its
    /// `meta.json` and every segment file (restored from their bundles when missing or of another
    /// size). The inner `Err` says why the index cannot be restored and must be rebuilt from the packs.
    pub(crate) async fn restore_index(
        &self,
        manifest: &Manifest,
        key: &DataKey,
        dir: &std::path::Path,
    ) -> Result<Result<(), String>, ArchiveError> {
        let Some(meta) = &manifest.index_meta else { return Ok(Ok(())) };
        match arca_shard::index_files::restore(&self.objects, key, &manifest.index_files, dir).await {
            Ok(()) => {}
            Err(IndexFilesError::Object(ObjectError::Missing { key })) => {
                return Ok(Err(format!("index bundle {key} is missing")));
            }
            Err(e @ (IndexFilesError::Damaged { .. } | IndexFilesError::Short { .. })) => {
                return Ok(Err(e.to_string()));
            }
            Err(IndexFilesError::Object(e)) => return Err(e.into()),
            Err(e @ IndexFilesError::Io { .. }) => return Err(ArchiveError::Search(e.to_string())),
        }
        let meta_path = dir.join("meta.json");
        if std::fs::read_to_string(&meta_path).ok().as_deref() != Some(meta.as_str()) {
            std::fs::write(&meta_path, meta)
                .map_err(|e| ArchiveError::Search(format!("{}: {e}", meta_path.display())))?;
        }
        Ok(Ok(()))
    }

    /// The node serving shard `id` when it is another live member of the cluster; `None` when the shard
    /// has no live owner (unassigned, its node left the cluster or its lease lapsed by this node's
    /// observations) or this node is its owner.
    async fn live_owner(
        &self,
        tenant: &str,
        id: ShardId,
    ) -> Result<Option<arca_types::NodeId>, ArchiveError> {
        self.meta.linearizable().await?;
        let owner = self.meta.with_state(|s| {
            s.tenant(tenant).ok().and_then(|t| t.shards.get(&id)).and_then(|sh| sh.owner_node)
        });
        let me = self.meta.id();
        let members = self.members();
        Ok(owner.filter(|o| *o != me && members.contains(o) && self.meta.lease_dead(*o).is_none()))
    }

    /// The members of the metadata cluster (voters and learners) as this node knows them.
    pub(crate) fn members(&self) -> Vec<arca_types::NodeId> {
        crate::shard_move::members(&self.meta)
    }

    /// Runs `ask` (a read of shard `id`), and once more when it failed because the shard moved to
    /// another node meanwhile (`arca shard move`, a failover); errors that are the caller's own
    /// (`callers_error`) are answered at once.
    pub(super) async fn once_more_if_moved<T, Fut>(
        &self,
        tenant: &str,
        id: ShardId,
        callers_error: impl Fn(&ArchiveError) -> bool,
        ask: impl Fn() -> Fut,
    ) -> Result<T, ArchiveError>
    where
        Fut: std::future::Future<Output = Result<T, ArchiveError>>,
    {
        let owner_before = crate::shard_move::owner_of(&self.meta, tenant, id);
        match ask().await {
            Err(e) if !callers_error(&e) => {
                if crate::shard_move::owner_changed(&self.meta, tenant, id, owner_before).await {
                    ask().await
                } else {
                    Err(e)
                }
            }
            answer => answer,
        }
    }
}

/// Where [`ArchiveService::place`] decided a shard is served.
pub(crate) enum Placement {
    /// This node serves it.
    Here(Served),
    /// Another live member serves it: forward there.
    There(arca_types::NodeId),
}

/// A takeover that failed, remembered so that requests back off and the retry reuses its epoch.
#[derive(Clone)]
pub(crate) struct FailedTakeover {
    epoch: u64,
    at: std::time::Instant,
    wait: std::time::Duration,
    reason: String,
}

/// The first back-off after a failed takeover; it doubles with each failure up to [`TAKEOVER_BACKOFF_MAX`].
const TAKEOVER_BACKOFF_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest back-off between takeover attempts of one shard.
const TAKEOVER_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// The shards this node serves, and one opening lock per shard, so that opening a shard (object
/// storage, Raft) never holds up requests for the others.
#[derive(Default)]
pub(crate) struct Registry {
    served: std::sync::Mutex<HashMap<ShardId, Served>>,
    opening: std::sync::Mutex<HashMap<ShardId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Registry {
    /// The shard `id` when this node serves it.
    pub(crate) fn get(&self, id: ShardId) -> Option<Served> {
        self.served.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Serves `served` as shard `id` here (under its opening lock).
    pub(crate) fn insert(&self, id: ShardId, served: Served) {
        self.served.lock().unwrap_or_else(|p| p.into_inner()).insert(id, served);
    }

    /// Stops serving shard `id` here (the next request re-resolves where it is served).
    pub(crate) fn remove(&self, id: ShardId) -> Option<Served> {
        self.served.lock().unwrap_or_else(|p| p.into_inner()).remove(&id)
    }

    /// The ids of the shards served here.
    pub(crate) fn ids(&self) -> Vec<ShardId> {
        self.served.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect()
    }

    /// The lock held while shard `id` is being opened here: one opening at a time per shard.
    pub(crate) fn opening_lock(&self, id: ShardId) -> Arc<tokio::sync::Mutex<()>> {
        self.opening.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().clone()
    }
}
