//! The archive service of a node: the tenant's current shard (created when needed), the shards this node
//! serves, archiving parsed messages into them, fan-out search over them, and fetching messages.
//! Keys: the node's master key unwraps tenant keys held in Raft, which unwrap shard data keys.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;

use arca_ingest::{Limits, parse_message};
use arca_raft::{MetaNode, RaftNodeError};
use arca_search::{IndexEntry, MergedPage, ResolvedFilters, Scope, ShardIndex, ShardQuery};
use arca_shard::index_files::IndexFilesError;
use arca_shard::manifest::{Direction, Entry, Manifest};
use arca_shard::objects::{ObjectError, Objects};
use arca_shard::pack::PackConfig;
use arca_shard::shard::{Catalog, IndexSink, Outcome, Shard, ShardError, ShardParams};
use arca_shard::staging::Incoming;
use arca_shard::{DataKey, MasterKey, TenantKey, WrappedKey};
use arca_types::document::MessageDoc;
use arca_types::query::{CivilDate, SearchRequest};
use arca_types::values::ShardState;
use arca_types::{ArchiveId, Command, CommandOutput, MetaError, ShardId};

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Meta(#[from] RaftNodeError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
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

/// The service name under which nodes forward shard operations to the node serving the shard.
pub const ARCHIVE_SERVICE: &str = "archive.shard";

/// A shard operation forwarded to the node that serves the shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Remote {
    Archive { tenant: String, shard: ShardId, archive: ArchiveId, messages: Vec<(String, String, bool)> },
    Search { tenant: String, shard: ShardId, query: Box<ShardQuery> },
    Fetch { tenant: String, shard: ShardId, number: u64, readable: Vec<ArchiveId> },
    Verify { tenant: String, shard: ShardId, include_indexes: bool },
    Rebuild { tenant: String, shard: ShardId },
    IndexInfo { tenant: String, shard: ShardId },
    Entries { tenant: String, shard: ShardId, after: u64, limit: usize },
}

impl Remote {
    /// How long the serving node may take: verifying and rebuilding read every pack of the shard.
    fn timeout(&self) -> std::time::Duration {
        match self {
            Remote::Verify { .. } | Remote::Rebuild { .. } => std::time::Duration::from_secs(6 * 3600),
            _ => std::time::Duration::from_secs(300),
        }
    }
}

/// A store's answer to a forwarded search: a page, or the bound the search broke there.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum ShardAnswer {
    Page(Box<arca_search::ShardPage>),
    Refused(arca_types::query::QueryLimitError),
}

/// A message to archive: its folder (below the archive's top-level folder), bytes, and whether the
/// archive's owner sent it (part of its identity, and of the "other party" for sorting).
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
    index: Arc<ShardIndex>,
    /// False when the index files named by the manifest could not be restored: searches then list
    /// the shard as missing until `RebuildStoreIndex` has run (invariant 5).
    complete: Arc<std::sync::atomic::AtomicBool>,
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
    pub(crate) served: tokio::sync::Mutex<HashMap<ShardId, Served>>,
    /// Takeovers that failed, by shard (see [`ArchiveService::take_over`]).
    pub(crate) failed_takeovers: std::sync::Mutex<HashMap<ShardId, FailedTakeover>>,
    /// The identities of the tenants' other shards, for dedupe across stores (invariant 3).
    pub(crate) older: crate::older_shards::OlderShards,
    /// Manifests read by the prepare step of a shard move, used by its takeover when still current.
    pub(crate) prepared: crate::shard_move::PreparedManifests,
}

impl std::fmt::Debug for ArchiveService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchiveService({:?})", self.objects)
    }
}

/// Commits manifests through Raft.
struct RaftCatalog {
    meta: MetaNode,
    tenant: String,
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
struct SearchSink {
    index: Arc<ShardIndex>,
    /// The index directory; segment file names are relative to it.
    dir: PathBuf,
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
fn discard_staged(path: &std::path::Path, id: ShardId) -> Result<(), ArchiveError> {
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

fn wrapped(json: &str) -> Result<WrappedKey, ArchiveError> {
    serde_json::from_str(json)
        .map_err(|e| ArchiveError::Keys(format!("a wrapped key in the catalogue is unreadable: {e}")))
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
            served: tokio::sync::Mutex::new(HashMap::new()),
            failed_takeovers: std::sync::Mutex::new(HashMap::new()),
            prepared: Default::default(),
            older: crate::older_shards::OlderShards::new(
                arca_types::config::StorageConfig::default().identity_cache_entries,
            ),
        }
    }

    /// Bounds the read-only manifests kept for confirming identities of other shards
    /// (`storage.identity_cache_entries`).
    pub fn with_identity_cache_entries(mut self, entries: usize) -> ArchiveService {
        self.older = crate::older_shards::OlderShards::new(entries);
        self
    }

    /// The data key of shard `id` of `tenant`, unwrapped from its catalogue record.
    pub(crate) async fn shard_data_key(
        &self,
        tenant: &str,
        id: ShardId,
        wrapped_key: Option<&str>,
    ) -> Result<DataKey, ArchiveError> {
        let json = wrapped_key.ok_or_else(|| ArchiveError::Keys(format!("store {id} has no data key")))?;
        let tenant_key = self.tenant_key(tenant).await?;
        tenant_key.unwrap_data_key(&wrapped(json)?).map_err(|e| ArchiveError::Keys(e.to_string()))
    }

    /// The master key as hex, for handing to a joining node over the cluster channel. Never log it.
    pub fn master_key_hex(&self) -> String {
        hex::encode(self.master.expose_secret())
    }

    /// Where objects live, for statistics and messages.
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// The tenant key, created (and published through Raft) when the tenant has none.
    async fn tenant_key(&self, tenant: &str) -> Result<TenantKey, ArchiveError> {
        self.meta.linearizable().await?;
        let existing = self.meta.with_state(|s| s.tenant(tenant).map(|t| t.wrapped_key.clone()))?;
        let json = match existing {
            Some(json) => json,
            None => {
                let key = TenantKey::generate();
                let w = self.master.wrap_tenant_key(&key).map_err(|e| ArchiveError::Keys(e.to_string()))?;
                let text = serde_json::to_string(&w).map_err(|e| ArchiveError::Keys(e.to_string()))?;
                match self
                    .meta
                    .write(Command::SetTenantKey { tenant: tenant.into(), wrapped_key: text })
                    .await
                {
                    Ok(_) | Err(RaftNodeError::Meta(MetaError::AlreadyExists { .. })) => {}
                    Err(e) => return Err(e.into()),
                }
                self.meta.linearizable().await?;
                self.meta
                    .with_state(|s| s.tenant(tenant).map(|t| t.wrapped_key.clone()))?
                    .ok_or_else(|| ArchiveError::Keys("the tenant key was not recorded".into()))?
            }
        };
        self.master.unwrap_tenant_key(&wrapped(&json)?).map_err(|e| ArchiveError::Keys(e.to_string()))
    }

    /// The tenant's current shard, created (named `YYYY-MM`, suffixed when taken) when there is none.
    /// Concurrent first imports race to create it: whoever loses reads the winner's shard.
    async fn current_shard(&self, tenant: &str) -> Result<ShardId, ArchiveError> {
        // Hot path (every batch): the locally applied state. A current store changed elsewhere a moment
        // ago is at worst a store that just stopped being current: it refuses the batch, and `archive`
        // sends it once more to the store the catalogue then names current.
        if let Some(id) = self.meta.with_state(|s| s.current_shard(tenant).map(|sh| sh.id)) {
            return Ok(id);
        }
        let _one_at_a_time = self.creating.lock().await;
        for _ in 0..5 {
            self.meta.linearizable().await?;
            if let Some(id) = self.meta.with_state(|s| s.current_shard(tenant).map(|sh| sh.id)) {
                return Ok(id);
            }
            let month =
                CivilDate::from_unix_seconds(arca_shard::shard::now_unix(), 0).to_string()[..7].to_string();
            let taken: Vec<String> = self.meta.with_state(|s| {
                s.tenant(tenant).map(|t| t.shards.values().map(|sh| sh.name.to_lowercase()).collect())
            })?;
            let mut name = month.clone();
            let mut n = 2;
            while taken.contains(&name.to_lowercase()) {
                name = format!("{month}-{n}");
                n += 1;
            }
            match self.create_store(tenant, &name, ShardState::Current).await {
                Ok(id) => return Ok(id),
                // Another node created one meanwhile: use it (next round reads it).
                Err(ArchiveError::Meta(RaftNodeError::Meta(MetaError::AlreadyExists { .. }))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ArchiveError::Keys(format!("tenant '{tenant}': could not settle on a current store")))
    }

    /// The one place that decides where shard `id` is served: here when this node serves it; on its
    /// owner when that is another live member (reads and administration never move a shard, so no node
    /// answers from a stale copy: invariant 5); here, taking it over, only when the shard has no live
    /// owner (never assigned, its node left the cluster, or this node restarted).
    async fn place(&self, tenant: &str, id: ShardId) -> Result<Placement, ArchiveError> {
        let here = self.served.lock().await.get(&id).cloned();
        if let Some(s) = here {
            // The locally applied state suffices here (no quorum round per request): a node that took
            // the shard over has fenced this copy's writes already, and it is dropped as soon as this
            // node learns of it, so that reads stop answering from it.
            let me = self.meta.id();
            let owner = self.meta.with_state(|st| {
                st.tenant(tenant).ok().and_then(|t| t.shards.get(&id)).and_then(|sh| sh.owner_node)
            });
            if owner == Some(me) {
                return Ok(Placement::Here(s));
            }
            tracing::info!(shard = id, owner = ?owner, "another node serves this store now: dropping this copy");
            self.served.lock().await.remove(&id);
        }
        if let Some(node) = self.live_owner(tenant, id).await? {
            return Ok(Placement::There(node));
        }
        Ok(Placement::Here(self.take_over(tenant, id).await?))
    }

    /// [`Self::place`] for a request another node forwarded here: served here, or refused naming the
    /// node that serves the shard (a forwarded request is never forwarded again).
    async fn place_here(&self, tenant: &str, id: ShardId) -> Result<Served, ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(s) => Ok(s),
            Placement::There(node) => Err(ArchiveError::ServedElsewhere { shard: id, node }),
        }
    }

    /// Takes shard `id` over on this node: a new epoch (`AssignShard`), then the shard opened on its
    /// committed manifest. A takeover that fails is remembered: requests within its back-off answer
    /// its error at once, and the retry reuses the epoch it was given while this node is still the
    /// owner at that epoch (no writer ever ran under it), so failing requests never raise the epoch.
    async fn take_over(&self, tenant: &str, id: ShardId) -> Result<Served, ArchiveError> {
        let mut served = self.served.lock().await;
        if let Some(s) = served.get(&id) {
            return Ok(s.clone());
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
        let epoch = match &failed {
            Some(f) if current == (Some(me), f.epoch) => f.epoch,
            _ => match self.meta.write(Command::AssignShard { tenant: tenant.into(), id, node: me }).await? {
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
                served.insert(id, s.clone());
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
    /// has no live owner (unassigned, its node left the cluster) or this node is its owner.
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
        let members: Vec<arca_types::NodeId> = self
            .meta
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect();
        Ok(owner.filter(|o| *o != me && members.contains(o)))
    }

    /// Sends `request` to `node` and answers its decoded answer.
    async fn forward<R: serde::de::DeserializeOwned>(
        &self,
        node: arca_types::NodeId,
        request: &Remote,
    ) -> Result<R, ArchiveError> {
        let payload = serde_json::to_value(request).map_err(|e| ArchiveError::Search(e.to_string()))?;
        let answer = self.meta.call_node(node, ARCHIVE_SERVICE, payload, request.timeout()).await?;
        serde_json::from_value(answer).map_err(|e| ArchiveError::Forward { node, reason: e.to_string() })
    }

    /// Parses and archives raw messages into archive `archive` of `tenant`, each in its folder (path
    /// below the archive's top-level folder); answers once every message is durable or refused. A
    /// message whose folder the folder rule or the tree refuses is refused with the rule's name
    /// (nothing of it is stored); the others proceed, filed under their folder's key.
    pub async fn archive(
        &self,
        tenant: &str,
        archive: ArchiveId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Archived>, ArchiveError> {
        self.refuse_while_disabled(tenant)?;
        let keys = self.register_folders(tenant, archive, &messages).await?;
        let mut results: Vec<Option<Archived>> = vec![None; messages.len()];
        let (mut slots, mut filed) = (Vec::new(), Vec::new());
        for (i, (message, key)) in messages.into_iter().zip(keys).enumerate() {
            match key {
                Ok(key) => {
                    slots.push(i);
                    filed.push(NewMessage { folder: key, ..message });
                }
                Err(refused) => results[i] = Some(Archived::Refused { reason: folder_refusal(&refused) }),
            }
        }
        if !filed.is_empty() {
            let outcomes = self.archive_filed(tenant, archive, filed).await?;
            for (slot, outcome) in slots.into_iter().zip(outcomes) {
                results[slot] = Some(outcome);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Archived::Refused { reason: "not processed".into() }))
            .collect())
    }

    /// Archives messages whose `folder` already holds their folder's key (see [`Self::archive`]) into
    /// the tenant's current shard.
    async fn archive_filed(
        &self,
        tenant: &str,
        archive: ArchiveId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Archived>, ArchiveError> {
        let id = self.current_shard(tenant).await?;
        let owner_before = crate::shard_move::owner_of(&self.meta, tenant, id);
        match self.archive_in(tenant, id, archive, messages.clone()).await {
            Ok(done) => Ok(done),
            Err(e) => {
                // The store may have stopped being current meanwhile (its writer, or Raft, refused the
                // batch): send it once to the store the catalogue now names current. Dedupe makes
                // the retry safe.
                self.meta.linearizable().await?;
                match self.current_shard(tenant).await? {
                    now if now != id => self.archive_in(tenant, now, archive, messages).await,
                    // The store moved to another node meanwhile (`arca shard move`): send it there once.
                    _ if crate::shard_move::owner_of(&self.meta, tenant, id) != owner_before => {
                        self.archive_in(tenant, id, archive, messages).await
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// Refuses imports while the tenant has a disabled store (STO-03).
    fn refuse_while_disabled(&self, tenant: &str) -> Result<(), ArchiveError> {
        let disabled = self.meta.with_state(|s| {
            s.tenant(tenant).ok().and_then(|t| {
                t.shards
                    .values()
                    .find(|sh| sh.state == ShardState::Disabled)
                    .map(|sh| (sh.id, sh.name.clone()))
            })
        });
        match disabled {
            Some((id, name)) => Err(ArchiveError::StoreDisabled { id, name }),
            None => Ok(()),
        }
    }

    /// Archives `messages` into shard `id`, here or on the node serving it.
    async fn archive_in(
        &self,
        tenant: &str,
        id: ShardId,
        archive: ArchiveId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Archived>, ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(served) => self.archive_served(served, tenant, id, archive, messages).await,
            Placement::There(node) => self.archive_forwarded(node, tenant, id, archive, messages).await,
        }
    }

    /// Archives `messages` through `node`, which serves shard `id`. A message over the size limit is
    /// refused here, naming the limit (the serving node would refuse it too); the rest go in requests
    /// of at most [`max_forward_bytes`] encoded, so that forwarding carries anything the API accepts.
    async fn archive_forwarded(
        &self,
        node: arca_types::NodeId,
        tenant: &str,
        id: ShardId,
        archive: ArchiveId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Archived>, ArchiveError> {
        let cap = max_forward_bytes(&self.limits);
        let mut results: Vec<Option<Archived>> = vec![None; messages.len()];
        let mut chunk: Vec<(usize, (String, String, bool))> = Vec::new();
        let mut chunk_bytes = 0usize;
        let total = messages.len();
        for (i, m) in messages.into_iter().enumerate() {
            if m.raw.len() as u64 > self.limits.max_message_bytes {
                let refused = arca_ingest::Refused::message_bytes(
                    m.raw.len() as u64,
                    false,
                    self.limits.max_message_bytes,
                );
                results[i] = Some(Archived::Refused { reason: refused.reason });
            } else {
                let encoded = (m.folder, BASE64.encode(&m.raw), m.sent);
                let bytes = encoded_message_bytes(&encoded.0, encoded.1.len());
                if !chunk.is_empty() && chunk_bytes + bytes > cap - FORWARD_ENVELOPE_BYTES {
                    self.forward_chunk(node, tenant, id, archive, std::mem::take(&mut chunk), &mut results)
                        .await?;
                    chunk_bytes = 0;
                }
                chunk_bytes += bytes;
                chunk.push((i, encoded));
            }
            if i + 1 == total && !chunk.is_empty() {
                self.forward_chunk(node, tenant, id, archive, std::mem::take(&mut chunk), &mut results)
                    .await?;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Archived::Refused { reason: "not processed".into() }))
            .collect())
    }

    /// Forwards one chunk of encoded messages and files the answers into their slots of `results`.
    async fn forward_chunk(
        &self,
        node: arca_types::NodeId,
        tenant: &str,
        id: ShardId,
        archive: ArchiveId,
        chunk: Vec<(usize, (String, String, bool))>,
        results: &mut [Option<Archived>],
    ) -> Result<(), ArchiveError> {
        let (slots, messages): (Vec<usize>, Vec<_>) = chunk.into_iter().unzip();
        let request = Remote::Archive { tenant: tenant.into(), shard: id, archive, messages };
        let answers: Vec<Archived> = self.forward(node, &request).await?;
        if answers.len() != slots.len() {
            return Err(ArchiveError::Forward {
                node,
                reason: format!("{} answers for {} messages", answers.len(), slots.len()),
            });
        }
        for (slot, answer) in slots.into_iter().zip(answers) {
            results[slot] = Some(answer);
        }
        Ok(())
    }

    /// The key each message's folder is filed under, recording missing folders in Raft first so that
    /// the folder tree (ACC-01) shows where mail is. A folder the rule or the tree refuses gives its
    /// messages that refusal.
    async fn register_folders(
        &self,
        tenant: &str,
        archive: ArchiveId,
        messages: &[NewMessage],
    ) -> Result<Vec<Result<String, MetaError>>, ArchiveError> {
        let mut keys: HashMap<&str, Result<String, MetaError>> = HashMap::new();
        for m in messages {
            if !keys.contains_key(m.folder.as_str()) {
                let key = self.folder_key(tenant, archive, &m.folder).await?;
                keys.insert(m.folder.as_str(), key);
            }
        }
        Ok(messages
            .iter()
            .map(|m| keys.get(m.folder.as_str()).cloned().unwrap_or_else(|| Ok(m.folder.clone())))
            .collect())
    }

    /// The key mail of folder `path` (below the top-level folder of `archive`) is filed under,
    /// creating the folder and its missing parents through Raft when the tree lacks it. The inner
    /// error is the refusal of the path (folder rule, tree bounds), naming the rule; the outer one a
    /// failure to reach Raft.
    pub async fn folder_key(
        &self,
        tenant: &str,
        archive: ArchiveId,
        path: &str,
    ) -> Result<Result<String, MetaError>, ArchiveError> {
        if path.is_empty() {
            return Ok(Ok(String::new()));
        }
        let lookup = |s: &arca_raft::MetaState| {
            let a = s.tenant(tenant).ok().and_then(|t| t.archives.get(&archive));
            a.map(|a| (a.name.clone(), a.folder_key(path).map(str::to_string)))
        };
        let Some((name, known)) = self.meta.with_state(lookup) else {
            return Err(MetaError::not_found("archive", archive.to_string()).into());
        };
        let full = format!("{name}/{path}");
        if let Err(refused) = arca_types::names::validate_folder_name("folder", &full) {
            return Ok(Err(refused));
        }
        if let Some(key) = known {
            return Ok(Ok(key));
        }
        match self.meta.write(Command::CreateFolder { tenant: tenant.into(), path: full.clone() }).await {
            Ok(_) | Err(RaftNodeError::Meta(MetaError::AlreadyExists { .. })) => {}
            Err(RaftNodeError::Meta(refused)) => return Ok(Err(refused)),
            Err(e) => return Err(e.into()),
        }
        // The write is committed; read it back once this node has applied it.
        self.meta.linearizable().await?;
        match self.meta.with_state(lookup) {
            Some((_, Some(key))) => Ok(Ok(key)),
            _ => Ok(Err(MetaError::not_found("folder", full))),
        }
    }

    /// The current path of the folder whose key is `key` in `archive`; mail filed under a key no
    /// folder holds any more (its folder was deleted) shows the key.
    pub fn folder_path(&self, tenant: &str, archive: ArchiveId, key: &str) -> String {
        self.meta
            .with_state(|s| {
                let a = s.tenant(tenant).ok().and_then(|t| t.archives.get(&archive));
                a.and_then(|a| a.paths_by_key().get(key).map(|p| p.to_string()))
            })
            .unwrap_or_else(|| key.to_string())
    }

    /// The limits messages are parsed within (also for showing them).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Parses and archives `messages` into shard `id`, served here.
    async fn archive_served(
        &self,
        served: Served,
        tenant: &str,
        id: ShardId,
        archive: ArchiveId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Archived>, ArchiveError> {
        // Only the current store takes new mail (STO-02); a batch routed on a catalogue a moment old is
        // answered so that its sender re-reads it (Raft refuses the commit as well).
        let is_current = |s: &arca_raft::MetaState| {
            s.tenant(tenant)
                .ok()
                .and_then(|t| t.shards.get(&id))
                .is_some_and(|sh| sh.state == ShardState::Current)
        };
        if !self.meta.with_state(|s| is_current(s)) {
            self.meta.linearizable().await?;
            if !self.meta.with_state(|s| is_current(s)) {
                return Err(ArchiveError::NotCurrent { shard: id });
            }
        }
        let direction = |sent: bool| if sent { Direction::Sent } else { Direction::Received };
        let elsewhere = {
            let wanted: Vec<crate::older_shards::Wanted<'_>> =
                messages.iter().map(|m| (archive, m.raw.as_slice(), direction(m.sent))).collect();
            self.find_in_other_shards(tenant, id, &wanted).await?
        };
        let mut results = vec![None; messages.len()];
        let mut incoming = Vec::new();
        let mut slots = Vec::new();
        for (i, NewMessage { folder, raw, sent }) in messages.into_iter().enumerate() {
            if let Some((shard, number)) = elsewhere[i] {
                results[i] = Some(Archived::Present { shard, number });
                continue;
            }
            match parse_message(&raw, &self.limits) {
                Ok(doc) => {
                    let direction = if sent { Direction::Sent } else { Direction::Received };
                    incoming.push(Incoming { raw, doc, archive, folder, direction });
                    slots.push(i);
                }
                Err(refused) => results[i] = Some(Archived::Refused { reason: refused.reason }),
            }
        }
        if !incoming.is_empty() {
            let outcomes = match served.shard.archive(incoming).await {
                Ok(o) => o,
                Err(e) => {
                    // A fenced (stale) writer must not stay cached: the next call re-resolves the owner
                    // and reopens the shard on its committed manifest (a failed flush may have left
                    // documents in the local index that no manifest names).
                    if matches!(e, ShardError::Commit { .. } | ShardError::Flush { .. }) {
                        self.served.lock().await.remove(&id);
                    }
                    return Err(e.into());
                }
            };
            for (slot, outcome) in slots.into_iter().zip(outcomes) {
                results[slot] = Some(match outcome {
                    Outcome::Archived(number) => Archived::New { shard: id, number },
                    Outcome::AlreadyPresent(number) => Archived::Present { shard: id, number },
                });
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Archived::Refused { reason: "not processed".into() }))
            .collect())
    }

    /// One shard's page for `query`, here or on the node serving the shard; asked once more where the
    /// shard is served now when it moved to another node while being asked (`arca shard move`).
    async fn search_shard(
        &self,
        tenant: &str,
        id: ShardId,
        query: ShardQuery,
    ) -> Result<arca_search::ShardPage, ArchiveError> {
        let owner_before = crate::shard_move::owner_of(&self.meta, tenant, id);
        match self.search_shard_once(tenant, id, query.clone()).await {
            Err(e) if !matches!(e, ArchiveError::QueryLimit(_)) => {
                if crate::shard_move::owner_changed(&self.meta, tenant, id, owner_before).await {
                    self.search_shard_once(tenant, id, query).await
                } else {
                    Err(e)
                }
            }
            answer => answer,
        }
    }

    /// One shard's page for `query`, here or on the node serving the shard.
    async fn search_shard_once(
        &self,
        tenant: &str,
        id: ShardId,
        query: ShardQuery,
    ) -> Result<arca_search::ShardPage, ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(served) => search_served(&served, id, query).await,
            Placement::There(node) => {
                let request = Remote::Search { tenant: tenant.into(), shard: id, query: Box::new(query) };
                match self.forward(node, &request).await? {
                    ShardAnswer::Page(page) => Ok(*page),
                    ShardAnswer::Refused(limit) => Err(limit.into()),
                }
            }
        }
    }

    /// Serves a request another node forwarded because this node serves the shard.
    pub async fn handle_remote(&self, payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let request: Remote = serde_json::from_value(payload).map_err(|e| e.to_string())?;
        let failed = |e: ArchiveError| e.to_string();
        let answer = match request {
            Remote::Archive { tenant, shard, archive, messages } => {
                let mut decoded = Vec::with_capacity(messages.len());
                for (folder, b64, sent) in messages {
                    decoded.push(NewMessage {
                        folder,
                        raw: BASE64.decode(b64).map_err(|e| e.to_string())?,
                        sent,
                    });
                }
                let served = self.place_here(&tenant, shard).await.map_err(failed)?;
                serde_json::to_value(
                    self.archive_served(served, &tenant, shard, archive, decoded).await.map_err(failed)?,
                )
            }
            Remote::Search { tenant, shard, query } => {
                let served = self.place_here(&tenant, shard).await.map_err(failed)?;
                let answer = match search_served(&served, shard, *query).await {
                    Ok(page) => ShardAnswer::Page(Box::new(page)),
                    Err(ArchiveError::QueryLimit(limit)) => ShardAnswer::Refused(limit),
                    Err(e) => return Err(e.to_string()),
                };
                serde_json::to_value(answer)
            }
            Remote::Fetch { tenant, shard, number, readable } => {
                let served = self.place_here(&tenant, shard).await.map_err(failed)?;
                let (entry, raw) = fetch_served(&served, shard, number, &readable).await.map_err(failed)?;
                serde_json::to_value((entry, BASE64.encode(raw)))
            }
            Remote::Verify { tenant, shard, include_indexes } => {
                let served = self.place_here(&tenant, shard).await.map_err(failed)?;
                let mut lines = Vec::new();
                let report = verify_served(&served, shard, include_indexes, |line| lines.push(line))
                    .await
                    .map_err(failed)?;
                serde_json::to_value((report, lines))
            }
            Remote::Rebuild { tenant, shard } => {
                let served = self.place_here(&tenant, shard).await.map_err(failed)?;
                serde_json::to_value(self.rebuild_served(&served).await.map_err(failed)?)
            }
            Remote::IndexInfo { tenant, shard } => {
                let served = self.place_here(&tenant, shard).await.map_err(failed)?;
                serde_json::to_value(index_info_served(&served))
            }
            Remote::Entries { tenant, shard, after, limit } => {
                let served = self.place_here(&tenant, shard).await.map_err(failed)?;
                serde_json::to_value(entries_page(&served, after, limit))
            }
        };
        answer.map_err(|e| e.to_string())
    }

    /// Searches every shard of `tenant` within `scopes` and the `[search]` bounds; shards that fail or do
    /// not answer within `search.timeout_ms` (and a second) are listed, not hidden. A search over a bound,
    /// here or on any store, is refused whole ([`ArchiveError::QueryLimit`]).
    pub async fn search(
        &self,
        tenant: &str,
        scopes: Vec<Scope>,
        request: &SearchRequest,
        limits: &arca_types::config::SearchConfig,
    ) -> Result<(MergedPage, Vec<ShardId>), ArchiveError> {
        arca_search::check_request(request, limits)?;
        let started = tokio::time::Instant::now();
        let wait = std::time::Duration::from_millis(limits.timeout_ms.saturating_add(1000));
        self.meta.linearizable().await?;
        let shards: Vec<ShardId> = self.meta.with_state(|s| {
            s.tenant(tenant).map(|t| {
                t.shards
                    .values()
                    .filter(|sh| sh.state != ShardState::Disabled && sh.manifest.is_some())
                    .filter(|sh| request.filters.shards.is_empty() || request.filters.shards.contains(&sh.id))
                    .map(|sh| sh.id)
                    .collect()
            })
        })?;
        let mut filters = ResolvedFilters::resolve(
            &request.filters,
            CivilDate::from_unix_seconds(arca_shard::shard::now_unix(), 0),
            0,
        );
        // Shards match folder keys: the folder's (and its subfolders') keys as Raft holds them now.
        if let Some(folder) = filters.folder.as_mut() {
            let path = folder.path.trim_matches('/').to_string();
            folder.keys = Some(self.meta.with_state(|s| {
                let a = s.tenant(tenant).ok().and_then(|t| t.archives.get(&folder.archive));
                a.and_then(|a| a.folder_keys(&path, folder.include_subfolders)).unwrap_or_default()
            }));
            folder.path = path;
        }
        let cursor = match &request.cursor {
            Some(c) => Some(
                arca_search::MergedCursor::decode(c, request.sort)
                    .map_err(|e| ArchiveError::Search(e.to_string()))?,
            ),
            None => None,
        };
        let limit = request.limit.max(1) as usize;
        let mut pages = Vec::new();
        let mut missing = Vec::new();
        for id in shards {
            let q = ShardQuery {
                query: request.query.clone(),
                filters: filters.clone(),
                scopes: scopes.clone(),
                sort: request.sort,
                limit,
                after: cursor.as_ref().map(|c| c.for_shard(id)),
                bounds: arca_search::ShardBounds::from_config(limits),
            };
            match tokio::time::timeout_at(started + wait, self.search_shard(tenant, id, q)).await {
                Ok(Ok(page)) => pages.push((id, page)),
                Ok(Err(ArchiveError::QueryLimit(limit))) => return Err(limit.into()),
                Ok(Err(e)) => {
                    tracing::warn!(shard = id, error = %e, "store did not answer the search");
                    missing.push(id);
                }
                Err(_) => {
                    tracing::warn!(
                        shard = id,
                        wait_ms = wait.as_millis(),
                        "store did not answer the search in time"
                    );
                    missing.push(id);
                }
            }
        }
        let mut page = arca_search::merge(pages, request.sort, limit);
        self.show_folder_paths(tenant, &mut page);
        Ok((page, missing))
    }

    /// Replaces each hit's folder key by the folder's current path (a moved folder's mail shows its
    /// new place).
    fn show_folder_paths(&self, tenant: &str, page: &mut MergedPage) {
        self.meta.with_state(|s| {
            let Ok(t) = s.tenant(tenant) else { return };
            let mut maps: HashMap<ArchiveId, HashMap<&str, &str>> = HashMap::new();
            for h in &mut page.hits {
                let Some(a) = t.archives.get(&h.hit.archive) else { continue };
                let map = maps.entry(a.id).or_insert_with(|| a.paths_by_key());
                if let Some(path) = map.get(h.hit.folder.as_str()) {
                    h.hit.folder = path.to_string();
                }
            }
        });
    }

    /// The parties of a message as lower-cased addresses: (sender, recipients).
    pub fn parties(&self, raw: &[u8]) -> (Vec<String>, Vec<String>) {
        let Ok(doc) = parse_message(raw, &self.limits) else { return (Vec::new(), Vec::new()) };
        let lower = |list: &[arca_types::document::Address]| -> Vec<String> {
            list.iter().filter_map(|a| a.address.as_ref().map(|x| x.to_lowercase())).collect()
        };
        let mut recipients = lower(&doc.to);
        recipients.extend(lower(&doc.cc));
        recipients.extend(lower(&doc.bcc));
        (lower(&doc.from), recipients)
    }

    /// The catalogue's shards of `tenant`, as `GetStores` lists them.
    pub async fn stores(&self, tenant: &str) -> Result<Vec<arca_types::records::Shard>, ArchiveError> {
        self.meta.linearizable().await?;
        Ok(self.meta.with_state(|s| s.tenant(tenant).map(|t| t.shards.values().cloned().collect()))?)
    }

    /// Creates a shard with its own data key (`CreateStore`).
    pub async fn create_store(
        &self,
        tenant: &str,
        name: &str,
        state: ShardState,
    ) -> Result<ShardId, ArchiveError> {
        self.create_store_once(tenant, name, state, None).await
    }

    /// [`ArchiveService::create_store`] under a client's request id (`Idempotency-Key`), so that a
    /// retry creates one store.
    pub async fn create_store_once(
        &self,
        tenant: &str,
        name: &str,
        state: ShardState,
        request_id: Option<String>,
    ) -> Result<ShardId, ArchiveError> {
        let tenant_key = self.tenant_key(tenant).await?;
        let w =
            tenant_key.wrap_data_key(&DataKey::generate()).map_err(|e| ArchiveError::Keys(e.to_string()))?;
        let wrapped_key = Some(serde_json::to_string(&w).map_err(|e| ArchiveError::Keys(e.to_string()))?);
        let command = Command::CreateShard { tenant: tenant.into(), name: name.into(), state, wrapped_key };
        let created = match request_id {
            Some(id) => self.meta.write_with_id(id, command).await?,
            None => self.meta.write(command).await?,
        };
        match created {
            CommandOutput::Created(id) => Ok(id),
            other => Err(ArchiveError::Keys(format!("unexpected answer creating a store: {other:?}"))),
        }
    }

    /// Verifies every pack of shard `id`, and with `include_indexes` its index against its manifest,
    /// on the node serving it; `progress` receives log lines.
    pub async fn verify_store(
        &self,
        tenant: &str,
        id: ShardId,
        include_indexes: bool,
        mut progress: impl FnMut(String),
    ) -> Result<(arca_shard::shard::ShardVerify, Option<crate::index_check::IndexCheck>), ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(served) => Ok(verify_served(&served, id, include_indexes, progress).await?),
            Placement::There(node) => {
                let request = Remote::Verify { tenant: tenant.into(), shard: id, include_indexes };
                let (report, lines): VerifyAnswer = self.forward(node, &request).await?;
                progress(format!("(verified by node {node}, which serves store {id})"));
                lines.into_iter().for_each(progress);
                Ok(report)
            }
        }
    }

    /// Rebuilds shard `id`'s index from its packs, on the node serving it; answers the number of
    /// messages indexed.
    pub async fn rebuild_index(&self, tenant: &str, id: ShardId) -> Result<u64, ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(served) => self.rebuild_served(&served).await,
            Placement::There(node) => {
                self.forward(node, &Remote::Rebuild { tenant: tenant.into(), shard: id }).await
            }
        }
    }

    async fn rebuild_served(&self, served: &Served) -> Result<u64, ArchiveError> {
        let limits = self.limits;
        let parse = Box::new(move |raw: &[u8]| {
            parse_message(raw, &limits).unwrap_or_else(|_| MessageDoc::empty(raw.len() as u64))
        });
        let n = served.shard.rebuild_index(parse).await?;
        served.complete.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    /// Documents in shard `id`'s index and files of the index, from the node serving it.
    pub async fn index_info(
        &self,
        tenant: &str,
        id: ShardId,
    ) -> Result<(u64, Vec<(String, u64)>), ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(served) => Ok(index_info_served(&served)),
            Placement::There(node) => {
                self.forward(node, &Remote::IndexInfo { tenant: tenant.into(), shard: id }).await
            }
        }
    }

    /// Every listing entry of every shard of `tenant` (statistics, folder listings), each shard's from
    /// the node serving it (in pages when forwarded).
    pub async fn entries(&self, tenant: &str) -> Result<Vec<(ShardId, Entry)>, ArchiveError> {
        let mut out = Vec::new();
        for shard in self.stores(tenant).await? {
            if shard.manifest.is_none() || shard.state == ShardState::Disabled {
                continue;
            }
            let id = shard.id;
            match self.place(tenant, id).await? {
                Placement::Here(served) => {
                    out.extend(
                        served.shard.with_manifest(|m| m.entries.clone()).into_iter().map(|e| (id, e)),
                    );
                }
                Placement::There(node) => {
                    let mut after = 0;
                    loop {
                        let request =
                            Remote::Entries { tenant: tenant.into(), shard: id, after, limit: ENTRIES_PAGE };
                        let page: Vec<Entry> = self.forward(node, &request).await?;
                        let full = page.len() >= ENTRIES_PAGE;
                        after = page.last().map_or(after, |e| e.number);
                        out.extend(page.into_iter().map(|e| (id, e)));
                        if !full {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The listing entry and exact bytes of message `<shard>:<number>`, from the node serving the shard.
    /// A message outside the `readable` archives answers `NoSuchMessage`, before any byte is read.
    pub async fn fetch(
        &self,
        tenant: &str,
        shard: ShardId,
        number: u64,
        readable: &[ArchiveId],
    ) -> Result<(Entry, Vec<u8>), ArchiveError> {
        let owner_before = crate::shard_move::owner_of(&self.meta, tenant, shard);
        match self.fetch_once(tenant, shard, number, readable).await {
            Err(e) if !matches!(e, ArchiveError::Shard(ShardError::NoSuchMessage { .. })) => {
                // Moved to another node while being asked (`arca shard move`): ask there once more.
                if crate::shard_move::owner_changed(&self.meta, tenant, shard, owner_before).await {
                    self.fetch_once(tenant, shard, number, readable).await
                } else {
                    Err(e)
                }
            }
            answer => answer,
        }
    }

    /// [`Self::fetch`] from where the shard is served now.
    async fn fetch_once(
        &self,
        tenant: &str,
        shard: ShardId,
        number: u64,
        readable: &[ArchiveId],
    ) -> Result<(Entry, Vec<u8>), ArchiveError> {
        let node = match self.place(tenant, shard).await? {
            Placement::Here(served) => return fetch_served(&served, shard, number, readable).await,
            Placement::There(node) => node,
        };
        let request = Remote::Fetch { tenant: tenant.into(), shard, number, readable: readable.to_vec() };
        let answer: (Entry, String) = match self.forward(node, &request).await {
            Ok(a) => a,
            // The serving node's "no such message" arrives as text: keep it a "no such message".
            Err(e) if e.to_string().contains(&ShardError::NoSuchMessage { shard, number }.to_string()) => {
                return Err(ShardError::NoSuchMessage { shard, number }.into());
            }
            Err(e) => return Err(e),
        };
        let (entry, b64) = answer;
        let raw = BASE64.decode(b64).map_err(|e| ArchiveError::Forward { node, reason: e.to_string() })?;
        Ok((entry, raw))
    }
}

/// Where [`ArchiveService::place`] decided a shard is served.
enum Placement {
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

/// Listing entries per forwarded page (about 250 bytes each encoded: ~12 MiB a page).
const ENTRIES_PAGE: usize = 50_000;

/// Room kept in a forwarded request for everything but its messages (tenant, ids, JSON framing).
const FORWARD_ENVELOPE_BYTES: usize = 64 * 1024;

/// The largest message between nodes, derived from what the API accepts: one message of the largest
/// size the limits allow, base64-encoded (4 bytes per 3) with its folder in JSON, plus the envelope.
/// Batches are forwarded in requests of at most this size, and a forwarded fetch answers one message,
/// so every request the API accepts can be forwarded. `arca serve` configures the cluster RPC with it.
pub fn max_forward_bytes(limits: &Limits) -> usize {
    let message = usize::try_from(limits.max_message_bytes).unwrap_or(usize::MAX / 2);
    let encoded = message.div_ceil(3).saturating_mul(4);
    encoded_message_bytes("", encoded)
        .saturating_add(MAX_FOLDER_JSON_BYTES)
        .saturating_add(FORWARD_ENVELOPE_BYTES)
        .max(arca_raft::network::DEFAULT_MAX_MESSAGE)
}

/// Room for one message's folder path in a forwarded request or answer, JSON-escaped.
const MAX_FOLDER_JSON_BYTES: usize = 1024 * 1024;

/// The encoded size of one forwarded message: its JSON array of folder, base64 text and direction.
fn encoded_message_bytes(folder: &str, base64_len: usize) -> usize {
    // `["<folder>","<base64>",false],`: a folder character escapes to at most 6 bytes.
    base64_len + folder.len().saturating_mul(6) + 16
}

/// What a forwarded `VerifyStore` answers: the report and the progress lines written meanwhile.
type VerifyAnswer = ((arca_shard::shard::ShardVerify, Option<crate::index_check::IndexCheck>), Vec<String>);

/// Verifies the packs of a shard served here and, with `include_indexes`, its index against its
/// manifest.
async fn verify_served(
    served: &Served,
    id: ShardId,
    include_indexes: bool,
    mut progress: impl FnMut(String),
) -> Result<(arca_shard::shard::ShardVerify, Option<crate::index_check::IndexCheck>), ArchiveError> {
    let packs = served.shard.verify(&mut progress).await;
    if !include_indexes {
        return Ok((packs, None));
    }
    progress(format!("Checking the index of store #{id} against its manifest..."));
    let numbers: Vec<u64> = served.shard.with_manifest(|m| m.entries.iter().map(|e| e.number).collect());
    let check = if served.complete.load(std::sync::atomic::Ordering::Relaxed) {
        let indexed = served.index.indexed_numbers().map_err(|e| ArchiveError::Search(e.to_string()))?;
        crate::index_check::IndexCheck::compare(numbers, &indexed, None)
    } else {
        crate::index_check::IndexCheck::compare(
            numbers,
            &[],
            Some("the index files the manifest names could not be restored".to_string()),
        )
    };
    progress(format!(
        "store #{id}: index holds {} documents; {} messages not indexed, {} indexed more than once, {} unknown",
        check.documents,
        check.missing.len(),
        check.duplicated.len(),
        check.unknown.len()
    ));
    Ok((packs, Some(check)))
}

async fn search_served(
    served: &Served,
    id: ShardId,
    query: ShardQuery,
) -> Result<arca_search::ShardPage, ArchiveError> {
    if !served.complete.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ArchiveError::Search(format!("store {id} has no complete index (rebuild it)")));
    }
    // The search is CPU work of up to `search.timeout_ms`: off the async workers.
    let index = served.index.clone();
    let searched = tokio::task::spawn_blocking(move || index.search(&query))
        .await
        .map_err(|e| ArchiveError::Search(format!("store {id}: the search task failed: {e}")))?;
    match searched {
        Ok(page) => Ok(page),
        Err(arca_search::SearchError::Limit(limit)) => Err(limit.into()),
        Err(e) => Err(ArchiveError::Search(e.to_string())),
    }
}

async fn fetch_served(
    served: &Served,
    shard: ShardId,
    number: u64,
    readable: &[ArchiveId],
) -> Result<(Entry, Vec<u8>), ArchiveError> {
    let entry = served
        .shard
        .entry(number)
        .filter(|e| readable.contains(&e.archive))
        .ok_or(ShardError::NoSuchMessage { shard, number })?;
    let raw = served.shard.fetch(number).await?;
    Ok((entry, raw))
}

fn index_info_served(served: &Served) -> (u64, Vec<(String, u64)>) {
    let docs = served.index.num_docs();
    let files = served.shard.with_manifest(|m| m.index_files.clone());
    (docs, files.into_iter().map(|f| (f.name, f.size)).collect())
}

/// Up to `limit` listing entries numbered above `after`, in number order.
fn entries_page(served: &Served, after: u64, limit: usize) -> Vec<Entry> {
    served.shard.with_manifest(|m| {
        let start = m.entries.partition_point(|e| e.number <= after);
        m.entries[start..].iter().take(limit).cloned().collect()
    })
}
