//! Administration of stores: the catalogue's list, creation with a fresh data key, verification,
//! index rebuilds and index information, each on the node serving the store.

use arca_ingest::parse_message;
use arca_shard::DataKey;
use arca_types::document::MessageDoc;
use arca_types::values::ShardState;
use arca_types::{Command, CommandOutput, ShardId};

use super::placement::Placement;
use super::protocol::{ShardOp, ShardReply, unexpected};
use super::{ArchiveError, ArchiveService, Served};

impl ArchiveService {
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
                let (report, lines) =
                    match self.forward(node, tenant, id, ShardOp::Verify { include_indexes }, None).await? {
                        ShardReply::Verified { report, lines } => (report, lines),
                        other => return Err(unexpected(node, &other)),
                    };
                progress(format!("(verified by node {node}, which serves store {id})"));
                lines.into_iter().for_each(progress);
                Ok(*report)
            }
        }
    }

    /// Rebuilds shard `id`'s index from its packs, on the node serving it; answers the number of
    /// messages indexed.
    pub async fn rebuild_index(&self, tenant: &str, id: ShardId) -> Result<u64, ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(served) => self.rebuild_served(&served).await,
            Placement::There(node) => match self.forward(node, tenant, id, ShardOp::Rebuild, None).await? {
                ShardReply::Rebuilt(n) => Ok(n),
                other => Err(unexpected(node, &other)),
            },
        }
    }

    pub(super) async fn rebuild_served(&self, served: &Served) -> Result<u64, ArchiveError> {
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
            Placement::There(node) => match self.forward(node, tenant, id, ShardOp::IndexInfo, None).await? {
                ShardReply::IndexInfo { documents, files } => Ok((documents, files)),
                other => Err(unexpected(node, &other)),
            },
        }
    }
}

/// Verifies the packs of a shard served here and, with `include_indexes`, its index against its
/// manifest.
pub(super) async fn verify_served(
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

pub(super) fn index_info_served(served: &Served) -> (u64, Vec<(String, u64)>) {
    let docs = served.index.num_docs();
    let files = served.shard.with_manifest(|m| m.index_files.clone());
    (docs, files.into_iter().map(|f| (f.name, f.size)).collect())
}
