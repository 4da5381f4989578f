//! Automatic failover (invariant 2, CLU-02, CLU-06): a background task on every node finds stores whose
//! owner is dead (its lease lapsed by this node's observations, or it left the cluster), picks a new
//! owner for each deterministically among the live nodes (fewest stores, ties by the lower id), and, when
//! that is this node, takes the store over through [`ArchiveService::place`] — the one function that may
//! take a store over. The takeover is a compare-and-set in Raft (`ClaimShard`), so two nodes that judge
//! differently never both win; the raised epoch fences the old writer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arca_types::values::ShardState;
use arca_types::{NodeId, ShardId};

use crate::archive::ArchiveService;

/// How often a node looks for stores without a live owner (at most; a quarter lease when shorter).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// One store that needs a new owner, and the node chosen for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub tenant: String,
    pub id: ShardId,
    /// The owner that is gone (`None` cannot occur: never-assigned stores are placed by requests).
    pub dead_owner: NodeId,
    pub chosen: NodeId,
}

/// A store as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub tenant: String,
    pub id: ShardId,
    pub owner: NodeId,
}

/// Chooses a new owner for every store whose owner is not in `live`: among `live` but not `draining`, the node with the
/// fewest stores (counting the choices made so far), ties by the lower id. Deterministic, so that nodes
/// with the same view choose the same node.
pub fn plan(stores: &[Owned], live: &BTreeSet<NodeId>, draining: &BTreeSet<NodeId>) -> Vec<Orphan> {
    let mut load: BTreeMap<NodeId, usize> =
        live.iter().filter(|n| !draining.contains(n)).map(|n| (*n, 0)).collect();
    for s in stores {
        if let Some(n) = load.get_mut(&s.owner) {
            *n += 1;
        }
    }
    let mut orphans: Vec<&Owned> = stores.iter().filter(|s| !live.contains(&s.owner)).collect();
    orphans.sort_by(|a, b| (&a.tenant, a.id).cmp(&(&b.tenant, b.id)));
    let mut out = Vec::new();
    for s in orphans {
        let Some((&chosen, _)) = load.iter().min_by_key(|(id, n)| (**n, **id)) else { break };
        if let Some(n) = load.get_mut(&chosen) {
            *n += 1;
        }
        out.push(Orphan { tenant: s.tenant.clone(), id: s.id, dead_owner: s.owner, chosen });
    }
    out
}

/// Starts the failover task of this node; it runs until the returned handle is aborted.
pub fn spawn(archive: Arc<ArchiveService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = CHECK_EVERY.min(archive.meta.leases().renew_every());
        loop {
            tokio::time::sleep(every).await;
            check_once(&archive).await;
        }
    })
}

/// One round: plans the orphaned stores and takes over those chosen for this node.
async fn check_once(archive: &ArchiveService) {
    let meta = &archive.meta;
    // A node without its own lease judges nobody and takes nothing over.
    if !meta.leases().holding() {
        return;
    }
    let me = meta.id();
    let members: BTreeSet<NodeId> = archive.members().into_iter().collect();
    let stores: Vec<Owned> = meta.with_state(|s| {
        s.tenants
            .values()
            .flat_map(|t| {
                t.shards.values().filter(|sh| sh.state != ShardState::Disabled).filter_map(|sh| {
                    sh.owner_node.map(|owner| Owned { tenant: t.name.clone(), id: sh.id, owner })
                })
            })
            .collect()
    });
    let live: BTreeSet<NodeId> =
        members.iter().copied().filter(|n| *n == me || meta.lease_dead(*n).is_none()).collect();
    let draining = meta.with_state(|s| s.draining.clone());
    for orphan in plan(&stores, &live, &draining) {
        if orphan.chosen != me {
            continue;
        }
        tracing::info!(
            shard = orphan.id,
            dead_owner = orphan.dead_owner,
            "the store's owner is gone (lease lapsed or left the cluster): taking the store over"
        );
        let started = std::time::Instant::now();
        match archive.place(&orphan.tenant, orphan.id).await {
            Ok(crate::archive::Placement::Here(_)) => {
                tracing::info!(shard = orphan.id, took = ?started.elapsed(), "took the store over");
            }
            Ok(crate::archive::Placement::There(node)) => {
                tracing::info!(shard = orphan.id, node, "another node serves the store now");
            }
            Err(e) => tracing::warn!(shard = orphan.id, "taking the store over failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(id: ShardId, owner: NodeId) -> Owned {
        Owned { tenant: "default".into(), id, owner }
    }

    #[test]
    fn orphans_go_to_the_live_nodes_with_the_fewest_stores_ties_by_id() {
        let stores = vec![owned(1, 1), owned(2, 1), owned(3, 2), owned(4, 3), owned(5, 3), owned(6, 3)];
        let live = BTreeSet::from([1, 2]);
        let plan = plan(&stores, &live, &BTreeSet::new());
        let chosen: Vec<(ShardId, NodeId)> = plan.iter().map(|o| (o.id, o.chosen)).collect();
        // Node 2 has one store, node 1 two: 4 -> 2 (1 vs 2), 5 -> 1 (tie 2:2, lower id), 6 -> 2.
        assert_eq!(chosen, vec![(4, 2), (5, 1), (6, 2)]);
        assert!(plan.iter().all(|o| o.dead_owner == 3));
    }

    #[test]
    fn nothing_is_planned_while_every_owner_is_live_or_nobody_is() {
        let stores = vec![owned(1, 1), owned(2, 2)];
        assert!(plan(&stores, &BTreeSet::from([1, 2]), &BTreeSet::new()).is_empty());
        assert!(plan(&stores, &BTreeSet::new(), &BTreeSet::new()).is_empty());
    }
}
