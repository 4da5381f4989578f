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

/// The service name under which nodes forward shard operations to the node serving the shard.
pub const ARCHIVE_SERVICE: &str = "archive.shard";

/// A shard operation forwarded to the node that serves the shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Remote {
    Archive { tenant: String, shard: ShardId, archive: ArchiveId, messages: Vec<(String, String, bool)> },
    Search { tenant: String, shard: ShardId, query: Box<ShardQuery> },
    Fetch { tenant: String, shard: ShardId, number: u64, readable: Vec<ArchiveId> },
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
    data_dir: PathBuf,
    limits: Limits,
    pub(crate) served: tokio::sync::Mutex<HashMap<ShardId, Served>>,
    /// The identities of the tenants' other shards, for dedupe across stores (invariant 3).
    pub(crate) older: crate::older_shards::OlderShards,
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
    let (mut staging, pending) = arca_shard::staging::Staging::open(path).map_err(ShardError::from)?;
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

    /// Serves shard `id` on this node (opening it, and taking it over with a new epoch when needed).
    async fn serve(&self, tenant: &str, id: ShardId) -> Result<Served, ArchiveError> {
        let mut served = self.served.lock().await;
        if let Some(s) = served.get(&id) {
            return Ok(s.clone());
        }
        self.meta.linearizable().await?;
        let record = self.meta.with_state(|s| {
            s.tenant(tenant).and_then(|t| {
                t.shards.get(&id).cloned().ok_or_else(|| MetaError::not_found("store", id.to_string()))
            })
        })?;
        let epoch = match self
            .meta
            .write(Command::AssignShard { tenant: tenant.into(), id, node: self.meta.id() })
            .await?
        {
            CommandOutput::Epoch(e) => e,
            other => {
                return Err(ArchiveError::Keys(format!("unexpected answer assigning a store: {other:?}")));
            }
        };
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
        let manifest =
            arca_shard::shard::load_manifest(&self.objects, id, &key, record.manifest.clone()).await?;
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
        let s = Served { shard, index, complete: Arc::new(std::sync::atomic::AtomicBool::new(complete)) };
        served.insert(id, s.clone());
        Ok(s)
    }

    /// Makes the local index directory hold exactly the index the committed manifest names: its
    /// `meta.json` and every segment file (restored from their bundles when missing or of another
    /// size). The inner `Err` says why the index cannot be restored and must be rebuilt from the packs.
    async fn restore_index(
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

    /// The node serving shard `id` when it is another live member; `None` when this node serves it
    /// (or should take it over: unassigned, or its node left the cluster).
    async fn remote_owner(
        &self,
        tenant: &str,
        id: ShardId,
    ) -> Result<Option<arca_types::NodeId>, ArchiveError> {
        if self.served.lock().await.contains_key(&id) {
            return Ok(None);
        }
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

    async fn forward(
        &self,
        node: arca_types::NodeId,
        request: &Remote,
    ) -> Result<serde_json::Value, ArchiveError> {
        let payload = serde_json::to_value(request).map_err(|e| ArchiveError::Search(e.to_string()))?;
        Ok(self.meta.call_node(node, ARCHIVE_SERVICE, payload, std::time::Duration::from_secs(300)).await?)
    }

    /// Parses and archives raw messages into archive `archive` of `tenant`, each in its folder (path
    /// below the archive's top-level folder); answers once every message is durable or refused. The
    /// work goes to the node serving the tenant's current shard.
    pub async fn archive(
        &self,
        tenant: &str,
        archive: ArchiveId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Archived>, ArchiveError> {
        self.refuse_while_disabled(tenant)?;
        self.register_folders(tenant, archive, &messages).await?;
        let id = self.current_shard(tenant).await?;
        match self.archive_in(tenant, id, archive, messages.clone()).await {
            Ok(done) => Ok(done),
            Err(e) => {
                // The store may have stopped being current meanwhile (its writer, or Raft, refused the
                // batch): send it once to the store the catalogue now names current. Dedupe makes
                // the retry safe.
                self.meta.linearizable().await?;
                match self.current_shard(tenant).await? {
                    now if now != id => self.archive_in(tenant, now, archive, messages).await,
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
        if let Some(node) = self.remote_owner(tenant, id).await? {
            let encoded =
                messages.iter().map(|m| (m.folder.clone(), BASE64.encode(&m.raw), m.sent)).collect();
            let answer = self
                .forward(
                    node,
                    &Remote::Archive { tenant: tenant.into(), shard: id, archive, messages: encoded },
                )
                .await?;
            return serde_json::from_value(answer)
                .map_err(|e| ArchiveError::Search(format!("forwarded archive answer: {e}")));
        }
        self.archive_local(tenant, id, archive, messages).await
    }

    /// Records in Raft the folders of `messages` that archive `archive` does not list yet, so that its
    /// folder tree (ACC-01) shows where mail was archived. A folder name Raft refuses is logged; the
    /// mail is archived all the same (it stays listed under that folder and found by search).
    async fn register_folders(
        &self,
        tenant: &str,
        archive: ArchiveId,
        messages: &[NewMessage],
    ) -> Result<(), ArchiveError> {
        let missing: Vec<String> = self.meta.with_state(|s| {
            let Some(a) = s.tenant(tenant).ok().and_then(|t| t.archives.get(&archive)) else {
                return Vec::new();
            };
            let folders: std::collections::BTreeSet<&str> = messages
                .iter()
                .map(|m| m.folder.as_str())
                .filter(|f| !f.is_empty() && !a.folders.contains(*f))
                .collect();
            folders.into_iter().map(|f| format!("{}/{f}", a.name)).collect()
        });
        for path in missing {
            // Checked here first, so a name Raft would refuse costs no log entry on every batch.
            if let Err(e) = arca_types::names::validate_folder_name("folder", &path) {
                tracing::warn!("folder '{path}' is not added to the folder tree: {e}");
                continue;
            }
            match self.meta.write(Command::CreateFolder { tenant: tenant.into(), path: path.clone() }).await {
                Ok(_) | Err(RaftNodeError::Meta(MetaError::AlreadyExists { .. })) => {}
                Err(RaftNodeError::Meta(e)) => {
                    tracing::warn!("folder '{path}' is not added to the folder tree: {e}");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The limits messages are parsed within (also for showing them).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    async fn archive_local(
        &self,
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
        let served = self.serve(tenant, id).await?;
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

    /// One shard's page for `query`, here or on the node serving the shard.
    async fn search_shard(
        &self,
        tenant: &str,
        id: ShardId,
        query: ShardQuery,
    ) -> Result<arca_search::ShardPage, ArchiveError> {
        if let Some(node) = self.remote_owner(tenant, id).await? {
            let answer = self
                .forward(node, &Remote::Search { tenant: tenant.into(), shard: id, query: Box::new(query) })
                .await?;
            return serde_json::from_value(answer)
                .map_err(|e| ArchiveError::Search(format!("forwarded search answer: {e}")));
        }
        self.search_local(tenant, id, &query).await
    }

    async fn search_local(
        &self,
        tenant: &str,
        id: ShardId,
        query: &ShardQuery,
    ) -> Result<arca_search::ShardPage, ArchiveError> {
        let served = self.serve(tenant, id).await?;
        if !served.complete.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ArchiveError::Search(format!("store {id} has no complete index (rebuild it)")));
        }
        let index = &served.index;
        index.search(query).map_err(|e| ArchiveError::Search(e.to_string()))
    }

    /// Serves a request another node forwarded because this node serves the shard.
    pub async fn handle_remote(&self, payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let request: Remote = serde_json::from_value(payload).map_err(|e| e.to_string())?;
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
                serde_json::to_value(
                    self.archive_local(&tenant, shard, archive, decoded).await.map_err(|e| e.to_string())?,
                )
            }
            Remote::Search { tenant, shard, query } => serde_json::to_value(
                self.search_local(&tenant, shard, &query).await.map_err(|e| e.to_string())?,
            ),
            Remote::Fetch { tenant, shard, number, readable } => {
                let (entry, raw) =
                    self.fetch_local(&tenant, shard, number, &readable).await.map_err(|e| e.to_string())?;
                serde_json::to_value((entry, BASE64.encode(raw)))
            }
        };
        answer.map_err(|e| e.to_string())
    }

    /// Searches every shard of `tenant` within `scopes`; shards that fail are listed, not hidden.
    pub async fn search(
        &self,
        tenant: &str,
        scopes: Vec<Scope>,
        request: &SearchRequest,
    ) -> Result<(MergedPage, Vec<ShardId>), ArchiveError> {
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
        let filters = ResolvedFilters::resolve(
            &request.filters,
            CivilDate::from_unix_seconds(arca_shard::shard::now_unix(), 0),
            0,
        );
        let cursor = match &request.cursor {
            Some(c) => Some(
                arca_search::MergedCursor::decode(c, request.sort)
                    .map_err(|e| ArchiveError::Search(e.to_string()))?,
            ),
            None => None,
        };
        let limit = request.limit.clamp(1, 1000) as usize;
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
            };
            match self.search_shard(tenant, id, q).await {
                Ok(page) => pages.push((id, page)),
                Err(e) => {
                    tracing::warn!(shard = id, "store did not answer the search: {e}");
                    missing.push(id);
                }
            }
        }
        Ok((arca_search::merge(pages, request.sort, limit), missing))
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

    /// Verifies every pack of shard `id`, and with `include_indexes` its index against its manifest;
    /// `progress` receives log lines.
    pub async fn verify_store(
        &self,
        tenant: &str,
        id: ShardId,
        include_indexes: bool,
        mut progress: impl FnMut(String),
    ) -> Result<(arca_shard::shard::ShardVerify, Option<crate::index_check::IndexCheck>), ArchiveError> {
        let served = self.serve(tenant, id).await?;
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

    /// Rebuilds shard `id`'s index from its packs; answers the number of messages indexed.
    pub async fn rebuild_index(&self, tenant: &str, id: ShardId) -> Result<u64, ArchiveError> {
        let served = self.serve(tenant, id).await?;
        let limits = self.limits;
        let parse = Box::new(move |raw: &[u8]| {
            parse_message(raw, &limits).unwrap_or_else(|_| MessageDoc::empty(raw.len() as u64))
        });
        let n = served.shard.rebuild_index(parse).await?;
        served.complete.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    /// Documents in shard `id`'s index and files of the index.
    pub async fn index_info(
        &self,
        tenant: &str,
        id: ShardId,
    ) -> Result<(u64, Vec<(String, u64)>), ArchiveError> {
        let served = self.serve(tenant, id).await?;
        let docs = served.index.num_docs();
        let files = served.shard.with_manifest(|m| m.index_files.clone());
        Ok((docs, files.into_iter().map(|f| (f.name, f.size)).collect()))
    }

    /// Every listing entry of every shard of `tenant` (statistics, folder listings).
    pub async fn entries(&self, tenant: &str) -> Result<Vec<(ShardId, Entry)>, ArchiveError> {
        let mut out = Vec::new();
        for shard in self.stores(tenant).await? {
            if shard.manifest.is_none() || shard.state == ShardState::Disabled {
                continue;
            }
            let served = self.serve(tenant, shard.id).await?;
            out.extend(served.shard.with_manifest(|m| m.entries.clone()).into_iter().map(|e| (shard.id, e)));
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
        if let Some(node) = self.remote_owner(tenant, shard).await? {
            let request = Remote::Fetch { tenant: tenant.into(), shard, number, readable: readable.to_vec() };
            let answer = match self.forward(node, &request).await {
                Ok(a) => a,
                // The serving node's "no such message" arrives as text: keep it a "no such message".
                Err(e)
                    if e.to_string().contains(&ShardError::NoSuchMessage { shard, number }.to_string()) =>
                {
                    return Err(ShardError::NoSuchMessage { shard, number }.into());
                }
                Err(e) => return Err(e),
            };
            let (entry, b64): (Entry, String) = serde_json::from_value(answer)
                .map_err(|e| ArchiveError::Search(format!("forwarded fetch answer: {e}")))?;
            let raw = BASE64.decode(b64).map_err(|e| ArchiveError::Search(e.to_string()))?;
            return Ok((entry, raw));
        }
        self.fetch_local(tenant, shard, number, readable).await
    }

    async fn fetch_local(
        &self,
        tenant: &str,
        shard: ShardId,
        number: u64,
        readable: &[ArchiveId],
    ) -> Result<(Entry, Vec<u8>), ArchiveError> {
        let served = self.serve(tenant, shard).await?;
        let entry = served
            .shard
            .entry(number)
            .filter(|e| readable.contains(&e.archive))
            .ok_or(ShardError::NoSuchMessage { shard, number })?;
        let raw = served.shard.fetch(number).await?;
        Ok((entry, raw))
    }
}
