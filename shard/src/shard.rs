//! A shard being served by this node: the group-commit writer (staging, pack, index files, manifest
//! delta, commit through the catalogue, then acknowledgement) and the reader (manifest, cached pack
//! footers, one ranged GET per message).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::index_files::{BundleBuilder, IndexFile, IndexFilesError};
use crate::manifest::{ContentRef, Entry, Manifest, ManifestDelta, PackInfo};
use crate::objects::{ObjectError, Objects, ShardKeys};
use crate::pack::{PackConfig, PackError, PackFooter, PackId, PackWriter, read_message};
use crate::staging::{Incoming, SetAside, Staging, StagingError};
use crate::{DataKey, crypto};
use arca_types::ShardId;
use arca_types::document::MessageDoc;

/// Flush when this many raw bytes wait: mail compresses to about a third, so full flushes make packs of
/// about 16 MiB, and each flush's three PUTs (pack, index bundle, manifest) serve about 5,000 messages.
pub const DEFAULT_FLUSH_BYTES: usize = 48 * 1024 * 1024;
/// Unreferenced objects (index bundles, compacted manifest deltas) are deleted this long after the
/// manifest that dropped them is committed.
const GC_DELAY: Duration = Duration::from_secs(10);
/// A group ends when no further submission arrives within this gap.
const GROUP_GAP: Duration = Duration::from_millis(5);
/// Flush at the latest this long after the first waiting message.
pub const DEFAULT_FLUSH_DELAY: Duration = Duration::from_millis(300);

/// Why a shard operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Staging(#[from] StagingError),
    #[error("store {shard}: pack {pack}: {source}")]
    Pack { shard: ShardId, pack: String, source: PackError },
    #[error("store {shard}: manifest {key} cannot be read: {reason}")]
    Manifest { shard: ShardId, key: String, reason: String },
    #[error("store {shard}: the metadata cluster refused the flush: {reason}")]
    Commit { shard: ShardId, reason: String },
    /// A group commit that failed as a whole (object store, index or commit); nothing was acknowledged.
    #[error("store {shard}: the flush failed, nothing of it was acknowledged: {reason}")]
    Flush { shard: ShardId, reason: String },
    #[error("store {shard}: index: {reason}")]
    Index { shard: ShardId, reason: String },
    #[error("message {shard}:{number} does not exist")]
    NoSuchMessage { shard: ShardId, number: u64 },
    #[error("store {0} is shutting down")]
    Closed(ShardId),
}

/// What archiving one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (or, for content the shard already had, referenced) under this number.
    Archived(u64),
    /// The archive already lists this message (same content, same direction): nothing changed.
    AlreadyPresent(u64),
}

/// What a shard needs from the metadata cluster: publishing a manifest under its epoch.
pub trait Catalog: Send + Sync + 'static {
    /// Commits `key` as the shard's newest manifest; refused when `epoch` is stale.
    fn commit_manifest(
        &self,
        shard: ShardId,
        epoch: u64,
        sequence: u64,
        key: String,
        counters: (u64, u64),
    ) -> BoxFuture<'_, Result<(), String>>;
}

/// The shard's full-text index as the writer drives it (implemented with `arca-search` by the caller).
pub trait IndexSink: Send + 'static {
    /// Adds one message's document.
    fn add(&mut self, entry: &Entry, doc: &MessageDoc) -> Result<(), String>;
    /// Makes added documents durable and searchable; returns every index file now needed, as
    /// (name, local path, size).
    fn commit(&mut self) -> Result<Vec<(String, PathBuf, u64)>, String>;
    /// Removes every document (before a rebuild from the packs).
    fn reset(&mut self) -> Result<(), String>;
}

/// Turns raw bytes back into the document the index needs (a rebuild re-parses every message).
pub type Parser = Box<dyn Fn(&[u8]) -> MessageDoc + Send + Sync>;

/// A pack that failed verification and the messages it affects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DamagedPack {
    pub pack: String,
    pub reason: String,
    /// Message numbers of the shard whose bytes are in the damaged part.
    pub messages: Vec<u64>,
}

/// The result of verifying every pack of a shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardVerify {
    pub packs: usize,
    pub messages: usize,
    pub damaged: Vec<DamagedPack>,
}

/// Everything needed to serve a shard.
pub struct ShardParams {
    pub tenant: String,
    pub id: ShardId,
    pub epoch: u64,
    pub key: DataKey,
    pub objects: Objects,
    pub catalog: Arc<dyn Catalog>,
    pub index: Box<dyn IndexSink>,
    /// The committed manifest, as [`load_manifest`] reads it from the catalogue's head (the caller
    /// needs it before opening too, to restore the index).
    pub manifest: Manifest,
    /// Local directory for the staging log.
    pub local_dir: PathBuf,
    pub flush_bytes: usize,
    pub flush_delay: Duration,
    pub pack: PackConfig,
}

type Reply = oneshot::Sender<Result<Vec<Outcome>, String>>;

struct Submission {
    messages: Vec<Incoming>,
    reply: Reply,
}

/// Work for the writer: archiving, or rebuilding the index.
enum Job {
    Archive(Submission),
    Rebuild { parse: Parser, reply: oneshot::Sender<Result<u64, String>> },
}

struct Shared {
    tenant: String,
    id: ShardId,
    epoch: u64,
    key: DataKey,
    objects: Objects,
    keys: ShardKeys,
    manifest: RwLock<Manifest>,
    footers: Mutex<HashMap<String, Arc<PackFooter>>>,
    /// What of the staging log could not be replayed when the shard was opened.
    set_aside: Option<SetAside>,
}

/// A served shard. Cheap to clone.
#[derive(Clone)]
pub struct Shard {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shard({}/{})", self.shared.tenant, self.shared.id)
    }
}

const MANIFEST_AAD: &[u8] = b"arca/manifest/v1\0";

/// Seals one manifest object: JSON (a [`ManifestDelta`], or a [`Snapshot`] that reads back as one),
/// zstd-compressed as it is written, then AES-256-GCM bound to its object key.
fn seal_manifest<T: serde::Serialize>(key: &DataKey, object_key: &str, value: &T) -> Result<Vec<u8>, String> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).map_err(|e| e.to_string())?;
    serde_json::to_writer(&mut encoder, value).map_err(|e| e.to_string())?;
    let compressed = encoder.finish().map_err(|e| e.to_string())?;
    let mut aad = MANIFEST_AAD.to_vec();
    aad.extend_from_slice(object_key.as_bytes());
    let mut out = Vec::new();
    crypto::seal_into(key.secret(), &aad, compressed, &mut out).map_err(|_| "sealing failed".to_string())?;
    Ok(out)
}

/// Every this many deltas, the manifest object is a compaction: the whole manifest without predecessor,
/// so that opening a shard reads at most this many manifest objects.
pub const MANIFEST_COMPACTION_EVERY: u64 = 64;

/// A compaction as written: the fields of a [`ManifestDelta`] with `previous: None`, its lists the
/// manifest's followed by the new delta's, serialized without copying them.
#[derive(serde::Serialize)]
struct Snapshot<'a> {
    epoch: u64,
    sequence: u64,
    previous: Option<String>,
    packs: Joined<'a, PackInfo>,
    entries: Joined<'a, Entry>,
    index_files: &'a [IndexFile],
    index_meta: &'a Option<String>,
}

/// Two slices serialized as one sequence.
struct Joined<'a, T>(&'a [T], &'a [T]);

impl<T: serde::Serialize> serde::Serialize for Joined<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().chain(self.1))
    }
}

fn open_manifest(key: &DataKey, object_key: &str, sealed: &[u8]) -> Result<ManifestDelta, String> {
    let mut aad = MANIFEST_AAD.to_vec();
    aad.extend_from_slice(object_key.as_bytes());
    let compressed = crypto::open(key.secret(), &aad, sealed)
        .map_err(|_| "damaged, or sealed under another key".to_string())?;
    let json = zstd::stream::read::Decoder::new(compressed.as_slice()).map_err(|e| e.to_string())?;
    serde_json::from_reader(std::io::BufReader::new(json)).map_err(|e| e.to_string())
}

/// Reads a shard's manifest chain from its newest delta `head`.
pub async fn load_manifest(
    objects: &Objects,
    shard: ShardId,
    key: &DataKey,
    head: Option<String>,
) -> Result<Manifest, ShardError> {
    let (chain, _) = read_chain(objects, shard, key, head, None).await?;
    Ok(Manifest::from_chain(chain))
}

/// Follows a manifest chain from `head` back to (not including) `stop`, newest first, with each
/// delta's object key; `true` when `stop` was reached.
async fn read_chain(
    objects: &Objects,
    shard: ShardId,
    key: &DataKey,
    head: Option<String>,
    stop: Option<&str>,
) -> Result<(Vec<(String, ManifestDelta)>, bool), ShardError> {
    let mut chain = Vec::new();
    let mut next = head;
    while let Some(object) = next {
        if Some(object.as_str()) == stop {
            return Ok((chain, true));
        }
        let sealed = objects.get(&object).await?;
        let delta = open_manifest(key, &object, &sealed).map_err(|reason| ShardError::Manifest {
            shard,
            key: object.clone(),
            reason,
        })?;
        next = delta.previous.clone();
        chain.push((object, delta));
    }
    Ok((chain, false))
}

/// The manifest deltas of a shard from its newest `head` back to (not including) `known`, newest
/// first, and whether `known` was reached: `false` when the chain ended first (a compaction replaced
/// it), so that the deltas read hold the whole manifest. Used to follow another shard's manifest
/// without serving it (the cross-store identity table).
pub async fn load_deltas_since(
    objects: &Objects,
    shard: ShardId,
    key: &DataKey,
    head: Option<String>,
    known: Option<&str>,
) -> Result<(Vec<ManifestDelta>, bool), ShardError> {
    let (chain, reached) = read_chain(objects, shard, key, head, known).await?;
    Ok((chain.into_iter().map(|(_, delta)| delta).collect(), reached || known.is_none()))
}

impl Shard {
    /// Opens a shard for serving on its committed manifest: re-submits what the staging log still holds,
    /// and starts the writer (packer and publisher).
    pub async fn open(params: ShardParams) -> Result<Shard, ShardError> {
        let keys = ShardKeys::new(&params.tenant, params.id);
        let manifest = params.manifest;
        let crate::staging::Opened { staging, pending, set_aside } =
            Staging::open(&params.local_dir.join("staging.log"))?;
        let shared = Arc::new(Shared {
            tenant: params.tenant.clone(),
            id: params.id,
            epoch: params.epoch,
            key: params.key.clone(),
            objects: params.objects.clone(),
            keys,
            manifest: RwLock::new(manifest),
            footers: Mutex::new(HashMap::new()),
            set_aside,
        });
        let (queue, rx) = mpsc::channel(64);
        let staging = Arc::new(Mutex::new(StagingLog { staging, in_flight: 0 }));
        let failures = Arc::new(AtomicU64::new(0));
        let packer = Packer {
            shared: shared.clone(),
            staging: staging.clone(),
            failures: failures.clone(),
            pending: Pending::default(),
            flush_bytes: params.flush_bytes.max(1),
            flush_delay: params.flush_delay,
            pack: params.pack,
        };
        let publisher = Publisher {
            shared: shared.clone(),
            catalog: params.catalog,
            index: Some(params.index),
            staging,
            failures,
        };
        // One packed group may wait while the publisher commits the previous one.
        let (stage_tx, stage_rx) = mpsc::channel(1);
        tokio::spawn(packer.run(rx, stage_tx));
        tokio::spawn(publisher.run(stage_rx));
        let shard = Shard { shared, queue };
        if !pending.is_empty() {
            tracing::info!(
                shard = params.id,
                messages = pending.len(),
                "flushing messages left in the staging log"
            );
            shard.archive(pending).await?;
        }
        Ok(shard)
    }

    /// What of the staging log could not be replayed when this shard was opened (kept beside the log).
    pub fn staging_set_aside(&self) -> Option<&SetAside> {
        self.shared.set_aside.as_ref()
    }

    /// This shard's id.
    pub fn id(&self) -> ShardId {
        self.shared.id
    }

    /// Archives `messages`; answers once they are durable (invariant 1) or with the reason they are not.
    pub async fn archive(&self, messages: Vec<Incoming>) -> Result<Vec<Outcome>, ShardError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Job::Archive(Submission { messages, reply }))
            .await
            .map_err(|_| ShardError::Closed(self.shared.id))?;
        let answer = rx.await.map_err(|_| ShardError::Closed(self.shared.id))?;
        answer.map_err(|reason| ShardError::Flush { shard: self.shared.id, reason })
    }

    /// A copy of the message listing entry `number`.
    pub fn entry(&self, number: u64) -> Option<Entry> {
        self.shared.manifest.read().unwrap_or_else(|p| p.into_inner()).entry(number).cloned()
    }

    /// Runs `f` on the current manifest.
    pub fn with_manifest<R>(&self, f: impl FnOnce(&Manifest) -> R) -> R {
        f(&self.shared.manifest.read().unwrap_or_else(|p| p.into_inner()))
    }

    async fn footer(&self, pack_key: &str) -> Result<Arc<PackFooter>, ShardError> {
        if let Some(f) = self.shared.footers.lock().unwrap_or_else(|p| p.into_inner()).get(pack_key) {
            return Ok(f.clone());
        }
        let pack_err =
            |source| ShardError::Pack { shard: self.shared.id, pack: pack_key.to_string(), source };
        let id: PackId =
            pack_key.rsplit('/').next().and_then(|s| s.parse().ok()).ok_or_else(|| ShardError::Manifest {
                shard: self.shared.id,
                key: pack_key.to_string(),
                reason: "the object key names no pack id".into(),
            })?;
        let size = self.shared.objects.size(pack_key).await?;
        let mut want = (crate::pack::TAIL_GUESS as u64).min(size);
        loop {
            let tail = self.shared.objects.get_range(pack_key, size - want..size).await?;
            match PackFooter::parse(id, &self.shared.key, &tail) {
                Ok(footer) => {
                    if footer.pack_len() != size {
                        return Err(pack_err(PackError::Trailer {
                            pack: id,
                            reason: format!(
                                "object is {size} bytes but its trailer says {}",
                                footer.pack_len()
                            ),
                        }));
                    }
                    let footer = Arc::new(footer);
                    self.shared
                        .footers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(pack_key.to_string(), footer.clone());
                    return Ok(footer);
                }
                Err(PackError::TailTooShort { needed, .. })
                    if (needed as u64) > want && (needed as u64) <= size =>
                {
                    want = needed as u64;
                }
                Err(e) => return Err(pack_err(e)),
            }
        }
    }

    /// Rebuilds the full-text index from the packs (every message re-read and re-parsed) and publishes it
    /// with a new manifest; answers the number of messages indexed.
    pub async fn rebuild_index(&self, parse: Parser) -> Result<u64, ShardError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Job::Rebuild { parse, reply })
            .await
            .map_err(|_| ShardError::Closed(self.shared.id))?;
        let answer = rx.await.map_err(|_| ShardError::Closed(self.shared.id))?;
        answer.map_err(|reason| ShardError::Index { shard: self.shared.id, reason })
    }

    /// Checks every pack the manifest names (each record's checksum and the footer), reporting missing
    /// or damaged packs with the messages they affect (invariant 4).
    pub async fn verify(&self, mut progress: impl FnMut(String)) -> ShardVerify {
        let (packs, entries) = self.with_manifest(|m| (m.packs.clone(), m.entries.clone()));
        let mut report = ShardVerify { packs: packs.len(), messages: entries.len(), damaged: Vec::new() };
        for (i, pack) in packs.iter().enumerate() {
            let in_pack = |records: Option<&[u64]>| -> Vec<u64> {
                entries
                    .iter()
                    .filter(|e| {
                        e.content.pack == pack.key && records.is_none_or(|r| r.contains(&e.content.record))
                    })
                    .map(|e| e.number)
                    .collect()
            };
            let id: Option<PackId> = pack.key.rsplit('/').next().and_then(|s| s.parse().ok());
            let damage = match (self.shared.objects.get(&pack.key).await, id) {
                (Err(e), _) => Some((format!("cannot read the pack: {e}"), in_pack(None))),
                (Ok(_), None) => Some(("the object key names no pack id".to_string(), in_pack(None))),
                (Ok(bytes), Some(id)) => match crate::pack::verify_pack(&self.shared.key, id, &bytes) {
                    Err(e) => Some((e.to_string(), in_pack(None))),
                    Ok(r) if r.is_intact() => None,
                    Ok(r) if r.whole_pack_affected() => Some((r.to_string(), in_pack(None))),
                    Ok(r) => Some((r.to_string(), in_pack(Some(&r.affected_messages())))),
                },
            };
            if let Some((reason, messages)) = damage {
                progress(format!("pack {} is damaged: {} messages affected", pack.key, messages.len()));
                report.damaged.push(DamagedPack { pack: pack.key.clone(), reason, messages });
            }
            progress(format!("  {} of {} packs verified...", i + 1, packs.len()));
        }
        report
    }

    /// The exact original bytes of message `number`, checked against its SHA-256 (invariant 4).
    pub async fn fetch(&self, number: u64) -> Result<Vec<u8>, ShardError> {
        let entry = self.entry(number).ok_or(ShardError::NoSuchMessage { shard: self.shared.id, number })?;
        let ContentRef { pack, record } = entry.content;
        let footer = self.footer(&pack).await?;
        let pack_err = |source| ShardError::Pack { shard: self.shared.id, pack: pack.clone(), source };
        let location = footer.locate(record).map_err(pack_err)?;
        let bytes = self.shared.objects.get_range(&pack, location.range.clone()).await?;
        read_message(&self.shared.key, &footer, &bytes, record).map_err(pack_err)
    }
}

/// The staging log and how many staged groups are not yet published: it is emptied only when none is.
struct StagingLog {
    staging: Staging,
    in_flight: usize,
}

type SharedStaging = Arc<Mutex<StagingLog>>;

fn lock_staging(s: &SharedStaging) -> std::sync::MutexGuard<'_, StagingLog> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A message's identity: (archive, SHA-256, direction).
type Identity = (u64, [u8; 32], crate::manifest::Direction);

/// Identities and contents of groups packed but not yet in the manifest, so that the next group dedupes
/// against them too.
#[derive(Default, Clone)]
struct Pending {
    identity: HashMap<Identity, u64>,
    content: HashMap<[u8; 32], ContentRef>,
    /// Per group: its highest new number and the identities it added, oldest first.
    groups: std::collections::VecDeque<(u64, Vec<Identity>)>,
    /// The next free number counting pending groups.
    next: u64,
    /// The publisher's failure count when these groups were packed.
    generation: u64,
}

impl Pending {
    /// Forgets groups the manifest now holds (numbers below `applied`), or everything after a failure.
    fn prune(&mut self, applied: u64, generation: u64) {
        if generation != self.generation {
            *self = Pending { generation, ..Pending::default() };
        }
        while self.groups.front().is_some_and(|(last, _)| *last < applied) {
            if let Some((_, keys)) = self.groups.pop_front() {
                for k in keys {
                    self.identity.remove(&k);
                    self.content.remove(&k.1);
                }
            }
        }
        self.next = self.next.max(applied);
    }
}

/// A group that is staged and packed, waiting for its index commit and manifest.
struct Prepared {
    generation: u64,
    replies: Vec<(Reply, usize)>,
    outcomes: Vec<Outcome>,
    packs: Vec<PackInfo>,
    entries: Vec<Entry>,
    docs: Vec<MessageDoc>,
}

/// Work for the publisher, in the order the packer made it.
enum Stage {
    Publish(Prepared),
    Rebuild { parse: Parser, reply: oneshot::Sender<Result<u64, String>> },
}

/// The first half of the writer: groups submissions, stages them (one fsync), dedupes and writes the
/// pack. It runs one group ahead of the [`Publisher`], so packing overlaps the index commit.
struct Packer {
    shared: Arc<Shared>,
    staging: SharedStaging,
    failures: Arc<AtomicU64>,
    pending: Pending,
    flush_bytes: usize,
    flush_delay: Duration,
    pack: PackConfig,
}

impl Packer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, publisher: mpsc::Sender<Stage>) {
        let mut held: Option<Job> = None;
        loop {
            // Start a group only when the publisher can take it: submissions arriving meanwhile join
            // the next group, so groups grow towards the flush size while the publisher is busy.
            let Ok(permit) = publisher.reserve().await else { return };
            let job = match held.take() {
                Some(j) => j,
                None => match rx.recv().await {
                    Some(j) => j,
                    None => return,
                },
            };
            let first = match job {
                Job::Rebuild { parse, reply } => {
                    permit.send(Stage::Rebuild { parse, reply });
                    continue;
                }
                Job::Archive(s) => s,
            };
            // Group commit: keep collecting while submissions keep arriving (a gap of 5 ms ends the
            // group), up to the size threshold or the maximum delay. While the publisher still works on
            // an earlier group, this group cannot be acknowledged sooner anyway: only the size and the
            // delay end it, so that it grows towards a full pack.
            let deadline = Instant::now() + self.flush_delay;
            let mut bytes: usize = first.messages.iter().map(|m| m.raw.len()).sum();
            let mut batch = vec![first];
            while bytes < self.flush_bytes {
                let publishing = lock_staging(&self.staging).in_flight > 0;
                let left = deadline.saturating_duration_since(Instant::now());
                let left = if publishing { left } else { left.min(GROUP_GAP) };
                match tokio::time::timeout(left, rx.recv()).await {
                    Ok(Some(Job::Archive(s))) => {
                        bytes += s.messages.iter().map(|m| m.raw.len()).sum::<usize>();
                        batch.push(s);
                    }
                    Ok(Some(other)) => {
                        held = Some(other);
                        break;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            let counts: Vec<usize> = batch.iter().map(|s| s.messages.len()).collect();
            match self.prepare(&mut batch).await {
                Ok(mut prepared) => {
                    prepared.replies = batch.into_iter().zip(counts).map(|(s, n)| (s.reply, n)).collect();
                    permit.send(Stage::Publish(prepared));
                }
                Err(e) => {
                    for s in batch {
                        let _ = s.reply.send(Err(e.to_string()));
                    }
                }
            }
        }
    }

    /// Stages, dedupes and packs one group; the messages' documents move into the result.
    async fn prepare(&mut self, batch: &mut [Submission]) -> Result<Prepared, ShardError> {
        let t0 = Instant::now();
        {
            let messages: Vec<&Incoming> = batch.iter().flat_map(|s| s.messages.iter()).collect();
            let mut log = lock_staging(&self.staging);
            log.staging.append(&messages)?;
            log.in_flight += 1;
        }
        let t_staging = t0.elapsed();
        let generation = self.failures.load(Ordering::SeqCst);
        let applied = self.shared.manifest.read().unwrap_or_else(|p| p.into_inner()).next_number();
        self.pending.prune(applied, generation);
        // A group that cannot be packed leaves no trace: later groups must not dedupe against it.
        let before = self.pending.clone();
        let result = self.pack_group(batch, generation).await;
        match &result {
            Ok(p) => tracing::debug!(
                shard = self.shared.id,
                messages = p.outcomes.len(),
                staging = ?t_staging,
                pack = ?(t0.elapsed() - t_staging),
                "packed"
            ),
            Err(_) => {
                self.pending = before;
                let mut log = lock_staging(&self.staging);
                log.in_flight = log.in_flight.saturating_sub(1);
            }
        }
        result
    }

    /// Dedupes one staged group against the manifest and the pending groups and writes its pack.
    async fn pack_group(
        &mut self,
        batch: &mut [Submission],
        generation: u64,
    ) -> Result<Prepared, ShardError> {
        let shard = self.shared.id;
        let pack_id = PackId::random();
        let pack_key = self.shared.keys.pack(&pack_id.to_string());
        let mut writer = PackWriter::new(&self.shared.key, pack_id, self.pack)
            .map_err(|source| ShardError::Pack { shard, pack: pack_key.clone(), source })?;
        let archived_at = now_unix();
        let mut outcomes = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        let mut docs: Vec<MessageDoc> = Vec::new();
        let mut added = Vec::new();
        {
            let manifest = self.shared.manifest.read().unwrap_or_else(|p| p.into_inner());
            for m in batch.iter_mut().flat_map(|s| s.messages.iter_mut()) {
                let sha: [u8; 32] = Sha256::digest(&m.raw).into();
                let identity = (m.archive, sha, m.direction);
                if let Some(n) = manifest.find_identity(m.archive, &sha, m.direction).or(self
                    .pending
                    .identity
                    .get(&identity)
                    .copied())
                {
                    outcomes.push(Outcome::AlreadyPresent(n));
                    continue;
                }
                let number = self.pending.next;
                self.pending.next += 1;
                let content =
                    match manifest.find_content(&sha).or(self.pending.content.get(&sha)) {
                        Some(c) => c.clone(),
                        None => {
                            let meta = serde_json::to_vec(&(m.archive, &m.folder, m.direction, archived_at))
                                .map_err(|e| ShardError::Index { shard, reason: e.to_string() })?;
                            writer.push_with_meta(number, &m.raw, &meta).map_err(|source| {
                                ShardError::Pack { shard, pack: pack_key.clone(), source }
                            })?;
                            let c = ContentRef { pack: pack_key.clone(), record: number };
                            self.pending.content.insert(sha, c.clone());
                            c
                        }
                    };
                self.pending.identity.insert(identity, number);
                added.push(identity);
                entries.push(Entry {
                    number,
                    archive: m.archive,
                    folder: m.folder.clone(),
                    direction: m.direction,
                    sha256: sha,
                    size: m.raw.len() as u64,
                    archived_at,
                    content,
                });
                docs.push(std::mem::take(&mut m.doc));
                outcomes.push(Outcome::Archived(number));
            }
        }
        if let Some(last) = entries.last() {
            self.pending.groups.push_back((last.number, added));
        }
        let mut packs = Vec::new();
        if writer.message_count() > 0 {
            let records = writer.message_count() as u64;
            let sealed = writer.finish().map_err(|source| ShardError::Pack {
                shard,
                pack: pack_key.clone(),
                source,
            })?;
            let bytes = sealed.bytes.len() as u64;
            self.shared.objects.put(&pack_key, sealed.bytes).await?;
            packs.push(PackInfo { key: pack_key, bytes, records });
        }
        Ok(Prepared { generation, replies: Vec::new(), outcomes, packs, entries, docs })
    }
}

/// The second half of the writer, which owns the index: indexes a packed group, commits the index,
/// uploads its new files as one bundle, commits the manifest delta (fenced by epoch), and only then
/// acknowledges the group's messages (invariant 1).
struct Publisher {
    shared: Arc<Shared>,
    catalog: Arc<dyn Catalog>,
    index: Option<Box<dyn IndexSink>>,
    staging: SharedStaging,
    failures: Arc<AtomicU64>,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<Stage>) {
        while let Some(stage) = rx.recv().await {
            match stage {
                Stage::Rebuild { parse, reply } => {
                    let answer = self.rebuild(parse).await.map_err(|e| e.to_string());
                    let _ = reply.send(answer);
                }
                Stage::Publish(p) => {
                    let t0 = Instant::now();
                    let result = if p.generation != self.failures.load(Ordering::SeqCst) {
                        Err("an earlier flush of this store failed; nothing of this group was stored, \
                             send it again"
                            .to_string())
                    } else {
                        self.publish_group(p.packs, p.entries, p.docs).await.map_err(|e| {
                            self.failures.fetch_add(1, Ordering::SeqCst);
                            e.to_string()
                        })
                    };
                    {
                        let mut log = lock_staging(&self.staging);
                        log.in_flight = log.in_flight.saturating_sub(1);
                        if log.in_flight == 0
                            && let Err(e) = log.staging.clear()
                        {
                            tracing::warn!(shard = self.shared.id, "{e}");
                        }
                    }
                    tracing::debug!(shard = self.shared.id, publish = ?t0.elapsed(), "published");
                    let mut offset = 0;
                    for (reply, n) in p.replies {
                        let answer = match &result {
                            Ok(()) => Ok(p.outcomes[offset..offset + n].to_vec()),
                            Err(e) => Err(e.clone()),
                        };
                        offset += n;
                        let _ = reply.send(answer);
                    }
                }
            }
        }
    }

    /// Runs `f` on the index sink on a blocking thread (tantivy commits take seconds).
    async fn with_index<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Box<dyn IndexSink>) -> Result<R, String> + Send + 'static,
    ) -> Result<R, ShardError> {
        let shard = self.shared.id;
        let mut index = self
            .index
            .take()
            .ok_or(ShardError::Index { shard, reason: "the index writer was lost".into() })?;
        let (index, result) = tokio::task::spawn_blocking(move || {
            let r = f(&mut index);
            (index, r)
        })
        .await
        .map_err(|e| ShardError::Index { shard, reason: format!("index task failed: {e}") })?;
        self.index = Some(index);
        result.map_err(|reason| ShardError::Index { shard, reason })
    }

    async fn publish_group(
        &mut self,
        packs: Vec<PackInfo>,
        entries: Vec<Entry>,
        docs: Vec<MessageDoc>,
    ) -> Result<(), ShardError> {
        if entries.is_empty() {
            return Ok(());
        }
        let batch = entries.clone();
        self.with_index(move |index| {
            for (entry, doc) in batch.iter().zip(&docs) {
                index.add(entry, doc)?;
            }
            Ok(())
        })
        .await?;
        self.publish(packs, entries).await
    }

    /// Commits the index, uploads its new files as one bundle, writes the manifest delta naming `packs`
    /// and `entries` and the index, commits it through the catalogue (fenced by epoch), and applies it
    /// locally.
    async fn publish(&mut self, packs: Vec<PackInfo>, entries: Vec<Entry>) -> Result<(), ShardError> {
        let shard = self.shared.id;
        let (sequence, head, known) = {
            let m = self.shared.manifest.read().unwrap_or_else(|p| p.into_inner());
            (m.sequence + 1, m.head.clone(), m.index_files.clone())
        };
        let files = self.with_index(|index| index.commit()).await?;
        let index_err = |e: IndexFilesError| ShardError::Index { shard, reason: e.to_string() };
        let bundle = self.shared.keys.index_file(&PackId::random().to_string());
        let mut builder = BundleBuilder::default();
        let mut index_files = Vec::new();
        let mut index_meta = None;
        let kept = |name: &str, size: u64| known.iter().find(|f| f.name == name && f.size == size);
        // A bundle whose files merges have mostly replaced is repacked: its live files go into this
        // commit's bundle (no extra PUT), and the old bundle becomes unreferenced and is deleted.
        let mut live_bytes: HashMap<&str, u64> = HashMap::new();
        for (name, _, size) in &files {
            if let Some(f) = kept(name, *size) {
                *live_bytes.entry(f.bundle.as_str()).or_default() += f.size;
            }
        }
        let repack =
            |f: &IndexFile| live_bytes.get(f.bundle.as_str()).is_some_and(|&l| 2 * l < f.bundle_bytes);
        for (name, path, size) in &files {
            if name == "meta.json" {
                let text = std::fs::read_to_string(path).map_err(|e| ShardError::Index {
                    shard,
                    reason: format!("cannot read index file {}: {e}", path.display()),
                })?;
                index_meta = Some(text);
            } else if let Some(f) = kept(name, *size).filter(|f| !repack(f)) {
                index_files.push(f.clone());
            } else {
                builder.add(name, path, &bundle).map_err(index_err)?;
            }
        }
        if !builder.is_empty() {
            index_files.extend(
                builder.upload(&self.shared.objects, &self.shared.key, &bundle).await.map_err(
                    |e| match e {
                        IndexFilesError::Object(o) => ShardError::Object(o),
                        other => index_err(other),
                    },
                )?,
            );
        }
        let delta = ManifestDelta {
            epoch: self.shared.epoch,
            sequence,
            previous: head,
            packs,
            entries,
            index_files,
            index_meta,
        };
        let key = self.shared.keys.manifest(self.shared.epoch, sequence);
        let sealed = if sequence % MANIFEST_COMPACTION_EVERY == 0 {
            let m = self.shared.manifest.read().unwrap_or_else(|p| p.into_inner());
            let snapshot = Snapshot {
                epoch: delta.epoch,
                sequence,
                previous: None,
                packs: Joined(&m.packs, &delta.packs),
                entries: Joined(&m.entries, &delta.entries),
                index_files: &delta.index_files,
                index_meta: &delta.index_meta,
            };
            seal_manifest(&self.shared.key, &key, &snapshot)
        } else {
            seal_manifest(&self.shared.key, &key, &delta)
        }
        .map_err(|reason| ShardError::Manifest { shard, key: key.clone(), reason })?;
        self.shared.objects.put(&key, sealed).await?;
        let counters = {
            let m = self.shared.manifest.read().unwrap_or_else(|p| p.into_inner());
            let (count, bytes) = m.counters();
            (count + delta.entries.len() as u64, bytes + delta.entries.iter().map(|e| e.size).sum::<u64>())
        };
        self.catalog
            .commit_manifest(shard, self.shared.epoch, sequence, key.clone(), counters)
            .await
            .map_err(|reason| ShardError::Commit { shard, reason })?;
        let mut unreferenced = crate::index_files::unreferenced(&known, &delta.index_files);
        {
            let mut m = self.shared.manifest.write().unwrap_or_else(|p| p.into_inner());
            if sequence % MANIFEST_COMPACTION_EVERY == 0 {
                // The compaction replaces the deltas before it.
                unreferenced.extend(std::mem::take(&mut m.chain));
            }
            m.apply(key, delta);
        }
        // Bundles whose files segment merges replaced, and deltas a compaction replaced, are referenced by
        // no committed manifest any more: delete them after a grace period (a new manifest first, then a
        // delayed delete).
        if !unreferenced.is_empty() {
            let objects = self.shared.objects.clone();
            tokio::spawn(async move {
                tokio::time::sleep(GC_DELAY).await;
                for object in unreferenced {
                    if let Err(e) = objects.delete(&object).await {
                        tracing::debug!("deleting unreferenced object {object}: {e}");
                    }
                }
            });
        }
        Ok(())
    }

    /// Re-indexes every message from the packs, then publishes the new index files.
    async fn rebuild(&mut self, parse: Parser) -> Result<u64, ShardError> {
        let reader = Shard { shared: self.shared.clone(), queue: mpsc::channel(1).0 };
        let entries = self.shared.manifest.read().unwrap_or_else(|p| p.into_inner()).entries.clone();
        self.with_index(|index| index.reset()).await?;
        let parse = Arc::new(parse);
        for chunk in entries.chunks(256) {
            let mut raws = Vec::with_capacity(chunk.len());
            for entry in chunk {
                raws.push(reader.fetch(entry.number).await?);
            }
            let chunk = chunk.to_vec();
            let parse = parse.clone();
            self.with_index(move |index| {
                for (entry, raw) in chunk.iter().zip(&raws) {
                    index.add(entry, &parse(raw))?;
                }
                Ok(())
            })
            .await?;
        }
        self.publish(Vec::new(), Vec::new()).await?;
        tracing::info!(shard = self.shared.id, messages = entries.len(), "rebuilt the index from the packs");
        Ok(entries.len() as u64)
    }
}

/// The current time as Unix seconds (archive dates).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Direction;

    /// A catalogue holding one shard's manifest pointer and epoch in memory, fencing like Raft does.
    #[derive(Default)]
    struct MemoryCatalog {
        state: Mutex<(u64, u64, Option<String>)>,
        /// Each commit takes this long (milliseconds), so that the next group is packed meanwhile.
        delay_ms: AtomicU64,
        /// The next commit fails, as a lost connection to the metadata cluster would.
        fail_next: std::sync::atomic::AtomicBool,
    }

    impl Catalog for MemoryCatalog {
        fn commit_manifest(
            &self,
            _shard: ShardId,
            epoch: u64,
            sequence: u64,
            key: String,
            _counters: (u64, u64),
        ) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))).await;
                if self.fail_next.swap(false, Ordering::SeqCst) {
                    return Err("the metadata cluster is unreachable".into());
                }
                let mut s = self.state.lock().expect("lock");
                if epoch != s.0 || sequence != s.1 + 1 {
                    return Err(format!("stale epoch {epoch} or sequence {sequence}"));
                }
                s.1 = sequence;
                s.2 = Some(key);
                Ok(())
            })
        }
    }

    /// Counts documents; commits write one file so that index upload is exercised.
    struct CountingIndex {
        dir: PathBuf,
        docs: usize,
    }

    impl IndexSink for CountingIndex {
        fn add(&mut self, _entry: &Entry, _doc: &MessageDoc) -> Result<(), String> {
            self.docs += 1;
            Ok(())
        }
        fn reset(&mut self) -> Result<(), String> {
            self.docs = 0;
            Ok(())
        }
        fn commit(&mut self) -> Result<Vec<(String, PathBuf, u64)>, String> {
            let path = self.dir.join("count");
            std::fs::write(&path, self.docs.to_string()).map_err(|e| e.to_string())?;
            Ok(vec![("count".into(), path, self.docs.to_string().len() as u64)])
        }
    }

    /// An index whose commits leave the files a script names, as (name, size), one list per commit.
    struct ScriptedIndex {
        dir: PathBuf,
        commits: std::collections::VecDeque<Vec<(&'static str, usize)>>,
    }

    impl IndexSink for ScriptedIndex {
        fn add(&mut self, _entry: &Entry, _doc: &MessageDoc) -> Result<(), String> {
            Ok(())
        }
        fn reset(&mut self) -> Result<(), String> {
            Ok(())
        }
        fn commit(&mut self) -> Result<Vec<(String, PathBuf, u64)>, String> {
            let files = self.commits.pop_front().ok_or("no more commits scripted")?;
            let mut out = Vec::new();
            for (name, size) in files {
                let path = self.dir.join(name);
                if std::fs::metadata(&path).map(|m| m.len() as usize).ok() != Some(size) {
                    std::fs::write(&path, vec![b'x'; size]).map_err(|e| e.to_string())?;
                }
                out.push((name.to_string(), path, size as u64));
            }
            Ok(out)
        }
    }

    #[tokio::test]
    async fn a_bundle_that_merges_mostly_replaced_is_repacked_into_the_next_commits_bundle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        let mut p = params(dir.path(), catalog, DataKey::generate(), 1).await;
        std::fs::create_dir_all(dir.path().join("idx")).expect("dir");
        p.index = Box::new(ScriptedIndex {
            dir: dir.path().join("idx"),
            commits: [
                vec![("a", 10), ("b", 90)],
                vec![("a", 10), ("b", 90), ("c", 50)],
                vec![("a", 10), ("d", 140)],
            ]
            .into(),
        });
        let shard = Shard::open(p).await.expect("open");
        let bundle_of = |name: &str| {
            shard.with_manifest(|m| m.index_files.iter().find(|f| f.name == name).map(|f| f.bundle.clone()))
        };
        for (i, raw) in [&b"one"[..], b"two", b"three"].into_iter().enumerate() {
            shard.archive(vec![incoming(raw, 1, "Inbox")]).await.expect("archive");
            if i == 0 {
                assert_eq!(bundle_of("a"), bundle_of("b"));
            }
            if i == 1 {
                assert_ne!(bundle_of("a"), bundle_of("c"), "a bundle fully live stays");
            }
        }
        assert_eq!(bundle_of("a"), bundle_of("d"), "a (10 of 100 bytes live) moved into the new bundle");
        let restored = dir.path().join("restored");
        let files = shard.with_manifest(|m| m.index_files.clone());
        crate::index_files::restore(&shard.shared.objects, &shard.shared.key, &files, &restored)
            .await
            .expect("restore");
        assert_eq!(std::fs::read(restored.join("a")).expect("a"), vec![b'x'; 10]);
        assert_eq!(std::fs::read(restored.join("d")).expect("d").len(), 140);
    }

    async fn params(
        dir: &std::path::Path,
        catalog: Arc<MemoryCatalog>,
        key: DataKey,
        epoch: u64,
    ) -> ShardParams {
        let head = catalog.state.lock().expect("lock").2.clone();
        let objects = Objects::local(&dir.join("objects")).expect("objects");
        let manifest = load_manifest(&objects, 7, &key, head).await.expect("manifest");
        ShardParams {
            tenant: "default".into(),
            id: 7,
            epoch,
            key,
            objects,
            catalog,
            index: Box::new(CountingIndex { dir: dir.to_path_buf(), docs: 0 }),
            manifest,
            local_dir: dir.join("local"),
            flush_bytes: DEFAULT_FLUSH_BYTES,
            flush_delay: Duration::from_millis(20),
            pack: PackConfig::default(),
        }
    }

    fn incoming(raw: &[u8], archive: u64, folder: &str) -> Incoming {
        Incoming {
            raw: raw.to_vec(),
            doc: MessageDoc::empty(raw.len() as u64),
            archive,
            folder: folder.into(),
            direction: Direction::Received,
        }
    }

    #[tokio::test]
    async fn archived_messages_come_back_byte_exact_once_each_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        let key = DataKey::generate();
        let shard =
            Shard::open(params(dir.path(), catalog.clone(), key.clone(), 1).await).await.expect("open");
        let a = b"Subject: a\r\n\r\nbody a\r\n".to_vec();
        let b = b"Subject: b\n\nno final newline".to_vec();
        let out = shard
            .archive(vec![incoming(&a, 1, "Inbox"), incoming(&b, 1, "Inbox"), incoming(&a, 1, "Sent")])
            .await
            .expect("archive");
        assert_eq!(out, vec![Outcome::Archived(1), Outcome::Archived(2), Outcome::AlreadyPresent(1)]);
        let again =
            shard.archive(vec![incoming(&a, 1, "Other"), incoming(&a, 2, "Inbox")]).await.expect("archive");
        assert_eq!(
            again,
            vec![Outcome::AlreadyPresent(1), Outcome::Archived(3)],
            "same content, other archive"
        );
        assert_eq!(
            shard.entry(3).expect("entry").content,
            shard.entry(1).expect("entry").content,
            "stored once"
        );
        assert_eq!(shard.fetch(1).await.expect("fetch"), a);
        assert_eq!(shard.fetch(2).await.expect("fetch"), b);

        let reopened =
            Shard::open(params(dir.path(), catalog.clone(), key.clone(), 1).await).await.expect("reopen");
        assert_eq!(reopened.fetch(3).await.expect("fetch"), a);
        assert_eq!(reopened.with_manifest(|m| m.counters().0), 3);
        let gets = reopened.shared.objects.counters.gets.load(std::sync::atomic::Ordering::Relaxed);
        reopened.fetch(2).await.expect("fetch");
        let per_fetch =
            reopened.shared.objects.counters.gets.load(std::sync::atomic::Ordering::Relaxed) - gets;
        assert_eq!(per_fetch, 1, "a message of a pack whose footer is cached costs one ranged GET");
    }

    /// Submits `messages` from a task of its own, so that several groups are in the writer at once.
    fn submit(
        shard: &Shard,
        messages: Vec<Incoming>,
    ) -> tokio::task::JoinHandle<Result<Vec<Outcome>, ShardError>> {
        let shard = shard.clone();
        tokio::spawn(async move { shard.archive(messages).await })
    }

    #[tokio::test]
    async fn a_group_packed_while_the_previous_one_publishes_dedupes_against_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        catalog.delay_ms.store(300, Ordering::SeqCst);
        let shard = Shard::open(params(dir.path(), catalog.clone(), DataKey::generate(), 1).await)
            .await
            .expect("open");
        let first = submit(&shard, vec![incoming(b"same", 1, "Inbox")]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = submit(&shard, vec![incoming(b"same", 1, "Other"), incoming(b"new", 1, "Inbox")]);
        assert_eq!(first.await.expect("join").expect("first"), vec![Outcome::Archived(1)]);
        assert_eq!(
            second.await.expect("join").expect("second"),
            vec![Outcome::AlreadyPresent(1), Outcome::Archived(2)],
            "the pending group's message is not archived twice"
        );
        assert_eq!(shard.with_manifest(|m| m.counters().0), 2);
        assert_eq!(shard.with_manifest(|m| m.packs.len()), 2, "two groups, two packs");
    }

    #[tokio::test]
    async fn a_failed_publish_fails_the_group_packed_behind_it_and_the_writer_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        catalog.delay_ms.store(300, Ordering::SeqCst);
        catalog.fail_next.store(true, Ordering::SeqCst);
        let shard = Shard::open(params(dir.path(), catalog.clone(), DataKey::generate(), 1).await)
            .await
            .expect("open");
        let first = submit(&shard, vec![incoming(b"a", 1, "Inbox")]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = submit(&shard, vec![incoming(b"a", 1, "Inbox"), incoming(b"b", 1, "Inbox")]);
        let err = first.await.expect("join").expect_err("the commit failed");
        assert!(err.to_string().contains("unreachable"), "{err}");
        let err = second.await.expect("join").expect_err("packed on top of a failed group");
        assert!(err.to_string().contains("earlier flush"), "{err}");
        assert_eq!(catalog.state.lock().expect("lock").2, None, "nothing was published");

        catalog.delay_ms.store(0, Ordering::SeqCst);
        let again = shard.archive(vec![incoming(b"a", 1, "Inbox"), incoming(b"b", 1, "Inbox")]).await;
        assert_eq!(again.expect("retry"), vec![Outcome::Archived(1), Outcome::Archived(2)]);
        assert_eq!(shard.fetch(1).await.expect("fetch"), b"a");
        assert_eq!(shard.fetch(2).await.expect("fetch"), b"b");
    }

    #[tokio::test]
    async fn a_compacted_manifest_reopens_from_few_objects_with_every_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        let key = DataKey::generate();
        let shard =
            Shard::open(params(dir.path(), catalog.clone(), key.clone(), 1).await).await.expect("open");
        let flushes = MANIFEST_COMPACTION_EVERY + 3;
        for i in 0..flushes {
            let raw = format!("Subject: {i}\n\nmessage {i}\n");
            shard.archive(vec![incoming(raw.as_bytes(), 1 + i % 2, "Inbox")]).await.expect("archive");
        }
        assert_eq!(shard.with_manifest(|m| m.sequence), flushes);
        drop(shard);

        let p = params(dir.path(), catalog.clone(), key.clone(), 1).await;
        let objects = p.objects.clone();
        let reopened = Shard::open(p).await.expect("reopen");
        let gets = objects.counters.gets.load(Ordering::Relaxed);
        assert_eq!(gets, 4, "the last three deltas and the compaction, not {flushes} objects");
        assert_eq!(reopened.with_manifest(|m| (m.counters().0, m.packs.len() as u64)), (flushes, flushes));
        for n in [1, MANIFEST_COMPACTION_EVERY, flushes] {
            let raw = reopened.fetch(n).await.expect("fetch");
            assert_eq!(raw, format!("Subject: {}\n\nmessage {}\n", n - 1, n - 1).into_bytes());
        }
        let again = reopened.archive(vec![incoming(b"Subject: 0\n\nmessage 0\n", 1, "Other")]).await;
        assert_eq!(
            again.expect("archive"),
            vec![Outcome::AlreadyPresent(1)],
            "identities survive compaction"
        );
        assert_eq!(reopened.with_manifest(|m| m.chain.len()), 4, "the compaction and three deltas after it");
    }

    #[tokio::test(start_paused = true)]
    async fn deltas_a_compaction_replaced_are_deleted_after_the_grace_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        let shard =
            Shard::open(params(dir.path(), catalog, DataKey::generate(), 1).await).await.expect("open");
        for i in 0..MANIFEST_COMPACTION_EVERY {
            shard.archive(vec![incoming(format!("m{i}").as_bytes(), 1, "Inbox")]).await.expect("archive");
        }
        let manifests = dir.path().join("objects/tenants/default/shards/7/manifest");
        let count = || std::fs::read_dir(&manifests).map(|d| d.count()).unwrap_or(0);
        assert_eq!(count(), MANIFEST_COMPACTION_EVERY as usize, "kept through the grace period");
        tokio::time::sleep(GC_DELAY + Duration::from_secs(1)).await;
        assert_eq!(count(), 1, "only the compaction is left");
        assert_eq!(shard.fetch(1).await.expect("fetch"), b"m0");
    }

    #[tokio::test]
    async fn a_group_whose_pack_cannot_be_written_leaves_no_trace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        let shard =
            Shard::open(params(dir.path(), catalog, DataKey::generate(), 1).await).await.expect("open");
        let packs = dir.path().join("objects/tenants/default/shards/7/packs");
        std::fs::create_dir_all(packs.parent().expect("parent")).expect("dirs");
        std::fs::write(&packs, b"in the way").expect("block the pack directory");
        shard.archive(vec![incoming(b"a", 1, "Inbox")]).await.expect_err("the pack cannot be written");

        std::fs::remove_file(&packs).expect("unblock");
        let out = shard.archive(vec![incoming(b"a", 1, "Inbox"), incoming(b"b", 1, "Inbox")]).await;
        assert_eq!(out.expect("archive"), vec![Outcome::Archived(1), Outcome::Archived(2)]);
        assert_eq!(shard.fetch(1).await.expect("fetch"), b"a");
        let staging = std::fs::metadata(dir.path().join("local/staging.log")).expect("staging").len();
        assert_eq!(staging, 0, "the staging log is emptied once nothing is in flight");
    }

    #[tokio::test]
    async fn a_writer_with_a_stale_epoch_cannot_publish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 2;
        let shard = Shard::open(params(dir.path(), catalog.clone(), DataKey::generate(), 1).await)
            .await
            .expect("open");
        let err = shard.archive(vec![incoming(b"x", 1, "Inbox")]).await.expect_err("fenced");
        assert!(err.to_string().contains("stale"), "{err}");
        assert_eq!(catalog.state.lock().expect("lock").2, None, "nothing was published");
    }

    #[tokio::test]
    async fn messages_left_in_the_staging_log_are_flushed_when_the_shard_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        let mut staging = Staging::open(&dir.path().join("local/staging.log")).expect("staging").staging;
        staging.append(&[&incoming(b"left behind", 1, "Inbox")]).expect("append");
        drop(staging);
        let shard =
            Shard::open(params(dir.path(), catalog, DataKey::generate(), 1).await).await.expect("open");
        assert_eq!(shard.fetch(1).await.expect("fetch"), b"left behind");
    }

    #[tokio::test]
    async fn verify_names_the_messages_of_a_damaged_or_missing_pack_and_rebuild_reindexes_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(MemoryCatalog::default());
        catalog.state.lock().expect("lock").0 = 1;
        let shard = Shard::open(params(dir.path(), catalog.clone(), DataKey::generate(), 1).await)
            .await
            .expect("open");
        shard.archive(vec![incoming(b"one", 1, "A"), incoming(b"two", 1, "A")]).await.expect("first pack");
        shard.archive(vec![incoming(b"three", 1, "A")]).await.expect("second pack");
        assert!(shard.verify(|_| {}).await.damaged.is_empty());
        let packs = shard.with_manifest(|m| m.packs.clone());
        assert_eq!(packs.len(), 2);

        let first = dir.path().join("objects").join(&packs[0].key);
        let mut bytes = std::fs::read(&first).expect("pack file");
        bytes[30] ^= 0x01;
        std::fs::write(&first, &bytes).expect("write");
        let second = dir.path().join("objects").join(&packs[1].key);
        std::fs::remove_file(&second).expect("remove");
        let report = shard.verify(|_| {}).await;
        let damaged: Vec<(String, Vec<u64>)> =
            report.damaged.iter().map(|d| (d.pack.clone(), d.messages.clone())).collect();
        assert_eq!(
            damaged,
            vec![(packs[0].key.clone(), vec![1, 2]), (packs[1].key.clone(), vec![3])],
            "{report:?}"
        );
        assert!(shard.fetch(1).await.is_err(), "damaged bytes are never served");

        std::fs::write(&first, {
            bytes[30] ^= 0x01;
            &bytes
        })
        .expect("repair");
        let err = shard.rebuild_index(Box::new(|raw| MessageDoc::empty(raw.len() as u64))).await;
        assert!(err.is_err(), "a rebuild cannot read the missing pack and says so");
    }

    #[tokio::test]
    async fn a_torn_or_damaged_staging_log_never_keeps_the_store_from_serving_committed_mail() {
        for damage in ["torn", "damaged"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let catalog = Arc::new(MemoryCatalog::default());
            catalog.state.lock().expect("lock").0 = 1;
            let key = DataKey::generate();
            let shard =
                Shard::open(params(dir.path(), catalog.clone(), key.clone(), 1).await).await.expect("open");
            shard.archive(vec![incoming(b"committed", 1, "Inbox")]).await.expect("archive");
            drop(shard);
            // A crash left two staged groups: the first replayable, the second torn or damaged.
            let path = dir.path().join("local/staging.log");
            let mut staging = Staging::open(&path).expect("staging").staging;
            staging.append(&[&incoming(b"staged", 1, "Inbox")]).expect("append");
            let offset = std::fs::metadata(&path).expect("len").len();
            staging.append(&[&incoming(b"lost in the crash", 1, "Inbox")]).expect("append");
            drop(staging);
            let mut bytes = std::fs::read(&path).expect("read");
            match damage {
                "torn" => bytes.truncate(bytes.len() - 5),
                _ => bytes[offset as usize + 20] ^= 0x10,
            }
            std::fs::write(&path, &bytes).expect("write");

            catalog.state.lock().expect("lock").0 = 2;
            let shard =
                Shard::open(params(dir.path(), catalog.clone(), key.clone(), 2).await).await.unwrap_or_else(
                    |e| panic!("a {damage} staging log must not keep the store from opening: {e}"),
                );
            assert_eq!(shard.fetch(1).await.expect("committed"), b"committed", "{damage}");
            assert_eq!(shard.fetch(2).await.expect("replayed"), b"staged", "{damage}");
            assert!(shard.fetch(3).await.is_err(), "{damage}: the unreplayable group is not invented");
            let aside = shard.staging_set_aside().expect("reported").clone();
            assert_eq!(aside.offset, offset, "{damage}: {aside:?}");
            assert_eq!(
                std::fs::read(&aside.file).expect("kept for the operator"),
                bytes[offset as usize..].to_vec()
            );
        }
    }
}
