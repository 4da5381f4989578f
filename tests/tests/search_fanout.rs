//! Root/leaf search (CLU-03): the root asks every shard at once, each within the deadline, merges, and
//! names the shards that did not answer in time.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

/// `n` small messages tagged `tag`.
fn mail(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!("From: a{i}@example.com\r\nSubject: {tag} {i}\r\n\r\nfanout body {tag} {i}\r\n")
                .into_bytes()
        })
        .collect()
}

async fn search(api: &ApiClient) -> Result<(Value, Duration)> {
    let started = Instant::now();
    let r = api
        .post_json("/api/data/search", &json!({"q": "fanout", "archive": "admin", "limit": 50}).to_string())
        .await?;
    Ok((r, started.elapsed()))
}

fn missing(r: &Value) -> Vec<u64> {
    r["missingShards"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fan_out_over_16_shards_on_3_nodes_keeps_its_deadline_and_names_the_slow_shards() -> Result<()> {
    // One object store for all nodes, as in production: any node can open any shard.
    let objects = tempfile::tempdir()?;
    let url = format!("file://{}", objects.path().display());
    // A lease far longer than the link delay: the slow node stays the owner of its stores (a shorter
    // lease would have them failed over, which `auto_failover` tests).
    let env =
        [("ARCA_SEARCH_TIMEOUT_MS", "1500"), ("ARCA_STORAGE_URL", &url), ("ARCA_CLUSTER_LEASE_MS", "30000")];
    let mut cluster = Cluster::start(3, &env).await?;
    let leader = cluster.leader().await?;
    let slow = (leader + 1) % 3;
    let apis: Vec<ApiClient> = (0..3).map(|i| cluster.api(i)).collect();
    // 16 stores, store k served by node k % 3: the node that first archives into a store with no live
    // owner takes it over.
    let mut served_by: Vec<(u64, usize)> = Vec::new();
    for k in 0..16 {
        let api = &apis[k % 3];
        let created =
            api.ok("CreateStore", &[("name", &format!("fan-{k}")), ("requestedState", "current")]).await?;
        let id = created["id"].as_u64().context("store id")?;
        let ids = api.upload_batch("admin", "Inbox", &mail(&format!("s{k}"), 5)).await?;
        ensure!(ids.iter().all(|i| i.starts_with(&format!("{id}:"))), "store {id} got {ids:?}");
        served_by.push((id, k % 3));
    }
    let total = 16 * 5;
    // Every node answers the whole fan-out, complete.
    for api in &apis {
        let (r, took) = search(api).await?;
        ensure!(missing(&r).is_empty(), "missing {:?}", missing(&r));
        ensure!(r["total"].as_u64() == Some(total), "total {} after {took:?}", r["total"]);
    }
    // One node's links become slower than the deadline: the fan-out through a healthy node answers
    // within timeout_ms + 1 s (and a margin for this loaded machine), naming exactly the slow node's stores.
    cluster.partition.slow(slow, Duration::from_millis(2500));
    let via = &apis[leader];
    let (r, took) = search(via).await?;
    let mut named = missing(&r);
    named.sort();
    let mut expected: Vec<u64> = served_by.iter().filter(|(_, n)| *n == slow).map(|(id, _)| *id).collect();
    expected.sort();
    eprintln!("fan-out with node {slow} slowed: {took:?}, missing {named:?}");
    ensure!(took < Duration::from_millis(1500 + 1000 + 1500), "the search took {took:?}");
    ensure!(named == expected, "missing {named:?}, the slow node serves {expected:?}");
    ensure!(r["total"].as_u64() == Some(total - 5 * expected.len() as u64), "total {}", r["total"]);
    // A delay within the deadline costs time, not answers (the first search after the change may
    // still meet links being re-established).
    cluster.partition.slow(slow, Duration::from_millis(100));
    let started = Instant::now();
    loop {
        let (r, took) = search(via).await?;
        if missing(&r).is_empty() {
            eprintln!("fan-out with node {slow} at 100 ms per hop: {took:?}");
            ensure!(r["total"].as_u64() == Some(total), "total {}", r["total"]);
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(15), "still missing {:?}", missing(&r));
    }
    Ok(())
}
