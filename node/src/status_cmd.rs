//! The cluster as tables (CLU-05, OPS-07): the nodes of `arca cluster status` and `arca node list`, and
//! the owner's health that `arca shard list` shows per store, all from `GetServerInfo`.

use anyhow::{Context, Result};
use serde_json::Value;

use crate::client::Client;

/// The result of `GetServerInfo`: this node, and every node of the cluster under `nodes`.
pub async fn server_info(client: &Client) -> Result<Value> {
    let envelope = client.call("/api/invoke/GetServerInfo", &[]).await.context("GetServerInfo")?;
    Ok(envelope.get("result").cloned().unwrap_or(Value::Null))
}

/// The nodes of a `GetServerInfo` result.
pub fn nodes(info: &Value) -> &[Value] {
    info["nodes"].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A duration in milliseconds as a short text: `0.3 s`, `12 s`, `5 min`; `never` when unknown.
pub fn ago(ms: Option<u64>) -> String {
    match ms {
        None => "never".to_string(),
        Some(ms) if ms < 10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) if ms < 600_000 => format!("{} s", ms / 1000),
        Some(ms) => format!("{} min", ms / 60_000),
    }
}

fn number(v: &Value) -> String {
    v.as_u64().map_or("-".to_string(), |n| n.to_string())
}

/// Prints the node table: role, health, when the leader last heard from it, lag, shards, counters.
pub fn print_nodes(info: &Value) {
    println!(
        "{:<14} {:<9} {:<12} {:>8} {:>6} {:>6} {:>9} {:>13} {:>8} {:<10} {:<22}",
        "NODE",
        "ROLE",
        "HEALTH",
        "SEEN",
        "LAG",
        "SHARDS",
        "SEARCHES",
        "SHARD SEARCH",
        "BATCHES",
        "VERSION",
        "API"
    );
    for n in nodes(info) {
        let counter = |name: &str| number(&n["counters"][name]);
        println!(
            "{:<14} {:<9} {:<12} {:>8} {:>6} {:>6} {:>9} {:>13} {:>8} {:<10} {:<22}",
            number(&n["id"]),
            n["role"].as_str().unwrap_or("?"),
            n["health"].as_str().unwrap_or("?"),
            ago(n["lastHeardMs"].as_u64()),
            number(&n["lag"]),
            number(&n["shards"]),
            counter("searches"),
            counter("shardSearches"),
            counter("batchesArchived"),
            n["version"].as_str().unwrap_or("-"),
            n["apiAddr"].as_str().unwrap_or("?"),
        );
    }
    for n in nodes(info) {
        if let Some(problem) = n["problem"].as_str() {
            println!("node {}: {problem}", number(&n["id"]));
        }
    }
    if info["mixedVersions"].as_bool() == Some(true) {
        println!("the nodes run different versions of Arca");
    }
    if let Some(problem) = info["leaderProblem"].as_str() {
        println!("roles as this node knows them; the leader could not be asked: {problem}");
    }
}

/// Adds to each store of `GetStores` its owner's health from `info`: `owner` (the serving node),
/// `ownerSeenMs` (since the leader last heard from it), `ownerLeaseAgeMs` (since the answering node saw
/// the owner renew its lease) and `ownerHealth` (`ok`, `silent`, `unreachable`, or `none` when no member
/// owns the store).
pub fn annotate_stores(stores: &mut [Value], info: &Value) {
    for store in stores {
        let owner = store["servingNode"].as_u64();
        let node = owner.and_then(|o| nodes(info).iter().find(|n| n["id"].as_u64() == Some(o)));
        let Some(fields) = store.as_object_mut() else { continue };
        fields.insert("owner".into(), owner.map_or(Value::Null, Value::from));
        fields.insert("ownerSeenMs".into(), node.map_or(Value::Null, |n| n["lastHeardMs"].clone()));
        fields.insert("ownerLeaseAgeMs".into(), node.map_or(Value::Null, |n| n["leaseAgeMs"].clone()));
        fields.insert("ownerHealth".into(), node.map_or(Value::from("none"), |n| n["health"].clone()));
    }
}
