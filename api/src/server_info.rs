//! `GetServerInfo` (OPS-07): this node's version and name, and the whole cluster: every member with its
//! addresses, version, role, health, the caller's tenant's shards it owns, and its counters.
//!
//! Roles, replication lag and "last heard" come from the metadata leader (asked through Raft's cluster
//! channel, so a follower answers the same); version and counters from each node itself, asked over
//! the cluster channel within [`PROBE_TIMEOUT`]. A member is healthy when it answered that question and
//! the leader heard from it within [`silence_limit`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiContext;
use crate::counters::CounterSnapshot;
use arca_raft::{ClusterStatus, MemberStatus};
use arca_types::{NodeId, ShardId};

/// The service under which nodes ask each other for their [`NodeReport`].
pub const NODE_INFO_SERVICE: &str = "api.node-info";
/// How long one node may take to answer for itself before it is shown unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the metadata leader may take to describe the members (an election included).
const STATUS_DEADLINE: Duration = Duration::from_secs(5);

/// What a node says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    pub id: NodeId,
    pub version: String,
    pub machine_name: String,
    /// `None` on a node without an archive service.
    pub counters: Option<CounterSnapshot>,
}

/// This node's own [`NodeReport`].
pub fn local_report(ctx: &ApiContext) -> NodeReport {
    NodeReport {
        id: ctx.meta.id(),
        version: ctx.version.clone(),
        machine_name: ctx.machine_name.clone(),
        counters: ctx.archive.as_deref().map(|a| a.counters.snapshot()),
    }
}

/// How long the leader may go without hearing from a member that is still called healthy: twice the
/// longest election timeout (4 s with the default Raft timings).
pub fn silence_limit(ctx: &ApiContext) -> Duration {
    Duration::from_millis(ctx.meta.raft().config().election_timeout_max.saturating_mul(2))
}

/// The members as this node knows them, for when the leader cannot be asked: roles from the local
/// membership, no lag and nothing heard.
fn local_view(ctx: &ApiContext) -> ClusterStatus {
    let m = ctx.meta.raft().metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, info)| MemberStatus {
            id: *id,
            role: if Some(*id) == m.current_leader {
                "leader".into()
            } else if voters.contains(id) {
                "voter".into()
            } else {
                "learner".into()
            },
            cluster_addr: info.cluster_addr.clone(),
            api_addr: info.api_addr.clone(),
            lag: None,
            last_heard_ms: None,
        })
        .collect();
    ClusterStatus {
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        applied_index: m.last_applied.map(|l| l.index),
        members,
    }
}

/// Asks node `id` for its report within [`PROBE_TIMEOUT`]; `Err` says why it did not answer.
async fn probe(ctx: &ApiContext, id: NodeId) -> Result<NodeReport, String> {
    let asked = ctx.meta.call_node(id, NODE_INFO_SERVICE, Vec::new(), PROBE_TIMEOUT);
    match tokio::time::timeout(PROBE_TIMEOUT, asked).await {
        Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(bytes)) => serde_json::from_slice(&bytes).map_err(|e| format!("an unreadable answer: {e}")),
    }
}

/// The role shown for a member: `leader`, `follower` (a voter that does not lead) or `learner`.
fn role(status: &MemberStatus) -> &str {
    match status.role.as_str() {
        "voter" => "follower",
        other => other,
    }
}

/// The result of `GetServerInfo` for a caller of `tenant`: shard figures are the tenant's only; the
/// members and their counters are cluster-level (counts that name no tenant's data).
pub async fn server_info(ctx: &ApiContext, tenant: &str) -> Value {
    let (status, leader_view) = match ctx.meta.status_within(STATUS_DEADLINE).await {
        Ok(s) => (s, None),
        Err(e) => (local_view(ctx), Some(e.to_string())),
    };
    let reports = futures::future::join_all(status.members.iter().map(|m| probe(ctx, m.id))).await;
    // The gate made this node's state current when it authenticated the caller.
    let shards: Vec<(ShardId, Option<NodeId>)> = ctx.meta.with_state(|s| {
        s.tenant(tenant)
            .map(|t| t.shards.values().map(|sh| (sh.id, sh.owner_node)).collect())
            .unwrap_or_default()
    });
    let mut owned: BTreeMap<NodeId, Vec<ShardId>> = BTreeMap::new();
    let members: BTreeSet<NodeId> = status.members.iter().map(|m| m.id).collect();
    let mut unplaced = Vec::new();
    for (shard, owner) in shards {
        match owner.filter(|o| members.contains(o)) {
            Some(node) => owned.entry(node).or_default().push(shard),
            None => unplaced.push(shard),
        }
    }
    let limit = silence_limit(ctx);
    let mut versions = BTreeSet::new();
    let nodes: Vec<Value> = status
        .members
        .iter()
        .zip(reports)
        .map(|(m, report)| {
            let heard_recently = m.last_heard_ms.is_some_and(|ms| u128::from(ms) <= limit.as_millis());
            let health = match &report {
                Err(_) => "unreachable",
                Ok(_) if !heard_recently => "silent",
                Ok(_) => "ok",
            };
            if let Ok(r) = &report {
                versions.insert(r.version.clone());
            }
            let shard_ids = owned.get(&m.id).cloned().unwrap_or_default();
            json!({
                "id": m.id,
                "machineName": report.as_ref().ok().map(|r| r.machine_name.clone()),
                "version": report.as_ref().ok().map(|r| r.version.clone()),
                "apiAddr": m.api_addr,
                "clusterAddr": m.cluster_addr,
                "role": role(m),
                "reachable": report.is_ok(),
                "healthy": health == "ok",
                "health": health,
                "problem": report.as_ref().err(),
                "lastHeardMs": m.last_heard_ms,
                // Since the answering node last saw this node renew its lease (failover judges by it).
                "leaseAgeMs": ctx.meta.lease_age(m.id).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                "leaseLapsed": ctx.meta.lease_dead(m.id).is_some(),
                "lag": m.lag,
                "shards": shard_ids.len(),
                "shardIds": shard_ids,
                "counters": report.as_ref().ok().and_then(|r| r.counters),
            })
        })
        .collect();
    json!({
        "version": ctx.version,
        "machineName": ctx.machine_name,
        "nodeId": ctx.meta.id(),
        "leader": status.leader,
        "term": status.term,
        "mixedVersions": versions.len() > 1,
        "healthySilenceMs": u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        "membersFrom": if leader_view.is_none() { "leader" } else { "this node (the leader could not be asked)" },
        "leaderProblem": leader_view,
        "nodes": nodes,
        "shardsWithoutLiveOwner": unplaced,
    })
}
