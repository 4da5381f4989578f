//! Reading: the root of a search asks every relevant shard at once, each within the deadline, and
//! merges their pages; fetching one message's bytes; listing entries.

use std::collections::HashMap;

use arca_ingest::parse_message;
use arca_search::{MergedPage, ResolvedFilters, Scope, ShardQuery};
use arca_shard::manifest::Entry;
use arca_shard::shard::ShardError;
use arca_types::query::{CivilDate, SearchRequest};
use arca_types::values::ShardState;
use arca_types::{ArchiveId, ShardId};

use super::placement::Placement;
use super::protocol::{ENTRIES_PAGE, ShardOp, ShardReply, unexpected};
use super::{ArchiveError, ArchiveService, Served};

impl ArchiveService {
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
        self.counters.search();
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
        // Root of the fan-out: every shard is asked at once, each within the deadline; a shard that
        // fails or is late is listed, never waited for past the deadline.
        let deadline = started + wait;
        let asked = shards.into_iter().map(|id| {
            let q = ShardQuery {
                query: request.query.clone(),
                filters: filters.clone(),
                scopes: scopes.clone(),
                sort: request.sort,
                limit,
                after: cursor.as_ref().map(|c| c.for_shard(id)),
                bounds: arca_search::ShardBounds::from_config(limits),
            };
            async move {
                (id, tokio::time::timeout_at(deadline, self.search_shard(tenant, id, q, deadline)).await)
            }
        });
        let mut pages = Vec::new();
        let mut missing = Vec::new();
        for (id, answer) in futures::future::join_all(asked).await {
            match answer {
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

    /// The leaf of a search: one shard's page for `query`, here or on the node serving the shard,
    /// within `deadline`; asked once more where the shard is served now when it moved to another node
    /// while being asked (`arca shard move`).
    async fn search_shard(
        &self,
        tenant: &str,
        id: ShardId,
        query: ShardQuery,
        deadline: tokio::time::Instant,
    ) -> Result<arca_search::ShardPage, ArchiveError> {
        let callers_error = |e: &ArchiveError| matches!(e, ArchiveError::QueryLimit(_));
        self.once_more_if_moved(tenant, id, callers_error, || {
            self.search_shard_once(tenant, id, query.clone(), deadline)
        })
        .await
    }

    async fn search_shard_once(
        &self,
        tenant: &str,
        id: ShardId,
        query: ShardQuery,
        deadline: tokio::time::Instant,
    ) -> Result<arca_search::ShardPage, ArchiveError> {
        match self.place(tenant, id).await? {
            Placement::Here(served) => {
                self.counters.shard_search();
                search_served(&served, id, query).await
            }
            Placement::There(node) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let op = ShardOp::Search { query: Box::new(query) };
                match self.forward(node, tenant, id, op, Some(left)).await? {
                    ShardReply::Page(page) => Ok(*page),
                    other => Err(unexpected(node, &other)),
                }
            }
        }
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

    /// The listing entry and exact bytes of message `<shard>:<number>`, from the node serving the shard.
    /// A message outside the `readable` archives answers `NoSuchMessage`, before any byte is read.
    pub async fn fetch(
        &self,
        tenant: &str,
        shard: ShardId,
        number: u64,
        readable: &[ArchiveId],
    ) -> Result<(Entry, Vec<u8>), ArchiveError> {
        let callers_error =
            |e: &ArchiveError| matches!(e, ArchiveError::Shard(ShardError::NoSuchMessage { .. }));
        self.once_more_if_moved(tenant, shard, callers_error, || {
            self.fetch_once(tenant, shard, number, readable)
        })
        .await
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
        match self
            .forward(node, tenant, shard, ShardOp::Fetch { number, readable: readable.to_vec() }, None)
            .await?
        {
            ShardReply::Fetched { entry, raw } => Ok((entry, raw)),
            other => Err(unexpected(node, &other)),
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
                        let op = ShardOp::Entries { after, limit: ENTRIES_PAGE };
                        let page = match self.forward(node, tenant, id, op, None).await? {
                            ShardReply::Entries(page) => page,
                            other => return Err(unexpected(node, &other)),
                        };
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
}

pub(super) async fn search_served(
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

pub(super) async fn fetch_served(
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

/// Up to `limit` listing entries numbered above `after`, in number order.
pub(super) fn entries_page(served: &Served, after: u64, limit: usize) -> Vec<Entry> {
    served.shard.with_manifest(|m| {
        let start = m.entries.partition_point(|e| e.number <= after);
        m.entries[start..].iter().take(limit).cloned().collect()
    })
}
