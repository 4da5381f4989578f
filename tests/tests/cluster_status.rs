//! The whole cluster as operators see it (OPS-07, CLU-05): `GetServerInfo` through any node lists every
//! node with its role, health, the stores it serves and its counters; `arca cluster status`,
//! `arca node list` and `arca shard list` show the same; a killed node is reported within seconds.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::api::batch_body;
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

/// Uploads `n` small messages tagged `tag` into the admin archive through `api`.
async fn upload(api: &ApiClient, tag: &str, n: usize) -> Result<()> {
    let messages: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!("From: a{i}@example.com\r\nSubject: {tag} {i}\r\n\r\n{tag} body {i}\r\n").into_bytes()
        })
        .collect();
    let a = api
        .request(
            reqwest::Method::POST,
            "/api/data/archives/admin/batch",
            Some("application/octet-stream"),
            batch_body("inbox", &messages),
        )
        .await?;
    if a.status != 200 {
        bail!("upload: HTTP {}: {}", a.status, a.text());
    }
    Ok(())
}

fn json_of(out: &Output, what: &str) -> Result<Value> {
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{what}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn nodes(info: &Value) -> Vec<Value> {
    info["nodes"].as_array().cloned().unwrap_or_default()
}

fn ids(list: &[Value]) -> BTreeSet<u64> {
    list.iter().filter_map(|n| n["id"].as_u64()).collect()
}

/// The node ids of the cluster's nodes, by harness index.
async fn node_ids(cluster: &Cluster, n: usize) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(cluster.api(i).ok("GetServerInfo", &[]).await?["nodeId"].as_u64().context("nodeId")?);
    }
    Ok(out)
}

/// `GetServerInfo` through `api`, asked again until every listed node is healthy (heartbeats on a busy
/// machine may arrive late for a moment).
async fn healthy_info(api: &ApiClient) -> Result<Value> {
    let start = Instant::now();
    loop {
        let info = api.ok("GetServerInfo", &[]).await?;
        if nodes(&info).iter().all(|n| n["healthy"] == true) {
            return Ok(info);
        }
        if start.elapsed() > Duration::from_secs(15) {
            bail!("not every node healthy: {info:#}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Three nodes on one shared object store (a file directory), so that any node may serve any store.
async fn three_nodes() -> Result<(Cluster, tempfile::TempDir)> {
    let objects = tempfile::tempdir()?;
    let url = format!("file://{}", objects.path().display());
    Ok((Cluster::start(3, &[("ARCA_STORAGE_URL", url.as_str())]).await?, objects))
}

/// A node's counter as `info` shows it.
fn counter(info: &Value, node: u64, name: &str) -> u64 {
    nodes(info)
        .iter()
        .find(|n| n["id"].as_u64() == Some(node))
        .and_then(|n| n["counters"][name].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_describes_the_whole_cluster_and_the_cli_tables_agree_with_it() -> Result<()> {
    let (cluster, _objects) = three_nodes().await?;
    // One store served by each node: the first upload creates one on node 0; a new current store
    // uploaded to through node i is taken over by node i.
    upload(&cluster.api(0), "zero", 5).await?;
    for i in [1, 2] {
        let api = cluster.api(i);
        let name = format!("store-{i}");
        api.ok("CreateStore", &[("name", name.as_str()), ("requestedState", "current")]).await?;
        api.ok("GetStores", &[]).await?;
        upload(&api, &format!("node{i}"), 5).await?;
    }
    let stores = cluster.api(0).ok("GetStores", &[]).await?;
    let mut owners: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for s in stores.as_array().context("stores")? {
        let owner = s["servingNode"].as_u64().with_context(|| format!("an owner: {stores}"))?;
        owners.entry(owner).or_default().push(s["id"].as_u64().context("id")?);
    }
    let node_id = node_ids(&cluster, 3).await?;
    let all: BTreeSet<u64> = node_id.iter().copied().collect();
    assert_eq!(all.len(), 3, "{node_id:?}");

    for (i, id) in node_id.iter().enumerate() {
        let info = healthy_info(&cluster.api(i)).await?;
        assert_eq!(info["nodeId"], *id, "{info}");
        let list = nodes(&info);
        assert_eq!(ids(&list), all, "node {i} lists every node: {info:#}");
        let leaders: Vec<&Value> = list.iter().filter(|n| n["role"] == "leader").collect();
        assert_eq!(leaders.len(), 1, "exactly one leader through node {i}: {info:#}");
        assert_eq!(info["leader"], leaders[0]["id"], "{info:#}");
        assert!(list.iter().all(|n| n["role"] == "leader" || n["role"] == "follower"), "{info:#}");
        assert_eq!(info["mixedVersions"], false, "{info:#}");
        for n in &list {
            let id = n["id"].as_u64().context("id")?;
            assert_eq!(n["reachable"], true, "{n}");
            assert_eq!(n["version"], info["version"], "{n}");
            assert!(n["apiAddr"].as_str().is_some_and(|a| !a.is_empty()), "{n}");
            assert!(n["clusterAddr"].as_str().is_some_and(|a| !a.is_empty()), "{n}");
            assert!(n["lastHeardMs"].as_u64().is_some(), "the leader heard from every node: {n}");
            let mut served: Vec<u64> =
                n["shardIds"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
            served.sort_unstable();
            let mut expected = owners.get(&id).cloned().unwrap_or_default();
            expected.sort_unstable();
            assert_eq!(served, expected, "node {id}'s stores as GetStores names their owners: {info:#}");
            assert_eq!(n["shards"], json!(expected.len()), "{n}");
        }
    }

    // Searches through node 1: counted there as searches, and as shard searches on each store's owner.
    let before = healthy_info(&cluster.api(0)).await?;
    for _ in 0..5 {
        let a =
            cluster.api(1).post_json("/api/data/search", &json!({"q": "", "limit": 1}).to_string()).await?;
        assert_eq!(a["missingShards"], json!([]), "{a}");
        assert_eq!(a["total"], 15, "{a}");
    }
    let after = healthy_info(&cluster.api(2)).await?;
    for (i, id) in node_id.iter().enumerate() {
        let searches = counter(&after, *id, "searches") - counter(&before, *id, "searches");
        assert_eq!(searches, if i == 1 { 5 } else { 0 }, "searches answered by node {i}: {after:#}");
        let shard_searches = counter(&after, *id, "shardSearches") - counter(&before, *id, "shardSearches");
        let owned = owners.get(id).map_or(0, Vec::len) as u64;
        assert_eq!(shard_searches, 5 * owned, "shard searches run on node {i}: {after:#}");
        if owned > 0 {
            assert!(counter(&after, *id, "batchesArchived") >= 1, "node {i} archived a batch: {after:#}");
        }
    }

    // The CLI tables, through different nodes, agree with GetServerInfo and GetStores.
    let status = json_of(&cluster.cli(0, &["cluster", "status", "--json"]), "cluster status")?;
    let listed = json_of(&cluster.cli(1, &["node", "list", "--json"]), "node list")?;
    let shards = json_of(&cluster.cli(2, &["shard", "list", "--json"]), "shard list")?;
    let status_nodes = nodes(&status);
    let listed = listed.as_array().cloned().context("node list is an array")?;
    assert_eq!(ids(&status_nodes), all, "{status:#}");
    assert_eq!(ids(&listed), all, "{listed:#?}");
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3), "{status:#}");
    for n in &listed {
        let same = status_nodes.iter().find(|m| m["id"] == n["id"]).context("the same node")?;
        assert_eq!(n["role"], same["role"], "{n} vs {same}");
        assert_eq!(n["shards"], same["shards"], "{n} vs {same}");
        assert_eq!(n["apiAddr"], same["apiAddr"], "{n} vs {same}");
    }
    let shards = shards.as_array().cloned().context("shard list is an array")?;
    assert_eq!(shards.len(), 3, "{shards:#?}");
    for s in &shards {
        let owner = s["owner"].as_u64().with_context(|| format!("an owner: {s}"))?;
        assert_eq!(s["owner"], s["servingNode"], "{s}");
        assert!(s["epoch"].as_u64().is_some_and(|e| e >= 1), "{s}");
        assert!(s["messageCount"].as_u64().is_some() && s["size"].as_u64().is_some(), "{s}");
        assert_eq!(s["ownerHealth"], "ok", "{s}");
        assert!(s["ownerSeenMs"].as_u64().is_some(), "{s}");
        // Leases are renewed every lease_ms/4 (default 1 s): a live owner's lease is seen renewed lately.
        assert!(s["ownerLeaseAgeMs"].as_u64().is_some_and(|ms| ms < 4000), "{s}");
        let node = listed.iter().find(|n| n["id"] == owner).context("the owner is a listed node")?;
        assert!(
            node["shardIds"].as_array().into_iter().flatten().any(|id| *id == s["id"]),
            "{s} is among its owner's stores: {node}"
        );
    }
    let table = cluster.cli(0, &["shard", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("OWNER SEEN") && table.contains("LEASE AGE") && table.contains("EPOCH"),
        "{table}"
    );
    let table = cluster.cli(0, &["node", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("leader") && table.contains("follower") && table.contains("SEARCHES"), "{table}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_is_reported_unreachable_within_seconds() -> Result<()> {
    let (mut cluster, _objects) = three_nodes().await?;
    let leader = cluster.leader().await?;
    let victim = (0..3).rev().find(|i| *i != leader).context("a follower")?;
    let survivor = (0..3).find(|i| *i != victim && *i != leader).context("another follower")?;
    // The victim serves a store, so that the shard list shows its owner's state too.
    cluster.api(victim).ok("CreateStore", &[("name", "victims"), ("requestedState", "current")]).await?;
    cluster.api(victim).ok("GetStores", &[]).await?;
    upload(&cluster.api(victim), "victim", 3).await?;
    let victim_id = cluster.api(victim).ok("GetServerInfo", &[]).await?["nodeId"].as_u64().context("id")?;
    healthy_info(&cluster.api(survivor)).await?;

    cluster.kill(victim);
    let killed = Instant::now();
    let seen = loop {
        let info = cluster.api(survivor).ok("GetServerInfo", &[]).await?;
        let node = nodes(&info).into_iter().find(|n| n["id"] == victim_id).context("still a member")?;
        if node["reachable"] == false {
            break (info, node);
        }
        if killed.elapsed() > Duration::from_secs(5) {
            bail!("the killed node is still reported reachable after 5 s: {info:#}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (info, node) = seen;
    assert_eq!(node["healthy"], false, "{node}");
    assert_eq!(node["health"], "unreachable", "{node}");
    assert!(node["problem"].as_str().is_some_and(|p| !p.is_empty()), "{node}");
    assert!(node["counters"].is_null(), "{node}");
    assert!(
        nodes(&info).iter().filter(|n| n["id"] != victim_id).all(|n| n["healthy"] == true),
        "the survivors stay healthy: {info:#}"
    );
    // The leader stops hearing from it: the time grows past the health limit.
    let limit = info["healthySilenceMs"].as_u64().context("healthySilenceMs")?;
    tokio::time::sleep(Duration::from_millis(limit + 500)).await;
    let shards = json_of(&cluster.cli(survivor, &["shard", "list", "--json"]), "shard list")?;
    let store = shards
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["owner"] == victim_id)
        .with_context(|| format!("the victim's store: {shards:#}"))?;
    assert_eq!(store["ownerHealth"], "unreachable", "{store}");
    assert!(store["ownerSeenMs"].as_u64().is_some_and(|ms| ms > limit), "{store}");
    let status = json_of(&cluster.cli(survivor, &["cluster", "status", "--json"]), "cluster status")?;
    let listed = nodes(&status).into_iter().find(|n| n["id"] == victim_id).context("listed")?;
    assert_eq!(listed["reachable"], false, "{listed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_leader_is_reported_unreachable_by_the_next_leader() -> Result<()> {
    let (mut cluster, _objects) = three_nodes().await?;
    let leader = cluster.leader().await?;
    let survivor = (0..3).find(|i| *i != leader).context("a follower")?;
    let old_id = cluster.api(leader).ok("GetServerInfo", &[]).await?["nodeId"].as_u64().context("id")?;
    healthy_info(&cluster.api(survivor)).await?;

    cluster.kill(leader);
    let killed = Instant::now();
    let info = loop {
        // Through an election: the call itself may take a moment while no leader is known.
        if let Ok(info) = cluster.api(survivor).ok("GetServerInfo", &[]).await {
            let old = nodes(&info).into_iter().find(|n| n["id"] == old_id).context("still a member")?;
            if old["reachable"] == false && info["leader"].as_u64().is_some_and(|l| l != old_id) {
                break info;
            }
        }
        if killed.elapsed() > Duration::from_secs(10) {
            bail!("no new leader reporting the old one unreachable within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let list = nodes(&info);
    let leaders: Vec<&Value> = list.iter().filter(|n| n["role"] == "leader").collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {info:#}");
    assert_ne!(leaders[0]["id"], old_id, "{info:#}");
    let old = list.iter().find(|n| n["id"] == old_id).context("old leader listed")?;
    assert_eq!(old["role"], "follower", "{old}");
    assert_eq!(old["healthy"], false, "{old}");
    Ok(())
}
