//! Exactly once across every store of a tenant (invariant 3): before a batch goes to the current shard's
//! writer, its messages are looked up in the tenant's other shards. The node serving the current shard
//! keeps one table of 8-byte identity fingerprints of all of the tenant's other shards
//! (`arca_shard::identities`), built from their manifests in object storage and brought up to date from
//! the manifest heads Raft holds (only the deltas added since are read). A fingerprint hit is confirmed
//! against the holding shard's manifest: the served one when this node serves it, else a read-only copy
//! loaded from object storage and kept in a cache bounded by `storage.identity_cache_entries`.
//!
//! Correctness with late writes: Raft refuses a manifest commit that adds messages to a store that is
//! not current, and the writer serves a batch only while the catalogue it has applied names its shard
//! current. So once the writer of the current store sees its store current, every other store's head in
//! that catalogue is final, and the table read from those heads holds every identity they will ever hold.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arca_shard::identities::IdentityTable;
use arca_shard::manifest::{Direction, Manifest};
use arca_types::values::ShardState;
use arca_types::{ArchiveId, ShardId};
use sha2::{Digest, Sha256};

use crate::archive::{ArchiveError, ArchiveService};

/// The identity table of one tenant's other shards, and the manifest head each was read up to.
#[derive(Default)]
pub(crate) struct TenantTable {
    table: IdentityTable,
    heads: HashMap<ShardId, String>,
}

/// Read-only manifests of shards this node does not serve, for confirming fingerprint hits.
#[derive(Default)]
pub(crate) struct ExactCache {
    manifests: HashMap<ShardId, (String, Arc<Manifest>)>,
    /// Least recently loaded first.
    order: VecDeque<ShardId>,
    entries: usize,
}

/// The cross-store identity state of a node.
pub(crate) struct OlderShards {
    tenants: tokio::sync::Mutex<HashMap<String, TenantTable>>,
    exact: std::sync::Mutex<ExactCache>,
    /// At most this many manifest entries are kept in `exact` (a manifest larger than that is still
    /// used for the batch that loaded it).
    exact_limit: usize,
}

impl OlderShards {
    /// Empty state; `exact_limit` bounds the cached read-only manifests (entries).
    pub(crate) fn new(exact_limit: usize) -> OlderShards {
        OlderShards {
            tenants: tokio::sync::Mutex::new(HashMap::new()),
            exact: std::sync::Mutex::new(ExactCache::default()),
            exact_limit,
        }
    }
}

/// A shard of the tenant other than the current one, as the catalogue names it.
struct Other {
    id: ShardId,
    head: String,
    wrapped_key: Option<String>,
}

/// One message to look up: archive, bytes, direction.
pub(crate) type Wanted<'a> = (ArchiveId, &'a [u8], Direction);

impl ArchiveService {
    /// For each message, the (shard, number) under which another shard of `tenant` than `current`
    /// already holds it in the same archive and direction. Costs nothing when the tenant has no other
    /// shard with messages; else one SHA-256 and one table probe per message, and a manifest lookup
    /// per hit.
    pub(crate) async fn find_in_other_shards(
        &self,
        tenant: &str,
        current: ShardId,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<(ShardId, u64)>>, ArchiveError> {
        let others: Vec<Other> = self.meta.with_state(|s| {
            s.tenant(tenant)
                .map(|t| {
                    t.shards
                        .values()
                        .filter(|sh| sh.id != current && sh.state != ShardState::Disabled)
                        .filter_map(|sh| {
                            sh.manifest.clone().map(|head| Other {
                                id: sh.id,
                                head,
                                wrapped_key: sh.wrapped_key.clone(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        let mut out = vec![None; wanted.len()];
        // Hashed before taking the table, so that concurrent batches wait only for lookups.
        let hashes: Vec<[u8; 32]> = if others.is_empty() {
            Vec::new()
        } else {
            wanted.iter().map(|(_, raw, _)| Sha256::digest(raw).into()).collect()
        };
        let mut tenants = self.older.tenants.lock().await;
        let table = tenants.entry(tenant.to_string()).or_default();
        table.heads.retain(|id, _| {
            let keep = others.iter().any(|o| o.id == *id);
            if !keep {
                // It became current again (its own writer dedupes it) or left the catalogue.
                table.table.remove_shard(*id);
            }
            keep
        });
        if others.is_empty() {
            return Ok(out);
        }
        for other in &others {
            let known = table.heads.get(&other.id);
            if known == Some(&other.head) {
                continue;
            }
            let key = self.shard_data_key(tenant, other.id, other.wrapped_key.as_deref()).await?;
            let (deltas, reached) = arca_shard::shard::load_deltas_since(
                &self.objects,
                other.id,
                &key,
                Some(other.head.clone()),
                known.map(String::as_str),
            )
            .await?;
            if !reached {
                // A compaction replaced what was read before: the deltas hold the whole manifest.
                table.table.remove_shard(other.id);
            }
            table.table.extend(other.id, deltas.iter().flat_map(|d| d.entries.iter()));
            table.heads.insert(other.id, other.head.clone());
        }
        if table.table.is_empty() {
            return Ok(out);
        }
        for (slot, ((archive, _, direction), sha)) in wanted.iter().zip(&hashes).enumerate() {
            for shard in table.table.candidates(*archive, sha, *direction) {
                let Some(other) = others.iter().find(|o| o.id == shard) else { continue };
                if let Some(n) = self.exact_identity(tenant, other, *archive, sha, *direction).await? {
                    out[slot] = Some((shard, n));
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The number of the message with this identity in shard `other`, from its manifest: the served one
    /// when this node serves it, else a read-only copy (cached, bounded).
    async fn exact_identity(
        &self,
        tenant: &str,
        other: &Other,
        archive: ArchiveId,
        sha: &[u8; 32],
        direction: Direction,
    ) -> Result<Option<u64>, ArchiveError> {
        if let Some(served) = self.served.get(other.id) {
            return Ok(served.shard.with_manifest(|m| m.find_identity(archive, sha, direction)));
        }
        let cached = {
            let exact = self.older.exact.lock().unwrap_or_else(|p| p.into_inner());
            exact.manifests.get(&other.id).filter(|(head, _)| *head == other.head).map(|(_, m)| m.clone())
        };
        let manifest = match cached {
            Some(m) => m,
            None => {
                let key = self.shard_data_key(tenant, other.id, other.wrapped_key.as_deref()).await?;
                let m = Arc::new(
                    arca_shard::shard::load_manifest(&self.objects, other.id, &key, Some(other.head.clone()))
                        .await?,
                );
                let mut exact = self.older.exact.lock().unwrap_or_else(|p| p.into_inner());
                let exact = &mut *exact;
                if let Some((_, old)) = exact.manifests.remove(&other.id) {
                    exact.entries -= old.entries.len();
                    exact.order.retain(|id| *id != other.id);
                }
                while exact.entries + m.entries.len() > self.older.exact_limit {
                    let Some(oldest) = exact.order.pop_front() else { break };
                    if let Some((_, old)) = exact.manifests.remove(&oldest) {
                        exact.entries -= old.entries.len();
                    }
                }
                if m.entries.len() <= self.older.exact_limit {
                    exact.entries += m.entries.len();
                    exact.manifests.insert(other.id, (other.head.clone(), m.clone()));
                    exact.order.push_back(other.id);
                }
                m
            }
        };
        Ok(manifest.find_identity(archive, sha, direction))
    }
}
