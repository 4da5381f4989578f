//! Writing: new mail goes to the tenant's current shard (created when there is none), filed under its
//! folder's key, here or on the node serving the shard.

use std::collections::HashMap;

use arca_ingest::parse_message;
use arca_raft::RaftNodeError;
use arca_shard::manifest::Direction;
use arca_shard::shard::{Outcome, ShardError};
use arca_shard::staging::Incoming;
use arca_types::query::CivilDate;
use arca_types::values::ShardState;
use arca_types::{ArchiveId, Command, MetaError, NodeId, ShardId};

use super::placement::Placement;
use super::protocol::{
    FORWARD_ENVELOPE_BYTES, ShardOp, ShardReply, WireMessage, encoded_message_bytes, max_forward_bytes,
    unexpected,
};
use super::{ArchiveError, ArchiveService, Archived, NewMessage, Served, folder_refusal};

impl ArchiveService {
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
        node: NodeId,
        tenant: &str,
        id: ShardId,
        archive: ArchiveId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Archived>, ArchiveError> {
        let cap = max_forward_bytes(&self.limits) - FORWARD_ENVELOPE_BYTES;
        let mut results: Vec<Option<Archived>> = vec![None; messages.len()];
        let mut chunk: Vec<(usize, WireMessage)> = Vec::new();
        let mut chunk_bytes = 0usize;
        for (i, m) in messages.into_iter().enumerate() {
            if m.raw.len() as u64 > self.limits.max_message_bytes {
                let refused = arca_ingest::Refused::message_bytes(
                    m.raw.len() as u64,
                    false,
                    self.limits.max_message_bytes,
                );
                results[i] = Some(Archived::Refused { reason: refused.reason });
                continue;
            }
            let bytes = encoded_message_bytes(&m.folder, m.raw.len());
            if !chunk.is_empty() && chunk_bytes + bytes > cap {
                self.forward_chunk(node, tenant, id, archive, std::mem::take(&mut chunk), &mut results)
                    .await?;
                chunk_bytes = 0;
            }
            chunk_bytes += bytes;
            chunk.push((i, WireMessage { folder: m.folder, raw: m.raw, sent: m.sent }));
        }
        if !chunk.is_empty() {
            self.forward_chunk(node, tenant, id, archive, chunk, &mut results).await?;
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Archived::Refused { reason: "not processed".into() }))
            .collect())
    }

    /// Forwards one chunk of messages and files the answers into their slots of `results`.
    async fn forward_chunk(
        &self,
        node: NodeId,
        tenant: &str,
        id: ShardId,
        archive: ArchiveId,
        chunk: Vec<(usize, WireMessage)>,
        results: &mut [Option<Archived>],
    ) -> Result<(), ArchiveError> {
        let (slots, messages): (Vec<usize>, Vec<_>) = chunk.into_iter().unzip();
        let answers =
            match self.forward(node, tenant, id, ShardOp::Archive { archive, messages }, None).await? {
                ShardReply::Archived(a) => a,
                other => return Err(unexpected(node, &other)),
            };
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

    /// Parses and archives `messages` into shard `id`, served here.
    pub(super) async fn archive_served(
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
        self.counters.batch_archived(messages.len());
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
                        self.served.remove(id);
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
}
